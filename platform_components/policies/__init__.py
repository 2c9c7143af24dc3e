"""Security and convention policies for rendered Kubernetes objects, as pure functions.

``check_objects(objects)`` runs every rule over plain object dicts (as they would be applied) and returns the
violations. The offline render, the tests and the pulumi-policy pack in ``policy/`` all call it.

An object may waive rules with two annotations (on the object, or on its pod template)::

    mlops.platform/policy-exception: SERVICE-ACCOUNT-TOKEN,READ-ONLY-ROOT-FILESYSTEM
    mlops.platform/policy-exception-reason: the operator watches Models through the API

An exception without a non-empty reason, or naming an unknown rule, is itself a violation and waives nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from platform_components.errors import ValidationFailed
from platform_components.policies import naming, network, pod_security, rbac, secrets, seldon, workloads
from platform_components.policies._core import (
    EXCEPTION_ANNOTATION,
    EXCEPTION_REASON_ANNOTATION,
    REDACTED,
    Context,
    Hit,
    Rule,
    Violation,
    annotations,
    join,
    metadata,
    object_ref,
    pod_template,
)

__all__ = [
    "CROSS_OBJECT_RULES",
    "EXCEPTION_ANNOTATION",
    "EXCEPTION_REASON_ANNOTATION",
    "REDACTED",
    "RENDER_ONLY_RULES",
    "RULES",
    "PolicyException",
    "Rule",
    "Violation",
    "check_objects",
    "object_ref",
    "policy_exceptions",
    "rule_ids",
]

logger = logging.getLogger(__name__)

#: Every rule, in reporting order. Ids are stable: tests, exceptions and reviewers refer to them.
RULES: tuple[Rule, ...] = (
    pod_security.RULES
    + workloads.RULES
    + seldon.RULES
    + network.RULES
    + secrets.RULES
    + rbac.RULES
    + naming.RULES
)
#: Rules about the exception annotations themselves; they cannot be waived.
EXCEPTION_MISSING_REASON = "POLICY-EXCEPTION-REASON"
EXCEPTION_UNKNOWN_RULE = "POLICY-EXCEPTION-UNKNOWN-RULE"


#: Ids of rules whose verdict on one object depends on other objects (checked once per stack by the pack).
CROSS_OBJECT_RULES = frozenset(rule.id for rule in RULES if rule.cross_object)
#: Rules about the render itself (a rendered Secret must be redacted); live resources hold real values.
RENDER_ONLY_RULES = frozenset({"SECRET-PLAINTEXT-VALUE"})


def rule_ids() -> list[str]:
    """Ids of every rule ``check_objects`` applies, including the two exception rules."""
    return [rule.id for rule in RULES] + [EXCEPTION_MISSING_REASON, EXCEPTION_UNKNOWN_RULE]


@dataclass(frozen=True)
class PolicyException:
    """A reasoned exception declared on an object (for a reviewed list in the render)."""

    object_ref: str
    rules: tuple[str, ...]
    reason: str


def _exception_sources(obj: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(metadata path, metadata) of the object and of its pod template, where exceptions may be declared."""
    sources = [("metadata", metadata(obj))]
    template = pod_template(obj)
    if template is not None and template.spec_path != "spec":
        sources.append((template.spec_path[: -len(".spec")] + ".metadata", template.metadata))
    return sources


def _exceptions(obj: Mapping[str, Any], known: set[str]) -> tuple[set[str], str, list[Violation]]:
    """The rule ids ``obj`` validly waives, the reason, and the violations of the exception annotations."""
    waived: set[str] = set()
    reasons: list[str] = []
    problems: list[Violation] = []
    ref = object_ref(obj)
    for meta_path, meta in _exception_sources(obj):
        notes = annotations(meta)
        if EXCEPTION_ANNOTATION not in notes:
            continue
        raw = notes.get(EXCEPTION_ANNOTATION)
        listed = [item.strip() for item in raw.split(",")] if isinstance(raw, str) else []
        listed = [item for item in listed if item]
        reason = notes.get(EXCEPTION_REASON_ANNOTATION)
        annotation_path = join(join(meta_path, "annotations"), EXCEPTION_ANNOTATION)
        if not isinstance(reason, str) or not reason.strip():
            problems.append(
                Violation(
                    EXCEPTION_MISSING_REASON,
                    ref,
                    join(join(meta_path, "annotations"), EXCEPTION_REASON_ANNOTATION),
                    f"exception for {', '.join(listed) or repr(raw)} has no reason; add the annotation "
                    f"{EXCEPTION_REASON_ANNOTATION} saying why the rule cannot hold (nothing is "
                    "waived without it)",
                )
            )
            continue
        if not listed:
            problems.append(
                Violation(
                    EXCEPTION_UNKNOWN_RULE,
                    ref,
                    annotation_path,
                    f"exception names no rule ({raw!r}); list rule ids separated by commas, e.g. "
                    "SERVICE-ACCOUNT-TOKEN",
                )
            )
        for rule_id in listed:
            if rule_id in known:
                waived.add(rule_id)
            else:
                problems.append(
                    Violation(
                        EXCEPTION_UNKNOWN_RULE,
                        ref,
                        annotation_path,
                        f"exception names {rule_id!r}, which is not a rule that can be waived; use an id "
                        "from platform_components.policies.rule_ids() (exception rules cannot be waived)",
                    )
                )
        reasons.append(reason.strip())
    return waived, "; ".join(reasons), problems


def policy_exceptions(objects: Iterable[Mapping[str, Any]]) -> list[PolicyException]:
    """Every valid, reasoned exception declared on ``objects``, for a reviewed list (invalid ones violate)."""
    known = {rule.id for rule in RULES if rule.exceptable}
    found = []
    for obj in objects:
        waived, reason, _ = _exceptions(obj, known)
        if waived:
            found.append(PolicyException(object_ref(obj), tuple(sorted(waived)), reason))
    return found


def check_objects(objects: list[dict[str, Any]], *, allow_load_balancer: bool = False) -> list[Violation]:
    """Check rendered Kubernetes objects against every policy rule.

    Args:
        objects: Plain object dicts as they would be applied (apiVersion, kind, metadata, spec...).
        allow_load_balancer: Accept Services of type LoadBalancer (the one gateway); NodePort stays forbidden.

    Returns:
        Violations sorted by object reference, rule id and path; empty when every rule holds.

    Raises:
        ValidationFailed: An element of ``objects`` is not a mapping.
    """
    for index, obj in enumerate(objects):
        if not isinstance(obj, Mapping):
            raise ValidationFailed(
                f"objects[{index}] is a {type(obj).__name__}, not a Kubernetes object mapping; pass "
                "plain dicts (apiVersion, kind, metadata, spec...)"
            )
    context = Context(objects=tuple(objects), allow_load_balancer=allow_load_balancer)
    known = {rule.id for rule in RULES if rule.exceptable}
    exceptions: dict[int, set[str]] = {}
    violations: list[Violation] = []
    for obj in context.objects:
        waived, reason, problems = _exceptions(obj, known)
        exceptions[id(obj)] = waived
        violations.extend(problems)
        if waived:
            logger.info("policy exception %s on %s: %s", ",".join(sorted(waived)), object_ref(obj), reason)
    for rule in RULES:
        hit: Hit
        for hit in rule.check(context):
            if rule.exceptable and rule.id in exceptions.get(id(hit.obj), ()):
                continue
            violations.append(Violation(rule.id, object_ref(hit.obj), hit.path, hit.message))
    violations.sort(key=lambda v: (v.object_ref, v.rule, v.path))
    return violations
