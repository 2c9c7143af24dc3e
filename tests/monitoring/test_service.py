"""The monitor service as a real uvicorn process: health, feedback rules, metrics with bounded cardinality."""

from __future__ import annotations

import json
import math
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
from platform_components.monitoring.estimate import METADATA_KEY, fit_estimator
from platform_components.monitoring.feedback import FeedbackClient
from platform_components.monitoring.monitor import run_check
from platform_components.monitoring.profile import build_reference_profile
from platform_components.monitoring.service import service_command
from platform_components.monitoring.store import MonitorStore
from platform_components.serving.predlog import PredictionLog, PredictionRecord

MODELS = ("credit-default", "churn", "fraud")
# The fixture's predictions sit in one aligned 10,000 s window of the recent past (checks use now=CHECKED).
START = (math.floor(time.time() / 10_000) - 1) * 10_000 + 100.0
CHECKED = START + 1_000


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
    for model in MODELS:
        with PredictionLog(state_dir / "predictions" / model) as log:
            for record in predictions(model, 150, START, rng):
                log.append(record)
    port = find_free_port()
    argv = service_command(state_dir=state_dir, host="127.0.0.1", port=port)
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


def test_metrics_have_at_most_15_series_per_model(service) -> None:
    base_url, state_dir = service
    frame = pd.DataFrame(
        {
            "income": np.random.default_rng(1).normal(50, 10, 2_000),
            "age": np.random.default_rng(2).normal(40, 5, 2_000),
            "purpose": ["car", "house"] * 1_000,
        }
    )
    scores = np.random.default_rng(3).uniform(0, 1, 2_000)
    labels = (np.random.default_rng(5).random(2_000) < scores).astype(int)
    profile = build_reference_profile(
        frame,
        numeric=["income", "age"],
        categorical=["purpose"],
        prediction_scores=scores,
        metadata={METADATA_KEY: fit_estimator(labels, scores).to_dict()},
    )
    with MonitorStore.for_state_dir(state_dir) as store:
        store.ingest_state_dir(state_dir)
        for model in MODELS:
            for _ in range(3):  # several checks must not multiply the series
                run_check(store, model, "1", profile, window_seconds=10_000, now=CHECKED)
        store.ingest(predictions("credit-default", 60, START + 200, np.random.default_rng(4), version="2"))
        # a new version replaces the old
        run_check(store, "credit-default", "2", profile, window_seconds=10_000, now=CHECKED)
    text = httpx.get(f"{base_url}/metrics").text
    series = [line for line in text.splitlines() if line and not line.startswith("#")]
    per_model = Counter(line.split('model="')[1].split('"')[0] for line in series)
    assert set(per_model) == set(MODELS)
    assert max(per_model.values()) <= 15, per_model
    assert all(name.startswith("mlops_monitor_") for name in (line.split("{")[0] for line in series))
    assert 'mlops_monitor_drifted_features{model="credit-default",version="2"}' in text
    assert 'version="1"' not in "\n".join(line for line in series if 'model="credit-default"' in line)
    assert 'mlops_monitor_feedback_labels_total{model="credit-default"} 4.0' in text
    for name in ESTIMATE_GAUGES:  # the latest window's estimate, before any of its labels
        assert f'{name}{{model="churn",version="1"}}' in text, name


ESTIMATE_GAUGES = ("mlops_monitor_estimated_roc_auc", "mlops_monitor_estimated_accuracy")


def test_labels_carry_their_event_time_and_a_bad_one_is_refused_naming_it(service) -> None:
    base_url, state_dir = service
    with FeedbackClient(base_url) as client:
        assert client.submit("churn-1-0", 1, event_time=START + 5_000) == 1
        assert client.submit("churn-1-3", 0) == 1  # no event time: the service's clock
        for bad, problem in (
            (time.time() + 3_600, "ahead of the service's clock"),
            ((START + 5_000) * 1_000, "ahead of the service's clock"),  # milliseconds
        ):
            with pytest.raises(InvalidInput, match=f"event_time: .* {problem}"):
                client.submit("churn-1-6", 1, event_time=bad)
        with pytest.raises(
            InvalidInput, match=r"event_time: .* is before the time of prediction 'churn-1-6'"
        ):
            client.submit("churn-1-6", 1, event_time=START - 1)
    for bad in ("yesterday", True, None, float("nan"), float("inf")):
        response = httpx.post(
            f"{base_url}/v2/feedback",
            content=json.dumps({"request_id": "churn-1-6", "label": 1, "event_time": bad}),
        )
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["detail"].startswith("event_time: ") and "not a finite number" in response.text
    with MonitorStore.for_state_dir(state_dir) as store:
        received = dict(
            store._query(  # the label's event time as stored, read back directly
                "SELECT request_id, received_at FROM labels WHERE request_id LIKE 'churn-%'"
            )
        )
        assert set(received) == {"churn-1-0", "churn-1-3"}  # nothing of the refused submissions
        assert received["churn-1-0"] == START + 5_000
        assert abs(received["churn-1-3"] - time.time()) < 60
        assert store.event_clock("churn") == received["churn-1-3"]
