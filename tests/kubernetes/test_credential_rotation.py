"""A new secret seed breaks no login: rendered init containers rotate PostgreSQL's role and MLflow's admin.

The postgres image reads POSTGRES_PASSWORD only when it initialises an empty volume, and MLflow creates its
admin only when absent; these tests run the rendered rotation steps on a real PostgreSQL data directory and
a real MLflow auth database that were created with the old seed's credentials.
"""

# ruff: noqa: F811

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pg import BIN_DIR, PostgresServer, postgres_factory  # noqa: F401
from pulumi_fixtures import SEED, dev_render  # noqa: F401
from upstream_facts import fact

from platform_components.kubernetes.mlflow import CHECKSUM_ANNOTATION, basic_auth_ini
from platform_components.kubernetes.platform import credentials
from platform_components.render import kubernetes_objects
from platform_components.settings import load_platform_settings

NEW_SEED = SEED + "-rotated"


def workload(dev_render: Any, kind: str, name: str) -> dict[str, Any]:
    objects = kubernetes_objects(dev_render.resources, redact=False)
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found["spec"]["template"]


def init_container(template: dict[str, Any]) -> dict[str, Any]:
    (container,) = template["spec"].get("initContainers", [])
    return container


def test_the_pods_restart_when_the_seed_changes(dev_render: Any, render_program_new_seed: Any) -> None:
    for kind, name in (("StatefulSet", "postgres"), ("Deployment", "mlflow")):
        old = workload(dev_render, kind, name)["metadata"]["annotations"][CHECKSUM_ANNOTATION]
        new = workload(render_program_new_seed, kind, name)["metadata"]["annotations"][CHECKSUM_ANNOTATION]
        assert old != new, f"{kind}/{name} would keep running with the old credentials"


@pytest.fixture(scope="module")
def render_program_new_seed() -> Any:
    from pulumi_fixtures import REPO

    from platform_components.render import read_stack_config, run_program

    config, secret_keys = read_stack_config("dev", REPO)
    config = {**config, "mlops:secret_seed": NEW_SEED}
    return run_program(config, secret_keys, stack="dev")


def run_postgres_step(server: PostgresServer, container: dict[str, Any], password: str) -> None:
    """Run the rendered init container's command on the cluster's data directory, as its owner."""
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    env.update(
        PGDATA=str(server.data_dir), POSTGRES_PASSWORD=password, PATH=f"{BIN_DIR}:{os.environ['PATH']}"
    )
    command = [*container["command"], *container["args"]]
    if server.run_as:
        command = ["runuser", "-u", server.run_as, "--", *command]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def test_a_new_seed_rotates_the_database_password(dev_render: Any, postgres_factory: Any) -> None:
    old = credentials(load_platform_settings({"mlops:secret_seed": SEED})).database_password
    new = credentials(load_platform_settings({"mlops:secret_seed": NEW_SEED})).database_password
    assert old != new
    template = workload(dev_render, "StatefulSet", "postgres")
    container = init_container(template)
    env = {e["name"]: e.get("value") for e in container["env"]}
    # What the postgres image's first start left on the volume: POSTGRES_USER is the superuser, with the
    # first seed's password; local socket logins are trusted, TCP needs scram.
    server = postgres_factory(superuser=env["POSTGRES_USER"], password=old, auth_local="trust")
    assert server.can_login("mlflow", old) and not server.can_login("mlflow", new)
    server.stop()
    run_postgres_step(server, container, new)
    server.password = new
    server.restart()
    assert server.can_login("mlflow", new, "postgres")
    assert not server.can_login("mlflow", old, "postgres")
    assert fact("postgres.image.password_read_only_on_empty_pgdata")


def test_the_database_step_leaves_an_empty_volume_to_the_entrypoint(dev_render: Any, tmp_path: Path) -> None:
    container = init_container(workload(dev_render, "StatefulSet", "postgres"))
    env = {
        **os.environ,
        "PGDATA": str(tmp_path / "pgdata"),
        "POSTGRES_USER": "mlflow",
        "POSTGRES_PASSWORD": "x",
    }
    env["PATH"] = "/nonexistent"  # it must not even call postgres on an empty volume
    result = subprocess.run(
        ["/bin/sh", "-c", container["args"][0]], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_a_new_seed_rotates_the_mlflow_admin(dev_render: Any, tmp_path: Path) -> None:
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    old = credentials(load_platform_settings({"mlops:secret_seed": SEED})).admin_password
    new = credentials(load_platform_settings({"mlops:secret_seed": NEW_SEED})).admin_password
    database_uri = f"sqlite:///{tmp_path / 'auth.db'}"
    # First start with the old seed: MLflow creates the admin (create_admin_user, as `mlflow server` does).
    store = SqlAlchemyStore()
    store.init_db(database_uri)
    store.create_user("admin", old, is_admin=True)
    assert fact("mlflow.auth.admin_created_once") == "create-if-absent"
    ini = tmp_path / "basic_auth.ini"
    ini.write_text(
        basic_auth_ini(
            default_permission="NO_PERMISSIONS",
            database_uri=database_uri,
            admin_username="admin",
            admin_password=new,
        )
    )
    container = init_container(workload(dev_render, "Deployment", "mlflow"))
    assert (
        container["image"] == workload(dev_render, "Deployment", "mlflow")["spec"]["containers"][0]["image"]
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        {e["name"]: e["value"] for e in container["env"] if "value" in e and e["name"].startswith("MLFLOW_")}
    )
    env.update(MLFLOW_AUTH_CONFIG_PATH=str(ini), MLFLOW_AUTH_ADMIN_PASSWORD=new, HOME=str(tmp_path))
    command = list(container["command"])
    assert command[0] == "python"
    command[0] = sys.executable
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert store.authenticate_user("admin", new, use_primary=True)
    assert not store.authenticate_user("admin", old, use_primary=True)
