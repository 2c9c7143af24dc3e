"""One typed builder per custom-resource kind (Seldon Model and Server, Prometheus Operator kinds).

Builders return plain dicts (``apiVersion``, ``kind``, ``metadata``, ``spec``): tested without Pulumi and
turned into ``apiextensions.CustomResource`` by ``create``. Field names follow the upstream CRDs:
Seldon Core 2 ``mlops.seldon.io/v1alpha1`` (k8s/yaml/crds in SeldonIO/seldon-core) and Prometheus Operator
``monitoring.coreos.com/v1``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

SELDON_API = "mlops.seldon.io/v1alpha1"
MONITORING_API = "monitoring.coreos.com/v1"


def seldon_model(
    name: str,
    namespace: str,
    *,
    storage_uri: str,
    replicas: int,
    memory: str,
    server: str | None,
    secret_name: str | None,
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """A Seldon Core 2 ``Model`` serving an MLflow model folder on an MLServer with the mlflow capability."""
    spec: dict[str, Any] = {
        "storageUri": storage_uri,
        "requirements": ["mlflow"],
        "replicas": replicas,
        "memory": memory,
    }
    if server:
        spec["server"] = server
    if secret_name:
        spec["secretName"] = secret_name  # rclone config for the private artifact store
    return {
        "apiVersion": SELDON_API,
        "kind": "Model",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": spec,
    }


def seldon_server(
    name: str,
    namespace: str,
    *,
    replicas: int,
    resources: Mapping[str, Any],
    labels: Mapping[str, str],
    image: str | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A Seldon Core 2 ``Server`` from the ``mlserver`` ServerConfig, its MLServer container sized.

    ``podSpec`` is merged by container name into the ServerConfig's pod template by the Seldon operator.

    Args:
        image: replaces the ServerConfig's MLServer image (ours adds the monitored runtime).
        env: extra variables of the MLServer container (plain values, never credentials).
    """
    container: dict[str, Any] = {"name": "mlserver", "resources": dict(resources)}
    if image:
        container["image"] = image
    if env:
        container["env"] = [{"name": key, "value": value} for key, value in env.items()]
    return {
        "apiVersion": SELDON_API,
        "kind": "Server",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "serverConfig": "mlserver",
            "replicas": replicas,
            "podSpec": {"containers": [container]},
        },
    }


@dataclass(frozen=True)
class AlertRule:
    """One Prometheus alerting rule."""

    alert: str
    expr: str
    for_: str
    severity: str
    summary: str
    runbook: str

    def to_dict(self, extra_labels: Mapping[str, str] | None = None) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "expr": self.expr,
            "for": self.for_,
            "labels": {"severity": self.severity, **(extra_labels or {})},
            "annotations": {"summary": self.summary, "runbook_url": self.runbook},
        }


def prometheus_rule(
    name: str, namespace: str, *, groups: Sequence[Mapping[str, Any]], labels: Mapping[str, str]
) -> dict[str, Any]:
    """A ``PrometheusRule`` (picked up everywhere: ruleSelectorNilUsesHelmValues=false in the chart)."""
    return {
        "apiVersion": MONITORING_API,
        "kind": "PrometheusRule",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {"groups": [dict(group) for group in groups]},
    }


def service_monitor(
    name: str,
    namespace: str,
    *,
    selector: Mapping[str, str],
    port: str,
    path: str,
    labels: Mapping[str, str],
    basic_auth_secret: str | None = None,
) -> dict[str, Any]:
    """A ``ServiceMonitor`` scraping one Service port.

    Args:
        basic_auth_secret: a Secret in ``namespace`` with keys ``username`` and ``password``; Prometheus then
            scrapes with those credentials (``endpoints[].basicAuth``: two Secret key selectors, in the
            ServiceMonitor CRD of prometheus-operator v0.88.1, kube-prometheus-stack 81.6.2).
    """
    endpoint: dict[str, Any] = {"port": port, "path": path, "interval": "30s"}
    if basic_auth_secret is not None:
        endpoint["basicAuth"] = {
            "username": {"name": basic_auth_secret, "key": "username"},
            "password": {"name": basic_auth_secret, "key": "password"},
        }
    return {
        "apiVersion": MONITORING_API,
        "kind": "ServiceMonitor",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {"selector": {"matchLabels": dict(selector)}, "endpoints": [endpoint]},
    }


def pod_monitor(
    name: str, namespace: str, *, label_key: str, port: str, path: str, labels: Mapping[str, str]
) -> dict[str, Any]:
    """A ``PodMonitor`` scraping every pod that carries ``label_key`` (all Seldon servers, all models)."""
    return {
        "apiVersion": MONITORING_API,
        "kind": "PodMonitor",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "selector": {"matchExpressions": [{"key": label_key, "operator": "Exists"}]},
            "podMetricsEndpoints": [{"port": port, "path": path, "interval": "30s"}],
        },
    }


def create(
    resource_name: str, body: Mapping[str, Any], opts: pulumi.ResourceOptions
) -> k8s.apiextensions.CustomResource:
    """Register a built custom resource with Pulumi."""
    return k8s.apiextensions.CustomResource(
        resource_name,
        api_version=body["apiVersion"],
        kind=body["kind"],
        metadata=body["metadata"],
        spec=body["spec"],
        opts=opts,
    )
