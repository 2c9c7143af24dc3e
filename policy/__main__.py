"""Pulumi policy pack wrapping platform_components.policies (the rules live there, pure and tested).

Each Kubernetes resource is turned into the object it would apply and checked with ``check_objects``; rules
whose verdict depends on other objects (default-deny NetworkPolicy per namespace, unique names, a pod
inheriting its ServiceAccount's token setting) run once over the whole stack instead. Secret redaction is a
property of the offline render, not of live resources, so that rule is left to ``mlops render``.

Objects that upstream's content expands into (the children of a Helm v4 Chart, a kustomize Directory or a
yaml ConfigFile/ConfigGroup: Kubeflow Pipelines' manifests) are skipped like the groups themselves: their
content is upstream's at the versions pinned in ``versions.py``; ``mlops render`` does not see them either.

pulumi-policy needs its own environment (``requirements.txt``; it cannot share the project's). The real
engine runs this pack in ``tests/engine/test_policy_pack.py``; ``tests/policies/test_policy_pack.py`` runs it
against a stand-in for pulumi_policy. During a preview, properties Pulumi does not know yet make
pulumi-policy report the resource as not checkable; ``mlops render`` checks the same rules offline with every
value known.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from platform_components.policies import CROSS_OBJECT_RULES, RENDER_ONLY_RULES, check_objects, object_ref
from platform_components.policies.pulumi_objects import object_from_pulumi

# The one gateway may be a LoadBalancer: --policy-pack-config {"<policy>": {"allowLoadBalancer": true}}.
CONFIG_SCHEMA = PolicyConfigSchema(
    properties={"allowLoadBalancer": {"type": "boolean", "default": False}},
)


# Resource types whose children are upstream's manifests, expanded by the provider (pulumi-kubernetes
# provider/pkg/provider/provider_construct.go@v4.25.0 for the v2 and v4 kinds) or by the SDK (v1 kinds).
UPSTREAM_GROUPS = frozenset(
    {
        "kubernetes:helm.sh/v3:Chart",
        "kubernetes:helm.sh/v4:Chart",
        "kubernetes:kustomize:Directory",
        "kubernetes:kustomize/v2:Directory",
        "kubernetes:yaml:ConfigFile",
        "kubernetes:yaml:ConfigGroup",
        "kubernetes:yaml/v2:ConfigFile",
        "kubernetes:yaml/v2:ConfigGroup",
    }
)


def expanded_from_upstream(urn: str | None) -> bool:
    """Whether the resource ``urn`` names descends from an upstream group (its type chain holds one).

    A URN is ``urn:pulumi:<stack>::<project>::<parent types joined by $>$<type>::<name>``.
    """
    parts = (urn or "").split("::")
    if len(parts) < 4:
        return False
    *ancestors, _own_type = parts[2].split("$")
    return any(ancestor in UPSTREAM_GROUPS for ancestor in ancestors)


def materialized(value: Any) -> Any:
    """pulumi-policy's property proxies as plain dicts and lists, recursively.

    pulumi-policy hands a policy its properties wrapped in read-only proxies: a ``Mapping`` and a
    ``Sequence`` that is not a ``list`` (pulumi/pulumi-policy sdk/python/lib/pulumi_policy/proxy.py@v1.21.0),
    and the rules read lists as ``list``: without this every container list read as empty. Reading an
    unknown value raises pulumi-policy's UnknownValueError, which it reports as "can't run policy ... during
    preview" (advisory); ``pulumi up`` runs the policy again with every value known.
    """
    if isinstance(value, Mapping):
        return {key: materialized(value[key]) for key in value}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [materialized(value[index]) for index in range(len(value))]
    return value


# Properties any object type turns into an object: object_from_pulumi(type, _TYPE_PROBE, name) is None exactly
# for the types it never makes an object of (groups, patches, lists, providers, components, other clouds).
_TYPE_PROBE: dict[str, Any] = {"apiVersion": "probe.invalid/v1", "kind": "Probe", "metadata": {}}


def kubernetes_object(resource_type: str, props: Any, name: str, urn: str) -> dict[str, Any] | None:
    """The object a resource applies, or None for anything not ours to check.

    The type is decided before any property is read: a Helm release's or a group's outputs are unknown
    during a preview, and reading them would make pulumi-policy give up on the whole stack policy.
    """
    if expanded_from_upstream(urn) or object_from_pulumi(resource_type, _TYPE_PROBE, name) is None:
        return None
    return object_from_pulumi(resource_type, materialized(props), name)


def _allow_load_balancer(args) -> bool:
    return bool((args.get_config() or {}).get("allowLoadBalancer", False))


def _report(violations, report_violation: ReportViolation, urns: dict[str, str] | None = None) -> None:
    for violation in violations:
        message = f"[{violation.rule}] {violation.path}: {violation.message}"
        urn = urns.get(violation.object_ref) if urns else None
        if urn:
            report_violation(message, urn)
        else:
            report_violation(message)


def validate_resource(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    obj = kubernetes_object(args.resource_type, args.props, args.name, args.urn)
    if obj is None:
        return
    violations = check_objects([obj], allow_load_balancer=_allow_load_balancer(args))
    skipped = CROSS_OBJECT_RULES | RENDER_ONLY_RULES
    _report([v for v in violations if v.rule not in skipped], report_violation)


def validate_stack(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    objects, urns = [], {}
    for resource in args.resources:
        obj = kubernetes_object(resource.resource_type, resource.props, resource.name, resource.urn)
        if obj is None:
            continue
        objects.append(obj)
        urns[object_ref(obj)] = resource.urn
    violations = check_objects(objects, allow_load_balancer=_allow_load_balancer(args))
    _report([v for v in violations if v.rule in CROSS_OBJECT_RULES], report_violation, urns)


PolicyPack(
    name="mlops-platform",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        ResourceValidationPolicy(
            name="kubernetes-object-policies",
            description="Pod Security restricted, resources, probes, images, network, secrets, RBAC, names",
            validate=validate_resource,
            config_schema=CONFIG_SCHEMA,
        ),
        StackValidationPolicy(
            name="kubernetes-stack-policies",
            description="Default-deny NetworkPolicy per namespace, unique names, ServiceAccount tokens",
            validate=validate_stack,
            config_schema=CONFIG_SCHEMA,
        ),
    ],
)
