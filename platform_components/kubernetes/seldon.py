"""Seldon Core 2 (BSL 1.1) from its Helm charts, plus MLServer ``Server`` CRs sized from settings."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from platform_components import images, versions
from platform_components.errors import ConfigError
from platform_components.kubernetes import pods
from platform_components.kubernetes.base import TOKEN_PREFIX, child, network_policy, secret
from platform_components.kubernetes.custom_resources import (
    RESTRICTED_CONTAINER_SECURITY,
    RESTRICTED_POD_SECURITY,
    ExtraVolume,
    create,
    pod_monitor,
    seldon_server,
)
from platform_components.kubernetes.naming import PART_OF, labels
from platform_components.policies._core import EXCEPTION_ANNOTATION, EXCEPTION_REASON_ANNOTATION
from platform_components.settings import SeldonSettings

RCLONE_SECRET = "mlops-artifact-store-rclone"
MONITORED_RUNTIME = "platform_components.serving.runtime.MonitoredMLflowRuntime"
# A volume of its own: the ServerConfig mounts the models volume (/mnt/agent) read-only in the mlserver
# container (SeldonIO/seldon-core k8s/helm-charts/seldon-core-v2-setup/templates/
# _components-statefulsets.tpl@v2.10.2), so a log there could never be written.
PREDICTION_LOG_VOLUME = "prediction-log"
PREDICTION_LOG_ROOT = "/mnt/predictions"
#: SeldonConfig components the setup chart defines, each with a pod ``securityContext`` value of its own
#: (seldon-core-v2-setup values.yaml@v2.10.2); ``serverConfig`` is the ServerConfigs' pod securityContext.
SETUP_POD_SECURITY_KEYS = (*images.SELDON_SETUP_COMPONENTS, "serverConfig")
#: Runtime components that stay on, with the one container the SeldonConfig gives each.
RUNTIME_CONTAINERS = {"scheduler": "scheduler", "envoy": "envoy"}
#: Runtime components we switch off: Kafka-backed pipelines and the model gateway need Kafka, which is not
#: run; hodometer sends usage metrics to Seldon.
RUNTIME_DISABLED = ("hodometer", "dataflow", "pipelinegateway", "modelgateway")
#: Scheduler ports the operator (in its own namespace) calls: plaintext and mTLS control plane.
SCHEDULER_CONTROL_PORTS = (9004, 9044)


def setup_values(serving_namespace: str, service_type: str) -> dict[str, object]:
    """Values of the setup chart (operator, SeldonConfig, ServerConfigs), every key in its values.yaml.

    The chart's pods get their pod ``securityContext`` from ``<component>.securityContext``; we add the
    seccomp profile there. What a container needs besides (dropping capabilities) no value of this chart
    reaches: the runtime's containers get it from the SeldonRuntime's overrides (``runtime_values``), the
    Servers' from each Server's ``podSpec``, and the operator's own Deployment cannot, so it runs in its own
    namespace at Pod Security "baseline".
    """
    values: dict[str, object] = {
        key: {"securityContext": dict(RESTRICTED_POD_SECURITY)} for key in SETUP_POD_SECURITY_KEYS
    }
    # The operator lives in its own namespace and watches the serving one (clusterwide + watchNamespaces;
    # SeldonIO/seldon-core operator/main.go@v2.10.2 watches only its own namespace otherwise).
    values["controller"] = {
        "clusterwide": True,
        "watchNamespaces": [serving_namespace],
        "securityContext": dict(RESTRICTED_POD_SECURITY),
    }
    values["opentelemetry"] = {"disable": True}  # no collector is run
    # The SeldonConfig's default Service type (LoadBalancer upstream); the runtime's overrides win over it
    # (getServiceType in operator/controllers/reconcilers/seldon/service_reconciler.go@v2.10.2).
    values["services"] = {"defaultServiceType": service_type}
    return values


def runtime_values(service_type: str) -> dict[str, object]:
    """Values of the runtime chart (the SeldonRuntime), every key in its values.yaml or read by its template.

    ``<component>.podSpec`` is not declared in the chart's values.yaml, but its template writes it into the
    SeldonRuntime's ``overrides[].podSpec`` (seldon-core-v2-runtime templates/seldon-runtime.yaml@v2.10.2),
    which the operator merges by container name into the SeldonConfig's pod spec.
    """
    values: dict[str, object] = {
        component: {
            # Upstream exposes scheduler and envoy as LoadBalancer.
            "serviceType": service_type,
            "podSpec": {
                "containers": [{"name": container, "securityContext": dict(RESTRICTED_CONTAINER_SECURITY)}]
            },
        }
        for component, container in RUNTIME_CONTAINERS.items()
    }
    for component in RUNTIME_DISABLED:
        values[component] = {"disable": True}
    return values


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
        # Seldon starts MLServer itself (not our serving.server, which switches them off in code):
        # without this, every counter child of MLServer's data plane carries a `_created` series too,
        # three more per model (prometheus_client reads the variable at import).
        "PROMETHEUS_DISABLE_CREATED_SERIES": "true",
    }


@dataclass(frozen=True)
class SeldonServingArgs:
    """Arguments of ``SeldonServing``.

    Attributes:
        settings: chart version, Servers, the operator's namespace and the prediction-log volume.
        namespace: serving namespace (created by the platform; Models live here too).
        store_endpoint / store_access_key_id / store_secret_access_key: the artifact store Models load from.
        store_region: its region (``mlops:mlflow.artifact_store.region``), for rclone's request signing.
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
    store_region: str = "us-east-1"
    allow_load_balancer: bool = False
    monitoring_release: pulumi.Resource | None = None
    install_charts: bool = True
    ingress_namespaces: tuple[str, ...] = ()
    monitor_url: str | None = None
    monitor_namespace: str | None = None
    monitor_port: int = 8090


