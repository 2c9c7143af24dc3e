"""The monitoring release's sizes and the monitoring namespace's network policies, against the chart."""

from __future__ import annotations

from typing import Any

import pulumi_fixtures
import yaml
from upstream_facts import fact, upstream_path

from platform_components.render import kubernetes_objects
from platform_components.settings import MonitoringSettings, Resources, _parse_quantity

dev_render = pulumi_fixtures.dev_render
CHART = ("kube-prometheus-stack-81.6.2", "charts", "kube-prometheus-stack", "values.yaml")


def release_values(render: Any) -> dict[str, Any]:
    for resource in render.resources:
        if resource.type == "kubernetes:helm.sh/v3:Release" and resource.inputs.get("name") == "kps":
            return resource.inputs["values"]
    raise AssertionError("no kube-prometheus-stack release in the render")


def at(values: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        values = values[key]
    return values


def policies(render: Any, namespace: str) -> dict[str, dict[str, Any]]:
    return {
        obj["metadata"]["name"]: obj["spec"]
        for obj in kubernetes_objects(render.resources)
        if obj["kind"] == "NetworkPolicy" and obj["metadata"]["namespace"] == namespace
    }


def test_prometheus_and_alertmanager_are_sized_from_settings(dev_render: Any) -> None:
    values = release_values(dev_render)
    settings = MonitoringSettings()
    for key, resources in (
        ("kps.prometheus.resources_path", settings.prometheus_resources),
        ("kps.alertmanager.resources_path", settings.alertmanager_resources),
    ):
        assert at(values, tuple(fact(key))) == resources.to_kubernetes(), key


def test_resource_value_paths_exist_in_the_charts_values() -> None:
    upstream = yaml.safe_load(upstream_path(*CHART).read_text())
    for key in ("kps.prometheus.resources_path", "kps.alertmanager.resources_path"):
        # The chart ships {}: the path exists and nothing is set, so without ours the LimitRange decides.
        assert at(upstream, tuple(fact(key))) == {}, key
    assert upstream["prometheusOperator"]["tls"]["enabled"] is True
    assert upstream["prometheusOperator"]["tls"]["internalPort"] == fact("kps.operator.webhook_port")
    assert upstream["kubelet"]["serviceMonitor"]["https"] is True


def test_prometheus_default_memory_is_above_the_limit_range_default(dev_render: Any) -> None:
    # The namespace LimitRange gives a container without resources a 512Mi limit: Prometheus must not get it.
    limit_ranges = [obj for obj in kubernetes_objects(dev_render.resources) if obj["kind"] == "LimitRange"]
    default = limit_ranges[0]["spec"]["limits"][0]["default"]["memory"]
    resources = MonitoringSettings().prometheus_resources
    assert _parse_quantity(resources.memory_limit) > _parse_quantity(default)
    assert isinstance(resources, Resources)


def test_monitoring_egress_reaches_the_kubelet_and_the_api_server(dev_render: Any) -> None:
    namespace = release_values_namespace(dev_render)
    spec = policies(dev_render, namespace)["allow-monitoring"]
    outside = [rule for rule in spec["egress"] if any("ipBlock" in peer for peer in rule.get("to", []))]
    ports = {port["port"] for rule in outside for port in rule.get("ports", [])}
    assert {10250, 443} <= ports, ports


def test_the_operators_admission_webhook_is_reachable_from_the_api_server(dev_render: Any) -> None:
    namespace = release_values_namespace(dev_render)
    spec = policies(dev_render, namespace)["allow-operator-webhook"]
    expected = {**fact("kps.operator.pod_labels"), "release": "kps"}
    assert spec["podSelector"]["matchLabels"] == expected
    [rule] = spec["ingress"]
    assert [port["port"] for port in rule["ports"]] == [fact("kps.operator.webhook_port")]
    # The API server is not a pod: only an address block admits it.
    assert all("ipBlock" in peer for peer in rule["from"])


def release_values_namespace(render: Any) -> str:
    for resource in render.resources:
        if resource.type == "kubernetes:helm.sh/v3:Release" and resource.inputs.get("name") == "kps":
            return resource.inputs["namespace"]
    raise AssertionError("no kube-prometheus-stack release in the render")
