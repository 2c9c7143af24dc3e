"""The cluster's monitor (``python -m platform_components.loop.service``): the monitoring service plus the
loop's rounds over the models file.

Fast: it refuses to start (exit 2, a message naming the flag) on a bad or missing models file and on
retrain flags that cannot work. Slow: the process itself, started with the stack's rendered models file and
compiled pipeline, a real ``mlflow server``, the KFP API fake (``tests/kfp_api_fake.py``) and a simulated
calendar driven through its public endpoints (``/v2/predictions`` with event times, ``/v2/feedback`` with
``event_time``), runs the retrain a drifted model needs to the KFP API and closes it as the run ends.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from processes import find_free_port, stop_process_tree, wait_healthy
from upstream_facts import fact

from platform_components.loop.models import MODELS_ENV
from platform_components.loop.service import main
from platform_components.pipelines import runner

REPO = Path(__file__).resolve().parents[2]
PIPELINE = f"{REPO / 'examples/credit_default/pipeline.py'}:credit_default_pipeline"
GOLDEN_IR = REPO / "tests" / "examples" / "golden" / "credit_default_pipeline.yaml"
GOOD_MODELS = '[{"name": "a", "registered_model": "a"}]'
KFP_VARIABLES = ("KF_PIPELINES_ENDPOINT", "KF_PIPELINES_UI_ENDPOINT", "KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME")


# --- start-up refusals ------------------------------------------------------------------------------


def refusal(tmp_path: Path, *flags: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Start the service with ``flags``; it must exit 2 before serving. Returns its stderr."""
    from platform_components.monitoring import service as monitoring_service

    def started(*_: Any) -> None:
        raise AssertionError(f"the service started serving with {flags} instead of refusing")

    with pytest.MonkeyPatch.context() as patch:  # a start-up that is not refused fails here, never hangs
        patch.setattr(monitoring_service, "serve", started)
        return _refusal(tmp_path, flags, capsys)


def _refusal(tmp_path: Path, flags: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> str:
    argv = [
        "--state-dir",
        str(tmp_path),
        "--port",
        str(find_free_port()),
        "--tracking-uri",
        "http://127.0.0.1:9",
    ]
    with pytest.raises(SystemExit) as stopped:
        main([*argv, *flags])
    assert stopped.value.code == 2
    return capsys.readouterr().err


@pytest.fixture
def no_models_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MODELS_ENV, raising=False)


@pytest.fixture
def good_models(tmp_path: Path) -> Path:
    path = tmp_path / "models.json"
    path.write_text(GOOD_MODELS)
    return path


def test_a_bad_models_file_stops_start_up_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "models.json"
    bad.write_text('[{"name": "a", "registered_model": "a", "policy": {"cooldwn": "1d"}}]')
    monkeypatch.setenv(MODELS_ENV, str(bad))  # as the StatefulSet's env gives it
    err = refusal(tmp_path, capsys=capsys)
    assert f"error: {bad}[0].policy.cooldwn: Extra inputs are not permitted" in err
    bad.write_text('[{"name": "a", "registered_model": "a", "thresholds": {"min_accuracy": 3}}]')
    err = refusal(tmp_path, "--models", str(bad), capsys=capsys)
    assert "[0].thresholds.min_accuracy: Input should be less than or equal to 1 (got 3)" in err


def test_a_missing_models_file_stops_start_up_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "nope.json"))
    err = refusal(tmp_path, capsys=capsys)
    assert re.search(rf"{MODELS_ENV}='.*nope\.json': cannot read it", err), err


