"""Catalog projects on the cluster: namespace, quota, limits, RBAC, run account, alerts, dashboards."""

# ruff: noqa: F811

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import pytest
import yaml
from pulumi_fixtures import config_for, dev_render, model, render_program  # noqa: F401
from upstream_facts import fact, upstream_path

from platform_components.kubernetes.project import (
    GRAFANA_FOLDER_ANNOTATION,
    MONITORING_READER_ROLE,
    SERVING_READER_ROLE,
)
from platform_components.policies import check_objects
from platform_components.render import kubernetes_objects, releases
from platform_components.seldon_models import PROJECT_LABEL, ModelOwner, seldon_model

RBAC = "rbac.authorization.k8s.io"
PSS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}
#: Kinds of the API server's built-in types that are cluster-scoped (none of ours may be but Namespace).
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}


def catalog(*projects: dict[str, Any]) -> dict[str, Any]:
    return {
        "people": [{"name": "alice"}, {"name": "bob"}],
        "teams": [
            {"name": "risk", "group": "oidc:risk-data-science", "members": ["alice"]},
            {"name": "growth", "group": "oidc:growth-analytics", "members": ["bob"]},
        ],
        "projects": list(projects),
    }


def project(name: str, team: str = "risk", owner: str = "alice", **extra: Any) -> dict[str, Any]:
    return {"name": name, "team": team, "owner": owner, **extra}


