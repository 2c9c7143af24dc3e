"""Process supervision for the local target: start detached, record, probe, stop the whole tree.

Every process runs in its own session (``start_new_session``), so its session id equals its PID. That
lets :func:`stop_process` find helpers that MLflow or MLServer spawned even after they were re-parented
(a killed ``mlflow server`` leaves ``huey_consumer`` orphans behind; toolchain.md). A record keeps the
PID *and* its start time: a PID that the kernel has since reused for another program is never signalled.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from platform_components.errors import LocalTargetError

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 30
# psutil derives create_time from boot time + clock ticks; two reads of one process agree to well under
# this, while a reused PID starts at least a scheduler tick later.
_CREATE_TIME_TOLERANCE_SECONDS = 0.05
_PROBE_TIMEOUT_SECONDS = 2.0

ProgressCallback = Callable[[str], None]


@dataclass(frozen=True)
class ProcessSpec:
    """What to start.

    Attributes:
        name: Short name (``mlflow``, ``serving``, ``monitor``); also the log file name.
        argv: The command line.
        health_url: An HTTP URL that answers 200 once the process is ready.
        ports: The ports it binds, as ``{port: setting}`` where ``setting`` names the field that sets it
            (``mlflow_port``); used to report a taken port with the fix.
        env: Extra environment variables on top of the current environment.
        cwd: Working directory (the state dir, so stray relative files land there).
    """

    name: str
    argv: Sequence[str]
    health_url: str
    ports: Mapping[int, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None


@dataclass(frozen=True)
class ProcessRecord:
    """A started process as recorded in ``<state>/processes.json``."""

    name: str
    pid: int
    create_time: float
    ports: list[int]
    health_url: str
    log_path: str
    argv: list[str]
    started_at: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> ProcessRecord:
        return cls(
            name=str(data["name"]),
            pid=int(data["pid"]),
            create_time=float(data["create_time"]),
            ports=[int(port) for port in data.get("ports", [])],
            health_url=str(data["health_url"]),
            log_path=str(data["log_path"]),
            argv=[str(part) for part in data.get("argv", [])],
            started_at=float(data.get("started_at", data["create_time"])),
        )


# --- records ------------------------------------------------------------------------------------------


def read_records(path: Path) -> dict[str, ProcessRecord]:
    """The records in ``processes.json``; an absent file means nothing was started.

    Raises:
        LocalTargetError: the file is not valid JSON (names the file and the fix).
    """
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
        return {name: ProcessRecord.from_dict(item) for name, item in data.get("processes", {}).items()}
    except (ValueError, KeyError, TypeError) as error:
        raise LocalTargetError(
            f"{path} is not a valid process record ({error}); stop any leftover processes by hand "
            f"and delete the file"
        ) from None


def write_records(path: Path, records: Mapping[str, ProcessRecord]) -> None:
    """Write ``processes.json`` atomically (a crash never leaves half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"processes": {name: record.to_dict() for name, record in records.items()}}
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)


# --- liveness -----------------------------------------------------------------------------------------


def _is_alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def live_process(record: ProcessRecord) -> psutil.Process | None:
    """The recorded process if it still runs and is the same one (PID and start time match)."""
    try:
        process = psutil.Process(record.pid)
        same = abs(process.create_time() - record.create_time) <= _CREATE_TIME_TOLERANCE_SECONDS
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return process if same and _is_alive(process) else None


def process_tree(record: ProcessRecord) -> list[psutil.Process]:
    """The recorded process, its descendants, and every process left in its session.

    Session members are matched by session id and a start time not before the leader's, so orphans that
    were re-parented to init are found, and an unrelated session that reuses the number is not.
    """
    found: dict[int, psutil.Process] = {}
    try:
        holder = psutil.Process(record.pid)
        same = abs(holder.create_time() - record.create_time) <= _CREATE_TIME_TOLERANCE_SECONDS
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        holder, same = None, False
    if holder is not None and not same:
        # Linux does not hand out a PID while it is still the id of a live session, so a different
        # process holding the leader's PID means our session is empty and the number was reused.
        return []
    leader = holder if same and holder is not None and _is_alive(holder) else None
    if leader is not None:
        found[leader.pid] = leader
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in leader.children(recursive=True):
                found[child.pid] = child
    for process in psutil.process_iter(["pid", "create_time"]):
        if process.pid in found or process.pid == os.getpid():
            continue
        try:
            if (
                os.getsid(process.pid) == record.pid
                and process.info["create_time"] + _CREATE_TIME_TOLERANCE_SECONDS >= record.create_time
                and _is_alive(process)
            ):
                found[process.pid] = process
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return list(found.values())


# --- ports --------------------------------------------------------------------------------------------


