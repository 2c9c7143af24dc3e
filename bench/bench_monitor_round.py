"""The monitor's round over a fleet: one replica against the bare statistics, and sharded replicas.

Goals (issue 10, "Speed"):

1. One replica (one process, one core) runs a round over 1,000 models with 10,000 recent rows each in at most
   1.5x the bare statistics on the same windows in the same run. The round is the production one,
   ``Loop.run_all`` (``loop/round.py``): its shard of the models, aliases from the registry, rows from the
   store through the window cache, the check (drift, prediction drift, quality, estimated performance),
   realised performance for windows that gained labels, the policy's decision, and every window's metrics
   in the round's ``log_batch`` calls to a real MLflow server; HTML reports only for alarms. The bare
   statistics are ``check_frame`` on each model's window, already decoded in memory, nothing else.
2. Sharding: two replicas with 1,000 models (``--shard 0/2`` and ``1/2``, each process pinned to a core
   of its own) against one replica with 500, at most 1.2x. The replicas share one PostgreSQL store.

What is measured: the data are built first (``--models`` x ``--rows`` predictions in the current aligned
window, 30 % labelled, ``--drifting`` of the models with a shifted income), one registered version per model
in a real ``mlflow server`` (sqlite backend) with a reference profile and a performance estimator. A first,
cold round fills the caches (profiles, windows) and is reported on its own line. Then ``--rounds`` times:
about 1 % new predictions and some late labels arrive for every model, a warm round runs, and the bare
statistics run on the same windows (interleaved, round then floor). The table gives medians and ratios.
``--profile`` prints where a warm round's time goes.

Run: ``nice -n 10 .venv/bin/python bench/bench_monitor_round.py [--models 1000] [--rows 10000]
[--rounds 3] [--store postgresql|sqlite] [--no-shard-arm] [--profile] [--json]``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

ROUND_GOAL = 1.5  # warm round / bare statistics, one replica
SHARD_GOAL = 1.2  # two replicas with 2N models / one replica with N
DAY = 86400.0
ORIGIN = 20_000 * DAY  # an aligned day: every row below falls in the window [ORIGIN, ORIGIN + DAY)
ROWS_PER_REQUEST = 100
LABELLED_SHARE = 0.3
REGISTERED_PREFIX = "fleet"


def model_names(count: int) -> list[str]:
    return [f"{REGISTERED_PREFIX}-{index:04d}" for index in range(count)]


# -- data ----------------------------------------------------------------------------------------------------


def scorer(frame: Any) -> Any:
    """The fleet's "model": a fixed logistic score of three features (the same for every model)."""
    import numpy as np

    logit = (
        -2.0
        + 3.0 * (frame["debt_to_income"].to_numpy() - 0.3)
        + 0.25 * frame["num_late_payments"].to_numpy()
        - 0.3 * (frame["annual_income"].to_numpy() / 50_000.0 - 1.0)
    )
    return 1.0 / (1.0 + np.exp(-np.nan_to_num(logit)))


def reference_profile_json() -> str:
    from examples.credit_default.data import CATEGORICAL_FEATURES, LABEL, NUMERIC_FEATURES, generate_day
    from platform_components.monitoring.estimate import METADATA_KEY, fit_estimator
    from platform_components.monitoring.profile import build_reference_profile

    reference = generate_day(0, rows=5_000, seed=1)
    scores = scorer(reference)
    estimator = fit_estimator(reference[LABEL].to_numpy(), scores, seed=1)
    profile = build_reference_profile(
        reference[list(NUMERIC_FEATURES + CATEGORICAL_FEATURES)],
        numeric=list(NUMERIC_FEATURES),
        categorical=list(CATEGORICAL_FEATURES),
        prediction_scores=scores,
        metadata={METADATA_KEY: estimator.to_dict(), "task": "classification"},
    )
    return profile.to_json()


