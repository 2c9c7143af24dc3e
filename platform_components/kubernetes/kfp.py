"""Kubeflow Pipelines standalone at the pinned manifests ref, configured for the platform's object store."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import yaml

from platform_components import versions
from platform_components.kubernetes.base import TOKEN_PREFIX, child, secret
from platform_components.pipelines.cluster import MLFLOW_CREDENTIALS_SECRET
from platform_components.settings import KfpSettings


@dataclass(frozen=True)
class KubeflowPipelinesArgs:
    """Arguments of ``KubeflowPipelines``.

    Attributes:
        settings: version (floor 2.17.0) and namespace (``kubeflow``, fixed upstream).
        store_endpoint: S3 endpoint (host:port, no scheme) of the platform's object store.
        bucket: bucket for pipeline roots.
        store_access_key_id / store_secret_access_key: credentials (Pulumi secrets in a Secret).
        tracking_uri: MLflow tracking URI the pipelines log to.
        mlflow_username / mlflow_password: MLflow credentials for pipeline steps (basic-auth fails closed),
            rendered into the Secret ``pipelines.MLFLOW_CREDENTIALS_SECRET`` that steps attach with
            ``with_mlflow_credentials``.
    """

    settings: KfpSettings
    store_endpoint: str
    bucket: str
    store_access_key_id: str
    store_secret_access_key: str
    tracking_uri: pulumi.Input[str]
    mlflow_username: str = ""
    mlflow_password: pulumi.Input[str] = ""


class KubeflowPipelines(pulumi.ComponentResource):
    """KFP standalone: ``cluster-scoped-resources`` first, then ``env/platform-agnostic``, both remote
    kustomize targets at the pinned ref (``kustomize.v2.Directory``: the provider runs kustomize, so under the
    offline render these have no children; ``releases.yaml`` lists their refs).

    Then the launcher config (``kfp-launcher`` ConfigMap, KFP 2.x object-store configuration) points pipeline
    roots at the platform's bucket with credentials from a Secret, and ``mlflow-tracking`` tells components
    where MLflow is.
    """

    api_url: pulumi.Output[str]
    ui_url: pulumi.Output[str]

    def __init__(
        self, name: str, args: KubeflowPipelinesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{TOKEN_PREFIX}:KubeflowPipelines", name, None, opts)
        settings = args.settings
        namespace = settings.namespace
        scoped = versions.get("kfp-cluster-scoped-resources")
        overlay = versions.get("kfp-platform-agnostic")
        cluster_scoped = k8s.kustomize.v2.Directory(
            f"{name}-cluster-scoped",
            directory=_remote(scoped, settings.version),
            opts=child(self),
        )
        environment = k8s.kustomize.v2.Directory(
            f"{name}-platform-agnostic",
            directory=_remote(overlay, settings.version),
            opts=child(self, [cluster_scoped]),
        )
        after = child(self, [environment])
        secret(
            self,
            "store-secret",
            "mlops-artifact-store",
            namespace,
            {
                "accesskey": args.store_access_key_id,
                "secretkey": args.store_secret_access_key,
            },
            after,
        )
        if args.mlflow_username:
            secret(
                self,
                "mlflow-credentials",
                MLFLOW_CREDENTIALS_SECRET,
                namespace,
                {
                    "MLFLOW_TRACKING_USERNAME": args.mlflow_username,
                    "MLFLOW_TRACKING_PASSWORD": args.mlflow_password,
                },
                after,
            )
        providers = {
            "s3": {
                "default": {
                    "endpoint": args.store_endpoint,
                    "disableSSL": args.store_endpoint.startswith("http://")
                    or "svc.cluster.local" in args.store_endpoint,
                    "region": "us-east-1",
                    "credentials": {
                        "fromEnv": False,
                        "secretRef": {
                            "secretName": "mlops-artifact-store",
                            "accessKeyKey": "accesskey",
                            "secretKeyKey": "secretkey",
                        },
                    },
                }
            }
        }
        k8s.core.v1.ConfigMap(
            f"{name}-launcher-config",
            metadata={"name": "kfp-launcher", "namespace": namespace},
            data={
                "defaultPipelineRoot": f"s3://{args.bucket}/pipelines",
                "providers": yaml.safe_dump(providers, sort_keys=True),
            },
            opts=after,
        )
        k8s.core.v1.ConfigMap(
            f"{name}-mlflow-tracking",
            metadata={"name": "mlflow-tracking", "namespace": namespace},
            data={"MLFLOW_TRACKING_URI": args.tracking_uri},
            opts=after,
        )
        self.api_url = pulumi.Output.from_input(f"http://ml-pipeline.{namespace}.svc.cluster.local:8888")
        self.ui_url = pulumi.Output.from_input(f"http://ml-pipeline-ui.{namespace}.svc.cluster.local:80")
        self.register_outputs({"api_url": self.api_url, "ui_url": self.ui_url})


def _remote(upstream: versions.Upstream, version: str) -> str:
    """A kustomize remote target for ``version`` (settings may move the ref; the floor is checked there)."""
    return f"https://{upstream.repository}/{upstream.path}?ref={version}"