def test_no_models_file_at_all_names_the_flag_and_the_variable(
    tmp_path: Path, no_models_variable: None, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refusal(tmp_path, capsys=capsys)
    assert f"--models: missing and ${MODELS_ENV} is not set" in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--kfp-host", "http://127.0.0.1:9"), r"--pipeline: missing with --kfp-host 'http://127.0.0.1:9'"),
        (
            ("--kfp-host", "ml-pipeline:8888", "--pipeline", str(GOLDEN_IR)),
            r"--kfp-host: 'ml-pipeline:8888' is not a URL \(mlops:monitoring\.monitor\.kfp_host\)",
        ),
        (
            ("--kfp-host", "http://", "--pipeline", str(GOLDEN_IR)),
            r"--kfp-host: 'http://' is not a URL",
        ),
        (
            # kfp.Client puts /apis/v2beta1/... after the host: a path would send every call to a wrong URL.
            (
                "--kfp-host",
                "http://ml-pipeline:8888" + fact("kfp_client.resource_path_prefix"),
                "--pipeline",
                str(GOLDEN_IR),
            ),
            r"--kfp-host: 'http://ml-pipeline:8888/apis/v2beta1' is not .* without a path",
        ),
        (("--check-interval", "0"), r"--check-interval: 0.0 must be > 0 seconds"),
        (
            ("--kfp-host", "http://kfp:8888", "--pipeline", str(GOLDEN_IR), "--experiment", " padded"),
            r"--experiment: ' padded' is empty or padded",
        ),
        (
            ("--kfp-host", "http://kfp:8888", "--pipeline", "/nowhere/pipeline.yaml"),
            r"--pipeline: pipeline IR '/nowhere/pipeline.yaml' does not exist",
        ),
    ],
)
def test_retrain_flags_that_cannot_work_stop_start_up_naming_the_flag(
    tmp_path: Path,
    good_models: Path,
    capsys: pytest.CaptureFixture[str],
    flags: tuple[str, ...],
    message: str,
) -> None:
    err = refusal(tmp_path, "--models", str(good_models), *flags, capsys=capsys)
    assert re.search(message, err), err


def test_a_kfp_host_with_a_trailing_slash_is_the_same_host(good_models: Path, tmp_path: Path) -> None:
    from platform_components.loop.service import parser, startup_config

    slash = fact("kfp_client.host_only_loses_a_trailing_slash")
    arguments = parser().parse_args(
        ["--state-dir", str(tmp_path), "--port", "1", "--tracking-uri", "http://127.0.0.1:9", "--models"]
        + [str(good_models), "--kfp-host", f"http://ml-pipeline:8888{slash}", "--pipeline", str(GOLDEN_IR)]
    )
    _, retrain = startup_config(arguments)
    assert retrain is not None and retrain.host == "http://ml-pipeline:8888"


