"""The cluster half of the loop: the models the monitor service watches, and retraining through KFP.

The monitor StatefulSet is given ``MLOPS_MONITOR_MODELS=/etc/mlops/models.json``, a ConfigMap the Pulumi
side writes from the stack's ``models`` (``platform_components/kubernetes/model.py: monitor_entry``). Its
schema is ``MonitoredModel`` below, one JSON list of entries::

    [{"name": "credit-default",              # served model name: the prediction log's and metrics' `model`
      "registered_model": "credit-default",  # MLflow registered model
      "alias": "champion",                   # the version checked is resolved from this alias each round
      "thresholds": {"drift_p_value": 0.01, "psi": 0.2, "min_accuracy": 0.7,
                     "max_p95_latency_seconds": 0.5, "max_error_rate": 0.01},
      "label_column": "label",               # optional: label column name the pipeline expects
      "pipeline_arguments": {}}]             # optional: extra arguments of every retrain run

How the stack's thresholds (``settings.Thresholds``, the same ones the PrometheusRules use) map onto the
check and the policy:

- ``drift_p_value`` -> ``MonitorConfig.alpha``: a feature drifts when its corrected p-value is below it
  (``mlops_monitor_drifted_features``, alert ``ModelFeatureDrift``; the policy's drift trigger).
- ``psi`` -> ``MonitorConfig.psi_threshold``: a feature whose PSI is above it also counts as drifted
  (``mlops_monitor_max_psi``, alert ``ModelFeaturePsiHigh``).
- ``min_accuracy`` -> the policy's performance trigger as an absolute floor: ``PolicyConfig``
  ``performance_metric="accuracy"``, ``max_performance_drop=0`` and the floor passed as the baseline, so
  it fires when labelled accuracy (at least ``PolicyConfig.min_labels`` rows) is below ``min_accuracy``,
  the same condition as the alert ``ModelAccuracyLow``.
- ``max_p95_latency_seconds``, ``max_error_rate``: serving alerts only (Seldon's metrics), not the monitor.

Everything else of ``PolicyConfig`` (drift share, checks required, cool-down, age) keeps its defaults.

Retraining (``KfpRetrain``): the recent labelled rows are logged as a CSV artifact of a run in the MLflow
experiment ``mlops-retrain-data`` and the pipeline is submitted to the KFP API with
``training_data_path=runs:/<run_id>/retrain_data/labelled_rows.csv``; the decision's outcome is
``submitted`` with the KFP run id. Promotion is the pipeline's own champion/challenger gate.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from platform_components.errors import ConfigError
from platform_components.monitoring.monitor import DEFAULT_WINDOW_SECONDS, MonitorConfig
from platform_components.monitoring.policy import PolicyConfig, RetrainController, RetrainRequest
from platform_components.monitoring.runner import CheckOutcome
from platform_components.monitoring.store import MonitorStore
from platform_components.settings import Thresholds

logger = logging.getLogger(__name__)

MODELS_ENV = "MLOPS_MONITOR_MODELS"
RETRAIN_DATA_EXPERIMENT = "mlops-retrain-data"
RETRAIN_DATA_PATH = "retrain_data/labelled_rows.csv"
NO_RUNNER = "no pipeline runner configured"


class MonitoredModel(BaseModel):
    """One entry of ``models.json`` (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Served model name (prediction log and metric label).")
    registered_model: str = Field(min_length=1, description="MLflow registered model name.")
    alias: str = Field("champion", min_length=1, description="Alias whose version is checked.")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    label_column: str = Field("label", min_length=1, description="Label column in the retrain data.")
    pipeline_arguments: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Extra pipeline arguments of this model's retrain runs."
    )


