"""Event time, aligned windows (one stored result each) and estimated performance recorded per window."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from platform_components.monitoring.errors import InvalidInput
from platform_components.monitoring.estimate import METADATA_KEY, fit_estimator
from platform_components.monitoring.monitor import (
    MonitorConfig,
    MonitorResult,
    refresh_realised,
    run_check,
    window_bounds,
)
from platform_components.monitoring.profile import ReferenceProfile, build_reference_profile
from platform_components.monitoring.store import MonitorStore, open_store
from platform_components.serving.predlog import PredictionRecord

DAY = 86_400.0
DAY0 = 20_000 * DAY  # 2024-10-04 00:00 UTC, a window boundary for daily windows
WEEK = 7 * DAY


def test_windows_are_aligned_to_multiples_of_their_length() -> None:
    assert window_bounds(DAY0, DAY) == (DAY0, DAY0 + DAY)
    assert window_bounds(DAY0 + 5.0, DAY) == (DAY0, DAY0 + DAY)
    assert window_bounds(DAY0 + DAY - 1e-3, DAY) == (DAY0, DAY0 + DAY)
    assert window_bounds(DAY0 + DAY, DAY) == (DAY0 + DAY, DAY0 + 2 * DAY)
    start, end = window_bounds(1_733_000_123.456, 3_600.0)
    assert start % 3_600 == 0 and start <= 1_733_000_123.456 < end == start + 3_600
    with pytest.raises(InvalidInput, match="window_seconds=0 must be > 0"):
        window_bounds(DAY0, 0)
    with pytest.raises(InvalidInput, match="now=nan is not a finite time"):
        window_bounds(math.nan, DAY)


def _world(rows: int, rng: np.random.Generator, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and the model's (calibrated) positive-class probability: P(y=1 | x) = expit(2 x)."""
    x = rng.normal(shift, 1.0, rows)
    return x, expit(2.0 * x)


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    rng = np.random.default_rng(0)
    x, p = _world(3_000, rng)
    labels = (rng.random(len(p)) < p).astype(int)
    estimator = fit_estimator(labels, p, seed=0)
    return build_reference_profile(
        pd.DataFrame({"x": x}),
        numeric=["x"],
        categorical=[],
        prediction_scores=p,
        metadata={METADATA_KEY: estimator.to_dict()},
    )


def _serve(store: MonitorStore, rng: np.random.Generator, times: np.ndarray, prefix: str) -> dict[str, int]:
    """One-row predictions at ``times``; returns request id -> the label the world will give it."""
    x, p = _world(len(times), rng, shift=0.5)
    truth = (rng.random(len(p)) < p).astype(int)
    store.ingest(
        PredictionRecord(f"{prefix}{i}", "m", "1", float(t), {"x": [float(x[i])]}, {"p": [[1 - p[i], p[i]]]})
        for i, t in enumerate(times)
    )
    return {f"{prefix}{i}": int(label) for i, label in enumerate(truth)}


def test_the_event_clock_is_the_latest_prediction_or_label_time(store_url: str) -> None:
    with open_store(store_url) as store:
        assert store.event_clock("m") is None
        truth = _serve(store, np.random.default_rng(1), DAY0 + np.arange(3) * 10.0, "r")
        assert store.event_clock("m") == DAY0 + 20.0
        store.add_labels("r0", [truth["r0"]], received_at=DAY0 + 500.0)
        assert store.event_clock("m") == DAY0 + 500.0
        assert store.event_clock("other") is None


