"""Cardinality budget, fast: the series our exporters add per model, 1 model against 20, in this process.

Each model goes through everything that creates series: it is loaded by our runtime in MLServer's
registry and data plane (the real classes, in process), serves, fails with a 4xx (validation) and a 5xx
(the model's own error), has its prediction log read by the monitor application (its real FastAPI app),
gets labels through ``POST /v2/feedback``, is checked on a drifted window (an alarm), gets a retrain
decision recorded, and is retrained: version 2 is swapped in and checked with labels too. A client also
asks for made-up models and versions. Per model, (series at 20 - series at 1) / 19 must be at most 25,
and every series of ours must carry exactly the labels ``cardinality.allowed_labels`` lists (a version
label put back on a serving counter fails here even when the count would not show it).

The real processes (our server, the loop's monitor) are counted by ``test_cardinality.py`` (slow).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from processes import find_free_port
from upstream_facts import fact

from monitoring.cardinality import (
    BUDGET_PER_MODEL,
    MANY,
    SCORER_FILE,
    by_exporter,
    features,
    labels_for,
    parse,
    per_model,
    reference_profile,
    table,
    unexpected_labels,
)

DAY = 86400.0
# Two aligned days of the recent past: version 1's window, then version 2's (event times, not the clock).
FIRST_DAY = (math.floor(time.time() / DAY) - 3) * DAY
REQUESTS, ROWS = 2, 30  # 60 rows, all labelled: over the check's min_rows and min_labels (50)


@pytest.fixture(scope="module")
def created_series_off() -> Iterator[None]:
    """As our server does (``serving/server.py``: ``disable_created_metrics``), for this module only."""
    import prometheus_client

    prometheus_client.disable_created_metrics()
    try:
        yield
    finally:
        prometheus_client.enable_created_metrics()


@pytest.fixture(scope="module")
def scorer_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    frame = features(5, seed=0)
    path = tmp_path_factory.mktemp("scorer") / "model"
    mlflow.pyfunc.save_model(
        str(path),
        python_model=str(SCORER_FILE),
        signature=infer_signature(frame, np.zeros((5, 2))),
        pip_requirements=["mlflow", "numpy", "pandas"],
    )
    return path


@pytest.fixture(scope="module")
def profile() -> Any:
    return reference_profile()


class Platform:
    """Our serving stack and the monitor application in this process, driven model by model."""

    def __init__(self, root: Path, scorer: Path, profile: Any) -> None:
        from fastapi.testclient import TestClient
        from mlserver.handlers import DataPlane
        from mlserver.settings import Settings

        from platform_components.monitoring.service import create_app
        from platform_components.monitoring.store import MonitorStore
        from platform_components.serving.server import KnownModelsDataPlane, SwapOnReadyMultiModelRegistry

        self.root, self.scorer, self.profile = root, scorer, profile
        self.loop = asyncio.new_event_loop()
        self.registry = SwapOnReadyMultiModelRegistry(
            on_model_load=[], on_model_reload=[], on_model_unload=[]
        )
        # MLServer registers its data plane's counters once per process: one plane (and Platform) per module.
        self.plane = KnownModelsDataPlane.adopt(DataPlane(settings=Settings(), model_registry=self.registry))
        # Shippers start (as in the cluster) and retry against a port nobody listens on: the monitor
        # reads the logs from the state dir here, as on the local target.
        self.monitor_url = f"http://127.0.0.1:{find_free_port()}"
        self.store = MonitorStore.for_state_dir(root)
        self.client = TestClient(create_app(root, store=self.store))
        self.client.__enter__()

    def close(self) -> None:
        for name in list(self.registry._models):
            self.loop.run_until_complete(self.registry.unload(name))
        self.client.__exit__(None, None, None)
        self.loop.close()

    def _load(self, name: str, version: str) -> None:
        from mlserver.settings import ModelSettings

        from platform_components.serving import launch

        path = launch.write_model_settings(
            self.root / "repo",
            name=name,
            model_uri=str(self.scorer),
            version=version,
            prediction_log_dir=self.root / "predictions" / name,
        )
        content = json.loads(path.read_text())
        content["parameters"]["extra"]["monitor_url"] = self.monitor_url
        path.write_text(json.dumps(content))
        self.loop.run_until_complete(self.registry.load(ModelSettings.parse_file(str(path))))

    def _infer(self, name: str, frame: pd.DataFrame, request_id: str, at: float, version: str | None = None):
        from mlserver.types import InferenceRequest

        from platform_components.serving.client import encode_request

        payload = InferenceRequest.model_validate(encode_request(frame, request_id, at))
        return self.loop.run_until_complete(self.plane.infer(payload, name, version))

    def _serve_and_label(self, name: str, version: str, day: float, shift: float, seed: int) -> None:
        for index in range(REQUESTS):
            frame = features(ROWS, seed + index, shift=shift)
            request_id = f"{name}-v{version}-{index}"
            self._infer(name, frame, request_id, day + 600.0 * (index + 1))
            labels = labels_for(frame, seed + 100 + index)
            answer = self.client.post("/v2/feedback", json={"request_id": request_id, "labels": labels})
            assert answer.status_code == 200, answer.text

    def exercise(self, name: str, seed: int) -> None:
        """Everything that creates series for one model, in the order the platform does it."""
        from mlserver.errors import MLServerError, ModelNotFound

        from platform_components.monitoring.monitor import run_check

        self._load(name, "1")
        self._serve_and_label(name, "1", FIRST_DAY, shift=0.35, seed=seed)  # served, drifted, labelled
        # A 4xx: a column missing. (MLServer reloads the runtime's module per load: match the base class.)
        with pytest.raises(MLServerError, match="missing input") as client_error:
            self._infer(name, features(2, seed).drop(columns=["age"]), f"{name}-bad", FIRST_DAY + 60)
        assert client_error.value.status_code == 422
        with pytest.raises(Exception, match="income must not be negative"):  # a 5xx: the model fails
            self._infer(name, features(2, seed, negative_income=True), f"{name}-fails", FIRST_DAY + 60)
        for made_up, version in ((f"{name}-made-up", None), (name, "99")):
            with pytest.raises(ModelNotFound):
                self._infer(made_up, features(1, seed), f"{name}-nobody", FIRST_DAY + 60, version)
        alarm = run_check(self.store, name, "1", self.profile, window_seconds=DAY, now=FIRST_DAY + 3_600)
        assert alarm.drifted_features and alarm.performance and alarm.estimated, alarm
        self.store.record_decision(
            name, "1", action="retrain", reasons=["drift"], evidence={}, outcome="running"
        )
        self._load(name, "2")  # the retrain's version, swapped in
        second_day = FIRST_DAY + DAY
        self._serve_and_label(name, "2", second_day, shift=0.0, seed=seed + 50)
        latest = run_check(self.store, name, "2", self.profile, window_seconds=DAY, now=second_day + 3_600)
        assert latest.performance and latest.estimated, latest

    def series(self) -> list[Any]:
        from prometheus_client import REGISTRY, generate_latest

        serving = parse(generate_latest(REGISTRY).decode())
        monitor = parse(self.client.get("/metrics").text)
        return serving + monitor


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, scorer_path: Path, profile: Any, created_series_off: None
) -> Iterator[Platform]:
    """One per module: MLServer's data plane registers its counters once per process."""
    platform = Platform(tmp_path_factory.mktemp("platform"), scorer_path, profile)
    try:
        yield platform
    finally:
        platform.close()


