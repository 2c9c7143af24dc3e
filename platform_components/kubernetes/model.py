"""ModelDeployments: the declared models (registered model + alias) and their owner objects; alerts as data.

A model is declared by registered model and alias only. The Seldon ``Model`` belongs to the loop's deployer
(``platform_components.loop.seldon``), which creates it when the alias resolves, with an ownerReference to
the owner object Pulumi declares here: a ConfigMap ``mlops-model-<name>`` in the serving namespace holding
what the deployer needs (``platform_components.seldon_models``). Removing the model from the stack, or
``pulumi destroy``, deletes the owner and the garbage collector deletes the ``Model``. The provider updates
a ConfigMap in place (``enable_config_map_mutable`` in cluster.py), so a changed replica count or memory
keeps the owner's UID and the Model with it.

Speed rule (issue 2: each model adds at most 3 Pulumi resources; issue 10: a fleet renders within 1.5x of
registering its objects flat): a model is 1 Pulumi resource, its owner ConfigMap, a child of one
``ModelDeployments`` component for all the models of a serving namespace. A component per model doubled the
resources a fleet registers (and the steps of every ``pulumi up``) for no object in the cluster. Its
PrometheusRule group, Grafana dashboard and monitor entry are pure data that ``Monitoring`` packs into
shared, sharded objects (``rules_per_object`` / ``dashboards_per_config_map`` models per object); one
PodMonitor scrapes every server; one Role per serving namespace (``deployer_access.py``) lets the deployer
read every owner.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from platform_components.kubernetes import seldon_metrics
from platform_components.kubernetes.base import TOKEN_PREFIX
from platform_components.kubernetes.custom_resources import AlertRule
from platform_components.seldon_models import ModelOwner, owner_config_map
from platform_components.settings import ModelDeploymentSettings, PolicySettings

RUNBOOK = "https://github.com/mlops-platform/mlops-platform/blob/main/docs/runbooks.md"
OWNER_TYPE = "kubernetes:core/v1:ConfigMap"
#: The component each owner had as its parent before they shared one (the URNs their stacks hold).
PREVIOUS_PARENT_TYPE = f"{TOKEN_PREFIX}:ModelDeployment"


@dataclass(frozen=True)
class ModelDeploymentsArgs:
    """Arguments of ``ModelDeployments``.

    Attributes:
        models: each model's name, registered model, alias, server, replicas, memory, project, thresholds.
        namespace: the serving namespace (Seldon runtime): the owner objects and the deployer's ``Model``s.
        storage_secret: rclone Secret for the artifact store (the deployer's ``Model`` names it).
        artifacts_destination: the MLflow server's ``--artifacts-destination`` (``s3://<bucket>/``): where
            the deployer finds a version's ``mlflow-artifacts:`` files.
        depends_on: Seldon's CRDs release and runtime (its operator's release before it). Each owner is
            created after them and, on ``pulumi destroy``, deleted before them: its deletion waits for the
            Model, which needs the operator to remove its finalizer (``seldon_models.seldon_model``).
    """

    models: Sequence[ModelDeploymentSettings]
    namespace: str
    storage_secret: str | None
    artifacts_destination: str
    depends_on: Sequence[pulumi.Resource | None] = ()


def model_owner(
    settings: ModelDeploymentSettings, storage_secret: str | None, artifacts_destination: str
) -> ModelOwner:
    """What the owner object holds for one declared model."""
    return ModelOwner(
        model=settings.name,
        registered_model=settings.registered_model,
        alias=settings.alias,
        replicas=settings.replicas,
        memory=settings.memory,
        artifacts_destination=artifacts_destination,
        server=settings.server,
        project=settings.project,
        storage_secret=storage_secret,
    )


def owner_resource_name(component_name: str, model: str) -> str:
    """The Pulumi name of a model's owner: ``<component>-<model>-owner`` (``mlops-model-<model>-owner``)."""
    return f"{component_name}-{model}-owner"


