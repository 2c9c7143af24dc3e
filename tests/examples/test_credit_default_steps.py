"""The data-handling steps of the pipeline, run in-process through their own code (no MLflow needed).

The full pipeline runs in test_credit_default_pipeline_run.py; these cover the inputs a retrain gets from
production (a labelled file) quickly and in detail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io
from kfp.dsl import Dataset, Model
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from examples.credit_default import components
from examples.credit_default.data import (
    CATEGORICAL_FEATURES,
    FEATURES,
    LABEL,
    NUMERIC_FEATURES,
    generate_range,
)


@pytest.fixture(autouse=True, scope="module")
def one_openmp_thread() -> Iterator[None]:
    """HistGradientBoosting's OpenMP threads spin-wait; on the shared 2-core machine that costs 10-30x."""
    with threadpool_limits(limits=1):
        yield


def prepare(tmp_path: Path, **overrides) -> tuple[pd.DataFrame, pd.DataFrame, object]:
    """Run the prepare step in-process; the train and holdout frames and its outputs (gate: ``gate_of``)."""
    arguments = {
        "train_start_day": 0,
        "train_end_day": 3,
        "rows_per_day": 200,
        "training_data_path": "",
        "scenario": "",
        "drift_start_day": -1,
        "seed": 0,
        **overrides,
    }
    tmp_path.mkdir(parents=True, exist_ok=True)  # KFP creates artifact folders; in-process we do
    train = Dataset(name="train", uri=str(tmp_path / "train.parquet"))
    holdout = Dataset(name="holdout", uri=str(tmp_path / "holdout.parquet"))
    gate = Dataset(name="gate", uri=str(tmp_path / "gate.parquet"))
    result = components.prepare_data.python_func(train=train, holdout=holdout, gate=gate, **arguments)
    return pd.read_parquet(train.path), pd.read_parquet(holdout.path), result


def gate_of(tmp_path: Path) -> pd.DataFrame:
    return pd.read_parquet(tmp_path / "gate.parquet")


def test_generated_days_split_into_a_stratified_seeded_holdout(tmp_path: Path) -> None:
    train, holdout, result = prepare(tmp_path / "a")
    assert (result.train_rows, result.holdout_rows) == (len(train), len(holdout))
    assert len(train) + len(holdout) == 600
    assert len(holdout) / 600 == pytest.approx(0.25, abs=0.01)
    assert holdout[LABEL].mean() == pytest.approx(train[LABEL].mean(), abs=0.02)
    assert result.source == "generated:days=0..2,rows_per_day=200"
    _, same_holdout, _ = prepare(tmp_path / "b")
    pd.testing.assert_frame_equal(holdout, same_holdout)
    _, other_holdout, _ = prepare(tmp_path / "c", seed=1)
    assert not holdout.equals(other_holdout)


def test_without_gate_rows_the_gate_is_the_holdout(tmp_path: Path) -> None:
    _, holdout, result = prepare(tmp_path)
    pd.testing.assert_frame_equal(gate_of(tmp_path), holdout)
    assert (result.gate_rows, result.gate_source) == (len(holdout), "holdout")


def test_gate_rows_from_a_file_are_the_gate_and_stay_out_of_training(tmp_path: Path) -> None:
    training = generate_range(0, 2, 200, seed=1)
    recent = generate_range(2, 3, 200, seed=1)
    recent["age"] = recent["age"].astype("int64")  # typed like the training rows whatever the file held
    recent = recent.rename(columns={LABEL: "label"})  # the platform exports its rows with `label`
    training_path, gate_path = tmp_path / "train.csv", tmp_path / "gate.csv"
    training.to_csv(training_path, index=False)
    recent.to_csv(gate_path, index=False)
    train, holdout, result = prepare(
        tmp_path / "run", training_data_path=str(training_path), gate_data_path=str(gate_path)
    )
    gate = gate_of(tmp_path / "run")
    assert len(train) + len(holdout) == 400
    assert (result.gate_rows, result.gate_source) == (200, f"file:{gate_path}")
    assert list(gate.columns) == [*FEATURES, LABEL]
    assert gate["age"].dtype == np.float64
    assert gate[LABEL].tolist() == recent["label"].tolist()
    assert not gate.equals(holdout)


