"""The Grafana fleet dashboard: one dashboard whose panels do not grow with the fleet, joined on model."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from upstream_facts import fact

from platform_components.kubernetes import fleet_dashboard as module
from platform_components.kubernetes.fleet_dashboard import FLEET_DASHBOARD_FILE, fleet_dashboard
from platform_components.monitoring import service as monitor_service
from platform_components.monitoring.model_info import INFO_LABELS, INFO_METRIC

SEED = "test-seed-0123456789abcdef"


def render(models: int) -> list[dict[str, Any]]:
    from platform_components.render import kubernetes_objects, run_program

    declared = [
        {"name": f"fleet-{index:03d}", "registered_model": f"fleet-{index:03d}"} for index in range(models)
    ]
    config = {"mlops:secret_seed": SEED, "mlops:models": json.dumps(declared)}
    return kubernetes_objects(run_program(config, ("mlops:secret_seed",)).resources)


def fleet_dashboards(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for item in objects:
        if item["kind"] == "ConfigMap" and item["metadata"].get("labels", {}).get("grafana_dashboard") == "1":
            for key, text in item.get("data", {}).items():
                if json.loads(text).get("uid") == module.FLEET_DASHBOARD_UID:
                    found.append({"key": key, "config_map": item["metadata"]["name"], **json.loads(text)})
    return found


@pytest.fixture(scope="module")
def renders() -> dict[int, list[dict[str, Any]]]:
    return {count: render(count) for count in (1, 30)}


def test_the_render_ships_one_fleet_dashboard_whose_panels_do_not_grow_with_the_fleet(renders) -> None:
    small, large = (fleet_dashboards(renders[count]) for count in (1, 30))
    assert len(small) == len(large) == 1
    assert small[0]["key"] == FLEET_DASHBOARD_FILE
    assert small[0]["panels"] == large[0]["panels"]
    # Per-model dashboards still grow (one per model): the fleet dashboard is the one that must not.
    per_model = [
        key
        for item in renders[30]
        if item["kind"] == "ConfigMap"
        for key in item.get("data", {})
        if key.startswith("model-fleet-")
    ]
    assert len(per_model) == 30


def test_the_table_joins_every_per_model_query_to_the_info_series_on_model() -> None:
    [table] = [panel for panel in fleet_dashboard()["panels"] if panel["type"] == "table"]
    info, *columns = table["targets"]
    assert info["refId"] == "A" and INFO_METRIC in info["expr"]
    assert all(target["format"] == "table" and target["instant"] for target in table["targets"])
    for target in columns:
        assert target["expr"].count("by (model)") == 1, target["expr"]
    join, organize = table["transformations"]
    join_id, by_field, outer = fact("grafana.transform.join_by_field")
    assert (join["id"], join["options"]) == (join_id, {by_field: "model", "mode": outer})
    organize_id, exclude, rename = fact("grafana.transform.organize")
    assert organize["id"] == organize_id and set(organize["options"]) == {exclude, rename}
    value_column = fact("grafana.prometheus.table_value_columns")
    for target in columns:
        assert value_column.format(ref_id=target["refId"]) in organize["options"][rename]
    # The info series carries the labels the table groups by.
    assert re.search(r"by \(([^)]*)\)", info["expr"]).group(1).split(", ") == list(INFO_LABELS)


def test_every_monitor_metric_the_dashboard_reads_is_one_the_monitor_exports(tmp_path) -> None:
    from fastapi.testclient import TestClient
    from prometheus_client.parser import text_string_to_metric_families

    from platform_components.monitoring.store import MonitorStore

    # A monitor that has checked, counted a label and a retrain: every gauge and counter has a sample.
    store = MonitorStore(tmp_path / "monitor.sqlite")
    result = {
        "version": "1",
        "checked_at": 1.0,
        "drift_share": 0.1,
        "drifted_features": ["x"],
        "max_psi": 0.2,
        "rows": 10,
        "labelled_rows": 5,
        "performance": {"accuracy": 0.9, "roc_auc": 0.8},
        "estimated": {"roc_auc": {"value": 0.8, "lower": 0.7, "upper": 0.9}},
    }
    store.save_result("m", "1", checked_at=1.0, window_start=0.0, window_end=1.0, result=result)
    store.record_decision("m", "1", action="retrain", reasons=[], evidence={}, outcome="running")
    with TestClient(monitor_service.create_app(tmp_path, store=store)) as client:
        text = client.get("/metrics").text
    exported = {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}
    dashboard = json.dumps(fleet_dashboard())
    used = set(re.findall(r"mlops_monitor_[a-z_]+", dashboard))
    assert used and used <= exported, used - exported
    assert INFO_METRIC in dashboard