def previous_owner_urn(component_urn: str, owner: str) -> str:
    """The URN ``owner`` had as the child of its own ``ModelDeployment``, a sibling of this component: the
    alias that keeps the owners (and their Models) of a stack deployed before they shared this component.

    Args:
        component_urn: this component's URN, ``urn:pulumi:<stack>::<project>::<parents$>type::<name>``.
        owner: the owner's resource name.
    """
    qualified_prefix = component_urn.rpartition("::")[0]
    head, _, qualified_type = qualified_prefix.rpartition("::")
    parents = qualified_type.rpartition("$")[0]
    chain = f"{parents}$" if parents else ""
    return f"{head}::{chain}{PREVIOUS_PARENT_TYPE}${OWNER_TYPE}::{owner}"


class ModelDeployments(pulumi.ComponentResource):
    """The model declarations of a serving namespace: per model, the registered MLflow model and the alias
    the platform serves and watches, held by the owner object of its Seldon ``Model`` (which the deployer
    creates). The monitor entry, rule group and dashboard of each model are built by ``Monitoring`` from the
    same settings.
    """

    model_names: tuple[str, ...]
    inference_paths: dict[str, str]

    def __init__(
        self, name: str, args: ModelDeploymentsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{TOKEN_PREFIX}:ModelDeployments", name, None, opts)
        # One options object and one URN prefix for every owner: 1,000+ models (bench/bench_render.py).
        # Before the owners shared this component, each had its own ModelDeployment: the alias is that URN,
        # so `pulumi up` on a stack deployed then moves each owner in state instead of replacing it (a
        # replaced owner would be deleted, and its Seldon Model garbage-collected with it).
        component_urn = self.urn
        dependencies = [item for item in args.depends_on if item is not None]
        for settings in args.models:
            owner = owner_resource_name(name, settings.name)
            body = owner_config_map(
                model_owner(settings, args.storage_secret, args.artifacts_destination), args.namespace
            )
            # metadata.name is set: the deployer finds the owner by the model's name.
            k8s.core.v1.ConfigMap(
                owner,
                metadata=body["metadata"],
                data=body["data"],
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=dependencies,
                    aliases=[component_urn.apply(lambda urn, owner=owner: previous_owner_urn(urn, owner))],
                ),
            )
        # Plain values: 1,000+ models, and an Output per attribute costs registration time for nothing.
        self.model_names = tuple(settings.name for settings in args.models)
        self.inference_paths = {model: f"/v2/models/{model}/infer" for model in self.model_names}
        self.register_outputs({"namespace": args.namespace, "model_count": len(self.model_names)})


def alert_rules(settings: ModelDeploymentSettings) -> list[AlertRule]:
    """The model's alerts from its thresholds: serving error rate and latency, drift, accuracy.

    Serving metrics are Seldon Core 2's per-model counters (``seldon_metrics``: server errors only, mean
    latency from ``seldon_model_infer_seconds_total / seldon_model_infer_total``, since the agent's latency
    histogram has no ``model`` label);
    drift and accuracy are the monitor service's gauges (``mlops_monitor_drifted_features`` after its
    multiple-testing correction at ``drift_p_value``, ``mlops_monitor_max_psi``, ``mlops_monitor_accuracy``;
    labels ``model``, ``version``: platform_components/monitoring/service.py).
    """
    model = settings.name
    limits = settings.thresholds
    selector = f'model="{model}"'
    return [
        AlertRule(
            "ModelErrorRateHigh",
            f"{seldon_metrics.error_share(selector)} > {limits.max_error_rate}",
            "10m",
            "critical",
            f"{model}: more than {limits.max_error_rate:.2%} of requests fail",
            RUNBOOK,
        ),
        AlertRule(
            "ModelLatencyHigh",
            f"{seldon_metrics.mean_latency(selector)} > {limits.max_p95_latency_seconds}",
            "10m",
            "warning",
            f"{model}: mean inference latency above {limits.max_p95_latency_seconds}s",
            RUNBOOK,
        ),
        AlertRule(
            "ModelFeatureDrift",
            f"max(mlops_monitor_drifted_features{{{selector}}}) > 0",
            "30m",
            "warning",
            f"{model}: feature drift (corrected p < {limits.drift_p_value})",
            RUNBOOK,
        ),
        AlertRule(
            "ModelFeaturePsiHigh",
            f"max(mlops_monitor_max_psi{{{selector}}}) > {limits.psi}",
            "30m",
            "warning",
            f"{model}: feature distribution shift (largest feature PSI > {limits.psi})",
            RUNBOOK,
        ),
        AlertRule(
            "ModelAccuracyLow",
            f"min(mlops_monitor_accuracy{{{selector}}}) < {limits.min_accuracy}",
            "30m",
            "critical",
            f"{model}: labelled accuracy below {limits.min_accuracy}",
            RUNBOOK,
        ),
    ]


