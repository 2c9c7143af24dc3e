"""Cardinality budget on the real processes (issue 10, item 5): our MLServer wrapper and the loop's monitor.

A real ``mlflow server`` holds 20 registered models (versions 1 and 2 of one scorer, with its reference
profile); one serving process (``serving.server``, started as ``tests/serving`` does) serves them with
``MLOPS_MONITOR_URL`` set, so each model's shipper posts its prediction log to the monitor; the monitor is
``python -m platform_components.loop.service`` with a models file of the 20, no KFP (a retrain decision
is recorded, as "no pipeline runner configured"). Each model serves drifted traffic, fails once with a 4xx
and once with a 5xx, is asked for under a made-up name and version (404), gets its labels, is checked and
alarmed by the loop, gets its retrain decision, and is then retrained: version 2 becomes champion, is
loaded in the serving process and checked with labels. ``/metrics`` of both processes are counted with
one model done and with all 20: per model, (series at 20 - series at 1) / 19 must be at most 25. The
table is printed (``pytest -s``).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from processes import find_free_port, stop_process_tree, wait_healthy
from serving.conftest import MODEL_NAME, MlflowServer, ServingServer, mlflow_server, start_serving

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

__all__ = ["mlflow_server"]  # the serving tests' session fixture, reused here

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DAY = 86400.0
FIRST_DAY = (math.floor(time.time() / DAY) - 3) * DAY  # version 1's window; version 2's is the next day
REQUESTS, ROWS = 2, 40
NAMES = [MODEL_NAME] + [f"{MODEL_NAME}-{index:02d}" for index in range(1, MANY)]
# Fast enough to decide on one window of a few rows; everything else is the product's default. The gate
# takes the smallest ``gate_rows`` allowed (20) and ``min_training_rows`` must be above it: 30 leaves 10 rows
# to train on out of the 40 labelled when the loop first sees the window big enough to alarm on.
POLICY = {"drift_windows_required": 1, "min_training_rows": 30, "gate_rows": 20, "min_labels": 50}
# The drift of version 1's traffic: ``debt_ratio`` moved by this much drifts in every model's window, and
# stays inside the training range (at most 5% outside it, ``max_out_of_range``); at 0.35 a tenth to a fifth
# of the rows fall outside, which the loop rightly takes as a data-quality incident and never retrains on.
DRIFT = 0.15
KFP_VARIABLES = ("KF_PIPELINES_ENDPOINT", "KF_PIPELINES_UI_ENDPOINT", "KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME")


@pytest.fixture(scope="module")
def registered(mlflow_server: MlflowServer) -> Iterator[str]:
    """Every name in ``NAMES`` registered with versions 1 and 2 of the scorer (``champion``: 1); its run
    carries the reference profile and a holdout metric, as ``log_model_for_platform`` leaves them."""
    import mlflow
    from mlflow.models import infer_signature

    from platform_components.monitoring.tracking import PROFILE_ARTIFACT

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server.tracking_uri)
    try:
        client = mlflow.MlflowClient()
        experiment = client.create_experiment("cardinality")
        frame = features(5, seed=0)
        with mlflow.start_run(experiment_id=experiment):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(SCORER_FILE),
                signature=infer_signature(frame, [[0.5, 0.5]] * 5),
                pip_requirements=["mlflow", "numpy", "pandas"],
            )
            mlflow.log_text(reference_profile().to_json(), PROFILE_ARTIFACT)
            mlflow.log_metric("holdout_roc_auc", 0.8)
        for name in NAMES:
            for _ in (1, 2):
                mlflow.register_model(info.model_uri, name)
            client.set_registered_model_alias(name, "champion", "1")
        yield mlflow_server.tracking_uri
    finally:
        mlflow.set_tracking_uri(previous)


@dataclass
class Monitor:
    url: str
    state_dir: Path
    process: subprocess.Popen
    log: Path


@pytest.fixture(scope="module")
def monitor(tmp_path_factory: pytest.TempPathFactory, registered: str) -> Iterator[Monitor]:
    """The cluster's monitor process: the loop's rounds every second over the 20 models' file."""
    import json

    root = tmp_path_factory.mktemp("monitor")
    models = [{"name": name, "registered_model": name, "policy": POLICY} for name in NAMES]
    (root / "models.json").write_text(json.dumps(models))
    port = find_free_port()
    argv = [sys.executable, "-m", "platform_components.loop.service", "--state-dir", str(root / "state")]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--tracking-uri", registered]
    argv += ["--check-interval", "1", "--models", str(root / "models.json"), "--log-level", "warning"]
    env = {key: value for key, value in os.environ.items() if key not in KFP_VARIABLES}
    env["PYTHONPATH"] = str(REPO)
    log = root / "monitor.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(f"{url}/health", process, log)
        yield Monitor(url, root / "state", process, log)
    finally:
        stop_process_tree(process)