def test_twenty_models_cost_at_most_25_series_each_over_our_exporters(platform: Platform) -> None:
    platform.exercise("model-00", seed=0)
    few = platform.series()
    for index in range(1, MANY):
        platform.exercise(f"model-{index:02d}", seed=index * 1_000)
    many = platform.series()

    rows = per_model(by_exporter(few), by_exporter(many))
    print("\n" + table(rows))
    assert rows["total"][2] <= BUDGET_PER_MODEL, table(rows)
    # Nothing of a made-up name or version reached /metrics.
    assert not [
        sample for sample in many if "made-up" in str(sample.labels) or ("version", "99") in sample.labels
    ]
    # Only the labels we mean: a version (or status, route) label added back fails here.
    assert not unexpected_labels(many), unexpected_labels(many)[:5]
    # Every served model has its series in each per-model exporter: nothing is budgeted by being absent.
    models = {f"model-{index:02d}" for index in range(MANY)}
    for exporter in ("serving runtime", "shipper", "MLServer data plane", "monitor"):
        assert rows[exporter][2] >= 1, (exporter, table(rows))
    assert models <= {sample.model for sample in many}


def test_mlserver_alone_would_label_a_made_up_model_name(platform: Platform) -> None:
    """The fact our check exists for: MLServer's own ``infer`` creates the name's series before its 404."""
    from mlserver.errors import ModelNotFound
    from mlserver.handlers import DataPlane
    from mlserver.types import InferenceRequest

    from platform_components.serving.client import encode_request

    invented = "invented-by-a-client"
    payload = InferenceRequest.model_validate(encode_request(features(1, seed=9), "nobody", FIRST_DAY))
    with pytest.raises(ModelNotFound):
        platform.loop.run_until_complete(DataPlane.infer(platform.plane, payload, invented))
    try:
        mentioned = invented in {sample.model for sample in platform.series()}
        assert mentioned is fact("mlserver.dataplane.labels_before_lookup")
        with pytest.raises(ModelNotFound):  # through our data plane: refused before any series
            platform.loop.run_until_complete(platform.plane.infer(payload, "invented-again"))
        assert "invented-again" not in {sample.model for sample in platform.series()}
    finally:
        for metric in (platform.plane._ModelInferRequestDuration, platform.plane._ModelInferRequestFailure):
            metric.remove(invented, None)


def test_mlserver_labels_rest_requests_by_route_not_by_model() -> None:
    """MLServer leaves starlette_exporter's defaults, which group paths by route template."""
    from starlette_exporter import PrometheusMiddleware

    defaults = inspect.signature(PrometheusMiddleware.__init__).parameters
    grouped = fact("mlserver.rest.metrics_paths_grouped")
    assert defaults["group_paths"].default is grouped["group_paths"]
    assert defaults["filter_unhandled_paths"].default is grouped["filter_unhandled_paths"]
