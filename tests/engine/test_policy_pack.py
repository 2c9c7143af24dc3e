"""The policy pack (policy/) run by the real Pulumi engine: `pulumi preview --policy-pack`.

The pack needs its own virtualenv (pulumi-policy 1.21.0 pins protobuf~=5.29.5, kfp needs >=6.31): the test
builds ``policy/.venv`` in a copy of the repository from PyPI, from ``policy/requirements.txt`` under the
engine tier's SDK pins (tests/engine/requirements.txt as constraints).

How the CLI starts it here: the engine tier pairs CLI 3.260.0 with the Python host of sdk/v3@v3.79.0, which
cannot start a Python pack from its folder (it runs `python ''` in the program's folder: the Pulumi program
itself; tests/upstream_facts/pulumi_policy.py). The pack's launcher,
``policy/pulumi-analyzer-mlops-platform``, is given instead: the CLI runs an executable pack directly with
the engine address, and the launcher runs the pack the way a current host would
(``.venv/bin/python -u -m pulumi.policy <engine> <pack folder>``).

The deliberately bad program runs without a cluster: pulumi-kubernetes previews plain resources
client-side when the cluster is unreachable. The dev stack needs one (the local API server of
tests/engine/cluster.py): its Kubeflow Pipelines manifests are a kustomize.v2 Directory, which the provider
(4.25.0) refuses to construct without a reachable cluster.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from engine_cli import (
    REPO,
    PulumiCli,
    copy_project,
    engine_python,
    point_at_cluster,
    replace_placeholder_secrets,
    summary,
)
from packaging.specifiers import SpecifierSet
from upstream_facts import fact

pytestmark = [pytest.mark.engine, pytest.mark.slow]

LAUNCHER = "pulumi-analyzer-mlops-platform"
PACK_NAME = "mlops-platform"
POLICIES = ("kubernetes-object-policies", "kubernetes-stack-policies")
SEED = "engine-seed-0123456789abcdef0123456789"


def _seconds(label: str, started: float) -> None:
    print(f"{label}: {time.monotonic() - started:.1f} s")


@dataclass(frozen=True)
class Violation:
    """One entry of the ``Policies:`` block Pulumi prints after a preview."""

    level: str
    policy: str
    resource: str  # ``<type>: <name>``; empty for a violation reported on the stack as a whole
    rule: str  # our rule id, from the ``[RULE-ID] path: message`` line


_ENTRY = re.compile(r"^\s*- \[(?P<level>\w+)\]\s+(?P<policy>\S+)(?:\s+\((?P<resource>.+)\))?\s*$")
_RULE = re.compile(r"^\s*\[(?P<rule>[A-Z][A-Z0-9-]+)\] ")


def violations(output: str) -> list[Violation]:
    """The policy violations in a preview's output (entries of its ``Policies:`` block)."""
    found: list[Violation] = []
    entry: re.Match[str] | None = None
    for line in output.splitlines():
        if match := _ENTRY.match(line):
            entry = match
        elif entry is not None and (rule := _RULE.match(line)):
            found.append(Violation(entry["level"], entry["policy"], entry["resource"] or "", rule["rule"]))
            entry = None
    return found


