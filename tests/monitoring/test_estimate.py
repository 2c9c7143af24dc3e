"""Estimated performance from calibrated scores: tracks under covariate shift, blind to concept shift.

The data come from a known logistic model: three standard-normal features, ``P(y=1|x) = sigmoid(x.w + b)``.
The "model" scores rows with that same function (a calibrated model), or with it at a different
temperature (same ranking, badly calibrated). Covariate shift changes the feature distribution and keeps
``P(y|x)``; concept shift keeps the features and changes ``P(y|x)``.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy.special import logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from upstream_facts import fact

from platform_components.monitoring import estimate as estimate_module
from platform_components.monitoring.errors import InvalidInput
from platform_components.monitoring.estimate import (
    ASSUMPTION,
    CALIBRATION_METHODS,
    PerformanceEstimator,
    compare_with_realised,
    estimated_drop,
    fit_estimator,
    fit_isotonic,
    fit_logistic,
)
from platform_components.monitoring.performance import classifier_metrics, roc_auc

WEIGHTS = np.array([1.4, -0.9, 0.6])
INTERCEPT = -1.2
# After the concept shift the first feature's effect is reversed and the third's grows.
SHIFTED_WEIGHTS = np.array([-0.6, -0.9, 1.2])
REFERENCE_ROWS = 10_000


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


def draw_features(
    rng: np.random.Generator, rows: int, *, mean: float = 0.0, scale: float = 1.0
) -> np.ndarray:
    """Features; ``mean`` and ``scale`` move the first one (covariate shift)."""
    features = rng.normal(0.0, 1.0, (rows, 3))
    features[:, 0] = mean + scale * features[:, 0]
    return features


def draw_labels(rng: np.random.Generator, features: np.ndarray, *, concept: bool = False) -> np.ndarray:
    weights = SHIFTED_WEIGHTS if concept else WEIGHTS
    return (rng.random(len(features)) < sigmoid(features @ weights + INTERCEPT)).astype(np.int64)


def model_scores(features: np.ndarray, *, temperature: float = 1.0, power: float = 1.0) -> np.ndarray:
    """The model: the true probability, distorted without changing the ranking.

    ``temperature`` scales the logit (a sigmoid-shaped miscalibration, what Platt scaling undoes);
    ``power`` raises the probability to a power (a shape Platt scaling cannot undo, isotonic can).
    """
    return sigmoid(temperature * (features @ WEIGHTS + INTERCEPT)) ** power


def window(
    rng: np.random.Generator,
    rows: int,
    *,
    mean: float = 0.0,
    scale: float = 1.0,
    concept: bool = False,
    temperature: float = 1.0,
    power: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores) of one window."""
    features = draw_features(rng, rows, mean=mean, scale=scale)
    scores = model_scores(features, temperature=temperature, power=power)
    return draw_labels(rng, features, concept=concept), scores


@pytest.fixture(scope="module")
def estimator() -> PerformanceEstimator:
    labels, scores = window(np.random.default_rng(100), REFERENCE_ROWS)
    return fit_estimator(labels, scores, seed=0)


def brute_force_expected_auc(probabilities: np.ndarray, scores: np.ndarray) -> float:
    """E[concordant pairs] / E[positive-negative pairs] over ordered pairs i != j (ties count half)."""
    concordant = 0.0
    pairs = 0.0
    for i in range(len(scores)):
        for j in range(len(scores)):
            if i == j:
                continue
            weight = probabilities[i] * (1.0 - probabilities[j])  # i positive, j negative
            pairs += weight
            concordant += weight * (1.0 if scores[i] > scores[j] else 0.5 if scores[i] == scores[j] else 0.0)
    return concordant / pairs


def test_expected_auc_is_the_ratio_of_expected_pair_counts_without_self_pairs() -> None:
    rng = np.random.default_rng(1)
    scores = rng.uniform(0, 1, 12).round(1)  # rounding makes ties
    # An estimator whose map is the identity, so the calibrated probabilities are the scores themselves.
    identity = PerformanceEstimator.from_dict(
        {
            **fit_estimator(*window(rng, 400), bootstrap_maps=0).to_dict(),
            "method": "isotonic",
            "calibration": {"kind": "isotonic", "scores": [0.0, 1.0], "probabilities": [0.0, 1.0]},
        }
    )
    estimated = identity.estimate(scores, draws=0)
    assert estimated.roc_auc is not None
    assert estimated.roc_auc.value == pytest.approx(brute_force_expected_auc(scores, scores), abs=1e-12)
    says_positive = scores >= 0.5
    assert estimated.accuracy.value == pytest.approx(np.mean(np.where(says_positive, scores, 1 - scores)))


