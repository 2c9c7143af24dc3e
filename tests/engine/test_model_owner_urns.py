"""A stack deployed when each model had its own ``ModelDeployment`` keeps its owners on the next `pulumi up`.

The owners (ConfigMaps ``mlops-model-<name>``) moved under one ``ModelDeployments`` component (issue 10's
render budget): a new URN without an alias is, to the engine, a new resource and a deleted one, and deleting
an owner garbage-collects its Seldon ``Model``. The real engine decides which state an alias matches; the
mocks only see the alias URN the SDK sends (tests/kubernetes/test_platform_program.py).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from engine_cli import REPO, PulumiCli

pytestmark = [pytest.mark.engine, pytest.mark.slow]

# The platform component and, per layout, the owners: under a ModelDeployment each (as the platform declared
# them before issue 10) or under the shared ModelDeployments of platform_components.
PROGRAM = textwrap.dedent(
    """
    import sys

    sys.path.insert(0, {repo!r})

    import pulumi
    import pulumi_kubernetes as k8s

    from platform_components.kubernetes.model import ModelDeployments, ModelDeploymentsArgs, model_owner
    from platform_components.seldon_models import owner_config_map
    from platform_components.settings import ModelDeploymentSettings

    layout = pulumi.Config().require("layout")
    provider = k8s.Provider("cluster", context="engine")
    platform = pulumi.ComponentResource("mlops:platform:MlopsPlatform", "mlops", None)
    models = [ModelDeploymentSettings(name=name, registered_model=name) for name in ("credit", "churn")]
    options = pulumi.ResourceOptions(parent=platform, providers=[provider])
    if layout == "per-model":
        for model in models:
            component = pulumi.ComponentResource(
                "mlops:platform:ModelDeployment", f"mlops-model-{{model.name}}", None, options
            )
            body = owner_config_map(model_owner(model, None, "s3://bucket/"), "default")
            k8s.core.v1.ConfigMap(
                f"mlops-model-{{model.name}}-owner",
                metadata=body["metadata"],
                data=body["data"],
                opts=pulumi.ResourceOptions(parent=component),
            )
            component.register_outputs({{}})
    else:
        args = ModelDeploymentsArgs(models, "default", None, "s3://bucket/")
        ModelDeployments("mlops-model", args, options)
    platform.register_outputs({{}})
    """
)


def _owner_uids(cluster: Any) -> dict[str, str]:
    listed = json.loads(cluster.kubectl("get", "configmaps", "-n", "default", "-o", "json").stdout)
    return {
        item["metadata"]["name"]: item["metadata"]["uid"]
        for item in listed["items"]
        if item["metadata"]["name"].startswith("mlops-model-")
    }


def test_owners_deployed_under_their_own_component_are_moved_not_replaced(
    local_cluster: Any, pulumi_home: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: owners\nruntime: python\n")
    (project / "__main__.py").write_text(PROGRAM.format(repo=str(REPO)))
    cli = PulumiCli(tmp_path, pulumi_home, kubeconfig=local_cluster.kubeconfig_path())
    cli.run("stack", "init", "engine", cwd=project)
    cli.run("config", "set", "layout", "per-model", cwd=project)
    cli.run("up", "--yes", "--skip-preview", cwd=project)
    before = _owner_uids(local_cluster)
    assert sorted(before) == ["mlops-model-churn", "mlops-model-credit"]

    cli.run("config", "set", "layout", "shared", cwd=project)
    preview = json.loads(cli.run("preview", "--json", cwd=project).stdout)
    # The preview lists changed steps only: the new component created, the two old ones deleted, and no
    # step on an owner (they are among the unchanged, matched through their aliases).
    changed = {
        step["urn"].rpartition("::")[2]: step["op"] for step in preview["steps"] if step["op"] != "same"
    }
    assert changed == {
        "mlops-model": "create",
        "mlops-model-credit": "delete",
        "mlops-model-churn": "delete",
    }, changed
    assert preview["changeSummary"] == {"create": 1, "delete": 2, "same": 5}
    cli.run("up", "--yes", "--skip-preview", cwd=project)
    assert _owner_uids(local_cluster) == before  # the same objects: their Models keep their owner

    cli.run("destroy", "--yes", "--skip-preview", cwd=project)
    assert _owner_uids(local_cluster) == {}