def test_a_window_has_its_estimate_before_its_labels_and_the_realised_value_beside_it_after(
    store_url: str, profile: ReferenceProfile
) -> None:
    rng = np.random.default_rng(2)
    with open_store(store_url) as store:
        truth = _serve(store, rng, DAY0 + np.arange(600) * 140.0, "r")  # one day of traffic
        checked = run_check(store, "m", "1", profile, window_seconds=DAY)  # now: the event clock
        assert (checked.window_start, checked.window_end) == (DAY0, DAY0 + DAY)
        assert checked.checked_at == DAY0 + 599 * 140.0
        assert checked.labelled_rows == 0 and checked.performance is None and checked.comparison is None
        assert checked.estimated is not None and checked.estimated_at == checked.checked_at
        assert checked.estimated["rows"] == 600
        auc = checked.estimated["roc_auc"]
        assert auc["lower"] < auc["value"] < auc["upper"]
        stored_before = store.result_for("m", "1", DAY0)
        assert stored_before is not None and stored_before["estimated"] == checked.estimated

        # The labels come a day later, with their event times, and go to the stored window.
        labelled_at = DAY0 + 2 * DAY
        for request_id, label in truth.items():
            store.add_labels(request_id, [label], received_at=labelled_at)
        assert store.event_clock("m") == labelled_at
        changed = refresh_realised(store, "m", "1", now=labelled_at, lookback_seconds=WEEK, min_labels=50)
        assert [item.window_start for item in changed] == [DAY0]
        after = store.result_for("m", "1", DAY0)
        assert after is not None
        assert after["estimated"] == stored_before["estimated"]  # the estimate stays as it was
        assert after["estimated_at"] == stored_before["estimated_at"] == checked.checked_at
        assert after["checked_at"] == checked.checked_at and after["drift_share"] == checked.drift_share
        assert after["labelled_rows"] == 600 and after["performance"]["rows"] == 600
        comparison = after["comparison"]["roc_auc"]
        assert comparison["realised"] == pytest.approx(after["performance"]["roc_auc"])
        assert comparison["estimated"] == auc["value"]
        assert comparison["error"] == pytest.approx(auc["value"] - after["performance"]["roc_auc"])
        assert abs(comparison["error"]) < 0.06  # covariate shift only: the estimate's assumption holds
        assert set(after["comparison"]) == {"accuracy", "roc_auc"}

        # Nothing new: nothing changes; a re-check of the window keeps the estimate and shows both.
        assert refresh_realised(store, "m", "1", now=labelled_at, lookback_seconds=WEEK, min_labels=50) == []
        again = run_check(store, "m", "1", profile, window_seconds=DAY, now=DAY0 + DAY - 1)
        assert again.estimated == checked.estimated and again.estimated_at == checked.estimated_at
        assert again.comparison == after["comparison"]
        assert len(store.results("m")) == 1


def test_refresh_looks_back_only_as_far_as_asked_and_needs_enough_labels(
    store_url: str, profile: ReferenceProfile
) -> None:
    rng = np.random.default_rng(3)
    with open_store(store_url) as store:
        truth = {}
        for day in range(3):
            times = DAY0 + day * DAY + np.arange(100) * 800.0
            truth |= _serve(store, rng, times, f"d{day}-")
            run_check(store, "m", "1", profile, window_seconds=DAY, now=float(times[-1]))
        assert [item["window_start"] for item in store.results("m")] == [DAY0, DAY0 + DAY, DAY0 + 2 * DAY]
        for request_id, label in truth.items():
            if not request_id.startswith("d2-") or int(request_id.split("-")[1]) < 30:
                store.add_labels(request_id, [label], received_at=DAY0 + 3 * DAY)
        now = DAY0 + 3 * DAY
        # Look back 1.5 days: day 0's window ended 2 days ago and is left alone.
        changed = refresh_realised(store, "m", "1", now=now, lookback_seconds=1.5 * DAY, min_labels=50)
        assert [item.window_start for item in changed] == [DAY0 + DAY, DAY0 + 2 * DAY]
        day1, day2 = changed
        assert day1.performance is not None and day1.comparison is not None
        # Day 2 gained 30 labels: counted, but too few for realised performance or a comparison.
        assert day2.labelled_rows == 30 and day2.performance is None and day2.comparison is None
        assert store.result_for("m", "1", DAY0)["labelled_rows"] == 0
        with pytest.raises(InvalidInput, match="lookback_seconds=-1"):
            refresh_realised(store, "m", "1", now=now, lookback_seconds=-1, min_labels=50)


def test_rows_after_the_last_check_are_estimated_from_scores_when_the_refresh_has_the_profile(
    store_url: str, profile: ReferenceProfile
) -> None:
    rng = np.random.default_rng(4)
    with open_store(store_url) as store:
        truth = _serve(store, rng, DAY0 + np.arange(200) * 100.0, "a")
        first = run_check(store, "m", "1", profile, window_seconds=DAY)
        assert first.estimated["rows"] == 200
        truth |= _serve(store, rng, DAY0 + 30_000 + np.arange(200) * 100.0, "b")  # after the check
        for request_id, label in truth.items():
            store.add_labels(request_id, [label], received_at=DAY0 + DAY + 60)
        now = DAY0 + DAY + 60
        (without,) = refresh_realised(store, "m", "1", now=now, lookback_seconds=WEEK, min_labels=50)
        # The estimate covered 200 of the 400 labelled rows: no like-for-like comparison without the profile.
        assert without.estimated == first.estimated and without.comparison is None
        assert without.performance["rows"] == 400
        (remade,) = refresh_realised(
            store, "m", "1", now=now, lookback_seconds=WEEK, min_labels=50, profile=profile
        )
        assert remade.estimated["rows"] == 400 and remade.estimated_at == now
        assert remade.comparison["roc_auc"]["realised"] == pytest.approx(remade.performance["roc_auc"])