def test_calibration_map_predicts_what_sklearn_isotonic_regression_predicts() -> None:
    assert fact("sklearn.isotonic.knots")[:2] == ("X_thresholds_", "y_thresholds_")
    assert fact("nannyml.cbpe.calibrator") in CALIBRATION_METHODS
    rng = np.random.default_rng(2)
    labels, scores = window(rng, 2_000, temperature=2.5)
    regression = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(scores, labels)
    ours = fit_isotonic(labels.astype(float), scores)
    # Inside the fitted range, beyond both ends, and on the knots themselves.
    probe = np.r_[rng.uniform(0, 1, 500), 0.0, 1.0, ours.scores]
    np.testing.assert_allclose(ours.apply(probe), regression.predict(probe), rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["isotonic", "logistic"])
def test_estimate_tracks_realised_performance_under_covariate_shift(method: str) -> None:
    estimator = fit_estimator(*window(np.random.default_rng(100), REFERENCE_ROWS), method=method)
    assert estimator.calibration.kind == method
    rng = np.random.default_rng(3)
    reference_auc = estimator.reference.roc_auc
    for mean, scale in [(0.0, 0.4), (1.5, 0.5), (-0.5, 1.8)]:
        auc_errors, accuracy_errors, realised_aucs = [], [], []
        for _ in range(5):
            labels, scores = window(rng, 2_000, mean=mean, scale=scale)
            estimated = estimator.estimate(scores, draws=0)
            realised = classifier_metrics(labels, scores)
            assert estimated.roc_auc is not None and realised.roc_auc is not None
            auc_errors.append(estimated.roc_auc.value - realised.roc_auc)
            accuracy_errors.append(estimated.accuracy.value - realised.accuracy)
            realised_aucs.append(realised.roc_auc)
        # The shift really moved the performance (so tracking it is not staying at the reference) ...
        assert abs(np.mean(realised_aucs) - reference_auc) > 0.04, (mean, scale)
        # ... and the estimate followed it.
        assert abs(np.mean(auc_errors)) < 0.015 and max(map(abs, auc_errors)) < 0.04, (mean, scale)
        assert abs(np.mean(accuracy_errors)) < 0.015 and max(map(abs, accuracy_errors)) < 0.04, (mean, scale)


def test_estimate_is_blind_to_concept_shift_by_contract(estimator: PerformanceEstimator) -> None:
    """The documented limit, asserted: P(y|x) changes, the scores do not, so the estimate stays put."""
    assert all(phrase in ASSUMPTION for phrase in fact("nannyml.cbpe.assumption"))
    assert "valid under covariate shift" in ASSUMPTION and "blind to concept shift" in ASSUMPTION
    rng = np.random.default_rng(4)
    labels, scores = window(rng, 3_000, concept=True)
    estimated = estimator.estimate(scores)
    realised = roc_auc(labels, scores)
    assert estimated.roc_auc is not None and realised is not None
    assert estimated.roc_auc.value == pytest.approx(estimator.reference.estimated_roc_auc, abs=0.02)
    assert realised < estimator.reference.roc_auc - 0.15
    assert estimated.roc_auc.lower is not None and realised < estimated.roc_auc.lower
    assert estimated.assumption == ASSUMPTION and estimated.to_dict()["assumption"] == ASSUMPTION


