"""The monitor service: ground-truth feedback, Prometheus metrics, and (optionally) periodic checks.

Run it as ``python -m platform_components.monitoring.service --state-dir .mlops --port 8090
--tracking-uri http://127.0.0.1:5000``; ``service_command`` builds that argv for the local platform.
The store is ``<state-dir>/monitoring/monitor.sqlite`` unless ``--store-url`` or ``$MLOPS_MONITOR_STORE_URL``
names another (``postgresql://...``: the cluster's replicas share one database; ``store.open_store`` lists
the URL forms); a bad URL stops start-up with exit code 2.

Endpoints:
- ``GET /health`` -> 200 ``{"status": "ok"}``.
- ``POST /v2/feedback`` with ``{"request_id": "...", "labels": [0, 1, ...]}`` (one label per row of that
  request) or ``{"request_id": "...", "label": 1}`` for one-row requests -> 200 ``{"accepted": n, "new": k}``.
  Optional ``"event_time"``: when the label became known, Unix seconds (default: the service's clock); it is
  the label's ``received_at``, the event time the loop measures label delays and look-backs on.
  Errors: 400 (body is not a JSON object), 404 (unknown request id), 409 (a row already has a different
  label), 413 (body too large), 422 (a field is missing or malformed, or ``event_time`` is not a finite
  number, is more than 300 s ahead of the service's clock or before the prediction's time); the body's
  ``detail`` names the field, and nothing is stored. An id not yet in the store triggers one ingestion of
  the prediction log first.
- ``POST /v2/predictions`` with ``{"records": [PredictionRecord JSON, ...]}`` (what a serving pod's shipper,
  ``platform_components.serving.shipper``, reads from its prediction log) -> 200
  ``{"received": n, "new_rows": k}``. Idempotent on the request id (a replayed record adds no row), so a
  shipper retrying after a lost answer is safe. Errors: 400 (not a JSON object), 413 (over
  ``MAX_PREDICTIONS_BYTES`` or ``MAX_PREDICTIONS_RECORDS``), 422 (a record is malformed; ``detail`` names
  ``records[i].field``); the whole batch is validated before anything is stored.
- ``GET /v2/fleet[?now=UNIX_SECONDS]`` -> the fleet's rows as JSON (what ``mlops fleet --json`` prints:
  ``platform_components.fleet``), served by the loop's service, which knows the declared models; 404 here
  alone, 503 when the registry or Prometheus cannot be read (the detail says which).
- ``GET /metrics`` -> Prometheus text from the store: per model the result of its latest window (aligned
  in event time; the version checked in it) as gauges ``{model, version}``, and counters ``{model}``: at
  most 15 series per model (``GAUGES`` less mae and rmse, plus the three ``COUNTERS``; a regressor has no
  estimate and no classifier metrics: 13). The list and the reasons: docs/metrics.md.

The loop (``python -m platform_components.loop.service``, what the cluster's monitor StatefulSet runs)
starts this same application with a background task that runs the loop's round for every model of the
models file on an interval; this module runs the application alone (feedback, ingest, metrics), as the
local target does: there ``mlops loop --local`` runs the rounds.
"""

# No `from __future__ import annotations` here: FastAPI must see the real `Request` class of the
# endpoint defined inside create_app (a string annotation would name a local it cannot resolve).
import argparse
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from platform_components.errors import ConfigError
from platform_components.monitoring.errors import InvalidInput, MonitoringError
from platform_components.monitoring.store import STORE_URL_ENV, MonitorStore, store_for

if TYPE_CHECKING:
    from platform_components.serving.predlog import PredictionRecord

logger = logging.getLogger(__name__)

MAX_FEEDBACK_BYTES = 1024 * 1024
# A shipper batch: large enough to drain a backlog quickly, small enough to hold in memory per request.
MAX_PREDICTIONS_BYTES = 8 * 1024 * 1024
MAX_PREDICTIONS_RECORDS = 5000
_RECORD_FIELDS = frozenset({"request_id", "model", "version", "timestamp", "inputs", "outputs"})

