"""MlopsPlatform: the whole platform from ``PlatformSettings``, with explicit ordering."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pydantic import SecretStr

from platform_components import images
from platform_components.kubernetes.base import TOKEN_PREFIX, namespace
from platform_components.kubernetes.cluster import Cluster, ClusterArgs
from platform_components.kubernetes.deployer_access import ModelDeployerAccess, ModelDeployerAccessArgs
from platform_components.kubernetes.kfp import KubeflowPipelines, KubeflowPipelinesArgs, kfp_credentials
from platform_components.kubernetes.mlflow import (
    MlflowCredentials,
    MlflowServer,
    MlflowServerArgs,
    artifacts_destination,
    bundled_monitor_store_url,
)
from platform_components.kubernetes.model import ModelDeployments, ModelDeploymentsArgs
from platform_components.kubernetes.monitoring import (
    MONITOR_PORT,
    MONITOR_SERVICE_ACCOUNT,
    Monitoring,
    MonitoringArgs,
)
from platform_components.kubernetes.naming import derive_credential
from platform_components.kubernetes.project import Project, ProjectArgs, create_reader_roles
from platform_components.kubernetes.project_space import ProjectSpaceSync, ProjectSpaceSyncArgs, sync_users
from platform_components.kubernetes.seldon import RCLONE_SECRET, SeldonServing, SeldonServingArgs
from platform_components.settings import ArtifactStoreMode, DatabaseMode, MonitorStoreMode, PlatformSettings


@dataclass(frozen=True)
class MlopsPlatformArgs:
    """Arguments of ``MlopsPlatform``.

    Attributes:
        settings: the validated platform description (``load_platform_settings``).
    """

    settings: PlatformSettings


def credentials(settings: PlatformSettings) -> MlflowCredentials:
    """Every credential the platform needs: configured secrets win, the rest derive from ``secret_seed``.

    The bundled store's keys are always derived (the platform creates that store); an external store's keys
    are always configured (``load_platform_settings`` refuses to go on without them).
    """
    secrets = settings.secrets
    seed = secrets.secret_seed.get_secret_value()

    def configured_or_derived(value: SecretStr | None, purpose: str) -> str:
        return value.get_secret_value() if value is not None else derive_credential(seed, purpose)

    if settings.mlflow.artifact_store.mode is ArtifactStoreMode.BUNDLED:
        access_key_id = derive_credential(seed, "store-access-key-id", length=20)
        secret_access_key = derive_credential(seed, "store-secret-access-key", length=40)
    else:
        assert secrets.artifact_store_access_key_id and secrets.artifact_store_secret_access_key
        access_key_id = secrets.artifact_store_access_key_id.get_secret_value()
        secret_access_key = secrets.artifact_store_secret_access_key.get_secret_value()
    return MlflowCredentials(
        admin_password=configured_or_derived(secrets.mlflow_admin_password, "mlflow-admin-password"),
        flask_secret_key=derive_credential(seed, "mlflow-flask-secret-key", length=43),
        database_password=derive_credential(seed, "postgres-password"),
        database_url=secrets.mlflow_database_url.get_secret_value() if secrets.mlflow_database_url else None,
        store_access_key_id=access_key_id,
        store_secret_access_key=secret_access_key,
        monitor_database_password=(
            derive_credential(seed, "monitor-database-password")
            if _monitor_on_bundled_database(settings)
            else None
        ),
    )


def _monitor_on_bundled_database(settings: PlatformSettings) -> bool:
    """The monitor's store is the bundled PostgreSQL's ``monitor`` database (not sqlite, not its own URL)."""
    return (
        settings.monitoring.monitor.store is MonitorStoreMode.POSTGRESQL
        and settings.secrets.monitor_database_url is None
        and settings.mlflow.database.mode is DatabaseMode.BUNDLED
    )


def monitor_store_url(settings: PlatformSettings, credentials: MlflowCredentials) -> str | None:
    """The URL of the monitor's store (its Secret's value), or None for the SQLite file on its PVC."""
    if settings.monitoring.monitor.store is MonitorStoreMode.SQLITE:
        return None
    if settings.secrets.monitor_database_url is not None:
        return settings.secrets.monitor_database_url.get_secret_value()
    assert credentials.monitor_database_password is not None  # _check_required_secrets: bundled here
    return bundled_monitor_store_url(settings.namespaces.mlflow, credentials.monitor_database_password)


class MlopsPlatform(pulumi.ComponentResource):
    """Cluster -> namespaces -> monitoring (Prometheus Operator CRDs) -> MLflow -> Kubeflow Pipelines ->
    Seldon (CRDs, operator, runtime, Servers) -> model deployments. Custom resources depend on the releases
    that install their CRDs."""

    tracking_uri: pulumi.Output[str]
    pipelines_url: pulumi.Output[str]
    inference_url: pulumi.Output[str]
    grafana_url: pulumi.Output[str]
    prometheus_url: pulumi.Output[str]
    models: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: MlopsPlatformArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        settings = images.resolve(args.settings)
        if settings.images.mirror or settings.images.pull_secrets:
            # Pull secrets and the mirror reach every pod and chart we register (children inherit this).
            # Without either it would be an identity run on every child: not installed (1,000+ models).
            opts = pulumi.ResourceOptions.merge(
                opts,
                pulumi.ResourceOptions(
                    transformations=[images.transformation(settings.images, images.images_of_ours(settings))]
                ),
            )
        super().__init__(f"{TOKEN_PREFIX}:MlopsPlatform", name, None, opts)
        spaces = settings.namespaces
        secrets = credentials(settings)
        cluster = Cluster(
            f"{name}-cluster", ClusterArgs(settings.cluster), pulumi.ResourceOptions(parent=self)
        )
        on_cluster = pulumi.ResourceOptions(parent=self, providers=[cluster.provider])
        # Resources parented directly to this component name their provider: the component itself has none.
        with_provider = pulumi.ResourceOptions(parent=self, provider=cluster.provider)
        created = [
            namespace(self, role, value, with_provider)
            for role, value in (
                ("mlflow", spaces.mlflow),
                ("serving", spaces.serving),
                ("monitoring", spaces.monitoring),
            )
        ]
        # KFP creates (and owns) its fixed `kubeflow` namespace in cluster-scoped-resources.
        in_namespaces = pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=created))
        seed = settings.secrets.secret_seed.get_secret_value()
        grafana_password = (
            settings.secrets.grafana_admin_password.get_secret_value()
            if settings.secrets.grafana_admin_password
            else derive_credential(seed, "grafana-admin-password")
        )
        tracking_uri = f"http://mlflow.{spaces.mlflow}.svc.cluster.local:5000"
        monitoring = Monitoring(
            f"{name}-monitoring",
            MonitoringArgs(
                settings=settings.monitoring,
                namespace=spaces.monitoring,
                grafana_password=grafana_password,
                models=settings.models,
                tracking_uri=tracking_uri,
                mlflow_username=settings.mlflow.auth.admin_username,
                mlflow_password=secrets.admin_password,
                mlflow_namespace=spaces.mlflow,
                serving_namespace=spaces.serving,
                kfp_namespace=settings.kfp.namespace,
                install_charts=settings.upstream.helm_charts,
                policy=settings.policy,
                store_url=monitor_store_url(settings, secrets),
                projects=settings.catalog.projects,
                people=settings.catalog.people,
                teams=settings.catalog.teams,
            ),
            in_namespaces,
        )
        mlflow = MlflowServer(
            f"{name}-mlflow",
            MlflowServerArgs(
                settings=settings.mlflow,
                namespace=spaces.mlflow,
                credentials=secrets,
                client_namespaces=(settings.kfp.namespace, spaces.serving, spaces.monitoring),
                monitoring_namespace=spaces.monitoring,
                monitoring_release=monitoring.release,
            ),
            in_namespaces,
        )
        store = settings.mlflow.artifact_store
        endpoint = (
            f"seaweedfs.{spaces.mlflow}.svc.cluster.local:8333"
            if store.mode is ArtifactStoreMode.BUNDLED
            else str(store.endpoint).split("://", 1)[-1]
        )
        pipelines = KubeflowPipelines(
            f"{name}-pipelines",
            KubeflowPipelinesArgs(
                settings=settings.kfp,
                store_endpoint=endpoint if store.mode is ArtifactStoreMode.BUNDLED else str(store.endpoint),
                store_region=store.region,
                bucket=store.bucket,
                store_access_key_id=secrets.store_access_key_id,
                store_secret_access_key=secrets.store_secret_access_key,
                tracking_uri=mlflow.tracking_uri,
                mlflow_username=settings.mlflow.auth.admin_username,
                mlflow_password=secrets.admin_password,
                credentials=kfp_credentials(seed),
            ),
            in_namespaces,
        )
        store_url = f"http://{endpoint}" if store.mode is ArtifactStoreMode.BUNDLED else str(store.endpoint)
        serving = SeldonServing(
            f"{name}-serving",
            SeldonServingArgs(
                settings=settings.seldon,
                namespace=spaces.serving,
                store_endpoint=store_url,
                store_access_key_id=secrets.store_access_key_id,
                store_secret_access_key=secrets.store_secret_access_key,
                store_region=store.region,
                allow_load_balancer=settings.allow_load_balancer,
                monitoring_release=monitoring.release,
                ingress_namespaces=(settings.kfp.namespace, spaces.monitoring),
                monitor_url=monitoring.monitor_url,
                monitor_namespace=spaces.monitoring,
                monitor_port=MONITOR_PORT,
                install_charts=settings.upstream.helm_charts,
            ),
            in_namespaces,
        )
        if settings.models:
            # One message for all models: 1,000+ log calls would cost the render (bench/bench_render.py).
            shown = ", ".join(f"{m.name} ({m.registered_model}@{m.alias})" for m in settings.models[:5])
            more = f" and {len(settings.models) - 5} more" if len(settings.models) > 5 else ""
            pulumi.log.info(
                f"{len(settings.models)} model(s) declared: {shown}{more}. Each gets an owner object "
                f"(ConfigMap mlops-model-<name> in {spaces.serving}); the loop's deployer creates its Seldon "
                f"Model when the alias resolves",
                resource=self,
            )
        # Models are the hot path (1,000+): one component for all, 1 resource each (see model.py).
        ModelDeployments(
            f"{name}-model",
            ModelDeploymentsArgs(
                models=settings.models,
                namespace=spaces.serving,
                storage_secret=RCLONE_SECRET,
                artifacts_destination=artifacts_destination(store.bucket),
                depends_on=tuple(serving.ready),
            ),
            pulumi.ResourceOptions(parent=self, providers=[cluster.provider]),
        )
        # Every model is served in the shared serving namespace today; one Role per serving namespace.
        ModelDeployerAccess(
            f"{name}-model-deployer",
            ModelDeployerAccessArgs(
                namespace=spaces.serving,
                models=tuple(model.name for model in settings.models),
                service_account=MONITOR_SERVICE_ACCOUNT,
                service_account_namespace=spaces.monitoring,
            ),
            pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=created)),
        )
        self._create_projects(name, settings, with_provider, on_cluster, tuple(created), pipelines)
        # Pulumi cannot reach MLflow or KFP: a Job gives projects their space there and archives removed
        # ones. Always created: removing the last project must archive it too.
        ProjectSpaceSync(
            f"{name}-project-sync",
            ProjectSpaceSyncArgs(
                catalog=settings.catalog,
                namespace=spaces.mlflow,
                image=settings.monitoring.monitor.image or images.reference("monitor", settings.images),
                tracking_uri=tracking_uri,
                kfp_url=f"http://ml-pipeline.{settings.kfp.namespace}.svc.cluster.local:8888",
                admin_username=settings.mlflow.auth.admin_username,
                user_passwords=sync_users(settings.catalog, seed),
                kfp_namespace=settings.kfp.namespace,
                store_url=monitor_store_url(settings, secrets),
                depends_on=(mlflow, pipelines),
            ),
            on_cluster,
        )
        self.tracking_uri = mlflow.tracking_uri
        self.pipelines_url = pipelines.api_url
        self.inference_url = serving.inference_url
        self.grafana_url = monitoring.grafana_url
        self.prometheus_url = monitoring.prometheus_url
        self.models = pulumi.Output.from_input([model.name for model in settings.models])
        self.register_outputs(
            {
                "tracking_uri": self.tracking_uri,
                "pipelines_url": self.pipelines_url,
                "inference_url": self.inference_url,
                "grafana_url": self.grafana_url,
                "prometheus_url": self.prometheus_url,
                "models": self.models,
            }
        )

    def _create_projects(
        self,
        name: str,
        settings: PlatformSettings,
        with_provider: pulumi.ResourceOptions,
        on_cluster: pulumi.ResourceOptions,
        namespaces: tuple[pulumi.Resource, ...],
        pipelines: pulumi.Resource,
    ) -> None:
        """One ``Project`` per catalog project, after the shared namespaces and the Roles they share."""
        projects = settings.catalog.projects
        if not projects:
            return
        spaces = settings.namespaces
        shown = ", ".join(f"{p.name} (namespace {p.namespace_name}, team {p.team})" for p in projects[:10])
        more = f" and {len(projects) - 10} more" if len(projects) > 10 else ""
        pulumi.log.info(
            f"{len(projects)} project(s) in the catalog: {shown}{more}. A project removed from the catalog "
            f"loses its namespace and RBAC on this update; its MLflow data and monitor history are archived, "
            f"never deleted (they live in {spaces.mlflow} and {spaces.monitoring}, not in its namespace)",
            resource=self,
        )
        roles = create_reader_roles(
            self,
            spaces.serving,
            spaces.monitoring,
            pulumi.ResourceOptions.merge(with_provider, pulumi.ResourceOptions(depends_on=list(namespaces))),
        )
        teams = {team.name: team for team in settings.catalog.teams}
        for project in projects:
            Project(
                f"{name}-project-{project.name}",
                ProjectArgs(
                    settings=project,
                    team=teams[project.team],
                    serving_namespace=spaces.serving,
                    monitoring_namespace=spaces.monitoring,
                    kfp_namespace=settings.kfp.namespace,
                    shared=(*namespaces, *roles),
                    pipelines=(pipelines,),
                ),
                on_cluster,
            )
