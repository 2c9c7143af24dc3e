"""The cluster retrainer through the real ``kfp.Client`` against the KFP v2beta1 fake, with a real MLflow.

``KfpRetrainer`` uploads the policy's rows to MLflow (read back here as the pipeline's pods would), submits
the compiled IR to the fake (tests/kfp_api_fake.py, which answers as the 2.17.0 API server does), and maps
each run state the fake is driven to onto RUNNING / SUCCEEDED / FAILED.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kfp_api_fake import API, KfpApiFake
from processes import find_free_port

from platform_components.errors import ConfigError
from platform_components.loop.interfaces import RetrainRequest, RetrainState, TrainingData
from platform_components.loop.retrain import (
    RETRAIN_DATA_EXPERIMENT,
    KfpRetrainer,
    pipeline_arguments,
    pipeline_inputs,
    read_training_data,
)
from platform_components.pipelines import runner

REPO = Path(__file__).resolve().parents[2]
GOLDEN_IR = REPO / "tests" / "examples" / "golden" / "credit_default_pipeline.yaml"

# A pipeline that declares every input a retrain fills, plus one of its own (``seed``) and one the platform
# does not fill but that has a default (``rows_per_day``). Compiled only: it never runs here.
GATED_PIPELINE = '''
from kfp import dsl


@dsl.component(base_image="python:3.11")
def train(training_data_path: str, gate_data_path: str, promotion_margin: float, tracking_uri: str,
          model_name: str, seed: int, rows_per_day: int) -> str:
    """Stand-in for a train-and-gate step."""
    return training_data_path


@dsl.pipeline(name="gated-retrain")
def gated(tracking_uri: str, training_data_path: str = "", gate_data_path: str = "",
          promotion_margin: float = 0.01, model_name: str = "m", seed: int = 0,
          rows_per_day: int = 500) -> str:
    return train(training_data_path=training_data_path, gate_data_path=gate_data_path,
                 promotion_margin=promotion_margin, tracking_uri=tracking_uri, model_name=model_name,
                 seed=seed, rows_per_day=rows_per_day).output
'''


@pytest.fixture(scope="module")
def gated_ir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("gated")
    source = folder / "gated_retrain_pipeline.py"
    source.write_text(GATED_PIPELINE)
    return runner.compile_pipeline(runner.load_pipeline(f"{source}:gated"), folder / "gated.yaml")


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real MLflow store (sqlite) whose retrain-data experiment keeps artifacts in the test's folder."""
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri).create_experiment(
        RETRAIN_DATA_EXPERIMENT, artifact_location=(root / "artifacts").as_uri()
    )
    return uri


@pytest.fixture
def kfp_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[KfpApiFake]:
    for name in (
        "KF_PIPELINES_ENDPOINT",
        "KF_PIPELINES_UI_ENDPOINT",
        "KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME",
    ):
        monkeypatch.delenv(name, raising=False)
    with KfpApiFake() as fake:
        yield fake


def request_for(decision_id: int = 7, *, gate_rows: int = 3, **extra: Any) -> RetrainRequest:
    train = pd.DataFrame(
        {"age": [30, 41, 52, 63], "region": ["north", "south", None, "east"], "label": [0, 1, 0, 1]}
    )
    gate = pd.DataFrame({"age": [25, 35, 45][:gate_rows], "region": ["west", "north", "south"][:gate_rows]})
    gate["label"] = [1, 0, 1][:gate_rows]
    return RetrainRequest(
        model="credit-default",
        registered_model="credit-default-reg",
        champion_version="4",
        decision_id=decision_id,
        reasons=("drift", "performance"),
        data=TrainingData(
            train=train,
            gate=gate,
            label_column="label",
            start=1_000.0,
            end=2_000.0,
            selection={"mode": "since_change", "change_at": 1_000.0, "widened": False},
        ),
        promotion_margin=0.02,
        arguments=extra,
    )


