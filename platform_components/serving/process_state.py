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

# Few buckets on purpose: <= ~15 series per model version (Prometheus cardinality budget).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)

_metrics_lock = threading.Lock()
_metrics: dict[str, Any] = {}


def serving_metrics() -> dict[str, Any]:
    """The runtime's Prometheus metrics, created once per process (lazily: nothing runs at import)."""
    with _metrics_lock:
        if not _metrics:
            labels = ["model", "version"]
            _metrics["requests"] = Counter(
                "mlops_serving_requests_total", "Inference requests answered successfully.", labels
            )
            _metrics["rows"] = Counter("mlops_serving_rows_total", "Rows predicted.", labels)
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
                "Validation + prediction + durable log, per request.",
                labels,
                buckets=LATENCY_BUCKETS,
            )
        return _metrics


# (model, version) -> loaded runtime instances using those labels. A reload briefly holds two instances
# of one model; an old version's series go away when its last instance unloads, so a model keeps
# <= ~15 series however often it rolls over.
_label_users: dict[tuple[str, str], int] = {}


def acquire_metric_labels(model: str, version: str) -> dict[str, Any]:
    """The metrics' children for (model, version); counted, so the last release drops them."""
    metrics = serving_metrics()
    with _metrics_lock:
        _label_users[(model, version)] = _label_users.get((model, version), 0) + 1
        return {key: metric.labels(model, version) for key, metric in metrics.items()}


def release_metric_labels(model: str, version: str) -> None:
    """Drop (model, version)'s series once no loaded instance uses them."""
    metrics = serving_metrics()
    with _metrics_lock:
        users = _label_users.get((model, version), 0) - 1
        if users > 0:
            _label_users[(model, version)] = users
            return
        _label_users.pop((model, version), None)
        for metric in metrics.values():
            with contextlib.suppress(KeyError):  # never observed: nothing to remove
                metric.remove(model, version)


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
