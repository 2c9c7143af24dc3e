"""The cluster the platform runs on: an existing one (default), a local kind cluster, or EKS."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from platform_components.errors import ConfigError
from platform_components.kubernetes.base import TOKEN_PREFIX
from platform_components.settings import ClusterMode, ClusterSettings


@dataclass(frozen=True)
class ClusterArgs:
    """Arguments of ``Cluster``.

    Attributes:
        settings: mode (existing | kind | eks), kubeconfig and context. Default: existing, current context.
    """

    settings: ClusterSettings


class Cluster(pulumi.ComponentResource):
    """A Kubernetes provider for the rest of the platform.

    - ``existing``: the kubeconfig/context from settings (or the provider's defaults).
    - ``kind``: a cluster made beforehand with ``kind create cluster --name <kind_name>``; this selects the
      context ``kind-<kind_name>`` (Pulumi has no kind provider; components never start processes).
    - ``eks``: an EKS cluster through pulumi-eks (``pip install 'mlops-platform[eks]'``).
    """

    provider: k8s.Provider
    context: pulumi.Output[str]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}:Cluster", name, None, opts)
        settings = args.settings
        # ConfigMaps and Secrets updated in place, as `kubectl apply` would: by default the provider replaces
        # them on any data change, and a fixed name (ours are) makes that a delete, then a create, with the
        # object absent in between. Pods that read one at start carry its checksum and restart instead.
        provider_args: dict[str, object] = {
            "enable_server_side_apply": True,
            "enable_config_map_mutable": True,
            "enable_secret_mutable": True,
        }
        if settings.mode is ClusterMode.EKS:
            provider_args["kubeconfig"] = self._create_eks(name, settings)
            context = "eks"
        else:
            context = settings.context or ""
            if settings.mode is ClusterMode.KIND:
                context = settings.context or f"kind-{settings.kind_name}"
            if settings.kubeconfig:
                provider_args["kubeconfig"] = settings.kubeconfig
            if context:
                provider_args["context"] = context
        self.provider = k8s.Provider(
            f"{name}-provider", **provider_args, opts=pulumi.ResourceOptions(parent=self)
        )
        self.context = pulumi.Output.from_input(context or "<current>")
        self.register_outputs({"context": self.context})

    def _create_eks(self, name: str, settings: ClusterSettings) -> pulumi.Output[str]:
        try:
            import pulumi_aws as aws  # optional extra (pulumi-eks depends on it)
            import pulumi_eks as eks
        except ImportError as error:
            raise ConfigError(
                "mlops:cluster.mode: 'eks' needs the eks extra (got pulumi_eks not installed); "
                "run `pip install 'mlops-platform[eks]'` or use mode 'existing'"
            ) from error
        provider_args, cluster_args = eks_arguments(settings)
        # An explicit aws provider: the ambient AWS_REGION / aws:region would otherwise choose the region.
        aws_provider = aws.Provider(f"{name}-aws", **provider_args, opts=pulumi.ResourceOptions(parent=self))
        cluster = eks.Cluster(
            f"{name}-eks",
            **cluster_args,
            opts=pulumi.ResourceOptions(parent=self, providers={"aws": aws_provider}),
        )
        return pulumi.Output.secret(cluster.kubeconfig_json)


def eks_arguments(settings: ClusterSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The explicit aws provider's arguments and the ``eks.Cluster`` arguments for ``mlops:cluster.eks``.

    Returns:
        (``aws.Provider`` keyword arguments: the region of ``mlops:cluster.eks.region``,
        ``eks.Cluster`` keyword arguments: version, node instance type and group size).
    """
    eks_settings = settings.eks
    provider_args: dict[str, Any] = {"region": eks_settings.region}
    cluster_args: dict[str, Any] = {
        "version": eks_settings.kubernetes_version,
        "instance_type": eks_settings.instance_type,
        "desired_capacity": eks_settings.desired_nodes,
        "min_size": 1,
        "max_size": max(eks_settings.desired_nodes, 1) * 2,
    }
    return provider_args, cluster_args
