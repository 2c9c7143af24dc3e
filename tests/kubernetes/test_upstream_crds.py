"""Every custom resource of the rendered stacks validates against upstream's real CRD schema.

The CRDs are upstream's own files at the pinned versions (../shared/upstream: Seldon Core v2.10.2
``operator/config/crd/bases``, kube-prometheus-stack 81.6.2 ``charts/crds/crds``). A structural CRD schema
makes the API server prune fields it does not declare (with a warning), so a field we set that the schema
does not know is an error here, except where the schema says ``x-kubernetes-preserve-unknown-fields``.
``metadata`` is the API server's ObjectMeta, checked by the built-in schemas, not the CRD.
"""

# ruff: noqa: F811

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pulumi_fixtures import dev_render, stack_render  # noqa: F401
from upstream_facts import upstream_path

from platform_components.kubernetes.custom_resources import seldon_server
from platform_components.render import kubernetes_objects

REPO = Path(__file__).resolve().parents[2]
_KPS_CRDS = ("kube-prometheus-stack-81.6.2", "charts/kube-prometheus-stack/charts/crds/crds")
_SELDON_CRDS = ("seldon-core-v2.10.2", "operator/config/crd/bases")
#: (group, kind) -> (upstream folder, path of its CRD file).
CRD_FILES = {
    ("mlops.seldon.io", "Server"): (*_SELDON_CRDS, "mlops.seldon.io_servers.yaml"),
    ("mlops.seldon.io", "Model"): (*_SELDON_CRDS, "mlops.seldon.io_models.yaml"),
    ("mlops.seldon.io", "ServerConfig"): (*_SELDON_CRDS, "mlops.seldon.io_serverconfigs.yaml"),
    ("mlops.seldon.io", "SeldonConfig"): (*_SELDON_CRDS, "mlops.seldon.io_seldonconfigs.yaml"),
    ("mlops.seldon.io", "SeldonRuntime"): (*_SELDON_CRDS, "mlops.seldon.io_seldonruntimes.yaml"),
    ("monitoring.coreos.com", "PodMonitor"): (*_KPS_CRDS, "crd-podmonitors.yaml"),
    ("monitoring.coreos.com", "ServiceMonitor"): (*_KPS_CRDS, "crd-servicemonitors.yaml"),
    ("monitoring.coreos.com", "PrometheusRule"): (*_KPS_CRDS, "crd-prometheusrules.yaml"),
}


def _strict(schema: Any) -> Any:
    """An OpenAPI v3 structural schema as JSON Schema that refuses fields the API server would prune."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    result = {key: _strict(value) for key, value in schema.items() if not key.startswith("x-kubernetes-")}
    if schema.get("x-kubernetes-int-or-string"):
        result.pop("type", None)
        result["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable"):
        result.pop("nullable")
        if "type" in result:
            result["type"] = [result["type"], "null"]
    if (
        schema.get("type") == "object"
        and "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result


@cache
def crd_schema(group: str, kind: str, version: str) -> dict[str, Any]:
    """The strict JSON schema of ``kind`` at ``version`` from upstream's CRD file."""
    crd = yaml.safe_load(upstream_path(*CRD_FILES[(group, kind)]).read_text())
    assert crd["spec"]["names"]["kind"] == kind and crd["spec"]["group"] == group
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = copy.deepcopy(served["schema"]["openAPIV3Schema"])
    schema.get("properties", {}).pop("metadata", None)
    return _strict(schema)


def problems(obj: Mapping[str, Any]) -> list[str]:
    group, _, version = str(obj["apiVersion"]).rpartition("/")
    schema = crd_schema(group, obj["kind"], version)
    body = {key: value for key, value in obj.items() if key != "metadata"}
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{obj['kind']}/{obj['metadata']['name']} {'.'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(body)
    ]


def custom_resources(render: Any) -> list[dict[str, Any]]:
    return [
        obj
        for obj in kubernetes_objects(render.resources)
        if str(obj.get("apiVersion", "")).rpartition("/")[0] in {"mlops.seldon.io", "monitoring.coreos.com"}
    ]


@pytest.mark.parametrize("stack", ["dev", "staging", "local"])
def test_every_custom_resource_validates_against_upstreams_crd(stack: str, dev_render: Any) -> None:
    render = stack_render(stack, dev_render)
    resources = custom_resources(render)
    if stack == "dev":
        kinds = {obj["kind"] for obj in resources}
        assert {"Server", "PodMonitor", "ServiceMonitor", "PrometheusRule"} <= kinds, kinds
    for obj in resources:
        assert (str(obj["apiVersion"]).rpartition("/")[0], obj["kind"]) in CRD_FILES, obj["kind"]
        assert problems(obj) == []


def test_an_unknown_or_mistyped_field_is_refused() -> None:
    server = seldon_server(
        "s", "seldon", replicas=1, resources={"requests": {"cpu": "1"}}, labels={"app": "s"}
    )
    assert problems(server) == []
    server["spec"]["minReplica"] = 1  # typo of minReplicas: pruned by the API server
    server["spec"]["replicas"] = "one"
    found = problems(server)
    assert any("minReplica" in item and "Additional properties" in item for item in found), found
    assert any(item.startswith("Server/s spec.replicas") for item in found), found


def _property_paths(schema: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Dotted property paths a schema declares (through items; $refs to built-in kinds are not followed)."""
    paths: set[tuple[str, ...]] = set()
    if not isinstance(schema, Mapping):
        return paths
    for key, sub in (schema.get("properties") or {}).items():
        paths.add((*prefix, key))
        paths |= _property_paths(sub, (*prefix, key))
    if isinstance(schema.get("items"), Mapping):
        paths |= _property_paths(schema["items"], (*prefix, "[]"))
    for combinator in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(combinator) or []:
            paths |= _property_paths(sub, prefix)
    return paths


def _upstream_allows(schema: Any, path: tuple[str, ...]) -> bool:
    node: Any = schema
    for key in path:
        if not isinstance(node, Mapping):
            return False
        if node.get("x-kubernetes-preserve-unknown-fields"):
            return True
        if key == "[]":
            node = node.get("items")
        elif key in (node.get("properties") or {}):
            node = node["properties"][key]
        elif isinstance(node.get("additionalProperties"), Mapping):
            node = node["additionalProperties"]
        else:
            return False
    return True


def test_our_offline_schemas_accept_no_field_upstreams_crd_would_prune() -> None:
    """The render's own schemas (used where ../shared/upstream is absent) are no looser than the CRDs."""
    import json

    from platform_components.validation import CUSTOM_SCHEMAS

    for (group, version, kind), filename in CUSTOM_SCHEMAS.items():
        ours = json.loads((REPO / "platform_components" / "schemas" / filename).read_text())
        crd = yaml.safe_load(upstream_path(*CRD_FILES[(group, kind)]).read_text())
        (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
        upstream = served["schema"]["openAPIV3Schema"]
        extra = sorted(
            ".".join(path)
            for path in _property_paths(ours)
            if path[0] not in ("apiVersion", "kind", "metadata") and not _upstream_allows(upstream, path)
        )
        assert extra == [], f"{kind}: our schema allows fields the CRD does not declare"
