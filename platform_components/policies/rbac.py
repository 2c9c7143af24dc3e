"""RBAC least privilege: no wildcards, no escalation verbs, no cluster-admin, no secret reads or pod exec.

Sources: CIS Kubernetes Benchmark 1.9 sections 5.1.1-5.1.8, checkov CKV_K8S_49, 155-158, CKV2_K8S_1-5
(``shared/research/security.md`` K8S-05).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from platform_components.policies._core import Context, Rule, as_dict, as_list, join, kind_of, object_rule

Finding = tuple[str, str]

_ROLE_KINDS = frozenset({"Role", "ClusterRole"})
_BINDING_KINDS = frozenset({"RoleBinding", "ClusterRoleBinding"})
ESCALATION_VERBS = frozenset({"escalate", "bind", "impersonate"})
_READ_VERBS = frozenset({"get", "list", "watch"})
_EXEC_SUBRESOURCES = frozenset({"pods/exec", "pods/attach", "pods/portforward"})


def _rules(obj: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if kind_of(obj) not in _ROLE_KINDS:
        return
    for index, rule in enumerate(as_list(obj.get("rules"))):
        yield join("rules", index), as_dict(rule)


@object_rule("RBAC-WILDCARD", "Roles name their verbs and resources; no '*'")
def wildcard(obj: Mapping[str, Any], context: Context) -> Iterator[Finding]:
    for path, rule in _rules(obj):
        for field in ("verbs", "resources", "nonResourceURLs"):
            if "*" in as_list(rule.get(field)):
                yield join(path, field), f"rule grants '*' {field}; list the {field} the workload needs"


@object_rule("RBAC-ESCALATION-VERBS", "no escalate, bind or impersonate verbs")
def escalation_verbs(obj: Mapping[str, Any], context: Context) -> Iterator[Finding]:
    for path, rule in _rules(obj):
        verbs = sorted(ESCALATION_VERBS & set(as_list(rule.get("verbs"))))
        if verbs:
            yield (
                join(path, "verbs"),
                f"rule grants {', '.join(verbs)}, which let the holder gain privileges it was not "
                "given; remove them",
            )


@object_rule("RBAC-SECRETS-READ", "no get/list/watch on secrets")
def secrets_read(obj: Mapping[str, Any], context: Context) -> Iterator[Finding]:
    for path, rule in _rules(obj):
        if "secrets" in as_list(rule.get("resources")) and _READ_VERBS & set(as_list(rule.get("verbs"))):
            yield (
                join(path, "resources"),
                "rule lets the holder read Secrets; mount the one Secret the workload needs as a "
                "volume instead",
            )


@object_rule("RBAC-POD-EXEC", "no create on pods/exec, pods/attach or pods/portforward")
def pod_exec(obj: Mapping[str, Any], context: Context) -> Iterator[Finding]:
    for path, rule in _rules(obj):
        subresources = sorted(_EXEC_SUBRESOURCES & set(as_list(rule.get("resources"))))
        if subresources and {"create", "get"} & set(as_list(rule.get("verbs"))):
            yield (
                join(path, "resources"),
                f"rule grants {', '.join(subresources)}, a shell into other pods; remove it",
            )


@object_rule("RBAC-CLUSTER-ADMIN", "nothing is bound to cluster-admin")
def cluster_admin(obj: Mapping[str, Any], context: Context) -> Iterator[Finding]:
    if kind_of(obj) not in _BINDING_KINDS:
        return
    role_ref = as_dict(obj.get("roleRef"))
    if role_ref.get("kind") == "ClusterRole" and role_ref.get("name") == "cluster-admin":
        yield (
            "roleRef.name",
            "binding grants cluster-admin; bind a Role with the verbs and resources the subject needs",
        )


RULES: tuple[Rule, ...] = (wildcard, escalation_verbs, secrets_read, pod_exec, cluster_admin)
