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
    help="Check the predictions of the last N hours.",
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
    """Run one monitoring check of MODEL now and print the result.

    Ingests the model's prediction log, checks the window against the version's reference profile (drift,
    prediction drift, data quality, performance on labelled rows), stores the result and logs it to MLflow.
    """
    from platform_components.monitoring.monitor import MonitorConfig
    from platform_components.monitoring.profile import ReferenceProfile
    from platform_components.monitoring.runner import check_model
    from platform_components.monitoring.store import MonitorStore

    state_dir, tracking_uri = _settings(state_dir, tracking_uri)
    if not state_dir.is_dir():
        raise click.BadParameter(
            f"{state_dir} does not exist; start the platform (mlops up) or pass the right --state-dir",
            param_hint="--state-dir",
        )
    profile = ReferenceProfile.from_json(profile_path.read_text()) if profile_path else None
    config = MonitorConfig(alpha=alpha, correction=correction)
    with MonitorStore.for_state_dir(state_dir) as store:
        outcome = check_model(
            store,
            model,
            state_dir=state_dir,
            tracking_uri=tracking_uri,
            version=version,
            profile=profile,
            window_seconds=window_hours * 3600.0,
            config=config,
            log_to_mlflow=not no_mlflow,
        )
        result = outcome.result
        if report_path is not None:
            from platform_components.monitoring.report import render_report

            report_path.parent.mkdir(parents=True, exist_ok=True)
            report_path.write_text(render_report(result, store.results(model, version=result.version)[:-1]))
    if as_json:
        click.echo(
            json.dumps({**result.to_dict(), "monitoring_run_id": outcome.monitoring_run_id}, default=str)
        )
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
    if outcome.monitoring_run_id:
        click.echo(f"  logged to MLflow run {outcome.monitoring_run_id}")


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
        facts = [f"drift signals {drift.get('signals', 0)}/{drift.get('required', '?')}"]
        if performance.get("value") is not None:
            metric, value, baseline = performance["metric"], performance["value"], performance["baseline"]
            facts.append(f"{metric} {value:.3f} vs baseline {baseline:.3f}")
        click.echo(
            f"#{decision.id} {_when(decision.decided_at)} {decision.model} v{decision.version}: "
            f"{decision.action} ({', '.join(decision.reasons) or 'no trigger'}) -> {decision.outcome}; "
            f"{'; '.join(facts)}"
        )
