"""``mlops pipeline``: compile a project's pipeline to IR YAML, or run it locally / on a cluster."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

PIPELINE_HELP = "The pipeline as path/to/pipeline.py:function or package.module:function."


def _parse_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key.strip():
            raise click.BadParameter(f"{pair!r} must look like key=value, e.g. seed=3", param_hint="--arg")
        if key.strip() in parsed:
            raise click.BadParameter(f"{key.strip()!r} is given twice", param_hint="--arg")
        parsed[key.strip()] = value
    return parsed


def _default_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else the local target's MLflow server from the MLOPS_* settings."""
    from_env = os.environ.get("MLFLOW_TRACKING_URI")
    if from_env:
        return from_env
    from platform_components.settings import LocalSettings

    settings = LocalSettings.from_env()
    return f"http://{settings.host}:{settings.mlflow_port}"


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


@click.group(name="pipeline", context_settings={"help_option_names": ["-h", "--help"]})
def pipeline_group() -> None:
    """Compile or run a project's Kubeflow pipeline.

    \b
    Examples:
      mlops pipeline compile examples/credit_default/pipeline.py:credit_default_pipeline --out out/cd.yaml
      mlops pipeline run --local examples/credit_default/pipeline.py:credit_default_pipeline --arg seed=1
    """


@pipeline_group.command(name="compile")
@click.argument("pipeline")
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the IR YAML (e.g. out/pipeline.yaml).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def compile_command(pipeline: str, out_path: Path, as_json: bool) -> None:
    """Compile PIPELINE to KFP IR YAML for a cluster.

    PIPELINE is path/to/pipeline.py:function or package.module:function.
    """
    from platform_components.pipelines.runner import compile_pipeline, load_pipeline

    pipeline_func = load_pipeline(pipeline)
    written = compile_pipeline(pipeline_func, out_path)
    if as_json:
        click.echo(json.dumps({"pipeline": pipeline_func.name, "path": str(written.resolve())}))
    else:
        click.echo(f"compiled {pipeline_func.name} -> {written}")


@pipeline_group.command(name="run")
@click.argument("pipeline")
@click.option(
    "--local",
    "run_locally",
    is_flag=True,
    help="Run on this machine with kfp.local (SubprocessRunner, no venv).",
)
@click.option(
    "--arg",
    "arg_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="A pipeline parameter; repeat for several. Values are converted to the parameter's type.",
)
@click.option(
    "--pipeline-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Local runs: folder for step artifacts [default: <MLOPS_STATE_DIR>/pipelines].",
)
@click.option(
    "--host", default=None, help="Cluster runs: the KFP API URL, e.g. https://kfp.example.com/pipeline."
)
@click.option("--experiment", default="default", show_default=True, help="Cluster runs: KFP experiment name.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the outputs as JSON (the step logs are not echoed)."
)
def run_command(
    pipeline: str,
    run_locally: bool,
    arg_pairs: tuple[str, ...],
    pipeline_root: Path | None,
    host: str | None,
    experiment: str,
    as_json: bool,
) -> None:
    """Run PIPELINE locally (--local) or submit it to a cluster (--host).

    A pipeline parameter named tracking_uri defaults to MLFLOW_TRACKING_URI, or else to the local target's
    MLflow server (MLOPS_HOST / MLOPS_MLFLOW_PORT).
    """
    from platform_components.pipelines.runner import coerce_arguments, load_pipeline, run_local, submit

    if run_locally == (host is not None):
        raise click.UsageError("choose where to run: --local for this machine, or --host URL for a cluster")
    pipeline_func = load_pipeline(pipeline)
    raw = _parse_pairs(arg_pairs)
    inputs = pipeline_func.component_spec.inputs or {}
    if "tracking_uri" in inputs and "tracking_uri" not in raw and run_locally:
        raw["tracking_uri"] = _default_tracking_uri()
        click.echo(
            f"tracking_uri={raw['tracking_uri']} (default; pass --arg tracking_uri=... to change)", err=True
        )
    arguments = coerce_arguments(pipeline_func, raw)

    if host is not None:
        run_id = submit(host, pipeline_func, arguments, experiment=experiment)
        if as_json:
            click.echo(json.dumps({"pipeline": pipeline_func.name, "host": host, "run_id": run_id}))
        else:
            click.echo(f"submitted {pipeline_func.name} to {host}: run {run_id}")
        return

    if pipeline_root is None:
        from platform_components.settings import LocalSettings

        pipeline_root = LocalSettings.from_env().state_dir / "pipelines"
    # A failing step raises PipelineError (a PlatformError): `mlops` prints it, with the step's log tail.
    result = run_local(
        pipeline_func, arguments, pipeline_root=pipeline_root, echo=None if as_json else sys.stderr
    )
    summary = {
        "pipeline": result.pipeline_name,
        "run_dir": str(result.run_dir) if result.run_dir else None,
        "duration_seconds": round(result.duration_seconds, 2),
        "outputs": _jsonable(result.outputs),
        "task_outputs": _jsonable(result.task_outputs),
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
        return
    click.echo(
        f"{result.pipeline_name} finished in {result.duration_seconds:.1f} s; artifacts in {result.run_dir}"
    )
    for name, value in summary["outputs"].items():
        click.echo(f"{name}: {json.dumps(value, indent=2, sort_keys=True)}")
