"""Fixtures of the fleet's tests: a real MLflow server (SQLite); ``store_url`` is tests/conftest.py's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from processes import mlflow_server


@dataclass(frozen=True)
class Mlflow:
    tracking_uri: str
    port: int


@pytest.fixture(scope="session")
def mlflow_rest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mlflow]:
    """A real ``mlflow server`` on SQLite, for the registry reader (filled over REST by the tests)."""
    with mlflow_server(tmp_path_factory.mktemp("fleet-mlflow"), seconds=120) as (uri, _, _):
        yield Mlflow(uri, int(uri.rpartition(":")[2]))


def _post(tracking_uri: str, path: str, body: dict) -> dict:
    import httpx

    response = httpx.post(f"{tracking_uri}/api/2.0/mlflow/{path}", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="session")
def register(mlflow_rest: Mlflow):
    """``register(name, {version: {tag: value}}, {alias: version})``: a model registered over REST."""

    def create(name: str, versions: dict[str, dict[str, str]], aliases: dict[str, str]) -> None:
        _post(mlflow_rest.tracking_uri, "registered-models/create", {"name": name})
        for number in sorted(versions, key=int):
            tags = [{"key": key, "value": value} for key, value in versions[number].items()]
            created = _post(
                mlflow_rest.tracking_uri,
                "model-versions/create",
                {"name": name, "source": f"s3://tests/{name}/{number}", "tags": tags},
            )
            assert created["model_version"]["version"] == number
        for alias, version in aliases.items():
            _post(
                mlflow_rest.tracking_uri,
                "registered-models/alias",
                {"name": name, "alias": alias, "version": version},
            )

    return create
