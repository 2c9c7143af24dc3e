"""The monitor's store in the cluster: the `monitor` database and role on the platform's PostgreSQL.

The render: the monitor reads its store's URL from a Secret (never a flag or a ConfigMap), the bundled
PostgreSQL makes the role and database (on a fresh volume through the image's init directory, on an existing
one in the set-password init container), and the NetworkPolicies open exactly that path. The two scripts are
run here against a real PostgreSQL 15 (Debian's binaries; tests/pg.py): the role logs in with the Secret's
password, owns its database and is no superuser; a rerun changes nothing and a new password rotates it.
"""

# Fixtures come from pulumi_fixtures (see its docstring); pytest resolves them by parameter name.
# ruff: noqa: F811

from __future__ import annotations

import os
import subprocess
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from pg import BIN_DIR, PostgresServer, postgres, postgres_factory  # noqa: F401
from pulumi_fixtures import config_for, dev_render, render_program  # noqa: F401
from upstream_facts import fact

from platform_components.errors import ConfigError
from platform_components.kubernetes.mlflow import (
    POSTGRES_INIT_MONITOR,
    POSTGRES_SET_MONITOR_PASSWORD,
    POSTGRES_SET_PASSWORD,
)
from platform_components.kubernetes.monitoring import STORE_URL_ENV
from platform_components.monitoring import store as monitor_store
from platform_components.render import kubernetes_objects


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def names(objects: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in objects}


@pytest.fixture(scope="module")
def objects(dev_render: Any) -> list[dict[str, Any]]:
    return kubernetes_objects(dev_render.resources, redact=False)


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("valueFrom", item.get("value")) for item in container.get("env", [])}


def test_the_monitor_reads_its_store_url_from_a_secret_on_the_bundled_postgresql(objects: list) -> None:
    assert STORE_URL_ENV == monitor_store.STORE_URL_ENV  # the render's name is the service's
    monitor = find(objects, "StatefulSet", "model-monitor")
    [container] = monitor["spec"]["template"]["spec"]["containers"]
    assert env_of(container)[STORE_URL_ENV] == {
        "secretKeyRef": {"name": "model-monitor-store", "key": STORE_URL_ENV}
    }
    assert not any("postgresql" in argument for argument in container["args"])
    url = find(objects, "Secret", "model-monitor-store")["stringData"][STORE_URL_ENV]
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.port, parts.path) == (
        "postgresql",
        "postgres.mlflow.svc.cluster.local",
        5432,
        "/monitor",
    )
    postgres_secret = find(objects, "Secret", "postgres")["stringData"]
    assert parts.username == "monitor"
    assert unquote(parts.password or "") == postgres_secret["MONITOR_DATABASE_PASSWORD"]
    assert postgres_secret["MONITOR_DATABASE_PASSWORD"] != postgres_secret["POSTGRES_PASSWORD"]
    # The pod restarts when the URL (its password) changes: the variable is read at start.
    annotations = monitor["spec"]["template"]["metadata"]["annotations"]
    assert "mlops.platform/credentials-checksum" in annotations


def test_the_bundled_postgresql_makes_the_monitor_role_on_fresh_and_existing_volumes(objects: list) -> None:
    statefulset = find(objects, "StatefulSet", "postgres")
    spec = statefulset["spec"]["template"]["spec"]
    [database] = spec["containers"]
    mounts = {mount["name"]: mount for mount in database["volumeMounts"]}
    assert mounts["init"] == {
        "name": "init",
        "mountPath": fact("postgres.image.initdb_dir"),
        "readOnly": True,
    }
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert volumes["init"] == {
        "name": "init",
        "secret": {"secretName": "postgres-init", "defaultMode": 0o440},
    }
    assert find(objects, "Secret", "postgres-init")["stringData"] == {"monitor.sh": POSTGRES_INIT_MONITOR}
    [set_password] = spec["initContainers"]
    assert set_password["args"] == [POSTGRES_SET_PASSWORD + POSTGRES_SET_MONITOR_PASSWORD]
    for container in (database, set_password):
        assert env_of(container)["MONITOR_DATABASE_PASSWORD"] == {
            "secretKeyRef": {"name": "postgres", "key": "MONITOR_DATABASE_PASSWORD"}
        }


def test_the_network_policies_open_the_monitor_to_postgresql_and_nothing_more(objects: list) -> None:
    ingress = find(objects, "NetworkPolicy", "postgres-allow")["spec"]["ingress"]
    peers = [
        peer
        for rule in ingress
        if {"port": 5432, "protocol": "TCP"} in rule["ports"]
        for peer in rule["from"]
    ]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "model-monitor"}},
    } in peers
    egress = find(objects, "NetworkPolicy", "model-monitor-allow")["spec"]["egress"]
    to_postgres = [rule for rule in egress if rule["ports"] == [{"port": 5432, "protocol": "TCP"}]]
    assert to_postgres == [
        {
            "ports": [{"port": 5432, "protocol": "TCP"}],
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mlflow"}},
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "postgres"}},
                }
            ],
        }
    ]


