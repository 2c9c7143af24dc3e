"""Benchmark: `mlops fleet --json` over 1,000 models in 50 projects, a fresh process from start to last row.

Goals (issue 10):
- 1,000 models in 50 projects answer in at most 1 s here, a fresh interpreter from start to the last row
  (importing mlflow alone costs 2.5 s here, so the command must not);
- doubling the fleet (2,000 models, 100 projects) costs at most 2.2x.

For each size the benchmark starts a real ``mlflow server`` (SQLite) of its own and fills it over MLflow's
REST API (a registered model per declared model, two versions with ``mlops.holdout.<metric>`` tags, the
``champion`` alias), writes the catalog, and fills a monitor store (the real schema: ``MonitorStore``
creates it) with requests, labels, 20 checked windows and a few retrain decisions per model, plus 5 % of
undeclared models. Filling takes a minute or two per size; then ``mlops fleet --json`` runs as a fresh
process ``--repetitions`` times per size, interleaved; the table shows medians and the ratio of medians.

    .venv/bin/python bench/bench_fleet.py [--repetitions 5] [--json]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
GOAL_SECONDS = 1.0
DOUBLING_GOAL = 2.2
WINDOWS = 20
DAY = 86400.0
FEATURES = [f"feature_{index}" for index in range(10)]
CLOCK = 1_800_000_000.0


def catalog(models: int, projects: int) -> dict[str, Any]:
    """People, 10 teams and ``projects`` projects holding ``models`` models evenly."""
    per_project = models // projects
    people = [{"name": f"person-{index:02d}"} for index in range(10)]
    teams = [
        {"name": f"team-{index:02d}", "group": f"oidc:team-{index:02d}", "members": [f"person-{index:02d}"]}
        for index in range(10)
    ]
    return {
        "people": people,
        "teams": teams,
        "projects": [
            {
                "name": f"project-{project:03d}",
                "team": f"team-{project % 10:02d}",
                # Every 7th project's owner has left the catalog: the fleet flags it.
                "owner": f"person-{project % 10:02d}" if project % 7 else "someone-who-left",
                "quota": {"max_models": per_project, "serving_memory": f"{per_project}Gi"},
                **({"policy": {"cooldown": "2d"}} if project % 5 == 0 else {}),
                "models": [
                    {"name": name(project, index), "registered_model": name(project, index), "memory": "1Gi"}
                    for index in range(per_project)
                ],
            }
            for project in range(projects)
        ],
    }


def name(project: int, index: int) -> str:
    return f"p{project:03d}-model-{index:03d}"


class Rest:
    """A keep-alive JSON client for one MLflow server (one connection per thread)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()

    def post(self, path: str, body: dict[str, Any]) -> None:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = self.local.connection = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=60
            )
        connection.request(
            "POST", f"/api/2.0/mlflow/{path}", json.dumps(body), {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status}: {payload[:300]!r}")


def fill_registry(port: int, names: list[str]) -> None:
    rest = Rest(port)

    def one(model: str) -> None:
        rest.post("registered-models/create", {"name": model})
        for version, auc in ((1, 0.84), (2, 0.86)):
            rest.post(
                "model-versions/create",
                {
                    "name": model,
                    "source": f"s3://bench/{model}/{version}",
                    "tags": [{"key": "mlops.holdout.roc_auc", "value": str(auc)}],
                },
            )
        rest.post("registered-models/alias", {"name": model, "alias": "champion", "version": "2"})

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(one, names))


