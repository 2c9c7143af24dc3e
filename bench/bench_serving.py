"""Serving latency, side by side in one run (issue 3 serving hop, issue 4 monitoring overhead).

Arms, one small sklearn classifier (numeric + categorical columns, pyfunc ``predict_proba``), one-row
requests from one closed-loop client over keep-alive HTTP:

- ``in-process``: ``pyfunc.predict`` on a one-row DataFrame, no HTTP (the floor);
- ``fastapi``: a bare FastAPI endpoint on uvicorn serving the same model, V2 JSON in and out;
- ``ours``: our MLServer wrapper, V2 path with validation + durable prediction log + metrics;
- ``ours-monitoring-off``: the same server process, a second model entry with log and metrics off;
- ``mlserver-stock``: the same server process, MLServer's stock ``mlserver_mlflow.MLflowRuntime``.

Arms are interleaved (each repetition runs every arm once, in a seeded random order), >= 5 repetitions,
medians of per-repetition p50/p95. Servers are pinned to one core and the client to the other
(``os.sched_setaffinity``).

Run: ``.venv/bin/python bench/bench_serving.py [--repetitions 7] [--requests 300]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL = "bench-model"
OFF_MODEL = "bench-model-off"
STOCK_MODEL = "bench-model-stock"


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def build_model(directory: Path) -> Path:
    """Train and save the small classifier as an MLflow model folder; return its path."""
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    generator = np.random.default_rng(0)
    rows = 2000
    frame = pd.DataFrame(
        {
            "income": generator.lognormal(10.5, 0.4, rows),
            "age": generator.integers(21, 70, rows).astype("int64"),
            "debt_ratio": generator.beta(2, 5, rows),
            "purpose": generator.choice(["car", "home", "education", "business"], rows),
        }
    )
    label = (frame["debt_ratio"] + generator.normal(0, 0.1, rows) > 0.3).astype(int)
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
            ("classify", LogisticRegression(max_iter=500)),
        ]
    ).fit(frame, label)
    path = directory / "model"
    mlflow.sklearn.save_model(
        model,
        str(path),
        signature=infer_signature(frame, model.predict_proba(frame)),
        input_example=frame.head(2),
        pyfunc_predict_fn="predict_proba",
        serialization_format="skops",
        pip_requirements=["scikit-learn", "skops"],
    )
    return path


FASTAPI_APP = """
import sys
import pandas as pd
import mlflow.pyfunc
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

model = mlflow.pyfunc.load_model(sys.argv[1])
app = FastAPI()

