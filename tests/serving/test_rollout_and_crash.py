"""Slow end-to-end checks on real processes: version switch under traffic, SIGKILL under load."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections import Counter

import httpx
import psutil
import pytest

from platform_components.serving import launch
from platform_components.serving.client import InferenceClient
from platform_components.serving.predlog import read_records

from .conftest import MODEL_NAME, make_frame, start_serving, stop_process_tree

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


class Traffic:
    """Client threads sending one-row requests with unique ids until stopped; records every outcome."""

    def __init__(self, url: str, threads: int = 2) -> None:
        self.url = url
        self.frame = make_frame(1, seed=5).drop(columns=["default"])
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acknowledged: list[tuple[str, str | None]] = []  # (request id, version)
        self.failures: list[str] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with InferenceClient(self.url, timeout=10) as client:
            while not self.stop.is_set():
                request_id = str(uuid.uuid4())
                try:
                    result = client.infer(MODEL_NAME, self.frame, request_id=request_id)
                except Exception as error:  # noqa: BLE001 - every failure is recorded and asserted on
                    with self.lock:
                        self.failures.append(f"{type(error).__name__}: {error}")
                    if self.stop.is_set():
                        return
                    time.sleep(0.01)
                    continue
                with self.lock:
                    self.acknowledged.append((result.request_id, result.model_version))

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)

    def count(self) -> int:
        with self.lock:
            return len(self.acknowledged)

    def wait_for(self, more: int, timeout: float = 30) -> None:
        target = self.count() + more
        deadline = time.monotonic() + timeout
        while self.count() < target and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.count() >= target, f"traffic stalled at {self.count()} acknowledged requests"


def test_alias_switch_and_rollback_under_traffic_fail_no_request(tmp_path, mlflow_server, registered_model):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=mlflow_server.tracking_uri)
    server = start_serving(tmp_path, mlflow_server.tracking_uri, registered_model["1"], "1")
    try:
        with Traffic(server.url) as traffic:
            traffic.wait_for(20)
            for alias_target in ("2", "1"):  # move champion forward, then roll back
                client.set_registered_model_alias(MODEL_NAME, "champion", alias_target)
                version = client.get_model_version_by_alias(MODEL_NAME, "champion").version
                launch.write_model_settings(
                    server.repo_dir,
                    name=MODEL_NAME,
                    model_uri=f"models:/{MODEL_NAME}/{version}",
                    version=version,
                    prediction_log_dir=server.log_dir,
                )
                launch.reload_model(server.url, MODEL_NAME, timeout=60, admin_token=server.admin_token)
                # Each client thread may have one request answered by the old version still in flight.
                switched_at = traffic.count() + len(traffic.threads)
                traffic.wait_for(20 + len(traffic.threads))
                with traffic.lock:
                    after = {answered for _, answered in traffic.acknowledged[switched_at:]}
                assert after == {alias_target}
        assert traffic.failures == []
        versions = Counter(version for _, version in traffic.acknowledged)
        assert set(versions) == {"1", "2"}
        logged = {record.request_id: record.version for record in read_records(server.log_dir)}
        for request_id, version in traffic.acknowledged:
            assert logged[request_id] == version
        # No version label: a model keeps its four series however often it rolls over, counting on.
        ours = [
            line
            for line in httpx.get(server.metrics_url, timeout=10).text.splitlines()
            if line.startswith("mlops_serving_") and f'model="{MODEL_NAME}"' in line
        ]
        assert len(ours) == 4 and not [line for line in ours if "version=" in line], ours
    finally:
        stop_process_tree(server.process)
        client.set_registered_model_alias(MODEL_NAME, "champion", "1")


@pytest.mark.parametrize("kill_after", [200, 500])
def test_sigkill_under_load_loses_no_acknowledged_prediction(
    tmp_path, mlflow_server, registered_model, kill_after
):
    server = start_serving(tmp_path, mlflow_server.tracking_uri, registered_model["1"], "1")
    try:
        with Traffic(server.url, threads=3) as traffic:
            traffic.wait_for(kill_after)
            family = [psutil.Process(server.process.pid), *psutil.Process(server.process.pid).children(True)]
            for member in family:
                member.send_signal(signal.SIGKILL)
            server.process.wait(timeout=10)
            with traffic.lock:
                acknowledged = list(traffic.acknowledged)
        assert len(acknowledged) >= kill_after
        counts = Counter(record.request_id for record in read_records(server.log_dir))
        missing = [request_id for request_id, _ in acknowledged if counts[request_id] != 1]
        assert missing == [], f"{len(missing)} acknowledged predictions are not in the log exactly once"
        assert max(counts.values()) == 1

        # Restart on the same log (a torn tail is repaired) and replay acknowledged requests: stored once.
        restarted = start_serving(
            tmp_path / "restart", mlflow_server.tracking_uri, registered_model["1"], "1"
        )
        try:
            frame = make_frame(1, seed=5).drop(columns=["default"])
            launch.write_model_settings(
                restarted.repo_dir,
                name=MODEL_NAME,
                model_uri=registered_model["1"],
                version="1",
                prediction_log_dir=server.log_dir,
            )
            launch.reload_model(restarted.url, MODEL_NAME, admin_token=restarted.admin_token)
            with InferenceClient(restarted.url) as client:
                for request_id, _ in acknowledged[-5:]:
                    assert client.infer(MODEL_NAME, frame, request_id=request_id).request_id == request_id
                fresh = client.infer(MODEL_NAME, frame).request_id
            counts = Counter(record.request_id for record in read_records(server.log_dir))
            assert all(counts[request_id] == 1 for request_id, _ in acknowledged)
            assert counts[fresh] == 1
            assert httpx.get(f"{restarted.url}/v2/health/ready", timeout=5).status_code == 200
        finally:
            stop_process_tree(restarted.process)
    finally:
        if server.process.poll() is None:
            stop_process_tree(server.process)
