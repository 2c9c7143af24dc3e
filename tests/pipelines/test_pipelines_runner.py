"""platform_components.pipelines: load, coerce arguments, compile, run locally with kfp.local, submit."""

from __future__ import annotations

import importlib
import os
import re
import textwrap
from pathlib import Path

import pytest
import yaml
from processes import find_free_port

from platform_components.errors import PlatformError
from platform_components.pipelines import (
    PipelineError,
    coerce_arguments,
    compile_pipeline,
    load_pipeline,
    project_root_of,
    run_local,
    submit,
)

# A tiny project laid out like examples/credit_default: a package whose step imports a sibling module, so a
# local run only works if run_local puts the project root on the steps' PYTHONPATH.
TOY_PACKAGE = "toy_pipeline_project"
TOY_PIPELINE = textwrap.dedent(
    """
    from kfp import dsl

    OPTIONS = {"base_image": "python:3.11", "packages_to_install": [], "install_kfp_package": False}


    @dsl.component(**OPTIONS)
    def add(a: int, b: int) -> int:
        \"\"\"Add with a helper from the project's own package.\"\"\"
        from toy_pipeline_project.helpers import OFFSET

        return a + b + OFFSET


    @dsl.component(**OPTIONS)
    def describe(total: int, note: str, ratio: float, flag: bool) -> dict:
        \"\"\"Report what the pipeline computed.\"\"\"
        if note == "explode":
            raise ValueError(f"note={note!r} asks this step to fail")
        return {"total": total, "note": note, "ratio": ratio, "flag": flag}


    @dsl.pipeline(name="toy-pipeline")
    def toy_pipeline(a: int, b: int = 2, note: str = "hello", ratio: float = 0.5, flag: bool = False) -> dict:
        summed = add(a=a, b=b)
        return describe(total=summed.output, note=note, ratio=ratio, flag=flag).output


    @dsl.component(**OPTIONS)
    def lone(x: int) -> int:
        \"\"\"A component, not a pipeline.\"\"\"
        return x


    not_a_pipeline = 42
    """
)


@pytest.fixture(scope="module")
def toy_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("toy-project")
    package = root / TOY_PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("OFFSET = 100\n")
    (package / "pipeline.py").write_text(TOY_PIPELINE)
    return root


@pytest.fixture(scope="module")
def toy_pipeline(toy_project: Path):
    return load_pipeline(f"{toy_project / TOY_PACKAGE / 'pipeline.py'}:toy_pipeline")


def test_load_pipeline_imports_a_file_under_its_package_name(toy_project: Path, toy_pipeline) -> None:
    assert toy_pipeline.name == "toy-pipeline"
    assert project_root_of(toy_pipeline) == toy_project
    assert load_pipeline(f"{TOY_PACKAGE}.pipeline:toy_pipeline") is toy_pipeline


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon_here", r"must look like path/to/pipeline.py:function"),
        ("missing/file.py:pipe", r"pipeline file 'missing/file.py' does not exist"),
        ("no_such_module_xyz:pipe", r"cannot import 'no_such_module_xyz'"),
        (f"{TOY_PACKAGE}.pipeline:nothing", r"no attribute 'nothing'; pipelines there: \['toy_pipeline'\]"),
        (f"{TOY_PACKAGE}.pipeline:not_a_pipeline", r"is a int, not a @dsl.pipeline function"),
    ],
)
def test_load_pipeline_errors_name_the_spec_and_the_fix(toy_pipeline, spec: str, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        load_pipeline(spec)


def test_arguments_are_converted_to_the_parameter_types(toy_pipeline) -> None:
    arguments = coerce_arguments(toy_pipeline, {"a": "3", "ratio": "0.25", "flag": "true", "note": "x=y"})
    assert arguments == {"a": 3, "ratio": 0.25, "flag": True, "note": "x=y"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"a": "three"}, r"argument a='three' is not a valid Integer; e.g. 7"),
        ({"a": "1", "ratio": "half"}, r"argument ratio='half' is not a valid Float"),
        ({"a": "1", "flag": "maybe"}, r"argument flag='maybe' is not a valid Boolean; e.g. true"),
        ({"a": "1", "colour": "red"}, r"unknown pipeline argument\(s\) \['colour'\]; 'toy-pipeline' takes"),
        ({"b": "1"}, r"missing required pipeline argument\(s\) \['a'\]: pass --arg a=VALUE"),
    ],
)
def test_bad_arguments_name_the_parameter_and_the_type(toy_pipeline, raw: dict, message: str) -> None:
    with pytest.raises(PipelineError, match=message):
        coerce_arguments(toy_pipeline, raw)


