"""``GET /v2/fleet`` on the cluster's monitor: the rendered ConfigMap's models.json and catalog.json, the
store and a real MLflow registry; ``mlops fleet --target cluster --url`` prints what it answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from platform_components.fleet.cli import fleet_command
from platform_components.loop import service as loop_service
from platform_components.monitoring import service as monitoring_service
from platform_components.monitoring.store import open_store

SEED = "test-seed-0123456789abcdef"
CATALOG = {
    "people": [{"name": "alice"}],
    "teams": [{"name": "risk", "group": "oidc:risk", "members": ["alice"]}],
    "projects": [
        {
            "name": "credit",
            "team": "risk",
            "owner": "alice",
            "staleness": {"labels": "3d"},
            "models": [{"name": "svc-credit", "registered_model": "svc-credit"}],
        }
    ],
}
MODELS = [{"name": "svc-plain", "registered_model": "svc-plain"}]


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The monitor's ConfigMap as the platform renders it, written out as the kubelet mounts it."""
    from platform_components.render import kubernetes_objects, run_program

    config = {
        "mlops:secret_seed": SEED,
        "mlops:catalog": json.dumps(CATALOG),
        "mlops:models": json.dumps(MODELS),
    }
    objects = kubernetes_objects(run_program(config, ("mlops:secret_seed",)).resources)
    [config_map] = [
        item
        for item in objects
        if item["kind"] == "ConfigMap" and item["metadata"]["name"] == "model-monitor"
    ]
    folder = tmp_path_factory.mktemp("etc-mlops")
    for key, text in config_map["data"].items():
        (folder / key).write_text(text)
    return folder


def app_for(config_dir: Path, state_dir: Path, tracking_uri: str) -> Any:
    arguments = loop_service.parser().parse_args(
        [
            "--state-dir",
            str(state_dir),
            "--port",
            "8090",
            "--tracking-uri",
            tracking_uri,
            "--models",
            str(config_dir / "models.json"),
        ]
    )
    models, _ = loop_service.startup_config(arguments)
    store = open_store(state_dir / "monitor.sqlite")
    from platform_components.monitoring.model_info import ModelInfoCollector

    rows, catalog = loop_service.fleet_provider(arguments, models, store)
    return monitoring_service.create_app(
        state_dir, store=store, fleet=rows, collectors=[ModelInfoCollector(models, catalog)]
    )


def test_the_monitor_answers_one_row_per_declared_model_with_the_catalogs_owners(
    config_dir: Path, tmp_path: Path, mlflow_rest, register
) -> None:
    register("svc-credit", {"1": {"mlops.holdout.roc_auc": "0.9"}}, {"champion": "1"})
    with TestClient(app_for(config_dir, tmp_path, mlflow_rest.tracking_uri)) as client:
        answer = client.get("/v2/fleet", params={"now": 1_700_000_000})
        assert answer.status_code == 200, answer.text
        document = answer.json()
    rows = {row["model"]: row for row in document["rows"]}
    # Every model of models.json (the catalog's and the one of no project), owners from catalog.json.
    assert set(rows) == {"svc-credit", "svc-plain"}
    assert (rows["svc-credit"]["project"], rows["svc-credit"]["owner"]) == ("credit", "alice")
    assert (rows["svc-credit"]["version"], rows["svc-credit"]["baseline"]) == ("1", 0.9)
    assert rows["svc-plain"]["serving"] == "not_registered"
    assert "no project: nobody owns it" in rows["svc-plain"]["staleness"]
    assert document["now"] == 1_700_000_000


def test_the_monitor_exports_one_info_series_per_declared_model(config_dir: Path, tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    with TestClient(app_for(config_dir, tmp_path, "http://127.0.0.1:9")) as client:
        text = client.get("/metrics").text
    [family] = [item for item in text_string_to_metric_families(text) if item.name == "mlops_model_info"]
    labels = sorted(tuple(sorted(sample.labels.items())) for sample in family.samples)
    assert labels == [
        (("model", "svc-credit"), ("owner", "alice"), ("project", "credit"), ("route", "risk")),
        (("model", "svc-plain"), ("owner", "-"), ("project", "-"), ("route", "")),
    ]
    assert {sample.value for sample in family.samples} == {1.0}


def test_the_cluster_target_prints_the_monitors_rows(config_dir: Path, tmp_path: Path, mlflow_rest) -> None:
    import threading

    import uvicorn
    from processes import find_free_port

    port = find_free_port()
    app = app_for(config_dir, tmp_path, mlflow_rest.tracking_uri)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.05)
        result = CliRunner().invoke(
            fleet_command,
            [
                "--target",
                "cluster",
                "--url",
                f"http://127.0.0.1:{port}",
                "--json",
                "--filter",
                "project=credit",
            ],
        )
        assert result.exit_code == 0, result.output
        assert [row["model"] for row in json.loads(result.output)["rows"]] == ["svc-credit"]
        table = CliRunner().invoke(
            fleet_command, ["--target", "cluster", "--url", f"http://127.0.0.1:{port}"]
        )
        assert (
            table.exit_code == 0 and "svc-plain" in table.output and "2 of 2 declared models" in table.output
        )
    finally:
        server.should_exit = True
        thread.join(10)


def test_an_unreachable_registry_is_a_503_naming_it_and_a_bad_clock_a_422(
    config_dir: Path, tmp_path: Path
) -> None:
    with TestClient(app_for(config_dir, tmp_path, "http://127.0.0.1:9")) as client:
        unreachable = client.get("/v2/fleet")
        assert unreachable.status_code == 503
        assert "http://127.0.0.1:9: cannot read the registry" in unreachable.json()["detail"]
        assert client.get("/v2/fleet", params={"now": "yesterday"}).status_code == 422


def test_the_monitoring_service_alone_has_no_fleet(tmp_path: Path) -> None:
    with TestClient(monitoring_service.create_app(tmp_path)) as client:
        answer = client.get("/v2/fleet")
    assert answer.status_code == 404 and "loop's service" in answer.json()["detail"]


def test_the_cluster_target_needs_a_url() -> None:
    result = CliRunner().invoke(fleet_command, ["--target", "cluster"], standalone_mode=False)
    assert "--url: missing for --target cluster" in str(result.exception)
