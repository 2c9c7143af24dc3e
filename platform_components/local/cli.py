"""``mlops up|down|status|deploy`` for the local target.

Progress goes to stderr so that ``--json`` output on stdout stays machine-readable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from platform_components.errors import ConfigError
from platform_components.local.platform import (
    Deployment,
    LocalPlatform,
    PlatformStatus,
)
from platform_components.settings import LocalSettings

if TYPE_CHECKING:
    from platform_components.loop.models import LoopModel
    from platform_components.settings import PolicySettings

KUBERNETES_HINT = (
    "The kubernetes target is driven by Pulumi: run `pulumi preview` / `pulumi up` from the repository root "
    "for your stack (see README, 'The cluster path (Pulumi)'). For the local target on this machine, pass "
    "--local."
)


def _progress(line: str) -> None:
    click.echo(f"  {line}", err=True)


class KubernetesTargetHint(click.ClickException):
    """Exit 2 with the hint; a ClickException, because `mlops` drops the code of a plain click Exit."""

    exit_code = 2


def _require_local(local: bool) -> None:
    if not local:
        raise KubernetesTargetHint(KUBERNETES_HINT)


def _emit_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def _format_uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _print_status(status: PlatformStatus) -> None:
    click.echo(f"state dir: {status.state_dir}")
    header = f"{'process':<9} {'pid':>7} {'ports':<18} {'healthy':<8} {'uptime':>10}  log"
    click.echo(header)
    for process in status.processes:
        pid = str(process.pid) if process.pid else "-"
        ports = ",".join(str(port) for port in process.ports)
        healthy = "yes" if process.healthy else ("no" if process.running else "stopped")
        click.echo(
            f"{process.name:<9} {pid:>7} {ports:<18} {healthy:<8} "
            f"{_format_uptime(process.uptime_seconds):>10}  {process.log_path}"
        )
    endpoints = status.endpoints
    click.echo(f"tracking:  {endpoints.tracking_uri}   (MLflow UI {endpoints.mlflow_ui_url})")
    click.echo(f"inference: {endpoints.inference_url}   metrics {endpoints.metrics_url}")
    click.echo(f"monitor:   {endpoints.monitor_url}")
    for deployment in status.deployments:
        click.echo(
            f"deployed:  {deployment.name} v{deployment.version} ({deployment.alias or 'by version'}) "
            f"{deployment.url}"
        )


state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="State folder (default: MLOPS_STATE_DIR or .mlops).",
)
local_option = click.option("--local", is_flag=True, help="Act on the local target (this machine).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")


def _state_dir(state_dir: Path | None) -> Path:
    return state_dir if state_dir is not None else LocalSettings.from_env().state_dir


@click.command("up")
@local_option
@state_dir_option
@click.option("--mlflow-port", type=int, default=None, help="MLflow port (MLOPS_MLFLOW_PORT, default 5000).")
@click.option("--serving-http-port", type=int, default=None, help="MLServer REST port (default 8080).")
@click.option("--serving-grpc-port", type=int, default=None, help="MLServer gRPC port (default 8081).")
@click.option("--serving-metrics-port", type=int, default=None, help="MLServer metrics port (default 8082).")
@click.option("--monitor-port", type=int, default=None, help="Monitor service port (default 8090).")
@click.option(
    "--timeout", "startup_timeout_seconds", type=float, default=None, help="Seconds to wait for health."
)
@json_option
def up_command(
    local: bool,
    state_dir: Path | None,
    mlflow_port: int | None,
    serving_http_port: int | None,
    serving_grpc_port: int | None,
    serving_metrics_port: int | None,
    monitor_port: int | None,
    startup_timeout_seconds: float | None,
    as_json: bool,
) -> None:
    """Start MLflow, MLServer and the monitor on 127.0.0.1 (idempotent).

    When <state-dir>/catalog.yaml exists its projects get their space in the local MLflow (experiments,
    registered models, tags; `mlops project sync`), and projects removed from it are archived.
    """
    _require_local(local)
    settings = LocalSettings.from_env(
        state_dir=state_dir,
        mlflow_port=mlflow_port,
        serving_http_port=serving_http_port,
        serving_grpc_port=serving_grpc_port,
        serving_metrics_port=serving_metrics_port,
        monitor_port=monitor_port,
        startup_timeout_seconds=startup_timeout_seconds,
    )
    platform = LocalPlatform(settings, progress=_progress)
    status = platform.up()
    if settings.catalog_path.exists():
        from platform_components.projects.cli import sync_local_catalog

        sync_local_catalog(settings.state_dir, settings.tracking_uri, _progress)
    if as_json:
        _emit_json(status.to_dict())
        return
    if set(status.already_running) >= set(platform.components):
        click.echo("the local platform is already running")
    else:
        click.echo("the local platform is up")
    _print_status(status)


@click.command("down")
@local_option
@state_dir_option
@json_option
def down_command(local: bool, state_dir: Path | None, as_json: bool) -> None:
    """Stop every local process and its helpers; checks by PID that none is left."""
    _require_local(local)
    platform = LocalPlatform.attach(_state_dir(state_dir), progress=None if as_json else _progress)
    result = platform.down()
    if as_json:
        _emit_json({"stopped": result.stopped})
        return
    if not result.stopped:
        click.echo(f"nothing was running in {platform.state.root}")
        return
    for name, pids in result.stopped.items():
        shown = ", ".join(str(pid) for pid in pids) if pids else "was not running"
        click.echo(f"stopped {name}: {shown}")


@click.command("status")
@local_option
@state_dir_option
@json_option
def status_command(local: bool, state_dir: Path | None, as_json: bool) -> None:
    """Show each local process: PID, ports, health, uptime, log."""
    _require_local(local)
    status = LocalPlatform.attach(_state_dir(state_dir)).status()
    if as_json:
        _emit_json(status.to_dict())
        return
    _print_status(status)


def _deployment_dict(deployment: Deployment) -> dict:
    from dataclasses import asdict

    return asdict(deployment)


@click.command("deploy")
@click.argument("model")
@click.option("--alias", default="champion", show_default=True, help="Registry alias to serve.")
@state_dir_option
@json_option
def deploy_command(model: str, alias: str, state_dir: Path | None, as_json: bool) -> None:
    """Serve MODEL's version that --alias points to on the local MLServer."""
    platform = LocalPlatform.attach(_state_dir(state_dir), progress=None if as_json else _progress)
    deployment = platform.deploy(model, alias)
    if as_json:
        _emit_json(_deployment_dict(deployment))
        return
    click.echo(f"serving {deployment.model_uri} ({model}@{alias}) at {deployment.url}")


