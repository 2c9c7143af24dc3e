"""Supervision on real processes: detached start, health wait, log tail, whole-tree stop, PID reuse."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner
from processes import find_free_port

from platform_components.cli import main as mlops
from platform_components.errors import ConfigError, LocalTargetError, ServingError
from platform_components.local import LocalPlatform
from platform_components.local.supervisor import (
    ProcessRecord,
    ProcessSpec,
    check_ports_free,
    live_process,
    log_tail,
    process_tree,
    read_records,
    start_process,
    stop_process,
    wait_healthy,
)
from platform_components.settings import LocalSettings

HELPER = Path(__file__).with_name("helper_server.py")


def _helper_spec(port: int, *flags: str) -> ProcessSpec:
    return ProcessSpec(
        name="helper",
        argv=[sys.executable, str(HELPER), str(port), *flags],
        health_url=f"http://127.0.0.1:{port}/health",
        ports={port: "mlflow_port"},
    )


def _helper_pids(log_path: Path, timeout: float = 10.0) -> list[int]:
    """The worker and orphan PIDs the helper printed to its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log_path.read_text()
        if "serving on" in text:
            return [int(pid) for pid in re.findall(r"^(?:worker|orphan) (\d+)$", text, re.MULTILINE)]
        time.sleep(0.05)
    raise AssertionError(f"helper did not start:\n{log_tail(log_path)}")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_stop_process_leaves_no_child_and_no_reparented_orphan(tmp_path: Path) -> None:
    port = find_free_port()
    record = start_process(_helper_spec(port, "--orphan"), tmp_path / "logs")
    try:
        wait_healthy([record], timeout=20)
        helpers = _helper_pids(Path(record.log_path))
        assert len(helpers) == 2
        orphan = psutil.Process(helpers[1])
        assert orphan.ppid() != record.pid  # re-parented: not reachable through children()
        stopped = stop_process(record, grace_seconds=5)
    finally:
        stop_process(record, grace_seconds=1)
    assert set(stopped) >= {record.pid, *helpers}
    for pid in [record.pid, *helpers]:
        assert _gone(pid), f"PID {pid} survived stop_process"


