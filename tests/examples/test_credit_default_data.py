"""The example project's data generator: deterministic by day, and each drift scenario does what it says."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from threadpoolctl import threadpool_limits

from examples.credit_default.data import (
    CATEGORICAL_FEATURES,
    FEATURES,
    LABEL,
    NUMERIC_FEATURES,
    SCENARIOS,
    drift_intensity,
    generate_day,
    generate_range,
)

DRIFT_START = 5
SHIFTED_DAYS = (9, 12)  # fully ramped (ramp 3 days from day 5)


@pytest.fixture(autouse=True, scope="module")
def one_openmp_thread() -> Iterator[None]:
    """HistGradientBoosting's OpenMP threads spin-wait; on the shared 2-core machine that costs 10-30x."""
    with threadpool_limits(limits=1):
        yield


def fit_model(frame: pd.DataFrame) -> Pipeline:
    preprocess = ColumnTransformer(
        [
            ("numeric", "passthrough", list(NUMERIC_FEATURES)),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_FEATURES)),
        ]
    )
    model = Pipeline(
        [("preprocess", preprocess), ("classifier", HistGradientBoostingClassifier(random_state=0))]
    )
    return model.fit(frame[list(FEATURES)], frame[LABEL])


def auc(model: Pipeline, frame: pd.DataFrame) -> float:
    return float(roc_auc_score(frame[LABEL], model.predict_proba(frame[list(FEATURES)])[:, 1]))


def shifted(scenario: str, rows_per_day: int = 1000) -> pd.DataFrame:
    return generate_range(*SHIFTED_DAYS, rows_per_day, scenario=scenario, drift_start_day=DRIFT_START, seed=0)


@pytest.fixture(scope="module")
def day0_model() -> Pipeline:
    return fit_model(generate_range(0, 5, 800, seed=0))


def test_same_arguments_give_the_identical_frame() -> None:
    first = generate_day(3, 300, scenario="covariate_shift", seed=7, drift_start_day=2)
    second = generate_day(3, 300, scenario="covariate_shift", seed=7, drift_start_day=2)
    pd.testing.assert_frame_equal(first, second)


def test_days_and_seeds_give_different_frames() -> None:
    base = generate_day(3, 300)
    assert not base.equals(generate_day(4, 300))
    assert not base.equals(generate_day(3, 300, seed=1))


def test_frame_has_the_declared_columns_types_and_a_plausible_default_rate() -> None:
    frame = generate_range(0, 7, 500)
    assert list(frame.columns) == [*FEATURES, LABEL]
    assert len(frame) == 3500
    for column in NUMERIC_FEATURES:
        assert frame[column].dtype == np.float64, column
    for column in CATEGORICAL_FEATURES:
        assert pd.api.types.is_string_dtype(frame[column]), column
        assert frame[column].nunique() >= 3, column
    assert set(frame[LABEL].unique()) == {0, 1}
    assert 0.08 < frame[LABEL].mean() < 0.25
    assert frame["age"].between(21, 75).all()
    assert (frame["annual_income"] > 0).all()
    assert frame["debt_to_income"].between(0, 1).all()


def test_generate_range_concatenates_days_in_order() -> None:
    frame = generate_range(2, 5, 100, seed=3)
    expected = pd.concat([generate_day(day, 100, seed=3) for day in (2, 3, 4)], ignore_index=True)
    pd.testing.assert_frame_equal(frame, expected)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_days_before_the_drift_start_equal_the_undrifted_frame(scenario: str) -> None:
    before = generate_day(DRIFT_START - 1, 400, scenario=scenario, drift_start_day=DRIFT_START)
    pd.testing.assert_frame_equal(before, generate_day(DRIFT_START - 1, 400))
    assert not generate_day(DRIFT_START + 3, 400, scenario=scenario, drift_start_day=DRIFT_START).equals(
        generate_day(DRIFT_START + 3, 400)
    )


def test_drift_ramps_from_the_start_day_and_never_starts_when_negative() -> None:
    assert [drift_intensity(day, 5, 3) for day in range(3, 9)] == pytest.approx([0, 0, 1 / 3, 2 / 3, 1, 1])
    assert drift_intensity(100, -1) == 0.0


@pytest.mark.parametrize(
    "scenario", [None, "covariate_shift", "concept_shift", "label_prior_shift", "market_downturn"]
)
def test_no_missing_values_unless_the_scenario_breaks_a_feature(scenario: str | None) -> None:
    frame = generate_range(0, 12, 200, scenario=scenario, drift_start_day=DRIFT_START)
    assert not frame.isna().any().any()


