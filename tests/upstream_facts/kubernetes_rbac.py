"""Upstream facts about Kubernetes' built-in user ClusterRoles (``view``, ``edit``) at the pinned release.

Read in kubernetes/kubernetes plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go at v1.36.3 (the
release tools/ builds and versions.KUBERNETES_VERSION names). platform_components/kubernetes/project.py binds
``edit`` in a project's namespace and, instead of ``view``, narrower Roles in the shared namespaces.
"""

from __future__ import annotations

from upstream_facts import Fact

SOURCE = "kubernetes/kubernetes plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go@v1.36.3"

FACTS = [
    Fact(
        key="kubernetes.rbac.view_core_resources",
        statement="The built-in ClusterRole view (through system:aggregate-to-view, viewRules) reads these "
        "core-group resources of a namespace: every ConfigMap and every pod's log among them, never Secrets",
        source=SOURCE,
        value=[
            "pods",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "serviceaccounts",
            "services",
            "services/status",
            "endpoints",
            "persistentvolumeclaims",
            "persistentvolumeclaims/status",
            "configmaps",
            "limitranges",
            "resourcequotas",
            "bindings",
            "pods/status",
            "resourcequotas/status",
            "namespaces/status",
            "replicationcontrollers/status",
            "pods/log",
            "namespaces",
            "events",
        ],
    ),
    Fact(
        key="kubernetes.rbac.view_aggregation_label",
        statement="view has no rule for custom resources of its own: it is an aggregated ClusterRole, the "
        "union of every ClusterRole carrying this label, so a CRD's kinds (Seldon's Model) appear in it only "
        "when someone installs such a ClusterRole for them",
        source=SOURCE,
        value="rbac.authorization.k8s.io/aggregate-to-view",
    ),
    Fact(
        key="kubernetes.rbac.edit_omits",
        statement="edit (system:aggregate-to-edit, editRules, plus view) writes a namespace's workloads, "
        "Secrets and ConfigMaps but not its Roles or RoleBindings (admin's additions) nor its ResourceQuotas "
        "and LimitRanges (read only): a team bound to edit cannot widen its own rights or its quota",
        source=SOURCE,
        value={"roles", "rolebindings", "resourcequotas", "limitranges"},
    ),
]
