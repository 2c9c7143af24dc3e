"""Shared vocabulary of the policy rules: findings, rules, object references, pod templates, paths.

Every rule is a pure function of the object list (no I/O, no clock), so the same code gates the offline
render, the tests and the pulumi-policy pack.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

#: The string a rendered Secret carries instead of a value. A Secret whose values are anything else leaks.
REDACTED = "<redacted>"

#: Annotation listing the rule ids an object is exempt from, comma separated.
EXCEPTION_ANNOTATION = "mlops.platform/policy-exception"
#: Annotation holding the human reason for the exception; required and non-empty.
EXCEPTION_REASON_ANNOTATION = "mlops.platform/policy-exception-reason"


@dataclass(frozen=True)
class Violation:
    """One broken rule on one object.

    Attributes:
        rule: Stable rule id, e.g. ``PSS-RESTRICTED-CAPABILITIES``.
        object_ref: ``Kind/namespace/name`` (namespace empty for cluster-scoped objects).
        path: Path of the offending field inside the object, e.g.
            ``spec.template.spec.containers[0].securityContext.capabilities.drop``.
        message: What is wrong and how to fix it.
    """

    rule: str
    object_ref: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule} {self.object_ref} {self.path}: {self.message}"


@dataclass(frozen=True)
class Hit:
    """What a rule function yields: the object it is about, the field path and the message."""

    obj: Mapping[str, Any]
    path: str
    message: str


@dataclass(frozen=True)
class Context:
    """Everything a rule may look at besides one object."""

    objects: tuple[Mapping[str, Any], ...]
    allow_load_balancer: bool = False

    @cached_property
    def by_identity(self) -> dict[tuple[str, str, str], Mapping[str, Any]]:
        """(kind, namespace, name) -> first such object; cross-object rules look up here, never scan."""
        index: dict[tuple[str, str, str], Mapping[str, Any]] = {}
        for obj in self.objects:
            index.setdefault((kind_of(obj), namespace_of(obj), name_of(obj)), obj)
        return index


@dataclass(frozen=True)
class Rule:
    """A policy rule: a stable id, a one-line summary and its check function."""

    id: str
    summary: str
    check: Callable[[Context], Iterable[Hit]]
    #: Whether the mlops.platform/policy-exception annotation may waive it.
    exceptable: bool = True
    #: Whether the verdict on one object depends on other objects (e.g. its namespace's NetworkPolicies).
    #: The pulumi-policy pack checks these once per stack instead of once per resource.
    cross_object: bool = False


def object_rule(rule_id: str, summary: str) -> Callable[[Callable[..., Iterable[tuple[str, str]]]], Rule]:
    """Turn ``f(obj, context) -> Iterable[(path, message)]`` into a Rule applied to every object."""

    def wrap(function: Callable[..., Iterable[tuple[str, str]]]) -> Rule:
        def check(context: Context) -> Iterator[Hit]:
            for obj in context.objects:
                for path, message in function(obj, context):
                    yield Hit(obj, path, message)

        check.__name__ = function.__name__
        check.__doc__ = function.__doc__
        return Rule(rule_id, summary, check)

    return wrap


def set_rule(rule_id: str, summary: str) -> Callable[[Callable[[Context], Iterable[Hit]]], Rule]:
    """Turn ``f(context) -> Iterable[Hit]`` (a rule over the whole object set) into a Rule."""

    def wrap(function: Callable[[Context], Iterable[Hit]]) -> Rule:
        return Rule(rule_id, summary, function, cross_object=True)

    return wrap


# --- small, total accessors: rules must not crash on malformed objects (schema validation reports those) ---


def as_dict(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` if it is a list, else an empty list."""
    return value if isinstance(value, list) else []


def metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_dict(obj.get("metadata"))


def kind_of(obj: Mapping[str, Any]) -> str:
    kind = obj.get("kind")
    return kind if isinstance(kind, str) else ""


def name_of(obj: Mapping[str, Any]) -> str:
    name = metadata(obj).get("name")
    return name if isinstance(name, str) else ""


def namespace_of(obj: Mapping[str, Any]) -> str:
    namespace = metadata(obj).get("namespace")
    return namespace if isinstance(namespace, str) else ""


def group_of(obj: Mapping[str, Any]) -> str:
    """The API group (``apps`` for ``apps/v1``, empty for the core group ``v1``)."""
    api_version = obj.get("apiVersion")
    if not isinstance(api_version, str) or "/" not in api_version:
        return ""
    return api_version.split("/", 1)[0]