def test_one_result_per_window_and_the_latest_window_is_the_models_latest(
    store_url: str, profile: ReferenceProfile
) -> None:
    rng = np.random.default_rng(5)
    with open_store(store_url) as store:
        _serve(store, rng, DAY0 + np.arange(100) * 60.0, "a")
        run_check(store, "m", "1", profile, window_seconds=DAY, now=DAY0 + 3_000)
        run_check(store, "m", "1", profile, window_seconds=DAY, now=DAY0 + 6_000)
        (only,) = store.results("m")
        assert only["checked_at"] == DAY0 + 6_000 and only["rows"] == 100
        _serve(store, rng, DAY0 + DAY + np.arange(100) * 60.0, "b")
        run_check(store, "m", "1", profile, window_seconds=DAY, now=DAY0 + DAY + 6_000)
        # A late re-check of the older window updates it but does not make it the latest.
        run_check(store, "m", "1", profile, window_seconds=DAY, now=DAY0 + DAY - 1)
        assert [item["window_start"] for item in store.results("m")] == [DAY0, DAY0 + DAY]
        assert store.latest_result("m")["window_start"] == DAY0 + DAY
        assert store.latest_results()["m"]["window_start"] == DAY0 + DAY
        assert store.counts_by_model()["m"]["checks"] == 2


# monitor_results as this module's store created it before windows were aligned (no unique window key).
_OLD_RESULTS_TABLE = """
CREATE TABLE monitor_results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    checked_at REAL NOT NULL,
    window_start REAL NOT NULL,
    window_end REAL NOT NULL,
    result TEXT NOT NULL
);
CREATE INDEX monitor_results_by_model ON monitor_results (model, checked_at);
"""


def _old_result(checked_at: float, window_start: float) -> dict:
    """A stored result as the old code wrote it: none of the estimate's fields."""
    return {
        "model": "m",
        "version": "1",
        "checked_at": checked_at,
        "window_start": window_start,
        "window_end": window_start + DAY,
        "status": "ok",
        "rows": 10,
        "labelled_rows": 0,
        "drift_share": 0.0,
        "drifted_features": [],
        "max_psi": 0.01,
        "features": {},
        "prediction": None,
        "quality": {},
        "performance": None,
        "performance_over_time": [],
        "config": {"alpha": 0.05},
    }


def test_a_store_file_made_by_the_old_schema_gets_one_result_per_window(tmp_path: Path) -> None:
    path = tmp_path / "monitor.sqlite"
    connection = sqlite3.connect(path)
    connection.executescript(_OLD_RESULTS_TABLE)
    for checked_at, window_start in ((100.0, DAY0), (200.0, DAY0), (300.0, DAY0 + DAY)):
        connection.execute(
            "INSERT INTO monitor_results (model, version, checked_at, window_start, window_end, result) "
            "VALUES ('m', '1', ?, ?, ?, ?)",
            (checked_at, window_start, window_start + DAY, json.dumps(_old_result(checked_at, window_start))),
        )
    connection.commit()
    connection.close()

    with MonitorStore(path) as store:
        stored = store.results("m")
        assert [(item["window_start"], item["checked_at"]) for item in stored] == [
            (DAY0, 200.0),
            (DAY0 + DAY, 300.0),
        ]
        loaded = MonitorResult.from_dict(stored[0])  # an old dict loads, the new fields at their defaults
        assert loaded.estimated is None and loaded.estimated_at is None and loaded.comparison is None
        store.save_result(
            "m",
            "1",
            checked_at=400.0,
            window_start=DAY0,
            window_end=DAY0 + DAY,
            result=_old_result(400, DAY0),
        )
        assert [item["checked_at"] for item in store.results("m")] == [400.0, 300.0]
    with MonitorStore(path) as store:  # opening again migrates nothing and loses nothing
        assert len(store.results("m")) == 2
    assert MonitorResult.from_dict({**_old_result(1.0, DAY0), "from_a_newer_writer": 1}).rows == 10


def test_the_estimate_is_among_the_results_metrics(store_url: str, profile: ReferenceProfile) -> None:
    with open_store(store_url) as store:
        _serve(store, np.random.default_rng(6), DAY0 + np.arange(300) * 60.0, "r")
        result = run_check(store, "m", "1", profile, window_seconds=DAY)
    metrics = result.metrics()
    for name in (
        "estimated_roc_auc",
        "estimated_roc_auc_lower",
        "estimated_roc_auc_upper",
        "estimated_accuracy",
    ):
        assert 0 < metrics[name] <= 1
    assert 0 <= metrics["estimated_outside_reference_share"] <= 1


