"""The credit-default pipeline end to end on kfp.local against a real MLflow server.

Two full local runs (each 15-35 s), kept few on purpose: a first run on generated days (no champion yet)
and a retrain from a file of recent, labelled, concept-shifted rows with the most recent day as the gate
rows (as the loop starts it). The promotion rule's other branches run the promote step's own code
in-process against the same server.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from kfp.dsl import Metrics
from processes import mlflow_server as start_mlflow_server
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from examples.credit_default import components
from examples.credit_default.data import FEATURES, LABEL, generate_range
from examples.credit_default.pipeline import credit_default_pipeline
from platform_components.monitoring.estimate import METADATA_KEY, PerformanceEstimator
from platform_components.monitoring.profile import ReferenceProfile
from platform_components.pipelines import LocalRun, PipelineError, run_local

MODEL = "credit-default"
ROWS_PER_DAY = 300

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, scope="module")
def one_openmp_thread() -> Iterator[None]:
    """HistGradientBoosting's OpenMP threads spin-wait; on the shared 2-core machine that costs 10-30x."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow server`` on 127.0.0.1 (SQLite + local artifacts in a temp dir); yields its URI."""
    with start_mlflow_server(tmp_path_factory.mktemp("mlflow")) as (uri, _, _):
        yield uri


@pytest.fixture(scope="module")
def tracking(mlflow_server: str) -> Iterator[mlflow.MlflowClient]:
    """Point this process's MLflow at the test server for the module, then undo it.

    ``mlflow.set_tracking_uri`` also exports MLFLOW_TRACKING_URI; leaving it set would send later tests (and
    their subprocesses) to a server that no longer exists.
    """
    previous_environment = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(mlflow_server)
    try:
        yield mlflow.MlflowClient(tracking_uri=mlflow_server)
    finally:
        mlflow.set_tracking_uri(None)  # back to "not set": also removes MLFLOW_TRACKING_URI
        if previous_environment is not None:
            os.environ["MLFLOW_TRACKING_URI"] = previous_environment


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pipeline-root")


@pytest.fixture(scope="module")
def first_run(mlflow_server: str, tracking: mlflow.MlflowClient, runs_root: Path) -> LocalRun:
    return run_local(
        credit_default_pipeline,
        {"tracking_uri": mlflow_server, "rows_per_day": ROWS_PER_DAY},
        pipeline_root=runs_root,
    )