def object_ref(obj: Mapping[str, Any]) -> str:
    """``Kind/namespace/name``; missing parts are empty strings, so the format is always three fields."""
    return f"{kind_of(obj) or '?'}/{namespace_of(obj)}/{name_of(obj)}"


def annotations(meta: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_dict(as_dict(meta).get("annotations"))


def labels(meta: Mapping[str, Any]) -> Mapping[str, Any]:
    return as_dict(as_dict(meta).get("labels"))


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def join(path: str, key: str | int) -> str:
    """Append a key or index to a path: ``a.b``, ``a[0]``, ``a["x/y"]`` for keys that are not identifiers."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENTIFIER.match(key):
        return f"{path}.{key}" if path else key
    return f'{path}["{key}"]'


# --- pod templates ---------------------------------------------------------------------------------------

#: kind -> path (as keys) from the object root to the pod template (``metadata`` + ``spec``).
_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "PodTemplate": ("template",),
}
#: Kinds whose pods run to completion: no liveness/readiness probes expected.
_RUN_TO_COMPLETION = frozenset({"Job", "CronJob"})
WORKLOAD_KINDS = frozenset(_TEMPLATE_PATHS) | {"Pod"}


@dataclass(frozen=True)
class PodTemplate:
    """One pod template found in an object.

    Attributes:
        obj: The object holding the template.
        metadata: The pod's metadata (the object's own metadata for a Pod).
        spec: The pod spec.
        spec_path: Path of ``spec`` inside the object, e.g. ``spec.template.spec``.
        long_running: False for Jobs, CronJobs and Pods whose restartPolicy is not Always.
    """

    obj: Mapping[str, Any]
    metadata: Mapping[str, Any]
    spec: Mapping[str, Any]
    spec_path: str
    long_running: bool


def pod_template(obj: Mapping[str, Any]) -> PodTemplate | None:
    """The pod template of a workload object, or None for any other kind."""
    kind = kind_of(obj)
    if kind == "Pod":
        spec = as_dict(obj.get("spec"))
        long_running = spec.get("restartPolicy", "Always") == "Always"
        return PodTemplate(obj, metadata(obj), spec, "spec", long_running)
    keys = _TEMPLATE_PATHS.get(kind)
    if keys is None:
        return None
    node: Mapping[str, Any] = obj
    for key in keys:
        node = as_dict(node.get(key))
    path = ".".join(keys)
    return PodTemplate(
        obj,
        as_dict(node.get("metadata")),
        as_dict(node.get("spec")),
        f"{path}.spec",
        kind not in _RUN_TO_COMPLETION,
    )


def pod_templates(context: Context) -> Iterator[PodTemplate]:
    for obj in context.objects:
        template = pod_template(obj)
        if template is not None:
            yield template


@dataclass(frozen=True)
class ContainerRef:
    """A container inside a pod template, with where it sits."""

    container: Mapping[str, Any]
    path: str
    #: ``containers``, ``initContainers`` or ``ephemeralContainers``.
    field: str

    @property
    def name(self) -> str:
        name = self.container.get("name")
        return name if isinstance(name, str) else "?"

    @property
    def security_context(self) -> Mapping[str, Any]:
        return as_dict(self.container.get("securityContext"))


def containers(
    template: PodTemplate, fields: tuple[str, ...] = ("initContainers", "containers", "ephemeralContainers")
) -> Iterator[ContainerRef]:
    """Containers of a pod template, init, regular and ephemeral by default (as PSA's visitor does)."""
    for field in fields:
        base = join(template.spec_path, field)
        for index, container in enumerate(as_list(template.spec.get(field))):
            if isinstance(container, Mapping):
                yield ContainerRef(container, join(base, index), field)


def pod_rule(rule_id: str, summary: str) -> Callable[[Callable[..., Iterable[tuple[str, str]]]], Rule]:
    """Turn ``f(template, context) -> Iterable[(path, message)]`` into a Rule over every pod template."""

    def wrap(function: Callable[..., Iterable[tuple[str, str]]]) -> Rule:
        def check(context: Context) -> Iterator[Hit]:
            for template in pod_templates(context):
                for path, message in function(template, context):
                    yield Hit(template.obj, path, message)

        check.__name__ = function.__name__
        check.__doc__ = function.__doc__
        return Rule(rule_id, summary, check)

    return wrap