class SeldonServing(pulumi.ComponentResource):
    """Seldon Core 2's charts in order (crds -> setup -> runtime), then our Servers (no servers chart)."""

    crds: k8s.helm.v3.Release
    servers: list[k8s.apiextensions.CustomResource]
    ready: list[pulumi.Resource]
    inference_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: SeldonServingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{TOKEN_PREFIX}:SeldonServing", name, None, opts)
        namespace = args.namespace
        operator_namespace = args.settings.operator_namespace
        if operator_namespace == namespace:
            raise ConfigError(
                f"mlops:seldon.operator_namespace is {operator_namespace!r}, the serving namespace: the "
                "operator runs at Pod Security 'baseline' and the serving namespace enforces 'restricted'; "
                "set mlops:seldon.operator_namespace to a namespace of its own, e.g. 'seldon-system'"
            )
        service_type = "LoadBalancer" if args.allow_load_balancer else "ClusterIP"
        version = args.settings.chart_version
        operator_space = _operator_namespace(self, name, operator_namespace)
        network_policy(
            self,
            "operator-egress",
            pods.allow_policy(
                "allow-operator",
                operator_namespace,
                {},
                ingress=[],
                # The operator calls the API server and the scheduler in the serving namespace.
                egress=[
                    ([pods.outside_cluster()], [443, 6443]),
                    ([pods.namespace_selector(namespace)], list(SCHEDULER_CONTROL_PORTS)),
                ],
            ),
            child(self, [operator_space]),
        )
        # Releases are None when the platform team installs the charts (mlops:upstream.helm_charts false).
        release = _release if args.install_charts else _not_installed
        self.crds = release(self, name, "seldon-core-v2-crds", namespace, version, {}, [])
        setup = release(
            self,
            name,
            "seldon-core-v2-setup",
            operator_namespace,
            version,
            setup_values(namespace, service_type),
            [self.crds, operator_space],
        )
        runtime = release(
            self, name, "seldon-core-v2-runtime", namespace, version, runtime_values(service_type), [setup]
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
                    # rclone signs S3 requests for this region (an AWS bucket outside us-east-1 needs it).
                    f"  region: {args.store_region}\n"
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
                    image=args.settings.serving_image or images.reference("serving"),
                    env=server_env,
                    volumes=(
                        [
                            ExtraVolume(
                                PREDICTION_LOG_VOLUME,
                                PREDICTION_LOG_ROOT,
                                args.settings.prediction_log_volume_size,
                            )
                        ]
                        if server_env
                        else []
                    ),
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
                # The agent's metrics (container port "metrics", 9006) and MLServer's own, where our
                # runtime's counters are too ("server-metrics", 8082): setup chart
                # _components-statefulsets.tpl@v2.10.2.
                ports=["metrics", "server-metrics"],
                path="/metrics",
                labels=labels("seldon-server", name),
            ),
            monitor_opts,
        )
        peers = [{"podSelector": {}}] + [
            pods.namespace_selector(ns) for ns in (*args.ingress_namespaces, operator_namespace)
        ]
        network_policy(
            self,
            "allow-inference",
            pods.allow_policy(
                "allow-inference",
                namespace,
                {},
                # Seldon's gateway, scheduler, agent (HTTP 9001, gRPC 9501) and MLServer ports; callers are
                # the pipelines and monitor namespaces (Prometheus, in the monitoring namespace, scrapes the
                # same ports) and the operator (scheduler control plane 9004/9044).
                ingress=[
                    (
                        peers,
                        [9000, 9001, 9002, 9003, 9004, 9005, 9006, 9008, 9044, 9055, 9500, 9501, 8080, 8081]
                        + [8082],
                    )
                ],
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


OPERATOR_PSS_REASON = (
    "The Seldon operator's Deployment (seldon-core-v2-setup 2.10.2) sets no seccomp profile on its "
    "container and drops no capabilities, and no chart value or CRD field reaches that container; it runs "
    "alone here at 'baseline' (warn and audit stay 'restricted'). Every pod it creates runs in the serving "
    "namespace, which enforces 'restricted'."
)


def _operator_namespace(
    component: pulumi.ComponentResource, name: str, namespace: str
) -> k8s.core.v1.Namespace:
    """The operator's namespace: Pod Security 'baseline' (stated and reasoned), default-deny, DNS allowed."""
    created = k8s.core.v1.Namespace(
        f"{name}-operator-namespace",
        metadata={
            "name": namespace,
            "labels": {
                "pod-security.kubernetes.io/enforce": "baseline",
                "pod-security.kubernetes.io/enforce-version": "latest",
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/audit": "restricted",
                "app.kubernetes.io/part-of": PART_OF,
            },
            "annotations": {
                EXCEPTION_ANNOTATION: "NAMESPACE-PSS-LABELS",
                EXCEPTION_REASON_ANNOTATION: OPERATOR_PSS_REASON,
            },
        },
        opts=child(component),
    )
    after = child(component, [created])
    network_policy(component, "operator-default-deny", pods.default_deny(namespace), after)
    network_policy(component, "operator-allow-dns", pods.allow_dns(namespace), after)
    return created


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