def register_fleet(tracking_uri: str, names: list[str]) -> None:
    """One training run with the profile; a registered model per name, version 1 as its champion."""
    from mlflow.tracking import MlflowClient

    from platform_components.monitoring.tracking import PROFILE_ARTIFACT

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = client.create_experiment("fleet-training")
    run = client.create_run(experiment_id)
    client.log_text(run.info.run_id, reference_profile_json(), PROFILE_ARTIFACT)
    client.log_metric(run.info.run_id, "holdout_roc_auc", 0.75)
    client.log_metric(run.info.run_id, "holdout_ece", 0.02)
    client.set_terminated(run.info.run_id)

    def register(name: str) -> None:
        client.create_registered_model(name)
        client.create_model_version(name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
        client.set_registered_model_alias(name, "champion", "1")

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(register, names))


class Fleet:
    """The fleet's predictions and labels, written through the store's own ``ingest`` and ``add_labels``."""

    def __init__(self, names: list[str], rows: int, drifting: float) -> None:
        from examples.credit_default.data import FEATURES, generate_day

        self.names, self.rows = names, rows
        base = generate_day(1, rows=rows, seed=2)[list(FEATURES)]
        shifted = base.copy()
        shifted["annual_income"] = shifted["annual_income"] * 0.6
        self.frames = {"base": base, "shifted": shifted}
        drifting_count = max(1, round(drifting * len(names))) if drifting > 0 else 0
        self.drifting = (
            set(names[:: max(1, len(names) // drifting_count)][:drifting_count]) if drifting_count else set()
        )
        self.requests: dict[str, int] = dict.fromkeys(names, 0)
        self.labelled: dict[str, int] = dict.fromkeys(names, 0)

    def _records(
        self, name: str, count: int, first_time: float, spacing: float, *, template: bool = False
    ) -> list[Any]:
        """The model's next ``count`` requests. ``template``: the inputs and outputs of requests already
        built for another model are reused (the caller only reads their id, model, version and time, and
        encodes the payload of each distinct request once)."""
        from platform_components.serving.predlog import PredictionRecord

        kind = "shifted" if name in self.drifting else "base"
        frame = self.frames[kind]
        payloads: dict[tuple[str, int], tuple[dict, dict]] = self.__dict__.setdefault("_payloads", {})
        records = []
        for _ in range(count):
            index = self.requests[name]
            start = (index * ROWS_PER_REQUEST) % len(frame)
            payload = payloads.get((kind, start)) if template else None
            if payload is None:
                part = frame.iloc[start : start + ROWS_PER_REQUEST]
                scores = scorer(part)
                payload = (
                    {column: part[column].tolist() for column in part.columns},
                    {"predict_proba": np.column_stack([1 - scores, scores]).tolist()},
                )
                if template:
                    payloads[(kind, start)] = payload
            records.append(
                PredictionRecord(f"{name}-{index}", name, "1", first_time + len(records) * spacing, *payload)
            )
            self.requests[name] = index + 1
        return records

    def initial(self, store: Any) -> None:
        """``rows`` predictions per model over the window's first half; 30 % of the requests labelled.

        Bulk-loaded (one COPY per table and model on PostgreSQL, one transaction per model on SQLite), not
        through ``ingest`` and ``add_labels`` a request at a time: 10 M rows that way take about 20 minutes.
        The rows are the product's own: ``requests`` and ``predictions`` rows from the store's
        ``_request_row`` and ``_prediction_rows`` (what ``ingest`` writes), labels as ``canonical_label``
        JSON with their model (what ``add_labels`` writes). A request's rows differ between models only in
        the request id, model and time, so each distinct request is encoded once and the copies take those
        three fields.
        """
        from examples.credit_default.data import LABEL, generate_day
        from platform_components.monitoring.store import (
            PostgresMonitorStore,
            _copy_text,
            _prediction_rows,
            _request_row,
            canonical_label,
        )

        requests = max(1, self.rows // ROWS_PER_REQUEST)
        labelled = int(LABELLED_SHARE * requests)
        spacing = 0.5 * DAY / requests
        labels = self.__dict__.setdefault(
            "_labels", generate_day(1, rows=self.rows, seed=2)[LABEL].to_numpy()
        )
        template_rows: dict[tuple[str, int], list[tuple]] = {}
        template_labels: dict[int, list[str]] = {}
        postgres = isinstance(store, PostgresMonitorStore)
        for name in self.names:
            kind = "shifted" if name in self.drifting else "base"
            request_rows, prediction_rows, label_rows = [], [], []
            for record in self._records(name, requests, ORIGIN, spacing, template=True):
                request_rows.append(_request_row(record))
                index = int(record.request_id.rsplit("-", 1)[1])
                start = (index * ROWS_PER_REQUEST) % len(self.frames[kind])
                encoded = template_rows.get((kind, start))
                if encoded is None:
                    encoded = template_rows[(kind, start)] = _prediction_rows(record)
                prediction_rows.extend(
                    (record.request_id, row[1], record.model, record.version, record.timestamp, *row[5:])
                    for row in encoded
                )
                if index < labelled:
                    start = (index * ROWS_PER_REQUEST) % len(labels)
                    values = template_labels.get(start)
                    if values is None:
                        chunk = np.resize(labels[start : start + ROWS_PER_REQUEST], record.row_count)
                        values = template_labels[start] = [
                            canonical_label(int(value), "label") for value in chunk
                        ]
                    received_at = ORIGIN + 0.5 * DAY
                    label_rows.extend(
                        (record.request_id, row, value, received_at, record.model)
                        for row, value in enumerate(values)
                    )
            with store._transaction() as session:
                if postgres:
                    for table, rows in (
                        ("requests", request_rows),
                        ("predictions", prediction_rows),
                        ("labels", label_rows),
                    ):
                        session.cursor.copy_expert(f"COPY {table} FROM STDIN", io.StringIO(_copy_text(rows)))
                else:
                    session.executemany("INSERT INTO requests VALUES (?, ?, ?, ?, ?)", request_rows)
                    session.executemany(
                        "INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", prediction_rows
                    )
                    session.executemany("INSERT INTO labels VALUES (?, ?, ?, ?, ?)", label_rows)
            self.labelled[name] = labelled
        if postgres:
            with store._transaction() as session:  # what autovacuum would do after a load this size
                session.execute("ANALYZE")

    def arrive(self, store: Any, step: int) -> None:
        """About 1 % new predictions per model (later in the window) and a few late labels."""
        requests = max(1, self.rows // ROWS_PER_REQUEST // 100)
        at = ORIGIN + 0.5 * DAY + step * 900.0
        for name in self.names:
            store.ingest(self._records(name, requests, at, 1.0), batch_size=500)
            self.label(store, name, requests, received_at=at + 600.0)

    def label(self, store: Any, name: str, count: int, *, received_at: float) -> None:
        import numpy as np

        from examples.credit_default.data import LABEL, generate_day

        labels = self.__dict__.setdefault(
            "_labels", generate_day(1, rows=self.rows, seed=2)[LABEL].to_numpy()
        )
        for _ in range(count):
            index = self.labelled[name]
            if index >= self.requests[name]:
                return
            start = (index * ROWS_PER_REQUEST) % len(labels)
            values = labels[start : start + ROWS_PER_REQUEST]
            rows = min(ROWS_PER_REQUEST, self.rows)
            values = np.resize(values, rows)
            store.add_labels(f"{name}-{index}", [int(value) for value in values], received_at=received_at)
            self.labelled[name] = index + 1


# -- one replica ----------------------------------------------------------------------------------------------


def make_loop(store: Any, tracking_uri: str, shard: str = "0/1", cache_rows: int = 0) -> Any:
    from platform_components.loop.round import Loop
    from platform_components.loop.shard import parse_shard
    from platform_components.monitoring.window_cache import WindowCache

    return Loop(
        store, tracking_uri, cache=WindowCache(cache_rows), shard=parse_shard(shard), holder=f"bench-{shard}"
    )


def entries_for(names: list[str]) -> list[Any]:
    from platform_components.loop.models import local_model
    from platform_components.settings import PolicySettings

    policy = PolicySettings()
    return [local_model(name, policy) for name in names]


def timed_round(loop: Any, entries: list[Any]) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    outcomes = loop.run_all(entries)
    elapsed = time.perf_counter() - started
    failed = {name: repr(outcome) for name, outcome in outcomes.items() if isinstance(outcome, Exception)}
    if failed:
        raise SystemExit(f"{len(failed)} model rounds failed, e.g. {next(iter(failed.items()))}")
    alarms = sum(1 for outcome in outcomes.values() if outcome.result and outcome.result.drifted_features)
    return elapsed, {"models": len(outcomes), "alarms": alarms}


def bare_statistics(loop: Any, entries: list[Any]) -> float:
    """``check_frame`` on every model's current window, decoded in memory (the floor)."""
    from platform_components.loop.round import cached_profile, check_config
    from platform_components.monitoring.monitor import check_frame, window_bounds
    from platform_components.monitoring.store import SCORE_COLUMN

    frames = []
    for entry in entries:
        profile = cached_profile(loop.tracking_uri, entry.registered_model, "1")
        start, end = window_bounds(loop.store.event_clock(entry.name), entry.policy.window)
        frame = loop.cache.window(loop.store, entry.name, "1", start=start, end=end, limit=200_000)
        frames.append((frame, profile, check_config(entry, profile)))
    started = time.perf_counter()
    for frame, profile, config in frames:
        check_frame(frame, profile, config, scores=frame[SCORE_COLUMN].to_numpy())
    return time.perf_counter() - started


def one_replica(
    arguments: argparse.Namespace, store_url: str, tracking_uri: str, fleet: Fleet
) -> dict[str, Any]:
    from platform_components.monitoring.store import open_store

    entries = entries_for(fleet.names)
    with open_store(store_url) as store:
        loop = make_loop(store, tracking_uri, cache_rows=arguments.models * (arguments.rows + 1000))
        cold, info = timed_round(loop, entries)
        print(f"  cold round: {cold:.1f} s ({info['alarms']} alarms)", file=sys.stderr)
        rounds, floors = [], []
        for step in range(1, arguments.rounds + 1):
            fleet.arrive(store, step)
            if arguments.profile and step == arguments.rounds:
                import cProfile
                import pstats

                profiler = cProfile.Profile()
                profiler.enable()
                elapsed, info = timed_round(loop, entries)
                profiler.disable()
                pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(35)
            else:
                elapsed, info = timed_round(loop, entries)
            rounds.append(elapsed)
            floors.append(bare_statistics(loop, entries))
            print(
                f"  warm round {step}: {elapsed:.1f} s, bare statistics {floors[-1]:.1f} s", file=sys.stderr
            )
        return {
            "cold_round_s": cold,
            "round_s": statistics.median(rounds),
            "statistics_s": statistics.median(floors),
            "ratio": statistics.median(r / f for r, f in zip(rounds, floors, strict=True)),
            "alarms": info["alarms"],
            "cache": loop.cache.stats.to_dict(),
            "cache_rows": loop.cache.rows,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


# -- sharding ------------------------------------------------------------------------------------------------


def child(arguments: argparse.Namespace) -> None:
    """One replica process: a cold round, then a warm round each time the parent says new rows arrived."""
    from platform_components.monitoring.store import open_store

    names = json.loads(Path(arguments.names_file).read_text())
    entries = entries_for(names)
    with open_store(arguments.store_url) as store:
        loop = make_loop(
            store, arguments.tracking_uri, arguments.shard, cache_rows=len(names) * (arguments.rows + 1000)
        )
        elapsed, info = timed_round(loop, entries)
        print(json.dumps({"cold_s": elapsed, **info}), flush=True)
        for line in sys.stdin:
            if line.strip() != "round":
                break
            elapsed, info = timed_round(loop, entries)
            print(json.dumps({"round_s": elapsed, **info}), flush=True)


def replicas(
    arguments: argparse.Namespace,
    store_url: str,
    tracking_uri: str,
    names: list[str],
    shards: list[str],
    work: Path,
) -> list[subprocess.Popen]:
    names_file = work / f"names-{len(names)}.json"
    names_file.write_text(json.dumps(names))
    processes = []
    for core, shard in enumerate(shards):
        argv = [sys.executable, str(Path(__file__).resolve()), "--child", "--shard", shard,
                "--store-url", store_url, "--tracking-uri", tracking_uri, "--names-file", str(names_file),
                "--rows", str(arguments.rows)]  # fmt: skip
        if shutil.which("taskset"):
            argv = ["taskset", "-c", str(core % (os.cpu_count() or 1)), *argv]
        processes.append(
            subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        )
    return processes


def read(process: subprocess.Popen) -> dict[str, Any]:
    line = process.stdout.readline()  # type: ignore[union-attr]
    if not line:
        raise SystemExit(f"a replica exited with {process.wait()}")
    return json.loads(line)


def sharding(
    arguments: argparse.Namespace, store_url: str, tracking_uri: str, fleet: Fleet, work: Path
) -> dict[str, Any]:
    """One replica with half the models against two replicas with all of them, warm rounds, interleaved."""
    from platform_components.monitoring.store import open_store

    half = fleet.names[: len(fleet.names) // 2]
    single = replicas(arguments, store_url, tracking_uri, half, ["0/1"], work)
    read(single[0])
    pair = replicas(arguments, store_url, tracking_uri, fleet.names, ["0/2", "1/2"], work)
    for process in pair:
        read(process)
    ones, twos = [], []
    try:
        with open_store(store_url) as store:
            for step in range(arguments.rounds):
                # After the one-replica arm's arrivals, in the same window (15 minutes a step).
                fleet.arrive(store, arguments.rounds + 1 + step)
                single[0].stdin.write("round\n")  # type: ignore[union-attr]
                single[0].stdin.flush()  # type: ignore[union-attr]
                ones.append(read(single[0])["round_s"])
                for process in pair:
                    process.stdin.write("round\n")  # type: ignore[union-attr]
                    process.stdin.flush()  # type: ignore[union-attr]
                twos.append(max(read(process)["round_s"] for process in pair))
                print(f"  sharded round {step + 1}: one replica {len(half)} models {ones[-1]:.1f} s, two "
                      f"replicas {len(fleet.names)} models {twos[-1]:.1f} s", file=sys.stderr)  # fmt: skip
    finally:
        for process in [*single, *pair]:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()  # type: ignore[union-attr]
            process.wait(timeout=60)
    return {
        "one_replica_half_s": statistics.median(ones),
        "two_replicas_all_s": statistics.median(twos),
        "ratio": statistics.median(b / a for a, b in zip(ones, twos, strict=True)),
    }


# -- setup ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def mlflow_server(root: Path) -> Iterator[str]:
    from processes import find_free_port, stop_process_tree, wait_healthy

    port = find_free_port()
    argv = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--serve-artifacts", "--artifacts-destination", str(root / "artifacts")]  # fmt: skip
    log = root / "mlflow.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/health", process, log, seconds=180)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process_tree(process)


@contextlib.contextmanager
def store_location(kind: str, work: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{work / 'monitor.sqlite'}"
        return
    from pg import postgres_unavailable_reason, running_postgres

    reason = postgres_unavailable_reason()
    if reason is not None:
        raise SystemExit(f"--store postgresql: {reason} (or pass --store sqlite, without the sharding arm)")
    with running_postgres(work / "pg") as server:
        server.create_database("monitor")
        yield server.url("monitor")


def table(results: dict[str, Any], arguments: argparse.Namespace) -> str:
    one = results["one_replica"]
    lines = [
        f"monitor round: {arguments.models} models x {arguments.rows} rows, store {arguments.store}, "
        f"{os.cpu_count()} cores, median of {arguments.rounds} warm rounds",
        "",
        "| arm | seconds | ratio | goal | met |",
        "|---|---|---|---|---|",
        f"| bare statistics (check_frame on the decoded windows) | {one['statistics_s']:.1f} | 1.00 | | |",
        f"| warm round, one replica ({one['alarms']} alarms with reports) | {one['round_s']:.1f} | "
        f"{one['ratio']:.2f} | <= {ROUND_GOAL} | {'yes' if one['ratio'] <= ROUND_GOAL else 'NO'} |",
        f"| cold round (profiles downloaded, windows read whole) | {one['cold_round_s']:.1f} | "
        f"{one['cold_round_s'] / one['statistics_s']:.2f} | | |",
    ]
    if "sharding" in results:
        shard = results["sharding"]
        lines += [
            f"| one replica, {arguments.models // 2} models | {shard['one_replica_half_s']:.1f} | 1.00 | | |",
            f"| two replicas, {arguments.models} models (slower of the two) | {shard['two_replicas_all_s']:.1f} | "
            f"{shard['ratio']:.2f} | <= {SHARD_GOAL} | {'yes' if shard['ratio'] <= SHARD_GOAL else 'NO'} |",
        ]
    lines += [
        "",
        f"window cache: {one['cache_rows']} rows held, {one['cache']}; max RSS {one['max_rss_mb']:.0f} MB",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=int, default=1_000, help="models in the fleet (default 1000)")
    parser.add_argument("--rows", type=int, default=10_000, help="recent rows per model (default 10000)")
    parser.add_argument("--rounds", type=int, default=3, help="warm rounds measured per arm (default 3)")
    parser.add_argument("--drifting", type=float, default=0.005, help="share of models whose window drifted")
    parser.add_argument("--store", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--no-shard-arm", action="store_true", help="skip the two-replica arm")
    parser.add_argument("--profile", action="store_true", help="cProfile the last warm round (stderr)")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--shard", default="0/1", help=argparse.SUPPRESS)
    parser.add_argument("--store-url", help=argparse.SUPPRESS)
    parser.add_argument("--tracking-uri", help=argparse.SUPPRESS)
    parser.add_argument("--names-file", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        child(arguments)
        return
    if arguments.store == "sqlite" and not arguments.no_shard_arm:
        raise SystemExit("--store sqlite: replicas need the shared PostgreSQL store; add --no-shard-arm")
    from platform_components.monitoring.store import open_store

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-round-") as folder:
        work = Path(folder)
        (work / "mlflow").mkdir()
        with (
            mlflow_server(work / "mlflow") as tracking_uri,
            store_location(arguments.store, work) as store_url,
        ):
            names = model_names(arguments.models)
            started = time.perf_counter()
            register_fleet(tracking_uri, names)
            print(
                f"  registered {len(names)} models in {time.perf_counter() - started:.0f} s", file=sys.stderr
            )
            fleet = Fleet(names, arguments.rows, arguments.drifting)
            started = time.perf_counter()
            with open_store(store_url) as store:
                fleet.initial(store)
            print(
                f"  ingested {len(names) * arguments.rows} rows in {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
            )
            results["one_replica"] = one_replica(arguments, store_url, tracking_uri, fleet)
            if not arguments.no_shard_arm:
                results["sharding"] = sharding(arguments, store_url, tracking_uri, fleet, work)
    print(json.dumps(results, indent=1) if arguments.json else table(results, arguments))


if __name__ == "__main__":
    main()
