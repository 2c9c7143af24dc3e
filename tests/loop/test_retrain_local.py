"""The local retrainer runs a tiny project's pipeline with ``kfp.local`` (real subprocess steps).

The pipeline reads the two CSVs the retrainer wrote, as a project's train and gate steps would, and fails
when told to need more rows than it got: one run succeeds with the pipeline's summary, one fails with the
step's error.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from platform_components.errors import ConfigError
from platform_components.loop.interfaces import RetrainRequest, RetrainState, TrainingData
from platform_components.loop.retrain import LocalRetrainer
from platform_components.pipelines import runner

TINY_PROJECT = '''
from kfp import dsl


@dsl.component(base_image="python:3.11")
def count_rows(training_data_path: str, gate_data_path: str, promotion_margin: float, model_name: str,
               min_rows: int) -> dict:
    """Read the training and gate CSVs; fail with fewer than ``min_rows`` training rows."""
    import csv

    with open(training_data_path) as handle:
        train = list(csv.DictReader(handle))
    gate = []
    if gate_data_path:
        with open(gate_data_path) as handle:
            gate = list(csv.DictReader(handle))
    if len(train) < min_rows:
        raise ValueError(f"only {len(train)} training rows, need {min_rows}")
    return {"train_rows": len(train), "gate_rows": len(gate), "gate_labels": [r["label"] for r in gate],
            "margin": promotion_margin, "model": model_name}


@dsl.pipeline(name="tiny-retrain")
def tiny(training_data_path: str, tracking_uri: str = "", gate_data_path: str = "",
         promotion_margin: float = 0.01, model_name: str = "m", min_rows: int = 1) -> dict:
    return count_rows(training_data_path=training_data_path, gate_data_path=gate_data_path,
                      promotion_margin=promotion_margin, model_name=model_name, min_rows=min_rows).output
'''


def request_for(decision_id: int, **arguments: object) -> RetrainRequest:
    train = pd.DataFrame({"age": [30, 41, 52, 63], "label": [0, 1, 0, 1]})
    gate = pd.DataFrame({"age": [25, 35], "label": [1, 0]})
    return RetrainRequest(
        model="tiny",
        registered_model="tiny-reg",
        champion_version="2",
        decision_id=decision_id,
        reasons=("drift",),
        data=TrainingData(train=train, gate=gate, label_column="label", start=0.0, end=10.0),
        promotion_margin=0.03,
        arguments=arguments,
    )


# Two kfp.local runs of one step subprocess each: about 7 s, under the slow mark's 20 s.
def test_a_local_retrain_succeeds_with_the_summary_and_fails_with_the_steps_error(tmp_path: Path) -> None:
    source = tmp_path / "tiny_retrain_project.py"
    source.write_text(TINY_PROJECT)
    retrainer = LocalRetrainer(
        runner.load_pipeline(f"{source}:tiny"),
        tracking_uri="sqlite:///unused.db",
        pipeline_root=tmp_path / "runs",
    )

    done = retrainer.start(request_for(1))
    assert done.state is RetrainState.SUCCEEDED, done.detail.get("error")
    assert done.detail["summary"] == {
        "train_rows": 4,
        "gate_rows": 2,
        "gate_labels": ["1", "0"],
        "margin": 0.03,
        "model": "tiny-reg",
    }
    assert Path(done.detail["run_dir"]).name == done.run_id
    # The same arguments KfpRetrainer passes (pipeline_arguments), with local paths for the rows.
    assert done.detail["arguments"] == {
        "training_data_path": done.detail["training_data_path"],
        "gate_data_path": done.detail["gate_data_path"],
        "promotion_margin": 0.03,
        "tracking_uri": "sqlite:///unused.db",
        "model_name": "tiny-reg",
    }
    pd.testing.assert_frame_equal(pd.read_csv(done.detail["training_data_path"]), request_for(1).data.train)

    failed = retrainer.start(request_for(2, min_rows=10))
    assert (failed.state, failed.detail["failed_task"]) == (RetrainState.FAILED, "count-rows")
    assert "ValueError: only 4 training rows, need 10" in failed.detail["error"]

    with pytest.raises(runner.PipelineError, match=r"synchronous, start\(\) already returned"):
        retrainer.poll(done.run_id or "")


def test_a_local_pipeline_without_a_training_data_input_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "no_data_project.py"
    source.write_text(
        TINY_PROJECT.replace("def tiny(training_data_path: str, ", "def tiny(").replace(
            "count_rows(training_data_path=training_data_path", "count_rows(training_data_path=''"
        )
    )
    with pytest.raises(ConfigError, match=r"the local pipeline: pipeline 'tiny-retrain' has no input"):
        LocalRetrainer(runner.load_pipeline(f"{source}:tiny"), tracking_uri="u", pipeline_root=tmp_path)


def test_an_unknown_argument_starts_nothing_locally(tmp_path: Path) -> None:
    source = tmp_path / "tiny_retrain_project2.py"
    source.write_text(TINY_PROJECT)
    retrainer = LocalRetrainer(
        runner.load_pipeline(f"{source}:tiny"), tracking_uri="u", pipeline_root=tmp_path
    )
    refused = retrainer.start(request_for(3, epochs=3))
    assert refused.state is RetrainState.NOT_STARTED
    assert "argument(s) ['epochs'] are not inputs of the pipeline" in refused.detail["error"]
    assert not list((tmp_path).glob("tiny-retrain-*"))  # no run folder: nothing ran
