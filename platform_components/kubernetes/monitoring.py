"""kube-prometheus-stack, platform alerts, model rules and dashboards (sharded), the model monitor."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from platform_components import images, versions
from platform_components.errors import ConfigError
from platform_components.kubernetes import pods, seldon_metrics
from platform_components.kubernetes.base import TOKEN_PREFIX, child, network_policy, secret, service_account
from platform_components.kubernetes.custom_resources import (
    AlertRule,
    create,
    prometheus_rule,
    service_monitor,
)
from platform_components.kubernetes.fleet_dashboard import FLEET_DASHBOARD_FILE, fleet_dashboard
from platform_components.kubernetes.mlflow import CHECKSUM_ANNOTATION, POSTGRES_PORT, credentials_checksum
from platform_components.kubernetes.model import (
    RUNBOOK,
    dashboard_json,
    grafana_dashboard,
    monitor_entry,
    rule_group,
)
from platform_components.kubernetes.naming import labels, object_name, selector
from platform_components.kubernetes.project import (
    GRAFANA_FOLDER_ANNOTATION,
    PROJECT_ALERT_LABEL,
    grafana_folder,
    project_dashboard,
    routing_labels,
)
from platform_components.policies._core import EXCEPTION_ANNOTATION, EXCEPTION_REASON_ANNOTATION
from platform_components.settings import (
    CatalogSettings,
    ModelDeploymentSettings,
    MonitoringSettings,
    MonitorSettings,
    Person,
    PolicySettings,
    ProjectSettings,
    Team,
)

GRAFANA_SECRET = "grafana-admin"
MONITOR_PORT = 8090
#: The monitor's ServiceAccount; the loop's deployer runs as it (deployer_access.py grants its rights).
MONITOR_SERVICE_ACCOUNT = "model-monitor"
#: Why the monitor's pod mounts its token (the SERVICE-ACCOUNT-TOKEN policy's exception reason).
MONITOR_TOKEN_REASON = (
    "The loop's deployer runs in the monitor and calls the Kubernetes API as this ServiceAccount to create "
    "and patch Seldon Models; its Role (mlops-model-deployer) allows only that and get on the models' owner "
    "ConfigMaps, in the serving namespace"
)
RELEASE_NAME = "kps"
# The monitor reads models.json once, at start: a changed declaration (a threshold, a new model) restarts it.
MODELS_CHECKSUM_ANNOTATION = "mlops.platform/models-checksum"
PIPELINE_CHECKSUM_ANNOTATION = "mlops.platform/pipeline-checksum"
# Where the monitor's ConfigMap (models.json and the compiled pipeline) is mounted, read-only.
MONITOR_CONFIG_DIR = "/etc/mlops"
PIPELINE_SETTING = "mlops:monitoring.monitor.pipeline"
# The kubelet's authenticated port, scraped by the chart's kubelet ServiceMonitor (https-metrics).
KUBELET_PORT = 10250
# kube-prometheus-stack 81.6.2: prometheusOperator.tls.internalPort (values.yaml) is the operator's https
# listen port, the webhook Service's targetPort; its pods carry app=<chart name>-operator, release=<release>
# (templates/prometheus-operator/deployment.yaml, service.yaml).
OPERATOR_WEBHOOK_PORT = 10250
OPERATOR_SELECTOR = {"app": "kube-prometheus-stack-operator", "release": RELEASE_NAME}


@dataclass(frozen=True)
class MonitoringArgs:
    """Arguments of ``Monitoring``.

    Attributes:
        settings: chart version, retention, Grafana, the monitor's image and schedule.
        namespace: monitoring namespace (created by the platform).
        grafana_password: Grafana admin password (kept in a Secret only).
        models: the model deployments whose rules, dashboards and monitor entries are packed into shards.
        tracking_uri / mlflow_username / mlflow_password: how the monitor reaches MLflow.
        mlflow_namespace / serving_namespace / kfp_namespace: for the platform's health rules and egress.
        install_charts: install kube-prometheus-stack (``mlops:upstream.helm_charts``). Default: True.
        policy: the loop's policy (``mlops:policy``), resolved per model into ``models.json``.
        store_url: the monitor store's PostgreSQL URL (kept in a Secret only); None: SQLite on its PVC.
        projects: the catalog's projects: their models' alerts carry their routing labels, their models'
            dashboards (and an overview) land in their Grafana folder.
        people / teams: the catalog's people and teams: with ``projects``, the monitor's ``catalog.json``
            (the fleet view's owners and staleness, ``GET /v2/fleet``).
    """

    settings: MonitoringSettings
    namespace: str
    grafana_password: str
    models: tuple[ModelDeploymentSettings, ...]
    tracking_uri: str
    mlflow_username: str
    mlflow_password: str
    mlflow_namespace: str
    serving_namespace: str
    kfp_namespace: str
    install_charts: bool = True
    policy: PolicySettings = field(default_factory=PolicySettings)
    store_url: str | None = None
    projects: tuple[ProjectSettings, ...] = ()
    people: tuple[Person, ...] = ()
    teams: tuple[Team, ...] = ()


MONITOR_STORE_SECRET = "model-monitor-store"
# The variable the monitor reads its store's URL from (monitoring/store.py STORE_URL_ENV; not imported:
# the render must not load numpy and pandas).
STORE_URL_ENV = "MLOPS_MONITOR_STORE_URL"


def monitor_store_egress(store_url: str, mlflow_namespace: str) -> tuple[list[dict], list[int]]:
    """Where the monitor reaches its store: the bundled PostgreSQL's pods, or the URL's host and port."""
    from urllib.parse import urlsplit

    parts = urlsplit(store_url.replace("+psycopg2", "", 1))
    port = parts.port or POSTGRES_PORT
    if parts.hostname == f"postgres.{mlflow_namespace}.svc.cluster.local":
        postgres_pods = {"matchLabels": {"app.kubernetes.io/name": "postgres"}}
        return [{**pods.namespace_selector(mlflow_namespace), "podSelector": postgres_pods}], [port]
    return [pods.outside_cluster()], [port]


def shard_args(monitor: MonitorSettings) -> list[str]:
    """The monitor's sharding and cache flags; none at the defaults (one replica, the default cache), so a
    default render is unchanged."""
    flags: list[str] = []
    if monitor.replicas > 1:
        flags += ["--replicas", str(monitor.replicas)]
    if monitor.window_cache_rows != MonitorSettings.model_fields["window_cache_rows"].default:
        flags += ["--window-cache-rows", str(monitor.window_cache_rows)]
    return flags


class Monitoring(pulumi.ComponentResource):
    """kube-prometheus-stack (Prometheus Operator CRDs, Prometheus, Alertmanager, Grafana with the dashboard
    sidecar), the platform's PrometheusRules, per-model rules and dashboards packed into shared objects,
    and one
    monitor CronJob for every model."""

    release: k8s.helm.v3.Release | None
    monitor_url: str
    prometheus_url: pulumi.Output[str]
    grafana_url: pulumi.Output[str]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}:Monitoring", name, None, opts)
        self._args = args
        namespace = args.namespace
        secret(
            self,
            "grafana-secret",
            GRAFANA_SECRET,
            namespace,
            {
                "admin-user": args.settings.grafana.admin_user,
                "admin-password": args.grafana_password,
            },
            child(self),
        )
        # None when the platform team installs the chart (mlops:upstream.helm_charts false).
        self.release = self._create_release(name) if args.install_charts else None
        after = child(self, [self.release])
        create(
            f"{name}-platform-rules",
            prometheus_rule(
                "mlops-platform",
                namespace,
                groups=[platform_rule_group(args)],
                labels=labels("rules", name),
            ),
            after,
        )
        self._create_model_shards(name, after)
        k8s.core.v1.ConfigMap(
            f"{name}-platform-dashboards",
            metadata={
                "name": "platform-dashboards",
                "namespace": namespace,
                "labels": {**labels("platform-dashboards", name), "grafana_dashboard": "1"},
            },
            data={
                "mlops-platform.json": json.dumps(
                    platform_dashboard(args), sort_keys=True, separators=(",", ":")
                ),
                # Every model in one table (not a panel per model): fleet_dashboard.py.
                FLEET_DASHBOARD_FILE: json.dumps(fleet_dashboard(), sort_keys=True, separators=(",", ":")),
            },
            opts=child(self),
        )
        self._create_monitor(name)
        # Serving pods post their prediction logs here (POST /v2/predictions; shipper.py).
        self.monitor_url = f"http://model-monitor.{namespace}.svc.cluster.local:{MONITOR_PORT}"
        network_policy(
            self,
            "allow-monitoring",
            pods.allow_policy(
                "allow-monitoring",
                namespace,
                {},
                ingress=[([{"podSelector": {}}], [])],
                # Prometheus scrapes every namespace; the operator and Grafana's sidecar talk to the API
                # server; the kubelet (cAdvisor, /metrics/resource) listens on the nodes' addresses, which
                # no pod selector matches.
                egress=[
                    ([{"namespaceSelector": {}}], []),
                    ([pods.outside_cluster()], [443, 6443, KUBELET_PORT]),
                ],
            ),
            child(self),
        )
        network_policy(
            self,
            "allow-operator-webhook",
            pods.allow_policy(
                "allow-operator-webhook",
                namespace,
                OPERATOR_SELECTOR,
                # The API server calls the operator's admission webhook (PrometheusRule validation) from the
                # control plane's address, outside the pod network.
                ingress=[([pods.outside_cluster()], [OPERATOR_WEBHOOK_PORT])],
            ),
            child(self),
        )
        self.prometheus_url = pulumi.Output.from_input(
            f"http://kps-prometheus.{namespace}.svc.cluster.local:9090"
        )
        self.grafana_url = pulumi.Output.from_input(f"http://kps-grafana.{namespace}.svc.cluster.local:80")
        self.register_outputs({"prometheus_url": self.prometheus_url, "grafana_url": self.grafana_url})

    def _create_release(self, name: str) -> k8s.helm.v3.Release:
        settings = self._args.settings
        upstream = versions.get("kube-prometheus-stack")
        restricted = {
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "runAsGroup": 65534,
            "fsGroup": 65534,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        values = {
            "fullnameOverride": "kps",
            # node-exporter needs hostNetwork/hostPID/hostPath: not allowed in a PSS-restricted namespace.
            "nodeExporter": {"enabled": False},
            "kubeStateMetrics": {"enabled": True},
            "prometheus": {
                "service": {"type": "ClusterIP"},
                "prometheusSpec": {
                    "retention": settings.retention,
                    # The chart sets none; without them the namespace LimitRange's 512Mi default caps it.
                    "resources": settings.prometheus_resources.to_kubernetes(),
                    "securityContext": restricted,
                    # Pick up every ServiceMonitor, PodMonitor and PrometheusRule, not only the chart's own.
                    "serviceMonitorSelectorNilUsesHelmValues": False,
                    "podMonitorSelectorNilUsesHelmValues": False,
                    "ruleSelectorNilUsesHelmValues": False,
                    "storageSpec": {
                        "volumeClaimTemplate": {
                            "spec": {
                                "accessModes": ["ReadWriteOnce"],
                                "resources": {"requests": {"storage": settings.storage_size}},
                            }
                        }
                    },
                },
            },
            "alertmanager": {
                "service": {"type": "ClusterIP"},
                "alertmanagerSpec": {
                    "securityContext": restricted,
                    "resources": settings.alertmanager_resources.to_kubernetes(),
                },
            },
            "grafana": {
                "enabled": settings.grafana.enabled,
                "service": {"type": "ClusterIP"},
                "admin": {
                    "existingSecret": GRAFANA_SECRET,
                    "userKey": "admin-user",
                    "passwordKey": "admin-password",
                },
                "sidecar": {
                    "dashboards": {
                        "enabled": True,
                        "label": "grafana_dashboard",
                        "labelValue": "1",
                        "searchNamespace": "ALL",
                        # A ConfigMap annotated with a folder lands in that subdirectory of the sidecar's
                        # folder, and Grafana makes each subdirectory a folder (a project's); files at the
                        # top stay in General, as before (tests/upstream_facts/grafana.py).
                        "folderAnnotation": GRAFANA_FOLDER_ANNOTATION,
                        "provider": {"foldersFromFilesStructure": True},
                    }
                },
            },
            "prometheusOperator": {"service": {"type": "ClusterIP"}},
        }
        return k8s.helm.v3.Release(
            f"{name}-kube-prometheus-stack",
            name=RELEASE_NAME,
            chart=upstream.chart,
            version=settings.chart_version or upstream.version,
            repository_opts={"repo": upstream.repository},
            namespace=self._args.namespace,
            values=values,
            atomic=True,
            opts=child(self),
        )

    def _create_model_shards(self, name: str, after: pulumi.ResourceOptions) -> None:
        """Pack model rules and dashboards into shared objects: constant Pulumi resources per model."""
        settings = self._args.settings
        models = self._args.models
        projects = {project.name: project for project in self._args.projects}
        routing = {name: routing_labels(project) for name, project in projects.items()}
        for index, start in enumerate(range(0, len(models), settings.rules_per_object)):
            shard = models[start : start + settings.rules_per_object]
            create(
                f"{name}-model-rules-{index:03d}",
                prometheus_rule(
                    f"model-rules-{index:03d}",
                    self._args.namespace,
                    groups=[
                        rule_group(
                            model,
                            routing.get(model.project or "")
                            or ({PROJECT_ALERT_LABEL: model.project} if model.project else None),
                        )
                        for model in shard
                    ],
                    labels=labels("model-rules", name),
                ),
                after,
            )
        # Dashboards are filed by folder, and a folder is a ConfigMap's annotation: models without a catalog
        # project keep the shards they had (model-dashboards-NNN, General), each project gets its own.
        per_map = settings.grafana.dashboards_per_config_map
        unfiled = [model for model in models if model.project not in projects]
        for index, start in enumerate(range(0, len(unfiled), per_map)):
            shard = unfiled[start : start + per_map]
            k8s.core.v1.ConfigMap(
                f"{name}-model-dashboards-{index:03d}",
                metadata={
                    "name": f"model-dashboards-{index:03d}",
                    "namespace": self._args.namespace,
                    "labels": {**labels("model-dashboards", name), "grafana_dashboard": "1"},
                },
                data={f"model-{model.name}.json": dashboard_json(model) for model in shard},
                opts=child(self),
            )
        filed: dict[str, list[ModelDeploymentSettings]] = {project: [] for project in projects}
        for model in models:
            if model.project in projects:
                filed[model.project].append(model)
        for project_name, owned in filed.items():
            project = projects[project_name]
            # Shard 0 always exists and holds the project's overview: its folder exists before its models.
            for index, start in enumerate(range(0, max(len(owned), 1), per_map)):
                shard = owned[start : start + per_map]
                data = {f"model-{model.name}.json": dashboard_json(model) for model in shard}
                if index == 0:
                    data[f"project-{project.name}.json"] = json.dumps(
                        project_dashboard(project, [model.name for model in owned]),
                        sort_keys=True,
                        separators=(",", ":"),
                    )
                config_map = object_name("model-dashboards", project.name, f"{index:03d}")
                k8s.core.v1.ConfigMap(
                    f"{name}-{config_map}",
                    metadata={
                        "name": config_map,
                        "namespace": self._args.namespace,
                        "labels": {**labels("model-dashboards", name), "grafana_dashboard": "1"},
                        "annotations": {GRAFANA_FOLDER_ANNOTATION: grafana_folder(project)},
                    },
                    data=data,
                    opts=child(self),
                )

    def _create_monitor(self, name: str) -> None:
        """One monitor service for every model: feedback in, checks on an interval, ``/metrics`` scraped.

        A StatefulSet (not a CronJob): the alert rules read its gauges, so it must be scrapable, and its
        store (labels, results, retrain decisions) lives on a PVC. ``models.json`` declares the deployed
        models and their thresholds for it.
        """
        args = self._args
        namespace = args.namespace
        opts = child(self)
        monitor = args.settings.monitor
        entries = [monitor_entry(model, args.policy) for model in args.models]
        models_json = json.dumps(entries, sort_keys=True, indent=1)
        # The fleet view's catalog (loop/service.py reads it beside models.json, again on every request:
        # a mounted ConfigMap is updated in place, so owners change without a restart).
        catalog = CatalogSettings(people=args.people, teams=args.teams, projects=args.projects)
        config_data = {
            "models.json": models_json,
            "catalog.json": catalog.model_dump_json(exclude_defaults=True),
        }
        retrain_args: list[str] = []
        pipeline_text = None
        if monitor.pipeline is not None:
            pipeline_key, pipeline_text = read_pipeline_ir(monitor.pipeline)
            config_data[pipeline_key] = pipeline_text
            retrain_args = [
                "--kfp-host", monitor.kfp_host,
                "--pipeline", f"{MONITOR_CONFIG_DIR}/{pipeline_key}",
                "--experiment", monitor.experiment,
            ]  # fmt: skip
        k8s.core.v1.ConfigMap(
            f"{name}-monitor-config",
            metadata={"name": "model-monitor", "namespace": namespace},
            data=config_data,
            opts=opts,
        )
        secret(
            self,
            "monitor-secret",
            "model-monitor-mlflow",
            namespace,
            {
                "MLFLOW_TRACKING_USERNAME": args.mlflow_username,
                "MLFLOW_TRACKING_PASSWORD": args.mlflow_password,
            },
            opts,
        )
        store_env: dict[str, tuple[str, str]] = {}
        store_egress = []
        if args.store_url is not None:
            # The URL carries the role's password: a Secret, read as the variable the service reads
            # (a flag would show it in the pod spec and the process list).
            secret(
                self,
                "monitor-store-secret",
                MONITOR_STORE_SECRET,
                namespace,
                {STORE_URL_ENV: args.store_url},
                opts,
            )
            store_env[STORE_URL_ENV] = (MONITOR_STORE_SECRET, STORE_URL_ENV)
            store_egress.append(monitor_store_egress(args.store_url, args.mlflow_namespace))
        service_account(self, "monitor", MONITOR_SERVICE_ACCOUNT, namespace, opts)
        pod_labels = labels("model-monitor", name)
        server = pods.container(
            "monitor",
            monitor.image or images.reference("monitor"),
            resources=monitor.resources,
            readiness=pods.http_probe("/health", "http"),
            liveness=pods.http_probe("/health", "http", period=20, failures=6),
            startup=pods.http_probe("/health", "http", period=5, failures=60),
            command=["python", "-m", "platform_components.loop.service"],
            args=[
                "--state-dir",
                "/var/lib/mlops",
                "--host",
                "0.0.0.0",
                "--port",
                str(MONITOR_PORT),
                "--tracking-uri",
                args.tracking_uri,
                "--check-interval",
                str(monitor.check_interval_seconds),
                # The round's deployer creates and patches each model's Seldon Model there.
                "--serving-namespace",
                args.serving_namespace,
                *retrain_args,
                *shard_args(monitor),
            ],  # fmt: skip
            ports={"http": MONITOR_PORT},
            env={"HOME": "/tmp", "MLOPS_MONITOR_MODELS": f"{MONITOR_CONFIG_DIR}/models.json"},
            secret_env={
                "MLFLOW_TRACKING_USERNAME": ("model-monitor-mlflow", "MLFLOW_TRACKING_USERNAME"),
                "MLFLOW_TRACKING_PASSWORD": ("model-monitor-mlflow", "MLFLOW_TRACKING_PASSWORD"),
                **store_env,
            },
            mounts={"state": "/var/lib/mlops", "tmp": "/tmp"},
            read_only_mounts={"config": MONITOR_CONFIG_DIR},
        )
        template = pods.pod_template(
            pod_labels,
            [server],
            service_account=MONITOR_SERVICE_ACCOUNT,
            volumes=[
                pods.empty_dir("tmp", size_limit="2Gi"),
                {"name": "config", "configMap": {"name": "model-monitor"}},
            ],
        )
        template["metadata"]["annotations"] = {
            MODELS_CHECKSUM_ANNOTATION: hashlib.sha256(models_json.encode()).hexdigest()[:16],
            EXCEPTION_ANNOTATION: "SERVICE-ACCOUNT-TOKEN",
            EXCEPTION_REASON_ANNOTATION: MONITOR_TOKEN_REASON,
        }
        if args.store_url is not None:
            # The variable is read at start: a rotated password (a new Secret value) restarts the monitor.
            template["metadata"]["annotations"][CHECKSUM_ANNOTATION] = credentials_checksum(args.store_url)
        if pipeline_text is not None:
            # The monitor reads the pipeline's inputs at start: a recompiled pipeline restarts it too.
            template["metadata"]["annotations"][PIPELINE_CHECKSUM_ANNOTATION] = hashlib.sha256(
                pipeline_text.encode()
            ).hexdigest()[:16]
        # The deployer's in-cluster client reads the token the kubelet mounts (loop/seldon.py).
        template["spec"]["automountServiceAccountToken"] = True
        k8s.apps.v1.StatefulSet(
            f"{name}-monitor",
            metadata={"name": "model-monitor", "namespace": namespace, "labels": pod_labels},
            spec={
                "serviceName": "model-monitor",
                # Each pod checks its share of the models (loop/shard.py, from its ordinal); replicas > 1
                # share the PostgreSQL store (settings refuse them on SQLite), whose leases keep a model's
                # retrain from running twice.
                "replicas": monitor.replicas,
                "selector": {"matchLabels": selector("model-monitor", name)},
                "template": template,
                "volumeClaimTemplates": [pods.volume_claim("state", monitor.storage_size)],
            },
            opts=opts,
        )
        k8s.core.v1.Service(
            f"{name}-monitor-service",
            metadata={"name": "model-monitor", "namespace": namespace, "labels": pod_labels},
            spec=pods.cluster_ip_service_spec(selector("model-monitor", name), {"http": MONITOR_PORT}),
            opts=opts,
        )
        create(
            f"{name}-monitor-service-monitor",
            service_monitor(
                "model-monitor",
                namespace,
                selector=selector("model-monitor", name),
                port="http",
                path="/metrics",
                labels=pod_labels,
            ),
            child(self, [self.release]),
        )
        network_policy(
            self,
            "monitor-allow",
            pods.allow_policy(
                "model-monitor-allow",
                namespace,
                selector("model-monitor", name),
                # Feedback (ground truth) comes from the applications' namespaces and pipelines, prediction
                # logs from the serving namespace's Servers (POST /v2/predictions); Prometheus scrapes from
                # this namespace.
                ingress=[
                    (
                        [{"podSelector": {}}]
                        + [
                            pods.namespace_selector(ns) for ns in (args.serving_namespace, args.kfp_namespace)
                        ],
                        [MONITOR_PORT],
                    )
                ],
                egress=[
                    ([pods.namespace_selector(args.mlflow_namespace)], [5000, 8333]),
                    ([pods.namespace_selector(args.serving_namespace)], [80, 9000]),
                    ([pods.namespace_selector(args.kfp_namespace)], [8888]),
                    # The deployer calls the API server (Seldon Models, owner ConfigMaps).
                    ([pods.outside_cluster()], [443, 6443]),
                    # The store (PostgreSQL), shared by the replicas.
                    *store_egress,
                ],
            ),
            opts,
        )


def platform_rule_group(args: MonitoringArgs) -> dict[str, object]:
    """Platform health: serving errors and latency across models, MLflow and pipelines up, monitor failing."""
    rules = [
        AlertRule(
            "ServingErrorRateHigh",
            f"{seldon_metrics.error_share()} > 0.05",
            "10m",
            "critical",
            "More than 5% of inference requests fail with a server error across models",
            RUNBOOK,
        ),
        AlertRule(
            "ServingLatencyHigh",
            f"{seldon_metrics.fleet_latency_quantile(0.95)} > 1",
            "15m",
            "warning",
            "p95 inference latency above 1s across models",
            RUNBOOK,
        ),
        AlertRule(
            "MlflowDown",
            # `or vector(0)` and absent(): with every pod gone there is no `up` series, and a bare
            # sum() over nothing never fires.
            f'(sum(up{{namespace="{args.mlflow_namespace}",service="mlflow"}}) or vector(0)) == 0',
            "5m",
            "critical",
            "No MLflow replica is scraped as up",
            RUNBOOK,
        ),
        AlertRule(
            "MlflowServerErrors",
            # MLflow's exporter prefixes its request metrics with "mlflow" (server/prometheus_exporter.py).
            f'sum(rate(mlflow_http_request_total{{namespace="{args.mlflow_namespace}",status=~"5.."}}[5m]))'
            " > 0.1",
            "10m",
            "warning",
            "MLflow answers 5xx (database or store trouble)",
            RUNBOOK,
        ),
        AlertRule(
            "PipelinesApiUnavailable",
            f'kube_deployment_status_replicas_available{{namespace="{args.kfp_namespace}",'
            'deployment="ml-pipeline"} < 1',
            "10m",
            "critical",
            "The Kubeflow Pipelines API server has no available replica",
            RUNBOOK,
        ),
        AlertRule(
            "ModelMonitorDown",
            f'(sum(up{{namespace="{args.namespace}",service="model-monitor"}}) or vector(0)) == 0',
            "10m",
            "warning",
            "The model monitor is not scraped: no drift or accuracy alerts can fire",
            RUNBOOK,
        ),
        AlertRule(
            "ModelMonitorStale",
            # min by model: one fresh model must not hide a stale one.
            f"time() - min by (model) (mlops_monitor_last_check_timestamp_seconds) > "
            f"{3 * args.settings.monitor.check_interval_seconds}",
            "10m",
            "warning",
            "The model monitor has not completed a check for three intervals",
            RUNBOOK,
        ),
    ]
    return {"name": "mlops-platform", "rules": [rule.to_dict() for rule in rules]}


def platform_dashboard(args: MonitoringArgs) -> dict[str, object]:
    """The platform overview: serving traffic and errors, MLflow, pipelines and the monitor."""
    panels = [
        ("Inference requests per second by model", "sum by (model) (rate(seldon_model_infer_total[5m]))"),
        ("Inference server error share", seldon_metrics.error_share()),
        ("MLflow replicas up", f'sum(up{{namespace="{args.mlflow_namespace}",service="mlflow"}})'),
        (
            "Pipelines API available replicas",
            f'kube_deployment_status_replicas_available{{namespace="{args.kfp_namespace}",deployment="ml-pipeline"}}',
        ),
        ("Seconds since the last monitor check", "time() - max(mlops_monitor_last_check_timestamp_seconds)"),
        (
            "Models below accuracy threshold",
            'count(ALERTS{alertname="ModelAccuracyLow",alertstate="firing"})',
        ),
    ]
    return grafana_dashboard("mlops-platform", "MLOps platform", ["mlops-platform"], panels)


def read_pipeline_ir(setting: str) -> tuple[str, str]:
    """Read the compiled pipeline ``mlops:monitoring.monitor.pipeline`` names, for the monitor's ConfigMap.

    A relative path is taken from the Pulumi project root (the folder of ``Pulumi.yaml`` above the working
    directory: the engine runs the program in ``infra/``, ``mlops render`` from the root).

    Returns:
        The ConfigMap key (``pipeline.yaml``, or ``.yml``/``.json`` as given) and the file's text.

    Raises:
        ConfigError: the file is missing or unreadable, is not a compiled KFP pipeline, or declares no
            ``training_data_path`` input (a retrain passes the chosen rows there).
    """
    from platform_components.pipelines.runner import PipelineError, pipeline_input_names

    path = Path(setting)
    if not path.is_absolute():
        path = _project_root() / path
    try:
        text = path.read_text(encoding="utf-8")
        inputs = pipeline_input_names(path)
    except OSError as error:
        raise ConfigError(
            f"{PIPELINE_SETTING}: cannot read {setting!r} (resolved to {path}: {error.strerror or error}); "
            "compile the project's pipeline first (mlops pipeline compile FILE.py:FUNCTION --out FILE.yaml)"
        ) from None
    except PipelineError as error:
        raise ConfigError(f"{PIPELINE_SETTING}: {error}") from None
    if "training_data_path" not in inputs:
        raise ConfigError(
            f"{PIPELINE_SETTING}: the pipeline in {setting!r} has no input 'training_data_path' (it takes "
            f"{sorted(inputs)}); a retrain passes the chosen rows there, so add the input and recompile"
        )
    return f"pipeline{path.suffix}", text


def _project_root() -> Path:
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "Pulumi.yaml").is_file():
            return folder
    return here