def retrainer_for(fake: KfpApiFake, ir: Path, tracking_uri: str) -> KfpRetrainer:
    return KfpRetrainer(fake.host, ir, tracking_uri=tracking_uri, experiment="mlops-retrain")


def test_a_run_driven_to_succeeded_is_running_then_succeeded(
    kfp_api: KfpApiFake, gated_ir: Path, tracking_uri: str
) -> None:
    retrainer = retrainer_for(kfp_api, gated_ir, tracking_uri)
    started = retrainer.start(request_for(7, seed=3))
    assert started.state is RetrainState.RUNNING, started.detail
    run = kfp_api.state.runs[started.run_id]
    assert started.detail["kfp_run_id"] == started.run_id and started.detail["kfp_host"] == kfp_api.host

    # What reached the API: every input the platform fills, the model's own argument, in the experiment.
    data_run = started.detail["data_run_id"]
    assert run.runtime_config.parameters == {
        "training_data_path": f"runs:/{data_run}/retrain_data/train.csv",
        "gate_data_path": f"runs:/{data_run}/retrain_data/gate.csv",
        "promotion_margin": 0.02,
        "tracking_uri": tracking_uri,
        "model_name": "credit-default-reg",
        "seed": 3,
    }
    assert run.display_name == "retrain-credit-default-d7"
    assert kfp_api.state.experiments[run.experiment_id].display_name == "mlops-retrain"

    assert retrainer.poll(started.run_id).state is RetrainState.RUNNING  # PENDING
    kfp_api.set_state(started.run_id, "RUNNING")
    polled = retrainer.poll(started.run_id)
    assert (polled.state, polled.detail["api_state"]) == (RetrainState.RUNNING, "RUNNING")
    kfp_api.finish(started.run_id, "SUCCEEDED")
    done = retrainer.poll(started.run_id)
    assert (done.state, done.run_id, done.detail["state"], done.detail["error"]) == (
        RetrainState.SUCCEEDED,
        started.run_id,
        "succeeded",
        None,
    )
    assert done.detail["finished_at"] is not None


def test_a_run_driven_to_failed_is_failed_with_the_error_and_step(
    kfp_api: KfpApiFake, gated_ir: Path, tracking_uri: str
) -> None:
    retrainer = retrainer_for(kfp_api, gated_ir, tracking_uri)
    with_message = retrainer.start(request_for(8))
    kfp_api.finish(with_message.run_id, "FAILED", error="train: ValueError: 0 labelled rows")
    failed = retrainer.poll(with_message.run_id)
    assert (failed.state, failed.detail["state"], failed.detail["error"]) == (
        RetrainState.FAILED,
        "failed",
        "train: ValueError: 0 labelled rows",
    )

    # What the 2.17.0 server itself shows of a failure: a FAILED task and no message.
    by_step = retrainer.start(request_for(9))
    kfp_api.finish(by_step.run_id, "FAILED", failed_task="train")
    failed = retrainer.poll(by_step.run_id)
    assert failed.state is RetrainState.FAILED
    assert (failed.detail["failed_tasks"], failed.detail["error"]) == (["train"], "step(s) train failed")
    assert len(kfp_api.uploads()) == 1  # the second retrain reused the uploaded version


@pytest.mark.parametrize(
    ("api_state", "state", "error"),
    [
        ("PAUSED", RetrainState.RUNNING, None),
        ("CANCELING", RetrainState.RUNNING, None),
        ("CANCELED", RetrainState.FAILED, "the run was canceled"),
        ("SKIPPED", RetrainState.FAILED, "the run was skipped: no step ran, no challenger was trained"),
    ],
)
def test_the_other_runtime_states_map_to_running_or_failed(
    kfp_api: KfpApiFake, gated_ir: Path, tracking_uri: str, api_state: str, state: RetrainState, error: str
) -> None:
    retrainer = retrainer_for(kfp_api, gated_ir, tracking_uri)
    started = retrainer.start(request_for(10))
    kfp_api.set_state(started.run_id, api_state)
    polled = retrainer.poll(started.run_id)
    assert (polled.state, polled.detail["api_state"], polled.detail["error"]) == (state, api_state, error)