@pytest.mark.parametrize(
    ("method", "temperature", "power"),
    [("logistic", 3.0, 1.0), ("isotonic", 3.0, 1.0), ("isotonic", 1.0, 2.5)],
    ids=["over-confident, Platt", "over-confident, isotonic", "too low, isotonic"],
)
def test_a_badly_calibrated_model_is_estimated_through_the_calibration_map(
    method: str, temperature: float, power: float
) -> None:
    rng = np.random.default_rng(5)
    labels, scores = window(rng, REFERENCE_ROWS, temperature=temperature, power=power)
    estimator = fit_estimator(labels, scores, bootstrap_maps=0, method=method)
    assert estimator.reference.raw_ece > 0.08
    for mean, scale in [(0.0, 1.0), (0.8, 0.6)]:
        window_labels, window_scores = window(
            rng, 3_000, mean=mean, scale=scale, temperature=temperature, power=power
        )
        estimated = estimator.estimate(window_scores, draws=0)
        realised = classifier_metrics(window_labels, window_scores)
        assert estimated.roc_auc is not None and realised.roc_auc is not None
        assert estimated.roc_auc.value == pytest.approx(realised.roc_auc, abs=0.025)
        assert estimated.accuracy.value == pytest.approx(realised.accuracy, abs=0.025)
        assert estimated.positive_rate == pytest.approx(window_labels.mean(), abs=0.025)
        # The raw scores taken as probabilities would be far off: the map is what makes it right.
        raw = np.mean(np.where(window_scores >= 0.5, window_scores, 1 - window_scores))
        assert abs(raw - realised.accuracy) > 0.04


def test_auto_calibrates_small_references_with_platt_scaling_and_large_ones_with_isotonic() -> None:
    rng = np.random.default_rng(13)
    small = fit_estimator(*window(rng, 1_000), bootstrap_maps=1)
    large = fit_estimator(*window(rng, 10_000), bootstrap_maps=1)
    assert small.calibration.kind == "logistic" and small.to_dict()["method"] == "logistic"
    assert large.calibration.kind == "isotonic" and large.to_dict()["method"] == "isotonic"
    with pytest.raises(InvalidInput, match="method='beta' is not known; use one of auto, isotonic, logistic"):
        fit_estimator(*window(rng, 1_000), method="beta")


def test_platt_scaling_is_the_maximum_likelihood_logistic_fit() -> None:
    labels, scores = window(np.random.default_rng(14), 3_000, temperature=2.0)
    ours = fit_logistic(labels.astype(float), scores)
    reference = LogisticRegression(C=1e9, max_iter=1_000).fit(logit(scores)[:, None], labels)
    assert ours.slope == pytest.approx(reference.coef_[0, 0], abs=2e-3)
    assert ours.intercept == pytest.approx(reference.intercept_[0], abs=2e-3)
    assert ours.slope == pytest.approx(0.5, abs=0.06)  # it undoes the temperature of 2


def test_outside_reference_share_says_when_the_window_left_the_reference(
    estimator: PerformanceEstimator,
) -> None:
    rng = np.random.default_rng(15)
    _, unchanged = window(rng, 5_000)
    _, moved = window(rng, 5_000, mean=2.5)
    assert estimator.estimate(unchanged, draws=0).outside_reference_share == pytest.approx(0.01, abs=0.006)
    assert estimator.estimate(moved, draws=0).outside_reference_share > 0.1


def test_band_covers_the_realised_value_at_the_stated_rate() -> None:
    """Repeated draws of everything that varies: the reference holdout, the window, its labels.

    Windows of 1,000 rows against references of 500: the labels' noise and the calibration's own
    uncertainty are of a size here, so a band with either part missing covers 0.6 to 0.75, not 0.9.
    """
    rng = np.random.default_rng(6)
    auc_inside, accuracy_inside = [], []
    for reference in range(30):
        estimator = fit_estimator(*window(rng, 500), band_level=0.9, seed=reference)
        for shift in (-0.4, 0.0, 0.4, 0.8, 1.0):  # no shift and four covariate shifts
            labels, scores = window(rng, 1_000, mean=shift)
            estimated = estimator.estimate(scores)
            realised = classifier_metrics(labels, scores)
            assert estimated.roc_auc is not None and realised.roc_auc is not None
            assert estimated.roc_auc.lower is not None and estimated.roc_auc.upper is not None
            assert estimated.accuracy.lower is not None and estimated.accuracy.upper is not None
            auc_inside.append(estimated.roc_auc.lower <= realised.roc_auc <= estimated.roc_auc.upper)
            accuracy_inside.append(estimated.accuracy.lower <= realised.accuracy <= estimated.accuracy.upper)
    # 150 windows at 0.9: the binomial standard deviation is 0.024; 0.83 .. 0.97 is about 3 of them.
    assert 0.83 <= np.mean(auc_inside) <= 0.97, np.mean(auc_inside)
    assert 0.83 <= np.mean(accuracy_inside) <= 0.97, np.mean(accuracy_inside)