def test_a_reused_pid_is_never_signalled(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        real_start = psutil.Process(sleeper.pid).create_time()
        # The record says the PID belonged to a process started earlier: the kernel reused the number.
        stale = ProcessRecord(
            name="mlflow",
            pid=sleeper.pid,
            create_time=real_start - 100.0,
            ports=[],
            health_url="http://127.0.0.1:1/health",
            log_path=str(tmp_path / "x.log"),
            argv=[],
            started_at=real_start - 100.0,
        )
        assert live_process(stale) is None
        assert stop_process(stale, grace_seconds=1) == []
        assert sleeper.poll() is None, "an unrelated process with a reused PID was killed"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_start_that_never_gets_healthy_times_out_with_the_log_tail(tmp_path: Path) -> None:
    port = find_free_port()
    record = start_process(_helper_spec(port, "--never-healthy"), tmp_path / "logs")
    try:
        with pytest.raises(LocalTargetError, match=r"(?s)helper not healthy after 1 s.*MLOPS_STARTUP"):
            wait_healthy([record], timeout=1.0)
    finally:
        stop_process(record, grace_seconds=2)
    assert live_process(record) is None


def test_a_process_that_exits_at_start_reports_its_last_30_log_lines(tmp_path: Path) -> None:
    script = "import sys\nfor i in range(100): print(f'line {i}')\nsys.exit('boom: bad config')"
    spec = ProcessSpec(name="broken", argv=[sys.executable, "-c", script], health_url="http://127.0.0.1:1/")
    record = start_process(spec, tmp_path / "logs")
    with pytest.raises(LocalTargetError, match=r"broken exited during start-up") as caught:
        wait_healthy([record], timeout=30)
    message = str(caught.value)
    assert "boom: bad config" in message and "line 99" in message
    assert "line 70" not in message  # only the tail, not the whole log


def test_a_taken_port_is_reported_with_its_owner_and_the_fix() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        spec = _helper_spec(port)
        with pytest.raises(LocalTargetError) as caught:
            check_ports_free("127.0.0.1", [spec])
    expected = (
        f"port {port} (helper) is in use by PID {psutil.Process().pid} "
        f"({psutil.Process().name()}) — set MLOPS_MLFLOW_PORT or --mlflow-port"
    )
    assert str(caught.value) == expected


def test_up_reports_a_taken_port_before_starting_anything(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        settings = LocalSettings(state_dir=tmp_path / "state", mlflow_port=port)
        with pytest.raises(LocalTargetError, match=rf"port {port} \(mlflow\) is in use by PID \d+"):
            LocalPlatform(settings, components=["mlflow"]).up()
    assert read_records(tmp_path / "state" / "processes.json") == {}
    assert not (tmp_path / "state" / "logs" / "mlflow.log").exists()


def test_two_processes_on_one_port_is_a_config_error(tmp_path: Path) -> None:
    settings = LocalSettings(state_dir=tmp_path, mlflow_port=9000, monitor_port=9000)
    with pytest.raises(ConfigError, match="MLOPS_MONITOR_PORT=9000 is also MLOPS_MLFLOW_PORT"):
        LocalPlatform(settings)


def test_failing_mlflow_start_shows_its_log_tail_and_leaves_nothing_running(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "mlflow").mkdir(parents=True)
    (state / "mlflow" / "mlflow.db").write_bytes(b"this is not an SQLite database" * 100)
    settings = LocalSettings(state_dir=state, mlflow_port=find_free_port(), startup_timeout_seconds=90)
    with pytest.raises(LocalTargetError, match=r"(?s)mlflow exited during start-up.*mlflow\.log.*database"):
        LocalPlatform(settings, components=["mlflow"]).up()
    assert read_records(state / "processes.json") == {}
    for process in psutil.process_iter(["cmdline"]):
        assert str(state) not in " ".join(process.info["cmdline"] or []), f"left running: {process}"


@pytest.mark.parametrize("command", ["up", "down", "status"])
def test_without_local_the_commands_point_to_pulumi_and_exit_2(command: str) -> None:
    result = CliRunner().invoke(mlops, [command])
    assert result.exit_code == 2
    assert "pulumi up" in result.output and "--local" in result.output


@pytest.mark.parametrize("command", ["up", "down", "status", "deploy"])
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(mlops, [command, "--help"])
    assert result.exit_code == 0
    assert "--state-dir" in result.output and "--json" in result.output


def test_status_of_a_never_started_state_dir_shows_everything_stopped(tmp_path: Path) -> None:
    result = CliRunner().invoke(mlops, ["status", "--local", "--state-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert [process["name"] for process in status["processes"]] == ["mlflow", "serving", "monitor"]
    assert not any(process["running"] for process in status["processes"])
    assert status["healthy"] is False


@pytest.mark.slow
def test_mlflow_job_helpers_orphaned_by_a_crashed_server_are_found_and_stopped(tmp_path: Path) -> None:
    """MLflow 3.17 with job execution spawns huey consumers that outlive a killed server (toolchain.md)."""
    port = find_free_port()
    argv = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp_path}/m.db",
            "--artifacts-destination", str(tmp_path / "artifacts"), "--host", "127.0.0.1",
            "--port", str(port), "--workers", "1"]  # fmt: skip
    spec = ProcessSpec(
        name="mlflow",
        argv=argv,
        health_url=f"http://127.0.0.1:{port}/health",
        env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "true"},
    )
    record = start_process(spec, tmp_path / "logs")
    try:
        wait_healthy([record], timeout=120)
        deadline = time.monotonic() + 30
        while len(process_tree(record)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)  # the job runner starts its consumers after the server is up
        helpers = [process for process in process_tree(record) if process.pid != record.pid]
        psutil.Process(record.pid).kill()  # a crash: the helpers are re-parented to init
        psutil.Process(record.pid).wait(10)
        orphans = [process for process in helpers if not _gone(process.pid) and process.ppid() != record.pid]
        assert orphans, "expected MLflow's helpers to outlive the killed server"
        stopped = stop_process(record, grace_seconds=5)
    finally:
        stop_process(record, grace_seconds=1)
    assert {process.pid for process in orphans} <= set(stopped)
    assert [process.pid for process in helpers if not _gone(process.pid)] == []


def test_deploy_without_a_running_platform_says_how_to_start_it(tmp_path: Path) -> None:
    settings = LocalSettings(state_dir=tmp_path / "state", mlflow_port=find_free_port())
    with pytest.raises(
        LocalTargetError, match=r"mlflow is not running in .*; start the platform with `mlops up"
    ):
        LocalPlatform(settings).deploy("credit-default", "champion")


@pytest.mark.parametrize(
    ("model", "alias", "expected"),
    [
        ("../etc", "champion", r"model name '\.\./etc' is not usable"),
        ("credit-default", "", r"alias '' is not a valid alias"),
    ],
)
def test_deploy_rejects_unusable_names_before_anything_else(
    tmp_path: Path, model: str, alias: str, expected: str
) -> None:
    with pytest.raises(ServingError, match=expected):
        LocalPlatform(LocalSettings(state_dir=tmp_path)).deploy(model, alias)


def test_deploying_a_version_without_a_running_platform_says_how_to_start_it(tmp_path: Path) -> None:
    settings = LocalSettings(state_dir=tmp_path / "state", mlflow_port=find_free_port())
    with pytest.raises(LocalTargetError, match=r"mlflow is not running in .*`mlops up --local"):
        LocalPlatform(settings).deploy_version("credit-default", "3")


@pytest.mark.parametrize(
    ("model", "version", "expected"),
    [
        ("../etc", "3", r"model name '\.\./etc' is not usable"),
        (
            "credit-default",
            "latest",
            r"version 'latest' of 'credit-default' is not a registered model version",
        ),
        ("credit-default", "0", r"version '0' .* e\.g\. '3'"),
        ("credit-default", "", r"version '' .* e\.g\. '3'"),
    ],
)
def test_deploy_version_rejects_unusable_names_and_versions_before_anything_else(
    tmp_path: Path, model: str, version: str, expected: str
) -> None:
    with pytest.raises(ServingError, match=expected):
        LocalPlatform(LocalSettings(state_dir=tmp_path)).deploy_version(model, version)
