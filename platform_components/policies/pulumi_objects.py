"""Turn Pulumi resources (type token + properties) into the plain Kubernetes object dicts the rules check.

Used by the pulumi-policy pack in ``policy/``; pure, so it is tested here even though pulumi-policy cannot be
installed beside kfp (it needs protobuf<6).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: Pulumi's marker key for secret values in property maps (``pulumi.runtime.rpc._special_sig_key``).
_SPECIAL_SIG_KEY = "4dabf18193072939515e22adb298388d"
#: Pulumi's marker for a value not known until apply (``pulumi.runtime.rpc.UNKNOWN``).
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
_TYPE_TOKEN = re.compile(r"^kubernetes:(?P<group>[^:/]+)/(?P<version>[^:/]+):(?P<kind>[A-Za-z0-9]+)$")
# Placeholder for the 8-character random suffix of Pulumi auto-naming, so name-length rules stay honest.
_AUTONAME_SUFFIX = "-00000000"


def _plain(value: Any) -> Any:
    """Unwrap secret markers and turn unknown values into None, recursively."""
    if isinstance(value, Mapping):
        if _SPECIAL_SIG_KEY in value and "value" in value:
            return _plain(value["value"])
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if value == _UNKNOWN:
        return None
    return value


def object_from_pulumi(
    resource_type: str, props: Mapping[str, Any], resource_name: str
) -> dict[str, Any] | None:
    """The Kubernetes object a pulumi-kubernetes resource would apply, or None for anything else.

    Args:
        resource_type: Pulumi type token, e.g. ``kubernetes:apps/v1:Deployment`` or
            ``kubernetes:apiextensions.k8s.io:CustomResource``.
        props: The resource's properties (camelCase, as the engine sees them).
        resource_name: Pulumi logical name; stands in for ``metadata.name`` when the provider auto-names.

    Returns:
        ``{"apiVersion", "kind", "metadata", ...}``; None for Helm releases, charts, kustomize/yaml groups,
        ``...Patch`` and ``...List`` types (not objects we can check one by one) and non-Kubernetes resources.
    """
    if resource_type == "kubernetes:apiextensions.k8s.io:CustomResource":
        api_version, kind = props.get("apiVersion"), props.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            return None
    else:
        match = _TYPE_TOKEN.match(resource_type)
        if match is None or match["group"] in ("helm.sh", "yaml", "kustomize"):
            return None
        kind = match["kind"]
        if kind.endswith(("Patch", "List")):
            return None
        group = match["group"]
        api_version = match["version"] if group == "core" else f"{group}/{match['version']}"
    obj: dict[str, Any] = {
        key: _plain(value) for key, value in props.items() if key not in ("apiVersion", "kind", "status")
    }
    metadata = dict(obj.get("metadata") or {})
    if not metadata.get("name"):
        metadata["name"] = f"{resource_name}{_AUTONAME_SUFFIX}"
    obj["metadata"] = metadata
    return {"apiVersion": api_version, "kind": kind, **obj}
