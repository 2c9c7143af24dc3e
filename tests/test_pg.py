"""The test PostgreSQL fixture itself: a real server, scram logins, a data directory surviving a restart."""

# ruff: noqa: F811  (pytest fixtures are parameters named like the imported fixture)

from __future__ import annotations

from pathlib import Path

from pg import PostgresServer, postgres, postgres_factory  # noqa: F401  (fixtures)


def test_superuser_logs_in_with_its_password_only(postgres: PostgresServer) -> None:
    assert postgres.scalar("SHOW server_version_num").startswith("15")
    assert postgres.can_login(postgres.superuser, postgres.password)
    assert not postgres.can_login(postgres.superuser, postgres.password + "x")
    assert not postgres.can_login(postgres.superuser, None)
    # scram over the socket too unless a test asks for the image's local trust.
    assert not postgres.can_login(postgres.superuser, "wrong", via_socket=True)


def test_role_password_is_scram_and_survives_restart(postgres: PostgresServer) -> None:
    password = "p%40ss:/word'%"
    postgres.create_role("mlflow", password)
    postgres.create_database("mlflow", owner="mlflow")
    verifier = postgres.scalar("SELECT rolpassword FROM pg_authid WHERE rolname = 'mlflow'")
    assert verifier.startswith("SCRAM-SHA-256$")
    postgres.restart()
    assert postgres.can_login("mlflow", password, "mlflow")
    assert not postgres.can_login("mlflow", "other", "mlflow")


def test_local_trust_is_available_for_image_like_clusters(postgres_factory) -> None:
    server = postgres_factory(auth_local="trust")
    assert server.can_login(server.superuser, "anything", via_socket=True)
    assert not server.can_login(server.superuser, "anything")


def test_url_quotes_credentials(tmp_path: Path) -> None:
    server = PostgresServer(tmp_path, tmp_path, tmp_path / "log", 5433, "postgres", "pw", None)
    url = server.url("mlflow", "ml flow", "a%b@c:d/e")
    assert url == "postgresql://ml%20flow:a%25b%40c%3Ad%2Fe@127.0.0.1:5433/mlflow"
    assert server.url() == "postgresql://postgres:pw@127.0.0.1:5433/postgres"
