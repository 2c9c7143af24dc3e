"""The local target: MLflow, MLServer and the monitor as supervised processes on 127.0.0.1."""

from platform_components.local.platform import (
    COMPONENTS,
    Deployment,
    DownResult,
    Endpoints,
    LocalPlatform,
    PlatformStatus,
    ProcessStatus,
)
from platform_components.local.state import StateDir

__all__ = [
    "COMPONENTS",
    "Deployment",
    "DownResult",
    "Endpoints",
    "LocalPlatform",
    "PlatformStatus",
    "ProcessStatus",
    "StateDir",
]