@pytest.fixture(scope="module")
def shifted_run(
    first_run: LocalRun, mlflow_server: str, runs_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> LocalRun:
    """A retrain as the loop starts it: recent labelled production rows (concept-shifted) in a file, and the
    most recent day, held out from them, as the gate rows."""
    recent = generate_range(10, 17, ROWS_PER_DAY, scenario="concept_shift", drift_start_day=7, seed=2)
    # Joined production rows carry more than features and label; the pipeline ignores extra columns.
    recent.insert(0, "request_id", [f"req-{index}" for index in range(len(recent))])
    folder = tmp_path_factory.mktemp("labelled")
    labelled, gate = folder / "recent_labelled.csv", folder / "gate.csv"
    recent.to_csv(labelled, index=False)
    # The platform exports its rows with the label as `label`.
    gate_rows = generate_range(17, 18, ROWS_PER_DAY, scenario="concept_shift", drift_start_day=7, seed=2)
    gate_rows.rename(columns={LABEL: "label"}).to_csv(gate, index=False)
    return run_local(
        credit_default_pipeline,
        {
            "tracking_uri": mlflow_server,
            "training_data_path": str(labelled),
            "gate_data_path": str(gate),
            "promotion_margin": 0.01,
        },
        pipeline_root=runs_root,
    )


def gate_of(run: LocalRun) -> pd.DataFrame:
    return pd.read_parquet(run.task_outputs["prepare-data"]["gate"])


def test_first_run_registers_version_1_and_makes_it_champion(
    first_run: LocalRun, tracking: mlflow.MlflowClient
) -> None:
    decision = first_run.output
    assert decision["challenger_version"] == "1"
    assert decision["champion_version_before"] == ""
    assert decision["champion_version_after"] == "1"
    assert decision["promoted"] is True
    assert decision["champion_metrics"] == {}
    assert decision["challenger_metrics"]["roc_auc"] > 0.7
    assert tracking.get_model_version_by_alias(MODEL, "champion").version == "1"
    assert tracking.get_model_version_by_alias(MODEL, "challenger").version == "1"
    version = tracking.get_model_version(MODEL, "1")
    assert version.tags["promotion.decision"] == "promoted"
    assert version.tags["pipeline_run"].startswith("credit-default-training-")  # the KFP run that made it
    assert json.loads(version.tags["promotion.evidence"])["champion_version_after"] == "1"
    assert (
        first_run.task_outputs["prepare-data"]["train_rows"]
        + first_run.task_outputs["prepare-data"]["holdout_rows"]
        == 7 * ROWS_PER_DAY
    )


def test_logged_model_has_signature_example_metrics_and_reference_profile(
    first_run: LocalRun, tracking: mlflow.MlflowClient
) -> None:
    version = tracking.get_model_version(MODEL, "1")
    info = mlflow.models.get_model_info(f"models:/{MODEL}/1")
    assert info.signature is not None
    assert info.signature.inputs.input_names() == list(FEATURES)
    assert info.saved_input_example_info is not None
    assert info.flavors["sklearn"]["serialization_format"] == "skops"
    assert info.flavors["python_function"]["predict_fn"] == "predict_proba"
    run = tracking.get_run(version.run_id)
    assert run.data.metrics["holdout_roc_auc"] == pytest.approx(
        first_run.output["challenger_metrics"]["roc_auc"]
    )
    assert {"holdout_accuracy", "holdout_log_loss", "holdout_brier"} <= set(run.data.metrics)
    # Without gate rows the gate is the holdout: the gate's challenger metrics are the holdout's.
    assert run.data.metrics["gate_challenger_roc_auc"] == run.data.metrics["holdout_roc_auc"]
    assert run.data.params["gate_source"] == "holdout"
    assert run.data.params["classifier"] == "HistGradientBoostingClassifier"
    profile_text = mlflow.artifacts.load_text(f"runs:/{version.run_id}/monitoring/reference_profile.json")
    profile = ReferenceProfile.from_json(profile_text)
    assert set(profile.features) >= set(FEATURES)
    assert profile.prediction is not None
    # What log_model_for_platform adds for the loop: the label, the task and the estimator.
    assert profile.metadata["label"] == LABEL
    assert profile.metadata["task"] == "classification"
    estimator = PerformanceEstimator.from_dict(profile.metadata[METADATA_KEY])
    assert estimator.reference.rows == first_run.task_outputs["prepare-data"]["holdout_rows"]
    # Seldon Core 2 needs a model-settings.json naming no runtime (log_model_for_platform writes it).
    settings = json.loads(mlflow.artifacts.load_text(f"models:/{MODEL}/1/model-settings.json"))
    assert settings == {"parameters": {"extra": {"init_parameters": {"registered_version": "1"}}}}


def test_concept_shifted_run_beats_the_champion_on_the_gate_rows_and_is_promoted(
    shifted_run: LocalRun, tracking: mlflow.MlflowClient
) -> None:
    decision = shifted_run.output
    assert decision["challenger_version"] == "2"
    assert decision["champion_version_before"] == "1"
    prepared = shifted_run.task_outputs["prepare-data"]
    assert prepared["source"].startswith("file:")
    assert prepared["gate_source"].endswith("gate.csv") and prepared["gate_rows"] == ROWS_PER_DAY
    assert decision["gate_source"] == prepared["gate_source"]
    gate = gate_of(shifted_run)
    expected = generate_range(17, 18, ROWS_PER_DAY, scenario="concept_shift", drift_start_day=7, seed=2)
    assert gate[LABEL].tolist() == expected[LABEL].tolist()  # the gate file's rows, not the holdout
    # Recompute both sides on the gate rows: the champion was judged on exactly these rows.
    champion = mlflow.pyfunc.load_model(f"models:/{MODEL}/1")
    champion_scores = np.asarray(champion.predict(gate[list(FEATURES)]))[:, 1]
    assert decision["champion_metrics"]["roc_auc"] == pytest.approx(
        roc_auc_score(gate[LABEL], champion_scores)
    )
    challenger = mlflow.pyfunc.load_model(f"models:/{MODEL}/2")
    challenger_scores = np.asarray(challenger.predict(gate[list(FEATURES)]))[:, 1]
    assert decision["challenger_metrics"]["roc_auc"] == pytest.approx(
        roc_auc_score(gate[LABEL], challenger_scores)
    )
    improvement = decision["challenger_metrics"]["roc_auc"] - decision["champion_metrics"]["roc_auc"]
    assert decision["roc_auc_improvement"] == pytest.approx(improvement)
    assert improvement > 0.1  # the old model lost the relation; the retrained one learned the new one
    assert decision["promoted"] is (improvement >= decision["promotion_margin"])
    assert decision["champion_version_after"] == "2"
    assert tracking.get_model_version_by_alias(MODEL, "champion").version == "2"
    assert "Promoted to champion" in tracking.get_model_version(MODEL, "2").description


def test_champion_alias_loads_and_predicts_probabilities(shifted_run: LocalRun) -> None:
    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    rows = generate_range(20, 21, 50, scenario="concept_shift", drift_start_day=7, seed=5)[list(FEATURES)]
    probabilities = np.asarray(model.predict(rows))
    assert probabilities.shape == (50, 2)
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)


