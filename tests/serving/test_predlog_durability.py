"""Write -> sync -> acknowledge, proven on the C calls: every acknowledged prediction was fsync'd first.

A process runs under ``synctrace.c`` (LD_PRELOAD): the order of its ``write``, ``fdatasync``/``fsync`` and
socket sends is recorded below Python. For every acknowledged request the check finds the write that put its
line in a segment, the send that carried its answer, and requires a successful sync of that segment that
began after the write and ended before the answer. SIGKILL keeps the page cache, so a kill test cannot tell
whether that sync exists; this can, and the negative tests show it: the same check fails when the sync is
removed from ``predlog.py`` or moved after the answer (the code is patched in a copy the child imports).

Two tiers: the log's ``append`` used as the serving runtime uses it (threads appending at once, each answering
on a socket once ``append`` returns), fast; and the real serving process (MLServer with our runtime, HTTP
clients at concurrency 8), slow. The shim sleeps 2 ms inside each sync so concurrent appends queue behind it
and group commit is certainly exercised (the check requires one sync to cover several records).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import httpx
import pytest

import platform_components
from platform_components.serving.predlog import read_records

from .synctrace import Verdict, build_shim, check_durability, read_trace, shim_environment

PACKAGE = Path(platform_components.__file__).resolve().parent
SYNC_DELAY_US = 2000
# The serving process's requests pass inference before they append: a 2 ms sync is often over before the next
# append arrives on a busy machine (CI once saw 96 syncs of one record each), so its arm holds each sync longer.
SERVING_SYNC_DELAY_US = 20000

# The one line that makes a group durable, in PredictionLog._flush (asserted to match exactly once, so a
# refactor of _flush fails these tests loudly instead of silently patching nothing).
FLUSH_SYNC = (
    "            self._write_all(chunk)\n"
    "            assert self._descriptor is not None\n"
    "            os.fdatasync(self._descriptor)\n"
)
PATCHES = {
    "intact": None,
    "sync removed": "            self._write_all(chunk)\n            assert self._descriptor is not None\n",
    # The sync still happens, 50 ms later on a timer thread: after append returned and the answer left.
    "sync after the answer": (
        "            self._write_all(chunk)\n"
        "            assert self._descriptor is not None\n"
        "            threading.Timer(0.05, os.fdatasync, (self._descriptor,)).start()\n"
    ),
}

CHILD = """
import socket, sys, threading, time
import platform_components.serving.predlog as predlog
directory, threads, per_thread = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print(predlog.__file__, flush=True)
answers, peer = socket.socketpair()
def drain():
    while peer.recv(65536):
        pass
threading.Thread(target=drain, daemon=True).start()
log = predlog.PredictionLog(directory)
barrier = threading.Barrier(threads)
def worker(number):
    barrier.wait()
    for index in range(per_thread):
        request_id = f"req-{number:03d}-{index:05d}"
        record = predlog.PredictionRecord(request_id, "m", "1", time.time(), {"x": [index]}, {"y": [0.5]})
        if log.append(record):
            answers.sendall(f"ACK {request_id}\\n".encode())  # the answer leaves only after append returned
workers = [threading.Thread(target=worker, args=(number,)) for number in range(threads)]
for thread in workers:
    thread.start()
for thread in workers:
    thread.join()
