"""What the loop's deployer may do in a serving namespace: one Role and its RoleBinding per namespace.

The deployer (``platform_components.loop.seldon``) runs in the monitor's pod as its ServiceAccount. In each
namespace that serves models it reads the models' owner ConfigMaps (``get``, by name: nothing else in the
namespace) and creates, reads and patches Seldon ``Model`` objects (``get, list, watch, create, patch,
update`` on ``models.mlops.seldon.io``). It may not ``delete`` a Model: the garbage collector deletes one when
its owner is gone. It may ``update`` the owners' ``finalizers`` subresource, which is what the
OwnerReferencesPermissionEnforcement admission plugin asks of whoever sets ``blockOwnerDeletion`` on a
reference to them (``seldon_models.seldon_model`` says why the Models' references block); a ConfigMap has no
such endpoint, so the right serves only that check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from platform_components.kubernetes.base import TOKEN_PREFIX, child
from platform_components.kubernetes.naming import labels
from platform_components.seldon_models import MODEL_PLURAL, SELDON_GROUP, owner_name

ROLE_NAME = "mlops-model-deployer"
#: The verbs on Seldon Models; ``delete`` is deliberately absent.
MODEL_VERBS = ("get", "list", "watch", "create", "patch", "update")


def deployer_role(namespace: str, models: Sequence[str]) -> dict[str, Any]:
    """The Role: Models of the namespace, and ``get`` on exactly the owner ConfigMaps of ``models``."""
    rules: list[dict[str, Any]] = [
        {"apiGroups": [SELDON_GROUP], "resources": [MODEL_PLURAL], "verbs": list(MODEL_VERBS)}
    ]
    if models:
        # resourceNames cannot be empty (an empty list would mean every ConfigMap).
        rules.append(
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": sorted(owner_name(model) for model in models),
                "verbs": ["get"],
            }
        )
        rules.append(
            {
                "apiGroups": [""],
                "resources": ["configmaps/finalizers"],
                "resourceNames": sorted(owner_name(model) for model in models),
                "verbs": ["update"],
            }
        )
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {
            "name": ROLE_NAME,
            "namespace": namespace,
            "labels": labels("model-deployer", namespace),
        },
        "rules": rules,
    }


def deployer_role_binding(
    namespace: str, service_account: str, service_account_namespace: str
) -> dict[str, Any]:
    """The RoleBinding of the Role to the deployer's ServiceAccount (in another namespace)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {
            "name": ROLE_NAME,
            "namespace": namespace,
            "labels": labels("model-deployer", namespace),
        },
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE_NAME},
        "subjects": [
            {"kind": "ServiceAccount", "name": service_account, "namespace": service_account_namespace}
        ],
    }


@dataclass(frozen=True)
class ModelDeployerAccessArgs:
    """Arguments of ``ModelDeployerAccess``.

    Attributes:
        namespace: a namespace that serves models (owners and Models live there).
        models: the names of the models declared in it (their owner ConfigMaps are readable).
        service_account / service_account_namespace: who the deployer runs as (the monitor's account).
    """

    namespace: str
    models: tuple[str, ...]
    service_account: str
    service_account_namespace: str


class ModelDeployerAccess(pulumi.ComponentResource):
    """The deployer's Role and RoleBinding in one serving namespace."""

    def __init__(
        self, name: str, args: ModelDeployerAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{TOKEN_PREFIX}:ModelDeployerAccess", name, None, opts)
        role = deployer_role(args.namespace, args.models)
        created = k8s.rbac.v1.Role(
            f"{name}-role", metadata=role["metadata"], rules=role["rules"], opts=child(self)
        )
        binding = deployer_role_binding(args.namespace, args.service_account, args.service_account_namespace)
        k8s.rbac.v1.RoleBinding(
            f"{name}-binding",
            metadata=binding["metadata"],
            role_ref=binding["roleRef"],
            subjects=binding["subjects"],
            opts=child(self, [created]),
        )
        self.register_outputs({})
