"""The project-sync Job in the render: what it runs, on which catalog, as whom, and where it may connect."""

# ruff: noqa: F811

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import yaml
from pulumi_fixtures import SEED, config_for, dev_render, model, render_program  # noqa: F401
from upstream_facts import upstream_path

from platform_components.kubernetes.project_space import (
    CATALOG_CONFIGMAP,
    CATALOG_PATH,
    STORE_SECRET,
    USERS_PATH,
    USERS_SECRET,
    sync_users,
)
from platform_components.policies import check_objects
from platform_components.projects.cli import sync_command
from platform_components.render import kubernetes_objects
from platform_components.settings import CatalogSettings, load_catalog_file, load_platform_settings


def _catalog(*projects: str) -> dict[str, Any]:
    known = {
        "credit": {
            "name": "credit",
            "team": "risk",
            "owner": "alice",
            "models": [model("credit-default")],
        },
        "churn": {"name": "churn", "team": "risk", "owner": "alice", "models": [model("churn")]},
    }
    return {
        "people": [{"name": "alice"}],
        "teams": [{"name": "risk", "group": "oidc:risk", "members": ["alice"]}],
        "projects": [known[name] for name in projects],
    }


def _dev_config() -> dict[str, str]:
    from platform_components.render import read_stack_config

    return read_stack_config("dev", Path(__file__).resolve().parents[2])[0]


def _sync_objects(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (o["kind"], o["metadata"]["name"]): o
        for o in objects
        if o["metadata"].get("namespace") == "mlflow"
        and (
            o["metadata"]["name"].startswith("project-sync")
            or o["metadata"]["name"] == "postgres-allow-project-sync"
        )
    }


def _job(objects: list[dict[str, Any]]) -> dict[str, Any]:
    jobs = [o for (kind, _), o in _sync_objects(objects).items() if kind == "Job"]
    assert len(jobs) == 1, jobs
    return jobs[0]


