"""A real MLflow server, run with the rendered arguments, answers a scrape as Prometheus sends it.

Prometheus scrapes a pod at its address: Host is ``<pod IP>:5000``, with the ServiceMonitor's basic-auth
credentials. The server here runs the Deployment's command and arguments (only the listen address, the worker
count, the stores and the exporter's folder are local) and its basic-auth file from the same builder.
"""

# ruff: noqa: F811

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from processes import find_free_port, stop_process_tree, wait_healthy
from pulumi_fixtures import dev_render  # noqa: F401
from upstream_facts import fact

from platform_components.kubernetes.mlflow import MLFLOW_PORT, basic_auth_ini
from platform_components.render import kubernetes_objects

pytestmark = pytest.mark.slow

ADMIN_PASSWORD = "scrape-test-admin-%-password-0123"  # a '%' as a seed-derived or URL-quoted value may have


def rendered_server(dev_render: Any) -> tuple[list[str], dict[str, str]]:
    objects = kubernetes_objects(dev_render.resources, redact=False)
    (deployment,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "mlflow"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    return [*container["command"], *container["args"]], env


def localised(argv: list[str], port: int, tmp: Path) -> list[str]:
    """The rendered argv with only what must be local replaced (listen address, stores, exporter folder)."""
    local = {
        "--host": "127.0.0.1",
        "--port": str(port),
        "--workers": "1",
        "--artifacts-destination": (tmp / "artifacts").as_uri(),
        "--expose-prometheus": str(tmp / "prometheus"),
    }
    out = list(argv)
    for flag, value in local.items():
        out[out.index(flag) + 1] = value
    return out


@pytest.fixture(scope="module")
def mlflow_server(dev_render: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    tmp = tmp_path_factory.mktemp("mlflow-scrape")
    argv, rendered_env = rendered_server(dev_render)
    port = find_free_port()
    ini = tmp / "basic_auth.ini"
    ini.write_text(
        basic_auth_ini(
            default_permission="NO_PERMISSIONS",
            database_uri=f"sqlite:///{tmp / 'auth.db'}",
            admin_username="admin",
            admin_password=ADMIN_PASSWORD,
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        {k: v for k, v in rendered_env.items() if k.startswith("MLFLOW_") and k != "MLFLOW_S3_ENDPOINT_URL"}
    )
    env.update(
        {
            "MLFLOW_AUTH_CONFIG_PATH": str(ini),
            "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp / 'mlflow.db'}",
            "MLFLOW_FLASK_SERVER_SECRET_KEY": "scrape-test-flask-secret",
            "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "HOME": str(tmp),
        }
    )
    (tmp / "prometheus").mkdir()
    command = localised(argv, port, tmp)
    assert command[:2] == ["mlflow", "server"]
    command = [str(Path(sys.executable).with_name("mlflow")), *command[1:]]
    log = tmp / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", process, log, seconds=120)
        yield port, log.read_text
    finally:
        stop_process_tree(process)


def scrape(port: int, host: str, auth: tuple[str, str] | None) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"Host": host}, auth=auth, timeout=30)


def test_prometheus_scrape_of_a_pod_gets_metrics(mlflow_server: tuple[int, Any]) -> None:
    port, _ = mlflow_server
    response = scrape(port, f"10.244.3.17:{MLFLOW_PORT}", ("admin", ADMIN_PASSWORD))
    assert response.status_code == 200, response.text[:500]
    assert "mlflow_" in response.text


def test_a_scrape_without_credentials_or_from_a_foreign_host_is_refused(
    mlflow_server: tuple[int, Any],
) -> None:
    port, _ = mlflow_server
    assert "/metrics" not in fact("mlflow.auth.metrics_protected")
    assert scrape(port, f"10.244.3.17:{MLFLOW_PORT}", None).status_code == 401
    assert scrape(port, f"10.244.3.17:{MLFLOW_PORT}", ("admin", "wrong")).status_code == 401
    assert scrape(port, "evil.example.com:5000", ("admin", ADMIN_PASSWORD)).status_code == 403
    assert scrape(port, "10.244.3.17:8080", ("admin", ADMIN_PASSWORD)).status_code == 403
