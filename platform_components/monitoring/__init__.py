"""Monitoring: prediction log, feedback join, drift and performance statistics, retrain policy, exporter.

Modules are imported explicitly (``from platform_components.monitoring.profile import ...``); nothing is
re-exported here so that importing the package stays cheap.
"""
