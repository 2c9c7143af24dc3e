"""The cluster half of the loop: the models file both sides agree on, threshold mapping, the monitor service
checking the listed models against a real ``mlflow server``, and the KFP retrain's data hand-off."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from platform_components.monitoring.fleet import (
    MODELS_ENV,
    NO_RUNNER,
    KfpRetrain,
    MonitoredModel,
    PipelineTarget,
    load_models,
    monitor_config,
    parse_models,
    performance_floor,
    policy_config,
)
from platform_components.monitoring.policy import PolicyConfig, PolicyState, RetrainRequest, decide
from processes import find_free_port, stop_process_tree, wait_healthy

from platform_components.errors import ConfigError
from platform_components.monitoring.monitor import MonitorConfig

REPO = Path(__file__).resolve().parents[2]
SERVED = "cd-prod"  # the Seldon Model's name: the prediction log's and the metrics' `model`
REGISTERED = "credit-default"  # the MLflow registered model behind it
THRESHOLDS = {
    "drift_p_value": 0.02,
    "psi": 0.3,
    "min_accuracy": 0.95,
    "max_p95_latency_seconds": 0.5,
    "max_error_rate": 0.01,
}
PIPELINE = f"{REPO / 'examples/credit_default/pipeline.py'}:credit_default_pipeline"


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    """The platform program's objects (offline render under mocks) for one model with its own thresholds."""
    from platform_components.render import kubernetes_objects, run_program

    model = {
        "name": SERVED,
        "registered_model": REGISTERED,
        "alias": "champion",
        "thresholds": THRESHOLDS,
    }
    config = {"mlops:secret_seed": "test-seed-0123456789abcdef", "mlops:models": json.dumps([model])}
    return kubernetes_objects(run_program(config, ("mlops:secret_seed",)).resources)


def models_json(objects: list[dict[str, Any]]) -> str:
    [config_map] = [
        item
        for item in objects
        if item["kind"] == "ConfigMap" and item["metadata"]["name"] == "model-monitor"
    ]
    return config_map["data"]["models.json"]


def monitor_metric_names(objects: list[dict[str, Any]]) -> set[str]:
    """Every ``mlops_monitor_*`` series the rendered PrometheusRules read."""
    names: set[str] = set()
    for item in objects:
        if item["kind"] != "PrometheusRule":
            continue
        for group in item["spec"]["groups"]:
            for rule in group["rules"]:
                names.update(re.findall(r"\bmlops_monitor_[a-z_]+", rule["expr"]))
    return names


def test_the_rendered_models_file_parses_with_the_service_schema(rendered, tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    path.write_text(models_json(rendered))
    [entry] = load_models(path)
    assert (entry.name, entry.registered_model, entry.alias) == (SERVED, REGISTERED, "champion")
    assert entry.thresholds.model_dump() == THRESHOLDS
    # The StatefulSet points the service at the mounted file.
    [statefulset] = [
        item
        for item in rendered
        if item["kind"] == "StatefulSet" and item["metadata"]["name"] == "model-monitor"
    ]
    [container] = statefulset["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env[MODELS_ENV] == "/etc/mlops/models.json"
    assert "--check-interval" in container["args"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", r"models.json: not valid JSON"),
        ('{"name": "a"}', r"models.json: expected a JSON list of models, got dict"),
        ('[{"name": "a"}]', r"models.json\[0\].registered_model: Field required"),
        (
            '[{"name": "a", "registered_model": "a", "thresholds": {"psi": -1}}]',
            r"models.json\[0\].thresholds.psi: Input should be greater than 0 \(got -1\)",
        ),
        (
            '[{"name": "a", "registered_model": "a", "thresholds": {"drift_p_value": 2}}]',
            r"\[0\].thresholds.drift_p_value: Input should be less than 1 \(got 2\)",
        ),
        ('[{"name": "a", "registered_model": "a", "alais": "x"}]', r"\[0\].alais: Extra inputs"),
        (
            '[{"name": "a", "registered_model": "a"}, {"name": "a", "registered_model": "b"}]',
            r"models.json\[1\].name: 'a' is also entry \[0\]",
        ),
    ],
)
def test_bad_models_files_name_the_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_models(text)


def test_a_missing_models_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"{MODELS_ENV}=.*nope.json.*cannot read it"):
        load_models(tmp_path / "nope.json")


