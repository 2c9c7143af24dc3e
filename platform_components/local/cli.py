"""``mlops up|down|status|deploy`` for the local target.

Progress goes to stderr so that ``--json`` output on stdout stays machine-readable.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from platform_components.local.platform import (
    Deployment,
    LocalPlatform,
    PlatformStatus,
)
from platform_components.settings import LocalSettings

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
    """Start MLflow, MLServer and the monitor on 127.0.0.1 (idempotent)."""
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
@click.argument("model")
@local_option
@click.option(
    "--pipeline",
    "pipeline_spec",
    default="examples/credit_default/pipeline.py:credit_default_pipeline",
    show_default=True,
    help="The project's pipeline (file.py:function) that retrains MODEL on labelled rows.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=1.0),
    default=300.0,
    show_default=True,
    help="Seconds between checks.",
)
@click.option(
    "--window",
    "window_seconds",
    type=click.FloatRange(min=1.0),
    default=24 * 3600.0,
    show_default=True,
    help="Seconds of predictions (ending now) each check looks at.",
)
@click.option("--rounds", type=click.IntRange(min=1), default=None, help="Stop after this many checks.")
@click.option(
    "--min-labels",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Labelled rows a check needs before a performance drop counts.",
)
@click.option(
    "--max-performance-drop",
    type=click.FloatRange(min=0.0),
    default=0.05,
    show_default=True,
    help="Allowed ROC AUC drop below the champion's holdout value before retraining.",
)
@click.option(
    "--cooldown",
    "cooldown_seconds",
    type=click.FloatRange(min=0.0),
    default=24 * 3600.0,
    show_default=True,
    help="No new retrain this many seconds after the last one started.",
)
@state_dir_option
@json_option
def loop_command(
    model: str,
    local: bool,
    pipeline_spec: str,
    interval: float,
    window_seconds: float,
    rounds: int | None,
    min_labels: int,
    max_performance_drop: float,
    cooldown_seconds: float,
    state_dir: Path | None,
    as_json: bool,
) -> None:
    """Watch MODEL on the local target: check, decide, retrain with the pipeline, roll serving over.

    Each round ingests the prediction log, checks the served version (drift, quality, performance once labels
    arrived), applies the retrain policy and, when it says retrain, runs the pipeline with kfp.local on the
    recent labelled rows; if the pipeline promotes the challenger, serving rolls over to it. Decisions are
    recorded with their evidence (`mlops decisions`). One JSON line per round with --json.
    """
    import time

    from platform_components.local.loop import LocalRetrain, run_round
    from platform_components.monitoring.policy import PolicyConfig, RetrainController
    from platform_components.monitoring.store import MonitorStore
    from platform_components.pipelines.runner import load_pipeline

    _require_local(local)
    platform = LocalPlatform.attach(_state_dir(state_dir), progress=None if as_json else _progress)
    retrain = LocalRetrain(platform, load_pipeline(pipeline_spec), model, platform.state.root / "pipelines")
    policy = PolicyConfig(
        min_labels=min_labels, max_performance_drop=max_performance_drop, cooldown_seconds=cooldown_seconds
    )
    done = 0
    with MonitorStore.for_state_dir(platform.state.root) as store:
        controller = RetrainController(store, retrain, config=policy)
        while True:
            outcome = run_round(platform, store, controller, model, window_seconds=window_seconds)
            result, decision = outcome.result, outcome.decision
            line = {
                "model": model,
                "version": result.version,
                "status": result.status,
                "rows": result.rows,
                "labelled_rows": result.labelled_rows,
                "drift_share": result.drift_share,
                "drifted_features": result.drifted_features,
                "performance": result.performance,
                "decision": decision.action.value if decision else None,
                "reasons": decision.reasons if decision else [],
            }
            if as_json:
                click.echo(json.dumps(line, sort_keys=True, default=str))
            else:
                performance = result.performance or {}
                auc = performance.get("roc_auc")
                click.echo(
                    f"{time.strftime('%H:%M:%S')} {model} v{result.version}: {result.rows} rows, "
                    f"{result.labelled_rows} labelled, drift {result.drift_share:.2f} "
                    f"{result.drifted_features or ''} auc {'-' if auc is None else f'{auc:.3f}'} -> "
                    f"{line['decision']} {'+'.join(line['reasons'])}"
                )
            done += 1
            if rounds is not None and done >= rounds:
                return
            time.sleep(interval)
