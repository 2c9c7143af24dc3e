"""Seldon Core 2 (BSL 1.1) from its Helm charts, plus MLServer ``Server`` CRs sized from settings."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from platform_components import versions
from platform_components.kubernetes import pods
from platform_components.kubernetes.base import TOKEN_PREFIX, child, network_policy, secret
from platform_components.kubernetes.custom_resources import create, pod_monitor, seldon_server
from platform_components.kubernetes.naming import labels
from platform_components.settings import SeldonSettings

RCLONE_SECRET = "mlops-artifact-store-rclone"
MONITORED_RUNTIME = "platform_components.serving.runtime.MonitoredMLflowRuntime"
# On the Server's models volume (Seldon's ServerConfig mounts a PVC at /mnt/agent): survives pod restarts.
PREDICTION_LOG_ROOT = "/mnt/agent/predictions"


def serving_env(monitor_url: str, log_limit_bytes: int) -> dict[str, str]:
    """The MLServer container's variables that make every model on the Server monitored.

    Seldon Core 2 takes a model's runtime from the ``model-settings.json`` in its artifact folder
    (``requirements`` only choose the Server) and rewrites that file keeping only ``implementation``,
    ``parameters.{uri,version,format,content_type}`` and ``parameters.extra.init_parameters``. MLServer fills
    a model-settings field the file leaves out from ``MLSERVER_MODEL_<FIELD>``, so an artifact whose
    model-settings.json names no ``implementation`` runs our runtime here; the rest of our settings come
    from these variables (see platform_components/serving/runtime.py).
    """
    return {
        "MLSERVER_MODEL_IMPLEMENTATION": MONITORED_RUNTIME,
        "MLOPS_MONITOR_URL": monitor_url,
        "MLOPS_PREDICTION_LOG_ROOT": PREDICTION_LOG_ROOT,
        "MLOPS_PREDICTION_LOG_LIMIT_BYTES": str(log_limit_bytes),
        "MLOPS_SELDON_NAMES": "1",
    }


@dataclass(frozen=True)
class SeldonServingArgs:
    """Arguments of ``SeldonServing``.

    Attributes:
        settings: chart version and Servers.
        namespace: serving namespace (created by the platform; Models live here too).
        store_endpoint / store_access_key_id / store_secret_access_key: the artifact store Models load from.
        allow_load_balancer: keep Seldon's upstream LoadBalancer defaults (off: ClusterIP).
        monitoring_release: kube-prometheus-stack release (PodMonitor CRD).
        install_charts: install the Seldon charts (``mlops:upstream.helm_charts``). Default: True.
        ingress_namespaces: namespaces allowed to call inference (pipelines, monitor).
        monitor_url / monitor_namespace / monitor_port: where the Servers ship their prediction logs
            (``MLOPS_MONITOR_URL``; egress allowed to that namespace and port only). No URL: no shipping.
    """

    settings: SeldonSettings
    namespace: str
    store_endpoint: str
    store_access_key_id: str
    store_secret_access_key: str
    allow_load_balancer: bool = False
    monitoring_release: pulumi.Resource | None = None
    install_charts: bool = True
    ingress_namespaces: tuple[str, ...] = ()
    monitor_url: str | None = None
    monitor_namespace: str | None = None
    monitor_port: int = 8090


class SeldonServing(pulumi.ComponentResource):
    """The four Seldon Core 2 charts in order (crds -> setup -> runtime -> servers), then our Servers."""

    crds: k8s.helm.v3.Release
    servers_release: k8s.helm.v3.Release
    servers: list[k8s.apiextensions.CustomResource]
    ready: list[pulumi.Resource]
    inference_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: SeldonServingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{TOKEN_PREFIX}:SeldonServing", name, None, opts)
        namespace = args.namespace
        service_type = "LoadBalancer" if args.allow_load_balancer else "ClusterIP"
        version = args.settings.chart_version
        # Releases are None when the platform team installs the charts (mlops:upstream.helm_charts false).
        release = _release if args.install_charts else _not_installed
        self.crds = release(self, name, "seldon-core-v2-crds", namespace, version, {}, [])
        setup = release(
            self,
            name,
            "seldon-core-v2-setup",
            namespace,
            version,
            {
                "controller": {"clusterwide": False},
                "hodometer": {"enabled": False},  # no usage metrics sent to Seldon
                "opentelemetry": {"enable": False},
            },
            [self.crds],
        )
        runtime = release(
            self,
            name,
            "seldon-core-v2-runtime",
            namespace,
            version,
            {
                # Upstream exposes scheduler and envoy as LoadBalancer
                # (k8s/helm-charts/seldon-core-v2-runtime).
                "scheduler": {"serviceType": service_type},
                "envoy": {"serviceType": service_type},
                "hodometer": {"disable": True},
                # Kafka-backed pipelines are not used: Models only, no Kafka to run or secure.
                "dataflow": {"disable": True},
                "pipelinegateway": {"disable": True},
            },
            [setup],
        )
        self.servers_release = release(
            self,
            name,
            "seldon-core-v2-servers",
            namespace,
            version,
            {
                "mlserver": {"replicas": 0},
                "triton": {"replicas": 0},  # our own Servers below are sized from settings
            },
            [runtime],
        )
        after = child(self, [self.crds, runtime])
        secret(
            self,
            "rclone-secret",
            RCLONE_SECRET,
            namespace,
            {
                "s3": (
                    "type: s3\nname: s3\nparameters:\n  provider: Other\n  env_auth: false\n"
                    f"  access_key_id: {args.store_access_key_id}\n  secret_access_key: "
                    f"{args.store_secret_access_key}\n"
                    f"  endpoint: {args.store_endpoint}\n"
                ),
            },
            child(self),
        )
        server_env = (
            serving_env(args.monitor_url, args.settings.prediction_log_limit_bytes)
            if args.monitor_url
            else None
        )
        self.servers = [
            create(
                f"{name}-server-{server.name}",
                seldon_server(
                    server.name,
                    namespace,
                    replicas=server.replicas,
                    resources=server.resources.to_kubernetes(),
                    labels=labels("seldon-server", server.name),
                    image=args.settings.serving_image,
                    env=server_env,
                ),
                after,
            )
            for server in args.settings.servers
        ]
        monitor_opts = child(self, [args.monitoring_release] if args.monitoring_release else [])
        create(
            f"{name}-server-metrics",
            pod_monitor(
                "seldon-servers",
                namespace,
                label_key="seldon-server-name",
                port="metrics",
                path="/metrics",
                labels=labels("seldon-server", name),
            ),
            monitor_opts,
        )
        peers = [{"podSelector": {}}] + [pods.namespace_selector(ns) for ns in args.ingress_namespaces]
        network_policy(
            self,
            "allow-inference",
            pods.allow_policy(
                "allow-inference",
                namespace,
                {},
                # Seldon's gateway, scheduler, agent and MLServer ports; callers are the pipelines and monitor
                # namespaces (Prometheus, in the monitoring namespace, scrapes the same ports).
                ingress=[(peers, [9000, 9001, 9002, 9003, 9004, 9005, 9006, 9008, 9055, 8080, 8081, 8082])],
                # Control plane (operator -> API server), artifact store and in-namespace traffic.
                egress=[([{"podSelector": {}}], []), ([pods.outside_cluster()], [443, 6443, 8333])],
            ),
            child(self),
        )
        if args.monitor_url and args.monitor_namespace:
            network_policy(
                self,
                "allow-prediction-feed",
                {
                    "metadata": {"name": "allow-prediction-feed", "namespace": namespace},
                    "spec": {
                        # Server pods only (the operator labels them with their Server's name).
                        "podSelector": {
                            "matchExpressions": [{"key": "seldon-server-name", "operator": "Exists"}]
                        },
                        "policyTypes": ["Egress"],
                        "egress": [
                            {
                                "to": [pods.namespace_selector(args.monitor_namespace)],
                                "ports": [{"protocol": "TCP", "port": args.monitor_port}],
                            }
                        ],
                    },
                },
                child(self),
            )
        # What a Model waits for: the CRDs' release (the Model kind) and the runtime (its scheduler).
        # Servers are
        # not needed first (the scheduler places Models when a Server with capacity appears), and each extra
        # dependency costs registration time per model.
        self.ready = [self.crds, runtime]
        self.inference_url = pulumi.Output.from_input(f"http://seldon-mesh.{namespace}.svc.cluster.local:80")
        self.register_outputs({"inference_url": self.inference_url})


def _not_installed(*_args: object) -> None:
    """In place of ``_release`` when the platform team installs the charts itself."""
    return None


def _release(
    component: pulumi.ComponentResource,
    name: str,
    chart: str,
    namespace: str,
    version: str | None,
    values: dict[str, object],
    depends: list[pulumi.Resource | None],
) -> k8s.helm.v3.Release:
    upstream = versions.get(chart)
    return k8s.helm.v3.Release(
        f"{name}-{chart.removeprefix('seldon-core-v2-')}",
        name=chart.removeprefix("seldon-core-"),
        chart=upstream.chart,
        version=version or upstream.version,
        repository_opts={"repo": upstream.repository},
        namespace=namespace,
        values=values,
        atomic=True,
        opts=child(component, depends),
    )
