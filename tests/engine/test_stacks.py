"""The real Pulumi engine and kubernetes provider against the local API server (tests/engine/cluster.py).

What the SDK's mocks cannot see: a config key the CLI refuses, an object the API server rejects or warns
about (Pod Security, unknown fields), a perpetual diff, a destroy that leaves objects behind, a resource sent
to the kubeconfig's current context instead of the configured one.

Upstream's Helm charts cannot be fetched here: every stack runs with the documented switch
``mlops:upstream.helm_charts: false``, the CRDs those charts would install (Seldon Core 2.10.2, Prometheus
Operator 0.88.1) are applied from ../shared/upstream first, as a platform team installing the charts itself
would; KFP 2.17.0 is applied for real from a local manifests copy (``mlops:kfp.manifests_path``).
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from engine_cli import (
    PulumiCli,
    Summary,
    copy_project,
    engine_python,
    point_at_cluster,
    replace_placeholder_secrets,
    summary,
)

pytestmark = [pytest.mark.engine, pytest.mark.slow]

SEED = "engine-seed-0123456789abcdef0123456789"
# Test values for the shipped stacks' placeholder secrets (prod: an external database and bucket).
PLACEHOLDER_VALUES = {
    "mlops:secret_seed": SEED,
    "mlops:mlflow_database_url": "postgresql+psycopg2://mlflow:engine-password@db.example.internal:5432/mlflow",
    "mlops:monitor_database_url": "postgresql://monitor:engine-password@db.example.internal:5432/monitor",
    "mlops:artifact_store_access_key_id": "AKIAENGINETEST000000",
    "mlops:artifact_store_secret_access_key": "engine-test-secret-access-key-0123456789",
}


def _stack(cli: PulumiCli, project: Path, stack: str, cluster: Any, kfp_manifests: Path) -> None:
    """Init ``stack`` in the copy, set its secrets for real, and point it at the local cluster."""
    stack_file = project / "infra" / "stacks" / f"Pulumi.{stack}.yaml"
    keys = replace_placeholder_secrets(stack_file)
    cli.run("stack", "init", stack, cwd=project)
    for key in keys:
        cli.run("config", "set", "--secret", key, PLACEHOLDER_VALUES[key], cwd=project)
    point_at_cluster(cli, project, cluster.kubeconfig_path(), kfp_manifests)
    if yaml.safe_load(stack_file.read_text())["config"].get("mlops:cluster", {}).get("mode") == "eks":
        # EKS itself is not verified here (README)
        cli.run("config", "set", "--path", "mlops:cluster.mode", "existing", cwd=project)
    stack_text = stack_file.read_text()
    for value in PLACEHOLDER_VALUES.values():
        assert value not in stack_text  # set as secrets: encrypted in the file


def _warnings(output: str) -> list[str]:
    """The warnings of Pulumi's ``Diagnostics:`` block: what the API server answered (Pod Security, unknown or
    duplicate fields, deprecations) and what the program or provider logged as a warning.

    Not the progress lines, which repeat the provider's await status while it waits for readiness
    ("[MinimumReplicasUnavailable] Deployment does not have minimum availability") and are not warnings.
    """
    found: list[str] = []
    inside = False
    for line in output.splitlines():
        if line.startswith("Diagnostics:"):
            inside = True
        elif inside and line.strip() and not line.startswith(" "):
            inside = False
        elif inside and "warning:" in line:
            found.append(line.strip())
    return found


@pytest.mark.parametrize("stack", ["dev", "staging", "local", "prod"])
def test_every_shipped_stack_previews_against_the_api_server(
    stack: str, engine_cluster: Any, kfp_manifests: Path, pulumi_home: Path, tmp_path: Path
) -> None:
    """A copy of each shipped stack, secrets set by `pulumi config set --secret`, passes `pulumi preview`."""
    project = copy_project(tmp_path / "repo", engine_python().parents[1])
    cli = PulumiCli(tmp_path, pulumi_home, kubeconfig=engine_cluster.kubeconfig_path())
    _stack(cli, project, stack, engine_cluster, kfp_manifests)
    preview = cli.run("preview", cwd=project, check=False)
    output = preview.stdout + preview.stderr
    assert preview.returncode == 0, output
    counts = summary(preview.stdout)
    print(f"pulumi preview ({stack}):\n{counts.text}")
    assert counts["to create"] > 50, counts.text  # the whole platform, not an empty program
    assert not _warnings(output), _warnings(output)
    assert engine_cluster.decoy_connections == 0  # nothing went to the kubeconfig's current context


# The engine stack: dev-sized, two models of no project and three catalog projects (two with a model),
# upstream charts switched off (the CRDs are installed above).
ENGINE_CATALOG: dict[str, Any] = {
    "people": [{"name": "alice"}, {"name": "bob"}],
    "teams": [
        {"name": "risk", "group": "oidc:risk", "members": ["alice"]},
        {"name": "growth", "group": "oidc:growth", "members": ["bob"]},
    ],
    "projects": [
        {
            "name": "scoring",
            "team": "risk",
            "owner": "alice",
            "models": [{"name": "scoring-a", "registered_model": "scoring-a"}],
        },
        {
            "name": "retention",
            "team": "growth",
            "owner": "bob",
            "alert_route": "growth-oncall",
            "models": [{"name": "retention-a", "registered_model": "retention-a"}],
        },
        {"name": "pricing", "team": "risk", "owner": "risk", "quota": {"pods": 5}},
    ],
}
ENGINE_CONFIG: dict[str, Any] = {
    "mlops:mlflow": {
        "replicas": 1,
        "workers": 1,
        "database": {"storage_size": "1Gi"},
        "artifact_store": {"bucket": "mlflow-artifacts", "storage_size": "2Gi"},
    },
    "mlops:monitoring": {"retention": "1d", "storage_size": "1Gi"},
    "mlops:models": [
        {"name": "credit-default", "registered_model": "credit-default"},
        {"name": "churn", "registered_model": "churn", "thresholds": {"psi": 0.2}},
    ],
    "mlops:catalog": ENGINE_CATALOG,
}
# Objects the control plane writes by itself while anything happens (not ours, never deleted by destroy).
CONTROL_PLANE_KINDS = {"Event", "events.k8s.io/Event"}


def _inventory(cluster: Any) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of every object the API server lists, Events aside."""
    kinds = cluster.kubectl("api-resources", "--verbs=list", "-o", "name").stdout.split()
    listed = json.loads(cluster.kubectl("get", ",".join(kinds), "--all-namespaces", "-o", "json").stdout)
    found = set()
    for item in listed["items"]:
        group = item["apiVersion"].rpartition("/")[0]
        kind = f"{group}/{item['kind']}" if group else item["kind"]
        if kind not in CONTROL_PLANE_KINDS:
            found.add((kind, item["metadata"].get("namespace", ""), item["metadata"]["name"]))
    return found


