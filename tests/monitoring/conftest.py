"""The monitor store's two backends for the store's tests: SQLite (local) and PostgreSQL (the cluster's).

``store_url`` is parametrised over both: a test that takes it runs once on a SQLite file and once on a fresh
database of one real PostgreSQL 15 started for the session (``tests/pg.py``; skipped, saying why, where
Debian's server binaries are absent). Every call of ``open_store(store_url)`` within a test opens the same
database, so a test can close its store and open it again (a monitor restart).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg import PostgresServer, postgres_unavailable_reason, running_postgres

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
