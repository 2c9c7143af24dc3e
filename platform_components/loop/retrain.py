"""The two retrainers: the project's pipeline run with ``kfp.local`` (local target) or through the KFP API.

Both implement ``interfaces.Retrainer`` and pass the pipeline the same arguments, built by one function
(``pipeline_arguments``) from what the pipeline declares:

- ``training_data_path``: the rows the policy chose to train on (``TrainingData.train``), as a CSV;
- ``gate_data_path``: the most recent labelled rows, held out from training (``TrainingData.gate``), as a
  CSV, when there are any; the pipeline's promote step scores challenger and champion on them;
- ``promotion_margin``: the policy's margin for that gate;
- ``tracking_uri`` and ``model_name`` (the registered model): where the pipeline logs and registers;
- then ``RetrainRequest.arguments`` (extra arguments declared for the model).

A pipeline that does not declare ``training_data_path`` cannot be retrained on the policy's rows and is
refused when the retrainer is made; an argument the pipeline does not declare, or a required input nothing
fills, is refused before anything runs (``NOT_STARTED``).

``LocalRetrainer`` writes the two CSVs beside the run's artifacts and runs the pipeline in this process's
environment: it is synchronous, ``start`` returns ``SUCCEEDED`` with the pipeline's summary or ``FAILED``
with the error. ``KfpRetrainer`` logs the two CSVs as artifacts of one "retrain-data" MLflow run (tagged
with the model, the serving version and the decision), so the pipeline's pods read them with
``runs:/<run_id>/...`` URIs, then submits the compiled pipeline IR to the KFP API (uploaded once, reused by
its hash: ``pipelines.runner.submit_run``); ``start`` returns ``RUNNING`` with the KFP run id and ``poll``
reads the run's state back. The monitor holds the IR file only, never the project's code.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from platform_components.errors import ConfigError
from platform_components.loop.interfaces import RetrainRequest, RetrainState, RetrainStatus
from platform_components.pipelines.runner import (
    KFP_PIPELINE_SETTING,
    PipelineError,
    run_local,
    run_status,
    submit_run,
)

logger = logging.getLogger(__name__)

TRAINING_DATA_INPUT = "training_data_path"
GATE_DATA_INPUT = "gate_data_path"
MARGIN_INPUT = "promotion_margin"
TRACKING_URI_INPUT = "tracking_uri"
MODEL_NAME_INPUT = "model_name"
# Inputs the platform fills from the request; a model's extra arguments may not override them (the policy
# chose the data and the margin, the registry is the platform's).
PLATFORM_INPUTS = (TRAINING_DATA_INPUT, GATE_DATA_INPUT, MARGIN_INPUT, TRACKING_URI_INPUT, MODEL_NAME_INPUT)

RETRAIN_DATA_EXPERIMENT = "mlops-retrain-data"
RETRAIN_DATA_FOLDER = "retrain_data"
TRAIN_FILE = "train.csv"
GATE_FILE = "gate.csv"
SELECTION_FILE = "selection.json"
DEFAULT_EXPERIMENT = "mlops-retrain"

# pipelines.runner.RunStatus.state -> ours. A skipped run ran no step (no challenger), a canceled one was
# stopped: neither trained, so both are failures of the retrain, with the reason in the detail.
_RUNNING_STATES = frozenset({"pending", "running", "paused", "canceling"})
_SUCCEEDED_STATES = frozenset({"succeeded"})


def pipeline_inputs(pipeline: Any) -> dict[str, bool]:
    """The pipeline's inputs, name -> optional (it has a default), from a ``@dsl.pipeline`` function or the
    path of its compiled IR (read with ``kfp.components.load_component_from_file``).

    Raises:
        PipelineError: the IR file is missing or is not a compiled KFP pipeline; the message names
            ``mlops:monitoring.monitor.pipeline``.
    """
    component = getattr(pipeline, "component_spec", None)
    if component is None:
        from kfp import components

        path = Path(pipeline)
        if not path.is_file():
            raise PipelineError(
                f"pipeline IR {str(path)!r} does not exist; compile it (mlops pipeline compile "
                f"FILE.py:FUNCTION --out FILE.yaml) and set "
                f"{KFP_PIPELINE_SETTING} to its path"
            )
        try:
            component = components.load_component_from_file(str(path)).component_spec
        except Exception as error:  # kfp raises ValueError, KeyError, yaml errors for a foreign file
            raise PipelineError(
                f"pipeline IR {str(path)!r} is not a compiled KFP pipeline "
                f"({type(error).__name__}: {error}); set {KFP_PIPELINE_SETTING} to the file "
                "`mlops pipeline compile` wrote"
            ) from None
    return {name: bool(spec.optional) for name, spec in (component.inputs or {}).items()}


def check_retrainable(inputs: Mapping[str, bool], pipeline: Any, setting: str = KFP_PIPELINE_SETTING) -> None:
    """Refuse a pipeline that cannot take the policy's rows.

    Raises:
        ConfigError: the pipeline declares no ``training_data_path`` input; the message names ``setting``.
    """
    if TRAINING_DATA_INPUT not in inputs:
        raise ConfigError(
            f"{setting}: pipeline {_name_of(pipeline)!r} has no input {TRAINING_DATA_INPUT!r} (it takes "
            f"{sorted(inputs)}); a retrain passes the chosen rows there as a CSV, so add the input "
            "(see examples/credit_default/pipeline.py)"
        )


def pipeline_arguments(
    request: RetrainRequest,
    inputs: Mapping[str, bool],
    *,
    tracking_uri: str,
    training_data_path: str,
    gate_data_path: str | None,
) -> dict[str, Any]:
    """The run's arguments, the same for both retrainers: what the platform fills, where the pipeline
    declares it, then the model's extra arguments.

    Args:
        request: the retrain (model, margin, extra arguments).
        inputs: the pipeline's inputs, name -> optional (``pipeline_inputs``).
        tracking_uri: MLflow, as the pipeline's steps reach it.
        training_data_path: where the training rows are (a local path or a ``runs:/`` URI).
        gate_data_path: where the gate rows are; None when there are none (the input is left to its default).

    Raises:
        PipelineError: an extra argument the pipeline does not declare or that the platform fills, or a
            required input nothing fills; the message names them and the pipeline's inputs.
    """
    given: dict[str, Any] = {
        TRAINING_DATA_INPUT: training_data_path,
        MARGIN_INPUT: float(request.promotion_margin),
        TRACKING_URI_INPUT: tracking_uri,
        MODEL_NAME_INPUT: request.registered_model,
    }
    if gate_data_path is not None:
        given[GATE_DATA_INPUT] = gate_data_path
    arguments = {name: value for name, value in given.items() if name in inputs}
    extra = dict(request.arguments)
    owned = sorted(set(extra) & set(PLATFORM_INPUTS))
    if owned:
        raise PipelineError(
            f"model {request.model!r}: pipeline argument(s) {owned} are set by the platform for every "
            "retrain (the policy's rows, gate and margin, the registry); remove them from the model's "
            "arguments"
        )
    unknown = sorted(set(extra) - set(inputs))
    if unknown:
        raise PipelineError(
            f"model {request.model!r}: argument(s) {unknown} are not inputs of the pipeline; it takes "
            f"{sorted(inputs)}"
        )
    arguments.update(extra)
    missing = sorted(name for name, optional in inputs.items() if not optional and name not in arguments)
    if missing:
        raise PipelineError(
            f"model {request.model!r}: the pipeline's required input(s) {missing} are not filled by a "
            "retrain; give them a default in the pipeline or set them in the model's arguments"
        )
    return arguments


class LocalRetrainer:
    """Runs the project's pipeline on this machine (``kfp.local``), synchronously.

    Args:
        pipeline: the ``@dsl.pipeline`` function (``pipelines.runner.load_pipeline("file.py:name")``).
        tracking_uri: the local MLflow the pipeline logs and registers to.
        pipeline_root: folder of the runs' artifacts; the rows of each retrain are written under
            ``<pipeline_root>/retrain-data/``.
        echo: also stream each run's output here (a CLI passes ``sys.stderr``).

    Raises:
        ConfigError: the pipeline has no ``training_data_path`` input.
    """

    def __init__(
        self, pipeline: Any, *, tracking_uri: str, pipeline_root: Path, echo: TextIO | None = None
    ) -> None:
        self.pipeline = pipeline
        self.tracking_uri = tracking_uri
        self.pipeline_root = Path(pipeline_root)
        self.echo = echo
        self.inputs = pipeline_inputs(pipeline)
        check_retrainable(self.inputs, pipeline, setting="the local pipeline")

    def start(self, request: RetrainRequest) -> RetrainStatus:
        """Write the rows, run the pipeline to its end, and say how it went."""
        data = request.data
        if data.train.empty:
            return _not_started(request, "no labelled rows to train on")
        folder = self.pipeline_root / "retrain-data" / f"{request.model}-d{request.decision_id}"
        folder.mkdir(parents=True, exist_ok=True)
        training_path = folder / TRAIN_FILE
        data.train.to_csv(training_path, index=False)
        gate_path = None
        if not data.gate.empty:
            gate_path = folder / GATE_FILE
            data.gate.to_csv(gate_path, index=False)
        detail = _data_detail(request, str(training_path), str(gate_path) if gate_path else None, self.inputs)
        try:
            arguments = pipeline_arguments(
                request,
                self.inputs,
                tracking_uri=self.tracking_uri,
                training_data_path=str(training_path),
                gate_data_path=str(gate_path) if gate_path else None,
            )
        except PipelineError as error:
            return _not_started(request, str(error), detail)
        detail["arguments"] = _json_safe(arguments)
        logger.info(
            "retraining %s locally on %d rows (gate %d; %s)",
            request.model,
            len(data.train),
            len(data.gate),
            ", ".join(request.reasons),
        )
        try:
            run = run_local(self.pipeline, arguments, pipeline_root=self.pipeline_root, echo=self.echo)
        except PipelineError as error:
            logger.warning("retrain of %s failed: %s", request.model, str(error).splitlines()[0])
            return RetrainStatus(
                RetrainState.FAILED, None, {**detail, "error": str(error), "failed_task": error.task}
            )
        summary = run.outputs["Output"] if set(run.outputs) == {"Output"} else run.outputs
        return RetrainStatus(
            RetrainState.SUCCEEDED,
            run.run_dir.name if run.run_dir else None,
            {
                **detail,
                "summary": _json_safe(summary),
                "run_dir": str(run.run_dir) if run.run_dir else None,
                "seconds": round(run.duration_seconds, 1),
            },
        )

    def poll(self, run_id: str) -> RetrainStatus:
        """Never needed: ``start`` returns a final state.

        Raises:
            PipelineError: always; a caller polling a local run has lost track of what ``start`` returned.
        """
        raise PipelineError(
            f"local run {run_id!r}: LocalRetrainer is synchronous, start() already returned its final state; "
            "there is nothing to poll"
        )


class KfpRetrainer:
    """Submits the project's compiled pipeline to the KFP API and reads its runs back.

    Args:
        host: the KFP API (``mlops:monitoring.monitor.kfp_host``).
        pipeline: the compiled pipeline IR (``mlops:monitoring.monitor.pipeline``; a ``@dsl.pipeline``
            function also works, compiled at each submit).
        tracking_uri: MLflow, as both the monitor and the pipeline's pods reach it.
        experiment: the KFP experiment of the runs (``mlops:monitoring.monitor.experiment``).
        namespace: the KFP namespace (multi-user installs); None for standalone.

    Raises:
        PipelineError: the IR is missing or not a compiled pipeline.
        ConfigError: the pipeline has no ``training_data_path`` input.
    """

    def __init__(
        self,
        host: str,
        pipeline: Any,
        *,
        tracking_uri: str,
        experiment: str = DEFAULT_EXPERIMENT,
        namespace: str | None = None,
    ) -> None:
        self.host = host.rstrip("/")
        self.pipeline = pipeline
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.namespace = namespace
        self.inputs = pipeline_inputs(pipeline)
        check_retrainable(self.inputs, pipeline)

    def start(self, request: RetrainRequest) -> RetrainStatus:
        """Upload the rows to MLflow and submit a run; RUNNING with its id, or NOT_STARTED saying why."""
        data = request.data
        if data.train.empty:
            return _not_started(request, "no labelled rows to train on")
        try:
            # Checked before the upload: a refused argument leaves no orphan data run behind.
            pipeline_arguments(
                request,
                self.inputs,
                tracking_uri=self.tracking_uri,
                training_data_path="",
                gate_data_path=None if data.gate.empty else "",
            )
        except PipelineError as error:
            return _not_started(request, str(error))
        try:
            uploaded = upload_training_data(self.tracking_uri, request, gate=GATE_DATA_INPUT in self.inputs)
        except Exception as error:  # MLflow down or refusing: nothing was submitted
            logger.error("retrain data of %s not uploaded to %s: %s", request.model, self.tracking_uri, error)
            return _not_started(
                request, f"cannot upload the retrain data to MLflow at {self.tracking_uri}: {error}"
            )
        detail = {
            **_data_detail(request, uploaded.training_data_path, uploaded.gate_data_path, self.inputs),
            "data_run_id": uploaded.run_id,
            "kfp_host": self.host,
            "experiment": self.experiment,
        }
        arguments = pipeline_arguments(
            request,
            self.inputs,
            tracking_uri=self.tracking_uri,
            training_data_path=uploaded.training_data_path,
            gate_data_path=uploaded.gate_data_path,
        )
        try:
            submitted = submit_run(
                self.host,
                self.pipeline,
                arguments,
                experiment=self.experiment,
                run_name=f"retrain-{request.model}-d{request.decision_id}",
                namespace=self.namespace,
            )
        except PipelineError as error:
            logger.error("retrain of %s not submitted: %s", request.model, error)
            return _not_started(request, str(error), detail)
        logger.info("retrain of %s submitted: KFP run %s", request.model, submitted.run_id)
        return RetrainStatus(
            RetrainState.RUNNING,
            submitted.run_id,
            {
                **detail,
                "kfp_run_id": submitted.run_id,
                "pipeline_id": submitted.pipeline_id,
                "pipeline_version_id": submitted.pipeline_version_id,
                "arguments": _json_safe(arguments),
            },
        )

    def poll(self, run_id: str) -> RetrainStatus:
        """The run's state: RUNNING until it ends, then SUCCEEDED or FAILED (with the error).

        A server that cannot be reached leaves the run RUNNING (it is still running somewhere; the next
        poll asks again) with the error in the detail; a server that has no such run ends it as FAILED.
        """
        base = {"kfp_host": self.host, "kfp_run_id": run_id}
        try:
            status = run_status(self.host, run_id, namespace=self.namespace)
        except PipelineError as error:
            if "(HTTP 404)" in str(error):
                return RetrainStatus(
                    RetrainState.FAILED, run_id, {**base, "state": "gone", "error": str(error)}
                )
            logger.warning("cannot read KFP run %s: %s", run_id, error)
            return RetrainStatus(
                RetrainState.RUNNING, run_id, {**base, "state": "unknown", "error": str(error)}
            )
        detail = {
            **base,
            "state": status.state,
            "api_state": status.api_state,
            "error": status.error,
            "failed_tasks": list(status.failed_tasks),
            "finished_at": status.finished_at,
        }
        if status.state in _RUNNING_STATES:
            state = RetrainState.RUNNING
        elif status.state in _SUCCEEDED_STATES:
            state = RetrainState.SUCCEEDED
        else:
            state = RetrainState.FAILED
            if status.state == "skipped":
                detail["error"] = (
                    status.error or "the run was skipped: no step ran, no challenger was trained"
                )
        return RetrainStatus(state, run_id, detail)


@dataclass(frozen=True)
class UploadedData:
    """Where ``upload_training_data`` put the rows: the MLflow run and the two ``runs:/`` URIs."""

    run_id: str
    training_data_path: str
    gate_data_path: str | None


def upload_training_data(tracking_uri: str, request: RetrainRequest, *, gate: bool = True) -> UploadedData:
    """Log the retrain's rows as CSV artifacts of one new run in the experiment ``mlops-retrain-data``.

    The run is tagged with the served model, the registered model, the version serving when the retrain
    was decided, the decision id and the reasons, so a challenger's data is found from the decision log and
    the other way round. ``train.csv`` holds ``TrainingData.train``; ``gate.csv`` (when ``gate`` and there
    are gate rows) ``TrainingData.gate``; ``selection.json`` how the policy chose them.

    Returns:
        The run id and the ``runs:/<run_id>/retrain_data/<file>`` URIs (the gate's None when not logged).
    """
    from mlflow.entities import Param
    from mlflow.tracking import MlflowClient

    data = request.data
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(RETRAIN_DATA_EXPERIMENT)
    experiment_id = (
        experiment.experiment_id
        if experiment is not None
        else client.create_experiment(RETRAIN_DATA_EXPERIMENT)
    )
    tags = {
        "mlflow.runName": f"retrain-data-{request.model}-d{request.decision_id}",
        "mlops.model": request.model,
        "mlops.registered_model": request.registered_model,
        "mlops.model_version": str(request.champion_version),
        "mlops.decision_id": str(request.decision_id),
        "mlops.retrain_reasons": ",".join(request.reasons),
    }
    run = client.create_run(experiment_id, tags=tags)
    run_id = run.info.run_id
    with_gate = gate and not data.gate.empty
    try:
        params = {
            "train_rows": len(data.train),
            "gate_rows": len(data.gate) if with_gate else 0,
            "label_column": data.label_column,
            "start": data.start,
            "end": data.end,
        }
        client.log_batch(run_id, params=[Param(key, str(value)) for key, value in params.items()])
        with tempfile.TemporaryDirectory(prefix="mlops-retrain-data-") as folder:
            data.train.to_csv(Path(folder) / TRAIN_FILE, index=False)
            if with_gate:
                data.gate.to_csv(Path(folder) / GATE_FILE, index=False)
            (Path(folder) / SELECTION_FILE).write_text(json.dumps(_json_safe(dict(data.selection)), indent=1))
            client.log_artifacts(run_id, folder, RETRAIN_DATA_FOLDER)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id)
    base = f"runs:/{run_id}/{RETRAIN_DATA_FOLDER}"
    return UploadedData(run_id, f"{base}/{TRAIN_FILE}", f"{base}/{GATE_FILE}" if with_gate else None)


def read_training_data(tracking_uri: str, uri: str) -> pd.DataFrame:
    """Read back a CSV a retrain uploaded (``runs:/...``), as the pipeline's steps do."""
    import mlflow.artifacts

    with tempfile.TemporaryDirectory(prefix="mlops-retrain-read-") as folder:
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=folder, tracking_uri=tracking_uri
        )
        return pd.read_csv(path)