# (metric name suffix, help, where in the stored result) for the gauges of each model's latest window.
# Kept to what an alert, a dashboard or the fleet view reads; the rest of a result (drift share, window
# rows, Brier, ECE, the estimate's band, the share outside the reference) is in the store, the HTML report
# and MLflow, not in Prometheus: every gauge here is one more series per model (issue 10 budgets 25 per
# model over all of our exporters; tests/monitoring/test_series_per_model.py counts them).
GAUGES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("drifted_features", "Features drifted in the latest check.", ("drifted_features",)),
    ("max_psi", "Largest population stability index over features.", ("max_psi",)),
    ("prediction_drift_statistic", "KS statistic of the prediction scores.", ("prediction", "statistic")),
    ("missing_rate", "Mean share of missing feature values.", ("quality", "missing_rate")),
    (
        "out_of_range_rate",
        "Largest share of values outside the training range.",
        ("quality", "out_of_range_rate"),
    ),
    ("unseen_category_rate", "Largest share of categories unseen in training.", ("quality", "unseen_rate")),
    ("labelled_rows", "Labelled predictions in the latest check's window.", ("labelled_rows",)),
    ("accuracy", "Accuracy on labelled rows of the window.", ("performance", "accuracy")),
    ("roc_auc", "ROC AUC on labelled rows of the window.", ("performance", "roc_auc")),
    ("mae", "Mean absolute error on labelled rows of the window.", ("performance", "mae")),
    ("rmse", "Root mean squared error on labelled rows of the window.", ("performance", "rmse")),
    ("last_check_timestamp_seconds", "Event time (Unix s) of the latest check.", ("checked_at",)),
    # Estimated performance of the latest window (estimate.py), recorded before its labels arrive.
    (
        "estimated_roc_auc",
        "ROC AUC estimated from the window's scores before its labels (valid under covariate shift only).",
        ("estimated", "roc_auc", "value"),
    ),
    (
        "estimated_accuracy",
        "Accuracy estimated from the window's scores before its labels (valid under covariate shift only).",
        ("estimated", "accuracy", "value"),
    ),
)
#: The counters per model: (metric name suffix, help, key of ``MonitorStore.counts_by_model``).
COUNTERS: tuple[tuple[str, str, str], ...] = (
    ("retrains", "Retrains started by the policy.", "retrains"),
    ("feedback_labels", "Ground-truth labels stored.", "labels"),
    ("predictions_ingested", "Predictions ingested from the prediction log.", "predictions"),
)
PREFIX = "mlops_monitor_"


def service_command(*, state_dir: Path, host: str, port: int) -> list[str]:
    """The argv that starts the monitor service (run it with the platform's environment).

    Args:
        state_dir: the local state dir (store at ``monitoring/monitor.sqlite``, logs under ``predictions/``).
        host: interface to bind (127.0.0.1 locally).
        port: HTTP port.
    """
    return [
        sys.executable,
        "-m",
        "platform_components.monitoring.service",
        "--state-dir",
        str(state_dir),
        "--host",
        host,
        "--port",
        str(port),
    ]


