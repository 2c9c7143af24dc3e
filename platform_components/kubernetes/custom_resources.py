"""One typed builder per custom-resource kind (Seldon Server, Prometheus Operator kinds).

The Seldon ``Model``'s builder is ``platform_components.seldon_models.seldon_model``: the loop's deployer
creates Models, Pulumi does not, and that module needs no Pulumi.

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


#: Container securityContext that meets Pod Security "restricted" (allowPrivilegeEscalation, capabilities,
#: runAsNonRoot, seccomp); the Seldon operator merges it into the containers it builds.
RESTRICTED_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
#: Pod securityContext fields we add to Seldon's pods (the chart's defaults set user, group and fsGroup 1000).
RESTRICTED_POD_SECURITY = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
#: The containers of the ``mlserver`` ServerConfig the setup chart creates
#: (SeldonIO/seldon-core k8s/helm-charts/seldon-core-v2-setup/templates/_components-statefulsets.tpl@v2.10.2).
SERVER_CONTAINERS = ("rclone", "agent", "mlserver")


@dataclass(frozen=True)
class ExtraVolume:
    """A volume of our own on a Server pod, mounted in one of its containers.

    Attributes:
        name: volume name (unique in the pod; the ServerConfig uses ``mlserver-models``, ``config-volume``,
            ``tracing-config-volume`` and ``downstream-ca-certs``).
        mount_path: where ``container`` sees it, read-write.
        size: storage of a generic ephemeral volume (a PVC created and deleted with the pod).
        container: the container that mounts it.
    """

    name: str
    mount_path: str
    size: str
    container: str = "mlserver"


def seldon_server(
    name: str,
    namespace: str,
    *,
    replicas: int,
    resources: Mapping[str, Any],
    labels: Mapping[str, str],
    image: str | None = None,
    env: Mapping[str, str] | None = None,
    volumes: Sequence[ExtraVolume] = (),
) -> dict[str, Any]:
    """A Seldon Core 2 ``Server`` from the ``mlserver`` ServerConfig, its MLServer container sized.

    ``podSpec`` is merged into the ServerConfig's pod spec by the Seldon operator: containers by name, each
    field overriding, lists (env, volumeMounts, volumes) appended (``MergePodSpecs`` in SeldonIO/seldon-core
    operator/controllers/reconcilers/common/patch_utils.go@v2.10.2). Every container of the ServerConfig gets
    the "restricted" securityContext here, because the chart sets none on them.

    Args:
        image: replaces the ServerConfig's MLServer image (ours adds the monitored runtime).
        env: extra variables of the MLServer container (plain values, never credentials).
        volumes: writable volumes of our own (the prediction log), sized apart from the models volume.
    """
    mounts: dict[str, list[dict[str, Any]]] = {}
    for volume in volumes:
        if volume.container not in SERVER_CONTAINERS:
            raise ValueError(
                f"volume {volume.name!r} is mounted in container {volume.container!r}; the mlserver "
                f"ServerConfig has {', '.join(SERVER_CONTAINERS)}"
            )
        mounts.setdefault(volume.container, []).append({"name": volume.name, "mountPath": volume.mount_path})
    containers: list[dict[str, Any]] = []
    for container_name in SERVER_CONTAINERS:
        container: dict[str, Any] = {
            "name": container_name,
            "securityContext": dict(RESTRICTED_CONTAINER_SECURITY),
        }
        if container_name == "mlserver":
            container["resources"] = dict(resources)
            if image:
                container["image"] = image
            if env:
                container["env"] = [{"name": key, "value": value} for key, value in env.items()]
        if container_name in mounts:
            container["volumeMounts"] = mounts[container_name]
        containers.append(container)
    pod_spec: dict[str, Any] = {"securityContext": dict(RESTRICTED_POD_SECURITY), "containers": containers}
    if volumes:
        pod_spec["volumes"] = [
            {
                "name": volume.name,
                "ephemeral": {
                    "volumeClaimTemplate": {
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": volume.size}},
                        }
                    }
                },
            }
            for volume in volumes
        ]
    return {
        "apiVersion": SELDON_API,
        "kind": "Server",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {"serverConfig": "mlserver", "replicas": replicas, "podSpec": pod_spec},
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
    name: str,
    namespace: str,
    *,
    label_key: str,
    ports: Sequence[str],
    path: str,
    labels: Mapping[str, str],
) -> dict[str, Any]:
    """A ``PodMonitor`` scraping the named container ports of every pod that carries ``label_key``."""
    if not ports:
        raise ValueError(f"PodMonitor {name!r} needs at least one container port name to scrape")
    return {
        "apiVersion": MONITORING_API,
        "kind": "PodMonitor",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "selector": {"matchExpressions": [{"key": label_key, "operator": "Exists"}]},
            "podMetricsEndpoints": [{"port": port, "path": path, "interval": "30s"} for port in ports],
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