# Audit annotations the API server writes where it would also answer with a warning (which the provider
# discards: pulumi/pulumi-kubernetes provider/pkg/provider/provider.go, rest.NoWarnings, at 4.25.0).
FINDING_ANNOTATIONS = ("pod-security.kubernetes.io/audit-violations", "k8s.io/deprecated")


def _api_server_findings(cluster: Any, since: datetime.datetime) -> list[str]:
    """Pod Security (audit mode) violations and deprecated-API uses of Pulumi's requests after ``since``.

    Only the requests of the kubeconfig user Pulumi runs as: the control plane's own controllers still write
    v1 Endpoints (deprecated from 1.33), which is not ours to fix.
    """
    found = []
    for event in cluster.audit_events():
        if event.get("user", {}).get("username") != cluster.admin_user:
            continue
        received = datetime.datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))
        annotations = event.get("annotations", {})
        hits = {key: annotations[key] for key in FINDING_ANNOTATIONS if key in annotations}
        if received >= since and hits:
            ref = event.get("objectRef", {})
            found.append(
                f"{event['verb']} {ref.get('resource')} {ref.get('namespace', '')}/{ref.get('name')}: {hits}"
            )
    return found


def _steps(cli: PulumiCli, project: Path, diff: bool = False) -> dict[str, list[Any]]:
    """URNs per operation of a `pulumi preview --json` (same, create, update, replace, delete...).

    With ``diff``, each changed step is ``{urn: {property: diff kind}}`` (the detailed diff), to say why.
    """
    preview = json.loads(cli.run("preview", "--json", "--diff", cwd=project).stdout)
    steps: dict[str, list[Any]] = {}
    for step in preview.get("steps", []):
        detail = {key: value.get("kind") for key, value in (step.get("detailedDiff") or {}).items()}
        entry = (
            {step["urn"]: detail or step.get("diffReasons")} if diff and step["op"] != "same" else step["urn"]
        )
        steps.setdefault(step["op"], []).append(entry)
    return steps


def _up(cli: PulumiCli, project: Path, what: str, cluster: Any) -> Summary:
    started = datetime.datetime.now(datetime.UTC)
    completed = cli.run("up", "--yes", "--skip-preview", cwd=project, timeout=UP_SECONDS)
    output = completed.stdout + completed.stderr
    (project.parent / f"up-{len(list(project.parent.glob('up-*.txt')))}.txt").write_text(output)
    counts = summary(completed.stdout)
    print(f"pulumi up ({what}):\n{counts.text}")
    assert not _warnings(output), "\n".join(_warnings(output))  # the program's and the provider's
    findings = _api_server_findings(cluster, started)
    assert not findings, "\n".join(findings)  # Pod Security, deprecated APIs
    return counts


