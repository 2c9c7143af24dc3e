"""Project: a catalog project on the cluster (namespace, quota, limits, its team's RBAC, its run account).

A project (``mlops:catalog`` ``projects``, ``settings.ProjectSettings``) gets:

- its namespace, labelled for Pod Security Admission (enforce, audit and warn ``restricted``, as the
  platform's own namespaces) and with ``mlops.platform/project``, ``/team`` and ``/owner``; a default-deny
  and a DNS-allow NetworkPolicy; a ResourceQuota from ``quota`` and a LimitRange from ``limits``;
- RBAC for its team's group (``Team.group``, a ``Group`` subject): the built-in ClusterRole ``edit`` in its
  namespace, through a RoleBinding; read where the platform is shared, through two Roles the platform
  creates once (``reader_roles``): Seldon's custom resources (``Model`` among them: read, never written; teams
  act through the registry's aliases) and the pods and events in the serving namespace, PrometheusRules in the
  monitoring namespace. The built-in ``view`` is not bound there: at Kubernetes 1.36 it shows no custom
  resource (Models included) unless a ClusterRole aggregates it, and it shows every pod's log and every
  ConfigMap of the shared namespaces (``tests/upstream_facts/kubernetes_rbac.py``). Nothing is cluster-wide;
- the ServiceAccount its pipeline runs use, ``<project>-pipeline-runner`` in the KFP namespace (standalone
  KFP is single-user: every run executes in ``kubeflow``), bound to upstream's Role ``pipeline-runner``
  exactly as upstream binds its own ``pipeline-runner`` account.

Its models are not here: they are served in the shared serving namespace (``ModelDeployment``), their owner
ConfigMaps and Seldon ``Model``s labelled with the project (``seldon_models.PROJECT_LABEL``); their alert
rules carry the project's routing labels and their dashboards land in its Grafana folder (``Monitoring``).

Removal: a project taken out of the catalog is deleted with its namespace and bindings on the next
``pulumi up``. Nothing of the platform keeps a project's data in its namespace: MLflow's database and
artifacts live in the MLflow namespace and store, the monitor's history on the monitor's volume in the
monitoring namespace; what a team itself stored in its namespace (its own volumes) goes with it.

Cost: a project is 11 Pulumi resources (this component and 10 objects), built from plain dicts; what every
project shares (the reader Roles) is created once by the platform.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from platform_components.kubernetes import pods, seldon_metrics
from platform_components.kubernetes.base import TOKEN_PREFIX
from platform_components.kubernetes.model import grafana_dashboard
from platform_components.kubernetes.naming import PART_OF, object_name
from platform_components.seldon_models import PROJECT_LABEL, SELDON_GROUP
from platform_components.settings import ProjectSettings, Team

TEAM_LABEL = "mlops.platform/team"
OWNER_LABEL = "mlops.platform/owner"
RBAC_API = "rbac.authorization.k8s.io"
#: The built-in ClusterRole a team gets in its own namespace.
EDIT_ROLE = "edit"
#: Roles the platform creates once in the shared namespaces; every project's team is bound to them.
SERVING_READER_ROLE = "mlops-project-serving-reader"
MONITORING_READER_ROLE = "mlops-project-monitoring-reader"
#: Seldon Core 2's namespaced custom resources a team may read in the serving namespace.
SELDON_READABLE = ("models", "servers", "experiments", "pipelines")
#: The Role KFP's env/platform-agnostic installs in its namespace for pipeline runs
#: (manifests/kustomize/base/pipeline/pipeline-runner-role.yaml@2.17.0).
KFP_RUNNER_ROLE = "pipeline-runner"
READ = ("get", "list", "watch")
PSS_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    # As base.namespace: the platform's namespaces follow the cluster's own policy version.
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}


#: Alert labels Alertmanager routes on (every alert of a project's models carries them).
ROUTE_LABEL = "mlops_route"
PROJECT_ALERT_LABEL = "mlops_project"
OWNER_ALERT_LABEL = "mlops_owner"
#: The annotation the Grafana dashboard sidecar reads to file a dashboard ConfigMap in a folder
#: (``grafana.sidecar.dashboards.folderAnnotation``; tests/upstream_facts/grafana.py).
GRAFANA_FOLDER_ANNOTATION = "mlops.platform/grafana-folder"


def routing_labels(project: ProjectSettings) -> dict[str, str]:
    """The labels the alerts of a project's models carry: where they route, whose they are."""
    return {ROUTE_LABEL: project.route, PROJECT_ALERT_LABEL: project.name, OWNER_ALERT_LABEL: project.owner}