def test_thresholds_map_onto_the_check_and_the_policy() -> None:
    [entry] = parse_models(json.dumps([{"name": "m", "registered_model": "m", "thresholds": THRESHOLDS}]))
    check = monitor_config(entry, MonitorConfig(min_rows=10))
    assert (check.alpha, check.psi_threshold, check.min_rows) == (0.02, 0.3, 10)
    policy = policy_config(entry, PolicyConfig(min_labels=100, cooldown_seconds=5.0))
    assert (policy.performance_metric, policy.max_performance_drop) == ("accuracy", 0.0)
    assert (policy.min_labels, policy.cooldown_seconds) == (100, 5.0)  # the rest is kept

    def decision(accuracy: float, labelled: int):
        result = {
            "status": "ok",
            "checked_at": 1_000.0,
            "drift_share": 0.0,
            "labelled_rows": labelled,
            "performance": {"accuracy": accuracy},
        }
        state = PolicyState("m", "1", [result], baseline_metric=performance_floor(entry), config=policy)
        return decide(state, now=1_001.0)

    # min_accuracy is a floor, the same condition as the ModelAccuracyLow alert.
    assert decision(0.94, 100).reasons == ["performance"]
    assert decision(0.96, 100).reasons == []
    assert decision(0.5, 99).reasons == []  # too few labels to trust


def test_a_retrain_without_labelled_rows_uploads_nothing() -> None:
    entry = MonitoredModel(name="m", registered_model="m")
    request = RetrainRequest("m", "1", 7, ["drift"], pd.DataFrame(), since=0.0)
    # Nothing listens on the tracking URI: an upload attempt would fail, so none was made.
    assert KfpRetrain(entry, "http://127.0.0.1:9", None)(request) == {
        "outcome": "no labelled rows",
        "since": 0.0,
    }


def test_retrain_arguments_fill_what_the_pipeline_takes() -> None:
    from platform_components.pipelines.runner import load_pipeline

    entry = MonitoredModel(
        name=SERVED, registered_model=REGISTERED, pipeline_arguments={"promotion_margin": 0.02}
    )
    target = PipelineTarget("http://kfp:8888", load_pipeline(PIPELINE))
    arguments = KfpRetrain(entry, "http://mlflow:5000", target).arguments("runs:/r/p.csv")
    assert arguments == {
        "training_data_path": "runs:/r/p.csv",
        "tracking_uri": "http://mlflow:5000",
        "model_name": REGISTERED,
        "promotion_margin": 0.02,
    }