@pytest.fixture(scope="module")
def serving(
    tmp_path_factory: pytest.TempPathFactory, registered: str, monitor: Monitor
) -> Iterator[ServingServer]:
    """Our serving process with the first model; its shippers post to the monitor (the cluster's path)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_MONITOR_URL", monitor.url)
        server = start_serving(tmp_path_factory.mktemp("serving"), registered, f"models:/{MODEL_NAME}/1", "1")
    try:
        yield server
    finally:
        stop_process_tree(server.process)


class Fleet:
    """Drives the models through the real processes, with waits on what the monitor has stored."""

    def __init__(self, serving: ServingServer, monitor: Monitor, tracking_uri: str) -> None:
        from platform_components.monitoring.store import MonitorStore

        self.serving, self.monitor, self.tracking_uri = serving, monitor, tracking_uri
        self.store = MonitorStore.for_state_dir(monitor.state_dir)

    def wait_for(self, what: str, found: Callable[[], Any], seconds: float = 120.0) -> Any:
        deadline = time.monotonic() + seconds
        while True:
            for process, log in ((self.monitor.process, self.monitor.log), (self.serving.process, None)):
                assert process.poll() is None, (log or self.serving.log_path).read_text()[-4000:]
            value = found()
            if value:
                return value
            assert time.monotonic() < deadline, f"{what}: not seen\n{self.monitor.log.read_text()[-4000:]}"
            time.sleep(0.3)

    def load(self, name: str, version: str) -> None:
        """What the deployer does: write the model's settings and load them through the admin API."""
        from platform_components.serving import launch

        launch.write_model_settings(
            self.serving.repo_dir,
            name=name,
            model_uri=f"models:/{name}/{version}",
            version=version,
            prediction_log_dir=self.serving.log_dir.parent / name,
        )
        launch.reload_model(self.serving.url, name, admin_token=self.serving.admin_token)

    def traffic(self, names: list[str], version: str, day: float, shift: float) -> None:
        """Each model's requests, one round of them at a time, each round labelled once the shipper has
        delivered it; the first version's traffic is drifted and fails once each way.

        Labelled before the next requests: the first request alone is under the check's ``min_rows``, so
        when the loop first sees a window big enough to alarm on, it already holds labelled rows to
        retrain on (else it records "waiting for rows" for that window instead of the retrain).
        """
        from platform_components.monitoring.feedback import FeedbackClient
        from platform_components.serving.client import InferenceClient

        for index in range(REQUESTS):
            sent: list[tuple[str, list[int]]] = []
            with InferenceClient(self.serving.url) as client:
                for number, name in enumerate(names):
                    frame = features(ROWS, seed=number * 100 + index + int(version) * 10, shift=shift)
                    request_id = f"{name}-v{version}-{index}"
                    client.infer(name, frame, request_id=request_id, event_time=day + 600.0 * (index + 1))
                    sent.append((request_id, labels_for(frame, seed=number * 100 + index)))
                    if version == "1" and index == 0:
                        self.errors(client, name, number, day)
            self.wait_for(
                f"{len(sent)} requests of version {version} shipped to the monitor",
                lambda sent=sent: all(self.store.request_rows(request_id) for request_id, _ in sent),
            )
            with FeedbackClient(self.monitor.url) as feedback:
                for request_id, labels in sent:
                    feedback.submit(request_id, labels, event_time=day + 3_600.0)

    def errors(self, client: Any, name: str, number: int, day: float) -> None:
        """A 4xx, a 5xx, a made-up model and a made-up version for ``name``."""
        from platform_components.serving.client import InferenceFailed

        with pytest.raises(InferenceFailed) as refused:  # a 4xx: a column missing
            client.infer(name, features(2, number).drop(columns=["age"]), event_time=day + 60)
        assert refused.value.status_code == 422
        with pytest.raises(InferenceFailed) as failed:  # a 5xx: the model's own error
            client.infer(name, features(2, number, negative_income=True), event_time=day + 60)
        # MLServer's own error answer (not Starlette's bare 500, after which uvicorn drops the connection
        # and this client's next request on it is reset): the model's error, and the connection kept.
        assert failed.value.status_code == 500 and "income must not be negative" in str(failed.value)
        with pytest.raises(InferenceFailed) as unknown:  # nobody serves that name
            client.infer(f"{name}-made-up", features(1, number))
        assert unknown.value.status_code == 404
        answer = httpx.post(
            f"{self.serving.url}/v2/models/{name}/versions/99/infer", json={"inputs": []}, timeout=10
        )
        assert answer.status_code == 404, answer.text

    def retrain_decided(self, name: str) -> bool:
        return any(row.action == "retrain" for row in self.store.decisions(name))

    def checked(self, name: str, version: str) -> bool:
        return any(
            result["labelled_rows"] == REQUESTS * ROWS and result.get("estimated")
            for result in self.store.results(name, version=version)
        )

    def run(self, names: list[str]) -> None:
        """Version 1 served, failed, labelled, alarmed, retrain decided; version 2 promoted, served and
        checked with labels."""
        from mlflow import MlflowClient

        for name in names:
            if name != MODEL_NAME:  # the first one is served from start-up
                self.load(name, "1")
        self.traffic(names, "1", FIRST_DAY, shift=DRIFT)
        for name in names:
            self.wait_for(
                f"{name}: a retrain decided on its drifted window", lambda n=name: self.retrain_decided(n)
            )
        registry = MlflowClient(tracking_uri=self.tracking_uri)
        for name in names:  # the retrain's version passed the gate: the alias moves and serving follows
            registry.set_registered_model_alias(name, "champion", "2")
            self.load(name, "2")
        self.traffic(names, "2", FIRST_DAY + DAY, shift=0.0)
        for name in names:
            self.wait_for(f"{name}: version 2 checked with labels", lambda n=name: self.checked(n, "2"))

    def series(self) -> list[Any]:
        serving = httpx.get(self.serving.metrics_url, timeout=30)
        monitor = httpx.get(f"{self.monitor.url}/metrics", timeout=30)
        assert serving.status_code == monitor.status_code == 200
        assert "_created" not in serving.text  # switched off by our server (it would double the counters)
        return parse(serving.text) + parse(monitor.text)


def test_each_model_costs_at_most_25_series_over_the_real_exporters(
    serving: ServingServer, monitor: Monitor, registered: str
) -> None:
    fleet = Fleet(serving, monitor, registered)
    try:
        fleet.run(NAMES[:1])
        few = fleet.series()
        fleet.run(NAMES[1:])
        many = fleet.series()
    finally:
        fleet.store.close()

    rows = per_model(by_exporter(few), by_exporter(many))
    print("\n" + table(rows))
    assert rows["total"][2] <= BUDGET_PER_MODEL, table(rows)
    assert not unexpected_labels(many), unexpected_labels(many)[:5]
    assert not [
        sample for sample in many if "made-up" in str(sample.labels) or ("version", "99") in sample.labels
    ]
    assert set(NAMES) <= {sample.model for sample in many}
    # MLServer's REST metrics are labelled by route template, never by the model in the URL.
    paths = {dict(sample.labels).get("path") for sample in many if sample.name.startswith("rest_server_")}
    assert paths and not [path for path in paths if path and MODEL_NAME in path], paths