def parse_models(text: str, *, source: str = "models.json") -> tuple[MonitoredModel, ...]:
    """Parse the models file's text.

    Raises:
        ConfigError: not JSON, or an entry is invalid; the message names the entry, field, value and fix.
    """
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"{source}: not valid JSON ({error}); write a JSON list of models") from None
    if not isinstance(data, list):
        raise ConfigError(
            f"{source}: expected a JSON list of models, got {type(data).__name__}; "
            'write [{"name": ..., "registered_model": ..., "alias": "champion", "thresholds": {...}}]'
        )
    try:
        models = TypeAdapter(list[MonitoredModel]).validate_python(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            location = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"])
            value = item.get("input")
            shown = "" if item["type"] == "missing" else f" (got {value!r})"
            problems.append(f"{source}{location}: {item['msg']}{shown}")
        raise ConfigError(
            "; ".join(problems) + f"; fix the entry (schema: {__name__}.MonitoredModel)"
        ) from None
    seen: dict[str, int] = {}
    for index, entry in enumerate(models):
        if entry.name in seen:
            raise ConfigError(
                f"{source}[{index}].name: {entry.name!r} is also entry [{seen[entry.name]}]; "
                "list each served model once"
            )
        seen[entry.name] = index
    return tuple(models)


def load_models(path: str | os.PathLike[str]) -> tuple[MonitoredModel, ...]:
    """Read and validate the models file at ``path``.

    Raises:
        ConfigError: the file is missing or unreadable, or its content is invalid (see ``parse_models``).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            f"{MODELS_ENV}={str(path)!r}: cannot read it ({error.strerror or error}); "
            "point it at the models.json the platform mounts (/etc/mlops/models.json)"
        ) from None
    return parse_models(text, source=str(path))


def monitor_config(entry: MonitoredModel, base: MonitorConfig | None = None) -> MonitorConfig:
    """The check settings of one model: ``alpha`` from ``drift_p_value``, ``psi_threshold`` from ``psi``."""
    return dataclasses.replace(
        base or MonitorConfig(), alpha=entry.thresholds.drift_p_value, psi_threshold=entry.thresholds.psi
    )


def policy_config(entry: MonitoredModel, base: PolicyConfig | None = None) -> PolicyConfig:
    """The policy of one model: the performance trigger is accuracy against ``min_accuracy`` (a floor).

    Pass ``performance_floor(entry)`` as the baseline to ``RetrainController.evaluate``.
    """
    return dataclasses.replace(
        base or PolicyConfig(), performance_metric="accuracy", max_performance_drop=0.0
    )


def performance_floor(entry: MonitoredModel) -> float:
    """The value passed as the policy's baseline: with a zero allowed drop it is a floor."""
    return entry.thresholds.min_accuracy


@dataclass(frozen=True)
class PipelineTarget:
    """Where retrains run: a KFP API server and the project's pipeline.

    Attributes:
        host: KFP API URL, e.g. ``http://ml-pipeline.kubeflow.svc.cluster.local:8888``.
        pipeline_func: the ``@dsl.pipeline`` function (``pipelines.load_pipeline("file.py:func")``).
        experiment: KFP experiment of the retrain runs.
        namespace: KFP namespace (multi-user installs), None for the default.
    """

    host: str
    pipeline_func: Any
    experiment: str = "mlops-retrain"
    namespace: str | None = None


def check_pipeline_inputs(pipeline_func: Any) -> None:
    """Fail early when the pipeline cannot take the retrain data.

    Raises:
        ConfigError: the pipeline has no ``training_data_path`` input.
    """
    inputs = pipeline_func.component_spec.inputs or {}
    if "training_data_path" not in inputs:
        raise ConfigError(
            f"pipeline {getattr(pipeline_func, 'name', pipeline_func)!r} has no input 'training_data_path' "
            f"(it takes {sorted(inputs)}); the retrain passes the labelled rows' URI there"
        )


def retrain_rows(request: RetrainRequest, label_column: str = "label"):
    """The labelled rows as the pipeline reads them: features plus ``label_column`` (no timestamp)."""
    rows = request.labelled_rows.drop(columns=["timestamp"], errors="ignore")
    if label_column != "label":
        rows = rows.rename(columns={"label": label_column})
    return rows


def upload_labelled_rows(
    tracking_uri: str,
    rows: Any,
    *,
    model: str,
    version: str,
    decision_id: int | None = None,
    reasons: Sequence[str] = (),
) -> str:
    """Log ``rows`` (a DataFrame) as a CSV artifact of a new "retrain-data" run; returns its ``runs:/`` URI.

    The run lives in the experiment ``mlops-retrain-data`` with tags naming the model, version and decision,
    so the data a challenger was trained on can be found from the decision log and vice versa.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(RETRAIN_DATA_EXPERIMENT)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(RETRAIN_DATA_EXPERIMENT)
    )
    tags = {
        "mlflow.runName": f"retrain-data-{model}-v{version}" + (f"-d{decision_id}" if decision_id else ""),
        "mlops.model": model,
        "mlops.model_version": str(version),
        "mlops.retrain_reasons": ",".join(reasons),
    }
    if decision_id is not None:
        tags["mlops.decision_id"] = str(decision_id)
    run = client.create_run(experiment_id, tags=tags)
    try:
        client.log_param(run.info.run_id, "rows", len(rows))
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / Path(RETRAIN_DATA_PATH).name
            rows.to_csv(path, index=False)
            client.log_artifact(run.info.run_id, str(path), str(Path(RETRAIN_DATA_PATH).parent))
    except BaseException:
        client.set_terminated(run.info.run_id, "FAILED")
        raise
    client.set_terminated(run.info.run_id)
    return f"runs:/{run.info.run_id}/{RETRAIN_DATA_PATH}"


class KfpRetrain:
    """The cluster's retrain callable: upload the labelled rows to MLflow, submit the pipeline to KFP.

    Returns (stored as the decision's outcome and detail): ``submitted`` with ``kfp_run_id``;
    ``submit_failed`` with ``error`` when the KFP API refuses or cannot be reached; ``no labelled rows``
    when there is nothing to train on; ``no pipeline runner configured`` without a target (the data is
    still uploaded, so an operator can start the run by hand with ``training_data_path``).
    """

    def __init__(self, entry: MonitoredModel, tracking_uri: str, target: PipelineTarget | None) -> None:
        self.entry, self.tracking_uri, self.target = entry, tracking_uri, target

    def arguments(self, training_data_path: str) -> dict[str, Any]:
        """The run's arguments: the data URI, MLflow and the model name when the pipeline takes them."""
        arguments: dict[str, Any] = {"training_data_path": training_data_path}
        if self.target is not None:
            inputs = self.target.pipeline_func.component_spec.inputs or {}
            if "tracking_uri" in inputs:
                arguments["tracking_uri"] = self.tracking_uri
            if "model_name" in inputs:
                arguments["model_name"] = self.entry.registered_model
        return {**arguments, **self.entry.pipeline_arguments}

    def __call__(self, request: RetrainRequest) -> Mapping[str, Any]:
        from platform_components.pipelines.runner import PipelineError, submit

        rows = retrain_rows(request, self.entry.label_column)
        if rows.empty:
            return {"outcome": "no labelled rows", "since": request.since}
        uri = upload_labelled_rows(
            self.tracking_uri,
            rows,
            model=self.entry.registered_model,
            version=request.version,
            decision_id=request.decision_id,
            reasons=request.reasons,
        )
        detail: dict[str, Any] = {"training_data_path": uri, "rows": len(rows)}
        if self.target is None:
            return {"outcome": NO_RUNNER, **detail}
        arguments = self.arguments(uri)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        run_name = f"retrain-{self.entry.name}-d{request.decision_id}-{stamp}"
        try:
            run_id = submit(
                self.target.host,
                self.target.pipeline_func,
                arguments,
                experiment=self.target.experiment,
                run_name=run_name,
                namespace=self.target.namespace,
            )
        except PipelineError as error:
            logger.error("retrain of %s not submitted: %s", self.entry.name, error)
            return {"outcome": "submit_failed", "error": str(error), "kfp_host": self.target.host, **detail}
        return {"outcome": "submitted", "kfp_run_id": run_id, "kfp_host": self.target.host, **detail}


class Fleet:
    """Every listed model, checked each round with its own thresholds and policy.

    Args:
        store: the monitor store (predictions, labels, results, decisions).
        models: the entries of ``models.json``.
        tracking_uri: MLflow: alias resolution, reference profiles, logging, retrain data.
        target: where retrains run (None: decide and record only).
        window_seconds: window of each check.
        monitor_base / policy_base: settings the thresholds are applied on top of.
    """

    def __init__(
        self,
        store: MonitorStore,
        models: Sequence[MonitoredModel],
        *,
        tracking_uri: str,
        target: PipelineTarget | None = None,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        monitor_base: MonitorConfig | None = None,
        policy_base: PolicyConfig | None = None,
    ) -> None:
        self.store, self.models, self.tracking_uri = store, tuple(models), tracking_uri
        self.window_seconds = window_seconds
        self.monitor_base = monitor_base
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.controllers = {
            entry.name: RetrainController(
                store,
                KfpRetrain(entry, tracking_uri, target),
                config=policy_config(entry, policy_base),
                holder=holder,
            )
            for entry in self.models
        }

    def check(self, entry: MonitoredModel, *, now: float | None = None) -> CheckOutcome:
        """Check the version behind the entry's alias, log it to MLflow, and apply the policy."""
        from platform_components.monitoring.report import render_report
        from platform_components.monitoring.runner import cached_profile, check_model
        from platform_components.monitoring.tracking import log_result, model_version_facts, resolve_version

        now = time.time() if now is None else now
        version = resolve_version(self.tracking_uri, entry.registered_model, entry.alias)
        profile = cached_profile(self.tracking_uri, entry.registered_model, version)
        outcome = check_model(
            self.store,
            entry.name,
            state_dir=None,
            tracking_uri=self.tracking_uri,
            version=version,
            profile=profile,
            window_seconds=self.window_seconds,
            config=monitor_config(entry, self.monitor_base),
            log_to_mlflow=False,
            now=now,
        )
        # Logged against the registered model's version (the served name may differ from it).
        history = self.store.results(entry.name, version=version)[:-1][-50:]
        logged = dataclasses.replace(outcome.result, model=entry.registered_model)
        run_id = log_result(self.tracking_uri, logged, report_html=render_report(outcome.result, history))
        created = model_version_facts(self.tracking_uri, entry.registered_model, version)["created_at"]
        decision = self.controllers[entry.name].evaluate(
            entry.name,
            version,
            baseline_metric=performance_floor(entry),
            model_created_at=created,
            now=now,
        )
        return CheckOutcome(result=outcome.result, monitoring_run_id=run_id, decision=decision)

    def check_all(self, *, now: float | None = None) -> dict[str, CheckOutcome | Exception]:
        """Check every model; one model's failure (MLflow down, no alias yet) never stops the others."""
        outcomes: dict[str, CheckOutcome | Exception] = {}
        for entry in self.models:
            try:
                outcomes[entry.name] = self.check(entry, now=now)
            except Exception as error:
                logger.warning("check of %s failed: %s: %s", entry.name, type(error).__name__, error)
                outcomes[entry.name] = error
        return outcomes