def fill_store(path: Path, names: list[str], undeclared: list[str]) -> None:
    """Requests, labels, results and decisions straight into the store's tables (its schema, one
    transaction): the benchmark measures reading them, not the monitor writing them."""
    from platform_components.monitoring.store import MonitorStore

    MonitorStore(path).close()  # creates the schema at the current version
    import sqlite3

    connection = sqlite3.connect(path)
    requests, predictions, labels, results, decisions = [], [], [], [], []
    for number, model in enumerate(names + undeclared):
        stale = number % 11 == 0  # some models stopped getting traffic 10 days ago
        end = CLOCK - (10 * DAY if stale else 0.0)
        for request in range(20):
            request_id = f"{model}-{request}"
            timestamp = end - request * 3600.0
            requests.append((request_id, model, "2", timestamp, 5))
            for row in range(5):
                predictions.append((request_id, row, model, "2", timestamp, "{}", "[0.3, 0.7]", 0.7))
                if request % 2:
                    labels.append((request_id, row, "1", timestamp + 600.0, model))
        for window in range(WINDOWS):
            start = (end // DAY - window) * DAY
            drifted = FEATURES[:3] if number % 13 == 0 and window == 0 else []
            result = {
                "model": model,
                "version": "2",
                "checked_at": start + DAY - 1,
                "window_start": start,
                "window_end": start + DAY,
                "status": "ok",
                "rows": 500,
                "labelled_rows": 250,
                "drift_share": len(drifted) / len(FEATURES),
                "drifted_features": drifted,
                "max_psi": 0.05,
                "features": {
                    feature: {"kind": "numeric", "test": "ks", "statistic": 0.02, "pvalue": 0.5, "psi": 0.01}
                    for feature in FEATURES
                },
                "prediction": {"drifted": False, "statistic": 0.01},
                "quality": {"missing_rate": 0.0},
                "performance": {"roc_auc": 0.85 - 0.01 * (number % 9) - 0.002 * window, "rows": 250},
                "estimated": {"roc_auc": {"value": 0.84, "lower": 0.8, "upper": 0.88}},
            }
            results.append((model, "2", start + DAY - 1, start, start + DAY, json.dumps(result)))
        for index, outcome in enumerate(("promoted", "not_promoted", "waiting_for_rows")):
            decisions.append(
                (model, "1", end - (30 - index) * DAY, "retrain", "[]", "{}", outcome, None, None)
            )
    with connection:
        connection.executemany("INSERT INTO requests VALUES (?, ?, ?, ?, ?)", requests)
        connection.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", predictions)
        connection.executemany("INSERT INTO labels VALUES (?, ?, ?, ?, ?)", labels)
        connection.executemany(
            "INSERT INTO monitor_results (model, version, checked_at, window_start, window_end, result) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            results,
        )
        connection.executemany(
            "INSERT INTO decisions (model, version, decided_at, action, reasons, evidence, outcome, "
            "outcome_detail, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            decisions,
        )
    connection.close()


def prepare(root: Path, models: int, projects: int, servers: contextlib.ExitStack) -> list[str]:
    """Fill a real MLflow server (kept running by ``servers``) and a monitor store; the fleet's command."""
    import yaml
    from processes import mlflow_server

    root.mkdir(parents=True)
    state = root / "state"
    (state / "monitoring").mkdir(parents=True)
    document = catalog(models, projects)
    (state / "catalog.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    names = [model["name"] for project in document["projects"] for model in project["models"]]
    undeclared = [f"undeclared-{index}" for index in range(models // 20)]
    started = time.perf_counter()
    uri, _, _ = servers.enter_context(mlflow_server(root, seconds=120))
    port = int(uri.rpartition(":")[2])
    fill_registry(port, names)
    fill_store(state / "monitoring" / "monitor.sqlite", names, undeclared)
    print(f"filled {models} models in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    command = [
        sys.executable,
        "-m",
        "platform_components.cli",
        "fleet",
        "--json",
        "--state-dir",
        str(state),
        "--tracking-uri",
        uri,
    ]
    return command


def run_once(command: list[str], expected_rows: int) -> float:
    environment = dict(os.environ, PYTHONPATH=str(REPO))
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=REPO, check=False)
    seconds = time.perf_counter() - started
    if finished.returncode != 0:
        raise RuntimeError(f"mlops fleet failed:\n{finished.stderr[-3000:]}")
    document = json.loads(finished.stdout)
    if len(document["rows"]) != expected_rows or document["undeclared"]["count"] != expected_rows // 20:
        raise RuntimeError(f"expected {expected_rows} rows, got {len(document['rows'])}")
    if not any(row["stale"] for row in document["rows"]) or not all(
        row["version"] == "2" for row in document["rows"]
    ):
        raise RuntimeError("the rows do not show what the benchmark filled (stale rows, version 2)")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repetitions", type=int, default=5, help="runs per size (default 5)")
    parser.add_argument("--json", action="store_true", help="print the measurements as JSON")
    arguments = parser.parse_args()
    sizes = ((1000, 50), (2000, 100))
    timings: dict[int, list[float]] = {size: [] for size, _ in sizes}
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as folder, contextlib.ExitStack() as servers:
        commands = {}
        for models, projects in sizes:
            commands[models] = prepare(Path(folder) / str(models), models, projects, servers)
            run_once(commands[models], models)  # warm the page cache and MLflow's own caches
        for _ in range(arguments.repetitions):
            for models, _ in sizes:
                timings[models].append(run_once(commands[models], models))
    medians = {models: statistics.median(values) for models, values in timings.items()}
    ratio = medians[2000] / medians[1000]
    if arguments.json:
        print(json.dumps({"timings": timings, "medians": medians, "doubling_ratio": ratio}))
        return
    print(
        f"mlops fleet --json, fresh process ({platform.python_version()}, {os.cpu_count()} cores, "
        f"median of {arguments.repetitions})"
    )
    print(f"{'models':>8} {'projects':>9} {'seconds':>9} {'goal':>8} {'met':>5}")
    for models, projects in sizes:
        goal = GOAL_SECONDS if models == 1000 else GOAL_SECONDS * DOUBLING_GOAL
        print(
            f"{models:>8} {projects:>9} {medians[models]:>9.3f} {goal:>8.2f} "
            f"{'yes' if medians[models] <= goal else 'NO':>5}"
        )
    print(
        f"doubling ratio 2000/1000: {ratio:.2f}x "
        f"(goal <= {DOUBLING_GOAL}x: {'met' if ratio <= DOUBLING_GOAL else 'MISSED'})"
    )


if __name__ == "__main__":
    main()