def test_the_job_runs_the_sync_on_the_stacks_own_catalog(dev_render: Any, tmp_path: Path) -> None:
    objects = kubernetes_objects(dev_render.resources, redact=False)
    job = _job(objects)
    assert job["metadata"]["name"].startswith("project-sync-")
    container = job["spec"]["template"]["spec"]["containers"][0]
    # The arguments are the real command's: click parses them into the options `mlops project sync` has.
    assert container["command"] == ["python"] and container["args"][:4] == [
        "-m",
        "platform_components.cli",
        "project",
        "sync",
    ]
    # --users-file must exist where it is parsed: the mounted Secret's path, stood in for here.
    users = tmp_path / "users.json"
    users.write_text("{}")
    arguments = [str(users) if arg == USERS_PATH else arg for arg in container["args"][4:]]
    assert arguments != container["args"][4:]
    context = sync_command.make_context("sync", arguments)
    assert context.params["kfp_url"] == "http://ml-pipeline.kubeflow.svc.cluster.local:8888"
    assert context.params["mlflow_url"] == "http://mlflow.mlflow.svc.cluster.local:5000"
    # The catalog file it reads is the ConfigMap's, and it loads back to the stack's catalog.
    spec = job["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["catalog"]["configMap"]["name"] == CATALOG_CONFIGMAP
    assert (
        str(Path(mounts["catalog"]) / "catalog.yaml") == CATALOG_PATH == str(context.params["catalog_path"])
    )
    assert volumes["users"]["secret"]["secretName"] == USERS_SECRET
    assert str(Path(mounts["users"]) / "users.json") == USERS_PATH
    configmap = _sync_objects(objects)[("ConfigMap", CATALOG_CONFIGMAP)]
    written = tmp_path / "catalog.yaml"
    written.write_text(configmap["data"]["catalog.yaml"])
    config = _dev_config()
    assert load_catalog_file(written) == load_platform_settings(config).catalog
    assert load_platform_settings(config).catalog.projects, "the dev stack's catalog has projects"


def test_the_job_signs_in_as_the_admin_mlflow_itself_reads(dev_render: Any) -> None:
    objects = kubernetes_objects(dev_render.resources, redact=False)
    container = _job(objects)["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item for item in container["env"]}
    server = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "mlflow")
    server_env = {item["name"]: item for item in server["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (
        env["MLFLOW_TRACKING_PASSWORD"]["valueFrom"] == server_env["MLFLOW_AUTH_ADMIN_PASSWORD"]["valueFrom"]
    )
    assert env["MLFLOW_TRACKING_USERNAME"]["value"] == "admin"
    # The monitor store (PostgreSQL on the dev stack) comes from a Secret of the sync's own.
    assert env["MLOPS_MONITOR_STORE_URL"]["valueFrom"]["secretKeyRef"]["name"] == STORE_SECRET
    # No credential is a plain value anywhere in the Job.
    plain = [item for item in container["env"] if "value" in item and item["name"] != "HOME"]
    assert [item["name"] for item in plain] == ["MLFLOW_TRACKING_USERNAME"]


def test_the_users_it_creates_have_derived_passwords_in_a_secret(dev_render: Any) -> None:
    redacted = _sync_objects(kubernetes_objects(dev_render.resources))[("Secret", USERS_SECRET)]
    assert redacted["stringData"] == {"users.json": "<redacted>"}  # a Pulumi secret, never in the render
    shown = _sync_objects(kubernetes_objects(dev_render.resources, redact=False))[("Secret", USERS_SECRET)]
    users = json.loads(shown["stringData"]["users.json"])
    projects = [project.name for project in load_platform_settings(_dev_config()).catalog.projects]
    assert set(users) == {"mlops-monitor", *(f"{name}-pipeline" for name in projects)}
    catalog = CatalogSettings.model_validate(_catalog("credit", "churn"))
    derived = sync_users(catalog, SEED)
    assert set(derived) == {"mlops-monitor", "credit-pipeline", "churn-pipeline"}
    assert len(set(derived.values())) == 3 and all(len(password) >= 24 for password in derived.values())
    assert sync_users(catalog, SEED + "-rotated")["mlops-monitor"] != derived["mlops-monitor"]


def test_the_job_is_restricted_bounded_and_passes_the_policies(dev_render: Any) -> None:
    objects = kubernetes_objects(dev_render.resources)
    job = _job(objects)
    spec = job["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False and spec["securityContext"]["runAsNonRoot"] is True
    container = spec["containers"][0]
    assert set(container["resources"]) == {"requests", "limits"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert spec["restartPolicy"] == "OnFailure" and "ttlSecondsAfterFinished" not in job["spec"]
    # The policies judge an object with its neighbours (e.g. its namespace's default-deny): the whole render.
    ours = {f"{kind}/mlflow/{name}" for kind, name in _sync_objects(objects)}
    assert len(ours) == 7
    assert not [v for v in check_objects(objects) if v.object_ref in ours]


def test_it_may_reach_mlflow_kfps_api_and_the_store_only(dev_render: Any) -> None:
    objects = _sync_objects(kubernetes_objects(dev_render.resources))
    egress = objects[("NetworkPolicy", "project-sync-egress")]["spec"]
    assert egress["policyTypes"] == ["Egress"]
    rules = {rule["ports"][0]["port"]: rule["to"] for rule in egress["egress"]}
    assert set(rules) == {5000, 8888, 5432}
    upstream = yaml.safe_load(
        upstream_path(
            "kubeflow-pipelines-2.17.0",
            "manifests",
            "kustomize",
            "base",
            "pipeline",
            "ml-pipeline-apiserver-deployment.yaml",
        ).read_text()
    )
    api_labels = upstream["spec"]["template"]["metadata"]["labels"]
    wanted = rules[8888][0]["podSelector"]["matchLabels"]
    assert wanted.items() <= api_labels.items(), "the KFP API server's pods do not carry the label we allow"
    # The bundled PostgreSQL lets the sync's pods in (its own policy admits MLflow and the monitor only).
    ingress = objects[("NetworkPolicy", "postgres-allow-project-sync")]["spec"]
    job_labels = _job(list(objects.values()))["spec"]["template"]["metadata"]["labels"]
    allowed = ingress["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert allowed.items() <= job_labels.items() and ingress["ingress"][0]["ports"] == [
        {"protocol": "TCP", "port": 5432}
    ]


def test_a_changed_catalog_is_a_new_job_and_an_empty_one_still_runs(render_program: Any) -> None:
    def job_name(catalog: dict[str, Any]) -> str:
        return _job(kubernetes_objects(render_program(config_for(catalog=catalog)).resources))["metadata"][
            "name"
        ]

    both = _catalog("credit", "churn")
    same = copy.deepcopy(both)
    assert job_name(both) == job_name(same)
    one = _catalog("credit")
    assert job_name(one) != job_name(both)  # removing churn runs a sync, which archives it
    assert job_name({}).startswith("project-sync-")  # no project left: it still runs, and archives