def _data_detail(
    request: RetrainRequest, training_path: str, gate_path: str | None, inputs: Mapping[str, bool]
) -> dict[str, Any]:
    data = request.data
    detail: dict[str, Any] = {
        "training_data_path": training_path,
        "gate_data_path": gate_path,
        "train_rows": len(data.train),
        "gate_rows": len(data.gate),
    }
    if not data.gate.empty and GATE_DATA_INPUT not in inputs:
        # The gate then falls back to whatever holdout the pipeline draws itself: say so in the record.
        logger.warning(
            "pipeline for %s declares no %s: its %d gate rows are not passed",
            request.model,
            GATE_DATA_INPUT,
            len(data.gate),
        )
        detail["gate_data_path"] = None
        detail["gate_note"] = (
            f"the pipeline declares no {GATE_DATA_INPUT}; its own holdout gates the promotion"
        )
    return detail


def _not_started(
    request: RetrainRequest, error: str, detail: Mapping[str, Any] | None = None
) -> RetrainStatus:
    logger.warning("retrain of %s not started: %s", request.model, error)
    return RetrainStatus(RetrainState.NOT_STARTED, None, {**(detail or {}), "error": error})


def _json_safe(value: Any) -> Any:
    """``value`` as JSON-able data (numpy scalars, paths and the like become their JSON or string form)."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    return str(value)


def _name_of(pipeline: Any) -> str:
    return str(getattr(pipeline, "name", None) or pipeline)
