"""A project other than the example enters the loop through the platform helper alone.

The churn project (``loop.other_project``) is trained with ``kfp.local`` from files laid out as the loop's
retrainers write them (``train.csv`` and ``gate.csv``: features plus ``label``, with extra columns), then
retrained after a change on post-change rows gated on the most recent day. MLflow is a SQLite store in a
temporary folder, shared by the steps' subprocesses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from kfp.dsl import Dataset
from sklearn.metrics import roc_auc_score

from loop.other_project import components
from loop.other_project.data import FEATURES, LABEL, generate_range
from loop.other_project.pipeline import churn_pipeline
from platform_components.monitoring.estimate import METADATA_KEY, PerformanceEstimator
from platform_components.monitoring.tracking import baseline_metric, load_reference_profile
from platform_components.pipelines import LocalRun, pipeline_input_names, run_local

MODEL = "churn"
ROWS_PER_DAY = 300
PLATFORM_INPUTS = {"tracking_uri", "model_name", "training_data_path", "gate_data_path", "promotion_margin"}


def retrain_files(folder: Path, days: tuple[int, int], gate_day: int, change_day: int | None) -> dict:
    """Rows as a retrainer hands them over: labels in ``label``, a request id and event time beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (start, end) in (("train", days), ("gate", (gate_day, gate_day + 1))):
        rows = generate_range(start, end, ROWS_PER_DAY, seed=3, change_day=change_day)
        rows = rows.rename(columns={LABEL: "label"}).drop(columns=["day"])
        rows.insert(0, "request_id", [f"{name}-{index}" for index in range(len(rows))])
        rows["event_time"] = 1_800_000_000.0 + np.arange(len(rows))
        paths[name] = folder / f"{name}.csv"
        rows.to_csv(paths[name], index=False)
    return {"training_data_path": str(paths["train"]), "gate_data_path": str(paths["gate"])}


def test_the_pipeline_declares_the_inputs_the_retrainers_pass() -> None:
    assert pipeline_input_names(churn_pipeline) >= PLATFORM_INPUTS


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    # The steps' set_experiment finds it: artifacts stay in the temporary folder, not in ./mlruns.
    mlflow.MlflowClient(tracking_uri=uri).create_experiment(
        MODEL, artifact_location=(root / "artifacts").as_uri()
    )
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def first_run(tracking: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalRun, dict]:
    files = retrain_files(tmp_path_factory.mktemp("first"), (0, 7), gate_day=7, change_day=None)
    run = run_local(
        churn_pipeline,
        {"tracking_uri": tracking, "promotion_margin": 0.01, **files},
        pipeline_root=tmp_path_factory.mktemp("runs"),
    )
    return run, files


@pytest.fixture(scope="module")
def retrain_run(first_run, tracking: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalRun, dict]:
    files = retrain_files(tmp_path_factory.mktemp("after-change"), (10, 17), gate_day=17, change_day=10)
    run = run_local(
        churn_pipeline,
        {"tracking_uri": tracking, "promotion_margin": 0.01, **files},
        pipeline_root=tmp_path_factory.mktemp("runs"),
    )
    return run, files


@pytest.mark.slow
def test_one_run_leaves_in_mlflow_what_the_loop_needs(first_run, tracking: str) -> None:
    run, files = first_run
    client = mlflow.MlflowClient()
    assert run.output["promoted"] is True and run.output["champion_version_after"] == "1"
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    assert str(client.get_model_version_by_alias(MODEL, "challenger").version) == "1"
    # The gate compared on the gate file's rows, not on a split of the training rows.
    assert run.output["gate_source"] == files["gate_data_path"] and run.output["gate_rows"] == ROWS_PER_DAY

    info = mlflow.models.get_model_info(f"models:/{MODEL}/1")
    assert info.signature.inputs.input_names() == list(FEATURES)
    assert info.saved_input_example_info is not None
    assert info.flavors["python_function"]["predict_fn"] == "predict_proba"
    assert info.flavors["sklearn"]["serialization_format"] == "skops"

    profile = load_reference_profile(tracking, MODEL, "1")  # what the monitor loads
    assert profile.features == list(FEATURES)
    assert profile.metadata["label"] == LABEL and profile.metadata["task"] == "classification"
    estimator = PerformanceEstimator.from_dict(profile.metadata[METADATA_KEY])
    holdout_auc = baseline_metric(tracking, MODEL, "1", "roc_auc")
    assert holdout_auc is not None and 0.7 < holdout_auc < 0.9
    assert estimator.reference.roc_auc == pytest.approx(holdout_auc)

    settings = json.loads(mlflow.artifacts.load_text(f"models:/{MODEL}/1/model-settings.json"))
    assert settings["parameters"]["extra"]["init_parameters"]["registered_version"] == "1"


@pytest.mark.slow
def test_a_retrain_after_the_change_is_gated_on_the_recent_rows_and_promoted(retrain_run) -> None:
    run, files = retrain_run
    decision = run.output
    assert (decision["challenger_version"], decision["champion_version_before"]) == ("2", "1")
    gate = pd.read_csv(files["gate_data_path"])
    old = np.asarray(mlflow.pyfunc.load_model(f"models:/{MODEL}/1").predict(gate[list(FEATURES)]))[:, 1]
    new = np.asarray(mlflow.pyfunc.load_model(f"models:/{MODEL}/2").predict(gate[list(FEATURES)]))[:, 1]
    assert decision["champion_roc_auc"] == pytest.approx(roc_auc_score(gate["label"], old))
    assert decision["challenger_roc_auc"] == pytest.approx(roc_auc_score(gate["label"], new))
    assert decision["challenger_roc_auc"] - decision["champion_roc_auc"] > 0.05  # the old relation is gone
    assert decision["promoted"] is True
    assert str(mlflow.MlflowClient().get_model_version_by_alias(MODEL, "champion").version) == "2"


@pytest.mark.slow
def test_a_challenger_worse_on_the_gate_rows_is_rejected(retrain_run, tracking: str, tmp_path: Path) -> None:
    _, files = retrain_run
    gate = tmp_path / "gate.parquet"
    pd.read_csv(files["gate_data_path"]).rename(columns={"label": LABEL}).to_parquet(gate)
    # Version 1 (before the change) challenges champion v2 on post-change rows: the gate keeps v2.
    decision = components.gate_and_promote.python_func(
        tracking_uri=tracking,
        model_name=MODEL,
        challenger_version="1",
        gate=Dataset(name="gate", uri=str(gate)),
        gate_source="post-change day",
        promotion_margin=0.0,
    )
    assert decision["promoted"] is False
    assert "is below the margin 0.0000" in decision["reason"]
    assert str(mlflow.MlflowClient().get_model_version_by_alias(MODEL, "champion").version) == "2"
