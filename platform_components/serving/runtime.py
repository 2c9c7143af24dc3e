"""``MonitoredMLflowRuntime``: MLServer's MLflow runtime plus validation, a prediction log and metrics.

Per request, in order: validate against the model signature (client mistakes become 4xx), predict,
append a :class:`~platform_components.serving.predlog.PredictionRecord` durably (before the response
is returned, so every acknowledged prediction is in the log), count it in Prometheus.

Model-settings (``write_model_settings`` writes them)::

    {"name": "credit-default",
     "implementation": "platform_components.serving.runtime.MonitoredMLflowRuntime",
     "parameters": {"uri": "models:/credit-default/3", "version": "3",
                    "extra": {"prediction_log_dir": "/abs/.mlops/predictions/credit-default",
                              "enable_metrics": true,
                              "monitor_url": "http://monitor:8090"}}}

Under Seldon Core 2 (the cluster) the agent keeps only ``extra.init_parameters`` of an artifact's
model-settings.json, so these keys are also read from there; ``MLOPS_PREDICTION_LOG_ROOT`` gives a log
directory ``<root>/<model>`` when none is set (in the cluster a writable volume of its own: Seldon mounts
the models volume read-only in the mlserver container), and ``MLOPS_SELDON_NAMES=1`` strips Seldon's
``_<n>`` suffix from the served name (``model_name`` / ``registered_version`` in the settings override
name and version).

``monitor_url`` (optional; else ``MLOPS_MONITOR_URL``) starts a shipper that posts the log to the monitor
service (``platform_components.serving.shipper``): the cluster, where the monitor has its own disk.

Metrics go to ``prometheus_client``'s default registry, created lazily (``process_state``). MLServer serves
them on its metrics port (Seldon's ``server-metrics``, 8082) either way: with ``parallel_workers`` 0 from the
registry itself, with workers (Seldon's ServerConfig sets ``MLSERVER_PARALLEL_WORKERS=1``, so models load in
a worker process) from a ``MultiProcessCollector`` over ``PROMETHEUS_MULTIPROC_DIR``, which MLServer sets
before the workers start (mlserver/metrics/prometheus.py, 1.7.1). More than one worker would open a second
writer on a model's prediction log, which its lock refuses: the Servers run one.
A request may carry its event time as the request parameter ``mlops_event_time`` (Unix seconds; checked in
``validation.py``): the record's ``timestamp`` is that time instead of the clock, and the model never sees it.

Label ``{model}`` only (``process_state.MODEL_LABEL``): four counters per served model (answered, 4xx,
5xx, prediction-log failures) and one latency histogram for the process; ``_created`` series are switched
off by the server. MLServer adds four series per model of its own (``server.KnownModelsDataPlane`` keeps
made-up model names from creating them).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlserver.errors import MLServerError
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver_mlflow import MLflowRuntime
from mlserver_mlflow.codecs import TensorDictCodec

from platform_components.serving.predlog import PredictionLogError, PredictionRecord
from platform_components.serving.process_state import (
    acquire_metric_labels,
    acquire_prediction_log,
    release_metric_labels,
    release_prediction_log,
)
from platform_components.serving.shipper import monitor_url_from
from platform_components.serving.validation import EVENT_TIME_PARAMETER, InvalidRequest, validate_request

logger = logging.getLogger(__name__)


class ClientRequestError(MLServerError):
    """A request that does not fit the model; MLServer answers with ``status_code`` (4xx)."""

    def __init__(self, error: InvalidRequest) -> None:
        super().__init__(str(error), error.status_code)


class ModelFailed(MLServerError):
    """The model's own code raised on a valid request: a 500 that MLServer answers as a JSON error.

    Raised out of the runtime as it is, the exception would leave the ASGI app: Starlette sends its bare
    500 and re-raises, and uvicorn, having started the response, closes the connection
    (``uvicorn/protocols/http/h11_impl.py``@0.55.0, ``run_asgi``). A client's next request on that
    keep-alive connection is then reset. As an ``MLServerError`` it is MLServer's error response
    (``mlserver/rest/errors.py``@1.7.1; gRPC ``INTERNAL`` as before) and the connection stays open.
    """

    def __init__(self, name: str, version: str | None, request_id: str | None, error: Exception) -> None:
        super().__init__(
            f"model {name} version {version} failed on request {request_id}: {type(error).__name__}: "
            f"{error}; the model's own code raised (its traceback is in the server log)",
            500,
        )


class PredictionLogUnavailable(MLServerError):
    """The prediction could not be logged durably, so it is not acknowledged (503, retry)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 503)