def find(objects: list[dict[str, Any]], kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    found = [
        o
        for o in objects
        if o["kind"] == kind and o["metadata"]["name"] == name and o["metadata"].get("namespace") == namespace
    ]
    assert len(found) == 1, f"{kind} {namespace}/{name}: {len(found)} found"
    return found[0]


def keys(objects: list[dict[str, Any]]) -> set[tuple[str, str | None, str]]:
    return {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects}


def test_each_project_namespace_is_restricted_and_says_whose_it_is(dev_render: Any) -> None:
    objects = kubernetes_objects(dev_render.resources)
    for name, team, owner in (("credit", "risk", "alice"), ("churn", "growth", "bob")):
        labels = find(objects, "Namespace", name)["metadata"]["labels"]
        assert {key: labels[key] for key in PSS} == PSS
        # As the platform's namespaces (base.namespace), which the NAMESPACE-PSS-LABELS policy accepts.
        assert labels["pod-security.kubernetes.io/enforce-version"] == "latest"
        assert labels[PROJECT_LABEL] == name
        assert labels["mlops.platform/team"] == team
        assert labels["mlops.platform/owner"] == owner
        deny = find(objects, "NetworkPolicy", "default-deny", name)
        assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        dns = find(objects, "NetworkPolicy", "allow-dns", name)
        assert dns["spec"]["policyTypes"] == ["Egress"] and dns["spec"]["egress"][0]["ports"]
    assert check_objects(objects) == []  # every policy of ours holds for the projects' objects too


def test_quota_and_limits_are_the_projects_settings(render_program: Any) -> None:
    quota = {"cpu": "3", "memory": "6Gi", "cpu_limit": "5", "memory_limit": "10Gi", "pods": 7}
    limits = {
        "default_cpu_request": "50m",
        "default_memory_request": "64Mi",
        "default_cpu_limit": "700m",
        "default_memory_limit": "300Mi",
    }
    config = config_for(catalog=catalog(project("credit", quota=quota, limits=limits), project("churn")))
    objects = kubernetes_objects(render_program(config).resources)
    assert find(objects, "ResourceQuota", "project-quota", "credit")["spec"] == {
        "hard": {
            "requests.cpu": "3",
            "requests.memory": "6Gi",
            "limits.cpu": "5",
            "limits.memory": "10Gi",
            "pods": "7",
        }
    }
    assert find(objects, "LimitRange", "default-limits", "credit")["spec"] == {
        "limits": [
            {
                "type": "Container",
                "default": {"cpu": "700m", "memory": "300Mi"},
                "defaultRequest": {"cpu": "50m", "memory": "64Mi"},
            }
        ]
    }
    # The other project has the documented defaults (settings.ProjectQuota, ProjectLimits).
    assert find(objects, "ResourceQuota", "project-quota", "churn")["spec"]["hard"] == {
        "requests.cpu": "4",
        "requests.memory": "8Gi",
        "limits.cpu": "8",
        "limits.memory": "16Gi",
        "pods": "20",
    }
    assert find(objects, "LimitRange", "default-limits", "churn")["spec"]["limits"][0]["default"] == {
        "cpu": "1",
        "memory": "1Gi",
    }


def test_a_project_namespace_can_be_set_apart_from_its_name(render_program: Any) -> None:
    config = config_for(catalog=catalog(project("credit", namespace="team-credit")))
    objects = kubernetes_objects(render_program(config).resources)
    assert find(objects, "Namespace", "team-credit")["metadata"]["labels"][PROJECT_LABEL] == "credit"
    assert find(objects, "ResourceQuota", "project-quota", "team-credit")
    assert find(objects, "RoleBinding", "mlops-project-edit", "team-credit")


def test_the_teams_group_is_bound_exactly_edit_at_home_and_read_where_shared(dev_render: Any) -> None:
    objects = kubernetes_objects(dev_render.resources)
    bindings = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): (o["roleRef"], o["subjects"])
        for o in objects
        if o["kind"] == "RoleBinding" and o["metadata"].get("labels", {}).get(PROJECT_LABEL)
    }
    risk = [{"kind": "Group", "apiGroup": RBAC, "name": "oidc:risk-data-science"}]
    growth = [{"kind": "Group", "apiGroup": RBAC, "name": "oidc:growth-analytics"}]

    def ref(kind: str, name: str) -> dict[str, str]:
        return {"apiGroup": RBAC, "kind": kind, "name": name}

    runner = fact("kfp.pipeline_runner.binding")["roleRef"]
    assert bindings == {
        ("credit", "mlops-project-edit"): (ref("ClusterRole", "edit"), risk),
        ("seldon", "mlops-project-credit-reader"): (ref("Role", SERVING_READER_ROLE), risk),
        ("monitoring", "mlops-project-credit-reader"): (ref("Role", MONITORING_READER_ROLE), risk),
        ("kubeflow", "credit-pipeline-runner-binding"): (
            runner,
            [{"kind": "ServiceAccount", "name": "credit-pipeline-runner", "namespace": "kubeflow"}],
        ),
        ("churn", "mlops-project-edit"): (ref("ClusterRole", "edit"), growth),
        ("seldon", "mlops-project-churn-reader"): (ref("Role", SERVING_READER_ROLE), growth),
        ("monitoring", "mlops-project-churn-reader"): (ref("Role", MONITORING_READER_ROLE), growth),
        ("kubeflow", "churn-pipeline-runner-binding"): (
            runner,
            [{"kind": "ServiceAccount", "name": "churn-pipeline-runner", "namespace": "kubeflow"}],
        ),
    }