time.sleep(0.2)  # let a deferred sync (the negative test) run before the process exits
"""


def package_copy(root: Path, variant: str) -> Path:
    """A folder to put first on PYTHONPATH: the package as it is, or a copy with ``predlog.py`` patched."""
    replacement = PATCHES[variant]
    if replacement is None:
        return PACKAGE.parent
    target = root / "patched"
    shutil.copytree(PACKAGE, target / "platform_components", ignore=shutil.ignore_patterns("__pycache__"))
    source = target / "platform_components" / "serving" / "predlog.py"
    text = source.read_text()
    assert text.count(FLUSH_SYNC) == 1, "PredictionLog._flush changed: update FLUSH_SYNC in this test"
    source.write_text(text.replace(FLUSH_SYNC, replacement))
    return target


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_shim(tmp_path_factory.mktemp("shim"))


def appends_under_trace(
    shim: Path, root: Path, variant: str, threads: int = 8, per_thread: int = 25
) -> Verdict:
    """Run the child appender on ``variant`` of the code under the shim; the verdict on its trace."""
    log_dir = root / "log"
    trace = root / "trace"
    path_entry = package_copy(root, variant)
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(path_entry),
        **shim_environment(shim, trace, match=str(log_dir), sync_delay_us=SYNC_DELAY_US),
    }
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, str(log_dir), str(threads), str(per_thread)],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,  # `python -c` puts the working directory first on sys.path
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(str(path_entry)), completed.stdout  # the variant's code ran
    (events,) = read_trace(trace).values()
    acknowledged = {record.request_id for record in read_records(log_dir)}
    assert len(acknowledged) == threads * per_thread
    return check_durability(events, acknowledged)


def test_every_acknowledged_append_was_synced_after_its_write_and_before_its_answer(shim, tmp_path):
    verdict = appends_under_trace(shim, tmp_path, "intact")
    assert verdict.durable, verdict.explain()
    assert verdict.largest_group >= 2, verdict.explain()  # group commit: one sync covered several appends


def test_the_check_fails_when_the_sync_is_removed(shim, tmp_path):
    verdict = appends_under_trace(shim, tmp_path, "sync removed")
    assert not verdict.durable
    assert len(verdict.uncovered) == verdict.acknowledged, verdict.explain()


def test_the_check_fails_when_the_sync_moves_after_the_answer(shim, tmp_path):
    verdict = appends_under_trace(shim, tmp_path, "sync after the answer")
    assert not verdict.durable
    # An earlier group's late sync may happen to cover a later record in time (3 in 4 stayed uncovered in the
    # runs seen); the check must still catch a good share of them.
    assert len(verdict.uncovered) >= verdict.acknowledged // 4, verdict.explain()


def test_the_shim_sees_sqlite_wal_full_commit_as_one_fdatasync_of_the_wal(shim, tmp_path):
    """The upstream fact the benchmark's SQLite arm rests on, checked on the installed libsqlite3."""
    from upstream_facts import fact

    script = (
        "import os, socket, sqlite3, sys\n"
        "connection = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "connection.execute('PRAGMA journal_mode=WAL')\n"
        "connection.execute('PRAGMA synchronous=FULL')\n"
        "connection.execute('CREATE TABLE t (request_id TEXT PRIMARY KEY, record TEXT)')\n"
        "answers, peer = socket.socketpair()\n"
        "for number in range(6):\n"
        "    connection.execute('INSERT INTO t VALUES (?, ?)', (f'sq-{number}', 'x'))\n"
        "    answers.send(f'ACK sq-{number}'.encode())\n"
    )
    trace = tmp_path / "trace"
    database = tmp_path / "log.db"
    env = {"PATH": "/usr/bin:/bin", **shim_environment(shim, trace, match=str(database))}
    completed = subprocess.run(
        [sys.executable, "-c", script, str(database)], capture_output=True, text=True, env=env, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    (events,) = read_trace(trace).values()
    wal = str(database) + fact("sqlite.wal.file_suffix")
    sends = [event for event in events if event.is_socket]
    assert len(sends) == 6
    # From the second commit on (the first also writes and syncs the new WAL's header): one commit per window.
    for previous, send in zip(sends, sends[1:], strict=False):
        commit = [event for event in events if previous.end < event.begin < send.begin and event.path == wal]
        syncs = [event.call for event in commit if event.call in ("fsync", "fdatasync")]
        assert syncs == [fact("sqlite.wal_full.commit_sync_call")], commit
        writes = [event for event in commit if event.call not in ("fsync", "fdatasync")]
        assert writes and max(event.end for event in writes) < next(
            event.begin for event in commit if event.call == fact("sqlite.wal_full.commit_sync_call")
        )


# -- the real serving process ------------------------------------------------------------------------


def _serve_and_trace(shim, tmp_path, monkeypatch, mlflow_server, registered_model, variant) -> Verdict:
    from processes import stop_process_tree

    from .conftest import MODEL_NAME, make_frame, start_serving

    root = tmp_path / variant.replace(" ", "-")
    root.mkdir()
    trace = root / "trace"
    for name, value in shim_environment(
        shim, trace, match=str(root / "predictions"), sync_delay_us=SERVING_SYNC_DELAY_US
    ).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PYTHONPATH", str(package_copy(root, variant)))
    server = start_serving(root, mlflow_server.tracking_uri, registered_model["1"], "1", enable_metrics=False)
    frame = make_frame(1, seed=5).drop(columns=["default"])
    inputs = [
        {"name": "income", "datatype": "FP64", "shape": [1], "data": frame["income"].tolist()},
        {"name": "age", "datatype": "INT64", "shape": [1], "data": frame["age"].tolist()},
        {"name": "debt_ratio", "datatype": "FP64", "shape": [1], "data": frame["debt_ratio"].tolist()},
        {"name": "purpose", "datatype": "BYTES", "shape": [1], "data": frame["purpose"].tolist()},
    ]
    acknowledged: set[str] = set()
    lock = threading.Lock()
    failures: list[str] = []

    def client() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for _ in range(12):
                request_id = str(uuid.uuid4())
                response = http.post(
                    f"/v2/models/{MODEL_NAME}/infer", json={"id": request_id, "inputs": inputs}
                )
                if response.status_code == 200 and response.json()["id"] == request_id:
                    with lock:
                        acknowledged.add(request_id)
                else:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    try:
        clients = [threading.Thread(target=client) for _ in range(8)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
    finally:
        stop_process_tree(server.process)
    assert not failures, failures[:3]
    processes = read_trace(trace)
    # The process that wrote the segments is the server (the shim also traces its children, if any).
    (events,) = [events for events in processes.values() if any("segment-" in event.path for event in events)]
    return check_durability(events, acknowledged)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_serving_process_answers_only_after_the_sync_and_the_check_catches_both_faults(
    shim, tmp_path, monkeypatch, mlflow_server, registered_model
):
    intact = _serve_and_trace(shim, tmp_path, monkeypatch, mlflow_server, registered_model, "intact")
    assert intact.durable, intact.explain()
    assert intact.largest_group >= 2, intact.explain()
    removed = _serve_and_trace(shim, tmp_path, monkeypatch, mlflow_server, registered_model, "sync removed")
    assert len(removed.uncovered) == removed.acknowledged > 0, removed.explain()
    moved = _serve_and_trace(
        shim, tmp_path, monkeypatch, mlflow_server, registered_model, "sync after the answer"
    )
    # Answers take longer to leave a real server, so an earlier group's late sync often lands inside a later
    # record's window and covers it in time; the records it does not cover fail the check.
    assert not moved.durable
    assert moved.uncovered, moved.explain()
