"""The store shared by replicas: leases across processes, crashed holders, restarts, schema versions, URLs.

Tests taking ``store_url`` run on SQLite and on a real PostgreSQL (conftest.py); the PostgreSQL-only ones
use the session's server directly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pg import PostgresServer

from platform_components.errors import ConfigError
from platform_components.monitoring.store import (
    SCHEMA_VERSION,
    MonitorStore,
    PostgresMonitorStore,
    open_store,
    redact_url,
)
from platform_components.serving.predlog import PredictionLog, PredictionRecord

REPO = Path(__file__).resolve().parents[2]
MODELS = ("m0", "m1", "m2")

# One replica: take each model's lease whenever it can, hold it a moment, release it; print what it held
# (model, from, to: wall-clock times after the taking commit and before the release).
CONTENDER = r"""
import json, sys, time
from platform_components.monitoring.store import open_store
url, holder, start_at, rounds = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
models = sys.argv[5].split(",")
held = []
with open_store(url) as store:
    while time.time() < start_at:
        time.sleep(0.005)
    for _ in range(rounds):
        for model in models:
            if store.acquire_lease(model, holder, ttl_seconds=600):
                begun = time.time()
                if store.lease_holder(model) != holder:
                    raise SystemExit(f"{holder} took {model} but the store names {store.lease_holder(model)}")
                time.sleep(0.0005)
                held.append((model, begun, time.time()))
                store.release_lease(model, holder)