@pytest.fixture
def promotion_model(
    shifted_run: LocalRun, tracking: mlflow.MlflowClient, request: pytest.FixtureRequest
) -> str:
    """A separate registered model with two versions (copies of v1 and v2) and v1 as champion."""
    name = f"promotion-{request.node.name[-40:]}".replace("[", "-").replace("]", "")
    for source_version in ("1", "2"):
        mlflow.register_model(tracking.get_model_version(MODEL, source_version).source, name)
    tracking.set_registered_model_alias(name, "champion", "1")
    return name


def promote(
    name: str,
    tmp_path: Path,
    *,
    challenger_auc: float,
    champion_auc: float,
    margin: float,
    gain_lower: float | None = None,
) -> dict:
    """Run the promote step's own code in this process, against the real MLflow server."""
    challenger = {"roc_auc": challenger_auc, "accuracy": 0.8, "log_loss": 0.4}
    if gain_lower is not None:
        challenger["roc_auc_gain_lower"] = gain_lower
    return components.promote_model.python_func(
        tracking_uri=mlflow.get_tracking_uri(),
        model_name=name,
        challenger_version="2",
        challenger_metrics=challenger,
        champion_metrics={"roc_auc": champion_auc, "accuracy": 0.8, "log_loss": 0.4},
        champion_version="1",
        promotion_margin=margin,
        decision_metrics=Metrics(name="decision_metrics", uri=str(tmp_path / "decision_metrics")),
    )


def test_a_challenger_below_the_margin_is_rejected_and_the_champion_stays(
    promotion_model: str, tracking: mlflow.MlflowClient, tmp_path: Path
) -> None:
    decision = promote(promotion_model, tmp_path, challenger_auc=0.805, champion_auc=0.80, margin=0.01)
    assert decision["promoted"] is False
    assert decision["champion_version_after"] == "1"
    assert "improvement +0.0050 is below the margin 0.0100" in decision["reason"]
    assert decision["reason"].startswith("ROC AUC on the gate rows (holdout) 0.8050 vs champion v1 0.8000")
    assert tracking.get_model_version_by_alias(promotion_model, "champion").version == "1"
    version = tracking.get_model_version(promotion_model, "2")
    assert version.tags["promotion.decision"] == "rejected"
    assert json.loads(version.tags["promotion.evidence"])["champion_metrics"]["roc_auc"] == 0.80
    assert version.description.startswith("Not promoted")


def test_a_challenger_at_the_margin_is_promoted(
    promotion_model: str, tracking: mlflow.MlflowClient, tmp_path: Path
) -> None:
    decision = promote(promotion_model, tmp_path, challenger_auc=0.8125, champion_auc=0.80, margin=0.0125)
    assert decision["promoted"] is True
    assert tracking.get_model_version_by_alias(promotion_model, "champion").version == "2"


def test_a_gain_within_chance_on_the_gate_rows_is_rejected_however_large(
    promotion_model: str, tracking: mlflow.MlflowClient, tmp_path: Path
) -> None:
    decision = promote(
        promotion_model, tmp_path, challenger_auc=0.83, champion_auc=0.80, margin=0.01, gain_lower=-0.004
    )
    assert decision["promoted"] is False
    assert "its 90% band starts at -0.0040, not above zero: within chance" in decision["reason"]
    assert tracking.get_model_version_by_alias(promotion_model, "champion").version == "1"
    beyond = promote(
        promotion_model, tmp_path, challenger_auc=0.83, champion_auc=0.80, margin=0.01, gain_lower=0.006
    )
    assert beyond["promoted"] is True


def test_no_promotion_when_the_champion_moved_during_the_run(
    promotion_model: str, tracking: mlflow.MlflowClient, tmp_path: Path
) -> None:
    mlflow.register_model(tracking.get_model_version(MODEL, "1").source, promotion_model)  # version 3
    tracking.set_registered_model_alias(promotion_model, "champion", "3")  # another run promoted meanwhile
    decision = promote(promotion_model, tmp_path, challenger_auc=0.9, champion_auc=0.7, margin=0.01)
    assert decision["promoted"] is False
    assert "champion moved from v1 to v3 during this run" in decision["reason"]
    assert tracking.get_model_version_by_alias(promotion_model, "champion").version == "3"


def test_a_training_file_without_the_label_fails_in_prepare_with_the_missing_column(
    mlflow_server: str, runs_root: Path, tmp_path: Path
) -> None:
    unlabelled = tmp_path / "unlabelled.csv"
    generate_range(0, 1, 20).drop(columns=[LABEL]).to_csv(unlabelled, index=False)
    with pytest.raises(
        PipelineError,
        match=r"failed in step prepare-data: \S*PlatformModelError: .*lacks columns \['default'\]",
    ):
        run_local(
            credit_default_pipeline,
            {"tracking_uri": mlflow_server, "training_data_path": str(unlabelled)},
            pipeline_root=runs_root,
        )