def grafana_folder(project: ProjectSettings) -> str:
    """The project's Grafana folder (a folder below the sidecar's dashboards directory): its name."""
    return project.name


def project_dashboard(project: ProjectSettings, models: Sequence[str]) -> dict[str, Any]:
    """The project's overview in its Grafana folder: its models side by side, one series each per panel."""
    # An anchored alternation of its model names (DNS labels: nothing to escape); no model matches nothing.
    selector = f'model=~"{"|".join(sorted(models))}"'
    panels = [
        (
            "Requests per second by model",
            f"sum by (model) (rate({seldon_metrics.INFER_COUNT}{{{selector}}}[5m]))",
        ),
        ("Drifted features by model", f"max by (model) (mlops_monitor_drifted_features{{{selector}}})"),
        ("Largest feature PSI by model", f"max by (model) (mlops_monitor_max_psi{{{selector}}})"),
        ("Accuracy (labelled) by model", f"min by (model) (mlops_monitor_accuracy{{{selector}}})"),
    ]
    return grafana_dashboard(
        object_name("mlops-project", project.name, max_length=40),
        f"Project {project.name} ({len(models)} model(s), owner {project.owner})",
        ["mlops-platform", "project", project.name],
        panels,
    )


def project_labels(project: ProjectSettings) -> dict[str, str]:
    """The labels of every object of a project (the namespace adds its team and owner)."""
    return {PROJECT_LABEL: project.name, "app.kubernetes.io/part-of": PART_OF}


def project_namespace(project: ProjectSettings) -> dict[str, Any]:
    """The project's Namespace: Pod Security ``restricted`` and who it belongs to."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": project.namespace_name,
            "labels": {
                **PSS_LABELS,
                **project_labels(project),
                TEAM_LABEL: project.team,
                OWNER_LABEL: project.owner,
            },
        },
    }


def resource_quota(project: ProjectSettings) -> dict[str, Any]:
    """The namespace's ResourceQuota from ``quota`` (``max_models``/``serving_memory`` are validated instead:
    models run in the shared serving namespace, where a quota cannot tell projects apart)."""
    quota = project.quota
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {
            "name": "project-quota",
            "namespace": project.namespace_name,
            "labels": project_labels(project),
        },
        "spec": {
            "hard": {
                "requests.cpu": quota.cpu,
                "requests.memory": quota.memory,
                "limits.cpu": quota.cpu_limit,
                "limits.memory": quota.memory_limit,
                "pods": str(quota.pods),
            }
        },
    }


def limit_range(project: ProjectSettings) -> dict[str, Any]:
    """The namespace's LimitRange from ``limits``: what a container that asks for nothing gets.

    With a ResourceQuota on requests and limits, the API server refuses a pod whose containers set neither;
    these defaults make such a pod admissible and counted.
    """
    limits = project.limits
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {
            "name": "default-limits",
            "namespace": project.namespace_name,
            "labels": project_labels(project),
        },
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": {"cpu": limits.default_cpu_limit, "memory": limits.default_memory_limit},
                    "defaultRequest": {
                        "cpu": limits.default_cpu_request,
                        "memory": limits.default_memory_request,
                    },
                }
            ]
        },
    }


def role_binding(
    name: str,
    namespace: str,
    role_kind: str,
    role_name: str,
    subjects: Sequence[dict[str, str]],
    labels: dict[str, str],
) -> dict[str, Any]:
    """A RoleBinding (namespaced: a ClusterRole bound here grants its rules in ``namespace`` only)."""
    return {
        "apiVersion": f"{RBAC_API}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "roleRef": {"apiGroup": RBAC_API, "kind": role_kind, "name": role_name},
        "subjects": [dict(subject) for subject in subjects],
    }


def group_subject(team: Team) -> dict[str, str]:
    return {"kind": "Group", "apiGroup": RBAC_API, "name": team.group}


def team_bindings(
    project: ProjectSettings, team: Team, serving_namespace: str, monitoring_namespace: str
) -> list[dict[str, Any]]:
    """The team's group: ``edit`` in the project namespace, the reader Roles in the shared namespaces."""
    subjects = [group_subject(team)]
    labels = project_labels(project)
    # Named after the project: several projects (of one team or not) bind in the same shared namespace.
    shared_name = object_name("mlops-project", project.name, "reader")
    return [
        role_binding(
            object_name("mlops-project", "edit"),
            project.namespace_name,
            "ClusterRole",
            EDIT_ROLE,
            subjects,
            labels,
        ),
        role_binding(shared_name, serving_namespace, "Role", SERVING_READER_ROLE, subjects, labels),
        role_binding(shared_name, monitoring_namespace, "Role", MONITORING_READER_ROLE, subjects, labels),
    ]


