"""mlops-platform: provision, onboard and run the MLOps loop on Kubernetes or one machine."""

__version__ = "0.1.0"
