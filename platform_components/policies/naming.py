"""Names the API server accepts and controllers can use: DNS-1123 names, label syntax, uniqueness.

Source: kubernetes ``apimachinery/pkg/util/validation/validation.go`` (IsDNS1123Label, IsDNS1123Subdomain,
IsDNS1035Label, IsQualifiedName, IsValidLabelValue) and the per-kind name validators (CronJob names are capped
at 52 characters because the controller appends an 11-character suffix to its Jobs).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from platform_components.policies._core import (
    WORKLOAD_KINDS,
    Context,
    Hit,
    Rule,
    group_of,
    join,
    kind_of,
    labels,
    metadata,
    name_of,
    namespace_of,
    object_rule,
    pod_template,
    set_rule,
)

Finding = tuple[str, str]

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

#: kind -> (regex, description, maximum length). Kinds not listed use a DNS-1123 subdomain of 253.
_NAME_FORMS: dict[str, tuple[re.Pattern[str] | None, str, int]] = {
    # A Namespace name becomes the kubernetes.io/metadata.name label: a DNS-1123 label.
    "Namespace": (_DNS1123_LABEL, "a DNS-1123 label (lowercase letters, digits, '-')", 63),
    # A Service name becomes a DNS label and environment variable prefix: RFC 1035 (starts with a letter).
    "Service": (
        _DNS1035_LABEL,
        "an RFC 1035 label (lowercase letters, digits, '-', starting with a letter)",
        63,
    ),
    # The Job name becomes the job-name label of its pods.
    "Job": (_DNS1123_LABEL, "a DNS-1123 label", 63),
    "CronJob": (
        _DNS1123_LABEL,
        "a DNS-1123 label of at most 52 characters (Jobs get an 11-character suffix)",
        52,
    ),
    # Pods of a StatefulSet carry the labels statefulset.kubernetes.io/pod-name=<name>-<ordinal> and
    # controller-revision-hash=<name>-<hash>: hence the same 52-character margin (kubernetes issue #64023).
    "StatefulSet": (
        _DNS1123_LABEL,
        "a DNS-1123 label of at most 52 characters (pod labels add suffixes)",
        52,
    ),
    # RBAC objects are path-segment names (``system:aggregate-to-view`` is valid).
    "Role": (None, "a path segment name (no '/', '%', '.' or '..')", 253),
    "ClusterRole": (None, "a path segment name (no '/', '%', '.' or '..')", 253),
    "RoleBinding": (None, "a path segment name (no '/', '%', '.' or '..')", 253),
    "ClusterRoleBinding": (None, "a path segment name (no '/', '%', '.' or '..')", 253),
}
_SUBDOMAIN_FORM = (_DNS1123_SUBDOMAIN, "a DNS-1123 subdomain (lowercase letters, digits, '-', '.')", 253)


def name_problem(kind: str, name: Any) -> str | None:
    """Why ``name`` is not a valid ``metadata.name`` for ``kind``, or None."""
    pattern, description, maximum = _NAME_FORMS.get(kind, _SUBDOMAIN_FORM)
    if not isinstance(name, str) or not name:
        return f"must be {description}, got {name!r}"
    if len(name) > maximum:
        return f"is {len(name)} characters long; {kind} names must be at most {maximum} ({description})"
    if pattern is None:
        if name in (".", "..") or "/" in name or "%" in name:
            return f"{name!r} is not {description}"
        return None
    if not pattern.match(name):
        return f"{name!r} is not {description}"
    return None


def label_key_problem(key: Any) -> str | None:
    """Why ``key`` is not a valid label key (``[prefix/]name``), or None."""
    if not isinstance(key, str) or not key:
        return f"label key {key!r} is empty"
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        return f"label key prefix {prefix!r} must be a DNS-1123 subdomain"
    if len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return (
            f"label key name {name!r} must be at most 63 characters of letters, digits, '-', '_', '.', "
            "starting and ending with a letter or digit"
        )
    return None


def label_value_problem(value: Any) -> str | None:
    """Why ``value`` is not a valid label value, or None."""
    if value == "":
        return None
    if not isinstance(value, str):
        return f"label value {value!r} must be a string (quote it in YAML)"
    if len(value) > 63:
        return f"label value {value!r} is {len(value)} characters long; at most 63 are allowed"
    if not _QUALIFIED_NAME.match(value):
        return (
            f"label value {value!r} must be letters, digits, '-', '_', '.', starting and ending alphanumeric"
        )
    return None


@object_rule("NAME-VALID", "every object has a valid metadata.name for its kind")
def valid_name(obj: Mapping[str, Any], context: Context) -> Iterator[Finding]:
    meta = metadata(obj)
    if meta.get("name") is None and meta.get("generateName"):
        return
    problem = name_problem(kind_of(obj), meta.get("name"))
    if problem:
        yield "metadata.name", f"metadata.name {problem}"
    namespace = meta.get("namespace")
    if namespace is not None:
        problem = name_problem("Namespace", namespace)
        if problem:
            yield "metadata.namespace", f"metadata.namespace {problem}"


@object_rule("LABEL-VALID", "label keys and values are valid (values at most 63 characters)")
def valid_labels(obj: Mapping[str, Any], context: Context) -> Iterator[Finding]:
    places = [("metadata", metadata(obj))]
    template = pod_template(obj)
    if template is not None and template.spec_path != "spec":
        places.append((template.spec_path[: -len(".spec")] + ".metadata", template.metadata))
    for meta_path, meta in places:
        for key, value in labels(meta).items():
            path = join(join(meta_path, "labels"), str(key))
            problem = label_key_problem(key) or label_value_problem(value)
            if problem:
                yield path, problem


#: Kinds that live in a namespace (built-in and the custom resources we render); others may be cluster-scoped.
NAMESPACED_KINDS = WORKLOAD_KINDS | {
    "ConfigMap",
    "Secret",
    "Service",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "NetworkPolicy",
    "PersistentVolumeClaim",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "Ingress",
    "ResourceQuota",
    "LimitRange",
    "Model",
    "Server",
    "ServiceMonitor",
    "PodMonitor",
    "PrometheusRule",
}


@object_rule("NAMESPACE-EXPLICIT", "namespaced objects name their namespace, and it is not 'default'")
def explicit_namespace(obj: Mapping[str, Any], context: Context) -> Iterator[Finding]:
    # checkov CKV_K8S_21: objects in "default" share it with whatever else lands there, and an object without
    # a namespace goes wherever the kubeconfig context points.
    if kind_of(obj) not in NAMESPACED_KINDS:
        return
    namespace = metadata(obj).get("namespace")
    if not namespace:
        yield "metadata.namespace", "metadata.namespace is not set; name the platform namespace it belongs in"
    elif namespace == "default":
        yield "metadata.namespace", "object is in the 'default' namespace; put it in a platform namespace"


@set_rule("NAME-UNIQUE", "no two objects share (group, kind, namespace, name)")
def unique_names(context: Context) -> Iterator[Hit]:
    # Group, not apiVersion: apps/v1 and apps/v1beta2 Deployments of one name are one object in the cluster.
    seen: dict[tuple[str, str, str, str], Mapping[str, Any]] = {}
    for obj in context.objects:
        key = (group_of(obj), kind_of(obj), namespace_of(obj), name_of(obj))
        if not key[3]:
            continue  # NAME-VALID reports the missing name
        if key in seen:
            yield Hit(
                obj,
                "metadata.name",
                f"{kind_of(obj)} {name_of(obj)!r} appears twice in namespace {namespace_of(obj)!r}; "
                "one would overwrite the other: give each a distinct name",
            )
        else:
            seen[key] = obj


RULES: tuple[Rule, ...] = (valid_name, valid_labels, explicit_namespace, unique_names)