def reader_roles(serving_namespace: str, monitoring_namespace: str) -> list[dict[str, Any]]:
    """The two Roles every project's team is bound to where the platform is shared (created once).

    Serving: Seldon's resources (their status: which version is served, ready or not) and the Servers' pods
    and events, read only. Not ConfigMaps, Secrets or pod logs: the Servers are shared, so their logs hold
    every project's requests. Monitoring: the PrometheusRules (what alerts exist and their thresholds).
    """
    labels = {"app.kubernetes.io/part-of": PART_OF}
    return [
        {
            "apiVersion": f"{RBAC_API}/v1",
            "kind": "Role",
            "metadata": {"name": SERVING_READER_ROLE, "namespace": serving_namespace, "labels": labels},
            "rules": [
                {"apiGroups": [SELDON_GROUP], "resources": list(SELDON_READABLE), "verbs": list(READ)},
                {"apiGroups": [""], "resources": ["pods", "events"], "verbs": list(READ)},
            ],
        },
        {
            "apiVersion": f"{RBAC_API}/v1",
            "kind": "Role",
            "metadata": {"name": MONITORING_READER_ROLE, "namespace": monitoring_namespace, "labels": labels},
            "rules": [
                {
                    "apiGroups": ["monitoring.coreos.com"],
                    "resources": ["prometheusrules"],
                    "verbs": list(READ),
                }
            ],
        },
    ]


def pipeline_runner_name(project: ProjectSettings) -> str:
    """``<project>-pipeline-runner``: the ServiceAccount the project's pipeline runs use."""
    return object_name(project.name, "pipeline-runner")


def pipeline_runner_account(project: ProjectSettings, kfp_namespace: str) -> dict[str, Any]:
    """The ServiceAccount of the project's runs, in the KFP namespace where standalone KFP runs them.

    Its token is mounted (the default, as upstream's ``pipeline-runner``): Argo's executor in each run's pod
    calls the API server with it (``workflowtaskresults`` create/patch in upstream's Role).
    """
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": pipeline_runner_name(project),
            "namespace": kfp_namespace,
            "labels": project_labels(project),
        },
    }


def pipeline_runner_binding(project: ProjectSettings, kfp_namespace: str) -> dict[str, Any]:
    """The binding of the project's account to upstream's Role ``pipeline-runner``, as upstream binds its own
    (``pipeline-runner-binding``: Role ``pipeline-runner``, subject ServiceAccount ``pipeline-runner``,
    manifests/kustomize/base/pipeline/pipeline-runner-rolebinding.yaml@2.17.0)."""
    account = pipeline_runner_name(project)
    return role_binding(
        object_name(account, "binding"),
        kfp_namespace,
        "Role",
        KFP_RUNNER_ROLE,
        [{"kind": "ServiceAccount", "name": account, "namespace": kfp_namespace}],
        project_labels(project),
    )


