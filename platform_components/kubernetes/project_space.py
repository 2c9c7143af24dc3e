"""ProjectSpaceSync: the Job that gives catalog projects their space in MLflow and KFP, and archives the
ones removed (``mlops project sync``, ``platform_components/projects``).

Pulumi cannot reach MLflow or the KFP API (they are cluster services; the program runs wherever ``pulumi
up`` does), so a Job in the MLflow namespace does it, with:

- the catalog in the ConfigMap ``project-sync-catalog`` (the stack's validated catalog, dumped back to the
  same YAML format, ``docs/catalog.md``);
- MLflow's admin from the Secret the server already has (``mlflow-server``, key ``admin-password``; the
  admin's name is ``mlops:mlflow.auth.admin_username``) as ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``;
- the passwords of the platform users it creates (``mlops-monitor``, ``<project>-pipeline``), derived from
  the stack's secret seed, in the Secret ``project-sync-users`` (nothing has a default credential);
- the monitor store's URL from the Secret ``project-sync-store`` when the store is PostgreSQL, so a removed
  project's monitor history is marked archived (a SQLite store lives on the monitor's volume, out of reach:
  the Job says so in its log).

The Job is named ``project-sync-<hash>`` of what it does (catalog, image, arguments, a digest of the
credentials): a changed catalog is a new Job, which Pulumi creates before deleting the old one; an
unchanged catalog leaves the finished Job as it is (no ``ttlSecondsAfterFinished``: a deleted Job would be
recreated by every ``pulumi up``). It is created whatever the catalog holds, so that removing the last
project still archives it. Pod Security ``restricted``, requests and limits, no API token, egress only to
MLflow, the KFP API and the monitor store.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from platform_components.kubernetes import pods
from platform_components.kubernetes.base import TOKEN_PREFIX, child, network_policy, secret, service_account
from platform_components.kubernetes.mlflow import MLFLOW_PORT, POSTGRES_PORT, credentials_checksum
from platform_components.kubernetes.monitoring import STORE_URL_ENV, monitor_store_egress
from platform_components.kubernetes.naming import derive_credential, keyed_name, labels, selector
from platform_components.settings import CatalogSettings, Resources

CATALOG_CONFIGMAP = "project-sync-catalog"
USERS_SECRET = "project-sync-users"
STORE_SECRET = "project-sync-store"
SERVICE_ACCOUNT = "project-sync"
CATALOG_PATH = "/etc/mlops-catalog/catalog.yaml"
USERS_PATH = "/etc/mlops-sync-users/users.json"
KFP_API_PORT = 8888
#: The MLflow server's Secret and key holding the admin password (kubernetes/mlflow.py ``_create_server``).
ADMIN_SECRET = ("mlflow-server", "admin-password")
#: The platform's users the sync may create (``projects/mlflow_space.py``).
MONITOR_USER = "mlops-monitor"
DEFAULT_RESOURCES = Resources(
    cpu_request="50m", memory_request="128Mi", cpu_limit="500m", memory_limit="512Mi"
)


def catalog_yaml(catalog: CatalogSettings) -> str:
    """The catalog as the Job reads it: the settings model dumped back to its YAML (only what was set)."""
    return yaml.safe_dump(catalog.model_dump(mode="json", exclude_defaults=True), sort_keys=True)


def sync_users(catalog: CatalogSettings, seed: str) -> dict[str, str]:
    """username -> password of the platform users the sync creates, derived from the stack's seed."""
    names = [MONITOR_USER, *(f"{project.name}-pipeline" for project in catalog.projects)]
    return {name: derive_credential(seed, f"mlflow-user-{name}") for name in names}


def sync_arguments(tracking_uri: str, kfp_url: str) -> list[str]:
    return [
        "-m",
        "platform_components.cli",
        "project",
        "sync",
        "--catalog",
        CATALOG_PATH,
        "--mlflow-url",
        tracking_uri,
        "--kfp-url",
        kfp_url,
        "--users-file",
        USERS_PATH,
    ]


def sync_container(
    image: str,
    tracking_uri: str,
    kfp_url: str,
    admin_username: str,
    *,
    with_store: bool,
    resources: Resources = DEFAULT_RESOURCES,
) -> dict[str, Any]:
    """The Job's one container: ``mlops project sync`` in the monitor's image (no probes: it ends)."""
    secret_env = {"MLFLOW_TRACKING_PASSWORD": ADMIN_SECRET}
    if with_store:
        secret_env[STORE_URL_ENV] = (STORE_SECRET, STORE_URL_ENV)
    spec = pods.container(
        "project-sync",
        image,
        resources=resources,
        readiness={},
        liveness={},
        command=["python"],
        args=sync_arguments(tracking_uri, kfp_url),
        env={"MLFLOW_TRACKING_USERNAME": admin_username, "HOME": "/tmp"},
        secret_env=secret_env,
        mounts={"tmp": "/tmp"},
        read_only_mounts={"catalog": "/etc/mlops-catalog", "users": "/etc/mlops-sync-users"},
    )
    del spec["readinessProbe"], spec["livenessProbe"]
    return spec


def sync_job_name(catalog_text: str, container: Mapping[str, Any], credentials_digest: str) -> str:
    """``project-sync-<8 hex>``: changes exactly when the catalog, image, command or a credential does."""
    return keyed_name(
        "project-sync",
        catalog_text,
        container["image"],
        *container["args"],
        json.dumps(container.get("env", []), sort_keys=True),
        credentials_digest,
    )


