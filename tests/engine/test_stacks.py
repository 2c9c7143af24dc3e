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

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from engine_cli import PulumiCli, copy_project, engine_python, summary
from upstream_facts import fact, upstream_path

from platform_components.kubernetes.kfp import localize_argo_refs

pytestmark = [pytest.mark.engine, pytest.mark.slow]

SEED = "engine-seed-0123456789abcdef0123456789"
# Test values for the shipped stacks' placeholder secrets (prod: an external database and bucket).
PLACEHOLDER_VALUES = {
    "mlops:secret_seed": SEED,
    "mlops:mlflow_database_url": "postgresql+psycopg2://mlflow:engine-password@db.example.internal:5432/mlflow",
    "mlops:artifact_store_access_key_id": "AKIAENGINETEST000000",
    "mlops:artifact_store_secret_access_key": "engine-test-secret-access-key-0123456789",
}
# What upstream's charts would have installed: their CRDs, applied from ../shared/upstream.
CRD_FOLDERS = (
    ("seldon-core-v2.10.2", "operator", "config", "crd", "bases"),
    ("kube-prometheus-stack-81.6.2", "charts", "kube-prometheus-stack", "charts", "crds", "crds"),
)


@pytest.fixture(scope="session")
def cluster(local_cluster: Any) -> Any:
    """The local cluster with the CRDs of the charts the engine stacks switch off."""
    for parts in CRD_FOLDERS:
        local_cluster.kubectl("apply", "--server-side", "-f", str(upstream_path(*parts)))
    local_cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    return local_cluster


@pytest.fixture(scope="session")
def kfp_manifests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """KFP 2.17.0's manifests/kustomize made local, the way the README tells an air-gapped team to."""
    root = tmp_path_factory.mktemp("kfp-manifests")
    kustomize = root / "kustomize"
    shutil.copytree(upstream_path("kubeflow-pipelines-2.17.0", "manifests", "kustomize"), kustomize)
    shutil.copytree(upstream_path("argo-workflows-v4.0.5", "manifests"), root / "argo")
    localize_argo_refs(kustomize, root / "argo", fact("kfp.argo_version"))
    return kustomize


def _replace_placeholder_secrets(stack_file: Path) -> list[str]:
    """Drop the shipped ``secure: v1:REPLACE...`` placeholders; return their keys (set with --secret)."""
    document = yaml.safe_load(stack_file.read_text())
    config = document["config"]
    keys = [key for key, value in config.items() if isinstance(value, dict) and "secure" in value]
    for key in keys:
        del config[key]
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
    return keys


def _stack(cli: PulumiCli, project: Path, stack: str, cluster: Any, kfp_manifests: Path) -> None:
    """Init ``stack`` in the copy, set its secrets for real, and point it at the local cluster."""
    keys = _replace_placeholder_secrets(project / "infra" / "stacks" / f"Pulumi.{stack}.yaml")
    cli.run("stack", "init", stack, cwd=project)
    for key in keys:
        cli.run("config", "set", "--secret", key, PLACEHOLDER_VALUES[key], cwd=project)
    settings = {
        "mlops:cluster.kubeconfig": str(cluster.kubeconfig),
        "mlops:cluster.context": cluster.context,
        "mlops:upstream.helm_charts": "false",
        "mlops:kfp.manifests_path": str(kfp_manifests),
    }
    mode = yaml.safe_load((project / "infra" / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
    if mode.get("mlops:cluster", {}).get("mode") == "eks":
        settings["mlops:cluster.mode"] = "existing"  # EKS itself is not verified here (README)
    for key, value in settings.items():
        cli.run("config", "set", "--path", key, value, cwd=project)
    stack_text = (project / "infra" / "stacks" / f"Pulumi.{stack}.yaml").read_text()
    for value in PLACEHOLDER_VALUES.values():
        assert value not in stack_text  # set as secrets: encrypted in the file


def _warnings(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if "warning:" in line.lower()]


@pytest.mark.parametrize("stack", ["dev", "staging", "local", "prod"])
def test_every_shipped_stack_previews_against_the_api_server(
    stack: str, cluster: Any, kfp_manifests: Path, pulumi_home: Path, tmp_path: Path
) -> None:
    """A copy of each shipped stack, secrets set by `pulumi config set --secret`, passes `pulumi preview`."""
    project = copy_project(tmp_path / "repo", engine_python().parents[1])
    cli = PulumiCli(tmp_path, pulumi_home, kubeconfig=cluster.kubeconfig)
    _stack(cli, project, stack, cluster, kfp_manifests)
    preview = cli.run("preview", "--diff", cwd=project, check=False)
    output = preview.stdout + preview.stderr
    assert preview.returncode == 0, output
    counts = summary(preview.stdout)
    print(f"pulumi preview ({stack}):\n{counts.text}")
    assert counts["to create"] > 50, counts.text  # the whole platform, not an empty program
    assert not _warnings(output), _warnings(output)
    assert cluster.decoy_connections() == 0  # nothing went to the kubeconfig's current context
