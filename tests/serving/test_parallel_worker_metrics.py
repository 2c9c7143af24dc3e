"""The runtime's metrics reach MLServer's metrics port with parallel workers (Seldon's ServerConfig sets 1).

With ``parallel_workers`` > 0 MLServer's main process sets ``PROMETHEUS_MULTIPROC_DIR`` and serves
``/metrics`` from a ``MultiProcessCollector`` over that folder (mlserver/metrics/prometheus.py, 1.7.1), while
models load in worker processes. Our metrics are created lazily, after that variable is set, so a worker's
counters are written to the folder and show on the port Prometheus scrapes (``server-metrics``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from upstream_facts import fact

REPO = Path(__file__).resolve().parents[2]

WORKER = textwrap.dedent(
    """
    from platform_components.serving.process_state import acquire_metric_labels
    counters = acquire_metric_labels("credit-default")
    counters["requests"].inc()
    counters["client_errors"].inc(2)
    counters["latency"].observe(0.02)
    """
)


def test_a_workers_counters_are_collected_by_the_main_process(tmp_path: Path) -> None:
    assert fact("seldon.serverconfig.mlserver_parallel_workers") >= 1
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", WORKER], env=env, check=True, timeout=60)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    text = generate_latest(registry).decode()
    assert 'mlops_serving_requests_total{model="credit-default"} 1.0' in text
    assert 'mlops_serving_client_errors_total{model="credit-default"} 2.0' in text
    assert "mlops_serving_request_duration_seconds_count 1.0" in text  # one histogram per process
