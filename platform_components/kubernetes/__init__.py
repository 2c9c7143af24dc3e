"""Pulumi ComponentResources for the Kubernetes target (imports Pulumi: load only from Pulumi programs)."""

from platform_components.kubernetes.cluster import Cluster, ClusterArgs
from platform_components.kubernetes.deployer_access import ModelDeployerAccess, ModelDeployerAccessArgs
from platform_components.kubernetes.kfp import KubeflowPipelines, KubeflowPipelinesArgs
from platform_components.kubernetes.mlflow import MlflowServer, MlflowServerArgs
from platform_components.kubernetes.model import ModelDeployments, ModelDeploymentsArgs
from platform_components.kubernetes.monitoring import Monitoring, MonitoringArgs
from platform_components.kubernetes.platform import MlopsPlatform, MlopsPlatformArgs
from platform_components.kubernetes.project import Project, ProjectArgs
from platform_components.kubernetes.seldon import SeldonServing, SeldonServingArgs

__all__ = [
    "Cluster",
    "ClusterArgs",
    "KubeflowPipelines",
    "KubeflowPipelinesArgs",
    "MlflowServer",
    "MlflowServerArgs",
    "ModelDeployments",
    "ModelDeploymentsArgs",
    "Monitoring",
    "MonitoringArgs",
    "MlopsPlatform",
    "MlopsPlatformArgs",
    "ModelDeployerAccess",
    "ModelDeployerAccessArgs",
    "Project",
    "ProjectArgs",
    "SeldonServing",
    "SeldonServingArgs",
]


def program() -> None:
    """The Pulumi program: stack config -> settings -> MlopsPlatform -> exports (``infra/__main__.py``)."""
    import pulumi

    from platform_components.settings import read_pulumi_config

    settings = read_pulumi_config()
    platform = MlopsPlatform("mlops", MlopsPlatformArgs(settings))
    pulumi.export("tracking_uri", platform.tracking_uri)
    pulumi.export("pipelines_url", platform.pipelines_url)
    pulumi.export("inference_url", platform.inference_url)
    pulumi.export("grafana_url", platform.grafana_url)
    pulumi.export("prometheus_url", platform.prometheus_url)
    pulumi.export("models", platform.models)
