"""Prediction-log append cost: durable appends vs the bare disk sync, and group commit under concurrency.

Arms, one-row records (~300 bytes), same filesystem, interleaved rounds (>= 5), medians:

- ``raw write+fdatasync``: ``os.write`` + ``os.fdatasync`` per line, no index, no JSON (the floor);
- ``PredictionLog 1 thread``: ``append`` (JSON, idempotency index, durable) from one thread;
- ``PredictionLog N threads``: the same with N threads appending at once (group commit shares syncs).

Run: ``.venv/bin/python bench/bench_predlog.py [--repetitions 5] [--records 400] [--threads 8] [--dir PATH]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _record(request_id: str):
    from platform_components.monitoring.predlog import PredictionRecord

    return PredictionRecord(
        request_id=request_id,
        model="credit-default",
        version="3",
        timestamp=time.time(),
        inputs={"income": [42000.0], "age": [35], "debt_ratio": [0.3], "purpose": ["car"]},
        outputs={"output-1": [[0.49, 0.51]]},
    )


def raw_sync(directory: Path, records: int) -> float:
    """Seconds per record for write + fdatasync of an equally long line."""
    line = (_record("x" * 36).to_json() + "\n").encode()
    descriptor = os.open(directory / "raw.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    started = time.perf_counter()
    for _ in range(records):
        os.write(descriptor, line)
        os.fdatasync(descriptor)
    elapsed = time.perf_counter() - started
    os.close(descriptor)
    return elapsed / records


def log_appends(directory: Path, records: int, threads: int, prefix: str) -> float:
    """Seconds per record (wall clock / records) for ``threads`` threads sharing one log."""
    from platform_components.monitoring.predlog import PredictionLog

    with PredictionLog(directory) as log:
        per_thread = records // threads
        barrier = threading.Barrier(threads + 1)

        def worker(number: int) -> None:
            barrier.wait()
            for index in range(per_thread):
                log.append(_record(f"{prefix}-{number}-{index}"))

        workers = [threading.Thread(target=worker, args=(number,)) for number in range(threads)]
        for worker_thread in workers:
            worker_thread.start()
        barrier.wait()
        started = time.perf_counter()
        for worker_thread in workers:
            worker_thread.join()
        return (time.perf_counter() - started) / (per_thread * threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--records", type=int, default=400)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--dir", type=Path, default=None, help="filesystem to measure (default: a temp dir)")
    arguments = parser.parse_args()
    if arguments.repetitions < 5:
        parser.error("--repetitions must be >= 5")
    root = Path(tempfile.mkdtemp(prefix="bench-predlog-", dir=arguments.dir))
    arms = ["raw write+fdatasync", "PredictionLog 1 thread", f"PredictionLog {arguments.threads} threads"]
    results: dict[str, list[float]] = {arm: [] for arm in arms}
    for repetition in range(arguments.repetitions):
        raw_dir = root / f"raw-{repetition}"
        raw_dir.mkdir()
        results[arms[0]].append(raw_sync(raw_dir, arguments.records))
        results[arms[1]].append(log_appends(root / f"one-{repetition}", arguments.records, 1, "one"))
        results[arms[2]].append(
            log_appends(root / f"many-{repetition}", arguments.records, arguments.threads, "many")
        )
    floor = statistics.median(results[arms[0]])
    print(f"\nprediction-log appends, {arguments.records} records x {arguments.repetitions} rounds in {root}")
    print(f"{'arm':<28}{'us/record':>11}{'records/s':>11}{'vs raw':>8}")
    for arm in arms:
        per_record = statistics.median(results[arm])
        print(f"{arm:<28}{per_record * 1e6:11.1f}{1 / per_record:11.0f}{per_record / floor:8.2f}")


if __name__ == "__main__":
    main()
