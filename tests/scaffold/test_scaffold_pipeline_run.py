"""A new project is ready to run: its pipeline, as scaffolded, trains, registers and promotes a first model.

One local run (kfp.local, the way `mlops pipeline run --local` starts it from the project's folder) against a
real MLflow server; the register step's ``log_model_for_platform`` logs what the platform's loop reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from processes import mlflow_server as start_mlflow_server
from scaffolded import PROJECT_NAME, REPO, Project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow server`` on 127.0.0.1 (SQLite and local artifacts in a temp dir); yields its URI."""
    with start_mlflow_server(tmp_path_factory.mktemp("mlflow")) as (uri, _, _):
        yield uri


def test_the_scaffolded_pipeline_trains_registers_and_promotes_a_first_model(
    project: Project, mlflow_server: str, tmp_path: Path
) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    environment["PYTHONPATH"] = os.pathsep.join([str(project.root), str(REPO)])
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "platform_components.cli",
            "pipeline",
            "run",
            "--local",
            "loan_risk/pipeline.py:loan_risk_pipeline",
            "--arg",
            f"tracking_uri={mlflow_server}",
            "--arg",
            "rows_per_day=250",
            "--pipeline-root",
            str(tmp_path / "runs"),
            "--json",
        ],
        cwd=project.root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    decision = json.loads(completed.stdout)["outputs"]["Output"]  # the promote step's decision
    assert decision["model_name"] == PROJECT_NAME
    assert decision["promoted"] is True and decision["champion_version_after"] == "1", decision
    assert decision["challenger_metrics"]["roc_auc"] > 0.7, decision

    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    champion = client.get_model_version_by_alias(PROJECT_NAME, "champion")
    assert champion.version == "1"
    assert champion.tags["pipeline"] == f"{PROJECT_NAME}-training"
    artifacts = {item.path for item in client.list_artifacts(champion.run_id, "monitoring")}
    assert "monitoring/reference_profile.json" in artifacts  # what the monitor's drift checks read