def test_a_pipeline_that_cannot_take_the_rows_stops_start_up(
    tmp_path: Path, good_models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    documents = list(yaml.safe_load_all(GOLDEN_IR.read_text()))
    del documents[0]["root"]["inputDefinitions"]["parameters"]["training_data_path"]
    ir = tmp_path / "no-data.yaml"
    ir.write_text(yaml.safe_dump_all(documents))
    err = refusal(
        tmp_path,
        "--models",
        str(good_models),
        "--kfp-host",
        "http://kfp:8888",
        "--pipeline",
        str(ir),
        capsys=capsys,
    )
    assert f"--pipeline: '{ir}' has no input 'training_data_path'" in err


def test_a_serving_namespace_without_a_cluster_stops_start_up_naming_the_flag(
    tmp_path: Path, good_models: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # not in a pod
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    err = refusal(tmp_path, "--models", str(good_models), "--serving-namespace", "seldon", capsys=capsys)
    assert "--serving-namespace: cannot reach the Kubernetes API to serve models in 'seldon'" in err, err


def test_the_module_refuses_as_a_process_too(tmp_path: Path) -> None:
    """What the StatefulSet runs: the module as ``python -m``, exit code 2 and the message on stderr."""
    argv = [sys.executable, "-m", "platform_components.loop.service", "--state-dir", str(tmp_path)]
    argv += ["--port", str(find_free_port()), "--tracking-uri", "http://127.0.0.1:9"]
    argv += ["--kfp-host", "http://127.0.0.1:9"]
    env = {**os.environ, MODELS_ENV: "", "PYTHONPATH": str(REPO)}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--models: missing" in done.stderr, done.stderr


# --- the process, end to end ------------------------------------------------------------------------

SERVED = "cd-prod"  # the Seldon Model's name: the prediction log's and the metrics' `model`
REGISTERED = "credit-default"  # the MLflow registered model behind it (the example pipeline's default)
DAY = 86400.0  # the default policy's window: one simulated day
REQUESTS_PER_DAY, ROWS_PER_REQUEST = 8, 50
LABEL_DELAY = 3600.0


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


@pytest.fixture(scope="module")
def champion(mlflow_server: str) -> Any:
    """Version 1 of the registered model, logged with the platform helper (signature, reference profile,
    holdout scores, estimator) and made champion; returns the fitted model."""
    import mlflow
    import threadpoolctl
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from examples.credit_default.data import (
        CATEGORICAL_FEATURES,
        FEATURES,
        LABEL,
        NUMERIC_FEATURES,
        generate_range,
    )
    from platform_components.pipelines import log_model_for_platform

    threadpoolctl.threadpool_limits(limits=1)  # see examples/credit_default/components.py train_model
    train = generate_range(0, 4, 500, seed=0)
    holdout = generate_range(4, 5, 500, seed=0)
    model = Pipeline(
        [
            (
                "preprocess",
                ColumnTransformer(
                    [
                        ("numeric", "passthrough", list(NUMERIC_FEATURES)),
                        ("categorical", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_FEATURES)),
                    ]
                ),
            ),
            ("classifier", HistGradientBoostingClassifier(max_iter=60, random_state=0)),
        ]
    ).fit(train[list(FEATURES)], train[LABEL])
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment(REGISTERED)
    with mlflow.start_run():
        version = log_model_for_platform(
            model,
            model_name=REGISTERED,
            train=train,
            holdout=holdout,
            label=LABEL,
            numeric_features=list(NUMERIC_FEATURES),
            categorical_features=list(CATEGORICAL_FEATURES),
        )
    assert version == "1"
    mlflow.MlflowClient().set_registered_model_alias(REGISTERED, "champion", version)
    return model


@pytest.fixture(scope="module")
def monitor_config(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list[dict[str, Any]]]:
    """The stack rendered with the model and the example's compiled pipeline: the ConfigMap's files written
    where the pod mounts them (a folder here), and the monitor container's argv pointing into it."""
    from platform_components.kubernetes.monitoring import MONITOR_CONFIG_DIR
    from platform_components.render import kubernetes_objects, run_program

    folder = tmp_path_factory.mktemp("monitor-config")
    ir = runner.compile_pipeline(runner.load_pipeline(PIPELINE), folder / "compiled.yaml")
    model = {"name": SERVED, "registered_model": REGISTERED, "label_column": "default"}
    config = {
        "mlops:secret_seed": "test-seed-0123456789abcdef",
        "mlops:models": json.dumps([model]),
        "mlops:monitoring": json.dumps({"monitor": {"pipeline": str(ir)}}),
    }
    objects = kubernetes_objects(run_program(config, ("mlops:secret_seed",)).resources)
    [config_map] = [
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "model-monitor"
    ]
    for key, text in config_map["data"].items():
        (folder / key).write_text(text)
    [statefulset] = [
        o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "model-monitor"
    ]
    [container] = statefulset["spec"]["template"]["spec"]["containers"]
    args = [arg.replace(MONITOR_CONFIG_DIR, str(folder)) for arg in container["args"]]
    return folder, args, objects


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


def set_flag(args: list[str], flag: str, value: str | None) -> list[str]:
    """``args`` with ``flag``'s value replaced (None: the flag and its value removed)."""
    args = list(args)
    index = args.index(flag)
    if value is None:
        del args[index : index + 2]
    else:
        args[index + 1] = value
    return args


class Calendar:
    """Simulated days of traffic, each posted to the service as the serving pod's shipper and the label
    source would: predictions (with the champion's real scores) at event times inside the day, then their
    labels an hour later in event time (the last request's ``last_label_delay`` later)."""

    def __init__(self, client: httpx.Client, model: Any, start: float, *, served: str = SERVED) -> None:
        self.client, self.model, self.start, self.served = client, model, start, served

    def post_day(
        self, day: int, data_day: int, *, scenario: str | None, last_label_delay: float = LABEL_DELAY
    ) -> None:
        from examples.credit_default.data import FEATURES, LABEL, generate_day

        rows = REQUESTS_PER_DAY * ROWS_PER_REQUEST
        frame = generate_day(data_day, rows, scenario=scenario, drift_start_day=0, ramp_days=1, seed=5)
        scores = self.model.predict_proba(frame[list(FEATURES)])[:, 1]
        records, labels = [], []
        for index in range(REQUESTS_PER_DAY):
            part = slice(index * ROWS_PER_REQUEST, (index + 1) * ROWS_PER_REQUEST)
            at = self.start + day * DAY + 60.0 + index * 7200.0
            request_id = f"{self.served}-day{day}-req{index}"
            records.append(
                {
                    "request_id": request_id,
                    "model": self.served,
                    "version": "1",
                    "timestamp": at,
                    "inputs": {column: frame[column].iloc[part].tolist() for column in FEATURES},
                    "outputs": {"predict_proba": [[1 - s, s] for s in scores[part].tolist()]},
                }
            )
            labels.append(
                {
                    "request_id": request_id,
                    "labels": frame[LABEL].iloc[part].astype(int).tolist(),
                    "event_time": at + (last_label_delay if index == REQUESTS_PER_DAY - 1 else LABEL_DELAY),
                }
            )
        answer = self.client.post("/v2/predictions", json={"records": records})
        assert answer.status_code == 200 and answer.json()["new_rows"] == rows, answer.text
        for body in labels:
            answer = self.client.post("/v2/feedback", json=body)
            assert answer.status_code == 200, answer.text

    def window(self, day: int) -> float:
        return self.start + day * DAY


@pytest.mark.slow
def test_the_monitor_retrains_a_drifted_model_through_the_kfp_api_and_closes_each_run(
    mlflow_server: str,
    champion: Any,
    monitor_config: tuple[Path, list[str], list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    from kfp_api_fake import KfpApiFake
    from mlflow.tracking import MlflowClient
    from prometheus_client.parser import text_string_to_metric_families

    from platform_components.monitoring.store import MonitorStore

    folder, rendered_args, objects = monitor_config
    state_dir, port = tmp_path / "state", find_free_port()
    env = {key: value for key, value in os.environ.items() if key not in KFP_VARIABLES}
    env.update({MODELS_ENV: str(folder / "models.json"), "PYTHONPATH": str(REPO)})
    log = tmp_path / "service.log"
    with KfpApiFake() as kfp:
        # The rendered argv, pointed at this machine: no --serving-namespace (no cluster to deploy to).
        args = set_flag(rendered_args, "--serving-namespace", None)
        for flag, value in (
            ("--state-dir", str(state_dir)),
            ("--host", "127.0.0.1"),
            ("--port", str(port)),
            ("--tracking-uri", mlflow_server),
            ("--check-interval", "0.5"),
            ("--kfp-host", kfp.host),
        ):
            args = set_flag(args, flag, value)
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "platform_components.loop.service", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        base = f"http://127.0.0.1:{port}"
        store: MonitorStore | None = None

        def wait_for(what: str, found: Callable[[], Any], seconds: float = 40.0) -> Any:
            deadline = time.monotonic() + seconds
            while True:
                assert process.poll() is None, log.read_text()[-4000:]
                value = found()
                if value:
                    return value
                assert time.monotonic() < deadline, f"{what}: not seen\n{log.read_text()[-4000:]}"
                time.sleep(0.3)

        def checked(day: int) -> dict[str, Any] | None:
            """The stored result of the day's window once it holds every row and label of the day."""
            for result in store.results(SERVED, version="1"):
                if (
                    result["window_start"] == calendar.window(day)
                    and result["labelled_rows"] == REQUESTS_PER_DAY * ROWS_PER_REQUEST
                ):
                    return result
            return None

        def decision_with(outcome: str, after: int = 0) -> Any:
            for row in store.decisions(SERVED):
                if row.action == "retrain" and row.outcome == outcome and row.id > after:
                    return row
            return None

        http = httpx.Client(base_url=base, timeout=30)
        try:
            wait_healthy(f"{base}/health", process, log)
            store = MonitorStore.for_state_dir(state_dir)
            # Eight days ago, aligned: label event times stay behind the service's clock.
            calendar = Calendar(http, champion, (time.time() // DAY - 8) * DAY)

            calendar.post_day(0, 10, scenario=None)  # the world the champion was trained on
            quiet = wait_for("day 0 checked", lambda: checked(0))
            assert quiet["drift_share"] < 0.25 and not store.decisions(SERVED)
            for day in (1, 2):  # a market downturn at full strength: the features drift, the relation too
                calendar.post_day(day, 10 + day, scenario="market_downturn")
                drifted = wait_for(f"day {day} checked", lambda day=day: checked(day))
                assert drifted["drift_share"] >= 0.25, drifted
            first = wait_for("a running retrain", lambda: decision_with("running"))

            # The decision: drift on two windows; the rows since the change (day 1), the gate the last 300.
            assert "drift" in first.reasons and first.version == "1"
            assert first.evidence["change_at"] == calendar.window(1)
            assert first.evidence["selection"]["rows_since_change"] == 800
            run_id = first.outcome_detail["run_id"]
            assert (
                run_id == first.outcome_detail["kfp_run_id"] and first.outcome_detail["kfp_host"] == kfp.host
            )
            assert store.lease_holder(SERVED) is not None  # held while the run runs
            # The KFP API holds the run: the example's IR, its inputs filled by the platform.
            run = kfp.state.runs[run_id]
            parameters = run.runtime_config.parameters
            data_run = first.outcome_detail["data_run_id"]
            assert parameters == {
                "training_data_path": f"runs:/{data_run}/retrain_data/train.csv",
                "gate_data_path": f"runs:/{data_run}/retrain_data/gate.csv",
                "promotion_margin": 0.01,
                "tracking_uri": mlflow_server,
                "model_name": REGISTERED,
            }
            assert run.display_name == f"retrain-{SERVED}-d{first.id}"
            assert kfp.state.experiments[run.experiment_id].display_name == "mlops-retrain"
            # The data hand-off: what the example's prepare step reads from those runs:/ URIs.
            train, gate, prepared = prepare_from(tmp_path / "prepared", parameters, mlflow_server)
            assert (len(train) + prepared.holdout_rows, len(gate)) == (500, 300)
            assert prepared.gate_source == parameters["gate_data_path"]
            assert set(gate["default"]) == {0, 1}

            # The run succeeds; nothing moved the champion alias: closed as not promoted, lease released.
            kfp.finish(run_id, "SUCCEEDED")
            closed = wait_for("the first retrain closed", lambda: decision_with("not_promoted"))
            assert closed.id == first.id
            assert (closed.outcome_detail["champion_version_before"], closed.outcome_detail["promoted"]) == (
                "1",
                False,
            )
            assert store.lease_holder(SERVED) is None

            # The same round saw the drop again and recorded it as held back by the cool-down.
            [held] = wait_for(
                "the cool-down recorded",
                lambda: [row for row in store.decisions(SERVED) if row.id > first.id],
            )
            assert (held.action, held.outcome, held.evidence["window_start"]) == (
                "suppressed",
                "blocked: cooldown",
                calendar.window(2),
            )

            # The next day the model is still off. The cool-down (a day of event time since the decision, at
            # day 2's last label) ends with the day's late last label: a second retrain, which fails.
            calendar.post_day(3, 13, scenario="market_downturn", last_label_delay=6 * 3600.0)
            wait_for("day 3 checked", lambda: checked(3))
            second = wait_for("a second running retrain", lambda: decision_with("running", after=first.id))
            assert second.decided_at - first.decided_at == DAY + 5 * 3600.0
            assert second.evidence["change_at"] == calendar.window(1)  # the same change, still recovering
            assert second.evidence["selection"]["rows_since_change"] == 1200
            kfp.finish(second.outcome_detail["run_id"], "FAILED", error="train: ValueError: no rows")
            failed = wait_for("the second retrain closed", lambda: decision_with("failed"))
            assert failed.id == second.id and failed.outcome_detail["error"] == "train: ValueError: no rows"
            assert store.lease_holder(SERVED) is None
            # Two retrains started, each closed once; nothing else was a retrain.
            retrains = [(row.id, row.outcome) for row in store.decisions(SERVED) if row.action == "retrain"]
            assert retrains == [(first.id, "not_promoted"), (second.id, "failed")]
            text = http.get("/metrics").text
        finally:
            http.close()
            stop_process_tree(process)
            if store is not None:
                store.close()

    # /metrics: every monitor series the rendered alert rules read, for the served name; the latest window.
    wanted = monitor_metric_names(objects)
    assert {"mlops_monitor_drifted_features", "mlops_monitor_accuracy"} <= wanted
    for name in sorted(wanted):
        assert re.search(rf'^{name}\{{[^}}]*model="{SERVED}"[^}}]*\}} ', text, re.M), (name, text[:2000])
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    labels = (("model", SERVED), ("version", "1"))
    assert samples[("mlops_monitor_labelled_rows", labels)] == 400
    assert samples[("mlops_monitor_drifted_features", labels)] >= 1
    # The latest window's check ran at the model's event clock: its last label, not the wall clock.
    latest = calendar.window(3) + 60.0 + (REQUESTS_PER_DAY - 1) * 7200.0 + 6 * 3600.0
    assert samples[("mlops_monitor_last_check_timestamp_seconds", labels)] == latest

    # Each window was logged to the registered version's monitoring run.
    client = MlflowClient(tracking_uri=mlflow_server)
    version = client.get_model_version(REGISTERED, "1")
    monitoring_run = client.get_run(version.tags["mlops.monitoring_run_id"])
    assert monitoring_run.data.metrics["monitor_labelled_rows"] == 400


def prepare_from(folder: Path, parameters: dict[str, Any], tracking_uri: str) -> tuple[Any, Any, Any]:
    """The example's prepare step run on a retrain's arguments; returns (train, gate, its outputs)."""
    from kfp.dsl import Dataset

    from examples.credit_default import components

    folder.mkdir(parents=True, exist_ok=True)
    outputs = {
        name: Dataset(name=name, uri=str(folder / f"{name}.parquet")) for name in ("train", "holdout", "gate")
    }
    result = components.prepare_data.python_func(
        train_start_day=0,
        train_end_day=1,
        rows_per_day=10,
        training_data_path=parameters["training_data_path"],
        gate_data_path=parameters["gate_data_path"],
        scenario="",
        drift_start_day=-1,
        seed=0,
        tracking_uri=tracking_uri,
        **outputs,
    )
    return pd.read_parquet(outputs["train"].path), pd.read_parquet(outputs["gate"].path), result


@pytest.mark.slow
def test_without_a_kfp_host_the_retrain_is_recorded_once_and_nothing_is_uploaded(
    mlflow_server: str, champion: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's application in this process, its rounds run one at a time (``LoopTask.run_once``)."""
    from fastapi.testclient import TestClient
    from mlflow.tracking import MlflowClient

    from platform_components.loop.retrain import RETRAIN_DATA_EXPERIMENT
    from platform_components.loop.service import create_app, parser

    client = MlflowClient(tracking_uri=mlflow_server)

    def data_runs() -> int:
        experiment = client.get_experiment_by_name(RETRAIN_DATA_EXPERIMENT)
        return 0 if experiment is None else len(client.search_runs([experiment.experiment_id]))

    uploaded = data_runs()
    models = tmp_path / "models.json"
    models.write_text(
        json.dumps([{"name": "cd-shadow", "registered_model": REGISTERED, "label_column": "default"}])
    )
    monkeypatch.setenv(MODELS_ENV, str(models))
    # A day between rounds of the background task: the test runs each round itself.
    arguments = parser().parse_args(
        [
            "--state-dir",
            str(tmp_path),
            "--port",
            "1",
            "--tracking-uri",
            mlflow_server,
            "--check-interval",
            "86400",
        ]
    )
    app = create_app(arguments)
    task, store = app.state.loop_task, app.state.store
    with TestClient(app) as http:
        calendar = Calendar(http, champion, (time.time() // DAY - 8) * DAY, served="cd-shadow")
        for day, scenario in ((0, None), (1, "market_downturn"), (2, "market_downturn")):
            calendar.post_day(day, 10 + day, scenario=scenario)
            outcome = task.run_once()["cd-shadow"]
            assert not isinstance(outcome, Exception), outcome
        again = task.run_once()["cd-shadow"]  # the same window checked again
        retrains = [row for row in store.decisions("cd-shadow") if row.action == "retrain"]
        assert store.lease_holder("cd-shadow") is None
    assert (outcome.decision.action.value, again.decision.action.value) == ("retrain", "retrain")
    [retrain] = retrains  # recorded once for the window, not once per round
    assert (retrain.outcome, retrain.id, again.decision_id) == (
        "no pipeline runner configured",
        outcome.decision_id,
        None,
    )
    assert "drift" in retrain.reasons and retrain.evidence["selection"]["rows_since_change"] == 800
    assert data_runs() == uploaded  # no retrainer: no rows uploaded for a run that will never happen
