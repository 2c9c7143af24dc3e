"""Prediction log: our group-committed segments vs SQLite (WAL, ``synchronous=FULL``), side by side.

The question (issue 11, item 1): which store should the serving process append its predictions to before
it answers? Both are durable when the append returns (ours: ``fdatasync`` of the segment; SQLite in WAL mode
with ``synchronous=FULL``: ``fdatasync`` of the ``-wal`` file at every commit), both are idempotent on the
request id. We keep the simpler one that meets the serving goal.

Serving goal (from ``bench_serving.py``, which holds (on - off - sync) / off <= 0.05 at a ~6 ms request): what
the log adds beyond one bare ``write`` + ``fdatasync`` is at most 0.3 ms at p50 from one thread; and from N
threads at once (the serving runtime appends from a thread pool, ``asyncio.to_thread``, so requests in flight
append together) it sustains at least 0.9x the bare single-thread sync rate (0.9: N Python threads share one
GIL): a log that queues one sync per record behind a lock makes the disk the server's bottleneck under
load. p99 is reported as a guard-rail.

Arms, one-row records (~300 bytes), same filesystem, >= 5 rounds; within a round every arm is open and they
take turns of ``--chunk`` records (the order rotating), so I/O bursts from other processes hit all alike:

- ``raw write+fdatasync``: ``os.write`` + ``os.fdatasync`` per line, one thread, no index, no JSON (floor);
- ``ours``: ``PredictionLog.append`` from 1 and from N threads (group commit shares one sync);
- ``sqlite``: ``INSERT OR IGNORE`` of the same JSON in its own transaction (autocommit), from 1 thread and
  from N threads, each thread with its own connection (``busy_timeout``), as a thread pool would use it;
- ``sqlite shared``: N threads sharing one connection behind a lock (no busy waits, one commit at a time).

Per arm: p50 / p99 of each ``append`` call (pooled over the rounds), throughput (records / wall time, median
over rounds), and the ratio to our log's. Then the monitor's side: reading and decoding every record after a
saved position (``read_records_from`` vs ``SELECT ... WHERE seq > ?``), records per second; and appends at
concurrency N while another process tails the log every 50 ms, as the local monitor does.

Run: ``.venv/bin/python bench/bench_predlog.py [--repetitions 5] [--records 400] [--chunk 80] [--threads 8]
[--dir PATH]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _record(request_id: str):
    from platform_components.serving.predlog import PredictionRecord

    return PredictionRecord(
        request_id=request_id,
        model="credit-default",
        version="3",
        timestamp=time.time(),
        inputs={"income": [42000.0], "age": [35], "debt_ratio": [0.3], "purpose": ["car"]},
        outputs={"output-1": [[0.49, 0.51]]},
    )


class SqliteLog:
    """The SQLite candidate: one table, the request id unique, one transaction per append.

    Args:
        path: the database file.
        shared: one connection for every thread behind a lock; else one connection per thread.
    """

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS predictions ("
        "seq INTEGER PRIMARY KEY, request_id TEXT NOT NULL UNIQUE, record TEXT NOT NULL)"
    )

    def __init__(self, path: Path, *, shared: bool = False) -> None:
        self.path = path
        self.shared = shared
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        connection = self._connect()
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(self.SCHEMA)
        self._shared_connection = connection

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        connection.execute("PRAGMA synchronous=FULL")  # per connection: WAL is synced at every commit
        self._connections.append(connection)
        return connection

    def _connection(self) -> sqlite3.Connection:
        if self.shared:
            return self._shared_connection
        connection = getattr(self._local, "connection", None)
        if connection is None:
            with self._lock:
                connection = self._local.connection = self._connect()
        return connection

    def append(self, record) -> bool:
        line = record.to_json()
        connection = self._connection()
        if self.shared:
            with self._lock:
                cursor = connection.execute(
                    "INSERT OR IGNORE INTO predictions (request_id, record) VALUES (?, ?)",
                    (record.request_id, line),
                )
        else:
            cursor = connection.execute(
                "INSERT OR IGNORE INTO predictions (request_id, record) VALUES (?, ?)",
                (record.request_id, line),
            )
        return cursor.rowcount == 1

    def close(self) -> None:
        for connection in self._connections:
            connection.close()


def sqlite_read_from(path: Path, position: int = 0, batch: int = 500):
    """The monitor's reader for the SQLite candidate: records after ``seq`` ``position``, in batches."""
    from platform_components.serving.predlog import PredictionRecord

    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        while True:
            rows = connection.execute(
                "SELECT seq, record FROM predictions WHERE seq > ? ORDER BY seq LIMIT ?", (position, batch)
            ).fetchall()
            if not rows:
                return
            for sequence, line in rows:
                yield PredictionRecord.from_dict(json.loads(line)), sequence
            position = rows[-1][0]
    finally:
        connection.close()


