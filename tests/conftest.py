"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from processes import find_free_port


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-cluster", action="store_true", help="run tests that need a real Kubernetes cluster"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-cluster"):
        return
    skip = pytest.mark.skip(reason="needs a real Kubernetes cluster: pass --run-cluster")
    for item in items:
        if item.get_closest_marker("cluster") is not None:  # keywords also hold folder names
            item.add_marker(skip)


@pytest.fixture
def free_port() -> int:
    return find_free_port()


_MLFLOW_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID")
# What the environment held when the session started: the clean state every test hands on.
_MLFLOW_BASELINE = {name: os.environ.get(name) for name in _MLFLOW_VARIABLES}


def _reset_mlflow_globals() -> None:
    fluent = sys.modules.get("mlflow.tracking.fluent")
    if fluent is not None:
        fluent._active_experiment_id = None
    uri_module = sys.modules.get("mlflow.tracking._tracking_service.utils")
    if uri_module is not None and hasattr(uri_module, "_tracking_uri"):
        uri_module._tracking_uri = None
    for name, value in _MLFLOW_BASELINE.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module", autouse=True)
def isolate_mlflow_globals() -> Iterator[None]:
    """Hand the next test module a clean MLflow: no tracking URI, no active experiment.

    MLflow keeps the tracking URI and the active experiment in process globals and environment variables. A
    module whose fixtures call ``mlflow.set_experiment`` against their own server leak experiment id 1 into
    every later module talking to another server ("No Experiment with id=1 exists"). Within a module, tests
    may share what their module fixtures set.
    """
    yield
    _reset_mlflow_globals()


@pytest.fixture(autouse=True)
def no_mlflow_run_left_open() -> Iterator[None]:
    """A run left open would swallow the next test's logging: end it and fail the test that left it."""
    yield
    fluent = sys.modules.get("mlflow.tracking.fluent")
    leaked_run = fluent.active_run() if fluent is not None else None
    if leaked_run is not None:
        fluent.end_run()
        pytest.fail(f"the test left MLflow run {leaked_run.info.run_id} open; use `with mlflow.start_run():`")