def _rows_of(output: Any) -> list:
    data = output.data.root if hasattr(output.data, "root") else output.data
    data = data.tolist() if hasattr(data, "tolist") else list(data)
    shape = list(output.shape)
    if len(shape) <= 1 or (data and isinstance(data[0], list)):
        return data
    width = 1
    for size in shape[1:]:
        width *= int(size)
    rows = [data[index : index + width] for index in range(0, len(data), width)] if width else []
    for size in reversed([int(size) for size in shape[2:]]):
        rows = [[row[index : index + size] for index in range(0, len(row), size)] for row in rows]
    return rows


PREDICTION_LOG_ROOT_ENV = "MLOPS_PREDICTION_LOG_ROOT"
SELDON_ENV = "MLOPS_SELDON_NAMES"
_OUR_KEYS = ("prediction_log_dir", "enable_metrics", "monitor_url", "model_name", "registered_version")


def _our_extra(extra: dict[str, Any] | None) -> dict[str, Any]:
    """Our settings from model-settings ``parameters.extra``, or from ``extra.init_parameters``.

    Seldon Core 2's agent rewrites model-settings.json through a struct that keeps only
    ``extra.init_parameters`` (and two explainer keys): an artifact served by Seldon carries our keys there.
    """
    extra = dict(extra or {})
    nested = extra.get("init_parameters")
    if isinstance(nested, dict):
        for key in _OUR_KEYS:
            if key in nested and key not in extra:
                extra[key] = nested[key]
    return extra


def _served_name(name: str) -> str:
    # Seldon Core 2 loads Model "credit-default" into MLServer as "credit-default_<n>" (n: its own counter of
    # Model updates); the monitor, alerts and dashboards know the Model's name.
    if os.environ.get(SELDON_ENV) == "1":
        return re.sub(r"_\d+$", "", name)
    return name


def model_params(payload: InferenceRequest) -> dict[str, Any] | None:
    """The request parameters the model gets: the extra ones, less those that are not the model's.

    MLServer copies HTTP headers into the parameters (``headers``), and ``mlops_event_time`` is ours (the
    prediction log's timestamp). ``Parameters`` keeps unknown keys as extras (``extra="allow"``,
    SeldonIO/MLServer mlserver/types/dataplane.py@1.7.1).
    """
    extra = payload.parameters.model_extra if payload.parameters is not None else None
    if not extra:
        return None
    return {
        key: value for key, value in extra.items() if key not in ("headers", EVENT_TIME_PARAMETER)
    } or None


