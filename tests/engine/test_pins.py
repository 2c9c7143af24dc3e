"""The engine tier's pins agree: Python SDK pins, tools/ manifests and the wrapper modules' go.mod."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from upstream_facts import fact, upstream_path

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools"


def _requirements() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REPO / "tests" / "engine" / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"tests/engine/requirements.txt: {line!r} is not an exact pin (name==version)"
            pins[name.strip()] = version.strip()
    return pins


def _manifest(tool: str) -> dict:
    return json.loads((TOOLS / tool / "tool.json").read_text())


def _required(tool: str, module: str) -> str:
    text = (TOOLS / tool / "go.mod").read_text()
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(\S+)", text, re.MULTILINE)
    assert match, f"tools/{tool}/go.mod does not require {module}"
    return match.group(1)


def test_pulumi_sdk_pin_matches_the_cli_tools_builds() -> None:
    version = _manifest("pulumi")["version"]
    assert _requirements()["pulumi"] == version.removeprefix("v")
    # pkg/go.mod replaces sdk/v3 with ../sdk: both must be the same release in the wrapper.
    assert _required("pulumi", "github.com/pulumi/pulumi/pkg/v3") == version
    assert _required("pulumi", "github.com/pulumi/pulumi/sdk/v3") == version


def test_pulumi_kubernetes_sdk_pin_matches_the_provider_tools_builds() -> None:
    manifest = _manifest("pulumi-kubernetes")
    assert _requirements()["pulumi-kubernetes"] == manifest["version"].removeprefix("v")
    assert manifest["variables"]["app_version"] == manifest["version"].removeprefix("v")
    pseudo = _required("pulumi-kubernetes", "github.com/pulumi/pulumi-kubernetes/provider/v4")
    assert pseudo == fact("pulumi_kubernetes.provider.release_commit")
    assert _required("pulumi-kubernetes", "github.com/pulumi/pulumi-kubernetes/sdk/v4") == manifest["version"]


def test_promtool_is_the_prometheus_kube_prometheus_stack_ships() -> None:
    values = upstream_path("kube-prometheus-stack-81.6.2", "charts", "kube-prometheus-stack", "values.yaml")
    text = values.read_text()
    block = text[text.index("\n  prometheusSpec:") :]
    tag = re.search(r"repository: prometheus/prometheus\n\s+tag: (\S+)", block)
    assert tag, "values.yaml: no prometheus.prometheusSpec.image.tag"
    assert tag.group(1) == fact("prometheus.kube_prometheus_stack.prometheus_tag")
    major, minor, patch = tag.group(1).removeprefix("v").split(".")
    assert major == "3"
    expected = f"v0.{300 + int(minor)}.{patch}"
    assert _manifest("promtool")["version"] == expected
    assert _required("promtool", "github.com/prometheus/prometheus") == expected


@pytest.mark.parametrize("tool", sorted(p.parent.name for p in TOOLS.glob("*/tool.json")))
def test_every_wrapper_pins_its_sums_and_a_local_toolchain(tool: str) -> None:
    folder = TOOLS / tool
    assert (folder / "go.sum").read_text().strip(), f"tools/{tool}/go.sum is empty"
    gomod = (folder / "go.mod").read_text()
    assert re.search(r"^go 1\.\d+", gomod, re.MULTILINE)
    for build in _manifest(tool)["builds"]:
        assert re.search(rf"^\s*(tool\s+)?{re.escape(build['package'])}\s*$", gomod, re.MULTILINE), (
            f"tools/{tool}/go.mod has no tool directive for {build['package']}"
        )


def test_the_api_server_built_is_the_kubernetes_release_the_platform_targets() -> None:
    from platform_components.versions import KUBERNETES_VERSION

    assert _manifest("kubernetes")["version"] == f"v{KUBERNETES_VERSION}"
    for module in ("k8s.io/api", "k8s.io/apimachinery", "k8s.io/client-go"):
        assert _required("kubernetes", module) == "v0." + KUBERNETES_VERSION.partition(".")[2]