def test_bootstrap_bias_correction_removes_part_of_isotonic_optimism() -> None:
    """Isotonic on 500 rows spreads its probabilities too wide, so the plain estimate of AUC is high."""
    rng = np.random.default_rng(17)
    _, scores = window(rng, 20_000)
    true_auc = brute_force_free_expected_auc(scores)  # the model is calibrated: its scores are the truth
    plain_errors, corrected_errors = [], []
    for reference in range(60):
        estimator = fit_estimator(*window(rng, 500), method="isotonic", seed=reference)
        plain = dataclasses.replace(estimator, bootstrap=())
        corrected = estimator.estimate(scores, draws=0).roc_auc
        uncorrected = plain.estimate(scores, draws=0).roc_auc
        assert corrected is not None and uncorrected is not None
        corrected_errors.append(corrected.value - true_auc)
        plain_errors.append(uncorrected.value - true_auc)
    assert np.mean(plain_errors) > 0.006  # the optimism is there (standard error 0.002) ...
    assert np.mean(plain_errors) - np.mean(corrected_errors) > 0.003  # ... the correction takes some away
    assert abs(np.mean(corrected_errors)) < np.mean(plain_errors)


def brute_force_free_expected_auc(probabilities: np.ndarray) -> float:
    """Expected AUC when the scores are the true probabilities, by sorting (no estimator involved)."""
    ordered = np.sort(probabilities)  # ascending; ties have measure zero for continuous scores
    negatives_below = np.cumsum(1.0 - ordered) - (1.0 - ordered)
    concordant = np.sum(ordered * negatives_below)
    pairs = ordered.sum() * (1.0 - ordered).sum() - np.sum(ordered * (1.0 - ordered))
    return float(concordant / pairs)


def test_band_is_deterministic_and_narrows_with_the_window(estimator: PerformanceEstimator) -> None:
    rng = np.random.default_rng(7)
    _, small = window(rng, 250)
    _, large = window(rng, 4_000)
    first, again = estimator.estimate(small), estimator.estimate(small)
    assert first == again
    wide = first.roc_auc
    narrow = estimator.estimate(large).roc_auc
    assert wide is not None and narrow is not None
    assert wide.lower is not None and wide.upper is not None
    assert narrow.lower is not None and narrow.upper is not None
    assert (narrow.upper - narrow.lower) < (wide.upper - wide.lower) / 2.5


def test_estimator_travels_as_json_and_estimates_the_same(estimator: PerformanceEstimator) -> None:
    text = estimator.to_json()
    data = json.loads(text)
    assert data["schema_version"] == estimate_module.SCHEMA_VERSION and data["assumption"] == ASSUMPTION
    loaded = PerformanceEstimator.from_json(text)
    _, scores = window(np.random.default_rng(8), 500, mean=0.5)
    assert loaded.estimate(scores) == estimator.estimate(scores)
    assert len(text) < 200_000  # it rides in the reference profile's metadata


def test_compare_with_realised_reports_the_estimate_beside_the_labels(
    estimator: PerformanceEstimator,
) -> None:
    labels, scores = window(np.random.default_rng(9), 1_000)
    estimated = estimator.estimate(scores)
    rows = {item.metric: item for item in compare_with_realised(estimated, labels, scores)}
    realised = classifier_metrics(labels, scores)
    assert set(rows) == {"accuracy", "roc_auc"}
    assert rows["roc_auc"].realised == realised.roc_auc
    assert rows["roc_auc"].error == pytest.approx(estimated.roc_auc.value - realised.roc_auc)  # type: ignore[union-attr]
    assert rows["accuracy"].inside_band == (
        estimated.accuracy.lower <= realised.accuracy <= estimated.accuracy.upper  # type: ignore[operator]
    )
    metrics = estimated.to_metrics()
    assert metrics["estimated_roc_auc"] == estimated.roc_auc.value  # type: ignore[union-attr]
    assert {"estimated_accuracy_lower", "estimated_roc_auc_upper", "estimated_positive_rate"} <= set(metrics)
    with pytest.raises(InvalidInput, match="labels: 999 labelled rows but the estimate covered 1000"):
        compare_with_realised(estimated, labels[:-1], scores[:-1])


