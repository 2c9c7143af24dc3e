"""Every Helm value we set exists in that chart's values.yaml at the pinned version (issue 7 item 12).

A value the chart does not know is ignored by Helm without a word: that is how ``hodometer.enabled`` and
``opentelemetry.enable`` shipped. Each path we set must be a key of upstream's values.yaml, except below
the keys in ``FREE_FORM``: there the chart passes our map through as a Kubernetes object (``toYaml``) or its
template reads a key values.yaml does not declare; each exception says why.
"""

# ruff: noqa: F811

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_fixtures import dev_render, stack_render  # noqa: F401
from upstream_facts import fact, upstream_path

from platform_components.render import releases

REPO = Path(__file__).resolve().parents[2]

VALUES_FILES = {
    "seldon-core-v2-setup": ("seldon-core-v2.10.2", "k8s/helm-charts/seldon-core-v2-setup/values.yaml"),
    "seldon-core-v2-runtime": ("seldon-core-v2.10.2", "k8s/helm-charts/seldon-core-v2-runtime/values.yaml"),
    "seldon-core-v2-servers": ("seldon-core-v2.10.2", "k8s/helm-charts/seldon-core-v2-servers/values.yaml"),
    "kube-prometheus-stack": (
        "kube-prometheus-stack-81.6.2",
        "charts/kube-prometheus-stack/values.yaml",
    ),
}
#: Charts we install with no values at all (their values.yaml is not in ../shared/upstream).
NO_VALUES = {"seldon-core-v2-crds"}

#: Free-form paths that are values of kube-prometheus-stack's grafana subchart (its values.yaml is not in
#: ../shared/upstream): each must be ``grafana.`` + the path an upstream fact read in the subchart.
GRAFANA_SUBCHART_FACTS = {
    "grafana.sidecar.dashboards.folderAnnotation": "grafana.sidecar.folder_annotation_value",
    "grafana.sidecar.dashboards.provider.foldersFromFilesStructure": (
        "grafana.sidecar.folders_from_files_structure_value"
    ),
}
#: chart -> {path pattern ("*" matches one key): why what is below it is not checked against values.yaml}.
FREE_FORM: dict[str, dict[str, str]] = {
    "seldon-core-v2-setup": {
        "*.securityContext": "written with toYaml as the pod securityContext of that component's pods "
        "(_components-statefulsets.tpl@v2.10.2): any PodSecurityContext field",
        "controller.watchNamespaces": "read by the template (join) though values.yaml does not declare it "
        "(upstream fact seldon.setup.template_only_values)",
    },
    "seldon-core-v2-runtime": {
        "*.podSpec": "written with toJson into the SeldonRuntime's overrides[].podSpec "
        "(templates/seldon-runtime.yaml@v2.10.2; fact seldon.runtime.override_value_keys); values.yaml "
        "does not declare it",
    },
    "kube-prometheus-stack": {
        "*.*.securityContext": "the Prometheus/Alertmanager CR's pod securityContext, passed through as is",
        "*.*.resources": "the Prometheus/Alertmanager CR's container ResourceRequirements, declared as {} "
        "in values.yaml (prometheus.prometheusSpec.resources, alertmanager.alertmanagerSpec.resources)",
        "prometheus.prometheusSpec.storageSpec": "a Prometheus Operator StorageSpec, declared as {} with a "
        "commented example in values.yaml",
        "grafana.service": "a value of the grafana subchart (grafana/helm-charts charts/grafana "
        "values.yaml), whose values.yaml is not in ../shared/upstream: NOT verified here",
        "grafana.sidecar.dashboards.folderAnnotation": "a value of the grafana subchart 11.1.1, not in "
        "../shared/upstream: read with the fetch tool (fact grafana.sidecar.folder_annotation_value)",
        "grafana.sidecar.dashboards.provider.foldersFromFilesStructure": "a value of the grafana subchart "
        "11.1.1 (upstream fact grafana.sidecar.folders_from_files_structure_value)",
    },
}