@dataclass(frozen=True)
class ProjectArgs:
    """Arguments of ``Project``.

    Attributes:
        settings: the catalog project.
        team: its team (the catalog's entry; its ``group`` is the RBAC subject).
        serving_namespace / monitoring_namespace: where the platform is shared (the reader bindings).
        kfp_namespace: where its pipeline runs execute (its ServiceAccount and binding).
        shared: what its objects in the shared namespaces wait for (those namespaces, the reader Roles).
        pipelines: what its pipeline account waits for (KFP, which creates its namespace and Role).
    """

    settings: ProjectSettings
    team: Team
    serving_namespace: str
    monitoring_namespace: str
    kfp_namespace: str
    shared: tuple[pulumi.Resource, ...] = ()
    pipelines: tuple[pulumi.Resource, ...] = ()


class Project(pulumi.ComponentResource):
    """One catalog project's objects on the cluster (see the module docstring)."""

    namespace_name: str

    def __init__(self, name: str, args: ProjectArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}:Project", name, None, opts)
        project = args.settings
        body = project_namespace(project)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace", metadata=body["metadata"], opts=pulumi.ResourceOptions(parent=self)
        )
        inside = pulumi.ResourceOptions(parent=self, depends_on=[namespace])
        for role, policy in (
            ("default-deny", pods.default_deny(project.namespace_name)),
            ("allow-dns", pods.allow_dns(project.namespace_name)),
        ):
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{role}",
                metadata={**policy["metadata"], "labels": project_labels(project)},
                spec=policy["spec"],
                opts=inside,
            )
        quota = resource_quota(project)
        k8s.core.v1.ResourceQuota(
            f"{name}-quota", metadata=quota["metadata"], spec=quota["spec"], opts=inside
        )
        limits = limit_range(project)
        k8s.core.v1.LimitRange(
            f"{name}-limits", metadata=limits["metadata"], spec=limits["spec"], opts=inside
        )
        edit, serving, monitoring = team_bindings(
            project, args.team, args.serving_namespace, args.monitoring_namespace
        )
        shared = pulumi.ResourceOptions(parent=self, depends_on=list(args.shared))
        for role, binding, binding_opts in (
            ("edit", edit, inside),
            ("serving-reader", serving, shared),
            ("monitoring-reader", monitoring, shared),
        ):
            k8s.rbac.v1.RoleBinding(
                f"{name}-{role}",
                metadata=binding["metadata"],
                role_ref=binding["roleRef"],
                subjects=binding["subjects"],
                opts=binding_opts,
            )
        in_kfp = pulumi.ResourceOptions(parent=self, depends_on=list(args.pipelines))
        account = pipeline_runner_account(project, args.kfp_namespace)
        created = k8s.core.v1.ServiceAccount(
            f"{name}-pipeline-runner", metadata=account["metadata"], opts=in_kfp
        )
        runner = pipeline_runner_binding(project, args.kfp_namespace)
        k8s.rbac.v1.RoleBinding(
            f"{name}-pipeline-runner-binding",
            metadata=runner["metadata"],
            role_ref=runner["roleRef"],
            subjects=runner["subjects"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[created]),
        )
        self.namespace_name = project.namespace_name
        self.register_outputs({"namespace_name": self.namespace_name})


def create_reader_roles(
    component: pulumi.ComponentResource,
    serving_namespace: str,
    monitoring_namespace: str,
    opts: pulumi.ResourceOptions,
) -> list[k8s.rbac.v1.Role]:
    """The shared reader Roles, children of ``component`` (the platform): once, whatever the project count."""
    created = []
    for role, body in zip(
        ("serving", "monitoring"), reader_roles(serving_namespace, monitoring_namespace), strict=True
    ):
        created.append(
            k8s.rbac.v1.Role(
                f"{component._name}-project-{role}-reader",  # noqa: SLF001 - Pulumi's component name
                metadata=body["metadata"],
                rules=body["rules"],
                opts=opts,
            )
        )
    return created
