"""`mlops pipeline compile` and `mlops pipeline run --local`, through the real `mlops` click group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from platform_components.cli import main
from platform_components.pipelines import PipelineError

REPO = Path(__file__).resolve().parents[2]
CREDIT_DEFAULT = f"{REPO / 'examples' / 'credit_default' / 'pipeline.py'}:credit_default_pipeline"
TOY_PIPELINE = """
from kfp import dsl


@dsl.component(base_image="python:3.11", packages_to_install=[], install_kfp_package=False)
def double(x: int) -> int:
    \"\"\"Twice x.\"\"\"
    return 2 * x


@dsl.pipeline(name="cli-toy")
def cli_toy(x: int, label: str = "n") -> int:
    return double(x=x).output
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def toy_spec(tmp_path_factory: pytest.TempPathFactory) -> str:
    package = tmp_path_factory.mktemp("cli-project") / "cli_toy_project"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "pipeline.py").write_text(TOY_PIPELINE)
    return f"{package / 'pipeline.py'}:cli_toy"


def test_pipeline_commands_have_help(runner: CliRunner) -> None:
    for command in ([], ["compile"], ["run"]):
        result = runner.invoke(main, ["pipeline", *command, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.output


def test_compile_writes_the_example_pipeline_and_reports_json(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "credit_default.yaml"
    result = runner.invoke(main, ["pipeline", "compile", CREDIT_DEFAULT, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"pipeline": "credit-default-training", "path": str(out.resolve())}
    spec = next(yaml.safe_load_all(out.read_text()))  # then the Kubernetes platform spec
    assert spec["pipelineInfo"]["name"] == "credit-default-training"


def test_run_local_prints_outputs_as_json(runner: CliRunner, toy_spec: str, tmp_path: Path) -> None:
    result = runner.invoke(
        main,
        ["pipeline", "run", "--local", toy_spec, "--arg", "x=21", "--pipeline-root", str(tmp_path), "--json"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["pipeline"] == "cli-toy"
    assert summary["outputs"] == {"Output": 42}
    assert summary["task_outputs"]["double"] == {"Output": 42}
    assert Path(summary["run_dir"]).parent == tmp_path.resolve()


def test_run_needs_local_or_host(runner: CliRunner, toy_spec: str) -> None:
    result = runner.invoke(main, ["pipeline", "run", toy_spec, "--arg", "x=1"])
    assert result.exit_code == 2
    assert "choose where to run: --local for this machine, or --host URL" in result.output


def test_run_rejects_a_malformed_arg(runner: CliRunner, toy_spec: str) -> None:
    result = runner.invoke(main, ["pipeline", "run", "--local", toy_spec, "--arg", "x"])
    assert result.exit_code == 2
    assert "'x' must look like key=value" in result.output


def test_run_reports_a_badly_typed_arg_as_a_platform_error(runner: CliRunner, toy_spec: str) -> None:
    result = runner.invoke(main, ["pipeline", "run", "--local", toy_spec, "--arg", "x=ten"])
    assert isinstance(result.exception, PipelineError)
    assert "argument x='ten' is not a valid Integer" in str(result.exception)
