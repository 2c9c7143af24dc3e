"""The prediction feed into one monitor replica: predictions per second into SQLite and into PostgreSQL.

The goal (issue 10, "Speed"): one monitor replica ingests at least 5,000 predictions per second into
PostgreSQL at the shipper's default batch size, each batch committed before the 2xx.

What runs, per backend:

- one monitor service process (``python -m platform_components.monitoring.service``, what a replica's
  container serves; its store from ``$MLOPS_MONITOR_STORE_URL``), on loopback;
- ``--shippers`` prediction logs (one per model, as the serving pods of several models keep them), each
  shipped by the real ``PredictionShipper.ship_once`` (``serving/shipper.py``: reads the log after its
  position, posts the lines spliced into ``{"records": [...]}`` to ``POST /v2/predictions``, persists its
  position with fsync + rename after the 2xx) at its default ``batch_records`` (500), one thread each;
- PostgreSQL 15 from Debian's packages on loopback (``tests/pg.py``) with ``fsync`` and
  ``synchronous_commit`` on: the route's COMMIT returns once the WAL is flushed, so every acknowledged
  batch is on disk. SQLite is the local default: WAL with ``synchronous=NORMAL`` (durable across a process
  crash, not a power cut; the store's setting).

A prediction is one row: the records are one-row requests (the serving path's common case), so records,
rows and predictions are the same count here. The rate is predictions acknowledged / wall time from the
first post to the last answer, best of ``--repetitions`` runs (fresh database and logs each); every run then
checks the store holds exactly the predictions sent (none lost, none doubled) and that a replayed batch adds
none. The logs are written in the prediction log's own format before the clock starts (appending is the
serving side's cost: ``bench_predlog.py``).

Then a breakdown from this process, no HTTP: per 500-record batch, the route's parse and validation
(``parse_predictions``) and the store's ``ingest`` per backend, in milliseconds: where a batch's time goes.

Run: ``.venv/bin/python bench/bench_ingest.py [--json] [--records 20000] [--shippers 1 4]
[--repetitions 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

GOAL = 5_000.0  # predictions per second into PostgreSQL, one replica


def _records(model: str, count: int, offset: int):
    from platform_components.serving.predlog import PredictionRecord

    now = time.time()
    for index in range(count):
        yield PredictionRecord(
            request_id=f"{model}-{offset + index}",
            model=model,
            version="3",
            timestamp=now + index * 1e-3,
            inputs={
                "income": [42_000.0 + index],
                "age": [35 + index % 40],
                "debt_ratio": [0.3],
                "purpose": ["car" if index % 2 else "house"],
            },
            outputs={"predict_proba": [[0.49, 0.51]]},
        )


def write_log(directory: Path, model: str, count: int) -> None:
    """``count`` one-row records in the prediction log's format (``segment-<seq>.jsonl``, one line each)."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = "".join(record.to_json() + "\n" for record in _records(model, count, 0))
    (directory / "segment-000000000000.jsonl").write_text(lines)


@contextmanager
def monitor_service(state_dir: Path, store_url: str) -> Iterator[str]:
    from processes import find_free_port, stop_process_tree, wait_healthy

    from platform_components.monitoring.service import service_command

    port = find_free_port()
    argv = service_command(state_dir=state_dir, host="127.0.0.1", port=port)
    log = state_dir / "service.log"
    with log.open("wb") as output:
        env = {**os.environ, "MLOPS_MONITOR_STORE_URL": store_url, "PYTHONPATH": str(ROOT)}
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(f"{base}/health", process, log, seconds=90)
            yield base
        finally:
            stop_process_tree(process)


def run_feed(base_url: str, directories: list[Path]) -> tuple[float, int, int]:
    """Ship every log to the monitor, one shipper thread per log; (seconds, records acknowledged, batch)."""
    from platform_components.serving.shipper import PredictionShipper

    shippers = [PredictionShipper(directory, base_url) for directory in directories]
    errors: list[BaseException] = []

    def drain(shipper: PredictionShipper) -> None:
        try:
            while shipper.ship_once():
                pass
        except BaseException as error:  # noqa: BLE001 - reported after the join
            errors.append(error)

    threads = [threading.Thread(target=drain, args=(shipper,)) for shipper in shippers]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for shipper in shippers:
        shipper.stop()
    if errors:
        raise errors[0]
    return elapsed, sum(shipper.shipped_records for shipper in shippers), shippers[0].batch_records


def check_store(store_url: str, expected: int) -> None:
    """Every acknowledged prediction stored once."""
    from platform_components.monitoring.store import open_store

    with open_store(store_url) as store:
        stored = int(store._query("SELECT COUNT(*) FROM predictions")[0][0])
        distinct = int(store._query("SELECT COUNT(DISTINCT request_id) FROM predictions")[0][0])
    if stored != expected or distinct != expected:
        raise SystemExit(f"{store_url}: {stored} rows ({distinct} distinct) stored, {expected} sent")


def replay_adds_nothing(base_url: str, directory: Path) -> None:
    import httpx

    lines = (directory / "segment-000000000000.jsonl").read_bytes().splitlines()[:500]
    body = b'{"records":[' + b",".join(lines) + b"]}"
    answer = httpx.post(f"{base_url}/v2/predictions", content=body, timeout=60).json()
    if answer != {"received": len(lines), "new_rows": 0}:
        raise SystemExit(f"a replayed batch was stored again: {answer}")


