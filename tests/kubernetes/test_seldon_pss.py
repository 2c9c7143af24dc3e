"""Issue 7 item 3: the pods Seldon's operator builds from our values and CRs meet Pod Security "restricted".

The operator is not run here, so each pod is assembled the way the operator assembles it, from the upstream
facts (tests/upstream_facts/seldon.py): the SeldonConfig's pod spec of a component (containers without a
securityContext, the pod securityContext from ``<component>.securityContext`` of the setup chart's values,
defaults from its values.yaml) merged with the SeldonRuntime's ``overrides[].podSpec`` from the runtime
chart's values; a Server's pods from the ServerConfig's pod merged with the Server's ``podSpec``. The merge
follows ``MergePodSpecs`` (containers by name, fields overridden, lists appended). The result goes through
our port of the Pod Security admission checks.
"""

# ruff: noqa: F811

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import yaml
from pulumi_fixtures import dev_render  # noqa: F401
from upstream_facts import fact, upstream_path

from platform_components.policies import pod_security
from platform_components.policies._core import Context
from platform_components.render import kubernetes_objects, releases


def _merge(base: Any, override: Any) -> Any:
    """mergo.Merge(WithOverride, WithAppendSlice) on JSON values: maps deep-merged, lists appended."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(override, list):
        return [*base, *override]
    return copy.deepcopy(override) if override is not None else base


def merge_pod_specs(base: Mapping[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    """The operator's merge of an override podSpec into a base pod spec (containers matched by name)."""
    if not override:
        return dict(base)
    rest = {key: value for key, value in override.items() if key != "containers"}
    merged = _merge({key: value for key, value in base.items() if key != "containers"}, rest)
    base_containers = list(base.get("containers", []))
    overrides = list(override.get("containers", []))
    containers = []
    for container in overrides:
        match = next((c for c in base_containers if c["name"] == container["name"]), None)
        containers.append(_merge(match, container) if match else dict(container))
    containers += [c for c in base_containers if c["name"] not in {o["name"] for o in overrides}]
    merged["containers"] = containers
    return merged


def restricted_findings(pod_spec: Mapping[str, Any], name: str) -> list[str]:
    """Every Pod Security baseline/restricted finding on a pod with this spec."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": dict(pod_spec)}
    context = Context(objects=(pod,))
    return [
        f"{rule.id} {hit.path}: {hit.message}"
        for rule in pod_security.RULES
        if rule.id.startswith("PSS-")
        for hit in rule.check(context)
    ]


def _values(dev_render: Any, chart: str) -> dict[str, Any]:
    (entry,) = [e for e in releases(dev_render.resources) if e["kind"] == "helm" and e["chart"] == chart]
    return entry["values"]


def runtime_component_pods(dev_render: Any) -> dict[str, dict[str, Any]]:
    """Pod spec of every runtime component our values leave on, as the operator would create it."""
    setup, runtime = (
        _values(dev_render, "seldon-core-v2-setup"),
        _values(dev_render, "seldon-core-v2-runtime"),
    )
    default_pod_security = fact("seldon.setup.default_pod_security")
    override_keys = fact("seldon.runtime.override_value_keys")
    pods = {}
    for component, shape in fact("seldon.setup.component_pods").items():
        runtime_key = override_keys[component]
        if runtime.get(runtime_key, {}).get("disable"):
            continue
        pod_security_context = _merge(
            default_pod_security, setup.get(shape["values_key"], {}).get("securityContext", {})
        )
        base = {
            "securityContext": pod_security_context,
            "containers": [{"name": container} for container in shape["containers"]],
        }
        pods[component] = merge_pod_specs(base, runtime.get(runtime_key, {}).get("podSpec"))
    return pods


def server_pods(dev_render: Any) -> dict[str, dict[str, Any]]:
    """Pod spec of every Server's StatefulSet: the mlserver ServerConfig's pod merged with the Server's."""
    setup = _values(dev_render, "seldon-core-v2-setup")
    base = {
        "securityContext": _merge(
            fact("seldon.setup.default_pod_security"),
            setup.get("serverConfig", {}).get("securityContext", {}),
        ),
        "containers": [{"name": name} for name in fact("seldon.serverconfig.mlserver_containers")],
    }
    return {
        obj["metadata"]["name"]: merge_pod_specs(base, obj["spec"].get("podSpec"))
        for obj in kubernetes_objects(dev_render.resources)
        if obj["kind"] == "Server"
    }