def rule_group(settings: ModelDeploymentSettings, routing: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One PrometheusRule group per model (packed into shared PrometheusRule objects by the platform).

    Args:
        routing: labels every alert of the model carries besides ``model`` (its project's ``mlops_route``,
            ``mlops_project``, ``mlops_owner``: ``project.routing_labels``), for Alertmanager's routes.
    """
    extra = {"model": settings.name, **(routing or {})}
    return {
        "name": f"model-{settings.name}",
        "rules": [rule.to_dict(extra) for rule in alert_rules(settings)],
    }


def dashboard(settings: ModelDeploymentSettings) -> dict[str, Any]:
    """A Grafana dashboard for one model: traffic, errors, latency, drift, accuracy."""
    model = settings.name
    selector = f'model="{model}"'
    panels = [
        ("Requests per second", f"sum(rate({seldon_metrics.INFER_COUNT}{{{selector}}}[5m]))"),
        ("Server error share", seldon_metrics.error_share(selector)),
        ("Mean latency (s)", seldon_metrics.mean_latency(selector)),
        ("Drifted features", f"max(mlops_monitor_drifted_features{{{selector}}})"),
        ("Largest feature PSI", f"max(mlops_monitor_max_psi{{{selector}}})"),
        ("Prediction drift (KS statistic)", f"max(mlops_monitor_prediction_drift_statistic{{{selector}}})"),
        ("Accuracy (labelled)", f"min(mlops_monitor_accuracy{{{selector}}})"),
    ]
    return grafana_dashboard(
        f"mlops-{model}"[:40],
        f"Model {model} ({settings.registered_model}@{settings.alias})",
        ["mlops-platform", "model"],
        panels,
    )


def grafana_dashboard(uid: str, title: str, tags: list[str], panels: list[tuple[str, str]]) -> dict[str, Any]:
    """A Grafana dashboard of time-series panels, two per row, one PromQL query each."""
    return {
        "uid": uid,
        "title": title,
        "tags": tags,
        "schemaVersion": 39,
        "time": {"from": "now-24h", "to": "now"},
        "panels": [
            {
                "id": index + 1,
                "type": "timeseries",
                "title": title,
                "gridPos": {"h": 8, "w": 12, "x": (index % 2) * 12, "y": (index // 2) * 8},
                "targets": [{"expr": expr, "refId": "A"}],
            }
            for index, (title, expr) in enumerate(panels)
        ],
    }


def monitor_entry(settings: ModelDeploymentSettings, policy: PolicySettings) -> dict[str, Any]:
    """One entry of the monitor's ``models.json``: the model, its thresholds and its resolved policy.

    The service parses it with ``platform_components.loop.models.LoopModel`` (the schema and how the
    thresholds map onto the check); the policy is resolved here (platform defaults, the model's project,
    the model), so the monitor runs exactly the policy the stack declares. tests/loop feed the rendered
    ConfigMap to the service's parser, so the two sides cannot drift apart.
    """
    return {
        "name": settings.name,
        "registered_model": settings.registered_model,
        "alias": settings.alias,
        "project": settings.project,
        "thresholds": settings.thresholds.model_dump(),
        "policy": policy.resolve(settings.project, settings.name).model_dump(mode="json"),
        "label_column": settings.label_column,
        "pipeline_arguments": dict(settings.pipeline_arguments),
    }


def dashboard_json(settings: ModelDeploymentSettings) -> str:
    return json.dumps(dashboard(settings), sort_keys=True, separators=(",", ":"))
