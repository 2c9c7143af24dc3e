"""``mlops monitor`` (run one check now) and ``mlops decisions`` (list retrain decisions)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from platform_components.monitoring.stats import Correction


def _settings(state_dir: Path | None, tracking_uri: str | None) -> tuple[Path, str]:
    from platform_components.settings import LocalSettings

    settings = LocalSettings.from_env(state_dir=state_dir)
    return settings.state_dir, tracking_uri or settings.tracking_uri


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


@click.command("monitor")
@click.argument("model")
@click.option("--state-dir", type=click.Path(path_type=Path), default=None, help="Local state dir [.mlops].")
@click.option("--tracking-uri", default=None, help="MLflow URI [the local target's].")
@click.option(
    "--version", "version", default=None, help="Version or alias [version with the latest traffic]."
)
@click.option(
    "--window-hours",
    type=click.FloatRange(min=0, min_open=True),
    default=24.0,
    show_default=True,
    help="Window length in hours (windows are aligned to multiples of it, in event time).",
)
@click.option(
    "--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True
)
@click.option(
    "--correction", type=click.Choice([item.value for item in Correction]), default="bh", show_default=True
)
@click.option(
    "--profile",
    "profile_path",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Reference profile JSON to use instead of the version's MLflow artifact.",
)
@click.option("--no-mlflow", is_flag=True, help="Do not log the result and report to MLflow.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the HTML drift report here.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def monitor_command(
    model: str,
    state_dir: Path | None,
    tracking_uri: str | None,
    version: str | None,
    window_hours: float,
    alpha: float,
    correction: str,
    profile_path: Path | None,
    no_mlflow: bool,
    report_path: Path | None,
    as_json: bool,
) -> None:
    """Run one monitoring check of MODEL now and print the result (a diagnostic: no policy, no retrain).

    Ingests the model's prediction log, checks the aligned window holding the model's latest event (drift,
    prediction drift, data quality, estimated and realised performance) against the version's reference
    profile, stores the result and logs it to MLflow. `mlops loop` runs the whole round.
    """
    from platform_components.monitoring.monitor import MonitorConfig, run_check
    from platform_components.monitoring.profile import ReferenceProfile
    from platform_components.monitoring.store import MonitorStore
    from platform_components.monitoring.tracking import (
        load_reference_profile,
        log_result,
        resolve_version,
    )

    state_dir, tracking_uri = _settings(state_dir, tracking_uri)
    if not state_dir.is_dir():
        raise click.BadParameter(
            f"{state_dir} does not exist; start the platform (mlops up) or pass the right --state-dir",
            param_hint="--state-dir",
        )
    with MonitorStore.for_state_dir(state_dir) as store:
        store.ingest_state_dir(state_dir, model)
        if version is not None and not version.isdigit():
            version = resolve_version(tracking_uri, model, version)
        if version is None:
            versions = store.versions(model)
            if not versions:
                raise click.BadParameter(
                    f"model {model!r} has no logged predictions under {state_dir}; serve it and send traffic",
                    param_hint="MODEL",
                )
            version = versions[-1]
        if profile_path is not None:
            profile = ReferenceProfile.from_json(profile_path.read_text())
        else:
            profile = load_reference_profile(tracking_uri, model, version)
        config = MonitorConfig(
            alpha=alpha, correction=correction, task=str(profile.metadata.get("task", "classification"))
        )
        result = run_check(
            store, model, version, profile, window_seconds=window_hours * 3600.0, config=config
        )
        history = store.results(model, version=result.version)[:-1]
        run_id = None
        if not no_mlflow:
            from platform_components.monitoring.report import render_report

            run_id = log_result(tracking_uri, result, report_html=render_report(result, history[-50:]))
        if report_path is not None:
            from platform_components.monitoring.report import render_report

            report_path.parent.mkdir(parents=True, exist_ok=True)
            report_path.write_text(render_report(result, history))
    if as_json:
        click.echo(json.dumps({**result.to_dict(), "monitoring_run_id": run_id}, default=str))
        return
    click.echo(
        f"{model} v{result.version}: {result.rows} rows ({result.labelled_rows} labelled), {result.status}"
    )
    click.echo(
        f"  drift share {result.drift_share:.2f}, max PSI {result.max_psi:.3f}, drifted: "
        f"{', '.join(result.drifted_features) or 'none'}"
    )
    if result.prediction:
        click.echo(f"  prediction drift: {'yes' if result.prediction['drifted'] else 'no'}")
    click.echo(
        f"  quality: missing {result.quality['missing_rate']:.3f}, out of range "
        f"{result.quality['out_of_range_rate']:.3f}, unseen {result.quality['unseen_rate']:.3f}"
    )
    if result.performance:
        click.echo(
            "  performance: "
            + ", ".join(f"{k} {v:.4g}" for k, v in result.performance.items() if v is not None)
        )
    else:
        click.echo("  performance: not enough labels yet")
    if run_id:
        click.echo(f"  logged to MLflow run {run_id}")


@click.command("decisions")
@click.argument("model", required=False)
@click.option("--state-dir", type=click.Path(path_type=Path), default=None, help="Local state dir [.mlops].")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Most recent N.")
@click.option("--json", "as_json", is_flag=True, help="Print the decisions as JSON (with full evidence).")
def decisions_command(model: str | None, state_dir: Path | None, limit: int, as_json: bool) -> None:
    """List retrain decisions (of MODEL, or of every model) with their reasons, evidence and outcome."""
    from platform_components.monitoring.store import STORE_RELATIVE_PATH, MonitorStore

    state_dir, _ = _settings(state_dir, None)
    if not (state_dir / STORE_RELATIVE_PATH).exists():
        decisions = []
    else:
        with MonitorStore.for_state_dir(state_dir) as store:
            decisions = store.decisions(model, limit=limit)
    if as_json:
        click.echo(json.dumps([decision.to_dict() for decision in decisions], default=str))
        return
    if not decisions:
        click.echo("no retrain decisions recorded" + (f" for {model}" if model else ""))
        return
    for decision in decisions:
        drift = decision.evidence.get("drift", {})
        performance = decision.evidence.get("performance", {})
        facts = [f"drift windows {drift.get('signal_windows', 0)}/{drift.get('required', '?')}"]
        broken = (decision.evidence.get("quality") or {}).get("broken_features")
        if broken:
            facts.append("broken: " + ", ".join(f"{name} ({why})" for name, why in broken.items()))
        selection = decision.evidence.get("selection") or {}
        if selection.get("train_rows") is not None:
            facts.append(
                f"trained on {selection['train_rows']} rows ({selection.get('mode')}), "
                f"gated on {selection.get('gate_rows')}"
            )
        if performance.get("value") is not None:
            metric, value, baseline = performance["metric"], performance["value"], performance["baseline"]
            facts.append(f"{metric} {value:.3f} vs baseline {baseline:.3f}")
        click.echo(
            f"#{decision.id} {_when(decision.decided_at)} {decision.model} v{decision.version}: "
            f"{decision.action} ({', '.join(decision.reasons) or 'no trigger'}) -> {decision.outcome}; "
            f"{'; '.join(facts)}"
        )
