"""Fixtures shared by every test folder.

``store_url`` (the monitor store on both backends) is parametrised: a test that takes it runs once on a SQLite
file and once on a fresh database of one real PostgreSQL 15 started for the session (``store_postgres``,
``tests/pg.py``; skipped, saying why, where Debian's server binaries are absent). Every call of
``open_store(store_url)`` within a test opens the same database, so a test can close its store and open it
again (a monitor restart).
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg import PostgresServer, postgres_unavailable_reason, running_postgres
from processes import find_free_port

_DATABASES = itertools.count()


@pytest.fixture(scope="session")
def store_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One PostgreSQL for the session's store tests (each test gets its own database on it)."""
    reason = postgres_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with running_postgres(tmp_path_factory.mktemp("store-pg")) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL of this test's own: ``sqlite:////<tmp>/monitor.sqlite`` or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'monitor.sqlite'}"
    server: PostgresServer = request.getfixturevalue("store_postgres")
    name = f"monitor_{next(_DATABASES)}"
    server.create_database(name)
    return server.url(name)


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