@click.command("loop")
@click.argument("model", required=False)
@local_option
@click.option(
    "--catalog",
    "catalog_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Watch the catalog's models (docs/catalog.md), each with its project's and its own policy keys; "
    "default when MODEL is left out: <state-dir>/catalog.yaml.",
)
@click.option(
    "--pipeline",
    "pipeline_spec",
    default="examples/credit_default/pipeline.py:credit_default_pipeline",
    show_default=True,
    help="The project's pipeline (file.py:function) that retrains MODEL on labelled rows.",
)
@click.option(
    "--registered-model",
    default=None,
    help="MLflow registered model served as MODEL (default: MODEL).",
)
@click.option("--project", default=None, help="Project of MODEL: its overrides in the policy file apply.")
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Policy file (the keys of mlops:policy: defaults/projects/models); "
    "default: <state-dir>/policy.yaml when it exists, else the platform's defaults.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=1.0),
    default=300.0,
    show_default=True,
    help="Wall-clock seconds between rounds (the policy's durations are event time).",
)
@click.option("--rounds", type=click.IntRange(min=1), default=None, help="Stop after this many rounds.")
@state_dir_option
@json_option
def loop_command(
    model: str | None,
    local: bool,
    catalog_path: Path | None,
    pipeline_spec: str,
    registered_model: str | None,
    project: str | None,
    policy_path: Path | None,
    interval: float,
    rounds: int | None,
    state_dir: Path | None,
    as_json: bool,
) -> None:
    """Watch MODEL (or every model of --catalog) on the local target: one loop round every --interval seconds.

    Each round serves the version MODEL's `champion` alias points to, ingests the prediction log, checks the
    window (drift, quality, estimated and, once labels arrive, realised performance), applies the policy
    and, when it says retrain, runs the pipeline with kfp.local on the rows it chose, gated on the newest
    labelled rows; a promotion is served at once. Decisions are recorded with their evidence
    (`mlops decisions`). The policy and its defaults: README "The loop's policy". One JSON line per round
    with --json (one per model with --catalog).

    \b
    Examples:
      mlops loop credit-default --local --rounds 1
      mlops loop --local --catalog .mlops/catalog.yaml --interval 600
    """
    import time

    from platform_components.loop.local_deployer import LocalDeployer
    from platform_components.loop.models import local_policy
    from platform_components.loop.retrain import LocalRetrainer
    from platform_components.loop.round import Loop
    from platform_components.monitoring.store import MonitorStore
    from platform_components.pipelines.runner import load_pipeline

    _require_local(local)
    platform = LocalPlatform.attach(_state_dir(state_dir), progress=None if as_json else _progress)
    try:
        policy = local_policy(platform.state.root, policy_path)
    except ConfigError as error:
        raise click.UsageError(f"--policy: {error}") from None
    entries = _watched(platform.state.root, model, catalog_path, policy, registered_model, project)
    retrainer = LocalRetrainer(
        load_pipeline(pipeline_spec),
        tracking_uri=platform.settings.tracking_uri,
        pipeline_root=platform.state.root / "pipelines",
    )
    done = 0
    with MonitorStore.for_state_dir(platform.state.root) as store:
        loop = Loop(
            store,
            platform.settings.tracking_uri,
            retrainer=retrainer,
            deployer=LocalDeployer(platform),
            state_dir=platform.state.root,
            say=None if as_json else _progress,
        )
        while True:
            for entry in entries:
                line = loop.run_round(entry).to_dict()
                if as_json:
                    click.echo(json.dumps(line, sort_keys=True, default=str))
                else:
                    click.echo(_round_line(line))
            done += 1
            if rounds is not None and done >= rounds:
                return
            time.sleep(interval)