def _dig(data: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = data
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if isinstance(value, list):
        return float(len(value))
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


class StoreCollector:
    """Prometheus collector reading the latest result per model from the store at scrape time.

    Reading at scrape time (instead of setting gauges when a check runs) means a check run by the CLI or
    the demo in another process shows up too, and a model's old versions never linger as stale series.
    """

    def __init__(self, store: MonitorStore) -> None:
        self.store = store

    def describe(self) -> Iterator[Any]:
        return iter(())

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        latest = self.store.latest_results()
        for suffix, help_text, path in GAUGES:
            family = GaugeMetricFamily(PREFIX + suffix, help_text, labels=["model", "version"])
            for model, result in latest.items():
                value = _dig(result, path)
                if value is not None:
                    family.add_metric([model, str(result.get("version", ""))], value)
            yield family
        counts = self.store.counts_by_model()
        for suffix, help_text, key in COUNTERS:
            family = CounterMetricFamily(PREFIX + suffix, help_text, labels=["model"])
            for model, values in counts.items():
                family.add_metric([model], float(values.get(key, 0)))
            yield family


def _error(status: int, detail: str):
    from fastapi.responses import JSONResponse

    return JSONResponse(status_code=status, content={"detail": detail})


def parse_feedback(body: bytes, *, now: float | None = None) -> tuple[str, list[Any], float | None]:
    """Validate a feedback body; returns (request_id, labels, event_time or None).

    Args:
        body: the request body.
        now: the service's clock, for the ``event_time`` check (default: ``time.time()``).

    Raises:
        InvalidInput: with ``status_code`` 400 for non-JSON or non-object bodies, 422 for bad fields.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        problem = InvalidInput(f"body: not valid JSON ({error}); send {{'request_id': ..., 'labels': [...]}}")
        problem.status_code = 400
        raise problem from None
    if not isinstance(data, dict):
        problem = InvalidInput(f"body: expected a JSON object, got {type(data).__name__}")
        problem.status_code = 400
        raise problem
    request_id = data.get("request_id")
    if not isinstance(request_id, str) or not request_id.strip():
        raise InvalidInput(
            f"request_id: {request_id!r} is not a request id; send the 'id' returned by the inference call"
        )
    unknown = sorted(set(data) - {"request_id", "labels", "label", "event_time"})
    if unknown:
        raise InvalidInput(
            f"{unknown[0]}: unknown field; send only request_id, labels (or label) and event_time"
        )
    event_time = _event_time(data, now)
    if "labels" in data and "label" in data:
        raise InvalidInput(
            "labels: send either 'labels' (one per row) or 'label' (one-row request), not both"
        )
    if "labels" in data:
        labels = data["labels"]
        if not isinstance(labels, list) or not labels:
            raise InvalidInput(
                f"labels: {labels!r} is not a non-empty list; send one label per row, e.g. [0, 1]"
            )
        return request_id, labels, event_time
    if "label" in data:
        return request_id, [data["label"]], event_time
    raise InvalidInput(
        "labels: missing; send 'labels': [one label per row] or 'label': x for a one-row request"
    )


def _event_time(data: dict[str, Any], now: float | None) -> float | None:
    """The body's ``event_time`` (None when absent); InvalidInput naming it when it is not a usable time."""
    from platform_components.event_time import check_event_time

    if "event_time" not in data:
        return None
    try:
        return check_event_time(data["event_time"], field="event_time", clock="the service's", now=now)
    except ValueError as error:
        raise InvalidInput(str(error)) from None


def _invalid(message: str, status: int = 422) -> InvalidInput:
    problem = InvalidInput(message)
    problem.status_code = status
    return problem


def _parse_record(index: int, data: Any) -> "PredictionRecord":
    """One ``records[index]`` entry as a PredictionRecord; InvalidInput naming the field otherwise."""
    import math

    from platform_components.serving.predlog import PredictionRecord

    where = f"records[{index}]"
    if not isinstance(data, dict):
        raise _invalid(f"{where}: expected a JSON object (a PredictionRecord), got {type(data).__name__}")
    unknown = sorted(set(data) - _RECORD_FIELDS)
    if unknown:
        raise _invalid(f"{where}.{unknown[0]}: unknown field; send only {', '.join(sorted(_RECORD_FIELDS))}")
    for name in ("request_id", "model", "version"):
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            raise _invalid(f"{where}.{name}: {value!r} is not a non-empty string")
    timestamp = data.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float) or not math.isfinite(timestamp):
        raise _invalid(f"{where}.timestamp: {timestamp!r} is not a number of Unix seconds")
    inputs = data.get("inputs")
    if not isinstance(inputs, dict) or not inputs:
        raise _invalid(f"{where}.inputs: {inputs!r} is not a non-empty object of column -> list of values")
    rows = None
    for column, values in inputs.items():
        if not isinstance(values, list) or not values:
            raise _invalid(f"{where}.inputs.{column}: expected a non-empty list (one value per row)")
        if rows is None:
            rows = len(values)
        elif len(values) != rows:
            raise _invalid(
                f"{where}.inputs.{column}: {len(values)} values but the first column has {rows}; "
                "every column needs one value per row"
            )
    outputs = data.get("outputs", {})
    if not isinstance(outputs, dict):
        raise _invalid(f"{where}.outputs: {outputs!r} is not an object of output name -> per-row values")
    for name, values in outputs.items():
        if not isinstance(values, list) or len(values) != rows:
            raise _invalid(f"{where}.outputs.{name}: expected a list of {rows} per-row values")
    return PredictionRecord.from_dict(data)