def test_estimated_drop_triggers_on_a_covariate_shift_that_costs_ranking_quality(
    estimator: PerformanceEstimator,
) -> None:
    rng = np.random.default_rng(10)
    _, unchanged = window(rng, 2_000)
    _, narrower = window(rng, 2_000, scale=0.3)  # the strongest feature loses its spread: AUC falls
    calm = estimated_drop(estimator.estimate(unchanged), estimator, max_drop=0.05)
    alarm = estimated_drop(estimator.estimate(narrower), estimator, max_drop=0.05)
    assert not calm.triggered and calm.drop is not None and abs(calm.drop) < 0.03
    assert alarm.triggered and alarm.drop is not None and alarm.drop > 0.05
    assert alarm.baseline == estimator.reference.estimated_roc_auc
    # Requiring the band to exclude the drop compares its upper end: a smaller drop, still over 0.05 here.
    banded = estimated_drop(estimator.estimate(narrower), estimator, max_drop=0.05, require_band=True)
    assert banded.drop is not None and banded.drop < alarm.drop and banded.triggered
    assert not estimated_drop(estimator.estimate(narrower), estimator, max_drop=0.5).triggered
    with pytest.raises(InvalidInput, match="metric='brier' is not estimated"):
        estimated_drop(estimator.estimate(narrower), estimator, metric="brier")
    with pytest.raises(InvalidInput, match="require_band=True but the roc_auc estimate has no band"):
        estimated_drop(estimator.estimate(narrower, draws=0), estimator, require_band=True)


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        ([], r"scores: empty \(0 rows\); pass the positive-class probability"),
        ([0.2, 1.3, -0.1], r"scores: 2 values are not probabilities in \[0, 1\]"),
        ([0.2, float("nan")], r"scores: 1 values are not probabilities in \[0, 1\]"),
        ([[0.2, 0.8]], r"scores: shape \(1, 2\), expected one score per row"),
    ],
)
def test_bad_windows_are_refused_naming_the_field(
    estimator: PerformanceEstimator, scores: list, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        estimator.estimate(scores)


def test_bad_references_are_refused_naming_the_field_and_the_fix() -> None:
    rng = np.random.default_rng(11)
    labels, scores = window(rng, 500)
    with pytest.raises(
        InvalidInput, match=r"reference labels: 0 positive and 500 negative rows.*at least 10"
    ):
        fit_estimator(np.zeros(500, dtype=int), scores)
    with pytest.raises(InvalidInput, match=r"reference scores: 1 values are not probabilities in \[0, 1\]"):
        fit_estimator(labels, np.r_[scores[:-1], 2.0])
    with pytest.raises(InvalidInput, match=r"reference labels: must be 0 or 1 \(got e.g. \[2\]\)"):
        fit_estimator(np.r_[labels[:-1], 2], scores)
    with pytest.raises(InvalidInput, match=r"reference labels: shape \(499,\) differs"):
        fit_estimator(labels[:-1], scores)
    with pytest.raises(InvalidInput, match=r"threshold=1.5 must be in \[0, 1\]"):
        fit_estimator(labels, scores, threshold=1.5)
    with pytest.raises(InvalidInput, match=r"band_level=1.0 must be between 0 and 1"):
        fit_estimator(labels, scores, band_level=1.0)


def test_unknown_or_malformed_estimators_are_refused() -> None:
    estimator = fit_estimator(*window(np.random.default_rng(12), 500), bootstrap_maps=2, method="isotonic")
    data = estimator.to_dict()
    with pytest.raises(InvalidInput, match="schema_version=2.*refit it with fit_estimator"):
        PerformanceEstimator.from_dict({**data, "schema_version": 2})
    with pytest.raises(InvalidInput, match="missing field 'schema_version'"):
        PerformanceEstimator.from_dict({"method": "isotonic"})
    with pytest.raises(InvalidInput, match="calibration knots are not increasing"):
        PerformanceEstimator.from_dict(
            {**data, "calibration": {"kind": "isotonic", "scores": [0.5, 0.2], "probabilities": [0.1, 0.2]}}
        )
    with pytest.raises(InvalidInput, match="calibration kind='beta' is unknown"):
        PerformanceEstimator.from_dict({**data, "calibration": {"kind": "beta"}})
    with pytest.raises(InvalidInput, match="method='isotonic' but a calibration map is of another kind"):
        PerformanceEstimator.from_dict(
            {**data, "bootstrap": [{"kind": "logistic", "slope": 1, "intercept": 0}]}
        )
    with pytest.raises(InvalidInput, match="not JSON"):
        PerformanceEstimator.from_json("{")
