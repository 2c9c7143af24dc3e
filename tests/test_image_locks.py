"""Each image's lock, installed into a fresh virtual environment, runs the command its rendered pod runs.

No Docker engine is needed: what an image adds to its base is the lock (and, for ours, this package), so a
missing driver or extra fails here. The command, arguments, environment and probes are read from the render of
the dev stack, never copied. Only what a cluster provides differently is mapped: each volume mount becomes a
temporary folder, the container port a free local port, the Secrets' values the test's own, and cluster DNS
names the local services. The image build itself (base image, COPY, USER) is not exercised here.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from platform_components import images
from platform_components.render import kubernetes_objects, read_stack_config, run_program

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def uv() -> str | None:
    return shutil.which("uv") or next(
        (str(path) for path in [Path(sys.executable).with_name("uv")] if path.exists()), None
    )


def fresh_venv(folder: Path, lock: Path, *, with_package: bool) -> Path:
    """A new virtual environment holding exactly ``lock`` (and this package, --no-deps, as in the images)."""
    tool = uv()
    python = folder / "bin" / "python"
    if tool:
        subprocess.run([tool, "venv", "--quiet", "--python", sys.executable, str(folder)], check=True)
        install = [tool, "pip", "install", "--quiet", "--python", str(python), "--no-deps"]
    else:
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        install = [str(python), "-m", "pip", "install", "--quiet", "--no-deps"]
    subprocess.run([*install, "-r", str(lock)], check=True, timeout=900)
    if with_package:
        # What the Dockerfiles COPY, and only that (building in the checkout would leave build/ behind).
        source = folder.parent / f"{folder.name}-source"
        source.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, source / name)
        shutil.copytree(
            REPO / "platform_components",
            source / "platform_components",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        subprocess.run([*install, str(source)], check=True, timeout=300)
    # The Dockerfiles end with `pip check`: the lock must be complete and consistent.
    check = [tool, "pip", "check", "--python", str(python)] if tool else [str(python), "-m", "pip", "check"]
    checked = subprocess.run(check, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return folder


@pytest.fixture(scope="module")
def dev_objects() -> list[dict[str, Any]]:
    config, secret_keys = read_stack_config("dev", REPO)
    return kubernetes_objects(run_program(config, secret_keys, stack="dev").resources, redact=False)


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"no {kind} {name} in the render")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Pod:
    """One rendered container, mapped onto this machine."""

    argv: list[str]
    env: dict[str, str]
    port: int
    probe_path: str
    files: dict[str, Path]
    probe_headers: dict[str, str]


def local_pod(
    objects: list[dict[str, Any]],
    kind: str,
    name: str,
    venv: Path,
    root: Path,
    *,
    secrets: Mapping[tuple[str, str], str],
    dns: Mapping[str, str] | None = None,
) -> Pod:
    """The workload's first container as a local process: its own command and args, env and probe path.

    Args:
        secrets: (Secret name, key) -> value, for env from Secrets and Secret volumes.
        dns: cluster address -> local address, replaced in every value (env, Secrets, files).
    """

    def resolve(value: str) -> str:
        for cluster, here in (dns or {}).items():
            value = value.replace(cluster, here)
        return value

    workload = find(objects, kind, name)
    spec = workload["spec"]["template"]["spec"]
    container = spec["containers"][0]
    (container_port,) = [p["containerPort"] for p in container["ports"]]
    port = free_port()
    mounts = {m["mountPath"]: root / m["name"] for m in container.get("volumeMounts", [])}
    for folder in mounts.values():
        folder.mkdir(parents=True, exist_ok=True)
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount["name"], {})
        if "configMap" in volume:
            data = find(objects, "ConfigMap", volume["configMap"]["name"]).get("data", {})
        elif "secret" in volume:
            secret_name = volume["secret"]["secretName"]
            data = {key: value for (owner, key), value in secrets.items() if owner == secret_name}
        else:
            data = {}
        for key, value in data.items():
            (root / mount["name"] / key).write_text(resolve(value))

    def local(value: str) -> str:
        for path, folder in sorted(mounts.items(), key=lambda item: -len(item[0])):
            if value == path or value.startswith(path + "/"):
                return str(folder) + value[len(path) :]
        return value

    argv = [local(str(part)) for part in container.get("command", []) + container.get("args", [])]
    for index, part in enumerate(argv):
        if part == str(container_port) and index and argv[index - 1] == "--port":
            argv[index] = str(port)
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8"}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = resolve(local(item["value"]))
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = resolve(secrets[(ref["name"], ref["key"])])
    probe = container["readinessProbe"]["httpGet"]
    assert probe["port"] in ("http", container_port)
    headers = {header["name"]: header["value"] for header in probe.get("httpHeaders", [])}
    return Pod(argv, env, port, probe["path"], mounts, headers)


@pytest.fixture
def run_pod() -> Iterator[Any]:
    started: list[subprocess.Popen[bytes]] = []

    def run(pod: Pod, log: Path, *, timeout: float = 120.0) -> httpx.Response:
        executable = shutil.which(pod.argv[0], path=pod.env["PATH"])
        assert executable, f"{pod.argv[0]} is not in the lock's environment"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [executable, *pod.argv[1:]], env=pod.env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent
            )
        started.append(process)
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{pod.port}{pod.probe_path}"
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(
                    f"{pod.argv[:3]} exited {process.returncode}:\n{log.read_text()[-4000:]}"
                )
            try:
                response = httpx.get(url, headers=pod.probe_headers, timeout=2.0)
                if response.status_code == 200:
                    return response
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"{url} did not answer 200 within {timeout}s:\n{log.read_text()[-4000:]}")

    yield run
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def platform_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lock = REPO / images.our_image("monitor").lock
    return fresh_venv(tmp_path_factory.mktemp("venv") / "platform", lock, with_package=True)


def test_monitor_lock_runs_the_statefulsets_command_and_answers_health(
    dev_objects: list[dict[str, Any]], platform_venv: Path, tmp_path: Path, run_pod: Any
) -> None:
    """The monitor's store is the bundled PostgreSQL's `monitor` database: the lock reaches it (psycopg2)."""
    import pg

    reason = pg.postgres_unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = pg.start_postgres(tmp_path / "pg")
    try:
        mlflow_namespace = find(dev_objects, "StatefulSet", "postgres")["metadata"]["namespace"]
        monitor_namespace = find(dev_objects, "StatefulSet", "model-monitor")["metadata"]["namespace"]
        secrets = {
            **string_data(dev_objects, monitor_namespace),
            ("model-monitor-mlflow", "MLFLOW_TRACKING_USERNAME"): "admin",
            ("model-monitor-mlflow", "MLFLOW_TRACKING_PASSWORD"): "not-used-until-a-check-runs",
        }
        # What the postgres image's init script makes on an empty volume (kubernetes/mlflow.py), with the
        # password of the rendered Secret.
        password = string_data(dev_objects, mlflow_namespace)[("postgres", "MONITOR_DATABASE_PASSWORD")]
        server.create_role("monitor", password)
        server.create_database("monitor", owner="monitor")
        dns = {f"postgres.{mlflow_namespace}.svc.cluster.local:5432": f"{server.host}:{server.port}"}
        pod = local_pod(
            dev_objects, "StatefulSet", "model-monitor", platform_venv, tmp_path, secrets=secrets, dns=dns
        )
        assert pod.argv[:3] == ["python", "-m", "platform_components.loop.service"]
        # The deployer's in-cluster client reads the pod's ServiceAccount token, which only a cluster mounts
        # (the service refuses to start without it); the engine tier runs the deployer against a real API
        # server.
        at = pod.argv.index("--serving-namespace")
        del pod.argv[at : at + 2]
        response = run_pod(pod, tmp_path / "monitor.log")
        assert response.json() == {"status": "ok"}
        # The store's schema was made in the real database, by the monitor's own role.
        assert (
            server.scalar("SELECT tableowner FROM pg_tables WHERE tablename = 'leases'", "monitor")
            == "monitor"
        )
    finally:
        server.cleanup()
    # The package came from the lock's environment, not from this checkout's interpreter.
    assert (
        str(platform_venv)
        in subprocess.run(
            [
                str(platform_venv / "bin" / "python"),
                "-c",
                "import platform_components, sys; print(sys.prefix)",
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,
        ).stdout
    )
    assert os.path.isdir(pod.files["/var/lib/mlops"])


@pytest.fixture(scope="module")
def mlflow_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lock = REPO / images.our_image("mlflow").lock
    return fresh_venv(tmp_path_factory.mktemp("venv") / "mlflow", lock, with_package=False)


def string_data(objects: list[dict[str, Any]], namespace: str) -> dict[tuple[str, str], str]:
    return {
        (obj["metadata"]["name"], key): value
        for obj in objects
        if obj["kind"] == "Secret" and obj["metadata"]["namespace"] == namespace
        for key, value in (obj.get("stringData") or {}).items()
    }


def admin_username(secrets: Mapping[tuple[str, str], str]) -> str:
    for line in secrets[("mlflow-server", "basic_auth.ini")].splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "admin_username":
            return value.strip()
    raise AssertionError("basic_auth.ini names no admin_username")


def test_mlflow_lock_runs_the_deployments_command_on_postgresql_with_basic_auth_and_metrics(
    dev_objects: list[dict[str, Any]], mlflow_venv: Path, tmp_path: Path, run_pod: Any
) -> None:
    """MLflow's bare image would exit here: no psycopg2, Flask-WTF or prometheus-flask-exporter."""
    pg = pytest.importorskip("pg", reason="needs tests/pg.py (the PostgreSQL fixture of the mlflowdb branch)")
    reason = pg.postgres_unavailable_reason()
    if reason:
        pytest.skip(reason)
    server = pg.start_postgres(tmp_path / "pg")
    try:
        deployment = find(dev_objects, "Deployment", "mlflow")
        namespace = deployment["metadata"]["namespace"]
        secrets = string_data(dev_objects, namespace)
        # What the postgres image's entrypoint does on an empty volume, with the rendered user, database and
        # password (the StatefulSet's env and its Secret).
        database = find(dev_objects, "StatefulSet", "postgres")["spec"]["template"]["spec"]["containers"][0]
        env = {item["name"]: item for item in database["env"]}
        ref = env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]
        user, name = env["POSTGRES_USER"]["value"], env["POSTGRES_DB"]["value"]
        server.create_role(user, secrets[(ref["name"], ref["key"])])
        server.create_database(name, owner=user)
        service = find(dev_objects, "Service", "postgres")
        (port,) = [entry["port"] for entry in service["spec"]["ports"]]
        dns = {f"postgres.{namespace}.svc.cluster.local:{port}": f"{server.host}:{server.port}"}

        pod = local_pod(
            dev_objects, "Deployment", "mlflow", mlflow_venv, tmp_path / "pod", secrets=secrets, dns=dns
        )
        assert pod.argv[:2] == ["mlflow", "server"] and "basic-auth" in pod.argv
        assert pod.env["MLFLOW_BACKEND_STORE_URI"].startswith(f"postgresql+psycopg2://{user}:")
        run_pod(pod, tmp_path / "mlflow.log", timeout=180.0)

        base = f"http://127.0.0.1:{pod.port}"
        admin = (admin_username(secrets), secrets[("mlflow-server", "admin-password")])
        search = f"{base}/api/2.0/mlflow/experiments/search?max_results=5"
        assert httpx.get(search, headers=pod.probe_headers, timeout=10).status_code == 401
        answer = httpx.get(search, headers=pod.probe_headers, auth=admin, timeout=10)
        assert answer.status_code == 200, answer.text
        # The tracking and auth tables live in the real database, not in a local SQLite file.
        assert int(server.scalar("SELECT count(*) FROM experiments", name)) >= 1
        assert int(server.scalar("SELECT count(*) FROM users", name)) == 1
        metrics = httpx.get(f"{base}/metrics", headers=pod.probe_headers, auth=admin, timeout=10)
        assert metrics.status_code == 200 and "mlflow_http_request" in metrics.text, metrics.text[:500]
    finally:
        server.cleanup()
