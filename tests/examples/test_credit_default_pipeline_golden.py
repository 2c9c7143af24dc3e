"""The credit-default pipeline compiles to the reviewed IR YAML, byte for byte.

The golden file changes only on purpose: ``MLOPS_UPDATE_GOLDEN=1 pytest -k golden`` (or ``make golden``)
rewrites it; review the diff like code, since it is exactly what a cluster will run.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from examples.credit_default import components
from examples.credit_default.pipeline import credit_default_pipeline
from platform_components.pipelines import compile_pipeline

GOLDEN = Path(__file__).parent / "golden" / "credit_default_pipeline.yaml"


def normalise(text: str) -> str:
    """Drop what changes without the pipeline changing: the SDK version that compiled it."""
    return re.sub(r"^sdkVersion: kfp-\S+$", "sdkVersion: kfp-<normalised>", text, flags=re.MULTILINE)


def test_pipeline_compiles_to_the_golden_ir(tmp_path: Path) -> None:
    compiled = normalise(compile_pipeline(credit_default_pipeline, tmp_path / "pipeline.yaml").read_text())
    if os.environ.get("MLOPS_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(compiled)
    assert GOLDEN.is_file(), f"{GOLDEN} is missing: run MLOPS_UPDATE_GOLDEN=1 pytest -k golden"
    assert compiled == GOLDEN.read_text(), (
        "the compiled pipeline differs from the golden IR; if the change is intended, run "
        "MLOPS_UPDATE_GOLDEN=1 pytest -k golden and review the diff"
    )


def test_golden_pipeline_runs_every_step_in_the_project_image_without_installing() -> None:
    # Two documents: the pipeline spec, then the Kubernetes platform spec (kfp-kubernetes).
    spec, platform = yaml.safe_load_all(GOLDEN.read_text())
    executors = spec["deploymentSpec"]["executors"]
    assert {name.removeprefix("exec-") for name in executors} == {
        "prepare-data",
        "train-model",
        "evaluate-models",
        "register-model",
        "promote-model",
    }
    for name, executor in executors.items():
        container = executor["container"]
        assert container["image"] == components.BASE_IMAGE, name
        # No pip install at run time: the image holds pinned dependencies, and clusters may have no internet.
        assert "pip install" not in " ".join(container["command"]), name
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert inputs["promotion_margin"]["defaultValue"] == 0.01
    assert inputs["model_name"]["defaultValue"] == "credit-default"
    assert "defaultValue" not in inputs["tracking_uri"]  # required: the caller names its MLflow
    dag_tasks = spec["root"]["dag"]["tasks"]
    assert dag_tasks["promote-model"]["dependentTasks"] == [
        "evaluate-models",
        "prepare-data",
        "register-model",
    ]


def test_golden_pipeline_takes_the_platform_inputs_and_gates_on_the_gate_rows() -> None:
    spec, _ = yaml.safe_load_all(GOLDEN.read_text())
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    # What the platform's retrainers pass (where the pipeline declares the input).
    for name in ("tracking_uri", "model_name", "training_data_path", "gate_data_path", "promotion_margin"):
        assert name in inputs, name
    assert inputs["gate_data_path"]["defaultValue"] == ""
    dag_tasks = spec["root"]["dag"]["tasks"]
    gate_input = dag_tasks["evaluate-models"]["inputs"]["artifacts"]["gate"]["taskOutputArtifact"]
    assert gate_input == {"outputArtifactKey": "gate", "producerTask": "prepare-data"}
    prepare_inputs = dag_tasks["prepare-data"]["inputs"]["parameters"]
    assert prepare_inputs["gate_data_path"] == {"componentInputParameter": "gate_data_path"}


def test_every_step_that_talks_to_mlflow_gets_the_platform_credentials_in_the_cluster() -> None:
    from platform_components.pipelines import MLFLOW_CREDENTIALS_SECRET

    _, platform = yaml.safe_load_all(GOLDEN.read_text())
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    with_credentials = {
        name.removeprefix("exec-")
        for name, executor in executors.items()
        for entry in executor.get("secretAsEnv", [])
        if entry["secretName"] == MLFLOW_CREDENTIALS_SECRET
        and {item["envVar"] for item in entry["keyToEnv"]}
        == {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}
        and entry["optional"] is True  # kfp.local and clusters without MLflow auth run without it
    }
    # train-model never calls MLflow: it gets nothing it does not need.
    assert with_credentials == {"prepare-data", "evaluate-models", "register-model", "promote-model"}