def test_compile_writes_ir_yaml_with_every_step(toy_pipeline, tmp_path: Path) -> None:
    path = compile_pipeline(toy_pipeline, tmp_path / "nested" / "toy.yaml")
    spec = yaml.safe_load(path.read_text())
    assert spec["pipelineInfo"]["name"] == "toy-pipeline"
    assert set(spec["root"]["dag"]["tasks"]) == {"add", "describe"}


def test_compile_refuses_a_path_that_is_not_yaml_or_json(toy_pipeline, tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"must end in .yaml, .yml or .json"):
        compile_pipeline(toy_pipeline, tmp_path / "toy.txt")


def test_compile_refuses_a_plain_function(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"is not a @dsl.pipeline function"):
        compile_pipeline(lambda: None, tmp_path / "x.yaml")


def test_run_local_checks_argument_names_before_running(toy_pipeline, tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"unknown pipeline argument\(s\) \['c'\]; 'toy-pipeline' takes"):
        run_local(toy_pipeline, {"a": 1, "c": 2}, pipeline_root=tmp_path)
    with pytest.raises(PipelineError, match=r"missing required pipeline argument\(s\) \['a'\]"):
        run_local(toy_pipeline, {"b": 2}, pipeline_root=tmp_path)


def test_run_local_returns_outputs_and_task_outputs(toy_pipeline, tmp_path: Path) -> None:
    before = os.environ.get("PYTHONPATH")
    run = run_local(toy_pipeline, {"a": 1, "b": 2, "note": "hi"}, pipeline_root=tmp_path / "root")
    assert run.output == {"total": 103, "note": "hi", "ratio": 0.5, "flag": False}
    assert run.task_outputs["add"] == {"Output": 103}
    assert run.run_dir is not None and run.run_dir.parent == (tmp_path / "root").resolve()
    assert run.run_dir.name.startswith("toy-pipeline-")
    assert "Executing task 'add'" in run.log
    assert (run.run_dir / "run.log").read_text() == run.log
    assert os.environ.get("PYTHONPATH") == before  # the steps' PYTHONPATH does not leak into the caller


def test_a_failing_step_is_named_with_its_error_and_log(toy_pipeline, tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"failed in step describe: ValueError: note='explode'") as caught:
        run_local(toy_pipeline, {"a": 1, "note": "explode"}, pipeline_root=tmp_path)
    assert caught.value.task == "describe"
    log_file = Path(re.search(r"full log: (\S+)", str(caught.value)).group(1))
    assert log_file.name == "run.log" and "asks this step to fail" in log_file.read_text()
    assert "asks this step to fail" in str(caught.value).split("--- last lines of step describe ---")[1]
    assert "Executing task 'add'" in caught.value.log


def test_run_local_refuses_a_component_that_is_not_a_pipeline(toy_pipeline, tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"is a PythonComponent, not a @dsl.pipeline function"):
        load_pipeline(f"{TOY_PACKAGE}.pipeline:lone")
    lone = importlib.import_module(f"{TOY_PACKAGE}.pipeline").lone
    with pytest.raises(PipelineError, match=r"is not a @dsl.pipeline function; cannot run it"):
        run_local(lone, {"x": 1}, pipeline_root=tmp_path)


def test_submit_to_an_unreachable_server_names_the_host(toy_pipeline) -> None:
    host = f"http://127.0.0.1:{find_free_port()}"
    with pytest.raises(PipelineError, match=rf"submitting 'toy-pipeline' to {host} failed"):
        submit(host, toy_pipeline, {"a": 1}, experiment="tests")


def test_submit_needs_a_url(toy_pipeline) -> None:
    with pytest.raises(PipelineError, match=r"host 'kfp.local' must be a URL"):
        submit("kfp.local", toy_pipeline, {"a": 1}, experiment="tests")


def test_pipeline_errors_are_platform_errors() -> None:
    assert issubclass(PipelineError, PlatformError)


@pytest.mark.cluster
def test_submit_the_example_pipeline_to_a_real_kfp_server() -> None:
    """Needs --run-cluster and MLOPS_KFP_HOST (a KFP API URL the runner can reach, authenticated)."""
    host = os.environ.get("MLOPS_KFP_HOST")
    if not host:
        pytest.fail("set MLOPS_KFP_HOST to the KFP API URL, e.g. https://kfp.example.com/pipeline")
    pipeline = load_pipeline("examples.credit_default.pipeline:credit_default_pipeline")
    tracking_uri = os.environ.get("MLOPS_CLUSTER_TRACKING_URI", "http://mlflow.mlops.svc:5000")
    run_id = submit(host, pipeline, {"tracking_uri": tracking_uri}, experiment="mlops-platform-tests")
    assert run_id
