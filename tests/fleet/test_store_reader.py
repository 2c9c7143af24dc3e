"""The fleet's store queries, on SQLite and on a real PostgreSQL, against what the monitor's store wrote."""

from __future__ import annotations

import pytest

from platform_components.fleet.store_reader import (
    HISTORY_WINDOWS,
    NOTHING_STARTED,
    StoreConnection,
    reader_for_store,
)
from platform_components.monitoring.store import open_store
from platform_components.serving.predlog import PredictionRecord

DAY = 86400.0
START = 1_700_000_000.0


def result(model: str, start: float, *, drifted: list[str], auc: float | None, estimate: float) -> dict:
    """A stored check as ``MonitorResult.to_dict`` writes it (the fields the fleet reads, and more)."""
    return {
        "model": model,
        "version": "3",
        "checked_at": start + DAY - 1,
        "window_start": start,
        "window_end": start + DAY,
        "status": "ok",
        "rows": 400,
        "labelled_rows": 100,
        "drift_share": len(drifted) / 4,
        "drifted_features": drifted,
        "max_psi": 0.3 if drifted else 0.01,
        "features": {"income": {"psi": 0.3, "drifted": bool(drifted)}},
        "prediction": {"drifted": bool(drifted), "statistic": 0.2},
        "quality": {},
        "performance": None if auc is None else {"roc_auc": auc, "rows": 100},
        "estimated": {"roc_auc": {"value": estimate, "lower": estimate - 0.02, "upper": estimate + 0.02}},
    }


@pytest.fixture
def filled(store_url: str):
    store = open_store(store_url)
    for window in range(HISTORY_WINDOWS + 5):
        start = START + window * DAY
        last = window == HISTORY_WINDOWS + 4
        store.save_result(
            "credit",
            "3",
            checked_at=start + DAY - 1,
            window_start=start,
            window_end=start + DAY,
            result=result(
                "credit", start, drifted=["income"] if last else [], auc=None if last else 0.8, estimate=0.7
            ),
        )
    records = [
        PredictionRecord(
            f"r{index}", "credit", version, START + index * 3600, {"x": [1.0, 2.0]}, {"p": [[0.4, 0.6]] * 2}
        )
        for index, version in enumerate(["2", "2", "3", "3"])
    ]
    records.append(PredictionRecord("other", "undeclared", "1", START, {"x": [1.0]}, {"p": [[0.5, 0.5]]}))
    store.ingest(records)
    store.add_labels("r1", [1, 0], received_at=START + 5 * 3600)
    store.add_labels("r3", [1, 1], received_at=START + 9 * 3600)
    started = store.record_decision(
        "credit",
        "2",
        action="retrain",
        reasons=["drift"],
        evidence={},
        outcome="running",
        decided_at=START + DAY,
    )
    store.finish_decision(started, "promoted", {})
    store.record_decision(
        "credit",
        "3",
        action="retrain",
        reasons=["drift"],
        evidence={},
        outcome="waiting_for_rows",
        decided_at=START + 2 * DAY,
    )
    store.record_decision(
        "credit",
        "3",
        action="incident",
        reasons=["broken"],
        evidence={},
        outcome="kept",
        decided_at=START + 3 * DAY,
    )
    store.record_decision(
        "credit", "3", action="none", reasons=[], evidence={}, outcome="nothing", decided_at=START + 4 * DAY
    )
    yield store
    store.close()


def check(facts: dict) -> None:
    credit = facts["credit"]
    # The latest window is the row's state; the last HISTORY_WINDOWS windows are its sparkline, oldest first.
    assert credit.latest.window_start == START + (HISTORY_WINDOWS + 4) * DAY
    assert credit.latest.drifted_features == ["income"]
    assert credit.latest.drift_share == 0.25
    assert credit.latest.prediction_drifted is True
    assert credit.latest.rows == 400 and credit.latest.status == "ok"
    assert len(credit.history) == HISTORY_WINDOWS
    assert [point.window_start for point in credit.history] == sorted(
        point.window_start for point in credit.history
    )
    assert credit.history[0].performance == {"roc_auc": 0.8, "rows": 100}
    assert credit.history[-1].performance == {}
    assert credit.history[-1].estimated["roc_auc"]["value"] == 0.7
    # The latest retrain decision started nothing; the one before it started (and promoted) a run.
    assert credit.retrain.outcome == "waiting_for_rows" and credit.retrain.decided_at == START + 2 * DAY
    assert credit.retrain.started_at == START + DAY
    assert credit.incident_at == START + 3 * DAY
    assert credit.labels == 4 and credit.last_label_at == START + 9 * 3600
    assert credit.first_prediction_by_version == {"2": START, "3": START + 2 * 3600}
    assert credit.last_prediction_at == START + 3 * 3600
    assert facts["undeclared"].latest is None and facts["undeclared"].labels == 0


def test_the_command_reads_what_the_monitor_wrote_on_both_backends(filled, store_url: str) -> None:
    connection = StoreConnection(store_url)
    try:
        check(connection.reader.read())
    finally:
        connection.close()


def test_the_monitor_service_reads_the_same_through_its_own_store(filled) -> None:
    check(reader_for_store(filled).read())


def test_a_missing_sqlite_store_reads_as_nothing_checked(tmp_path) -> None:
    connection = StoreConnection(tmp_path / "absent.sqlite")
    assert connection.reader.read() == {}
    assert not (tmp_path / "absent.sqlite").exists()


def test_a_store_url_of_another_scheme_is_refused_naming_the_flag() -> None:
    from platform_components.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--store-url: mysql:// is neither sqlite:///path nor postgresql"):
        StoreConnection("mysql://host/db")


def test_outcomes_that_started_nothing_are_the_loops() -> None:
    from platform_components.loop.policy import NOTHING_STARTED as LOOP_NOTHING_STARTED

    assert NOTHING_STARTED == LOOP_NOTHING_STARTED