def sync_egress(
    namespace: str, kfp_namespace: str, store_url: str | None
) -> list[tuple[Sequence[dict[str, Any]], Sequence[int]]]:
    """Where the Job's pods may connect: MLflow, the KFP API and (PostgreSQL) the monitor store."""
    egress: list[tuple[Sequence[dict[str, Any]], Sequence[int]]] = [
        ([{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "mlflow"}}}], [MLFLOW_PORT]),
        (
            [
                {
                    **pods.namespace_selector(kfp_namespace),
                    "podSelector": {"matchLabels": {"app": "ml-pipeline"}},
                }
            ],
            [KFP_API_PORT],
        ),
    ]
    if store_url is not None:
        egress.append(monitor_store_egress(store_url, namespace))
    return egress


@dataclass(frozen=True)
class ProjectSpaceSyncArgs:
    """Arguments of ``ProjectSpaceSync``.

    Attributes:
        catalog: the stack's catalog (its projects; an empty one still archives what was removed).
        namespace: MLflow's namespace (the Job runs beside the server and its Secret).
        image: an image with ``platform_components`` installed (the monitor's).
        tracking_uri / kfp_url: the in-cluster MLflow and KFP API.
        admin_username: MLflow's admin (``mlops:mlflow.auth.admin_username``).
        user_passwords: ``sync_users``: the platform users' derived passwords.
        store_url: the monitor store's PostgreSQL URL; None: SQLite on the monitor's volume (not marked).
        kfp_namespace: where the KFP API server runs.
        depends_on: what must exist first (the MLflow server, KFP).
    """

    catalog: CatalogSettings
    namespace: str
    image: str
    tracking_uri: str
    kfp_url: str
    admin_username: str
    user_passwords: Mapping[str, str]
    kfp_namespace: str
    store_url: str | None = None
    resources: Resources = DEFAULT_RESOURCES
    depends_on: tuple[pulumi.Resource, ...] = field(default_factory=tuple)


class ProjectSpaceSync(pulumi.ComponentResource):
    """The catalog's ConfigMap, the sync's Secrets and account, its Job and NetworkPolicies."""

    job_name: str

    def __init__(
        self, name: str, args: ProjectSpaceSyncArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{TOKEN_PREFIX}:ProjectSpaceSync", name, None, opts)
        namespace = args.namespace
        opts_child = child(self)
        text = catalog_yaml(args.catalog)
        pod_labels = labels("project-sync", name)
        catalog_map = k8s.core.v1.ConfigMap(
            f"{name}-catalog",
            metadata={"name": CATALOG_CONFIGMAP, "namespace": namespace, "labels": pod_labels},
            data={"catalog.yaml": text},
            opts=opts_child,
        )
        users = secret(
            self,
            "users",
            USERS_SECRET,
            namespace,
            {"users.json": json.dumps(dict(args.user_passwords), sort_keys=True)},
            opts_child,
        )
        made = [catalog_map, users]
        if args.store_url is not None:
            made.append(
                secret(self, "store", STORE_SECRET, namespace, {STORE_URL_ENV: args.store_url}, opts_child)
            )
        made.append(service_account(self, "account", SERVICE_ACCOUNT, namespace, opts_child))
        container = sync_container(
            args.image,
            args.tracking_uri,
            args.kfp_url,
            args.admin_username,
            with_store=args.store_url is not None,
            resources=args.resources,
        )
        digest = credentials_checksum(*sorted(args.user_passwords.values()), args.store_url or "")
        self.job_name = sync_job_name(text, container, digest)
        template = pods.pod_template(
            pod_labels,
            [container],
            service_account=SERVICE_ACCOUNT,
            volumes=[
                pods.empty_dir("tmp", size_limit="64Mi"),
                {"name": "catalog", "configMap": {"name": CATALOG_CONFIGMAP, "defaultMode": 0o440}},
                pods.secret_volume("users", USERS_SECRET),
            ],
            restart_policy="OnFailure",
        )
        policies = [
            network_policy(
                self,
                "egress",
                pods.allow_policy(
                    "project-sync-egress",
                    namespace,
                    selector("project-sync", name),
                    egress=sync_egress(namespace, args.kfp_namespace, args.store_url),
                ),
                opts_child,
            )
        ]
        if args.store_url is not None and f"postgres.{namespace}.svc" in args.store_url:
            # The bundled PostgreSQL admits MLflow and the monitor only (kubernetes/mlflow.py); policies add
            # up, so this one lets the sync's pods in as well, on the database port only.
            policies.append(
                network_policy(
                    self,
                    "postgres-ingress",
                    pods.allow_policy(
                        "postgres-allow-project-sync",
                        namespace,
                        {"app.kubernetes.io/name": "postgres"},
                        ingress=[
                            (
                                [{"podSelector": {"matchLabels": selector("project-sync", name)}}],
                                [POSTGRES_PORT],
                            )
                        ],
                    ),
                    opts_child,
                )
            )
        k8s.batch.v1.Job(
            f"{name}-job",
            metadata={"name": self.job_name, "namespace": namespace, "labels": pod_labels},
            spec={
                # A few retries cover MLflow or KFP still starting on a first `pulumi up`.
                "backoffLimit": 6,
                "activeDeadlineSeconds": 1800,
                "template": template,
            },
            opts=child(self, [*made, *policies, *args.depends_on]),
        )
        self.register_outputs({"job_name": self.job_name})
