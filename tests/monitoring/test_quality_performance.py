"""Quality checks on known windows; performance metrics agree with scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk

from platform_components.monitoring.errors import InvalidInput
from platform_components.monitoring.performance import (
    classifier_metrics,
    expected_calibration_error,
    regressor_metrics,
    roc_auc,
)
from platform_components.monitoring.profile import build_reference_profile
from platform_components.monitoring.quality import check_quality


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rows", [20, 1_000])
def test_classifier_metrics_agree_with_sklearn(seed: int, rows: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, rows)
    scores = np.clip(labels * 0.3 + rng.uniform(0, 0.7, rows), 0, 1).round(2)  # rounding makes ties
    ours = classifier_metrics(labels, scores)
    assert ours.accuracy == pytest.approx(sk.accuracy_score(labels, scores >= 0.5))
    assert ours.roc_auc == pytest.approx(sk.roc_auc_score(labels, scores), rel=1e-12)
    assert ours.brier == pytest.approx(sk.brier_score_loss(labels, scores))
    assert ours.rows == rows and ours.positive_rate == pytest.approx(labels.mean())


def test_ece_is_small_when_calibrated_and_exact_for_two_bins() -> None:
    rng = np.random.default_rng(3)
    scores = rng.uniform(0, 1, 5_000)
    labels = (rng.uniform(0, 1, 5_000) < scores).astype(int)  # calibrated by construction
    assert expected_calibration_error(labels, scores) < 0.03
    # Hard 0/1 scores fill two bins: ECE = share_high * |rate_high - 1| + share_low * |rate_low - 0|.
    high = scores > 0.5
    hard = high.astype(float)
    expected = high.mean() * abs(labels[high].mean() - 1) + (~high).mean() * labels[~high].mean()
    assert expected_calibration_error(labels, hard) == pytest.approx(expected)


def test_regressor_metrics_agree_with_sklearn() -> None:
    rng = np.random.default_rng(4)
    targets, predictions = rng.normal(size=300), rng.normal(size=300)
    ours = regressor_metrics(targets, predictions)
    assert ours.mae == pytest.approx(sk.mean_absolute_error(targets, predictions))
    assert ours.rmse == pytest.approx(np.sqrt(sk.mean_squared_error(targets, predictions)))


def test_metric_inputs_are_validated() -> None:
    assert roc_auc([1, 1, 1], [0.2, 0.4, 0.9]) is None  # one class: undefined, not an error
    with pytest.raises(InvalidInput, match=r"labels must be 0 or 1 .*got e.g. \[2.0\]"):
        classifier_metrics([0, 2], [0.1, 0.2])
    with pytest.raises(InvalidInput, match=r"scores must be probabilities in \[0, 1\]"):
        classifier_metrics([0, 1], [0.1, 1.2])
    with pytest.raises(InvalidInput, match="no labelled rows"):
        classifier_metrics([], [])


def test_quality_counts_missing_out_of_range_and_unseen() -> None:
    reference = pd.DataFrame({"income": np.linspace(10, 100, 500), "city": ["a", "b"] * 250})
    profile = build_reference_profile(reference, numeric=["income"], categorical=["city"])
    window = pd.DataFrame({"income": [5.0, 50.0, 150.0, np.nan, "n/a"], "city": ["a", "c", None, "d", "c"]})
    report = check_quality(window, profile)
    income, city = report.features["income"], report.features["city"]
    assert income.missing_rate == pytest.approx(2 / 5)  # NaN and a non-number
    assert income.out_of_range_rate == pytest.approx(2 / 3)
    assert city.missing_rate == pytest.approx(1 / 5)
    assert city.unseen_rate == pytest.approx(3 / 4) and city.unseen_examples == ("c", "d")
    absent = check_quality(window.drop(columns=["city"]), profile)
    assert absent.absent_columns == ["city"] and absent.features["city"].missing_rate == 1.0
