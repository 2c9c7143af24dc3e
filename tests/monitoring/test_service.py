"""The monitor service as a real uvicorn process: health, feedback rules, metrics with bounded cardinality."""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter

import httpx
import numpy as np
import pandas as pd
import pytest
from processes import find_free_port, stop_process_tree, wait_healthy

from platform_components.monitoring.errors import InvalidInput, LabelConflict, UnknownRequest
from platform_components.monitoring.feedback import FeedbackClient
from platform_components.monitoring.monitor import run_check
from platform_components.monitoring.profile import build_reference_profile
from platform_components.monitoring.service import service_command
from platform_components.monitoring.store import MonitorStore
from platform_components.serving.predlog import PredictionLog, PredictionRecord

MODELS = ("credit-default", "churn", "fraud")


def predictions(model: str, count: int, start: float, rng: np.random.Generator, version: str = "1"):
    for index in range(count):
        rows = 1 + index % 3
        yield PredictionRecord(
            request_id=f"{model}-{version}-{index}",
            model=model,
            version=version,
            timestamp=start + index,
            inputs={
                "income": rng.normal(50, 10, rows).tolist(),
                "age": rng.normal(40, 5, rows).tolist(),
                "purpose": rng.choice(["car", "house"], rows).tolist(),
            },
            outputs={"predict_proba": [[1 - p, p] for p in rng.uniform(0, 1, rows)]},
        )


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    state_dir = tmp_path_factory.mktemp("state")
    rng = np.random.default_rng(0)
    now = time.time()
    for model in MODELS:
        with PredictionLog(state_dir / "predictions" / model) as log:
            for record in predictions(model, 150, now - 1_000, rng):
                log.append(record)
    port = find_free_port()
    argv = service_command(
        state_dir=state_dir, host="127.0.0.1", port=port, tracking_uri="http://127.0.0.1:9"
    )
    log_file = (state_dir / "service.log").open("wb")
    process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ})
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{base_url}/health", process, state_dir / "service.log", seconds=60)
        yield base_url, state_dir
    finally:
        stop_process_tree(process)
        log_file.close()


def test_health(service) -> None:
    base_url, _ = service
    assert httpx.get(f"{base_url}/health").json() == {"status": "ok"}


def test_feedback_accepts_labels_idempotently_and_ingests_on_demand(service) -> None:
    base_url, _ = service
    with FeedbackClient(base_url) as client:
        # Nothing was ingested before this call: the service reads the prediction log on an unknown id.
        assert client.submit("credit-default-1-2", [1, 0, 1]) == 3
        assert client.submit("credit-default-1-2", [1, 0, 1]) == 3  # replay: no-op
        assert client.submit("credit-default-1-0", 1) == 1  # one-row request, scalar label
        with pytest.raises(LabelConflict, match=r"labels\[1\].*already has label 0, got 1"):
            client.submit("credit-default-1-2", [1, 1, 1])
        with pytest.raises(UnknownRequest, match="request_id: 'missing' is not a logged prediction"):
            client.submit("missing", [1])
        with pytest.raises(InvalidInput, match=r"has 3 row\(s\) but 1 label"):
            client.submit("credit-default-1-5", [1])
    response = httpx.post(
        f"{base_url}/v2/feedback", json={"request_id": "credit-default-1-3", "labels": [{}]}
    )
    assert response.status_code == 422 and "labels[0]" in response.json()["detail"]
    assert httpx.post(f"{base_url}/v2/feedback", content=b"{nope").status_code == 400
    response = httpx.post(f"{base_url}/v2/feedback", json={"labels": [1]})
    assert response.status_code == 422 and response.json()["detail"].startswith("request_id:")
    response = httpx.post(f"{base_url}/v2/feedback", json={"request_id": "credit-default-1-3", "lables": [1]})
    assert response.status_code == 422 and response.json()["detail"].startswith("lables: unknown field")
    assert httpx.post(f"{base_url}/v2/feedback", content=b"x" * (2 * 1024 * 1024)).status_code == 413
    # Chunked (no Content-Length): refused while streaming, not after buffering it all.
    chunks = (b"x" * 65_536 for _ in range(40))
    assert httpx.post(f"{base_url}/v2/feedback", content=chunks).status_code == 413
    # Nothing of the rejected submissions was stored.
    with MonitorStore.for_state_dir(service[1]) as store:
        assert store.label_count("credit-default") == 4


def test_metrics_have_at_most_25_series_per_model(service) -> None:
    base_url, state_dir = service
    frame = pd.DataFrame(
        {
            "income": np.random.default_rng(1).normal(50, 10, 2_000),
            "age": np.random.default_rng(2).normal(40, 5, 2_000),
            "purpose": ["car", "house"] * 1_000,
        }
    )
    profile = build_reference_profile(
        frame,
        numeric=["income", "age"],
        categorical=["purpose"],
        prediction_scores=np.random.default_rng(3).uniform(0, 1, 2_000),
    )
    with MonitorStore.for_state_dir(state_dir) as store:
        store.ingest_state_dir(state_dir)
        for model in MODELS:
            for _ in range(3):  # several checks must not multiply the series
                run_check(store, model, "1", profile, window_seconds=10_000)
        store.ingest(
            predictions("credit-default", 60, time.time() - 100, np.random.default_rng(4), version="2")
        )
        run_check(
            store, "credit-default", "2", profile, window_seconds=10_000
        )  # a new version replaces the old
    text = httpx.get(f"{base_url}/metrics").text
    series = [line for line in text.splitlines() if line and not line.startswith("#")]
    per_model = Counter(line.split('model="')[1].split('"')[0] for line in series)
    assert set(per_model) == set(MODELS)
    assert max(per_model.values()) <= 25, per_model
    assert all(name.startswith("mlops_monitor_") for name in (line.split("{")[0] for line in series))
    assert 'mlops_monitor_drift_share{model="credit-default",version="2"}' in text
    assert 'version="1"' not in "\n".join(line for line in series if 'model="credit-default"' in line)
    assert 'mlops_monitor_feedback_labels_total{model="credit-default"} 4.0' in text
