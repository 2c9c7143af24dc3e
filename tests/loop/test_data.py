"""Which rows a retrain trains and gates on: since the change, wait, widen, no broken rows, gate newest."""

from __future__ import annotations

from pathlib import Path

import pytest

from platform_components.loop.data import Waiting, broken_spans, select
from platform_components.monitoring.store import MonitorStore
from platform_components.serving.predlog import PredictionRecord
from platform_components.settings import LoopPolicy

DAY = 86400.0
POLICY = LoopPolicy(min_training_rows=400, gate_rows=100)


@pytest.fixture
def store(tmp_path: Path):
    """Days 0-9, 100 labelled rows a day; ``x`` is the day, so every row says where it came from."""
    opened = MonitorStore(tmp_path / "monitor.sqlite")
    records = []
    for day in range(10):
        for index in range(100):
            records.append(
                PredictionRecord(
                    f"d{day}-{index}",
                    "m",
                    "1",
                    day * DAY + index * 60.0,
                    {"x": [float(day)], "y": [index]},
                    {"p": [[0.5, 0.5]]},
                )
            )
    opened.ingest(records)
    for record in records:
        opened.add_labels(record.request_id, [int(record.inputs["y"][0]) % 2])
    yield opened
    opened.close()


def days_of(frame) -> set[int]:
    return {int(value) for value in frame["x"]}


def test_rows_since_the_change_and_the_newest_held_out_for_the_gate(store: MonitorStore) -> None:
    chosen = select(store, "m", POLICY, now=10 * DAY, change_at=5 * DAY)
    assert not isinstance(chosen, Waiting)
    assert days_of(chosen.train) | days_of(chosen.gate) == {5, 6, 7, 8, 9}
    assert len(chosen.gate) == 100 and days_of(chosen.gate) == {9}  # the newest rows
    assert len(chosen.train) == 400 and 9 not in days_of(chosen.train)
    assert list(chosen.train.columns) == ["x", "y", "label"]
    assert chosen.selection["rows_since_change"] == 500 and not chosen.selection["widened"]


def test_too_few_rows_since_a_young_change_waits(store: MonitorStore) -> None:
    chosen = select(store, "m", POLICY, now=10 * DAY, change_at=8 * DAY)
    assert isinstance(chosen, Waiting)
    assert chosen.rows == 200 and "min_training_rows=400" in chosen.reason


def test_too_few_rows_since_an_old_enough_change_widens_back_in_time(store: MonitorStore) -> None:
    policy = LoopPolicy(min_training_rows=400, gate_rows=100, max_wait_for_rows="1d")
    chosen = select(store, "m", policy, now=10 * DAY, change_at=8 * DAY)
    assert not isinstance(chosen, Waiting)
    assert chosen.selection["widened"]
    assert days_of(chosen.train) | days_of(chosen.gate) == {6, 7, 8, 9}  # the newest 400 rows


def test_recent_mode_takes_the_training_window(store: MonitorStore) -> None:
    policy = LoopPolicy(
        training_data="recent", max_training_window="4d", min_training_rows=400, gate_rows=100, lookback="3d"
    )
    chosen = select(store, "m", policy, now=10 * DAY, change_at=8 * DAY)
    assert days_of(chosen.train) | days_of(chosen.gate) == {6, 7, 8, 9}


def test_rows_of_broken_windows_never_train(store: MonitorStore) -> None:
    broken_quality = {"features": {"x": {"rows": 100, "missing_rate": 0.5, "reference_missing_rate": 0.0}}}
    windows = [
        {
            "window_start": day * DAY,
            "window_end": (day + 1) * DAY,
            "quality": broken_quality if day == 7 else {},
        }
        for day in range(10)
    ]
    spans = broken_spans(windows, POLICY)
    assert spans == [(7 * DAY, 8 * DAY)]
    chosen = select(store, "m", POLICY, now=10 * DAY, change_at=3 * DAY, broken=spans)
    assert 7 not in days_of(chosen.train) | days_of(chosen.gate)
    assert chosen.selection["broken_rows_excluded"] == 100


def test_the_retrain_once_settled_takes_the_later_half_of_the_rows_since_the_change(
    store: MonitorStore,
) -> None:
    chosen = select(store, "m", POLICY, now=10 * DAY, change_at=2 * DAY, settled=True)
    assert chosen.selection["mode"] == "since_change_settled"
    assert days_of(chosen.train) | days_of(chosen.gate) == {6, 7, 8, 9}  # since day 6, halfway from day 2
    too_few = LoopPolicy(min_training_rows=700, gate_rows=100)
    fallback = select(store, "m", too_few, now=10 * DAY, change_at=2 * DAY, settled=True)
    assert fallback.selection["mode"] == "since_change" and min(days_of(fallback.train)) == 2


def test_the_last_started_retrain_skips_decisions_that_started_nothing(store: MonitorStore) -> None:
    from platform_components.loop.models import local_model
    from platform_components.loop.round import Loop
    from platform_components.settings import PolicySettings

    store.record_decision(
        "m", "1", action="retrain", reasons=["drift"], evidence={}, outcome="promoted", decided_at=1.0
    )
    store.record_decision(
        "m", "1", action="suppressed", reasons=["drift"], evidence={}, outcome="x", decided_at=2.0
    )
    store.record_decision(
        "m", "1", action="retrain", reasons=["drift"], evidence={}, outcome="not_started", decided_at=3.0
    )
    last = Loop(store, "unused")._last_retrain(local_model("m", PolicySettings()).name)
    assert (last.decided_at, last.outcome) == (
        1.0,
        "promoted",
    )  # a retrain that started nothing: no cool-down
