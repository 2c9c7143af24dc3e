"""`mlops loop --local` closes the loop on a model another project registered with the platform helper.

The second project (tests/loop/other_project: a churn classifier, its own data and pipeline, registered
through ``log_model_for_platform``) is trained once, then days of traffic go through the public endpoints
with event times, a price rise arrives, and each simulated day ends with one `mlops loop --local` round:
the loop serves the champion, sees the change, retrains with the project's pipeline on the rows since the
change, gates on the newest labelled rows, and serves the new champion. Nothing here names the example.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from platform_components.local.cli import loop_command
from platform_components.local.platform import LocalPlatform
from platform_components.monitoring.feedback import FeedbackClient
from platform_components.pipelines.runner import load_pipeline, run_local
from platform_components.serving.client import InferenceClient
from platform_components.settings import LocalSettings
from platform_components.simulation import Calendar, Traffic

TESTS = Path(__file__).resolve().parents[1]
PIPELINE = f"{TESTS / 'loop' / 'other_project' / 'pipeline.py'}:churn_pipeline"
MODEL = "churn"
CHANGE_DAY = 9
ROWS = 500


@pytest.mark.slow
def test_mlops_loop_retrains_and_rolls_over_a_model_of_another_project(
    tmp_path: Path, free_ports: None
) -> None:
    from loop.other_project import data

    state_dir = tmp_path / "state"
    platform = LocalPlatform(LocalSettings.from_env(state_dir=state_dir))
    platform.up()
    rounds: list[dict] = []

    def round_() -> dict:
        result = CliRunner().invoke(
            loop_command,
            [
                MODEL,
                "--local",
                "--pipeline",
                PIPELINE,
                "--rounds",
                "1",
                "--json",
                "--state-dir",
                str(state_dir),
            ],
        )
        assert result.exit_code == 0, result.output
        rounds.append(json.loads(result.output.strip().splitlines()[-1]))
        return rounds[-1]

    try:
        tracking_uri = platform.settings.tracking_uri
        run_local(
            load_pipeline(PIPELINE),
            {"tracking_uri": tracking_uri, "model_name": MODEL},
            pipeline_root=state_dir / "pipelines",
        )
        first = round_()  # nothing served yet: the round serves the champion
        assert first["rollout"]["changed"] and first["note"].startswith("no predictions yet")
        calendar = Calendar.ending_before_now(15)
        inference = InferenceClient(platform.settings.inference_url)
        feedback = FeedbackClient(platform.settings.monitor_url)
        traffic = Traffic(inference, feedback, calendar, MODEL, batch_rows=25, label_delay_days=1)
        try:
            for day in range(7, 16):
                traffic.deliver_labels(day)
                frame = data.generate_day(day, ROWS, seed=1, change_day=CHANGE_DAY)
                traffic.send_day(day, frame.drop(columns=[data.LABEL]), frame[data.LABEL].tolist())
                round_()
        finally:
            inference.close()
            feedback.close()
        served = platform.state.read_deployments()[MODEL]["version"]
    finally:
        platform.down()

    decisions = [line for line in rounds[1:] if line["decision"] not in (None, "none")]
    assert decisions, rounds
    assert all(line["now"] < calendar.start(CHANGE_DAY) for line in rounds[1:3] if line["now"])
    assert all(line["decision"] in (None, "none") for line in rounds[1:3])  # quiet before the change
    promoted = [line for line in rounds if (line.get("retrain") or {}).get("outcome") == "promoted"]
    assert promoted, [line.get("retrain") for line in rounds]
    trained = promoted[0]["retrain"]
    assert trained["train_rows"] >= 500 and trained["gate_rows"] == 300
    assert str(served) == str(trained["champion_version_after"]) != "1"
    assert rounds[-1]["version"] == str(served)
