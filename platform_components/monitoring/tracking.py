"""MLflow side of monitoring: read a version's reference profile and baseline, log check results.

Results go to one monitoring run per model version (experiment ``mlops-monitoring``, tags ``mlops.model``
and ``mlops.model_version``, ``mlops.source_run_id`` = the training run), so the training run stays as the
pipeline left it. Each check is one ``log_batch`` call (metrics stepped by check time) plus the HTML
drift report as an artifact; the model version gets the tag ``mlops.monitoring_run_id``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from platform_components.monitoring.errors import MonitoringError
from platform_components.monitoring.monitor import MonitorResult
from platform_components.monitoring.profile import ReferenceProfile

logger = logging.getLogger(__name__)

PROFILE_ARTIFACT = "monitoring/reference_profile.json"
MONITORING_EXPERIMENT = "mlops-monitoring"
MODEL_TAG = "mlops.model"
VERSION_TAG = "mlops.model_version"
SOURCE_RUN_TAG = "mlops.source_run_id"
MONITORING_RUN_TAG = "mlops.monitoring_run_id"


class TrackingError(MonitoringError):
    """MLflow could not give what the monitor needs (profile, baseline) or take its results."""


def _client(tracking_uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def resolve_version(tracking_uri: str, model: str, version_or_alias: str) -> str:
    """A version number from a number or an alias (``champion``)."""
    if version_or_alias.isdigit():
        return version_or_alias
    try:
        return str(_client(tracking_uri).get_model_version_by_alias(model, version_or_alias).version)
    except Exception as error:
        raise TrackingError(
            f"model {model!r}: alias {version_or_alias!r} not found at {tracking_uri} ({error}); "
            "pass a version number or an existing alias"
        ) from None


def model_version_facts(tracking_uri: str, model: str, version: str) -> dict[str, Any]:
    """run_id and created_at (unix s) of a registered model version."""
    try:
        found = _client(tracking_uri).get_model_version(model, version)
    except Exception as error:
        raise TrackingError(
            f"model {model!r} version {version!r} not found at {tracking_uri} ({error})"
        ) from None
    return {"run_id": found.run_id, "created_at": found.creation_timestamp / 1000.0}


def load_reference_profile(tracking_uri: str, model: str, version: str) -> ReferenceProfile:
    """The version's ``monitoring/reference_profile.json`` from the run that logged it.

    Raises:
        TrackingError: the version or the artifact does not exist (the message says how to fix it).
    """
    import mlflow

    run_id = model_version_facts(tracking_uri, model, version)["run_id"]
    if not run_id:
        raise TrackingError(f"model {model!r} version {version}: no run_id; register versions from a run")
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=PROFILE_ARTIFACT, dst_path=folder, tracking_uri=tracking_uri
            )
        except Exception as error:
            raise TrackingError(
                f"model {model!r} version {version}: run {run_id} has no artifact {PROFILE_ARTIFACT} "
                f"({error}); "
                "log build_reference_profile(...).to_json() there when training"
            ) from None
        return ReferenceProfile.from_json(Path(path).read_text())


def baseline_metric(
    tracking_uri: str,
    model: str,
    version: str,
    metric: str,
    *,
    prefixes: tuple[str, ...] = ("holdout_", "test_", ""),
) -> float | None:
    """The training-time holdout value of ``metric`` (e.g. ``holdout_roc_auc``) of the version's run."""
    run_id = model_version_facts(tracking_uri, model, version)["run_id"]
    metrics = _client(tracking_uri).get_run(run_id).data.metrics
    for prefix in prefixes:
        if f"{prefix}{metric}" in metrics:
            return float(metrics[f"{prefix}{metric}"])
    return None


def monitoring_run_id(
    tracking_uri: str, model: str, version: str, *, source_run_id: str | None = None
) -> str:
    """The monitoring run of a model version, created on first use."""
    client = _client(tracking_uri)
    experiment = client.get_experiment_by_name(MONITORING_EXPERIMENT)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(MONITORING_EXPERIMENT)
    )
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{MODEL_TAG}` = '{model}' AND tags.`{VERSION_TAG}` = '{version}'",
        max_results=1,
    )
    if found:
        return found[0].info.run_id
    tags = {MODEL_TAG: model, VERSION_TAG: str(version), "mlflow.runName": f"monitor-{model}-v{version}"}
    if source_run_id:
        tags[SOURCE_RUN_TAG] = source_run_id
    run = client.create_run(experiment_id, tags=tags)
    try:
        client.set_model_version_tag(model, str(version), MONITORING_RUN_TAG, run.info.run_id)
    except Exception:  # the version may not be registered in this tracking server (e.g. a bare check)
        logger.debug("could not tag %s v%s with its monitoring run", model, version, exc_info=True)
    return run.info.run_id


def log_result(tracking_uri: str, result: MonitorResult, *, report_html: str | None = None) -> str:
    """Log one check's metrics in one ``log_batch`` and its report; returns the monitoring run id."""
    from mlflow.entities import Metric

    client = _client(tracking_uri)
    source = None
    with contextlib.suppress(TrackingError):  # a bare check of an unregistered version still logs
        source = model_version_facts(tracking_uri, result.model, result.version)["run_id"]
    run_id = monitoring_run_id(tracking_uri, result.model, result.version, source_run_id=source)
    timestamp_ms = int(result.checked_at * 1000)
    step = int(result.checked_at)
    metrics = [
        Metric(f"monitor_{name}", value, timestamp_ms, step) for name, value in result.metrics().items()
    ]
    for name, item in result.features.items():
        if item.get("psi") is not None:
            metrics.append(Metric(f"psi_{_metric_safe(name)}", float(item["psi"]), timestamp_ms, step))
    client.log_batch(run_id, metrics=metrics)
    stamp = dt.datetime.fromtimestamp(result.checked_at, tz=dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    if report_html is not None:
        client.log_text(run_id, report_html, f"drift_reports/drift_report_{stamp}.html")
    client.log_text(
        run_id, json.dumps(result.to_dict(), indent=1, default=str), f"results/result_{stamp}.json"
    )
    return run_id


def _metric_safe(name: str) -> str:
    return "".join(character if character.isalnum() or character in "_-./ " else "_" for character in name)