def test_the_uploaded_rows_are_the_training_data_read_back_from_mlflow(
    kfp_api: KfpApiFake, gated_ir: Path, tracking_uri: str
) -> None:
    from mlflow.tracking import MlflowClient

    request = request_for(11)
    started = retrainer_for(kfp_api, gated_ir, tracking_uri).start(request)
    parameters = kfp_api.state.runs[started.run_id].runtime_config.parameters
    train = read_training_data(tracking_uri, parameters["training_data_path"])
    gate = read_training_data(tracking_uri, parameters["gate_data_path"])
    pd.testing.assert_frame_equal(train, request.data.train)
    pd.testing.assert_frame_equal(gate, request.data.gate)

    run = MlflowClient(tracking_uri=tracking_uri).get_run(started.detail["data_run_id"])
    assert {
        key: run.data.tags[key] for key in ("mlops.model", "mlops.model_version", "mlops.decision_id")
    } == {
        "mlops.model": "credit-default",
        "mlops.model_version": "4",
        "mlops.decision_id": "11",
    }
    assert run.data.tags["mlops.registered_model"] == "credit-default-reg"
    assert (run.data.params["train_rows"], run.data.params["gate_rows"]) == ("4", "3")
    assert run.info.status == "FINISHED"
    assert (started.detail["train_rows"], started.detail["gate_rows"]) == (4, 3)


def test_an_unknown_pipeline_version_is_not_started_with_the_apis_message(
    kfp_api: KfpApiFake, gated_ir: Path, tracking_uri: str
) -> None:
    retrainer = retrainer_for(kfp_api, gated_ir, tracking_uri)
    first = retrainer.start(request_for(12))
    version = first.detail["pipeline_version_id"]
    # The version is deleted between the retrainer's lookup and its CreateRun (someone cleaned the server).
    kfp_api.before("POST", f"{API}/runs", lambda: kfp_api.state.versions.pop(version))
    refused = retrainer.start(request_for(13))
    assert (refused.state, refused.run_id) == (RetrainState.NOT_STARTED, None)
    assert "refused to create the run" in refused.detail["error"]
    assert f"PipelineVersion {version} not found" in refused.detail["error"]
    assert list(kfp_api.state.runs) == [first.run_id]


def test_an_unreachable_api_is_not_started_naming_the_host_setting(gated_ir: Path, tracking_uri: str) -> None:
    host = f"http://127.0.0.1:{find_free_port()}"
    refused = KfpRetrainer(host, gated_ir, tracking_uri=tracking_uri).start(request_for(14))
    assert refused.state is RetrainState.NOT_STARTED
    assert f"cannot reach the KFP API at {host}" in refused.detail["error"]
    assert runner.KFP_HOST_SETTING in refused.detail["error"]
    assert refused.detail["training_data_path"].startswith("runs:/")  # the rows were kept for a manual run


def test_polling_a_run_the_server_does_not_have_is_failed_and_an_outage_keeps_it_running(
    kfp_api: KfpApiFake, gated_ir: Path, tracking_uri: str
) -> None:
    retrainer = retrainer_for(kfp_api, gated_ir, tracking_uri)
    gone = retrainer.poll("no-such-run")
    assert (gone.state, gone.detail["state"]) == (RetrainState.FAILED, "gone")
    assert "Run no-such-run not found" in gone.detail["error"]
    started = retrainer.start(request_for(15))
    kfp_api.stop()
    outage = retrainer.poll(started.run_id)
    assert (outage.state, outage.detail["state"]) == (RetrainState.RUNNING, "unknown")
    assert "cannot reach the KFP API" in outage.detail["error"]