def _watched(
    state_dir: Path,
    model: str | None,
    catalog_path: Path | None,
    policy: PolicySettings,
    registered_model: str | None,
    project: str | None,
) -> tuple[LoopModel, ...]:
    """The models `mlops loop` watches: MODEL alone, or the catalog's (all, or MODEL among them)."""
    from platform_components.loop.models import local_model

    if catalog_path is None and model is None:
        default = Path(state_dir) / "catalog.yaml"
        if not default.exists():
            raise click.UsageError(
                f"give MODEL, or --catalog FILE to watch a catalog's models ({default} does not exist)"
            )
        catalog_path = default
    if catalog_path is None:
        assert model is not None
        return (local_model(model, policy, registered_model=registered_model, project=project),)
    if registered_model is not None or project is not None:
        raise click.UsageError(
            "--registered-model and --project name one model's registry entry and project; with --catalog "
            "the catalog declares them: leave both out"
        )
    from platform_components.projects.loop_models import catalog_loop_models
    from platform_components.settings import load_catalog_file

    return catalog_loop_models(load_catalog_file(catalog_path), policy, only=model)


def _round_line(line: dict) -> str:
    """One human line per round."""
    import time

    if line["status"] is None:
        return f"{time.strftime('%H:%M:%S')} {line['model']} v{line['version']}: {line['note']}"
    estimated = ((line.get("estimated") or {}).get("roc_auc") or {}).get("value")
    decision = line["decision"] or "none"
    if line["reasons"]:
        decision += f" ({'+'.join(line['reasons'])})"
    if line["blocked_by"]:
        decision += f", blocked by {line['blocked_by']}"
    return (
        f"{time.strftime('%H:%M:%S')} {line['model']} v{line['version']}: {line['rows']} rows, "
        f"{line['labelled_rows']} labelled, drift {line['drift_share']:.2f} {line['drifted_features'] or ''} "
        f"estimated auc {'-' if estimated is None else f'{estimated:.3f}'} -> {decision}"
    )
