"""A bad label that got stored must not blind a model's checks (one row cannot stop a window's metrics)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from platform_components.monitoring.monitor import MonitorConfig, run_check
from platform_components.monitoring.profile import build_reference_profile
from platform_components.monitoring.store import MonitorStore
from platform_components.serving.predlog import PredictionRecord


def test_a_label_outside_0_and_1_is_left_out_and_the_check_still_scores_the_rest(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    income = rng.normal(50, 10, 400)
    truth = (income > 50).astype(int)
    scores = np.clip((income - 30) / 40, 0, 1)  # ranks rows by income: ROC AUC near 1
    profile = build_reference_profile(
        pd.DataFrame({"income": rng.normal(50, 10, 2_000)}), numeric=["income"], categorical=[]
    )
    start = 1_700_000_000.0 + 100  # inside one aligned 5,000 s window (1.7e9 is a multiple of 5,000)
    with MonitorStore(tmp_path / "monitor.sqlite") as store:
        store.ingest(
            PredictionRecord(f"r{i}", "m", "1", start + i, {"income": [income[i]]}, {"p": [[1 - s, s]]})
            for i, s in enumerate(scores)
        )
        for index, label in enumerate(truth):
            store.add_labels(f"r{index}", [2 if index == 0 else int(label)])  # one label is not 0 or 1
        result = run_check(
            store,
            "m",
            "1",
            profile,
            window_seconds=5_000,
            config=MonitorConfig(min_labels=50),
            now=start + 400,
        )
    assert result.performance is not None
    assert result.performance["roc_auc"] > 0.95
    assert result.performance["rows"] == 399
