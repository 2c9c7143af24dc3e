"""Helpers for tests that run real processes (servers on free ports), imported by name: ``from processes``.

Not in conftest.py: a ``from conftest import`` resolves to whichever conftest.py pytest put first on sys.path
(tests/engine/ has its own), so shared helpers live in a module of their own.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil


def find_free_port() -> int:
    """A port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop_process_tree(process: subprocess.Popen | int, timeout: float = 10.0) -> None:
    """Terminate a process and every descendant, by PID; kill what does not exit in time.

    Servers under test spawn children (MLflow's uvicorn and huey workers, MLServer's workers): stopping
    only the parent would leave them running and holding ports.
    """
    pid = process if isinstance(process, int) else process.pid
    try:
        parent = psutil.Process(pid)
        family = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    for member in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.terminate()
    _, alive = psutil.wait_procs(family, timeout=timeout)
    for member in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.kill()
    psutil.wait_procs(alive, timeout=timeout)
    if not isinstance(process, int):
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


def wait_healthy(url: str, process: subprocess.Popen, log: Path, seconds: float = 90) -> None:
    """Poll ``url`` until it answers 200; fail with the log's tail if the process exits or time runs out."""
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, log.read_text()[-3000:]
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        assert time.monotonic() < deadline, f"{url} not healthy:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


@contextlib.contextmanager
def mlflow_server(root: Path, seconds: float = 90) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    """A real ``mlflow server`` on 127.0.0.1 (SQLite and served artifacts under ``root``), one worker.

    Yields (tracking URI, process, log path); stops the server and its workers on exit. Job execution is off:
    it starts extra huey workers (~1.7 GB, a slower start) that no test needs.
    """
    import os
    import sys

    port = find_free_port()
    log = root / "mlflow-server.log"
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    command += ["--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"]
    command += ["--serve-artifacts", "--artifacts-destination", str(root / "artifacts")]
    environment = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=environment, cwd=root)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{uri}/health", process, log, seconds)
        yield uri, process, log
    finally:
        stop_process_tree(process)