def test_no_estimate_without_an_estimator_for_a_regressor_or_on_too_few_rows(store_url: str) -> None:
    frame = pd.DataFrame({"x": np.random.default_rng(7).normal(0, 1, 500)})
    bare = build_reference_profile(frame, numeric=["x"], categorical=[])
    with open_store(store_url) as store:
        _serve(store, np.random.default_rng(8), DAY0 + np.arange(100) * 60.0, "r")
        assert run_check(store, "m", "1", bare, window_seconds=DAY).estimated is None
        broken = build_reference_profile(
            frame, numeric=["x"], categorical=[], metadata={METADATA_KEY: {"a": 1}}
        )
        assert (
            run_check(store, "m", "1", broken, window_seconds=DAY).estimated is None
        )  # logged, check goes on
        regression = MonitorConfig(task="regression")
        assert run_check(store, "m", "1", bare, window_seconds=DAY, config=regression).estimated is None


def test_a_classifier_with_labels_and_an_estimate_has_23_monitor_series(
    store_url: str, profile: ReferenceProfile
) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from platform_components.monitoring.service import StoreCollector

    with open_store(store_url) as store:
        truth = _serve(store, np.random.default_rng(9), DAY0 + np.arange(300) * 60.0, "r")
        for request_id, label in truth.items():
            store.add_labels(request_id, [label], received_at=DAY0 + 20_000)
        result = run_check(store, "m", "1", profile, window_seconds=DAY)
        assert result.performance is not None and result.estimated is not None
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StoreCollector(store))
        text = generate_latest(registry).decode()
    series = [line.split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")]
    # 10 gauges of the check (no mae/rmse for a classifier), 2 of the estimate, 3 counters.
    assert len(series) == 15, series
    assert 'mlops_monitor_estimated_roc_auc{model="m",version="1"}' in series


def test_the_report_plots_estimated_and_realised_roc_auc_per_window_and_states_the_assumption(
    store_url: str, profile: ReferenceProfile
) -> None:
    import html

    from platform_components.monitoring.estimate import ASSUMPTION
    from platform_components.monitoring.report import estimate_series, render_report

    rng = np.random.default_rng(10)
    with open_store(store_url) as store:
        truth: dict[str, int] = {}
        for day in range(3):
            times = DAY0 + day * DAY + np.arange(200) * 400.0
            truth |= _serve(store, rng, times, f"d{day}-")
            run_check(store, "m", "1", profile, window_seconds=DAY, now=float(times[-1]))
        for request_id, label in truth.items():
            if not request_id.startswith("d2-"):  # the last day's labels have not come yet
                store.add_labels(request_id, [label], received_at=DAY0 + 3 * DAY)
        refresh_realised(store, "m", "1", now=DAY0 + 3 * DAY, lookback_seconds=WEEK, min_labels=50)
        history = store.results("m")
    series = estimate_series(history)
    assert [item["window_start"] for item in series] == [DAY0, DAY0 + DAY, DAY0 + 2 * DAY]
    assert all(item["lower"] <= item["estimated"] <= item["upper"] for item in series)
    assert [item["realised"] is None for item in series] == [False, False, True]
    assert series[0]["realised"] == history[0]["performance"]["roc_auc"]
    page = render_report(MonitorResult.from_dict(history[-1]), history[:-1])
    assert html.escape(ASSUMPTION) in page
    assert 'alt="estimated and realised ROC AUC per window" src="data:image/png;base64,' in page
    assert "estimated " in page and "band " in page


def test_two_versions_in_one_window_the_latest_checked_is_the_models_latest(store_url: str) -> None:
    with open_store(store_url) as store:
        for version, checked_at in (("1", 10.0), ("2", 20.0), ("1", 5.0)):
            result = {**_old_result(checked_at, DAY0), "version": version}
            store.save_result(
                "m", version, checked_at=checked_at, window_start=DAY0, window_end=DAY0 + DAY, result=result
            )
        assert len(store.results("m")) == 2  # one per (version, window)
        assert store.latest_results()["m"]["version"] == "2"
        assert store.latest_result("m")["version"] == "2"
        store.save_result(
            "m",
            "1",
            checked_at=30.0,
            window_start=DAY0,
            window_end=DAY0 + DAY,
            result=_old_result(30.0, DAY0),
        )
        assert store.latest_results()["m"]["version"] == "1" == store.latest_result("m")["version"]