@app.post("/v2/models/{name}/infer")
async def infer(name: str, request: Request):
    body = await request.json()
    frame = pd.DataFrame({item["name"]: item["data"] for item in body["inputs"]})
    scores = model.predict(frame)
    return JSONResponse({"model_name": name, "id": body.get("id"), "outputs": [
        {"name": "output-1", "datatype": "FP64", "shape": list(scores.shape),
         "data": scores.ravel().tolist()}]})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def _pin(pid: int, core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        for process_id in [pid, *_children(pid)]:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(process_id, {core})


def _children(pid: int) -> list[int]:
    import psutil

    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _stop(process: subprocess.Popen) -> None:
    import psutil

    try:
        family = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for member in family:
        member.terminate()
    _, alive = psutil.wait_procs(family, timeout=10)
    for member in alive:
        member.kill()
    process.wait(timeout=10)


def _wait(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code in (200, 405):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not up after {timeout} s")


def start_servers(work: Path, model_path: Path) -> tuple[list[subprocess.Popen], str, str]:
    """Start the FastAPI baseline and our MLServer (three model entries); return processes and URLs."""
    from platform_components.serving import launch

    fastapi_port = _free_port()
    script = work / "fastapi_app.py"
    script.write_text(FASTAPI_APP)
    fastapi = subprocess.Popen(
        [sys.executable, str(script), str(model_path), str(fastapi_port)],
        stdout=(work / "fastapi.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    repo = work / "repo"
    ports = {_free_port() for _ in range(3)}
    while len(ports) < 3:
        ports.add(_free_port())
    http_port, grpc_port, metrics_port = sorted(ports)
    launch.write_server_settings(
        repo, host="127.0.0.1", http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port
    )
    uri = str(model_path)
    launch.write_model_settings(
        repo, name=MODEL, model_uri=uri, version="1", prediction_log_dir=work / "predictions" / MODEL
    )
    off = launch.write_model_settings(
        repo, name=OFF_MODEL, model_uri=uri, version="1", prediction_log_dir=None
    )
    settings = json.loads(off.read_text())
    settings["parameters"]["extra"]["enable_metrics"] = False
    off.write_text(json.dumps(settings))
    stock = repo / STOCK_MODEL / "model-settings.json"
    stock.parent.mkdir(parents=True, exist_ok=True)
    stock.write_text(
        json.dumps(
            {
                "name": STOCK_MODEL,
                "implementation": "mlserver_mlflow.MLflowRuntime",
                "parameters": {"uri": uri, "version": "1"},
            }
        )
    )
    ours = subprocess.Popen(
        launch.server_command(repo), stdout=(work / "mlserver.log").open("wb"), stderr=subprocess.STDOUT
    )
    ours_url = f"http://127.0.0.1:{http_port}"
    fastapi_url = f"http://127.0.0.1:{fastapi_port}"
    try:
        _wait(f"{fastapi_url}/docs", fastapi)
        for model in (MODEL, OFF_MODEL, STOCK_MODEL):
            _wait(f"{ours_url}/v2/models/{model}/ready", ours)
    except BaseException:
        _stop(fastapi)
        _stop(ours)
        raise
    return [fastapi, ours], fastapi_url, ours_url


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repetitions", type=int, default=7, help="interleaved rounds (>= 5)")
    parser.add_argument("--requests", type=int, default=300, help="requests per arm per round")
    parser.add_argument("--work-dir", type=Path, default=None, help="where the model, repo and log go")
    arguments = parser.parse_args()
    if arguments.repetitions < 5:
        parser.error("--repetitions must be >= 5")

    import httpx
    import mlflow.pyfunc

    from platform_components.serving.client import encode_request

    work = arguments.work_dir or Path(tempfile.mkdtemp(prefix="bench-serving-"))
    work.mkdir(parents=True, exist_ok=True)
    model_path = build_model(work)
    model = mlflow.pyfunc.load_model(str(model_path))
    import pandas as pd

    row = pd.DataFrame({"income": [42000.0], "age": [35], "debt_ratio": [0.3], "purpose": ["car"]})
    processes, fastapi_url, ours_url = start_servers(work, model_path)
    client_core, server_core = 0, 1
    for process in processes:
        _pin(process.pid, server_core)
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {client_core})
    arms = ["in-process", "fastapi", "ours", "ours-monitoring-off", "mlserver-stock"]
    urls = {
        "fastapi": f"{fastapi_url}/v2/models/{MODEL}/infer",
        "ours": f"{ours_url}/v2/models/{MODEL}/infer",
        "ours-monitoring-off": f"{ours_url}/v2/models/{OFF_MODEL}/infer",
        "mlserver-stock": f"{ours_url}/v2/models/{STOCK_MODEL}/infer",
    }
    results: dict[str, list[tuple[float, float]]] = {arm: [] for arm in arms}
    try:
        with httpx.Client(headers={"Content-Type": "application/json"}, timeout=30) as http:
            for url in urls.values():  # warm-up: connections, first-call caches
                for _ in range(50):
                    http.post(url, content=json.dumps(encode_request(row))).raise_for_status()
            for _ in range(50):
                model.predict(row)
            counter = 0
            order = random.Random(0)
            for _ in range(arguments.repetitions):
                # A fresh arm order each round, so no arm always follows the same neighbour.
                for arm in order.sample(arms, len(arms)):
                    latencies = []
                    for _ in range(arguments.requests):
                        if arm == "in-process":
                            started = time.perf_counter()
                            model.predict(row)
                        else:
                            counter += 1
                            body = json.dumps(encode_request(row, request_id=f"bench-{counter}"))
                            started = time.perf_counter()
                            response = http.post(urls[arm], content=body)
                            if response.status_code != 200:
                                raise RuntimeError(
                                    f"{arm}: HTTP {response.status_code} {response.text[:200]}"
                                )
                        latencies.append(time.perf_counter() - started)
                    results[arm].append((percentile(latencies, 0.5), percentile(latencies, 0.95)))
    finally:
        for process in processes:
            _stop(process)

    p50 = {arm: statistics.median(rep[0] for rep in results[arm]) * 1000 for arm in arms}
    p95 = {arm: statistics.median(rep[1] for rep in results[arm]) * 1000 for arm in arms}
    floor = p50["in-process"]
    print(
        f"\nserving latency, one-row requests, {arguments.repetitions} interleaved rounds"
        f" x {arguments.requests}"
    )
    print(f"{'arm':<22}{'p50 ms':>9}{'p95 ms':>9}{'hop ms':>9}")
    for arm in arms:
        hop = "" if arm == "in-process" else f"{p50[arm] - floor:9.3f}"
        print(f"{arm:<22}{p50[arm]:9.3f}{p95[arm]:9.3f}{hop:>9}")
    hop_ratio = (p50["ours"] - floor) / (p50["fastapi"] - floor)
    on_off_p50 = p50["ours"] / p50["ours-monitoring-off"]
    on_off_p95 = p95["ours"] / p95["ours-monitoring-off"]
    print()
    print(f"{'ratio':<44}{'value':>8}{'target':>9}")
    for label, value, target in (
        ("hop ours / hop fastapi (p50)", hop_ratio, 1.5),
        ("monitoring on / off p50", on_off_p50, 1.05),
        ("monitoring on / off p95", on_off_p95, 1.05),
    ):
        verdict = "met" if value <= target else "MISSED"
        print(f"{label:<44}{value:8.3f}{'<= ' + format(target, '.2f'):>9}  {verdict}")
    print(f"{'ours / mlserver-stock p50 (validation+log)':<44}{p50['ours'] / p50['mlserver-stock']:8.3f}")
    print(f"\nwork dir: {work}")


if __name__ == "__main__":
    main()
