"""The rendered alert rules query metrics that exist and fire when their target is gone."""

from __future__ import annotations

import re
from typing import Any

import pulumi_fixtures

from platform_components.monitoring import service
from platform_components.render import kubernetes_objects

dev_render = pulumi_fixtures.dev_render
render_program = pulumi_fixtures.render_program


def rules_of(render: Any) -> dict[str, str]:
    rules = {}
    for obj in kubernetes_objects(render.resources):
        if obj["kind"] == "PrometheusRule":
            for group in obj["spec"]["groups"]:
                for rule in group["rules"]:
                    rules[rule["alert"]] = rule["expr"]
    return rules


def test_monitor_alerts_read_gauges_the_monitor_exports(dev_render: Any) -> None:
    exported = {service.PREFIX + suffix for suffix, _, _ in service.GAUGES}
    queried = {
        name for expr in rules_of(dev_render).values() for name in re.findall(r"mlops_monitor_[a-z_]+", expr)
    }
    assert queried and queried <= exported, queried - exported


def test_mlflow_alerts_use_the_prefixed_metric_names_mlflow_exports(dev_render: Any) -> None:
    # `mlflow server --expose-prometheus` creates its exporter with defaults_prefix="mlflow".
    expr = rules_of(dev_render)["MlflowServerErrors"]
    assert "mlflow_http_request_total" in expr and "(http_request_total" not in expr


def test_down_alerts_fire_when_no_target_is_left(dev_render: Any) -> None:
    rules = rules_of(dev_render)
    for alert in ("MlflowDown", "ModelMonitorDown"):
        # sum() over no series is empty, never 0: without `or vector(0)` the alert cannot fire.
        assert "or vector(0)" in rules[alert], rules[alert]
    assert "min by (model)" in rules["ModelMonitorStale"]
