"""Monitor store: idempotent ingestion from the prediction log, exact label joins, decisions, leases.

Every test taking ``store_url`` runs on both backends (SQLite and a real PostgreSQL: conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from platform_components.monitoring.errors import InvalidInput, LabelConflict, UnknownRequest
from platform_components.monitoring.store import (
    LABEL_COLUMN,
    SCHEMA_VERSION,
    SCORE_COLUMN,
    MonitorStore,
    open_store,
)
from platform_components.serving.predlog import PredictionLog, PredictionRecord


def record(request_id: str, rows: int, timestamp: float, version: str = "1") -> PredictionRecord:
    return PredictionRecord(
        request_id=request_id,
        model="credit-default",
        version=version,
        timestamp=timestamp,
        inputs={"income": [float(1000 * i + timestamp) for i in range(rows)], "purpose": ["car"] * rows},
        outputs={"predict_proba": [[0.9 - 0.1 * i, 0.1 + 0.1 * i] for i in range(rows)]},
    )


@pytest.fixture
def store(tmp_path: Path, store_url: str) -> MonitorStore:
    log_dir = tmp_path / "predictions" / "credit-default"
    with PredictionLog(log_dir) as log:
        log.append(record("a", 3, 100.0))
        log.append(record("b", 1, 200.0))
        log.append(record("c", 2, 300.0, version="2"))
    opened = open_store(store_url)
    assert opened.ingest_state_dir(tmp_path) == 6
    yield opened
    opened.close()


def test_ingestion_is_idempotent(store: MonitorStore, tmp_path: Path) -> None:
    assert store.ingest_state_dir(tmp_path) == 0
    assert store.prediction_count("credit-default") == 6
    assert store.request_rows("a") == 3 and store.request_rows("zzz") is None
    assert store.versions("credit-default") == ["1", "2"]
    assert store.schema_version() == SCHEMA_VERSION


def test_a_sqlite_store_uses_wal(tmp_path: Path) -> None:
    with MonitorStore.for_state_dir(tmp_path) as store:
        assert store._query("PRAGMA journal_mode")[0][0] == "wal"


def test_labels_join_exactly_whatever_the_arrival_order(store: MonitorStore) -> None:
    # Out of order: the last request first, rows in a different request before the first.
    assert store.add_labels("c", [1, 0]).new == 2
    assert store.add_labels("a", [0, 1, 1]).new == 3
    frame = store.window("credit-default")
    keys = zip(frame["__request_id__"], frame["__row__"], frame[LABEL_COLUMN], strict=True)
    by_key = {(request_id, row): label for request_id, row, label in keys}
    assert by_key == {("a", 0): 0, ("a", 1): 1, ("a", 2): 1, ("b", 0): None, ("c", 0): 1, ("c", 1): 0}
    assert frame[SCORE_COLUMN].round(3).tolist() == [0.1, 0.2, 0.3, 0.1, 0.1, 0.2]
    assert store.label_count("credit-default") == 5
    assert store.label_count("credit-default", version="1") == 3
    # Late label: arrives after the window was first read.
    store.add_labels("b", [1])
    assert store.window("credit-default", "1", labelled_only=True)[LABEL_COLUMN].tolist() == [0, 1, 1, 1]


def test_duplicate_same_label_is_a_noop_and_conflict_changes_nothing(store: MonitorStore) -> None:
    store.add_labels("a", [0, 1, 1])
    receipt = store.add_labels("a", [0.0, 1, True])  # the same values, spelled differently
    assert (receipt.accepted, receipt.new) == (3, 0)
    with pytest.raises(LabelConflict, match=r"labels\[2\]: request 'a' row 2 already has label 1, got 0"):
        store.add_labels("a", [0, 1, 0])
    assert store.window("credit-default", "1", end=150)[LABEL_COLUMN].tolist() == [0, 1, 1]


def test_unknown_id_and_malformed_labels_store_nothing(store: MonitorStore) -> None:
    with pytest.raises(UnknownRequest, match="request_id: 'nope' is not a logged prediction"):
        store.add_labels("nope", [1])
    with pytest.raises(InvalidInput, match=r"request 'a' has 3 row\(s\) but 2 label\(s\)"):
        store.add_labels("a", [1, 0])
    with pytest.raises(InvalidInput, match=r"labels\[1\]: None is not a valid label"):
        store.add_labels("a", [1, None, 0])
    with pytest.raises(InvalidInput, match=r"labels\[0\]: nan is not a valid label"):
        store.add_labels("b", [float("nan")])
    with pytest.raises(InvalidInput, match="labels: expected a list"):
        store.add_labels("b", "1")
    assert store.label_count("credit-default") == 0


def test_windows_by_time_and_version(store: MonitorStore) -> None:
    assert store.window("credit-default", "1", start=150)["__request_id__"].tolist() == ["b"]
    assert len(store.window("credit-default", "2")) == 2
    assert store.window("credit-default", limit=2)["__request_id__"].tolist() == ["c", "c"]
    assert store.window("credit-default", "9").empty


def test_decisions_and_leases(store: MonitorStore) -> None:
    decision = store.record_decision(
        "credit-default", "1", action="retrain", reasons=["drift"], evidence={"share": 0.5}, outcome="started"
    )
    store.finish_decision(decision, "promoted", {"new_version": "2"})
    [stored] = store.decisions("credit-default")
    assert stored.outcome == "promoted" and stored.evidence == {"share": 0.5}
    assert stored.outcome_detail == {"new_version": "2"}
    assert store.acquire_lease("credit-default", "one", ttl_seconds=60, now=0)
    assert not store.acquire_lease("credit-default", "two", ttl_seconds=60, now=30)
    assert store.acquire_lease("credit-default", "two", ttl_seconds=60, now=61)  # expired lease is taken over
    store.release_lease("credit-default", "two")
    assert store.lease_holder("credit-default", now=62) is None


def test_any_text_round_trips_through_ingestion(store_url: str) -> None:
    tricky = 'tab\there\nnew line \\ back\\slash "quoted" \\N naïve ✓ \r'
    sent = PredictionRecord(
        request_id=f"id\t{tricky}",
        model="credit-default",
        version="v\\1",
        timestamp=1e9 + 0.123456789,
        inputs={"text": [tricky, "\\N"], "income": [1.5e-300, -0.0]},
        outputs={"predict_proba": [[0.25, 0.75], [1.0, 0.0]]},
    )
    with open_store(store_url) as store:
        assert store.ingest([sent]) == 2
        frame = store.window("credit-default")
        assert frame["text"].tolist() == [tricky, "\\N"]
        assert frame["income"].tolist() == [1.5e-300, -0.0]
        assert frame["__request_id__"].tolist() == [sent.request_id] * 2
        assert frame["__version__"].tolist() == ["v\\1"] * 2
        assert frame["__timestamp__"].tolist() == [1e9 + 0.123456789] * 2  # a double, not a 4-byte real
        assert frame[SCORE_COLUMN].tolist() == [0.75, 0.0]


def test_rows_already_stored_for_a_new_request_are_kept_and_the_rest_added(store_url: str) -> None:
    with open_store(store_url) as store:
        with store._transaction() as connection:  # a row without its request: only a hand-edited store
            connection.execute(
                "INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ("a", 1, "credit-default", "1", 100.0, '{"income":1.0,"purpose":"car"}', "[0.5,0.5]", 0.5),
            )
        assert store.ingest([record("a", 3, 100.0), record("b", 1, 200.0)]) == 4
        assert store.prediction_count("credit-default") == 4
        assert store.window("credit-default")[SCORE_COLUMN].round(3).tolist() == [0.1, 0.5, 0.3, 0.1]
