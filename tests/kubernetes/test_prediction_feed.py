"""The cluster's prediction feed: Seldon Servers run our image and runtime and may reach the monitor.

What the cluster relies on: the Server's MLServer container runs the serving image with the variables that
select our runtime and point its shipper at the monitor Service; a NetworkPolicy lets exactly that traffic
out; the Dockerfile builds on the pinned MLServer; MLServer really takes the runtime from the variable.
"""

# ruff: noqa: F811

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pulumi_fixtures import REPO, dev_render  # noqa: F401
from upstream_facts import fact

from platform_components import images, versions
from platform_components.errors import ConfigError
from platform_components.kubernetes.seldon import MONITORED_RUNTIME
from platform_components.render import kubernetes_objects
from platform_components.settings import SeldonSettings


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"no {kind} {name} in the render")


def test_servers_run_the_serving_image_and_ship_to_the_monitor_service(dev_render: Any) -> None:
    objects = kubernetes_objects(dev_render.resources)
    server = find(objects, "Server", "mlserver-mlflow")
    (container,) = [c for c in server["spec"]["podSpec"]["containers"] if c["name"] == "mlserver"]
    assert SeldonSettings().serving_image is None  # None: ours, from mlops:images.registry
    assert container["image"] == images.reference("serving")
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["MLSERVER_MODEL_IMPLEMENTATION"] == MONITORED_RUNTIME
    assert env["MLOPS_SELDON_NAMES"] == "1"
    # No `_created` series beside MLServer's per-model counters (the cardinality budget).
    assert env[fact("prometheus_client.created_series_switch")] == "true"
    assert int(env["MLOPS_PREDICTION_LOG_LIMIT_BYTES"]) == SeldonSettings().prediction_log_limit_bytes

    # The URL names the monitor Service and its port.
    url = urlsplit(env["MLOPS_MONITOR_URL"])
    service = find(objects, "Service", "model-monitor")
    host = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
    assert url.hostname == host
    assert url.port in {port["port"] for port in service["spec"]["ports"]}

    # Egress from the Server pods to the monitor's namespace on that port, and the monitor lets it in.
    feed = find(objects, "NetworkPolicy", "allow-prediction-feed")
    assert feed["metadata"]["namespace"] == server["metadata"]["namespace"]
    assert feed["spec"]["podSelector"] == {
        "matchExpressions": [{"key": "seldon-server-name", "operator": "Exists"}]
    }
    (rule,) = feed["spec"]["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": url.port}]
    assert rule["to"] == [
        {
            "namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": service["metadata"]["namespace"]}
            }
        }
    ]
    monitor_policy = find(objects, "NetworkPolicy", "model-monitor-allow")
    serving_peer = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": server["metadata"]["namespace"]}}
    }
    assert any(
        serving_peer in ingress.get("from", []) and {"protocol": "TCP", "port": url.port} in ingress["ports"]
        for ingress in monitor_policy["spec"]["ingress"]
    )


def test_serving_dockerfile_builds_on_the_pinned_mlserver_image() -> None:
    dockerfile = (REPO / "docker" / "serving.Dockerfile").read_text()
    bases = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert len(bases) == 1
    assert bases[0].removeprefix("docker.io/") == versions.get("mlserver").image
    assert "pip install --no-deps -r /tmp/requirements.txt" in dockerfile  # the lock (tests/test_images.py)


def test_serving_image_must_be_pinned() -> None:
    with pytest.raises(ValueError, match="must be an image pinned by tag"):
        SeldonSettings(serving_image="ghcr.io/mlops-platform/serving:latest")


def test_mlserver_takes_our_runtime_from_the_variable_when_the_artifact_names_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from mlserver.settings import ModelSettings

    from platform_components.serving.runtime import MonitoredMLflowRuntime, _our_extra, _served_name

    monkeypatch.setenv("MLSERVER_MODEL_IMPLEMENTATION", MONITORED_RUNTIME)
    # What Seldon's agent writes back: name and version set, our keys only under extra.init_parameters.
    written = {
        "name": "credit-default_2",
        "parameters": {
            "uri": str(tmp_path),
            "version": "2",
            "extra": {"init_parameters": {"registered_version": "7"}},
        },
    }
    settings = ModelSettings.model_validate_json(json.dumps(written))
    assert settings.implementation is MonitoredMLflowRuntime
    assert _our_extra(settings.parameters.extra)["registered_version"] == "7"
    explicit = ModelSettings.model_validate({**written, "implementation": "mlserver_mlflow.MLflowRuntime"})
    assert explicit.implementation_ == "mlserver_mlflow.MLflowRuntime"  # the artifact's choice wins
    monkeypatch.setenv("MLOPS_SELDON_NAMES", "1")
    assert _served_name("credit-default_2") == "credit-default"
    monkeypatch.delenv("MLOPS_SELDON_NAMES")
    assert _served_name("credit-default_2") == "credit-default_2"


def test_prediction_log_limit_variable_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from platform_components.serving.process_state import _log_limits

    monkeypatch.setenv("MLOPS_PREDICTION_LOG_LIMIT_BYTES", "1000")
    with pytest.raises(ConfigError, match=r"MLOPS_PREDICTION_LOG_LIMIT_BYTES: '1000' is not a byte count"):
        _log_limits()
    monkeypatch.setenv("MLOPS_PREDICTION_LOG_LIMIT_BYTES", str(512 * 1024 * 1024))
    limits = _log_limits()
    assert limits["hard_limit_bytes"] == 512 * 1024 * 1024
    assert limits["segment_bytes"] <= limits["retention_bytes"] <= limits["hard_limit_bytes"] // 2
