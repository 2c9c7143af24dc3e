"""Drift verdicts: seeded false-alarm rate under the level, a 0.5 sd shift found at 1,000 rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from platform_components.monitoring.errors import InvalidInput
from platform_components.monitoring.monitor import MonitorConfig, check_frame
from platform_components.monitoring.profile import build_reference_profile
from platform_components.monitoring.stats import adjust_pvalues

FEATURES = [f"x{index}" for index in range(20)]


def gaussian_frame(
    rows: int, rng: np.random.Generator, shift: dict[str, float] | None = None
) -> pd.DataFrame:
    data = rng.normal(0.0, 1.0, (rows, len(FEATURES)))
    frame = pd.DataFrame(data, columns=FEATURES)
    for name, amount in (shift or {}).items():
        frame[name] += amount
    return frame


@pytest.fixture(scope="module")
def reference_profile():
    return build_reference_profile(
        gaussian_frame(20_000, np.random.default_rng(2026)), numeric=FEATURES, categorical=[]
    )


def test_false_alarm_rate_on_unshifted_data_is_at_most_the_level(reference_profile) -> None:
    rng = np.random.default_rng(7)
    checks, alpha = 200, 0.05
    # Raw p-values once per window, then every correction on the same windows (a third of the cost).
    raw = [
        [
            item.pvalue
            for item in check_frame(
                gaussian_frame(1_000, rng), reference_profile, MonitorConfig(correction="none")
            ).features.values()
        ]
        for _ in range(checks)
    ]
    for correction in ("bh", "holm", "bonferroni"):
        alarms = sum(bool((adjust_pvalues(pvalues, correction) < alpha).any()) for pvalues in raw)
        # The family-wise rate must stay at or under alpha (10 of 200): an alarm is any feature drifting.
        assert alarms / checks <= alpha, f"{correction}: {alarms} of {checks} unshifted checks raised drift"
    # Uncorrected, the same windows alarm far more often: the correction is what keeps the rate down.
    uncorrected = sum(bool((np.array(pvalues) < alpha).any()) for pvalues in raw)
    assert uncorrected / checks > 0.3


def test_half_sd_shift_on_two_of_twenty_features_is_found_at_1000_rows(reference_profile) -> None:
    rng = np.random.default_rng(11)
    found, wrongly_flagged = 0, 0
    for _ in range(20):
        frame = gaussian_frame(1_000, rng, shift={"x3": 0.5, "x17": -0.5})
        report = check_frame(frame, reference_profile)
        found += {"x3", "x17"} <= set(report.drifted_features)
        wrongly_flagged += len(set(report.drifted_features) - {"x3", "x17"})
    assert found == 20
    # BH controls the false discovery rate, not the per-feature rate: with two true discoveries it lets a
    # few null features through. Require at most 5 % of the 20 x 18 unshifted feature checks.
    assert wrongly_flagged <= 18, f"{wrongly_flagged} of 360 unshifted feature checks flagged"


def test_categorical_shift_and_unseen_categories() -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"purpose": rng.choice(["car", "house", "other"], 10_000, p=[0.5, 0.3, 0.2])})
    profile = build_reference_profile(reference, numeric=[], categorical=["purpose"])
    same = pd.DataFrame({"purpose": rng.choice(["car", "house", "other"], 1_000, p=[0.5, 0.3, 0.2])})
    assert check_frame(same, profile).drifted_features == []
    shifted = pd.DataFrame({"purpose": rng.choice(["car", "house", "boat"], 1_000, p=[0.3, 0.3, 0.4])})
    report = check_frame(shifted, profile)
    assert report.drifted_features == ["purpose"]
    assert report.quality["features"]["purpose"]["unseen_rate"] == pytest.approx(0.4, abs=0.05)
    assert report.quality["features"]["purpose"]["unseen_examples"] == ("boat",)


def test_broken_feature_shows_in_quality_and_drift() -> None:
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({"income": rng.normal(50_000, 5_000, 5_000), "age": rng.normal(40, 9, 5_000)})
    profile = build_reference_profile(reference, numeric=["income", "age"], categorical=[])
    window = pd.DataFrame({"income": rng.normal(50, 5, 1_000), "age": rng.normal(40, 9, 1_000)})
    window.loc[:299, "age"] = np.nan
    report = check_frame(window, profile)
    assert report.drifted_features == ["income"]
    assert report.quality["features"]["income"]["out_of_range_rate"] == 1.0
    assert report.quality["features"]["age"]["missing_rate"] == pytest.approx(0.3)
    assert report.max_psi > 5
    missing_column = check_frame(window.drop(columns=["age"]), profile)
    assert missing_column.quality["absent_columns"] == ["age"]
    assert missing_column.features["age"].pvalue is None and not missing_column.features["age"].drifted


def test_prediction_drift_uses_the_score_profile() -> None:
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"x": rng.normal(size=5_000)})
    profile = build_reference_profile(
        reference, numeric=["x"], categorical=[], prediction_scores=rng.beta(2, 8, 5_000)
    )
    window = pd.DataFrame({"x": rng.normal(size=1_000)})
    assert not check_frame(window, profile, scores=rng.beta(2, 8, 1_000)).prediction.drifted
    assert check_frame(window, profile, scores=rng.beta(4, 6, 1_000)).prediction.drifted


def test_small_windows_give_no_verdict_and_bad_config_is_named() -> None:
    rng = np.random.default_rng(6)
    profile = build_reference_profile(
        pd.DataFrame({"x": rng.normal(size=1_000)}), numeric=["x"], categorical=[]
    )
    report = check_frame(pd.DataFrame({"x": rng.normal(5, 1, 10)}), profile, MonitorConfig(min_rows=50))
    assert report.drifted_features == [] and report.features["x"].pvalue < 0.05
    with pytest.raises(InvalidInput, match="correction='sidak' is not known"):
        MonitorConfig(correction="sidak")
    with pytest.raises(InvalidInput, match=r"alpha=1.5 must be in \(0, 1\)"):
        MonitorConfig(alpha=1.5)