class MonitoredMLflowRuntime(MLflowRuntime):
    """MLflow runtime that validates, logs every prediction durably and exports metrics."""

    # MLflow's /invocations handler is not part of our contract and skips our validation and log:
    # overriding it without the @custom_handler marker keeps MLServer from registering the route.
    async def invocations(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        raise ClientRequestError(InvalidRequest("use /v2/models/<name>/infer", status_code=404))

    async def load(self) -> bool:
        extra = _our_extra(self._settings.parameters.extra if self._settings.parameters else None)
        self._enable_metrics = bool(extra.get("enable_metrics", True))
        self._model_label = str(extra.get("model_name") or _served_name(self.name))
        self._version_label = str(extra.get("registered_version") or self.version or "")
        log_dir = extra.get("prediction_log_dir")
        if not log_dir and os.environ.get(PREDICTION_LOG_ROOT_ENV):
            log_dir = Path(os.environ[PREDICTION_LOG_ROOT_ENV]) / self._model_label
        self._prediction_log_dir = Path(log_dir) if log_dir else None
        await super().load()
        # A model without a params schema ignores params with a warning per request: drop them here.
        self._accepts_params = self._signature is not None and self._signature.params is not None
        # The log is opened after the model loaded, so a failed load leaves no open writer behind.
        # A monitor URL (model-settings extra.monitor_url or MLOPS_MONITOR_URL: the cluster) adds a shipper.
        self._prediction_log = (
            acquire_prediction_log(self._prediction_log_dir, monitor_url_from(extra))
            if self._prediction_log_dir
            else None
        )
        if self._enable_metrics:
            self._counters = acquire_metric_labels(self._model_label)
        logger.info(
            "model %s version %s loaded (prediction log: %s)",
            self.name,
            self._version_label,
            self._prediction_log_dir or "off",
        )
        return True

    async def unload(self) -> bool:
        if getattr(self, "_prediction_log", None) is not None and self._prediction_log_dir is not None:
            release_prediction_log(self._prediction_log_dir)
            self._prediction_log = None
        if getattr(self, "_enable_metrics", False) and getattr(self, "_counters", None):
            release_metric_labels(self._model_label)
            self._counters = {}
        return True

    def _count(self, key: str, amount: float = 1.0) -> None:
        if self._enable_metrics:
            self._counters[key].inc(amount)

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        started = time.perf_counter()
        try:
            validated = validate_request(payload, self._signature)
        except InvalidRequest as error:
            self._count("client_errors")
            raise ClientRequestError(error) from None
        try:
            decoded = self.decode_request(payload)
            params = model_params(payload) if self._accepts_params else None
            model_output = self._model.predict(decoded, params=params)
            response = self.encode_response(model_output, default_codec=TensorDictCodec)
        except MLServerError:
            self._count("server_errors")
            raise
        except MlflowException as error:
            if error.error_code == "INVALID_PARAMETER_VALUE":
                # MLflow's schema enforcement rejected the input: the client's mistake, not ours.
                self._count("client_errors")
                raise ClientRequestError(InvalidRequest(error.message, status_code=422)) from None
            self._count("server_errors")
            logger.exception("model %s version %s failed on request %s", self.name, self.version, payload.id)
            raise ModelFailed(self.name, self.version, payload.id, error) from error
        except Exception as error:
            self._count("server_errors")
            logger.exception("model %s version %s failed on request %s", self.name, self.version, payload.id)
            raise ModelFailed(self.name, self.version, payload.id, error) from error
        response.id = payload.id
        if self._prediction_log is not None:
            record = PredictionRecord(
                request_id=str(payload.id),
                model=self._model_label,
                version=self._version_label,
                timestamp=time.time() if validated.event_time is None else validated.event_time,
                inputs=validated.columns,
                outputs={output.name: _rows_of(output) for output in response.outputs},
            )
            try:
                # In a worker thread, so the event loop keeps serving while the disk syncs and concurrent
                # requests share one fdatasync (group commit); the response still waits for durability.
                # Inline would save ~80 us per request when idle but serialise every request behind
                # the sync when the disk is slow (4 ms syncs seen here under I/O contention).
                await asyncio.to_thread(self._prediction_log.append, record)
            except (PredictionLogError, OSError, TypeError, ValueError) as error:
                self._count("log_failures")
                logger.exception("prediction log append failed for request %s", payload.id)
                raise PredictionLogUnavailable(
                    f"prediction not acknowledged: the prediction log could not be written ({error}); retry"
                ) from error
        if self._enable_metrics:
            self._counters["requests"].inc()
            self._counters["latency"].observe(time.perf_counter() - started)
        return response
