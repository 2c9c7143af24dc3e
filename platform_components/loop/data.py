"""Which labelled rows a retrain trains on and which it is gated on, chosen from evidence.

``select(...)`` follows the policy's ``training_data``:

- ``since_change`` (the default): the rows predicted since the change the monitor detected (the start of
  the first alarm window, ``Decision.change_at``). Older rows describe a world that is gone: mixed in, they
  make a challenger that fits neither, and a gate drawn from the same mixture promotes it. When there are
  fewer than ``min_training_rows`` rows since the change, the retrain **waits** (``Waiting``) while the
  change is younger than ``max_wait_for_rows``, then widens back in time to the most recent
  ``min_training_rows`` rows.
- ``recent``, or no change to follow (the age trigger): the labelled rows of the last
  ``max_training_window``.

The retrain once the change has settled (the ``settled`` trigger) takes the later half of the rows since the
change when there are enough: a change that ramps in over days leaves its first days describing neither world.

Never older than ``max_training_window``; never rows of a window whose quality check marked a feature broken
(``policy.broken_features``). The **gate** is the most recent ``gate_rows`` labelled rows, held out of the
training rows: the promotion gate compares challenger and champion on the world as it is now.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from platform_components.loop.interfaces import TrainingData
from platform_components.loop.policy import broken_features
from platform_components.monitoring.store import LABEL_COLUMN, TIMESTAMP_COLUMN, MonitorStore
from platform_components.settings import LoopPolicy


@dataclass(frozen=True)
class Waiting:
    """Not enough rows yet: why, and how many there are."""

    reason: str
    rows: int
    selection: Mapping[str, Any]


def _when(event_time: float) -> str:
    return dt.datetime.fromtimestamp(event_time, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def labelled_rows(
    store: MonitorStore, model: str, *, start: float, end: float, label_column: str = "label"
) -> pd.DataFrame:
    """Labelled rows of every version of ``model`` predicted in ``[start, end)``, oldest first.

    Columns: the logged input features, ``label_column``, and ``timestamp`` (prediction event time).
    """
    window = store.window(model, None, start=start, end=end, labelled_only=True, limit=None)
    if window.empty:
        return pd.DataFrame(columns=[label_column, "timestamp"])
    features = [column for column in window.columns if not column.startswith("__")]
    frame = window[features].copy()
    frame[label_column] = window[LABEL_COLUMN].to_numpy()
    frame["timestamp"] = window[TIMESTAMP_COLUMN].to_numpy()
    return frame.reset_index(drop=True)


def broken_spans(results: Sequence[Mapping[str, Any]], policy: LoopPolicy) -> list[tuple[float, float]]:
    """Event-time spans of windows with a broken feature."""
    return [
        (float(result["window_start"]), float(result["window_end"]))
        for result in results
        if "window_start" in result and broken_features(result, policy)
    ]


def select(
    store: MonitorStore,
    model: str,
    policy: LoopPolicy,
    *,
    now: float,
    change_at: float | None,
    broken: Sequence[tuple[float, float]] = (),
    label_column: str = "label",
    settled: bool = False,
) -> TrainingData | Waiting:
    """The training and gate rows for a retrain decided at ``now`` (see the module docstring).

    ``settled``: the retrain the policy makes once the change has settled (``settle_after``): it trains on
    the later half of the rows since the change when those are at least ``min_training_rows``. A change
    arrives over days (a ramp), and its first days describe neither world; by now the later half is the
    world as it is.
    """
    oldest = now - policy.max_training_window
    rows = labelled_rows(store, model, start=oldest, end=now + 1e-6, label_column=label_column)
    excluded = 0
    if len(rows) and broken:
        stamps = rows["timestamp"].to_numpy(dtype=float)
        keep = np.ones(len(rows), dtype=bool)
        for start, end in broken:
            keep &= ~((stamps >= start) & (stamps < end))
        excluded = int((~keep).sum())
        rows = rows[keep].reset_index(drop=True)
    selection: dict[str, Any] = {
        "mode": policy.training_data,
        "change_at": change_at,
        "oldest_allowed": oldest,
        "broken_rows_excluded": excluded,
        "widened": False,
    }
    if policy.training_data == "since_change" and change_at is not None:
        since = rows[rows["timestamp"] >= change_at]
        selection["rows_since_change"] = len(since)
        later = since[since["timestamp"] >= change_at + (now - change_at) / 2.0]
        if settled and len(later) >= policy.min_training_rows:
            rows = later
            selection["mode"] = "since_change_settled"
            selection["since"] = change_at + (now - change_at) / 2.0
        elif len(since) >= policy.min_training_rows:
            rows = since
        elif now - change_at < policy.max_wait_for_rows:
            return Waiting(
                f"{len(since)} labelled rows since the change at {_when(change_at)}, fewer than "
                f"min_training_rows={policy.min_training_rows}; waiting up to max_wait_for_rows="
                f"{policy.max_wait_for_rows / 86400:g}d for more",
                len(since),
                selection,
            )
        else:
            rows = rows.iloc[-policy.min_training_rows :]
            selection["widened"] = True
    else:
        selection["mode"] = "recent"
    if len(rows) < policy.min_training_rows:
        return Waiting(
            f"{len(rows)} labelled rows in the last max_training_window="
            f"{policy.max_training_window / 86400:g}d, "
            f"fewer than min_training_rows={policy.min_training_rows}",
            len(rows),
            selection,
        )
    rows = rows.sort_values("timestamp", kind="stable").reset_index(drop=True)
    gate = rows.iloc[-policy.gate_rows :]
    train = rows.iloc[: -policy.gate_rows]
    selection.update(
        train_rows=len(train),
        gate_rows=len(gate),
        train_span=[float(train["timestamp"].min()), float(train["timestamp"].max())],
        gate_span=[float(gate["timestamp"].min()), float(gate["timestamp"].max())],
    )
    return TrainingData(
        train=train.drop(columns=["timestamp"]).reset_index(drop=True),
        gate=gate.drop(columns=["timestamp"]).reset_index(drop=True),
        label_column=label_column,
        start=float(rows["timestamp"].min()),
        end=float(rows["timestamp"].max()),
        selection=selection,
    )
