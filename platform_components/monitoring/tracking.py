"""MLflow side of monitoring: read a version's reference profile and baseline, log check results.

Results go to one monitoring run per model version (experiment ``mlops-monitoring``, tags ``mlops.model``
and ``mlops.model_version``, ``mlops.source_run_id`` = the training run), so the training run stays as the
pipeline left it. Each check is one ``log_batch`` call (metrics stepped by check time) plus the HTML
drift report as an artifact; the model version gets the tag ``mlops.monitoring_run_id``.

The monitor's round over the whole fleet does not pay that per model (five calls and two uploads a check:
minutes for 1,000 models): ``RoundLog`` gathers every checked window's metrics and writes them to one run
of the experiment, ``monitor-rounds`` (tag ``mlops.monitor_rounds``), keyed ``<model>/v<version>/<metric>``
and stepped by check time, with ``log_batch`` calls of at most MLflow's 1,000 metrics each, sent by one
writer thread while the round goes on. Only a window that alarmed also gets its version's monitoring run
with the HTML report (``log_result``). ``resolve_aliases`` resolves every model's alias with one paginated
``search_registered_models`` instead of a call per model.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import json
import logging
import tempfile
from collections.abc import Iterable, Mapping
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
ROUND_RUN_NAME = "monitor-rounds"
ROUND_RUN_TAG = "mlops.monitor_rounds"
# MLflow's own limits on one log_batch (mlflow/utils/validation.py, tests/upstream_facts/mlflow.py).
MAX_METRICS_PER_BATCH = 1000
# search_registered_models returns at most this many per page.
MAX_REGISTERED_MODELS_PER_PAGE = 1000


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


def resolve_aliases(tracking_uri: str, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Versions of many ``(registered model, alias)`` pairs from one paginated ``search_registered_models``.

    Pairs whose model or alias the registry lacks are left out (the caller resolves those one by one, which
    raises the usual error naming them). A version number given as the alias maps to itself.
    """
    pending = set(wanted)
    found = {(model, alias): alias for model, alias in pending if alias.isdigit()}
    pending -= set(found)
    if not pending:
        return found
    names = {model for model, _ in pending}
    client = _client(tracking_uri)
    token = None
    while True:
        page = client.search_registered_models(max_results=MAX_REGISTERED_MODELS_PER_PAGE, page_token=token)
        for registered in page:
            if registered.name not in names:
                continue
            aliases = registered.aliases or {}
            for model, alias in [pair for pair in pending if pair[0] == registered.name]:
                if alias in aliases:
                    found[(model, alias)] = str(aliases[alias])
        token = page.token
        if not token:
            return found


def _round_run_id(tracking_uri: str) -> str:
    """The fleet's ``monitor-rounds`` run, found or created once per process.

    Replicas starting together may each create one: every process then keeps the oldest, so they all
    write to the same run, and deletes its own extra one.
    """
    cached = _ROUND_RUNS.get(tracking_uri)
    if cached is not None:
        return cached
    client = _client(tracking_uri)
    experiment = client.get_experiment_by_name(MONITORING_EXPERIMENT)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(MONITORING_EXPERIMENT)
    )

    def oldest() -> str | None:
        runs = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{ROUND_RUN_TAG}` = 'true'",
            order_by=["attributes.start_time ASC"],
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    run_id = oldest()
    if run_id is None:
        created = client.create_run(
            experiment_id, tags={ROUND_RUN_TAG: "true", "mlflow.runName": ROUND_RUN_NAME}
        )
        run_id = oldest() or created.info.run_id
        if run_id != created.info.run_id:
            client.delete_run(created.info.run_id)
    _ROUND_RUNS[tracking_uri] = run_id
    return run_id


_ROUND_RUNS: dict[str, str] = {}


def round_metric_key(model: str, version: str, name: str) -> str:
    """``<model>/v<version>/<metric>``, in the characters MLflow allows (no segment of its own made)."""
    return "/".join(_metric_safe(part).replace("/", "_") for part in (model, f"v{version}", name))


class RoundLog:
    """One round's metrics of every checked window, written to the ``monitor-rounds`` run in batches.

    ``add`` queues a window's metrics; each full batch of ``MAX_METRICS_PER_BATCH`` goes to MLflow from one
    writer thread while the round computes the next models; ``flush`` sends the rest and waits.

    Args:
        tracking_uri: the MLflow tracking server.
        batch_size: metrics per ``log_batch`` (MLflow refuses more than 1,000).
    """

    def __init__(self, tracking_uri: str, *, batch_size: int = MAX_METRICS_PER_BATCH) -> None:
        if not 1 <= batch_size <= MAX_METRICS_PER_BATCH:
            raise MonitoringError(
                f"batch_size={batch_size} must be in 1..{MAX_METRICS_PER_BATCH} (MLflow's limit a log_batch)"
            )
        self.tracking_uri = tracking_uri
        self.batch_size = batch_size
        self.metrics_written = 0
        self.batches_written = 0
        self._pending: list[Any] = []
        self._writer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="round-log")
        self._futures: list[concurrent.futures.Future] = []

    def add(self, result: MonitorResult, *, model: str | None = None) -> None:
        """Queue a window's metrics (``result.metrics()``) under ``model`` (default ``result.model``)."""
        from mlflow.entities import Metric

        timestamp_ms = int(result.checked_at * 1000)
        step = int(result.checked_at)
        name = model or result.model
        for metric, value in result.metrics().items():
            self._pending.append(
                Metric(round_metric_key(name, result.version, metric), value, timestamp_ms, step)
            )
        while len(self._pending) >= self.batch_size:
            self._submit(self._pending[: self.batch_size])
            self._pending = self._pending[self.batch_size :]

    def flush(self) -> str | None:
        """Send what is queued, wait for every batch; the run id (None when nothing was logged).

        Raises:
            TrackingError: a batch could not be written (the first error; the others are logged).
        """
        if self._pending:
            self._submit(self._pending)
            self._pending = []
        futures, self._futures = self._futures, []
        errors = []
        for future in futures:
            try:
                future.result()
            except Exception as error:  # keep waiting for the others, report the first
                errors.append(error)
        self._writer.shutdown(wait=True)
        if errors:
            for error in errors[1:]:
                logger.warning("a batch of the round's metrics was not logged: %s", error)
            raise TrackingError(
                f"{len(errors)} of {len(futures)} batches of the round's metrics could not be logged to "
                f"{self.tracking_uri} ({errors[0]}); the store has every window's result"
            ) from errors[0]
        return _ROUND_RUNS.get(self.tracking_uri) if futures else None

    def _submit(self, metrics: list[Any]) -> None:
        self._futures.append(self._writer.submit(self._write, list(metrics)))

    def _write(self, metrics: list[Any]) -> None:
        client = _client(self.tracking_uri)
        client.log_batch(_round_run_id(self.tracking_uri), metrics=metrics)
        self.metrics_written += len(metrics)
        self.batches_written += 1


def log_round(tracking_uri: str, results: Mapping[str, MonitorResult]) -> str | None:
    """Log windows' metrics (model -> its result) in one round's batches; the ``monitor-rounds`` run id."""
    batch = RoundLog(tracking_uri)
    for model, result in results.items():
        batch.add(result, model=model)
    return batch.flush()