# Four ups, three previews and a destroy: 4-5 min on a quiet machine, longer when CI's two cores are busy.
# One up may take UP_SECONDS (its output is reported if it does not finish), the test as a whole TEST_SECONDS.
UP_SECONDS = 600
TEST_SECONDS = 1800


@pytest.mark.timeout(TEST_SECONDS)
def test_engine_stack_up_up_again_change_one_model_and_destroy(
    engine_cluster: Any, kfp_manifests: Path, pulumi_home: Path, tmp_path: Path
) -> None:
    """`pulumi up` creates the platform on a real API server; again: 0 changes; destroy leaves nothing."""
    before = _inventory(engine_cluster)
    project = copy_project(tmp_path / "repo", engine_python().parents[1])
    cli = PulumiCli(tmp_path, pulumi_home, kubeconfig=engine_cluster.kubeconfig_path())
    cli.run("stack", "init", "engine", cwd=project)
    stack_file = project / "infra" / "stacks" / "Pulumi.engine.yaml"
    document = yaml.safe_load(stack_file.read_text()) or {}
    document.setdefault("config", {}).update(ENGINE_CONFIG)
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
    cli.run("config", "set", "--secret", "mlops:secret_seed", SEED, cwd=project)
    point_at_cluster(cli, project, engine_cluster.kubeconfig_path(), kfp_manifests)

    created = _up(cli, project, "create", engine_cluster)
    assert created["created"] > 50 and set(created.counts) == {"created"}, created.text

    steps = _steps(cli, project, diff=True)
    drift = {op: urns for op, urns in steps.items() if op != "same"}
    assert not drift, f"a second up would change: {json.dumps(drift, indent=1)}"  # no perpetual diff
    again = _up(cli, project, "again, nothing changed", engine_cluster)
    assert set(again.counts) == {"unchanged"} and again["unchanged"] == created["created"], again.text

    cli.run("config", "set", "--path", "mlops:models[1].thresholds.psi", "0.3", cwd=project)
    steps = _steps(cli, project)
    changed = sorted(urn for op, urns in steps.items() if op != "same" for urn in urns)
    print("changing churn's psi threshold touches:", *changed, sep="\n  ")
    assert set(steps) == {"same", "update"}, steps.keys()  # in place: nothing replaced or deleted
    names = {urn.rpartition("::")[2] for urn in changed}
    # Only the objects that hold churn's declaration: the monitor's models.json (and the monitor, which reads
    # it at start), and the alert-rule and dashboard shards; never MLflow, KFP, Seldon or the namespaces.
    holders = {"mlops-monitoring-monitor-config", "mlops-monitoring-monitor"}
    assert all(name in holders or name.startswith("mlops-monitoring-model-") for name in names), names
    assert "mlops-monitoring-monitor-config" in names and any("model-rules" in name for name in names), names
    changed_once = _up(cli, project, "churn's psi threshold", engine_cluster)
    assert changed_once["updated"] == len(changed), changed_once.text

    removed = _remove_a_project(cli, project, stack_file, engine_cluster)

    destroyed = cli.run("destroy", "--yes", "--skip-preview", cwd=project, timeout=UP_SECONDS)
    print(f"pulumi destroy:\n{summary(destroyed.stdout).text}")
    assert summary(destroyed.stdout)["deleted"] == created["created"] - removed
    left = sorted(_inventory(engine_cluster) - before)
    assert not left, f"objects left in the API server after destroy: {left}"
    assert engine_cluster.decoy_connections == 0