def test_gate_rows_of_one_class_are_refused(tmp_path: Path) -> None:
    recent = generate_range(2, 3, 100)
    path = tmp_path / "gate.parquet"
    recent[recent[LABEL] == 0].to_parquet(path)
    with pytest.raises(ValueError, match=r"gate_data_path=.*every row has default=0; the gate compares ROC"):
        prepare(tmp_path, gate_data_path=str(path))


def test_a_labelled_file_is_read_with_fixed_dtypes_and_extra_columns_dropped(tmp_path: Path) -> None:
    frame = generate_range(0, 2, 200)
    frame["age"] = frame["age"].astype("int64")  # a join may store integers
    frame["request_id"] = [f"r{index}" for index in range(len(frame))]
    path = tmp_path / "labelled.csv"
    frame.to_csv(path, index=False)
    train, holdout, result = prepare(tmp_path, training_data_path=str(path))
    assert result.source == f"file:{path}"
    assert list(train.columns) == [*FEATURES, LABEL]
    for column in NUMERIC_FEATURES:
        assert train[column].dtype == np.float64, column
    for column in CATEGORICAL_FEATURES:
        assert pd.api.types.is_string_dtype(train[column]), column
    assert len(train) + len(holdout) == 400


def test_a_parquet_file_with_missing_labels_keeps_only_labelled_rows(tmp_path: Path) -> None:
    frame = generate_range(0, 2, 200).astype({LABEL: "float64"})
    frame.loc[:49, LABEL] = np.nan  # labels that have not arrived yet
    path = tmp_path / "labelled.parquet"
    frame.to_parquet(path)
    train, holdout, _ = prepare(tmp_path, training_data_path=str(path))
    assert len(train) + len(holdout) == 350


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda frame: frame.drop(columns=["region"]), r"lacks columns \['region'\]"),
        (lambda frame: frame.assign(**{LABEL: 2}), r"column 'default' must hold 0 or 1; found 2"),
        (
            lambda frame: frame.assign(annual_income=["unknown"] * len(frame)),
            r"column 'annual_income' must be numeric; found 'unknown' \(fix the rows",
        ),
    ],
)
def test_a_bad_file_names_the_column_and_the_problem(tmp_path: Path, change, message: str) -> None:
    path = tmp_path / "labelled.csv"
    change(generate_range(0, 1, 100)).to_csv(path, index=False)
    with pytest.raises(ValueError, match=message):
        prepare(tmp_path, training_data_path=str(path))


def test_a_file_of_another_format_or_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"has suffix '.json'; use .csv or .parquet"):
        (tmp_path / "rows.json").write_text("{}")
        prepare(tmp_path, training_data_path=str(tmp_path / "rows.json"))
    with pytest.raises(ValueError, match=r"is not a file; pass a CSV or Parquet file"):
        prepare(tmp_path, training_data_path=str(tmp_path / "absent.csv"))


def test_one_class_only_is_refused_before_training(tmp_path: Path) -> None:
    path = tmp_path / "no_defaults.csv"
    frame = generate_range(0, 1, 200)
    frame[frame[LABEL] == 0].to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"only 0 rows have default=1; need at least 4 of each class"):
        prepare(tmp_path, training_data_path=str(path))


def test_an_unknown_scenario_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"scenario='meteor' is unknown; use '' or one of covariate_shift"):
        prepare(tmp_path, scenario="meteor")


def test_train_step_saves_a_skops_model_that_ranks_the_holdout(tmp_path: Path) -> None:
    train, holdout, _ = prepare(tmp_path)
    model_artifact = Model(name="model", uri=str(tmp_path / "model.skops"))
    params = components.train_model.python_func(
        train=Dataset(name="train", uri=str(tmp_path / "train.parquet")), seed=0, model=model_artifact
    )
    assert params["classifier"] == "HistGradientBoostingClassifier"
    untrusted = skops.io.get_untrusted_types(file=model_artifact.path)
    model = skops.io.load(model_artifact.path, trusted=untrusted)
    scores = model.predict_proba(holdout[list(FEATURES)])[:, 1]
    assert roc_auc_score(holdout[LABEL], scores) > 0.7