def _matches(pattern: str, path: tuple[str, ...]) -> bool:
    parts = pattern.split(".")
    return len(parts) <= len(path) and all(p in ("*", key) for p, key in zip(parts, path, strict=False))


def unknown_paths(
    ours: Mapping[str, Any], upstream: Any, chart: str, prefix: tuple[str, ...] = ()
) -> Iterator[str]:
    """Dotted paths we set that upstream's values.yaml does not have (free-form keys skipped)."""
    for key, value in ours.items():
        path = (*prefix, str(key))
        if any(_matches(pattern, path) for pattern in FREE_FORM.get(chart, {})):
            continue
        if not isinstance(upstream, Mapping) or key not in upstream:
            yield ".".join(path)
            continue
        if isinstance(value, Mapping) and value:
            yield from unknown_paths(value, upstream[key], chart, path)


def _upstream_values(chart: str) -> Any:
    folder, path = VALUES_FILES[chart]
    return yaml.safe_load(upstream_path(folder, path).read_text())


def _helm_releases(render: Any) -> list[dict[str, Any]]:
    return [entry for entry in releases(render.resources) if entry["kind"] == "helm"]


@pytest.mark.parametrize("stack", ["dev", "staging", "local"])
def test_every_helm_value_we_set_exists_upstream(stack: str, dev_render: Any) -> None:
    render = stack_render(stack, dev_render)
    entries = _helm_releases(render)
    if stack != "local":
        assert entries, "the render installs Helm charts"
    for entry in entries:
        if entry["chart"] in NO_VALUES:
            assert entry["values"] == {}, f"{entry['chart']}: values set but its values.yaml is not checked"
            continue
        assert entry["chart"] in VALUES_FILES, f"no upstream values.yaml for chart {entry['chart']}"
        upstream = _upstream_values(entry["chart"])
        assert list(unknown_paths(entry["values"], upstream, entry["chart"])) == [], entry["chart"]


def test_the_check_catches_the_values_that_shipped_before() -> None:
    setup, runtime = _upstream_values("seldon-core-v2-setup"), _upstream_values("seldon-core-v2-runtime")
    old_setup = {
        "controller": {"clusterwide": False},
        "hodometer": {"enabled": False},
        "opentelemetry": {"enable": False},
    }
    assert list(unknown_paths(old_setup, setup, "seldon-core-v2-setup")) == [
        "hodometer.enabled",
        "opentelemetry.enable",
    ]
    assert list(unknown_paths({"hodometer": {"disable": True}}, runtime, "seldon-core-v2-runtime")) == []
    assert fact("seldon.setup.no_hodometer_enabled")["setup"] == "opentelemetry.disable"
    assert setup["opentelemetry"]["disable"] is False and runtime["hodometer"]["disable"] is False


def test_free_form_exceptions_point_at_keys_upstream_has_or_its_template_reads() -> None:
    """An exception must not hide a typo: its parent key exists upstream (or the facts name it)."""
    template_only = set(fact("seldon.setup.template_only_values"))
    for chart, patterns in FREE_FORM.items():
        upstream = _upstream_values(chart)
        for pattern in patterns:
            if pattern in template_only or pattern.endswith(".podSpec"):
                continue
            if "*" in pattern:
                continue
            if pattern in GRAFANA_SUBCHART_FACTS:
                assert pattern.split(".") == ["grafana", *fact(GRAFANA_SUBCHART_FACTS[pattern])], pattern
                continue
            node: Any = upstream
            for key in pattern.split("."):
                assert isinstance(node, Mapping) and key in node, f"{chart}: {pattern} is not in values.yaml"
                node = node[key]


def test_servers_chart_would_force_two_servers_so_it_is_not_installed(dev_render: Any) -> None:
    charts = {entry["chart"] for entry in _helm_releases(dev_render)}
    assert "seldon-core-v2-servers" not in charts
    servers = _upstream_values("seldon-core-v2-servers")
    assert set(fact("seldon.servers.always_two")) <= set(servers)
    assert all(servers[name]["minReplicas"] >= 1 for name in fact("seldon.servers.always_two"))
