"""Retrain policy: a table of cases for the pure decision, then the controller with a real store."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from platform_components.monitoring.errors import InvalidInput
from platform_components.monitoring.policy import (
    Action,
    PolicyConfig,
    PolicyState,
    RetrainController,
    RetrainRequest,
    decide,
    export_labelled_rows,
)
from platform_components.monitoring.store import MonitorStore
from platform_components.serving.predlog import PredictionRecord

HOUR = 3600.0
DAY = 24 * HOUR


def result(checked_at: float, drift_share: float = 0.0, drifted=(), roc_auc=None, labelled=0, status="ok"):
    return {
        "checked_at": checked_at,
        "status": status,
        "drift_share": drift_share,
        "drifted_features": list(drifted),
        "max_psi": 0.0,
        "labelled_rows": labelled,
        "performance": None if roc_auc is None else {"roc_auc": roc_auc, "accuracy": 0.8},
        "prediction": None,
    }


NOW = 100 * DAY
CONFIG = PolicyConfig(
    drift_share_threshold=0.25,
    drift_checks_required=2,
    cooldown_seconds=DAY,
    max_model_age_seconds=30 * DAY,
    critical_features=("annual_income",),
    min_labels=200,
    max_performance_drop=0.05,
)
CASES = [
    # (name, state kwargs, expected action, expected reasons, blocked_by)
    ("quiet", {"results": [result(NOW - HOUR)]}, Action.NONE, [], None),
    ("one drifted check is not enough", {"results": [result(NOW - HOUR, 0.5)]}, Action.NONE, [], None),
    (
        "two drifted checks",
        {"results": [result(NOW - 2 * HOUR, 0.5), result(NOW - HOUR, 0.3)]},
        Action.RETRAIN,
        ["drift"],
        None,
    ),
    (
        "critical feature counts as drift",
        {
            "results": [
                result(NOW - 2 * HOUR, 0.05, ["annual_income"]),
                result(NOW - HOUR, 0.05, ["annual_income"]),
            ]
        },
        Action.RETRAIN,
        ["drift"],
        None,
    ),
    (
        "insufficient-data checks are not signals",
        {"results": [result(NOW - 2 * HOUR, 0.5, status="insufficient_data"), result(NOW - HOUR, 0.5)]},
        Action.NONE,
        [],
        None,
    ),
    (
        "old signals outside the lookback",
        {"results": [result(NOW - 5 * DAY, 0.5), result(NOW - 4 * DAY, 0.5)]},
        Action.NONE,
        [],
        None,
    ),
    (
        "performance drop with enough labels",
        {"results": [result(NOW - HOUR, roc_auc=0.70, labelled=500)], "baseline_metric": 0.80},
        Action.RETRAIN,
        ["performance"],
        None,
    ),
    (
        "performance drop with too few labels",
        {"results": [result(NOW - HOUR, roc_auc=0.50, labelled=50)], "baseline_metric": 0.80},
        Action.NONE,
        [],
        None,
    ),
    (
        "small drop is tolerated",
        {"results": [result(NOW - HOUR, roc_auc=0.77, labelled=500)], "baseline_metric": 0.80},
        Action.NONE,
        [],
        None,
    ),
    ("age", {"model_created_at": NOW - 31 * DAY}, Action.RETRAIN, ["age"], None),
    (
        "cool-down respected",
        {
            "results": [result(NOW - 2 * HOUR, 0.5), result(NOW - HOUR, 0.5)],
            "last_retrain_at": NOW - 3 * HOUR,
            "model_created_at": NOW - 31 * DAY,
        },
        Action.SUPPRESSED,
        ["drift", "age"],
        "cooldown",
    ),
    (
        "concurrent trigger refused",
        {"results": [result(NOW - 2 * HOUR, 0.5), result(NOW - HOUR, 0.5)], "retrain_in_progress": True},
        Action.SUPPRESSED,
        ["drift"],
        "retrain_in_progress",
    ),
    (
        "after cool-down new signals retrain again",
        {"results": [result(NOW - 3 * HOUR, 0.5), result(NOW - HOUR, 0.5)], "last_retrain_at": NOW - 2 * DAY},
        Action.RETRAIN,
        ["drift"],
        None,
    ),
]


@pytest.mark.parametrize(
    ("name", "state", "action", "reasons", "blocked_by"), CASES, ids=[case[0] for case in CASES]
)
def test_decision_table(name, state, action, reasons, blocked_by) -> None:
    decision = decide(PolicyState("credit-default", "3", config=CONFIG, **state), NOW)
    assert (decision.action, decision.reasons, decision.blocked_by) == (action, reasons, blocked_by), name
    assert decision.evidence["drift"]["required"] == 2


def test_five_drift_signals_in_a_window_give_exactly_one_retrain() -> None:
    results, last_retrain_at, retrains = [], None, 0
    for hour in range(5):
        now = NOW + hour * HOUR
        results.append(result(now, drift_share=0.6))
        decision = decide(
            PolicyState(
                "credit-default", "3", results=results, last_retrain_at=last_retrain_at, config=CONFIG
            ),
            now,
        )
        if decision.action is Action.RETRAIN:
            retrains += 1
            last_retrain_at = now
    assert retrains == 1


def test_bad_policy_config_is_named() -> None:
    with pytest.raises(InvalidInput, match="performance_metric='f1' is not known"):
        PolicyConfig(performance_metric="f1")
    with pytest.raises(InvalidInput, match="drift_checks_required=0 must be >= 1"):
        PolicyConfig(drift_checks_required=0)


@pytest.fixture
def store(tmp_path: Path):
    opened = MonitorStore(tmp_path / "monitor.sqlite")
    opened.ingest(
        PredictionRecord(
            f"r{index}", "credit-default", "3", NOW - DAY + index, {"income": [index]}, {"p": [[0.4, 0.6]]}
        )
        for index in range(10)
    )
    for index in range(6):
        opened.add_labels(f"r{index}", [index % 2])
    for hour in (3, 2, 1):
        opened.save_result(
            "credit-default",
            "3",
            checked_at=NOW - hour * HOUR,
            # One stored result per window: three checks are three (hourly) windows.
            window_start=NOW - (hour + 1) * HOUR,
            window_end=NOW - hour * HOUR,
            result=result(NOW - hour * HOUR, drift_share=0.5),
        )
    yield opened
    opened.close()


def test_controller_records_decision_runs_retrain_once_and_records_outcome(store: MonitorStore) -> None:
    calls: list[RetrainRequest] = []

    def retrain(request: RetrainRequest) -> dict:
        calls.append(request)
        return {"outcome": "promoted", "new_version": "4"}

    controller = RetrainController(store, retrain, config=CONFIG)
    first = controller.evaluate("credit-default", "3", now=NOW)
    second = controller.evaluate("credit-default", "3", now=NOW + HOUR)
    assert first.action is Action.RETRAIN and second.action is Action.NONE  # old signals were acted upon
    assert len(calls) == 1
    assert calls[0].labelled_rows["label"].tolist() == [0, 1, 0, 1, 0, 1]
    [stored] = store.decisions("credit-default")
    assert (stored.action, stored.outcome, stored.reasons) == ("retrain", "promoted", ["drift"])
    assert stored.evidence["drift"]["signals"] == 3
    assert store.lease_holder("credit-default") is None


def test_controller_refuses_a_second_concurrent_retrain(store: MonitorStore) -> None:
    started, release = threading.Event(), threading.Event()

    def slow_retrain(request: RetrainRequest) -> dict:
        started.set()
        release.wait(10)
        return {"outcome": "not_promoted"}

    first = RetrainController(store, slow_retrain, config=CONFIG, holder="first")
    second = RetrainController(store, slow_retrain, config=PolicyConfig(cooldown_seconds=0), holder="second")
    worker = threading.Thread(target=first.evaluate, args=("credit-default", "3"), kwargs={"now": NOW})
    worker.start()
    assert started.wait(10)
    # A new trigger (age) arrives while the first retrain runs: the lease refuses it.
    refused = second.evaluate("credit-default", "3", now=NOW + 1, model_created_at=NOW - 60 * DAY)
    release.set()
    worker.join(10)
    assert refused.action is Action.SUPPRESSED and refused.blocked_by == "retrain_in_progress"
    outcomes = [(decision.action, decision.outcome) for decision in store.decisions("credit-default")]
    assert outcomes == [("retrain", "not_promoted"), ("suppressed", "blocked: retrain_in_progress")]


def test_failed_retrain_is_recorded_and_releases_the_lease(store: MonitorStore) -> None:
    def broken(request: RetrainRequest) -> dict:
        raise RuntimeError("pipeline exploded")

    RetrainController(store, broken, config=CONFIG).evaluate("credit-default", "3", now=NOW)
    [stored] = store.decisions("credit-default")
    assert stored.outcome == "failed" and "pipeline exploded" in stored.outcome_detail["error"]
    assert store.lease_holder("credit-default", now=NOW) is None


def test_export_labelled_rows_keeps_only_labelled_rows_since(store: MonitorStore) -> None:
    frame = export_labelled_rows(store, "credit-default", NOW - DAY + 2, label_column="default")
    assert frame["income"].tolist() == [2, 3, 4, 5]
    assert frame["default"].tolist() == [0, 1, 0, 1]


def test_a_retrain_that_started_nothing_does_not_start_the_cool_down(store: MonitorStore) -> None:
    outcomes = iter([{"outcome": "submit_failed", "error": "KFP API unreachable"}, {"outcome": "submitted"}])
    controller = RetrainController(store, lambda request: next(outcomes), config=CONFIG)
    first = controller.evaluate("credit-default", "3", now=NOW)
    # The KFP API was down: nothing ran, so the same signals still count and no cool-down blocks the retry.
    second = controller.evaluate("credit-default", "3", now=NOW + HOUR)
    third = controller.evaluate("credit-default", "3", now=NOW + 2 * HOUR)
    assert (first.action, second.action) == (Action.RETRAIN, Action.RETRAIN)
    # Once a run was submitted, its signals were acted upon.
    assert third.action is Action.NONE
    assert [decision.outcome for decision in store.decisions("credit-default")] == [
        "submit_failed",
        "submitted",
    ]