def measure(backend: str, shippers: int, records: int, pg, work: Path) -> dict[str, float]:
    """One run: a fresh store and fresh logs, the feed timed, the store checked."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"{backend}-{shippers}-", dir=work))
    if backend == "sqlite":
        store_url = f"sqlite:///{run_dir / 'monitor.sqlite'}"
    else:
        name = run_dir.name.replace("-", "_")
        pg.create_database(name)
        store_url = pg.url(name)
    per_log = records // shippers
    directories = [run_dir / "predictions" / f"model-{index}" for index in range(shippers)]
    for index, directory in enumerate(directories):
        write_log(directory, f"model-{index}", per_log)
    with monitor_service(run_dir, store_url) as base_url:
        elapsed, acknowledged, batch = run_feed(base_url, directories)
        check_store(store_url, per_log * shippers)
        replay_adds_nothing(base_url, directories[0])
    if acknowledged != per_log * shippers:
        raise SystemExit(f"{acknowledged} acknowledged of {per_log * shippers}")
    return {"seconds": elapsed, "predictions": acknowledged, "rate": acknowledged / elapsed, "batch": batch}


def breakdown(pg, work: Path, batches: int = 10) -> dict[str, dict[str, float]]:
    """Milliseconds per 500-record batch in this process: the route's parsing, each backend's ingest."""
    from platform_components.monitoring.service import parse_predictions
    from platform_components.monitoring.store import open_store

    bodies = []
    for index in range(batches):
        lines = [record.to_json().encode() for record in _records("m", 500, index * 500)]
        bodies.append(b'{"records":[' + b",".join(lines) + b"]}")
    timings: dict[str, list[float]] = {"parse": [], "sqlite": [], "postgresql": []}
    parsed = []
    for body in bodies:
        started = time.perf_counter()
        parsed.append(parse_predictions(body))
        timings["parse"].append(time.perf_counter() - started)
    pg.create_database("breakdown")
    for backend, url in (
        ("sqlite", f"sqlite:///{work / 'breakdown.sqlite'}"),
        ("postgresql", pg.url("breakdown")),
    ):
        with open_store(url) as store:
            for records in parsed:
                started = time.perf_counter()
                store.ingest(records)
                timings[backend].append(time.perf_counter() - started)
    return {
        key: {"median_ms": 1e3 * statistics.median(values), "min_ms": 1e3 * min(values)}
        for key, values in timings.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20_000, help="predictions per run (default 20,000)")
    parser.add_argument("--shippers", type=int, nargs="+", default=[1, 4], help="concurrent shippers")
    parser.add_argument("--repetitions", type=int, default=3, help="runs per arm; the best is reported")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    arguments = parser.parse_args()

    from pg import postgres_unavailable_reason, running_postgres

    reason = postgres_unavailable_reason()
    if reason is not None:
        raise SystemExit(f"bench_ingest needs a PostgreSQL: {reason}")
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as folder:
        work = Path(folder)
        with running_postgres(work / "pg", durable=True) as pg:
            results = []
            for shippers in arguments.shippers:
                for backend in ("sqlite", "postgresql"):
                    runs = [
                        measure(backend, shippers, arguments.records, pg, work)
                        for _ in range(arguments.repetitions)
                    ]
                    best = max(runs, key=lambda run: run["rate"])
                    results.append(
                        {
                            "backend": backend,
                            "shippers": shippers,
                            "batch_records": int(best["batch"]),
                            "predictions": int(best["predictions"]),
                            "predictions_per_second": round(best["rate"], 1),
                            "runs_per_second": [round(run["rate"], 1) for run in runs],
                            "ratio_to_goal": round(best["rate"] / GOAL, 3),
                        }
                    )
            parts = breakdown(pg, work)
    goal_met = all(row["predictions_per_second"] >= GOAL for row in results if row["backend"] == "postgresql")
    if arguments.json:
        print(
            json.dumps(
                {"goal": GOAL, "goal_met": goal_met, "results": results, "breakdown_ms": parts}, indent=1
            )
        )
        return
    print(f"Ingest into one monitor replica (goal: >= {GOAL:,.0f} predictions/s into PostgreSQL, committed)")
    print(
        f"{'backend':<11} {'shippers':>8} {'batch':>6} {'predictions':>11} {'pred/s':>9} {'x goal':>7}  runs"
    )
    for row in results:
        runs = ", ".join(f"{rate:,.0f}" for rate in row["runs_per_second"])
        print(
            f"{row['backend']:<11} {row['shippers']:>8} {row['batch_records']:>6} {row['predictions']:>11,} "
            f"{row['predictions_per_second']:>9,.0f} {row['ratio_to_goal']:>7.2f}  {runs}"
        )
    print("\nPer 500-record batch, in this process (no HTTP), milliseconds (median, min):")
    for key, label in (
        ("parse", "parse + validate"),
        ("sqlite", "sqlite ingest"),
        ("postgresql", "postgres ingest"),
    ):
        print(f"  {label:<18} {parts[key]['median_ms']:>7.1f} {parts[key]['min_ms']:>7.1f}")
    print(f"\nPostgreSQL goal {'met' if goal_met else 'missed'}.")


if __name__ == "__main__":
    main()
