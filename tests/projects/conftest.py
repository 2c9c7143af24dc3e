"""Fixtures of the project-space tests: the monitor store on both backends and the KFP API fake.

``store_url`` is parametrised over SQLite and PostgreSQL as in ``tests/monitoring/conftest.py`` (one real
PostgreSQL 15 for the session, ``tests/pg.py``; skipped, saying why, where its binaries are absent).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from kfp_api_fake import KfpApiFake
from pg import PostgresServer, postgres_unavailable_reason, running_postgres

_DATABASES = itertools.count()


@pytest.fixture(scope="session")
def projects_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    reason = postgres_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with running_postgres(tmp_path_factory.mktemp("projects-pg")) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A monitor store URL of this test's own, on SQLite or on a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'monitor.sqlite'}"
    server: PostgresServer = request.getfixturevalue("projects_postgres")
    name = f"projects_{next(_DATABASES)}"
    server.create_database(name)
    return server.url(name)


@pytest.fixture
def kfp_api() -> Iterator[KfpApiFake]:
    with KfpApiFake() as fake:
        yield fake