def _unreachable_kubeconfig(path: Path) -> Path:
    """A kubeconfig whose server refuses connections at once (port 9): the provider previews offline."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "none", "user": {"token": "unused"}}],
                "contexts": [{"name": "dev", "context": {"cluster": "none", "user": "none"}}],
                "current-context": "dev",
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("policy-pack") / "repo", engine_python().parents[1])


@pytest.fixture(scope="module")
def pack(repo_copy: Path) -> Path:
    """The copy's pack launcher, its ``.venv`` built from PyPI (requirements.txt under the engine pins)."""
    folder = repo_copy / "policy"
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.skip("uv (the dev extra) is not installed: it builds the pack's virtualenv")
    started = time.monotonic()
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, ".venv"], cwd=folder, check=True)
    # From the pack's folder: requirements.txt holds `-e ..`, which pip and uv resolve from their working
    # directory (as a current host does: it runs pip in the pack's folder).
    constraints = REPO / "tests" / "engine" / "requirements.txt"
    install = [uv, "pip", "install", "--quiet", "--python", ".venv/bin/python"]
    subprocess.run([*install, "-r", "requirements.txt", "-c", str(constraints)], cwd=folder, check=True)
    _seconds("policy pack venv (uv venv + uv pip install)", started)
    probe = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({d: m.version(d) for d in ('pulumi-policy', 'protobuf', 'pulumi')}))"
    )
    versions = json.loads(
        subprocess.run(
            [str(folder / ".venv" / "bin" / "python"), "-c", probe],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    assert versions["pulumi-policy"] == fact("pulumi_policy.newest_release"), versions
    assert versions["protobuf"] in SpecifierSet(fact("pulumi_policy.protobuf_requirement")), versions
    assert versions["pulumi"] in SpecifierSet(fact("pulumi_policy.pulumi_requirement")), versions
    return folder / LAUNCHER


BAD_PROGRAM = """\
import pulumi
import pulumi_kubernetes as k8s

provider = k8s.Provider("cluster", kubeconfig=pulumi.Config().require("kubeconfig"))
opts = pulumi.ResourceOptions(provider=provider)
# No Pod Security labels; no default-deny NetworkPolicy although a pod runs in it.
k8s.core.v1.Namespace("team", metadata={"name": "team"}, opts=opts)
# Privileged, may run as root, no resources, no probes, mounts a service account token.
container = {"name": "app", "image": "nginx:1.27", "securityContext": {"privileged": True}}
k8s.core.v1.Pod(
    "privileged",
    metadata={"name": "privileged", "namespace": "team"},
    spec={"containers": [container]},
    opts=opts,
)
k8s.core.v1.Service(
    "exposed",
    metadata={"name": "exposed", "namespace": "team"},
    spec={"type": "LoadBalancer", "selector": {"app": "x"}, "ports": [{"port": 80, "protocol": "TCP"}]},
    opts=opts,
)
# Nothing wrong with this one: the pack must not report it.
k8s.core.v1.ConfigMap(
    "settings",
    metadata={"name": "settings", "namespace": "team"},
    data={"a": "b"},
    opts=opts,
)
# Upstream's content (here a v1 ConfigGroup, which the SDK expands offline): the pack skips its children.
UPSTREAM_POD = '''
apiVersion: v1
kind: Pod
metadata: {name: upstream-pod, namespace: team}
spec: {containers: [{name: app, image: "nginx:1.27", securityContext: {privileged: true}}]}
'''
k8s.yaml.ConfigGroup("upstream", yaml=[UPSTREAM_POD], opts=opts)
"""


def test_the_pack_refuses_a_program_that_breaks_each_of_its_policies(
    pack: Path, pulumi_home: Path, tmp_path: Path
) -> None:
    """Each bad object is reported by the policy owning its rule; the preview fails; config is honoured."""
    project = tmp_path / "bad"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: policy-probe\nruntime: python\n")
    kubeconfig = _unreachable_kubeconfig(tmp_path / "kubeconfig")
    (project / "__main__.py").write_text(BAD_PROGRAM)
    cli = PulumiCli(tmp_path, pulumi_home, kubeconfig=kubeconfig)
    cli.run("stack", "init", "dev", cwd=project)
    cli.run("config", "set", "kubeconfig", str(kubeconfig), cwd=project)

    started = time.monotonic()
    preview = cli.run("preview", "--policy-pack", str(pack), cwd=project, check=False)
    _seconds("preview of the bad program with the pack", started)
    output = preview.stdout + preview.stderr
    assert preview.returncode != 0, output
    # The CLI read PulumiPolicy.yaml beside the launcher for the pack's version.
    version = yaml.safe_load((pack.parent / "PulumiPolicy.yaml").read_text())["version"]
    assert f"{PACK_NAME}@v{version}" in output and "preview failed" in output, output
    found = violations(preview.stdout)
    reported = {(v.policy, v.resource, v.rule) for v in found}
    object_policy, stack_policy = POLICIES
    expected = {
        (object_policy, "kubernetes:core/v1:Pod: privileged", "PSS-BASELINE-PRIVILEGED"),
        (object_policy, "kubernetes:core/v1:Pod: privileged", "PSS-RESTRICTED-RUN-AS-NON-ROOT"),
        (object_policy, "kubernetes:core/v1:Pod: privileged", "RESOURCES-REQUESTS-LIMITS"),
        (object_policy, "kubernetes:core/v1:Pod: privileged", "PROBES-LIVENESS"),
        (object_policy, "kubernetes:core/v1:Namespace: team", "NAMESPACE-PSS-LABELS"),
        (object_policy, "kubernetes:core/v1:Service: exposed", "SERVICE-EXPOSURE"),
        (stack_policy, "kubernetes:core/v1:Namespace: team", "NETWORKPOLICY-DEFAULT-DENY"),
        (stack_policy, "kubernetes:core/v1:Pod: privileged", "SERVICE-ACCOUNT-TOKEN"),
    }
    assert expected <= reported, sorted(reported)
    assert {v.policy for v in found} == set(POLICIES)  # each policy the pack declares fires
    assert {v.level for v in found} == {"mandatory"}
    assert not [v for v in found if "ConfigMap" in v.resource], found
    assert "kubernetes:core/v1:Pod team/upstream-pod create" in preview.stdout, preview.stdout
    assert not [v for v in found if "upstream-pod" in v.resource], found
    # The group's outputs are unknown during the preview: they must not stop the stack policy.
    assert fact("pulumi_policy.unknown_is_advisory") not in output, output

    # The one gateway may be a LoadBalancer, through the pack's config (policy/README.md).
    config = tmp_path / "policy-config.json"
    config.write_text(json.dumps({object_policy: {"allowLoadBalancer": True}}))
    started = time.monotonic()
    allowed = cli.run(
        "preview", "--policy-pack", str(pack), "--policy-pack-config", str(config), cwd=project, check=False
    )
    _seconds("preview of the bad program with the pack and its config", started)
    rules = {(v.resource, v.rule) for v in violations(allowed.stdout)}
    assert ("kubernetes:core/v1:Service: exposed", "SERVICE-EXPOSURE") not in rules, sorted(rules)
    assert ("kubernetes:core/v1:Pod: privileged", "PSS-BASELINE-PRIVILEGED") in rules, sorted(rules)


def test_the_pack_folder_cannot_be_started_by_this_cli_and_host_pair(
    pack: Path, pulumi_home: Path, tmp_path: Path
) -> None:
    """Why the launcher: given the folder, the v3.79.0 host runs the program's own __main__.py as the pack.

    When this fails, the CLI and host pair starts Python packs from their folder (a newer host): use
    `--policy-pack policy/` there and keep the launcher for older pairs.
    """
    project = tmp_path / "program"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: policy-folder\nruntime: python\n")
    (project / "__main__.py").write_text("import pulumi\npulumi.export('ran_as', 'program')\n")
    cli = PulumiCli(tmp_path, pulumi_home)
    cli.run("stack", "init", "dev", cwd=project)
    preview = cli.run("preview", "--policy-pack", str(pack.parent), cwd=project, check=False)
    output = preview.stdout + preview.stderr
    assert preview.returncode != 0, output
    assert f'policy pack "{pack.parent}" failed to start' in output, output
    assert str(project / "__main__.py") in output, output  # the program itself, started in the pack's place


def test_the_dev_stack_passes_the_pack(
    engine_cluster: Any, kfp_manifests: Path, pack: Path, repo_copy: Path, pulumi_home: Path, tmp_path: Path
) -> None:
    """The shipped dev stack (charts off, KFP from a local copy) previews with zero violations of the pack."""
    cluster = engine_cluster
    keys = replace_placeholder_secrets(repo_copy / "infra" / "stacks" / "Pulumi.dev.yaml")
    assert keys == ["mlops:secret_seed"], keys
    cli = PulumiCli(tmp_path, pulumi_home, kubeconfig=cluster.kubeconfig_path())
    cli.run("stack", "init", "dev", cwd=repo_copy)
    cli.run("config", "set", "--secret", "mlops:secret_seed", SEED, cwd=repo_copy)
    point_at_cluster(cli, repo_copy, cluster.kubeconfig_path(), kfp_manifests)

    started = time.monotonic()
    preview = cli.run("preview", "--policy-pack", str(pack), cwd=repo_copy, check=False)
    _seconds("preview of the dev stack with the pack", started)
    output = preview.stdout + preview.stderr
    assert preview.returncode == 0, output
    assert violations(preview.stdout) == [], output
    assert f"{PACK_NAME}@v" in output, output  # the pack ran
    # Not checkable during preview (an unknown value) is not a pass: none may be left unchecked.
    unchecked = [
        line.strip() for line in output.splitlines() if fact("pulumi_policy.unknown_is_advisory") in line
    ]
    assert unchecked == [], unchecked
    assert summary(preview.stdout)["to create"] > 50  # the whole platform, not an empty program
    assert cluster.decoy_connections == 0  # nothing went to the kubeconfig's current context
