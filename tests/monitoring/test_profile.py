"""Reference profile: contents, determinism, JSON round trip, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from platform_components.monitoring.errors import InvalidInput
from platform_components.monitoring.profile import (
    OTHER_CATEGORY,
    ReferenceProfile,
    build_reference_profile,
)


def training_frame(rows: int = 5_000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(50_000, 10_000, rows)
    income[:50] = np.nan
    return pd.DataFrame(
        {
            "income": income,
            "age": rng.integers(18, 80, rows),
            "purpose": rng.choice(["car", "house", "education"], rows, p=[0.5, 0.3, 0.2]),
            "default": rng.integers(0, 2, rows),
        }
    )


def test_profile_holds_what_the_checks_need() -> None:
    frame = training_frame()
    scores = np.linspace(0, 1, len(frame))
    profile = build_reference_profile(
        frame, numeric=["income", "age"], categorical=["purpose"], prediction_scores=scores
    )
    income = profile.numeric["income"]
    assert income.missing_rate == pytest.approx(50 / 5_000)
    assert income.count == 4_950
    assert np.all(np.diff(income.sample) >= 0)
    assert income.minimum == np.nanmin(frame["income"]) and income.maximum == np.nanmax(frame["income"])
    assert len(income.bin_edges) == 9 and len(income.bin_proportions) == 10
    assert income.bin_proportions == pytest.approx(np.full(10, 0.1), abs=0.002)
    purpose = profile.categorical["purpose"]
    assert purpose.categories == ("car", "house", "education")
    assert purpose.proportions.sum() == pytest.approx(1.0)
    assert purpose.other_proportion == 0.0
    assert profile.prediction is not None and profile.prediction.maximum == 1.0
    assert profile.features == ["income", "age", "purpose"]
    assert OTHER_CATEGORY == "__other__"


def test_sample_is_capped_deterministic_and_keeps_extremes() -> None:
    frame = training_frame(rows=30_000)
    first = build_reference_profile(frame, numeric=["income"], categorical=[], sample_size=1_000)
    shuffled = frame.sample(frac=1.0, random_state=3)
    second = build_reference_profile(shuffled, numeric=["income"], categorical=[], sample_size=1_000)
    assert len(first.numeric["income"].sample) == 1_000
    np.testing.assert_array_equal(first.numeric["income"].sample, second.numeric["income"].sample)
    assert first.numeric["income"].sample[0] == first.numeric["income"].minimum
    assert first.numeric["income"].sample[-1] == first.numeric["income"].maximum


def test_discrete_feature_gets_fewer_bins_not_empty_ones() -> None:
    frame = pd.DataFrame({"flag": [0] * 900 + [1] * 100})
    profile = build_reference_profile(frame, numeric=["flag"], categorical=[])
    flag = profile.numeric["flag"]
    assert flag.bin_edges.tolist() == [0.0]
    assert flag.bin_proportions.tolist() == [0.9, 0.1]


def test_rare_categories_go_to_other() -> None:
    frame = pd.DataFrame({"city": ["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 5})
    profile = build_reference_profile(frame, numeric=[], categorical=["city"], max_categories=2)
    city = profile.categorical["city"]
    assert city.categories == ("a", "b")
    assert city.proportions.tolist() == pytest.approx([0.5, 0.3, 0.2])


def test_json_round_trip_is_exact() -> None:
    frame = training_frame()
    profile = build_reference_profile(
        frame,
        numeric=["income", "age"],
        categorical=["purpose"],
        prediction_scores=np.random.rand(len(frame)),
    )
    text = profile.to_json()
    again = ReferenceProfile.from_json(text)
    assert again.to_json() == text
    np.testing.assert_array_equal(again.numeric["income"].sample, profile.numeric["income"].sample)
    assert '"schema_version": 1' in text


def test_unknown_schema_version_is_refused() -> None:
    text = build_reference_profile(training_frame(), numeric=["age"], categorical=[]).to_json()
    with pytest.raises(InvalidInput, match="schema_version=99 is not supported"):
        ReferenceProfile.from_json(text.replace('"schema_version": 1', '"schema_version": 99'))
    with pytest.raises(InvalidInput, match="not JSON"):
        ReferenceProfile.from_json("{nope")


def test_bad_columns_are_named() -> None:
    frame = training_frame()
    with pytest.raises(InvalidInput, match=r"\['salary'\] are not columns"):
        build_reference_profile(frame, numeric=["salary"], categorical=[])
    with pytest.raises(InvalidInput, match="numeric feature 'purpose': values are not numbers"):
        build_reference_profile(frame, numeric=["purpose"], categorical=[])
    with pytest.raises(InvalidInput, match=r"\['age'\] are listed more than once"):
        build_reference_profile(frame, numeric=["age"], categorical=["age"])
    with pytest.raises(InvalidInput, match="'empty': all 3 values are missing"):
        build_reference_profile(pd.DataFrame({"empty": [np.nan] * 3}), numeric=["empty"], categorical=[])
