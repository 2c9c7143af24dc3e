"""Fixtures of the end-to-end tests (real processes on loopback)."""

from __future__ import annotations

import pytest
from processes import find_free_port


@pytest.fixture
def free_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local target reads its ports from MLOPS_* variables: give it free ones (other servers may run)."""
    for variable in (
        "MLOPS_MLFLOW_PORT",
        "MLOPS_SERVING_HTTP_PORT",
        "MLOPS_SERVING_GRPC_PORT",
        "MLOPS_SERVING_METRICS_PORT",
        "MLOPS_MONITOR_PORT",
    ):
        monkeypatch.setenv(variable, str(find_free_port()))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
