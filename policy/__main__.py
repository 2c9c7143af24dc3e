"""Pulumi policy pack wrapping platform_components.policies (the rules live there, pure and tested).

Each Kubernetes resource is turned into the object it would apply and checked with ``check_objects``; rules
whose verdict depends on other objects (default-deny NetworkPolicy per namespace, unique names, a pod
inheriting its ServiceAccount's token setting) run once over the whole stack instead. Secret redaction is a
property of the offline render, not of live resources, so that rule is left to ``mlops render``.

Not runnable on the project's machines (no Pulumi CLI, and pulumi-policy cannot share the project's
environment); ``tests/policies/test_policy_pack.py`` runs this file against a stand-in for pulumi_policy.
During a preview, properties Pulumi does not know yet make pulumi-policy report the resource as not
checkable; ``mlops render`` checks the same rules offline with every value known.
"""

from __future__ import annotations

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
    obj = object_from_pulumi(args.resource_type, args.props, args.name)
    if obj is None:
        return
    violations = check_objects([obj], allow_load_balancer=_allow_load_balancer(args))
    skipped = CROSS_OBJECT_RULES | RENDER_ONLY_RULES
    _report([v for v in violations if v.rule not in skipped], report_violation)


def validate_stack(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    objects, urns = [], {}
    for resource in args.resources:
        obj = object_from_pulumi(resource.resource_type, resource.props, resource.name)
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