def test_every_runtime_component_pod_meets_restricted(dev_render: Any) -> None:
    pods = runtime_component_pods(dev_render)
    assert set(pods) == {"seldon-scheduler", "seldon-envoy"}, "only the scheduler and envoy stay on"
    for component, spec in pods.items():
        assert restricted_findings(spec, component) == []


def test_every_server_pod_meets_restricted(dev_render: Any) -> None:
    pods = server_pods(dev_render)
    assert pods, "the dev stack declares Servers"
    for server, spec in pods.items():
        assert restricted_findings(spec, server) == []


def test_the_charts_alone_would_be_refused_by_restricted_admission() -> None:
    """The check can fail: upstream's pods without our values and CRs violate seccomp and capabilities."""
    base = {
        "securityContext": fact("seldon.setup.default_pod_security"),
        "containers": [{"name": "scheduler"}],
    }
    rules = {finding.split()[0] for finding in restricted_findings(base, "scheduler")}
    assert {"PSS-RESTRICTED-SECCOMP", "PSS-RESTRICTED-CAPABILITIES"} <= rules
    assert {"PSS-RESTRICTED-ALLOW-PRIVILEGE-ESCALATION"} <= rules


def test_the_operator_runs_alone_in_a_baseline_namespace_that_says_why(dev_render: Any) -> None:
    objects = kubernetes_objects(dev_render.resources)
    (setup,) = [e for e in releases(dev_render.resources) if e.get("chart") == "seldon-core-v2-setup"]
    (runtime,) = [e for e in releases(dev_render.resources) if e.get("chart") == "seldon-core-v2-runtime"]
    assert setup["namespace"] != runtime["namespace"]
    namespaces = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Namespace"}
    operator = namespaces[setup["namespace"]]["metadata"]
    assert operator["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert (
        "no chart value or CRD field reaches"
        in operator["annotations"]["mlops.platform/policy-exception-reason"]
    )
    serving = namespaces[runtime["namespace"]]["metadata"]
    assert serving["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # The operator manager meets baseline: its pod under our values, its container as upstream ships it.
    manager = {
        "securityContext": _merge(
            fact("seldon.setup.default_pod_security"), setup["values"]["controller"]["securityContext"]
        ),
        "containers": [
            {"name": "manager", "securityContext": fact("seldon.setup.controller_container_security")}
        ],
    }
    assert not [f for f in restricted_findings(manager, "manager") if f.startswith("PSS-BASELINE")]
    # It watches the serving namespace (it reads only its own otherwise).
    assert setup["values"]["controller"]["clusterwide"] is fact("seldon.operator.watch")["clusterwide"]
    assert setup["values"]["controller"]["watchNamespaces"] == [runtime["namespace"]]


def test_the_facts_match_upstreams_values_yaml() -> None:
    values = yaml.safe_load(
        upstream_path("seldon-core-v2.10.2", "k8s/helm-charts/seldon-core-v2-setup/values.yaml").read_text()
    )
    keys = {shape["values_key"] for shape in fact("seldon.setup.component_pods").values()}
    for key in keys | {"controller", "serverConfig"}:
        assert values[key]["securityContext"] == fact("seldon.setup.default_pod_security"), key
    assert values["serverConfig"]["mlserver"]["parallel_workers"] == fact(
        "seldon.serverconfig.mlserver_parallel_workers"
    )