def test_covariate_shift_moves_income_and_debt_but_not_the_relation(day0_model: Pipeline) -> None:
    base, moved = shifted(None), shifted("covariate_shift")
    assert moved["annual_income"].median() < 0.8 * base["annual_income"].median()
    assert moved["debt_to_income"].mean() > base["debt_to_income"].mean() + 0.08
    assert moved[LABEL].mean() > base[LABEL].mean() + 0.05  # riskier applicants default more
    # Same ground truth: the day-0 model still ranks well.
    assert auc(day0_model, moved) > 0.7


def test_concept_shift_defeats_an_old_model_and_a_retrained_one_recovers(day0_model: Pipeline) -> None:
    clean_auc = auc(day0_model, shifted(None))
    shifted_auc = auc(day0_model, shifted("concept_shift"))
    assert shifted_auc < clean_auc - 0.2
    retrained = fit_model(
        generate_range(9, 14, 800, scenario="concept_shift", drift_start_day=DRIFT_START, seed=1)
    )
    later = generate_range(14, 16, 1000, scenario="concept_shift", drift_start_day=DRIFT_START)
    assert auc(retrained, later) > auc(day0_model, later) + 0.2
    assert auc(retrained, later) > 0.7
    # Features are untouched: concept shift is invisible to feature drift checks.
    pd.testing.assert_frame_equal(shifted("concept_shift")[list(FEATURES)], shifted(None)[list(FEATURES)])


def test_label_prior_shift_raises_the_default_rate_but_keeps_each_class_alike() -> None:
    base, moved = shifted(None, 2000), shifted("label_prior_shift", 2000)
    assert base[LABEL].mean() < 0.2
    assert moved[LABEL].mean() == pytest.approx(0.40, abs=0.01)
    for label_value in (0, 1):
        base_class = base[base[LABEL] == label_value]["debt_to_income"]
        moved_class = moved[moved[LABEL] == label_value]["debt_to_income"]
        assert moved_class.mean() == pytest.approx(base_class.mean(), abs=0.015)


def test_broken_feature_makes_income_thousands_and_debt_to_income_missing() -> None:
    base, broken = shifted(None), shifted("broken_feature")
    assert broken["debt_to_income"].isna().all()
    assert broken["annual_income"].median() == pytest.approx(base["annual_income"].median() / 1000, rel=0.01)
    # The world did not change, only the pipe: labels are the same rows' labels.
    assert broken[LABEL].equals(base[LABEL])
    ramping = generate_day(DRIFT_START, 2000, scenario="broken_feature", drift_start_day=DRIFT_START)
    assert 0.2 < ramping["debt_to_income"].isna().mean() < 0.45  # one third on the first day


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"day": -1, "rows": 10}, r"day=-1 must be an integer >= 0"),
        ({"day": 0, "rows": 0}, r"rows=0 must be an integer >= 1"),
        ({"day": 0, "rows": 10, "scenario": "meteor"}, r"scenario='meteor' is unknown; use None or one of"),
        ({"day": 0, "rows": 10, "seed": -3}, r"seed=-3 must be an integer >= 0"),
    ],
)
def test_bad_arguments_are_named_in_the_error(arguments: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_day(**arguments)


def test_an_empty_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"end_day=3 must be greater than start_day=3"):
        generate_range(3, 3, 10)


def test_market_downturn_moves_the_features_and_defeats_an_old_model(day0_model: Pipeline) -> None:
    base, downturn = shifted(None), shifted("market_downturn")
    # Visible before any label arrives: the covariates move as in covariate_shift ...
    assert downturn["annual_income"].median() < 0.8 * base["annual_income"].median()
    assert downturn["interest_rate"].mean() > base["interest_rate"].mean() + 2.0
    # ... and the relation changes as in concept_shift, so the old model loses and a retrained one recovers.
    assert auc(day0_model, downturn) < auc(day0_model, base) - 0.15
    retrained = fit_model(
        generate_range(9, 14, 800, scenario="market_downturn", drift_start_day=DRIFT_START, seed=1)
    )
    later = generate_range(14, 16, 1000, scenario="market_downturn", drift_start_day=DRIFT_START)
    assert auc(retrained, later) > auc(day0_model, later) + 0.15
