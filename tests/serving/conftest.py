"""Real processes for the serving tests: an MLflow server, a registered classifier, our MLServer wrapper.

Every process binds 127.0.0.1 on a port from ``find_free_port()`` and is stopped with its children (by
PID, through psutil) even when a test fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from processes import find_free_port, stop_process_tree

from platform_components.serving import launch

MODEL_NAME = "credit-default-test"
VENV_BIN = Path(sys.executable).parent


def make_frame(rows: int, seed: int) -> pd.DataFrame:
    """Loan-like data with numeric and categorical columns and a binary ``default`` label."""
    generator = np.random.default_rng(seed)
    income = generator.lognormal(10.5, 0.4, rows)
    age = generator.integers(21, 70, rows).astype("int64")
    debt_ratio = generator.beta(2, 5, rows)
    purpose = generator.choice(["car", "home", "education", "business"], rows)
    score = -1.5 + 3.0 * debt_ratio - 0.00001 * (income - 36000) - 0.01 * (age - 40) + (purpose == "business")
    default = (generator.random(rows) < 1 / (1 + np.exp(-score))).astype("int64")
    return pd.DataFrame(
        {"income": income, "age": age, "debt_ratio": debt_ratio, "purpose": purpose, "default": default}
    )


@dataclass
class MlflowServer:
    tracking_uri: str
    process: subprocess.Popen
    log_path: Path


@dataclass
class ServingServer:
    url: str
    metrics_url: str
    repo_dir: Path
    log_dir: Path
    process: subprocess.Popen
    log_path: Path
    grpc_target: str
    admin_token: str


def _wait_http(url: str, process: subprocess.Popen, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} process exited early:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not healthy after {timeout} s:\n{log_path.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    root = tmp_path_factory.mktemp("mlflow")
    port = find_free_port()
    log_path = root / "mlflow.log"
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    command = [
        str(VENV_BIN / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--serve-artifacts",
        "--workers",
        "1",
    ]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=root)
    try:
        _wait_http(f"http://127.0.0.1:{port}/health", process, log_path, timeout=90)
        yield MlflowServer(f"http://127.0.0.1:{port}", process, log_path)
    finally:
        stop_process_tree(process)


@pytest.fixture(scope="session")
def registered_model(mlflow_server: MlflowServer) -> dict[str, str]:
    """Two registered versions of a small classifier; ``champion`` points at version 1.

    Returns:
        Map version -> model URI (``models:/<name>/<version>``).
    """
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server.tracking_uri)
    try:
        frame = make_frame(600, seed=1)
        features = frame.drop(columns=["default"])
        versions = {}
        for regularisation in (1.0, 0.1):
            model = Pipeline(
                [
                    (
                        "prepare",
                        ColumnTransformer(
                            [
                                ("numeric", StandardScaler(), ["income", "age", "debt_ratio"]),
                                ("categorical", OneHotEncoder(handle_unknown="ignore"), ["purpose"]),
                            ]
                        ),
                    ),
                    ("classify", LogisticRegression(C=regularisation, max_iter=500)),
                ]
            ).fit(features, frame["default"])
            signature = infer_signature(features, model.predict_proba(features))
            with mlflow.start_run():
                info = mlflow.sklearn.log_model(
                    model,
                    name="model",
                    signature=signature,
                    input_example=features.head(3),
                    pyfunc_predict_fn="predict_proba",
                    serialization_format="skops",
                    pip_requirements=["scikit-learn", "skops", "pandas", "numpy"],
                )
            version = mlflow.register_model(info.model_uri, MODEL_NAME)
            versions[str(version.version)] = f"models:/{MODEL_NAME}/{version.version}"
        mlflow.MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", "1")
        return versions
    finally:
        mlflow.set_tracking_uri(previous_uri)


def start_serving(
    root: Path,
    tracking_uri: str,
    model_uri: str,
    version: str,
    *,
    max_body_bytes: int = 1024 * 1024,
    prediction_log: bool = True,
    enable_metrics: bool = True,
) -> ServingServer:
    """Write a repository for ``model_uri`` and start our server on free ports (the caller stops it)."""
    repo_dir = root / "repo"
    log_dir = root / "predictions" / MODEL_NAME
    http_port, grpc_port, metrics_port = find_free_port(), find_free_port(), find_free_port()
    while len({http_port, grpc_port, metrics_port}) < 3:
        grpc_port, metrics_port = find_free_port(), find_free_port()
    token_file = root / "serving-admin.token"
    admin_token = launch.create_admin_token(token_file)
    launch.write_server_settings(
        repo_dir,
        host="127.0.0.1",
        http_port=http_port,
        grpc_port=grpc_port,
        metrics_port=metrics_port,
        max_body_bytes=max_body_bytes,
        admin_token_file=token_file,
    )
    path = launch.write_model_settings(
        repo_dir,
        name=MODEL_NAME,
        model_uri=model_uri,
        version=version,
        prediction_log_dir=log_dir if prediction_log else None,
    )
    if not enable_metrics:
        import json

        content = json.loads(path.read_text())
        content["parameters"]["extra"]["enable_metrics"] = False
        path.write_text(json.dumps(content))
    log_path = root / "mlserver.log"
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_uri)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            launch.server_command(repo_dir), stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=root
        )
    url = f"http://127.0.0.1:{http_port}"
    try:
        _wait_http(f"{url}/v2/models/{MODEL_NAME}/ready", process, log_path, timeout=90)
    except BaseException:
        stop_process_tree(process)
        raise
    return ServingServer(
        url,
        f"http://127.0.0.1:{metrics_port}/metrics",
        repo_dir,
        log_dir,
        process,
        log_path,
        grpc_target=f"127.0.0.1:{grpc_port}",
        admin_token=admin_token,
    )


@pytest.fixture(scope="session")
def serving_server(
    tmp_path_factory: pytest.TempPathFactory, mlflow_server: MlflowServer, registered_model: dict[str, str]
) -> Iterator[ServingServer]:
    root = tmp_path_factory.mktemp("serving")
    server = start_serving(root, mlflow_server.tracking_uri, registered_model["1"], "1")
    try:
        yield server
    finally:
        stop_process_tree(server.process)