print(json.dumps(held))
"""

HOLDER = r"""
import sys
from platform_components.monitoring.store import open_store
store = open_store(sys.argv[1])
assert store.acquire_lease("m0", "crashed", ttl_seconds=float(sys.argv[2]))
print("held", flush=True)
sys.stdin.read()  # until killed
"""


def _python(script: str, *arguments: str, **options: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-c", script, *arguments],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,  # type: ignore[arg-type]
    )


def record(index: int, model: str = "m0") -> PredictionRecord:
    return PredictionRecord(
        f"r{index}", model, "1", 1_000.0 + index, {"x": [float(index)]}, {"p": [[0.4, 0.6]]}
    )


def test_two_processes_never_hold_one_models_lease_at_once(store_url: str) -> None:
    open_store(store_url).close()  # the schema exists before the race (its own start is tested below)
    start_at = f"{time.time() + 3.0}"
    replicas = [_python(CONTENDER, store_url, name, start_at, "60", ",".join(MODELS)) for name in "ab"]
    outputs = []
    for replica in replicas:
        stdout, stderr = replica.communicate(timeout=120)
        assert replica.returncode == 0, stderr
        outputs.append(json.loads(stdout))
    for model in MODELS:
        spans = sorted(
            (begun, ended, name)
            for name, held in zip("ab", outputs, strict=True)
            for held_model, begun, ended in held
            if held_model == model
        )
        for (_, first_end, first), (second_begin, _, second) in zip(spans, spans[1:], strict=False):
            assert first_end <= second_begin, f"{first} and {second} held {model}'s lease at once"
    # Both replicas really contended: each took leases, neither took every one.
    taken = [len(held) for held in outputs]
    assert all(count > 0 for count in taken), taken
    with open_store(store_url) as store:
        assert all(store.lease_holder(model) is None for model in MODELS)


def test_a_crashed_holders_lease_expires_and_another_replica_takes_it(store_url: str) -> None:
    open_store(store_url).close()
    ttl = 30.0
    holder = _python(HOLDER, store_url, str(ttl), stdin=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        taken_at = time.time()
    finally:
        holder.send_signal(signal.SIGKILL)  # no release, no clean close: the row stays behind
        holder.communicate(timeout=30)
    with open_store(store_url) as store:
        assert store.lease_holder("m0") == "crashed"
        assert not store.acquire_lease("m0", "survivor", ttl_seconds=ttl)
        later = taken_at + ttl + 1.0  # past its expiry on the store's clock (event of the lease: wall time)
        assert store.lease_holder("m0", now=later) is None
        assert store.acquire_lease("m0", "survivor", ttl_seconds=ttl, now=later)
        assert not store.acquire_lease("m0", "crashed", ttl_seconds=ttl, now=later + 1)
        assert store.lease_holder("m0", now=later + 1) == "survivor"


def _restart_scenario(store_url: str, log_dir: Path, restart: object) -> None:
    with PredictionLog(log_dir) as log:
        for index in range(20):
            log.append(record(index))
    with open_store(store_url) as store:
        assert store.ingest_directory(log_dir) == 20
        store.save_result("m0", "1", checked_at=5.0, window_start=0.0, window_end=10.0, result={"rows": 20})
        decision = store.record_decision(
            "m0", "1", action="retrain", reasons=["drift"], evidence={}, outcome="started"
        )
        assert store.acquire_lease("m0", "replica-0", ttl_seconds=3_600)
    restart()  # type: ignore[operator]
    with PredictionLog(log_dir) as log:
        for index in range(20, 25):
            log.append(record(index))
    with open_store(store_url) as store:
        assert store.schema_version() == SCHEMA_VERSION
        applied = store._query("SELECT version FROM store_schema ORDER BY version")
        assert [row[0] for row in applied] == list(range(1, SCHEMA_VERSION + 1))  # nothing re-applied
        assert store.ingest_directory(log_dir) == 5  # resumed from the saved position
        assert store.prediction_count("m0") == 25
        assert store.result_for("m0", "1", 0.0) == {"rows": 20}
        assert [item.id for item in store.decisions("m0")] == [decision]
        assert store.lease_holder("m0") == "replica-0"


def test_a_restarted_monitor_keeps_positions_results_decisions_and_leases(
    store_url: str, tmp_path: Path
) -> None:
    _restart_scenario(store_url, tmp_path / "predictions" / "m0", lambda: None)


def test_a_restarted_database_keeps_them_too(store_postgres: PostgresServer, tmp_path: Path) -> None:
    store_postgres.create_database("restarted")
    _restart_scenario(
        store_postgres.url("restarted"), tmp_path / "predictions" / "m0", store_postgres.restart
    )


def test_an_open_store_reconnects_after_the_database_restarts(store_postgres: PostgresServer) -> None:
    store_postgres.create_database("reconnects")
    with open_store(store_postgres.url("reconnects")) as store:
        assert isinstance(store, PostgresMonitorStore)
        assert store.ingest([record(1)]) == 1
        store.lease_holder("m0")  # every pooled connection is now an open session the restart will cut
        store_postgres.restart()
        assert store.prediction_count("m0") == 1  # a read on a fresh connection
        assert store.ingest([record(2)]) == 1  # a write: the transaction starts on a fresh connection
        assert store.acquire_lease("m0", "a", ttl_seconds=60)


def test_labels_stored_before_schema_4_get_their_model_and_count_in_clocks_and_windows(
    store_url: str,
) -> None:
    with open_store(store_url) as store:
        store.ingest([record(1), record(2, model="m1")])
        store.add_labels("r1", [1], received_at=5_000.0)
        store.add_labels("r2", [0], received_at=6_000.0)
        # The store as schema 3 left it: labels without their model, no index on it.
        with store._transaction() as connection:
            connection.execute("DROP INDEX labels_by_model_received")
            connection.execute("ALTER TABLE labels DROP COLUMN model")
            connection.execute("DELETE FROM store_schema WHERE version = 4")
    with open_store(store_url) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert sorted(store._query("SELECT request_id, model FROM labels")) == [("r1", "m0"), ("r2", "m1")]
        assert store.event_clock("m0") == 5_000.0 and store.event_clock("m1") == 6_000.0
        assert store.window_labels("m0", "1", start=0.0, end=2_000.0, received_after=4_999.0) == [
            ("r1", 0, 1)
        ]
        assert store.window_labels("m0", "1", start=0.0, end=2_000.0, received_after=5_000.0) == []
        counts = store.window_counts("m0", "1", start=0.0, end=2_000.0)
        assert (counts.rows, counts.labelled, counts.last_received_at) == (1, 1, 5_000.0)
        store.ingest([record(3)])
        store.add_labels("r3", [0], received_at=7_000.0)  # written with its model from now on
        assert store.event_clock("m0") == 7_000.0 and store.event_clock("m1") == 6_000.0


def test_a_store_ahead_of_this_code_is_refused(store_url: str) -> None:
    with open_store(store_url) as store, store._transaction() as connection:
        connection.execute(
            "INSERT INTO store_schema (version, description, applied_at) VALUES (?, ?, ?)",
            (SCHEMA_VERSION + 1, "from a newer monitor", 0.0),
        )
    with pytest.raises(ConfigError, match=f"its schema is version {SCHEMA_VERSION + 1}, newer than this"):
        open_store(store_url)


def test_store_urls_name_the_backend_and_bad_ones_say_how_to_write_them(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/a.sqlite") as store:
        assert type(store) is MonitorStore and store.path == tmp_path / "a.sqlite"
    with open_store(tmp_path / "b.sqlite") as store:
        assert store.path == tmp_path / "b.sqlite"
    with pytest.raises(
        ConfigError, match=r"'mysql://u:\*\*\*@h/db' is neither sqlite:///path nor postgresql"
    ):
        open_store("mysql://u:secret@h/db")
    with pytest.raises(ConfigError, match="has no file"):
        open_store("sqlite:///")
    assert (
        redact_url("postgresql://monitor:p%40ss@db:5432/monitor")
        == "postgresql://monitor:***@db:5432/monitor"
    )


def test_an_unreachable_database_is_a_config_error_without_the_password() -> None:
    from processes import find_free_port

    url = f"postgresql+psycopg2://monitor:hunter2@127.0.0.1:{find_free_port()}/monitor"
    with pytest.raises(ConfigError, match=r"monitor:\*\*\*@127\.0\.0\.1.*cannot connect") as raised:
        open_store(url)
    assert "hunter2" not in str(raised.value)


def test_the_monitor_service_keeps_ingested_predictions_and_labels_in_postgresql(
    store_postgres: PostgresServer, tmp_path: Path
) -> None:
    import httpx
    from processes import find_free_port, stop_process_tree, wait_healthy

    from platform_components.monitoring.service import service_command

    store_postgres.create_role("monitor", "m0n'itor pass")
    store_postgres.create_database("service", owner="monitor")
    url = store_postgres.url("service", "monitor", "m0n'itor pass", scheme="postgresql+psycopg2")
    port = find_free_port()
    argv = service_command(state_dir=tmp_path, host="127.0.0.1", port=port)
    log = tmp_path / "service.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            argv, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, "MLOPS_MONITOR_STORE_URL": url}
        )
        try:
            wait_healthy(f"http://127.0.0.1:{port}/health", process, log, seconds=60)
            body = {"records": [json.loads(record(index).to_json()) for index in range(3)]}
            answer = httpx.post(f"http://127.0.0.1:{port}/v2/predictions", json=body, timeout=30)
            assert answer.json() == {"received": 3, "new_rows": 3}
            feedback = {"request_id": "r1", "labels": [1]}
            assert (
                httpx.post(f"http://127.0.0.1:{port}/v2/feedback", json=feedback, timeout=30).status_code
                == 200
            )
        finally:
            stop_process_tree(process)
    assert not (tmp_path / "monitoring" / "monitor.sqlite").exists()  # nothing went to the local default
    with open_store(url) as store:  # the role owns what the service created
        assert store.prediction_count("m0") == 3 and store.label_count("m0") == 1


def test_the_monitor_service_refuses_to_start_on_a_bad_store_url(tmp_path: Path) -> None:
    from platform_components.monitoring.service import service_command

    argv = service_command(state_dir=tmp_path, host="127.0.0.1", port=1)
    env = {**os.environ, "MLOPS_MONITOR_STORE_URL": "mysql://monitor:hunter2@db/monitor"}
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert "neither sqlite:///path nor postgresql://" in result.stderr and "hunter2" not in result.stderr


def test_a_durable_test_cluster_syncs_its_commits_and_the_default_one_does_not(tmp_path: Path) -> None:
    from pg import postgres_unavailable_reason, running_postgres

    if postgres_unavailable_reason() is not None:
        pytest.skip(postgres_unavailable_reason())
    with running_postgres(tmp_path / "durable", durable=True) as server:  # what bench_ingest.py measures on
        assert [server.scalar(f"SHOW {name}") for name in ("fsync", "synchronous_commit")] == ["on", "on"]
    with running_postgres(tmp_path / "default") as server:
        assert [server.scalar(f"SHOW {name}") for name in ("fsync", "synchronous_commit")] == ["off", "off"]
