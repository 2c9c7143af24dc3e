"""The monitoring commands: help, clear errors, a check from a profile file without MLflow."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner

from platform_components.monitoring.cli import decisions_command, monitor_command
from platform_components.monitoring.profile import build_reference_profile
from platform_components.serving.predlog import PredictionLog, PredictionRecord


def test_help_and_missing_state_dir(tmp_path: Path) -> None:
    runner = CliRunner()
    assert "Run one monitoring check" in runner.invoke(monitor_command, ["--help"]).output
    assert "List retrain decisions" in runner.invoke(decisions_command, ["--help"]).output
    missing = tmp_path / "nowhere"
    result = runner.invoke(monitor_command, ["m", "--state-dir", str(missing), "--no-mlflow"])
    assert result.exit_code == 2 and "does not exist" in result.output
    assert not missing.exists()
    empty = runner.invoke(decisions_command, ["--state-dir", str(missing), "--json"])
    assert empty.exit_code == 0 and json.loads(empty.output) == []


def test_monitor_with_a_profile_file_and_no_mlflow(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    profile = build_reference_profile(
        pd.DataFrame({"x": rng.normal(size=2_000), "y": rng.normal(size=2_000)}),
        numeric=["x", "y"],
        categorical=[],
    )
    profile_path = tmp_path / "profile.json"
    profile_path.write_text(profile.to_json())
    with PredictionLog(tmp_path / "predictions" / "toy") as log:
        log.append(
            PredictionRecord(
                "one",
                "toy",
                "4",
                time.time() - 10,
                {"x": rng.normal(2, 1, 300).tolist(), "y": rng.normal(0, 1, 300).tolist()},
                {"out": rng.uniform(size=300).tolist()},
            )
        )
    result = CliRunner().invoke(
        monitor_command,
        [
            "toy",
            "--state-dir",
            str(tmp_path),
            "--profile",
            str(profile_path),
            "--no-mlflow",
            "--json",
            "--correction",
            "holm",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["version"], data["rows"], data["drifted_features"]) == ("4", 300, ["x"])
    assert data["config"]["correction"] == "holm"