def test_the_golden_example_ir_gets_what_it_declares_with_its_gate_rows(
    kfp_api: KfpApiFake, tmp_path: Path, tracking_uri: str
) -> None:
    retrainer = retrainer_for(kfp_api, GOLDEN_IR, tracking_uri)
    started = retrainer.start(request_for(16))
    parameters = kfp_api.state.runs[started.run_id].runtime_config.parameters
    assert set(parameters) == {
        "training_data_path",
        "gate_data_path",
        "promotion_margin",
        "tracking_uri",
        "model_name",
    }
    assert parameters["gate_data_path"].startswith("runs:/") and "gate_note" not in started.detail


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"colour": "red"}, r"argument\(s\) \['colour'\] are not inputs of the pipeline; it takes \["),
        ({"training_data_path": "x.csv"}, r"\['training_data_path'\] are set by the platform"),
    ],
)
def test_a_refused_argument_starts_nothing_and_uploads_nothing(
    kfp_api: KfpApiFake, gated_ir: Path, tracking_uri: str, extra: dict[str, Any], message: str
) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(RETRAIN_DATA_EXPERIMENT).experiment_id
    before = len(client.search_runs([experiment]))
    refused = retrainer_for(kfp_api, gated_ir, tracking_uri).start(request_for(17, **extra))
    assert refused.state is RetrainState.NOT_STARTED
    assert re.search(message, refused.detail["error"]), refused.detail["error"]
    assert len(client.search_runs([experiment])) == before and kfp_api.requests == []


def test_no_training_rows_starts_nothing(kfp_api: KfpApiFake, gated_ir: Path) -> None:
    request = request_for(18)
    empty = RetrainRequest(
        **{
            **request.__dict__,
            "data": TrainingData(
                train=request.data.train.iloc[:0],
                gate=request.data.gate,
                label_column="label",
                start=0.0,
                end=0.0,
            ),
        }
    )
    # Nothing listens on this tracking URI: an upload attempt would fail, so none was made.
    refused = KfpRetrainer(kfp_api.host, gated_ir, tracking_uri="http://127.0.0.1:9").start(empty)
    assert (refused.state, refused.detail["error"]) == (
        RetrainState.NOT_STARTED,
        "no labelled rows to train on",
    )
    assert kfp_api.requests == []


def test_a_pipeline_without_a_training_data_input_is_refused_naming_the_setting(tmp_path: Path) -> None:
    source = tmp_path / "no_data_pipeline.py"
    source.write_text(
        GATED_PIPELINE.replace('training_data_path: str = "", ', "").replace(
            "training_data_path=training_data_path", 'training_data_path=""'
        )
    )
    ir = runner.compile_pipeline(runner.load_pipeline(f"{source}:gated"), tmp_path / "no-data.yaml")
    with pytest.raises(
        ConfigError,
        match=r"mlops:monitoring\.monitor\.pipeline: pipeline .* has no input "
        r"'training_data_path'",
    ):
        KfpRetrainer("http://kfp:8888", ir, tracking_uri="http://mlflow:5000")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"does not exist; compile it \(mlops pipeline compile"),
        ("kind: ConfigMap\n", r"is not a compiled KFP pipeline"),
    ],
)
def test_a_missing_or_foreign_ir_is_refused_naming_the_setting(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "pipeline.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(
        runner.PipelineError,
        match=rf"(?s){message}.*mlops:monitoring\.monitor\.pipeline",
    ):
        KfpRetrainer("http://kfp:8888", path, tracking_uri="http://mlflow:5000")


def test_the_inputs_read_from_the_ir_are_those_of_its_function(gated_ir: Path) -> None:
    source = gated_ir.with_name("gated_retrain_pipeline.py")
    function = runner.load_pipeline(f"{source}:gated")
    assert pipeline_inputs(gated_ir) == pipeline_inputs(function)
    assert pipeline_inputs(gated_ir)["tracking_uri"] is False and pipeline_inputs(gated_ir)["seed"] is True


def test_a_required_input_nothing_fills_is_named() -> None:
    with pytest.raises(runner.PipelineError, match=r"required input\(s\) \['day'\] are not filled"):
        pipeline_arguments(
            request_for(),
            {"training_data_path": True, "day": False},
            tracking_uri="u",
            training_data_path="t",
            gate_data_path=None,
        )
