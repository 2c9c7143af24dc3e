"""Shared pieces of the components: namespaces with Pod Security labels and default-deny policies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from platform_components.kubernetes import pods
from platform_components.kubernetes.naming import PART_OF

TOKEN_PREFIX = "mlops:platform"


def child(
    parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource | None] | None = None
) -> pulumi.ResourceOptions:
    """Options of a child: parented (URN and provider come from the component), optional ordering.

    ``None`` entries are dropped: a Helm release the platform does not install (``mlops:upstream``) is
    ``None``, and what would have waited for it depends on nothing missing.
    """
    return pulumi.ResourceOptions(
        parent=parent, depends_on=[item for item in depends_on or () if item is not None]
    )


def namespace(
    component: pulumi.ComponentResource,
    role: str,
    name: str,
    opts: pulumi.ResourceOptions,
    *,
    enforce: str = "restricted",
) -> k8s.core.v1.Namespace:
    """A namespace labelled for Pod Security Admission, with default-deny and DNS-allow NetworkPolicies.

    Args:
        opts: options of the namespace and its policies: they must carry the cluster's provider (a parent
            without one would send them to the ambient kubeconfig context).
        enforce: PSS level enforced; warn and audit are always ``restricted``.
    """
    created = k8s.core.v1.Namespace(
        f"{component._name}-{role}-namespace",  # noqa: SLF001 - Pulumi's component name
        metadata={
            "name": name,
            "labels": {
                "pod-security.kubernetes.io/enforce": enforce,
                "pod-security.kubernetes.io/enforce-version": "latest",
                "pod-security.kubernetes.io/warn": "restricted",
                "pod-security.kubernetes.io/audit": "restricted",
                "app.kubernetes.io/part-of": PART_OF,
            },
        },
        opts=opts,
    )
    after = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[created]))
    network_policy(component, f"{role}-default-deny", pods.default_deny(name), after)
    network_policy(component, f"{role}-allow-dns", pods.allow_dns(name), after)
    # Upstream charts' pods without resources get these instead of running unbounded.
    k8s.core.v1.LimitRange(
        f"{component._name}-{role}-limits",  # noqa: SLF001
        metadata={"name": "default-limits", "namespace": name},
        spec={
            "limits": [
                {
                    "type": "Container",
                    "default": {"cpu": "500m", "memory": "512Mi"},
                    "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                }
            ]
        },
        opts=after,
    )
    return created


def network_policy(
    component: pulumi.ComponentResource, role: str, body: dict[str, Any], opts: pulumi.ResourceOptions
) -> k8s.networking.v1.NetworkPolicy:
    return k8s.networking.v1.NetworkPolicy(
        f"{component._name}-{role}",  # noqa: SLF001
        metadata=body["metadata"],
        spec=body["spec"],
        opts=opts,
    )


def service_account(
    component: pulumi.ComponentResource,
    role: str,
    name: str,
    namespace_name: str,
    opts: pulumi.ResourceOptions,
) -> k8s.core.v1.ServiceAccount:
    """A dedicated ServiceAccount whose token is not mounted unless a pod asks for it."""
    return k8s.core.v1.ServiceAccount(
        f"{component._name}-{role}-sa",  # noqa: SLF001
        metadata={"name": name, "namespace": namespace_name},
        automount_service_account_token=False,
        opts=opts,
    )


def secret(
    component: pulumi.ComponentResource,
    role: str,
    name: str,
    namespace_name: str,
    values: dict[str, str],
    opts: pulumi.ResourceOptions,
) -> k8s.core.v1.Secret:
    """A Secret whose whole ``stringData`` is a Pulumi secret (encrypted in state, redacted in the render)."""
    return k8s.core.v1.Secret(
        f"{component._name}-{role}",  # noqa: SLF001
        metadata={
            "name": name,
            "namespace": namespace_name,
            "labels": {"app.kubernetes.io/part-of": PART_OF},
        },
        type="Opaque",
        string_data=pulumi.Output.secret(values),
        opts=opts,
    )