def port_is_free(host: str, port: int) -> bool:
    """True when ``host:port`` can be bound now (what the server will try to do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR like the servers themselves, so a port in TIME_WAIT does not count as taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def port_owner(port: int) -> str:
    """``PID n (name)`` of the process listening on ``port``, or a note when it cannot be seen."""
    try:
        connections = psutil.net_connections(kind="inet")
    except psutil.AccessDenied:
        connections = []
    for connection in connections:
        if connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port:
            if connection.pid is None:
                break
            try:
                name = psutil.Process(connection.pid).name()
            except psutil.Error:
                name = "?"
            return f"PID {connection.pid} ({name})"
    return "another process (PID not visible to this user)"


def check_ports_free(host: str, specs: Sequence[ProcessSpec]) -> None:
    """Fail before anything starts when a port is taken, naming the owner and the setting that moves it.

    Raises:
        LocalTargetError: one line per taken port.
    """
    problems = []
    for spec in specs:
        for port, setting in spec.ports.items():
            if not port_is_free(host, port):
                problems.append(
                    f"port {port} ({spec.name}) is in use by {port_owner(port)} — set "
                    f"MLOPS_{setting.upper()} or --{setting.replace('_', '-')}"
                )
    if problems:
        raise LocalTargetError("\n".join(problems))


# --- logs ---------------------------------------------------------------------------------------------


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file (reads only the end of a large file)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


# --- start, probe, stop -------------------------------------------------------------------------------


def start_process(spec: ProcessSpec, log_dir: Path) -> ProcessRecord:
    """Start ``spec`` detached in its own session with stdout and stderr appended to its log.

    Raises:
        LocalTargetError: the executable could not be started.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{spec.name}.log"
    environment = {**os.environ, **spec.env}
    with log_path.open("ab") as log:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log.write(f"\n=== {stamp} mlops starting {spec.name}: {' '.join(spec.argv)}\n".encode())
        log.flush()
        try:
            child = subprocess.Popen(  # noqa: S603 - argv is built by us, never from a shell string
                list(spec.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=spec.cwd,
                env=environment,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as error:
            raise LocalTargetError(f"could not start {spec.name} ({spec.argv[0]}): {error}") from None
    # The Popen object is dropped on purpose: the process outlives this one (`mlops up` exits). Stopping
    # reaps it when we are still its parent (psutil's wait on a child uses waitpid).
    create_time = psutil.Process(child.pid).create_time()
    logger.info("started %s as PID %d, log %s", spec.name, child.pid, log_path)
    return ProcessRecord(
        name=spec.name,
        pid=child.pid,
        create_time=create_time,
        ports=sorted(spec.ports),
        health_url=spec.health_url,
        log_path=str(log_path),
        argv=list(spec.argv),
        started_at=time.time(),
    )


def probe(url: str, timeout: float = _PROBE_TIMEOUT_SECONDS) -> bool:
    """True when ``url`` answers HTTP 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback http only
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_healthy(
    records: Sequence[ProcessRecord],
    timeout: float,
    *,
    progress: ProgressCallback | None = None,
    progress_every: float = 5.0,
    poll_interval: float = 0.25,
) -> None:
    """Wait until every record's health URL answers 200.

    Raises:
        LocalTargetError: a process exited, or the timeout passed; the message holds the tail of that
            process's log.
    """
    pending = {record.name: record for record in records}
    started = time.monotonic()
    next_progress = started + progress_every
    while pending:
        for name, record in list(pending.items()):
            if probe(record.health_url):
                del pending[name]
                if progress:
                    progress(f"{name} is healthy ({time.monotonic() - started:.1f} s)")
                continue
            if live_process(record) is None:
                raise LocalTargetError(
                    f"{name} exited during start-up (PID {record.pid}); last lines of {record.log_path}:\n"
                    f"{log_tail(Path(record.log_path))}"
                )
        if not pending:
            break
        now = time.monotonic()
        if now - started > timeout:
            names = ", ".join(sorted(pending))
            tails = "\n".join(
                f"--- last lines of {record.log_path}:\n{log_tail(Path(record.log_path))}"
                for record in pending.values()
            )
            raise LocalTargetError(
                f"{names} not healthy after {timeout:.0f} s (probed "
                f"{', '.join(r.health_url for r in pending.values())}); raise MLOPS_STARTUP_TIMEOUT_SECONDS "
                f"if the machine is slow\n{tails}"
            )
        if progress and now >= next_progress:
            progress(f"waiting for {', '.join(sorted(pending))} ... {now - started:.0f} s")
            next_progress = now + progress_every
        time.sleep(poll_interval)


def stop_process(record: ProcessRecord, *, grace_seconds: float = 10.0) -> list[int]:
    """Stop one process, its descendants and its session; see :func:`stop_processes`."""
    return stop_processes([record], grace_seconds=grace_seconds)[record.name]


def stop_processes(records: Sequence[ProcessRecord], *, grace_seconds: float = 10.0) -> dict[str, list[int]]:
    """Stop every record's tree at once: SIGTERM, wait up to ``grace_seconds``, SIGKILL what is left.

    All trees are signalled together, so ``down`` takes as long as the slowest process, not the sum.

    Returns:
        ``{name: signalled PIDs}`` (an empty list: it was not running).

    Raises:
        LocalTargetError: a process survived SIGKILL (names the PIDs).
    """
    trees = {record.name: process_tree(record) for record in records}
    signalled = {name: {process.pid for process in tree} for name, tree in trees.items()}
    everything = [process for tree in trees.values() for process in tree]
    for name, tree in trees.items():
        if tree:
            logger.info("stopping %s: PIDs %s", name, sorted(signalled[name]))
    for process in everything:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.terminate()
    _, alive = psutil.wait_procs(everything, timeout=grace_seconds) if everything else ([], [])
    # Helpers may have been spawned between the scan and SIGTERM: look again before the hard stop.
    leftovers = {process.pid: process for process in alive}
    for record in records:
        for process in process_tree(record):
            leftovers.setdefault(process.pid, process)
            signalled[record.name].add(process.pid)
    if leftovers:
        logger.warning("SIGKILL for PIDs %s after %.0f s", sorted(leftovers), grace_seconds)
        for process in leftovers.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(list(leftovers.values()), timeout=5.0)
    survivors = {
        record.name: [process.pid for process in process_tree(record) if _is_alive(process)]
        for record in records
    }
    survivors = {name: pids for name, pids in survivors.items() if pids}
    if survivors:
        raise LocalTargetError(f"processes survived SIGKILL: {survivors}; stop them by hand")
    return {name: sorted(pids) for name, pids in signalled.items()}
