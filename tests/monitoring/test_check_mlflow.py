"""A full check against real MLflow (SQLite store): profile from the version's run, log_batch, report, CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from platform_components.monitoring.cli import decisions_command, monitor_command
from platform_components.monitoring.policy import PolicyConfig, RetrainController
from platform_components.monitoring.profile import build_reference_profile
from platform_components.monitoring.runner import check_model
from platform_components.monitoring.store import MonitorStore
from platform_components.monitoring.tracking import (
    MONITORING_RUN_TAG,
    PROFILE_ARTIFACT,
    TrackingError,
    baseline_metric,
    load_reference_profile,
)
from platform_components.serving.predlog import PredictionLog, PredictionRecord

MODEL = "credit-default"
pytestmark = pytest.mark.slow  # a real MLflow store: its schema migration alone takes ~10 s


def features(rows: int, rng: np.random.Generator, income_shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "income": rng.normal(50 + income_shift, 10, rows),
            "age": rng.normal(40, 8, rows),
            "purpose": rng.choice(["car", "house", "education"], rows),
        }
    )


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory):
    """A tracking store with version 1 of the model, its reference profile and holdout metric."""
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("mlflow")
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = client.create_experiment("train", artifact_location=(root / "artifacts").as_uri())
    run = client.create_run(experiment_id)
    rng = np.random.default_rng(0)
    training = features(5_000, rng)
    profile = build_reference_profile(
        training, numeric=["income", "age"], categorical=["purpose"], prediction_scores=rng.beta(2, 5, 5_000)
    )
    client.log_text(run.info.run_id, profile.to_json(), PROFILE_ARTIFACT)
    client.log_metric(run.info.run_id, "holdout_roc_auc", 0.9)
    client.set_terminated(run.info.run_id)
    client.create_registered_model(MODEL)
    client.create_model_version(MODEL, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    client.set_registered_model_alias(MODEL, "champion", "1")
    return tracking_uri, client


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    now = time.time()
    with PredictionLog(tmp_path / "predictions" / MODEL) as log:
        for index in range(400):
            frame = features(1, rng, income_shift=15.0)  # incomes drifted up by 1.5 sd
            score = float(rng.beta(2, 5))
            log.append(
                PredictionRecord(
                    f"req-{index}",
                    MODEL,
                    "1",
                    now - 3_600 + index,
                    frame.to_dict(orient="list"),
                    {"predict_proba": [[1 - score, score]]},
                )
            )
    return tmp_path


def test_profile_and_baseline_come_from_the_version_run(registered) -> None:
    tracking_uri, _ = registered
    profile = load_reference_profile(tracking_uri, MODEL, "1")
    assert list(profile.numeric) == ["income", "age"]
    assert baseline_metric(tracking_uri, MODEL, "1", "roc_auc") == 0.9
    with pytest.raises(TrackingError, match="version '7' not found"):
        load_reference_profile(tracking_uri, MODEL, "7")


def test_check_logs_one_batch_and_a_report_to_the_version_monitoring_run(registered, state_dir: Path) -> None:
    tracking_uri, client = registered
    with MonitorStore.for_state_dir(state_dir) as store:
        for index in range(0, 400, 2):
            store.ingest_state_dir(state_dir)
            store.add_labels(f"req-{index}", [index % 4 == 0])
        outcome = check_model(
            store, MODEL, state_dir=state_dir, tracking_uri=tracking_uri, version="champion"
        )
    result = outcome.result
    assert (result.version, result.rows, result.labelled_rows) == ("1", 400, 200)
    assert result.drifted_features == ["income"]
    assert result.performance is not None and 0 <= result.performance["roc_auc"] <= 1
    run = client.get_run(outcome.monitoring_run_id)
    assert run.data.tags["mlops.model"] == MODEL and run.data.tags["mlops.model_version"] == "1"
    assert run.data.metrics["monitor_drift_share"] == pytest.approx(1 / 3)
    assert run.data.metrics["monitor_labelled_rows"] == 200
    reports = client.list_artifacts(outcome.monitoring_run_id, "drift_reports")
    assert len(reports) == 1
    html = Path(client.download_artifacts(outcome.monitoring_run_id, reports[0].path)).read_text()
    assert "data:image/png;base64," in html and "income" in html
    assert client.get_model_version(MODEL, "1").tags[MONITORING_RUN_TAG] == outcome.monitoring_run_id


def test_policy_after_checks_triggers_one_retrain(registered, state_dir: Path) -> None:
    tracking_uri, _ = registered
    calls = []
    # Three checks a minute apart are three checks of one aligned daily window: one stored result, so
    # one drift signal; the later two must not start a second retrain.
    config = PolicyConfig(drift_checks_required=1, cooldown_seconds=3_600)
    with MonitorStore.for_state_dir(state_dir) as store:
        controller = RetrainController(
            store, lambda request: calls.append(request) or {"outcome": "promoted"}, config=config
        )
        now = time.time()
        for minute in range(3):
            check_model(
                store,
                MODEL,
                state_dir=state_dir,
                tracking_uri=tracking_uri,
                log_to_mlflow=False,
                controller=controller,
                now=now + 60 * minute,
            )
        assert len(calls) == 1 and calls[0].reasons == ["drift"]
    runner = CliRunner()
    listed = runner.invoke(decisions_command, [MODEL, "--state-dir", str(state_dir), "--json"])
    assert listed.exit_code == 0, listed.output
    # The later checks see the same drifted window again, inside the cool-down: recorded as suppressed.
    [decision] = [item for item in json.loads(listed.output) if item["action"] == "retrain"]
    assert {item["action"] for item in json.loads(listed.output)} <= {"retrain", "suppressed"}
    assert decision["outcome"] == "promoted" and decision["evidence"]["drift"]["signals"] == 1
    text = runner.invoke(decisions_command, ["--state-dir", str(state_dir)])
    assert "retrain (drift) -> promoted" in text.output


def test_monitor_cli_prints_json_and_writes_the_report(registered, state_dir: Path) -> None:
    tracking_uri, _ = registered
    report = state_dir / "reports" / "drift.html"
    result = CliRunner().invoke(
        monitor_command,
        [
            MODEL,
            "--state-dir",
            str(state_dir),
            "--tracking-uri",
            tracking_uri,
            "--json",
            "--no-mlflow",
            "--report",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["drifted_features"] == ["income"] and data["version"] == "1"
    assert report.read_text().startswith("<!doctype html>")
    human = CliRunner().invoke(
        monitor_command, [MODEL, "--state-dir", str(state_dir), "--tracking-uri", tracking_uri, "--no-mlflow"]
    )
    assert "drifted: income" in human.output
    assert CliRunner().invoke(monitor_command, ["--help"]).exit_code == 0


def test_service_runs_periodic_checks_and_exports_them(registered, state_dir: Path) -> None:
    import contextlib
    import os
    import subprocess

    import httpx
    from processes import find_free_port

    from platform_components.monitoring.service import service_command

    tracking_uri, _ = registered
    port = find_free_port()
    argv = service_command(
        state_dir=state_dir,
        host="127.0.0.1",
        port=port,
        tracking_uri=tracking_uri,
        check_interval_seconds=1.0,
    )
    log_path = state_dir / "service.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ})
        try:
            deadline = time.monotonic() + 90
            text = ""
            while time.monotonic() < deadline and "mlops_monitor_drift_share{" not in text:
                assert process.poll() is None, log_path.read_text()
                with contextlib.suppress(httpx.HTTPError):  # not listening yet
                    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
                time.sleep(0.5)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
    assert 'mlops_monitor_drifted_features{model="credit-default",version="1"} 1.0' in text, (
        log_path.read_text()
    )
    assert 'mlops_monitor_window_rows{model="credit-default",version="1"} 400.0' in text
