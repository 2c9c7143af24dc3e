"""`mlops monitor` against real MLflow (SQLite): profile and baseline from the version's run, the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from registered_model import features, register_version

from platform_components.monitoring.cli import monitor_command
from platform_components.monitoring.tracking import (
    TrackingError,
    baseline_metric,
    load_reference_profile,
)
from platform_components.serving.predlog import PredictionLog, PredictionRecord

MODEL = "credit-default"
pytestmark = pytest.mark.slow  # a real MLflow store: its schema migration alone takes ~10 s


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory):
    """A tracking store with version 1 of the model, its reference profile and holdout metric."""
    return register_version(tmp_path_factory.mktemp("mlflow"), MODEL)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    now = (time.time() // 86400 - 1) * 86400 + 7200  # yesterday 02:00 UTC: the rows share a daily window
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
