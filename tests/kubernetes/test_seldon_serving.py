"""Issue 7 items 8, 11 and 12: the prediction log is writable, both metrics ports are scraped, gRPC is let in,
and no Seldon chart creates Servers we do not size.

Server pods are assembled as the operator assembles them (the ServerConfig's pod merged with the Server's
``podSpec``; see test_seldon_pss.py) from the upstream facts of tests/upstream_facts/seldon.py.
"""

# ruff: noqa: F811

from __future__ import annotations

from typing import Any

import pytest
from pulumi_fixtures import config_for, dev_render, render_program  # noqa: F401
from test_seldon_pss import merge_pod_specs
from upstream_facts import fact

from platform_components.errors import ConfigError
from platform_components.render import kubernetes_objects
from platform_components.settings import SeldonSettings, _parse_quantity


def _server_pod(server: dict[str, Any]) -> dict[str, Any]:
    models = fact("seldon.serverconfig.models_mount")
    base = {
        "containers": [
            {
                "name": name,
                "volumeMounts": [
                    {
                        "name": "mlserver-models",
                        "mountPath": models["mountPath"],
                        "readOnly": name == models["container"],
                    }
                ],
            }
            for name in fact("seldon.serverconfig.mlserver_containers")
        ],
        "volumes": [],
    }
    return merge_pod_specs(base, server["spec"]["podSpec"])


def _mount_of(container: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The mount that holds ``path`` (the longest mountPath that is a prefix of it)."""
    holding = [
        mount
        for mount in container.get("volumeMounts", [])
        if path == mount["mountPath"] or path.startswith(mount["mountPath"].rstrip("/") + "/")
    ]
    return max(holding, key=lambda mount: len(mount["mountPath"])) if holding else None


def test_the_prediction_log_is_on_a_writable_volume_of_its_own(dev_render: Any) -> None:
    servers = [o for o in kubernetes_objects(dev_render.resources) if o["kind"] == "Server"]
    assert servers
    for server in servers:
        pod = _server_pod(server)
        (mlserver,) = [c for c in pod["containers"] if c["name"] == "mlserver"]
        env = {item["name"]: item["value"] for item in mlserver["env"]}
        mount = _mount_of(mlserver, env["MLOPS_PREDICTION_LOG_ROOT"])
        assert mount is not None, "the log root is on no volume"
        assert not mount.get("readOnly"), f"the log root is on read-only {mount['name']}"
        assert mount["name"] != "mlserver-models"
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        size = volume["ephemeral"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"]
        assert size == SeldonSettings().prediction_log_volume_size
        assert _parse_quantity(size) >= SeldonSettings().prediction_log_limit_bytes


def test_a_log_volume_smaller_than_one_log_is_refused() -> None:
    with pytest.raises(ValueError, match=r"mlops:seldon.prediction_log_volume_size"):
        SeldonSettings(prediction_log_volume_size="100Mi", prediction_log_limit_bytes=512 * 1024 * 1024)


def test_both_the_agent_and_mlserver_metrics_ports_are_scraped(dev_render: Any) -> None:
    objects = kubernetes_objects(dev_render.resources)
    (monitor,) = [
        o for o in objects if o["kind"] == "PodMonitor" and o["metadata"]["name"] == "seldon-servers"
    ]
    ports = {endpoint["port"] for endpoint in monitor["spec"]["podMetricsEndpoints"]}
    assert ports == set(fact("seldon.serverconfig.metrics_ports"))


def test_grpc_inference_and_the_operator_reach_the_serving_pods(dev_render: Any) -> None:
    objects = kubernetes_objects(dev_render.resources)
    (policy,) = [
        o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "allow-inference"
    ]
    allowed = {port["port"] for rule in policy["spec"]["ingress"] for port in rule.get("ports", [])}
    assert set(fact("seldon.agent.grpc_port").values()) <= allowed
    assert set(fact("seldon.serverconfig.metrics_ports").values()) <= allowed
    assert set(fact("seldon.scheduler.control_ports")) <= allowed
    operator_peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "seldon-system"}}}
    assert any(operator_peer in rule.get("from", []) for rule in policy["spec"]["ingress"])
    (egress,) = [
        o for o in objects if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "allow-operator"
    ]
    assert egress["metadata"]["namespace"] == "seldon-system"
    to_scheduler = [
        rule
        for rule in egress["spec"]["egress"]
        if {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "seldon"}}}
        in rule.get("to", [])
    ]
    assert {p["port"] for rule in to_scheduler for p in rule["ports"]} == set(
        fact("seldon.scheduler.control_ports")
    )


def test_every_server_has_at_least_one_replica(dev_render: Any) -> None:
    servers = [o for o in kubernetes_objects(dev_render.resources) if o["kind"] == "Server"]
    assert servers and all(server["spec"]["replicas"] >= 1 for server in servers)
    with pytest.raises(ValueError, match="replicas"):
        SeldonSettings(servers=[{"name": "zero", "replicas": 0}])


def test_the_operator_creates_no_load_balancer(dev_render: Any) -> None:
    from platform_components.render import releases

    values = {e["chart"]: e["values"] for e in releases(dev_render.resources) if e["kind"] == "helm"}
    assert values["seldon-core-v2-setup"]["services"]["defaultServiceType"] == "ClusterIP"
    keys = fact("seldon.runtime.override_value_keys")
    for component in fact("seldon.operator.service_type")["overridden_by"]:
        assert values["seldon-core-v2-runtime"][keys[component]]["serviceType"] == "ClusterIP"


def test_the_operator_cannot_share_the_serving_namespace(render_program: Any) -> None:
    with pytest.raises(
        ConfigError, match=r"mlops:seldon.operator_namespace is 'seldon'.*namespace of its own"
    ):
        render_program(config_for(seldon={"operator_namespace": "seldon"}))