def _remove_a_project(cli: PulumiCli, project: Path, stack_file: Path, cluster: Any) -> int:
    """Take ``retention`` (and its model) out of the catalog: one clean `pulumi up` deletes its objects only.

    Returns the resources deleted. What holds the project's data is not among them: MLflow and the monitor's
    volume stay (its archive is the archive Job's, platform_components/projects).
    """
    for name in ("scoring", "retention", "pricing"):
        labels = json.loads(cluster.kubectl("get", "namespace", name, "-o", "json").stdout)["metadata"][
            "labels"
        ]
        assert (
            labels["pod-security.kubernetes.io/enforce"] == "restricted"
            and labels["mlops.platform/project"] == name
        )
    cluster.kubectl("get", "serviceaccount", "retention-pipeline-runner", "-n", "kubeflow")
    document = yaml.safe_load(stack_file.read_text())
    document["config"]["mlops:catalog"]["projects"] = [
        entry for entry in document["config"]["mlops:catalog"]["projects"] if entry["name"] != "retention"
    ]
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
    steps = _steps(cli, project)
    # Nothing replaced but the project-sync Job, named after the catalog's hash (a new catalog, a new run).
    replaced = steps.pop("replace", [])
    assert all("project-sync" in urn for urn in replaced), replaced
    assert set(steps) <= {"same", "update", "delete"}, steps.keys()  # nothing created
    deleted = {urn.rpartition("::")[2] for urn in steps.get("delete", [])}
    updated = {urn.rpartition("::")[2] for urn in steps.get("update", [])}
    print(
        "removing project retention deletes:", *sorted(deleted), "and updates:", *sorted(updated), sep="\n  "
    )
    owned = (
        "mlops-project-retention",
        "mlops-model-retention-a",
        "mlops-monitoring-model-dashboards-retention-",
    )
    assert deleted and all(name.startswith(owned) for name in deleted), deleted
    # The project component and its 10 objects, the model's owner ConfigMap (its Seldon Model is the
    # deployer's, not Pulumi's, and goes with its owner), its dashboards.
    assert len(deleted) == 11 + 1 + 1, sorted(deleted)
    # What lists the models: the monitor's models.json (and the monitor), the rule shard, the deployer's Role;
    # what lists the projects: the sync's catalog ConfigMap and its users' Secret (the project's pipeline user).
    holders = {
        "mlops-monitoring-monitor-config",
        "mlops-monitoring-monitor",
        "mlops-model-deployer-role",
        "mlops-project-sync-catalog",
        "mlops-project-sync-users",
    }
    assert all(name in holders or name.startswith("mlops-monitoring-model-rules-") for name in updated), (
        updated
    )
    up = _up(cli, project, "project retention removed", cluster)
    assert up["deleted"] == len(deleted) and up["updated"] == len(updated), up.text
    left = cluster.kubectl("get", "namespace", "retention", check=False)
    assert left.returncode != 0 and "NotFound" in left.stderr, left.stdout  # gone, not Terminating
    accounts = cluster.kubectl("get", "serviceaccount", "-n", "kubeflow", "-o", "name").stdout.split()
    assert sorted(a for a in accounts if a.endswith("pipeline-runner")) == [
        "serviceaccount/pipeline-runner",
        "serviceaccount/pricing-pipeline-runner",
        "serviceaccount/scoring-pipeline-runner",
    ]
    # The program says what it renders and that a removed project's data is archived, not deleted.
    output = max(project.parent.glob("up-*.txt"), key=lambda path: path.stat().st_mtime).read_text()
    assert "2 project(s) in the catalog: scoring" in output and "archived, never deleted" in output
    return len(deleted)


def test_a_pod_security_violation_reaches_the_audit_log_the_up_test_reads(
    engine_cluster: Any, pulumi_home: Path, tmp_path: Path
) -> None:
    """The check above can fail: a Pod Security violation in an audited namespace is in the audit log."""
    project = tmp_path / "warned"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: warned\nruntime: python\n")
    (project / "__main__.py").write_text(
        "import pulumi, pulumi_kubernetes as k8s\n"
        "provider = k8s.Provider('p', kubeconfig=pulumi.Config().require('kubeconfig'), context='engine')\n"
        "opts = pulumi.ResourceOptions(provider=provider)\n"
        "ns = k8s.core.v1.Namespace('ns', metadata={'name': 'warned',\n"
        "    'labels': {'pod-security.kubernetes.io/audit': 'restricted'}}, opts=opts)\n"
        "k8s.core.v1.Pod('pod', metadata={'namespace': ns.metadata['name'], 'name': 'privileged',\n"
        "    'annotations': {'pulumi.com/skipAwait': 'true'}},\n"
        "    spec={'containers': [{'name': 'c', 'image': 'busybox:1.36',\n"
        "        'securityContext': {'privileged': True}}]}, opts=opts)\n"
    )
    cli = PulumiCli(tmp_path, pulumi_home, kubeconfig=engine_cluster.kubeconfig_path())
    cli.run("stack", "init", "warned", cwd=project)
    cli.run("config", "set", "kubeconfig", str(engine_cluster.kubeconfig_path()), cwd=project)
    started = datetime.datetime.now(datetime.UTC)
    cli.run("up", "--yes", "--skip-preview", cwd=project)
    findings = _api_server_findings(engine_cluster, started)
    assert any("warned/privileged" in line and "privileged" in line for line in findings), findings
    cli.run("destroy", "--yes", "--skip-preview", cwd=project)