def test_the_shared_reader_roles_read_models_never_write_them_and_show_less_than_view(
    dev_render: Any,
) -> None:
    objects = kubernetes_objects(dev_render.resources)
    serving = find(objects, "Role", SERVING_READER_ROLE, "seldon")
    assert serving["rules"] == [
        {
            "apiGroups": ["mlops.seldon.io"],
            "resources": ["models", "servers", "experiments", "pipelines"],
            "verbs": ["get", "list", "watch"],
        },
        {"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["get", "list", "watch"]},
    ]
    monitoring = find(objects, "Role", MONITORING_READER_ROLE, "monitoring")
    assert monitoring["rules"] == [
        {
            "apiGroups": ["monitoring.coreos.com"],
            "resources": ["prometheusrules"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    # Why not the built-in view: it shows every ConfigMap and every pod's log of a shared namespace, and no
    # custom resource (Models) unless a ClusterRole aggregates it. Ours show neither.
    view = set(fact("kubernetes.rbac.view_core_resources"))
    assert {"configmaps", "pods/log"} <= view and "secrets" not in view
    granted = {
        resource for role in (serving, monitoring) for rule in role["rules"] for resource in rule["resources"]
    }
    assert not granted & {"configmaps", "pods/log", "secrets"}
    # One pair for every project (created once), not one per project.
    readers = [
        o["metadata"]["name"] for o in objects if o["kind"] == "Role" and "project" in o["metadata"]["name"]
    ]
    assert sorted(readers) == sorted([MONITORING_READER_ROLE, SERVING_READER_ROLE])


def test_edit_lets_a_team_neither_widen_its_rights_nor_its_quota() -> None:
    # What the binding to edit relies on (the built-in role at the pinned Kubernetes).
    assert {"rolebindings", "resourcequotas", "limitranges"} <= fact("kubernetes.rbac.edit_omits")


def test_projects_add_nothing_cluster_scoped_but_their_namespaces(render_program: Any) -> None:
    models = [model("credit-default", project="credit"), model("churn", project="churn")]
    without = kubernetes_objects(
        render_program(config_for(models=[model("credit-default"), model("churn")])).resources
    )
    declared = catalog(project("credit"), project("churn", team="growth", owner="bob"))
    with_projects = kubernetes_objects(render_program(config_for(models=models, catalog=declared)).resources)
    added = [
        o
        for o in with_projects
        if (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
        in keys(with_projects) - keys(without)
    ]
    assert added
    cluster_scoped = sorted(
        (o["kind"], o["metadata"]["name"]) for o in added if o["metadata"].get("namespace") is None
    )
    assert cluster_scoped == [("Namespace", "churn"), ("Namespace", "credit")]
    assert not {o["kind"] for o in added} & (CLUSTER_SCOPED - {"Namespace"})


def test_each_project_has_a_pipeline_runner_bound_like_upstreams(dev_render: Any) -> None:
    # The fact against upstream's file, then our binding against the fact.
    folder = ("kubeflow-pipelines-2.17.0", "manifests", "kustomize", "base", "pipeline")
    upstream = yaml.safe_load(upstream_path(*folder, "pipeline-runner-rolebinding.yaml").read_text())
    expected = fact("kfp.pipeline_runner.binding")
    assert upstream["metadata"]["name"] == expected["name"]
    assert upstream["roleRef"] == expected["roleRef"] and upstream["subjects"] == expected["subjects"]
    role = yaml.safe_load(upstream_path(*folder, "pipeline-runner-role.yaml").read_text())
    assert role["kind"] == "Role" and role["metadata"]["name"] == expected["roleRef"]["name"]
    assert any("secrets" in rule["resources"] and "get" in rule["verbs"] for rule in role["rules"])
    account = yaml.safe_load(upstream_path(*folder, "pipeline-runner-sa.yaml").read_text())
    assert "automountServiceAccountToken" not in account  # kfp.pipeline_runner.account_automount
    objects = kubernetes_objects(dev_render.resources)
    for name in ("credit", "churn"):
        sa = find(objects, "ServiceAccount", f"{name}-pipeline-runner", "kubeflow")
        assert "automountServiceAccountToken" not in sa  # as upstream's: Argo's executor uses the token
        binding = find(objects, "RoleBinding", f"{name}-pipeline-runner-binding", "kubeflow")
        assert binding["roleRef"] == expected["roleRef"]
        [subject] = binding["subjects"]
        assert subject == {
            "kind": "ServiceAccount",
            "name": f"{name}-pipeline-runner",
            "namespace": "kubeflow",
        }


def test_objects_in_shared_namespaces_wait_for_what_creates_them(dev_render: Any) -> None:
    by_name = {resource.name: resource for resource in dev_render.resources}
    account = by_name["mlops-project-credit-pipeline-runner"]
    kfp = {r.urn for r in dev_render.resources if r.name.startswith("mlops-pipelines-platform-agnostic")}
    assert kfp and kfp & set(account.dependencies), (
        "the account waits for KFP's manifests (its namespace, Role)"
    )
    reader = by_name["mlops-project-credit-serving-reader"]
    assert by_name["mlops-project-serving-reader"].urn in reader.dependencies
    assert by_name["mlops-serving-namespace"].urn in reader.dependencies
    quota = by_name["mlops-project-credit-quota"]
    assert by_name["mlops-project-credit-namespace"].urn in quota.dependencies


def test_a_projects_models_alert_with_its_route_project_and_owner(dev_render: Any) -> None:
    groups = {
        group["name"]: group["rules"]
        for obj in kubernetes_objects(dev_render.resources)
        if obj["kind"] == "PrometheusRule"
        for group in obj["spec"]["groups"]
    }
    expected = {
        "model-credit-default": {
            "mlops_route": "risk-oncall",
            "mlops_project": "credit",
            "mlops_owner": "alice",
        },
        # No alert_route: the team's name.
        "model-churn": {"mlops_route": "growth", "mlops_project": "churn", "mlops_owner": "bob"},
    }
    for group, labels in expected.items():
        assert groups[group], group
        for rule in groups[group]:
            assert {key: rule["labels"].get(key) for key in labels} == labels, rule["alert"]
    for rule in groups["mlops-platform"]:
        assert not {"mlops_route", "mlops_project", "mlops_owner"} & set(rule["labels"])


def test_a_model_outside_the_catalog_alerts_without_routing_labels(render_program: Any) -> None:
    config = config_for(models=[model("loose"), model("tagged", project="elsewhere")])
    groups = {
        group["name"]: group["rules"]
        for obj in kubernetes_objects(render_program(config).resources)
        if obj["kind"] == "PrometheusRule"
        for group in obj["spec"]["groups"]
    }
    assert all(
        not {"mlops_route", "mlops_project", "mlops_owner"} & set(r["labels"]) for r in groups["model-loose"]
    )
    # A project the catalog does not list: its name, but no route or owner to give.
    assert all(
        r["labels"]["mlops_project"] == "elsewhere" and "mlops_route" not in r["labels"]
        for r in groups["model-tagged"]
    )


def test_a_projects_dashboards_land_in_its_folder_and_the_others_stay(render_program: Any) -> None:
    models = [model("loose"), model("a-1"), model("a-2"), model("a-3")]
    declared = catalog(
        {**project("alpha"), "models": [model("a-1"), model("a-2"), model("a-3")]},
        project("empty", team="growth", owner="bob"),
    )
    config = config_for(
        models=models[:1], catalog=declared, monitoring={"grafana": {"dashboards_per_config_map": 2}}
    )
    render = render_program(config)
    objects = kubernetes_objects(render.resources)
    dashboards = {
        o["metadata"]["name"]: o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
    }
    assert sorted(dashboards) == [
        "model-dashboards-000",
        "model-dashboards-alpha-000",
        "model-dashboards-alpha-001",
        "model-dashboards-empty-000",
        "platform-dashboards",
    ]
    # Unfiled: where they were (no folder annotation: the General folder).
    assert sorted(dashboards["model-dashboards-000"]["data"]) == ["model-loose.json"]
    assert "annotations" not in dashboards["model-dashboards-000"]["metadata"]
    assert sorted(dashboards["model-dashboards-alpha-000"]["data"]) == [
        "model-a-1.json",
        "model-a-2.json",
        "project-alpha.json",
    ]
    assert sorted(dashboards["model-dashboards-alpha-001"]["data"]) == ["model-a-3.json"]
    for name, folder in (("alpha-000", "alpha"), ("alpha-001", "alpha"), ("empty-000", "empty")):
        assert dashboards[f"model-dashboards-{name}"]["metadata"]["annotations"] == {
            GRAFANA_FOLDER_ANNOTATION: folder
        }
    # A project without models still has its folder: its overview.
    overview = json.loads(dashboards["model-dashboards-empty-000"]["data"]["project-empty.json"])
    assert overview["title"].startswith("Project empty")
    alpha = json.loads(dashboards["model-dashboards-alpha-000"]["data"]["project-alpha.json"])
    assert all('model=~"a-1|a-2|a-3"' in panel["targets"][0]["expr"] for panel in alpha["panels"])
    # The sidecar files by that annotation and Grafana makes folders of its subdirectories.
    [kps] = [entry for entry in releases(render.resources) if entry.get("chart") == "kube-prometheus-stack"]
    sidecar = kps["values"]["grafana"]
    for path, value in (
        (fact("grafana.sidecar.folder_annotation_value"), GRAFANA_FOLDER_ANNOTATION),
        (fact("grafana.sidecar.folders_from_files_structure_value"), True),
    ):
        node = sidecar
        for key in path:
            node = node[key]
        assert node == value, path


def test_a_projects_models_are_labelled_with_it_down_to_their_seldon_model(dev_render: Any) -> None:
    objects = kubernetes_objects(dev_render.resources)
    owner_map = find(objects, "ConfigMap", "mlops-model-credit-default", "seldon")
    assert owner_map["metadata"]["labels"][PROJECT_LABEL] == "credit"
    owner = ModelOwner.from_config_map(
        {**copy.deepcopy(owner_map), "metadata": {**owner_map["metadata"], "uid": "u-1"}}
    )
    built = seldon_model(owner, "seldon", version="3", storage="s3://b/1/artifacts/model")
    assert built["metadata"]["labels"][PROJECT_LABEL] == "credit"


def test_removing_a_project_removes_its_objects_and_no_data(render_program: Any, caplog: Any) -> None:
    both = catalog(
        {**project("credit"), "models": [model("credit-default")]},
        {**project("churn", team="growth", owner="bob"), "models": [model("churn")]},
    )
    one = copy.deepcopy(both)
    one["projects"].pop()
    with caplog.at_level(logging.INFO):
        before = kubernetes_objects(render_program(config_for(catalog=both)).resources)
    assert "2 project(s) in the catalog: credit (namespace credit, team risk), churn" in caplog.text
    assert "archived, never deleted" in caplog.text
    after = kubernetes_objects(render_program(config_for(catalog=one)).resources)
    gone = keys(before) - keys(after)
    created = keys(after) - keys(before)
    # The sync Job is named after the catalog's hash: a changed catalog replaces it (the new one archives).
    sync_jobs = [(kind, ns, name) for kind, ns, name in gone | created if kind == "Job"]
    assert len(sync_jobs) == 2 and all(ns == "mlflow" and "project-sync" in name for _, ns, name in sync_jobs)
    gone, created = {key for key in gone if key[0] != "Job"}, {key for key in created if key[0] != "Job"}
    assert ("Namespace", None, "churn") in gone
    assert {(kind, ns) for kind, ns, _ in gone} == {
        ("Namespace", None),
        ("NetworkPolicy", "churn"),
        ("ResourceQuota", "churn"),
        ("LimitRange", "churn"),
        ("RoleBinding", "churn"),
        ("RoleBinding", "seldon"),
        ("RoleBinding", "monitoring"),
        ("RoleBinding", "kubeflow"),
        ("ServiceAccount", "kubeflow"),
        ("ConfigMap", "seldon"),  # the model's owner (its Seldon Model goes with it)
        ("ConfigMap", "monitoring"),  # its dashboards
    }
    # What holds data stays: MLflow's database and store, the monitor's volume; nothing else is created.
    assert not {kind for kind, _, _ in gone} & {
        "StatefulSet",
        "PersistentVolumeClaim",
        "Deployment",
        "Secret",
    }
    assert created == set()


def test_a_project_costs_a_constant_few_resources(render_program: Any) -> None:
    def with_projects(count: int) -> int:
        declared = catalog(*(project(f"p-{index}") for index in range(count)))
        return len(render_program(config_for(catalog=declared)).resources)

    two, six = with_projects(2), with_projects(6)
    # The component, its 10 objects and its dashboards' ConfigMap (bench/bench_render.py watches the time).
    assert (six - two) / 4 == 12


@pytest.mark.parametrize("stack", ["staging", "local"])
def test_stacks_without_a_catalog_render_no_project(stack: str) -> None:
    from pulumi_fixtures import stack_render

    render = stack_render(stack, None)
    assert not [r for r in render.resources if r.type == "mlops:platform:Project"]