def test_sqlite_keeps_the_store_on_the_pvc_and_makes_no_database(render_program: Any) -> None:
    result = render_program(config_for(monitoring={"monitor": {"store": "sqlite"}}))
    objects = kubernetes_objects(result.resources, redact=False)
    assert ("Secret", "model-monitor-store") not in names(objects)
    assert ("Secret", "postgres-init") not in names(objects)
    [container] = find(objects, "StatefulSet", "model-monitor")["spec"]["template"]["spec"]["containers"]
    assert STORE_URL_ENV not in env_of(container)
    assert "MONITOR_DATABASE_PASSWORD" not in find(objects, "Secret", "postgres")["stringData"]


def test_an_external_mlflow_database_needs_the_monitors_own_url(render_program: Any) -> None:
    external = {"database": {"mode": "external"}}
    url = "postgresql+psycopg2://u:p@db.example.com:5432/mlflow"
    keys = ("mlops:secret_seed", "mlops:mlflow_database_url")
    with pytest.raises(
        ConfigError, match=r"mlops:monitor_database_url: missing secret .*pulumi config set --secret"
    ):
        render_program(config_for(mlflow=external, mlflow_database_url=url), keys)
    with pytest.raises(ConfigError, match=r"mlops:monitor_database_url: .*must be a PostgreSQL URL"):
        render_program(
            config_for(
                mlflow=external, mlflow_database_url=url, monitor_database_url="mysql://m:p@db/monitor"
            ),
            (*keys, "mlops:monitor_database_url"),
        )
    monitor_url = "postgresql://monitor:pw@db.example.com:6432/monitor"
    result = render_program(
        config_for(mlflow=external, mlflow_database_url=url, monitor_database_url=monitor_url),
        (*keys, "mlops:monitor_database_url"),
    )
    objects = kubernetes_objects(result.resources, redact=False)
    assert find(objects, "Secret", "model-monitor-store")["stringData"][STORE_URL_ENV] == monitor_url
    egress = find(objects, "NetworkPolicy", "model-monitor-allow")["spec"]["egress"]
    assert {
        "ports": [{"port": 6432, "protocol": "TCP"}],
        "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}],
    } in egress


# -- the scripts, on a real PostgreSQL ---------------------------------------------------------------


def _run_as_owner(server: PostgresServer, script: str, env: dict[str, str]) -> None:
    """Run ``script`` with sh as the data directory's owner, with the server's binaries on PATH."""
    variables = {"PATH": f"{BIN_DIR}:/usr/bin:/bin", "PGDATA": str(server.data_dir), **env}
    command = ["env", *(f"{key}={value}" for key, value in variables.items()), "sh", "-c", script]
    if server.run_as is not None:
        command = ["runuser", "-u", server.run_as, "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def _monitor_owns_its_database(server: PostgresServer, password: str) -> None:
    assert server.can_login("monitor", password, "monitor")
    assert (
        server.scalar(
            "SELECT rolsuper OR rolcreatedb OR rolcreaterole FROM pg_roles WHERE rolname = 'monitor'"
        )
        == "f"
    )
    assert server.scalar("SELECT datdba::regrole FROM pg_database WHERE datname = 'monitor'") == "monitor"


def test_an_existing_volume_gets_the_monitor_role_and_database_in_the_init_container(
    postgres_factory: Any,
) -> None:
    server = postgres_factory(superuser="mlflow")  # as the image made it: POSTGRES_USER=mlflow, no monitor
    server.create_database("mlflow")
    script = POSTGRES_SET_PASSWORD + POSTGRES_SET_MONITOR_PASSWORD
    env = {"POSTGRES_USER": "mlflow", "POSTGRES_PASSWORD": server.password}
    for password in ("first-pa'ss", "first-pa'ss", "rotated-pass"):  # created, unchanged, rotated
        server.stop()
        _run_as_owner(server, script, {**env, "MONITOR_DATABASE_PASSWORD": password})
        server.restart()
        _monitor_owns_its_database(server, password)
    assert not server.can_login("monitor", "first-pa'ss", "monitor")
    assert server.can_login("mlflow", server.password, "mlflow")  # the superuser's own line still ran
    # The store opens there as the monitor: its role may create its schema in its own database.
    url = server.url("monitor", "monitor", "rotated-pass")
    with monitor_store.open_store(url) as store:
        assert store.schema_version() == monitor_store.SCHEMA_VERSION


def test_a_fresh_volume_gets_them_from_the_images_init_script(postgres_factory: Any) -> None:
    server = postgres_factory(superuser="mlflow")
    # What the entrypoint gives a sourced script (upstream_facts: postgres.image.*): the socket, PGPASSWORD.
    env = {
        "POSTGRES_USER": "mlflow",
        "PGPASSWORD": server.password,
        "PGHOST": str(server.socket_dir),
        "PGPORT": str(server.port),
        "MONITOR_DATABASE_PASSWORD": "fresh-pa'ss$x",
    }
    variables = {**os.environ, **env, "PATH": f"{BIN_DIR}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-c", "set -Eeo pipefail\n. /dev/stdin"],
        input=POSTGRES_INIT_MONITOR,
        env=variables,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    _monitor_owns_its_database(server, "fresh-pa'ss$x")