def parse_predictions(body: bytes) -> list["PredictionRecord"]:
    """Validate a ``POST /v2/predictions`` body; every record or none.

    Raises:
        InvalidInput: ``status_code`` 400 for non-JSON or a non-object body, 413 for too many records,
            422 naming ``records[i].field`` for a malformed record.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise _invalid(f"body: not valid JSON ({error}); send {{'records': [...]}}", 400) from None
    if not isinstance(data, dict):
        raise _invalid(f"body: expected a JSON object {{'records': [...]}}, got {type(data).__name__}", 400)
    unknown = sorted(set(data) - {"records"})
    if unknown:
        raise _invalid(f"{unknown[0]}: unknown field; send only 'records'")
    records = data.get("records")
    if not isinstance(records, list) or not records:
        raise _invalid(f"records: {records!r} is not a non-empty list of prediction records")
    if len(records) > MAX_PREDICTIONS_RECORDS:
        raise _invalid(
            f"records: {len(records)} records is over the limit of {MAX_PREDICTIONS_RECORDS}; "
            "send smaller batches",
            413,
        )
    return [_parse_record(index, record) for index, record in enumerate(records)]


class BackgroundTask(Protocol):
    """Work run beside the endpoints (e.g. the loop's rounds), started and stopped with the app."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def create_app(
    state_dir: Path,
    *,
    tasks: "Sequence[BackgroundTask]" = (),
    store: MonitorStore | None = None,
    fleet: "Callable[[float | None], dict[str, Any]] | None" = None,
    collectors: Sequence[Any] = (),
):
    """The FastAPI application (one store, one collector registry of its own).

    Args:
        state_dir: the state dir (store, prediction logs).
        tasks: background work started with the application and stopped with it (the loop's rounds).
        store: the store to serve (default: the state dir's); the application closes it at shutdown.
        fleet: answers ``GET /v2/fleet`` (the fleet's rows for a clock, ``platform_components.fleet``);
            None: the route answers 404 (only the loop's service knows the declared models).
        collectors: more Prometheus collectors for ``/metrics`` (the loop's ``mlops_model_info``).
    """
    from fastapi import FastAPI, Request
    from fastapi.responses import Response
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

    state_dir = Path(state_dir)
    store = store if store is not None else MonitorStore.for_state_dir(state_dir)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    for collector in collectors:
        registry.register(collector)
    ingest_lock = threading.Lock()

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        for task in tasks:
            task.start()
        yield
        for task in reversed(tasks):
            task.stop()
        store.close()

    app = FastAPI(title="mlops monitor", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v2/feedback")
    async def feedback(request: Request):
        body = await _read_body(request, MAX_FEEDBACK_BYTES)
        if not isinstance(body, bytes):
            return body
        try:
            request_id, labels, event_time = parse_feedback(body)
        except InvalidInput as error:
            return _error(error.status_code, str(error))
        # Blocking SQLite work runs in the thread pool so the event loop keeps serving.
        from starlette.concurrency import run_in_threadpool

        try:
            receipt = await run_in_threadpool(
                _store_labels, store, state_dir, ingest_lock, request_id, labels, event_time
            )
        except MonitoringError as error:
            return _error(getattr(error, "status_code", 422), str(error))
        return {"request_id": receipt.request_id, "accepted": receipt.accepted, "new": receipt.new}

    @app.post("/v2/predictions")
    async def predictions(request: Request):
        body = await _read_body(request, MAX_PREDICTIONS_BYTES)
        if not isinstance(body, bytes):
            return body
        from starlette.concurrency import run_in_threadpool

        try:
            records = await run_in_threadpool(parse_predictions, body)
        except InvalidInput as error:
            return _error(error.status_code, str(error))
        # One batch, one transaction per 500 records; a replay (the shipper retrying) adds nothing.
        added = await run_in_threadpool(store.ingest, records)
        return {"received": len(records), "new_rows": added}

    @app.get("/v2/fleet")
    def fleet_rows(now: float | None = None):
        if fleet is None:
            return _error(
                404, "no fleet here: only the loop's service (the cluster's monitor) knows the models"
            )
        from platform_components.errors import PlatformError

        try:
            document = fleet(now)
        except PlatformError as error:  # the registry or Prometheus is unreachable: not the client's fault
            logger.warning("GET /v2/fleet: %s", error)
            return _error(503, str(error))
        # Rows are plain JSON already: skip FastAPI's per-value encoder (1,000 rows).
        return Response(json.dumps(document, default=str), media_type="application/json")

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.state.store = store
    return app


async def _read_body(request: Any, limit: int) -> Any:
    """The body, or a 413 response: before reading when Content-Length is over ``limit`` (a huge body never
    reaches memory), else as soon as the streamed bytes pass it (a chunked body declares no length)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return _error(413, f"body: {declared} bytes is over the limit of {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return _error(413, f"body: over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _store_labels(
    store: MonitorStore,
    state_dir: Path,
    lock: threading.Lock,
    request_id: str,
    labels: list,
    event_time: float | None = None,
):
    if store.request_rows(request_id) is None:
        # The prediction was acknowledged, so it is in the log; it may just not be ingested yet.
        with lock:
            if store.request_rows(request_id) is None:
                store.ingest_state_dir(state_dir)
    return store.add_labels(request_id, labels, received_at=event_time)


def parser(prog: str = "python -m platform_components.monitoring.service") -> argparse.ArgumentParser:
    """The service's own flags (the loop's service adds its own: ``loop/service.py``)."""
    parsed = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parsed.add_argument("--state-dir", type=Path, required=True, help="local state dir, e.g. .mlops")
    parsed.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parsed.add_argument("--port", type=int, required=True, help="HTTP port")
    parsed.add_argument("--log-level", default="info", help="uvicorn log level")
    parsed.add_argument(
        "--store-url",
        default=None,
        help="the monitor store: sqlite:///path or postgresql://user:password@host:5432/monitor; default "
        f"${STORE_URL_ENV}, else <state-dir>/monitoring/monitor.sqlite (prefer the variable for a URL with "
        "a password: a flag shows in the process list)",
    )
    return parsed


def open_service_store(arguments: argparse.Namespace) -> MonitorStore:
    """The store ``--store-url`` (or ``$MLOPS_MONITOR_STORE_URL``) names, else the state dir's SQLite file.

    Raises:
        ConfigError: the URL is malformed or the database cannot be reached (named, password hidden).
    """
    import os

    url = arguments.store_url or os.environ.get(STORE_URL_ENV) or None
    return store_for(Path(arguments.state_dir), url)


def serve(app: Any, arguments: argparse.Namespace) -> None:
    """Run ``app`` with uvicorn on the parsed ``--host``/``--port``."""
    import uvicorn

    uvicorn.run(
        app, host=arguments.host, port=arguments.port, log_level=arguments.log_level, access_log=False
    )


def main(argv: list[str] | None = None) -> None:
    """Start the service (see the module docstring)."""
    parsed = parser()
    arguments = parsed.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        store = open_service_store(arguments)
    except ConfigError as error:
        parsed.exit(2, f"error: {error}\n")
    serve(create_app(arguments.state_dir, store=store), arguments)


if __name__ == "__main__":
    main()