# -- arms ---------------------------------------------------------------------------------------------


class RawSync:
    """The floor: ``write`` + ``fdatasync`` of an equally long line from one thread."""

    threads = 1

    def __init__(self, where: Path) -> None:
        where.mkdir()
        self._line = (_record("x" * 36).to_json() + "\n").encode()
        self._descriptor = os.open(where / "raw.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(self, record) -> bool:
        os.write(self._descriptor, self._line)
        os.fdatasync(self._descriptor)
        return True

    def close(self) -> None:
        os.close(self._descriptor)


class Ours:
    """Our log, appended to from ``threads`` threads."""

    def __init__(self, where: Path, threads: int) -> None:
        from platform_components.serving.predlog import PredictionLog

        self.threads = threads
        self._log = PredictionLog(where)
        self.append = self._log.append

    def close(self) -> None:
        self._log.close()


class Sqlite:
    """The SQLite candidate, appended to from ``threads`` threads (own or one shared connection)."""

    def __init__(self, where: Path, threads: int, *, shared: bool = False) -> None:
        self.threads = threads
        self._log = SqliteLog(where.with_suffix(".db"), shared=shared)
        self.append = self._log.append

    def close(self) -> None:
        self._log.close()


class Tailed:
    """An arm while another process tails its log every 50 ms, as the local monitor does."""

    def __init__(self, kind: str, inner, location: Path) -> None:
        self.threads = inner.threads
        self.append = inner.append
        self._inner = inner
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._reader = context.Process(target=_tail, args=(kind, str(location), self._stop))
        self._reader.start()
        time.sleep(1.0)  # let the reader import and start polling

    def close(self) -> None:
        self._stop.set()
        self._reader.join(timeout=30)
        self._inner.close()


def run_chunk(arm, records: int, prefix: str) -> tuple[list[float], float]:
    """Per-call seconds and wall seconds for ``arm.threads`` threads appending ``records`` in total."""
    threads = arm.threads
    per_thread = records // threads
    barrier = threading.Barrier(threads + 1)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    prepared = [
        [_record(f"{prefix}-{number}-{index}") for index in range(per_thread)] for number in range(threads)
    ]

    def worker(number: int) -> None:
        mine = latencies[number]
        barrier.wait()
        for record in prepared[number]:
            began = time.perf_counter()
            assert arm.append(record)
            mine.append(time.perf_counter() - began)

    workers = [threading.Thread(target=worker, args=(number,)) for number in range(threads)]
    for worker_thread in workers:
        worker_thread.start()
    barrier.wait()
    started = time.perf_counter()
    for worker_thread in workers:
        worker_thread.join()
    elapsed = time.perf_counter() - started
    return [value for chunk in latencies for value in chunk], elapsed


# -- the monitor's side -------------------------------------------------------------------------------


def _tail(kind: str, location: str, stop) -> None:
    """A monitor-like reader in another process: read from the saved position every 50 ms."""
    from platform_components.serving.predlog import read_records_from

    position: tuple = (0, 0) if kind == "ours" else (0,)
    while not stop.is_set():
        if kind == "ours":
            for _, sequence, offset in read_records_from(Path(location), *position):
                position = (sequence, offset)
        elif Path(location).exists():
            try:
                for _, sequence in sqlite_read_from(Path(location), position[0]):
                    position = (sequence,)
            except sqlite3.OperationalError:
                pass  # the writer has not created the table yet: try again at the next poll
        stop.wait(0.05)


def read_throughput(root: Path, records: int) -> dict[str, float]:
    """Records per second the monitor's reader decodes after position 0 (the log fully written first)."""
    from platform_components.serving.predlog import PredictionLog, read_records_from

    our_dir = root / "read-ours"
    with PredictionLog(our_dir) as log:
        for index in range(records):
            log._pending.append((f"r-{index}", (_record(f"r-{index}").to_json() + "\n").encode(), index + 1))
            log._pending_ids[f"r-{index}"] = index + 1
            log._enqueued = index + 1
        with log._flush_lock:
            log._flush()  # one write and one sync: setting the log up is not what is measured
    database = root / "read-sqlite.db"
    sqlite_log = SqliteLog(database, shared=True)
    connection = sqlite_log._shared_connection
    connection.execute("BEGIN")
    connection.executemany(
        "INSERT INTO predictions (request_id, record) VALUES (?, ?)",
        [(f"r-{index}", _record(f"r-{index}").to_json()) for index in range(records)],
    )
    connection.execute("COMMIT")
    sqlite_log.close()
    results = {}
    for name, reader in (
        ("ours", lambda: sum(1 for _ in read_records_from(our_dir, 0, 0))),
        ("sqlite", lambda: sum(1 for _ in sqlite_read_from(database, 0))),
    ):
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            assert reader() == records
            timings.append(time.perf_counter() - started)
        results[name] = records / statistics.median(timings)
    return results


# -- report -------------------------------------------------------------------------------------------


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--records", type=int, default=400, help="records per arm and round")
    parser.add_argument("--chunk", type=int, default=80, help="records per arm before the next arm's turn")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--read-records", type=int, default=20000)
    parser.add_argument("--dir", type=Path, default=None, help="filesystem to measure (default: a temp dir)")
    arguments = parser.parse_args()
    if arguments.repetitions < 5:
        parser.error("--repetitions must be >= 5")
    if arguments.chunk % arguments.threads or arguments.records % arguments.chunk:
        parser.error("--chunk must be a multiple of --threads and divide --records")
    root = Path(tempfile.mkdtemp(prefix="bench-predlog-", dir=arguments.dir))
    threads = arguments.threads
    floor_arm = "raw write+fdatasync"
    arms: dict[str, Callable[[Path], object]] = {
        floor_arm: RawSync,
        "ours 1 thread": lambda where: Ours(where, 1),
        "sqlite 1 thread": lambda where: Sqlite(where, 1),
        f"ours {threads} threads": lambda where: Ours(where, threads),
        f"sqlite {threads} threads": lambda where: Sqlite(where, threads),
        f"sqlite shared {threads} threads": lambda where: Sqlite(where, threads, shared=True),
        f"ours {threads} threads + tail": lambda where: Tailed("ours", Ours(where, threads), where),
        f"sqlite {threads} threads + tail": lambda where: Tailed(
            "sqlite", Sqlite(where, threads), where.with_suffix(".db")
        ),
    }
    latencies: dict[str, list[float]] = {arm: [] for arm in arms}
    throughputs: dict[str, list[float]] = {arm: [] for arm in arms}
    names = list(arms)
    for repetition in range(arguments.repetitions):
        # Every arm open at once and run in turns of --chunk records (the order rotating), so a burst of
        # I/O from another process on this shared disk lands on every arm alike.
        opened = {
            name: arms[name](root / f"arm{number}-round{repetition}") for number, name in enumerate(names)
        }
        elapsed = dict.fromkeys(names, 0.0)
        counts = dict.fromkeys(names, 0)
        try:
            for turn in range(arguments.records // arguments.chunk):
                for name in names[turn % len(names) :] + names[: turn % len(names)]:
                    calls, seconds = run_chunk(opened[name], arguments.chunk, f"r{repetition}-t{turn}")
                    latencies[name].extend(calls)
                    elapsed[name] += seconds
                    counts[name] += len(calls)
        finally:
            for arm in opened.values():
                arm.close()
        for name in names:
            throughputs[name].append(counts[name] / elapsed[name])
    reads = read_throughput(root, arguments.read_records)

    def p50(arm: str) -> float:
        return _percentile(latencies[arm], 0.50)

    floor = p50(floor_arm)
    floor_rate = statistics.median(throughputs[floor_arm])
    print(
        f"\nprediction-log appends: {arguments.records} records x {arguments.repetitions} rounds per arm in "
        f"turns of {arguments.chunk}, {os.cpu_count()} cores, SQLite {sqlite3.sqlite_version}, in {root}"
    )
    header = f"{'arm':<32}{'p50 ms':>8}{'p99 ms':>8}{'p50-floor':>10}{'rec/s':>8}{'vs ours':>8}"
    print(header)
    print("-" * len(header))
    for arm in arms:
        rate = statistics.median(throughputs[arm])
        counterpart = arm.replace("sqlite shared", "ours").replace("sqlite", "ours")
        versus = (
            f"{rate / statistics.median(throughputs[counterpart]):8.2f}"
            if arm.startswith("sqlite")
            else f"{'':8}"
        )
        print(
            f"{arm:<32}{p50(arm) * 1e3:8.3f}{_percentile(latencies[arm], 0.99) * 1e3:8.2f}"
            f"{(p50(arm) - floor) * 1e3:10.3f}{rate:8.0f}{versus}"
        )
    print(f"\nmonitor reader, {arguments.read_records} records from position 0 (median of 5):")
    for name, rate in reads.items():
        print(f"  {name:<8}{rate:10.0f} records/s")
    print(f"  sqlite / ours: {reads['sqlite'] / reads['ours']:.2f}")
    print(
        f"\ngoal: p50 - floor <= 0.300 ms at 1 thread; rec/s at {threads} threads >= {0.9 * floor_rate:.0f} "
        "(0.9x the floor's)"
    )
    for name in ("ours", "sqlite"):
        one, many = f"{name} 1 thread", f"{name} {threads} threads"
        met = p50(one) - floor <= 0.0003 and statistics.median(throughputs[many]) >= 0.9 * floor_rate
        print(f"  {name:<8}{'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