def start_service(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


def test_the_service_refuses_to_start_on_a_bad_models_file(tmp_path: Path) -> None:
    bad = tmp_path / "models.json"
    bad.write_text('[{"name": "a", "registered_model": "a", "thresholds": {"min_accuracy": 3}}]')
    base = [sys.executable, "-m", "platform_components.monitoring.service", "--state-dir", str(tmp_path)]
    base += ["--port", str(find_free_port()), "--tracking-uri", "http://127.0.0.1:9"]
    done = start_service(base, {**os.environ, MODELS_ENV: str(bad)})
    assert done.returncode == 2
    assert "thresholds.min_accuracy: Input should be less than or equal to 1 (got 3)" in done.stderr
    done = start_service([*base, "--kfp-host", "http://127.0.0.1:9"], {**os.environ, MODELS_ENV: ""})
    assert done.returncode == 2 and "--pipeline: missing with --kfp-host" in done.stderr


# --- against a real MLflow server and a real service process ------------------------------------------


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow-server")
    port = find_free_port()
    argv = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"]
    argv += ["--serve-artifacts", "--artifacts-destination", str(root / "artifacts")]
    log = root / "server.log"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{uri}/health", process, log)
        yield uri
    finally:
        stop_process_tree(process)


def register_champion(tracking_uri: str) -> None:
    """Version 1 of the registered model with its reference profile, as the pipeline leaves it."""
    from mlflow.tracking import MlflowClient

    from examples.credit_default.data import CATEGORICAL_FEATURES, NUMERIC_FEATURES, generate_range
    from platform_components.monitoring.profile import build_reference_profile
    from platform_components.monitoring.tracking import PROFILE_ARTIFACT

    client = MlflowClient(tracking_uri=tracking_uri)
    run = client.create_run(client.create_experiment("train"))
    training = generate_range(0, 2, 1_000, seed=0)
    profile = build_reference_profile(
        training,
        numeric=list(NUMERIC_FEATURES),
        categorical=list(CATEGORICAL_FEATURES),
        prediction_scores=np.random.default_rng(0).beta(2, 5, len(training)),
    )
    client.log_text(run.info.run_id, profile.to_json(), PROFILE_ARTIFACT)
    client.log_metric(run.info.run_id, "holdout_accuracy", 0.97)
    client.set_terminated(run.info.run_id)
    client.create_registered_model(REGISTERED)
    client.create_model_version(REGISTERED, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    client.set_registered_model_alias(REGISTERED, "champion", "1")


def log_labelled_traffic(state_dir: Path, requests: int = 8, rows: int = 50) -> int:
    """Predictions of the served name, drifted, with ground truth stored; returns labelled rows."""
    from examples.credit_default.data import LABEL, generate_day
    from platform_components.monitoring.store import MonitorStore
    from platform_components.serving.predlog import PredictionLog, PredictionRecord

    rng = np.random.default_rng(1)
    now = time.time()
    labels: dict[str, list[int]] = {}
    with PredictionLog(state_dir / "predictions" / SERVED) as log:
        for index in range(requests):
            frame = generate_day(10 + index, rows, scenario="market_downturn", drift_start_day=0, seed=3)
            scores = rng.beta(2, 5, rows)
            inputs = {
                column: [None if pd.isna(value) else value for value in frame[column]]
                for column in frame.columns
                if column != LABEL
            }
            log.append(
                PredictionRecord(
                    f"req-{index}",
                    SERVED,
                    "1",
                    now - 600 + index,
                    inputs,
                    {"predict_proba": [[1 - score, score] for score in scores]},
                )
            )
            labels[f"req-{index}"] = frame[LABEL].astype(int).tolist()
    with MonitorStore.for_state_dir(state_dir) as store:
        store.ingest_state_dir(state_dir)
        for request_id, values in labels.items():
            store.add_labels(request_id, values)
    return requests * rows


@pytest.mark.slow
def test_service_checks_the_listed_models_and_records_the_kfp_submission(
    rendered, mlflow_server: str, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    from platform_components.monitoring.store import MonitorStore

    register_champion(mlflow_server)
    labelled = log_labelled_traffic(tmp_path)
    models_path = tmp_path / "models.json"
    models_path.write_text(models_json(rendered))  # exactly what the ConfigMap mounts
    port, dead_kfp = find_free_port(), f"http://127.0.0.1:{find_free_port()}"
    argv = [sys.executable, "-m", "platform_components.monitoring.service", "--state-dir", str(tmp_path)]
    argv += ["--port", str(port), "--tracking-uri", mlflow_server, "--check-interval", "1"]
    argv += ["--window-seconds", "3600", "--kfp-host", dead_kfp, "--pipeline", PIPELINE]
    log = tmp_path / "service.log"
    env = {**os.environ, MODELS_ENV: str(models_path), "PYTHONPATH": str(REPO)}
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    decisions: list[Any] = []
    try:
        wait_healthy(f"{base}/health", process, log)
        deadline = time.monotonic() + 60
        while not [d for d in decisions if d.action == "retrain" and d.outcome != "started"]:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"no retrain decision:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
            with MonitorStore.for_state_dir(tmp_path) as store:
                decisions = store.decisions(SERVED)
        text = httpx.get(f"{base}/metrics", timeout=5).text
    finally:
        stop_process_tree(process)

    # Every monitor series the rendered alert rules read is exported, for the served name's version.
    wanted = monitor_metric_names(rendered)
    assert {"mlops_monitor_drifted_features", "mlops_monitor_accuracy"} <= wanted
    for name in sorted(wanted):
        assert re.search(rf'^{name}\{{[^}}]*model="{SERVED}"[^}}]*\}} ', text, re.M), (name, text[:2000])
    assert f'mlops_monitor_labelled_rows{{model="{SERVED}",version="1"}} {float(labelled)}' in text

    [retrain] = [d for d in decisions if d.action == "retrain"]
    assert "performance" in retrain.reasons and retrain.version == "1"
    assert retrain.evidence["performance"]["baseline"] == THRESHOLDS["min_accuracy"]
    assert retrain.outcome == "submit_failed"
    detail = retrain.outcome_detail
    assert dead_kfp in detail["error"] and "credit-default-training" in detail["error"]
    assert detail["rows"] == labelled

    # The check was logged against the registered model's version.
    client = MlflowClient(tracking_uri=mlflow_server)
    version = client.get_model_version(REGISTERED, "1")
    monitoring_run = client.get_run(version.tags["mlops.monitoring_run_id"])
    assert monitoring_run.data.metrics["monitor_labelled_rows"] == labelled

    # The data hand-off: the uploaded rows are what the example's prepare step reads from runs:/.
    uri = detail["training_data_path"]
    assert re.fullmatch(r"runs:/[0-9a-f]{32}/retrain_data/labelled_rows.csv", uri)
    data_run = client.get_run(uri.split("/")[1])
    assert data_run.data.tags["mlops.model"] == REGISTERED
    assert data_run.data.tags["mlops.decision_id"] == str(retrain.id)
    train, holdout, result = prepare_from(tmp_path / "prepared", uri, mlflow_server)
    assert len(train) + len(holdout) == labelled
    assert result.source == uri and set(holdout["default"]) == {0, 1}


def prepare_from(folder: Path, training_data_path: str, tracking_uri: str):
    from kfp.dsl import Dataset

    from examples.credit_default import components

    folder.mkdir(parents=True, exist_ok=True)
    train = Dataset(name="train", uri=str(folder / "train.parquet"))
    holdout = Dataset(name="holdout", uri=str(folder / "holdout.parquet"))
    result = components.prepare_data.python_func(
        train_start_day=0,
        train_end_day=1,
        rows_per_day=10,
        training_data_path=training_data_path,
        scenario="",
        drift_start_day=-1,
        seed=0,
        train=train,
        holdout=holdout,
        tracking_uri=tracking_uri,
    )
    return pd.read_parquet(train.path), pd.read_parquet(holdout.path), result


@pytest.mark.slow
def test_prepare_step_names_a_runs_uri_that_does_not_exist(mlflow_server: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"training_data_path='runs:/0{32}/x.csv' could not be downloaded"):
        prepare_from(tmp_path, f"runs:/{'0' * 32}/x.csv", mlflow_server)


@pytest.mark.slow
def test_without_a_kfp_host_the_rows_are_uploaded_and_no_runner_is_recorded(mlflow_server: str) -> None:
    from mlflow.tracking import MlflowClient

    entry = MonitoredModel(name="m", registered_model="m", label_column="default")
    rows = pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": [0, 1, 1], "timestamp": [1.0, 2.0, 3.0]})
    detail = KfpRetrain(entry, mlflow_server, None)(RetrainRequest("m", "4", 7, ["age"], rows, since=0.0))
    assert detail["outcome"] == NO_RUNNER and detail["rows"] == 3
    client = MlflowClient(tracking_uri=mlflow_server)
    run_id = detail["training_data_path"].split("/")[1]
    assert client.get_run(run_id).data.tags["mlops.retrain_reasons"] == "age"
    downloaded = client.download_artifacts(run_id, "retrain_data/labelled_rows.csv")
    assert pd.read_csv(downloaded).to_dict(orient="list") == {"x": [1.0, 2.0, 3.0], "default": [0, 1, 1]}
