"""What a pipeline step needs to reach the platform's services from inside the cluster.

MLflow runs with basic-auth failing closed, so a step that logs or registers must send credentials. The
platform renders them into the Secret ``MLFLOW_CREDENTIALS_SECRET`` in the Kubeflow namespace; a pipeline
attaches it to its MLflow steps with ``with_mlflow_credentials(task)``. The Secret is optional for the step:
``kfp.local`` runs and clusters without MLflow auth ignore it.
"""

from __future__ import annotations

from typing import Any

# Rendered by platform_components.kubernetes.kfp in the Kubeflow namespace; keys are MLflow's variables.
MLFLOW_CREDENTIALS_SECRET = "mlflow-credentials"
MLFLOW_CREDENTIAL_KEYS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


def with_mlflow_credentials(task: Any) -> Any:
    """Give a pipeline task the platform's MLflow credentials as environment variables; returns the task."""
    from kfp import kubernetes

    return kubernetes.use_secret_as_env(
        task,
        secret_name=MLFLOW_CREDENTIALS_SECRET,
        secret_key_to_env={key: key for key in MLFLOW_CREDENTIAL_KEYS},
        optional=True,
    )
