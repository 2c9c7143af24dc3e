"""Process-wide state of the serving runtime: the open prediction logs and the Prometheus metrics.

This lives outside ``runtime.py`` on purpose: MLServer re-imports (``importlib.reload``) a model's
implementation module on every load, which would reset module globals there, opening a second writer
on the same prediction log and registering the metrics twice.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Histogram

from platform_components.serving.predlog import PredictionLog

# Per process, so buckets cost nothing per model: the per-model latency is Seldon's
# (seldon_model_infer_seconds_total / seldon_model_infer_total) and MLServer's own
# model_infer_request_duration summary (count and sum per model).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

#: The only label of the per-model series. A version label would add a model's series again at every
#: rollout, and status/route labels would multiply them; the version served is in the registry and in the
#: monitor's gauges. ``tests/monitoring/test_series_per_model.py`` fails when a label is added.
MODEL_LABEL = "model"

_metrics_lock = threading.Lock()
_metrics: dict[str, Any] = {}


def serving_metrics() -> dict[str, Any]:
    """The runtime's Prometheus metrics, created once per process (lazily: nothing runs at import).

    Four counters per served model (``{model}``) and one latency histogram for the whole process: the
    cardinality budget of issue 10 is 25 series per model over all of our exporters.
    """
    with _metrics_lock:
        if not _metrics:
            labels = [MODEL_LABEL]
            _metrics["requests"] = Counter(
                "mlops_serving_requests_total", "Inference requests answered successfully.", labels
            )
            _metrics["client_errors"] = Counter(
                "mlops_serving_client_errors_total", "Requests rejected with a 4xx (validation).", labels
            )
            _metrics["server_errors"] = Counter(
                "mlops_serving_server_errors_total", "Requests that failed inside the model (5xx).", labels
            )
            _metrics["log_failures"] = Counter(
                "mlops_serving_prediction_log_failures_total",
                "Requests failed because the prediction log could not be written (never silently dropped).",
                labels,
            )
            _metrics["latency"] = Histogram(
                "mlops_serving_request_duration_seconds",
                "Validation + prediction + durable log, per request, all models of the process.",
                buckets=LATENCY_BUCKETS,
            )
        return _metrics


# model -> loaded runtime instances using its label. A version switch briefly holds two instances of one
# model (the new one acquires before the old one releases), so the counters carry on across versions;
# a model's series go away when its last instance unloads.
_label_users: dict[str, int] = {}


def acquire_metric_labels(model: str) -> dict[str, Any]:
    """The metrics for ``model``: its counters' children and the process's histogram; counted, so the
    last release drops the model's series."""
    metrics = serving_metrics()
    with _metrics_lock:
        _label_users[model] = _label_users.get(model, 0) + 1
        return {key: metric if key == "latency" else metric.labels(model) for key, metric in metrics.items()}


def release_metric_labels(model: str) -> None:
    """Drop ``model``'s series once no loaded instance uses them."""
    metrics = serving_metrics()
    with _metrics_lock:
        users = _label_users.get(model, 0) - 1
        if users > 0:
            _label_users[model] = users
            return
        _label_users.pop(model, None)
        for key, metric in metrics.items():
            if key == "latency":
                continue
            with contextlib.suppress(KeyError):  # never observed: nothing to remove
                metric.remove(model)


# One PredictionLog per directory per process: a reload creates a second runtime instance for the same
# model while the first still serves, and both must share the writer (and its idempotency index).
_logs_lock = threading.Lock()
_open_logs: dict[Path, tuple[PredictionLog, int]] = {}
# Directory -> its shipper (only when a monitor URL was configured): one per log, like the writer.
_shippers: dict[Path, Any] = {}


LOG_LIMIT_ENV = "MLOPS_PREDICTION_LOG_LIMIT_BYTES"


def _log_limits() -> dict[str, int]:
    """Sizes of a shipped log from ``MLOPS_PREDICTION_LOG_LIMIT_BYTES`` (the disk bound; default 2 GiB).

    Shipped segments go above half the bound; unshipped ones only above the bound itself.

    Raises:
        ConfigError: the variable is not an integer of at least 16 MiB.
    """
    from platform_components.errors import ConfigError
    from platform_components.serving.predlog import DEFAULT_RETENTION_BYTES, DEFAULT_SEGMENT_BYTES

    raw = os.environ.get(LOG_LIMIT_ENV)
    if raw is None:
        return {}
    if not raw.isdigit() or int(raw) < 16 * 1024 * 1024:
        raise ConfigError(f"{LOG_LIMIT_ENV}: {raw!r} is not a byte count of at least 16777216 (16 MiB)")
    limit = int(raw)
    retention = min(limit // 2, DEFAULT_RETENTION_BYTES)
    return {
        "segment_bytes": min(DEFAULT_SEGMENT_BYTES, retention // 4),
        "retention_bytes": retention,
        "hard_limit_bytes": limit,
    }


def acquire_prediction_log(directory: Path, monitor_url: str | None = None) -> PredictionLog:
    """The process-wide log for ``directory`` (opened on first use, reference-counted).

    With ``monitor_url`` (the cluster: the monitor does not share this disk) the log keeps unshipped
    segments through retention and a background shipper posts it to the monitor; see
    ``platform_components.serving.shipper``.

    Raises:
        ConfigError: ``monitor_url`` is not an http(s) URL.
    """
    key = Path(directory).resolve()
    with _logs_lock:
        if key in _open_logs:
            log, users = _open_logs[key]
            _open_logs[key] = (log, users + 1)
            return log
        if monitor_url:
            from platform_components.serving.shipper import PredictionShipper, ShippedPredictionLog

            log = ShippedPredictionLog(key, **_log_limits())
            try:
                shipper = PredictionShipper(key, monitor_url)
            except BaseException:
                log.close()
                raise
            shipper.start()
            _shippers[key] = shipper
        else:
            log = PredictionLog(key)
        _open_logs[key] = (log, 1)
        return log


def release_prediction_log(directory: Path) -> None:
    """Drop one reference; close the log when the last user is gone."""
    key = Path(directory).resolve()
    with _logs_lock:
        if key not in _open_logs:
            return
        log, users = _open_logs[key]
        if users <= 1:
            del _open_logs[key]
            shipper = _shippers.pop(key, None)
            if shipper is not None:
                shipper.stop()  # the position is persisted: the next process resumes from it
            log.close()
        else:
            _open_logs[key] = (log, users - 1)
