"""Kubeflow Pipelines standalone at the pinned manifests ref, configured for the platform's object store."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from platform_components import versions
from platform_components.errors import ConfigError
from platform_components.kubernetes import pods
from platform_components.kubernetes.base import TOKEN_PREFIX, child, secret, service_account
from platform_components.kubernetes.naming import derive_credential
from platform_components.pipelines.cluster import MLFLOW_CREDENTIALS_SECRET
from platform_components.settings import KfpSettings, Resources

# Objects KFP 2.17.0 env/platform-agnostic creates and we patch (never create: a second create fails with
# AlreadyExists since pulumi-kubernetes 4.29, pulumi/pulumi-kubernetes CHANGELOG.md@v4.29.0 #2926).
LAUNCHER_CONFIG_MAP = "kfp-launcher"
INSTALL_CONFIG_MAP = "pipeline-install-config"  # cacheImage: the image of cached steps' stand-in pods
CACHE_IMAGE_ANNOTATION = "mlops.platform/kfp-cache-image-hash"
ARTIFACT_SECRET = "mlpipeline-minio-artifact"  # keys accesskey / secretkey
DATABASE_SECRET = "mysql-secret"  # keys username / password
DATABASE_DEPLOYMENT = "mysql"
STORE_DEPLOYMENT = "seaweedfs"
# The access key KFP ships in mlpipeline-minio-artifact; SeaweedFS keeps it on its kubeflow-admin user after
# a new key is configured (s3.configure appends keys, weed/shell/command_s3_configure.go@4.34).
SHIPPED_ACCESS_KEY = "minio"
# KFP's pods that read ARTIFACT_SECRET or DATABASE_SECRET through env (read once, at container start): a
# changed credential restarts them (manifests/kustomize/base, third-party/{mysql,seaweedfs}@2.17.0).
CREDENTIAL_READERS = (
    "ml-pipeline",
    "ml-pipeline-ui",
    "cache-server",
    "metadata-grpc-deployment",
    "seaweedfs",
    DATABASE_DEPLOYMENT,
)
# What KFP's own Deployments list first, in their order (third-party/mysql/base/mysql-deployment.yaml and
# third-party/seaweedfs/base/seaweedfs/seaweedfs-deployment.yaml@2.17.0). A DeploymentPatch names them, key
# only, before its own items: server-side apply merges lists by name and keeps upstream's items first, and
# the provider diffs a patch's lists against the live object by position, so a patch listing only its own
# item differs from the live list on every preview (a perpetual update, found by the engine tier).
MYSQL_UPSTREAM_ENV = ("MYSQL_ALLOW_EMPTY_PASSWORD",)
SEAWEEDFS_UPSTREAM_CONTAINERS = ("seaweedfs",)
ARTIFACT_STORE_SECRET = "mlops-artifact-store"
PASSWORD_JOB = "mlops-kfp-mysql-password"
CREDENTIALS_HASH_ANNOTATION = "mlops.platform/kfp-credentials-hash"
# Server-side apply with force: KFP's own field manager owns these keys (the kustomize apply set them).
PATCH_FORCE = {"pulumi.com/patchForce": "true"}


@dataclass(frozen=True)
class KfpCredentials:
    """Credentials of KFP's bundled stores, replacing upstream's ``minio/minio123`` and empty MySQL root.

    Attributes:
        store_access_key / store_secret_key: KFP's own SeaweedFS admin (``mlpipeline-minio-artifact``).
        database_password: MySQL root password (``mysql-secret``; KFP's pods log in as root).
    """

    store_access_key: str
    store_secret_key: str
    database_password: str

    def fingerprint(self) -> str:
        """A short hash that changes with any credential (restarts the pods reading them), not a secret."""
        joined = "\0".join((self.store_access_key, self.store_secret_key, self.database_password))
        return hashlib.sha256(joined.encode()).hexdigest()[:16]


def kfp_credentials(seed: str) -> KfpCredentials:
    """KFP's bundled-store credentials derived from ``secret_seed``, as every other generated credential."""
    return KfpCredentials(
        store_access_key=derive_credential(seed, "kfp-store-access-key", length=20),
        store_secret_key=derive_credential(seed, "kfp-store-secret-key", length=40),
        database_password=derive_credential(seed, "kfp-mysql-root-password"),
    )


def launcher_providers(
    endpoint: str, region: str, secret_name: str = ARTIFACT_STORE_SECRET
) -> dict[str, Any]:
    """The ``providers`` document of ``kfp-launcher`` for an S3-compatible store.

    KFP 2.17.0 reads it as YAML into ``BucketProviders`` (``backend/src/v2/config/env.go``): ``s3.default``
    with ``endpoint`` (no scheme needed: ``disableSSL`` picks http), ``region``, ``disableSSL`` and
    ``credentials.secretRef`` naming a Secret in the run's namespace (``backend/src/v2/config/s3.go``).

    Args:
        endpoint: ``https://host``, ``http://host:port`` or ``host:port`` (in-cluster, plain HTTP).
        region: the bucket's region (SigV4 signs with it; SeaweedFS ignores it).
    """
    scheme, _, host = endpoint.rpartition("://")
    disable_ssl = scheme == "http" if scheme else True  # a bare host:port is an in-cluster Service
    return {
        "s3": {
            "default": {
                "endpoint": host,
                "region": region,
                "disableSSL": disable_ssl,
                "credentials": {
                    "fromEnv": False,
                    "secretRef": {
                        "secretName": secret_name,
                        "accessKeyKey": "accesskey",
                        "secretKeyKey": "secretkey",
                    },
                },
            }
        }
    }


# A remote Argo base in KFP's kustomizations: https://github.com/argoproj/argo-workflows/manifests/<path>?ref=<tag>
ARGO_REMOTE = re.compile(
    r"https://github\.com/argoproj/argo-workflows/manifests/([\w./-]+)\?ref=([\w.-]+)\S*"
)


def localize_argo_refs(kustomize_root: Path, argo_manifests: Path, argo_tag: str) -> list[Path]:
    """Rewrite every remote Argo base under ``kustomize_root`` to a relative path into ``argo_manifests``.

    How a copy of KFP's ``manifests/kustomize`` becomes a folder for ``mlops:kfp.manifests_path``: KFP
    2.17.0 points five kustomizations under ``third-party/argo/`` at
    ``https://github.com/argoproj/argo-workflows/manifests/<path>?ref=v4.0.5``; with a copy of that
    repository's ``manifests/`` at the same tag beside it, ``kubectl kustomize`` then builds offline.

    Returns:
        The kustomization files rewritten (KFP 2.17.0 has five references in four files).

    Raises:
        ValueError: a reference names another Argo tag than the folder holds, or a path it does not have.
    """
    rewritten = []
    for kustomization in sorted(kustomize_root.rglob("kustomization.yaml")):
        text = kustomization.read_text()
        if "github.com/argoproj/argo-workflows/manifests/" not in text:
            continue

        def local(match: re.Match[str], kustomization: Path = kustomization) -> str:
            path, tag = match.group(1), match.group(2)
            if tag != argo_tag:
                raise ValueError(f"{kustomization}: Argo base at {tag}, the upstream folder holds {argo_tag}")
            target = argo_manifests / path
            if not target.is_dir():
                raise ValueError(f"{kustomization}: Argo base {path} is not in {argo_manifests}")
            return os.path.relpath(target, kustomization.parent)

        # Only the `resources:` entries are references; comments that link to Argo's docs keep their URLs.
        lines = [
            ARGO_REMOTE.sub(local, line) if line.lstrip().startswith("- ") else line
            for line in text.splitlines(keepends=True)
        ]
        kustomization.write_text("".join(lines))
        rewritten.append(kustomization)
    return rewritten


def mirror_kfp_images(kustomize_root: Path, entries: list[dict[str, str]]) -> list[Path]:
    """Add kustomize ``images:`` entries to both KFP targets under ``kustomize_root`` (a local copy).

    The second step of preparing ``mlops:kfp.manifests_path`` for an air gap, after ``localize_argo_refs``:
    kustomize's images transformer rewrites every container image of the target's resources, so KFP's pods
    pull from the mirror (``images.kustomize_images`` gives the entries for ``mlops:images.mirror``). Entries
    with the same ``name`` are replaced, so running it twice changes nothing.

    Returns:
        The kustomization files written.
    """
    written = []
    for name in ("kfp-cluster-scoped-resources", "kfp-platform-agnostic"):
        relative = versions.get(name).kustomize_target
        kustomization = kustomize_root / relative / "kustomization.yaml"
        document = yaml.safe_load(kustomization.read_text()) or {}
        by_name = {entry["name"]: entry for entry in document.get("images", [])}
        by_name.update({entry["name"]: dict(entry) for entry in entries})
        document["images"] = [by_name[key] for key in sorted(by_name)]
        kustomization.write_text(yaml.safe_dump(document, sort_keys=False))
        written.append(kustomization)
    return written


def manifest_directories(settings: KfpSettings) -> tuple[str, str]:
    """The two kustomize targets, remote at ``settings.version`` or local under ``settings.manifests_path``.

    Raises:
        ConfigError: a local path without both targets' kustomization.yaml.
    """
    scoped = versions.get("kfp-cluster-scoped-resources")
    overlay = versions.get("kfp-platform-agnostic")
    if settings.manifests_path is None:
        return _remote(scoped, settings.version), _remote(overlay, settings.version)
    root = Path(settings.manifests_path)
    targets = []
    for upstream in (scoped, overlay):
        relative = upstream.kustomize_target
        target = root / relative
        if not (target / "kustomization.yaml").is_file():
            raise ConfigError(
                f"mlops:kfp.manifests_path {settings.manifests_path!r} has no {relative}/kustomization.yaml: "
                "point it at a copy of kubeflow/pipelines manifests/kustomize at "
                f"{settings.version} (with the Argo bases made local), or unset it to use the remote refs"
            )
        targets.append(str(target))
    return targets[0], targets[1]


@dataclass(frozen=True)
class KubeflowPipelinesArgs:
    """Arguments of ``KubeflowPipelines``.

    Attributes:
        settings: version (floor 2.17.0) and namespace (``kubeflow``, fixed upstream).
        store_endpoint: S3 endpoint of the platform's object store: ``https://host`` or ``http://host:port``
            for an external store, ``host:port`` (plain HTTP) for the in-cluster one.
        store_region: the bucket's region (``mlops:mlflow.artifact_store.region``).
        bucket: bucket for pipeline roots.
        store_access_key_id / store_secret_access_key: credentials (Pulumi secrets in a Secret).
        tracking_uri: MLflow tracking URI the pipelines log to.
        mlflow_username / mlflow_password: MLflow credentials for pipeline steps (basic-auth fails closed),
            rendered into the Secret ``pipelines.MLFLOW_CREDENTIALS_SECRET`` that steps attach with
            ``with_mlflow_credentials``.
        credentials: KFP's bundled-store credentials (``kfp_credentials``); None keeps upstream's.
    """

    settings: KfpSettings
    store_endpoint: str
    bucket: str
    store_access_key_id: str
    store_secret_access_key: str
    tracking_uri: pulumi.Input[str]
    mlflow_username: str = ""
    mlflow_password: pulumi.Input[str] = ""
    store_region: str = "us-east-1"
    credentials: KfpCredentials | None = None


class KustomizeDirectory(k8s.kustomize.v2.Directory):
    """``kustomize.v2.Directory`` with its ``resources`` output typed the way the provider returns it.

    The Python SDK types ``resources`` as a string while the provider answers with an array of the children,
    so on a real engine every preview or up that reaches a cluster dies deserializing it ("Unexpected type.
    Expected 'list' got '<class 'str'>'": pulumi/pulumi-kubernetes#3389, fixed by #4295 in April 2026, so in
    SDKs from 4.2x on). The engine tier runs SDK 4.25.0 (the newest whose provider the Go proxy serves) and
    met it; this subclass is the whole fix (the SDK reads a resource's output types from its class's getters,
    the subclass's last) and is inert on fixed SDKs.
    """

    @property
    @pulumi.getter
    def resources(self) -> pulumi.Output[Sequence[Any] | None]:
        """The children the Directory created."""
        return pulumi.get(self, "resources")


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
        scoped_directory, overlay_directory = manifest_directories(settings)
        cluster_scoped = KustomizeDirectory(
            f"{name}-cluster-scoped", directory=scoped_directory, opts=child(self)
        )
        environment = KustomizeDirectory(
            f"{name}-platform-agnostic", directory=overlay_directory, opts=child(self, [cluster_scoped])
        )
        after = child(self, [environment])
        secret(
            self,
            "store-secret",
            ARTIFACT_STORE_SECRET,
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
        k8s.core.v1.ConfigMapPatch(
            f"{name}-launcher-config",
            metadata={"name": LAUNCHER_CONFIG_MAP, "namespace": namespace, "annotations": PATCH_FORCE},
            data={
                "defaultPipelineRoot": f"s3://{args.bucket}/{settings.pipeline_root_prefix}",
                "providers": yaml.safe_dump(
                    launcher_providers(args.store_endpoint, args.store_region), sort_keys=True
                ),
            },
            opts=after,
        )
        # The cache server reads cacheImage into env at start: restart it when the image changes.
        cache_config = k8s.core.v1.ConfigMapPatch(
            f"{name}-install-config",
            metadata={"name": INSTALL_CONFIG_MAP, "namespace": namespace, "annotations": PATCH_FORCE},
            data={"cacheImage": settings.cache_image},
            opts=after,
        )
        k8s.core.v1.ConfigMap(
            f"{name}-mlflow-tracking",
            metadata={"name": "mlflow-tracking", "namespace": namespace},
            data={"MLFLOW_TRACKING_URI": args.tracking_uri},
            opts=after,
        )
        # Pods read cacheImage and the credential Secrets into env at container start: a change of either
        # restarts the Deployments that read it (one patch per Deployment, one annotation per reason).
        restarts: dict[str, dict[str, str]] = {
            "cache-server": {CACHE_IMAGE_ANNOTATION: _short_hash(settings.cache_image)}
        }
        restart_after: list[pulumi.Resource] = [cache_config]
        if args.credentials is not None:
            restart_after += self._replace_bundled_credentials(name, namespace, args.credentials, after)
            for deployment in CREDENTIAL_READERS:
                restarts.setdefault(deployment, {})[CREDENTIALS_HASH_ANNOTATION] = (
                    args.credentials.fingerprint()
                )
        for deployment, reasons in restarts.items():
            template: dict[str, Any] = {"metadata": {"annotations": reasons}}
            if deployment == DATABASE_DEPLOYMENT:
                template["spec"] = _mysql_root_password_env()
            if deployment == STORE_DEPLOYMENT and args.credentials is not None:
                revoke = revoke_shipped_key_container()
                template["spec"] = {"containers": _after_upstream(SEAWEEDFS_UPSTREAM_CONTAINERS, revoke)}
            k8s.apps.v1.DeploymentPatch(
                f"{name}-restart-{deployment}",
                metadata={"name": deployment, "namespace": namespace},
                spec={"template": template},
                opts=child(self, restart_after),
            )
        self.api_url = pulumi.Output.from_input(f"http://ml-pipeline.{namespace}.svc.cluster.local:8888")
        self.ui_url = pulumi.Output.from_input(f"http://ml-pipeline-ui.{namespace}.svc.cluster.local:80")
        self.register_outputs({"api_url": self.api_url, "ui_url": self.ui_url})

    def _replace_bundled_credentials(
        self, name: str, namespace: str, credentials: KfpCredentials, after: pulumi.ResourceOptions
    ) -> list[pulumi.Resource]:
        """Patch KFP's two credential Secrets and set MySQL's root password; returns what restarts wait for.

        KFP's pods are Ready (the Directory awaits them) before these patches land, so MySQL has already
        initialised its volume with an empty root password and SeaweedFS has configured ``minio``: the
        password Job logs in with the new password or, on the first run, the empty one and sets it; the
        restarted pods then read the new values (env from Secrets is read at container start).
        """
        # Fixed at first creation: MySQL keeps its root password in its volume and SeaweedFS appends keys,
        # so a re-derived value (a new secret_seed) would lock KFP's pods out; rotate by hand, then
        # `pulumi up --replace` these patches.
        first_value_only = pulumi.ResourceOptions.merge(
            after, pulumi.ResourceOptions(ignore_changes=["data"])
        )
        artifact = k8s.core.v1.SecretPatch(
            f"{name}-artifact-secret",
            metadata={"name": ARTIFACT_SECRET, "namespace": namespace, "annotations": PATCH_FORCE},
            data=pulumi.Output.secret(
                {
                    "accesskey": _b64(credentials.store_access_key),
                    "secretkey": _b64(credentials.store_secret_key),
                }
            ),
            opts=first_value_only,
        )
        database = k8s.core.v1.SecretPatch(
            f"{name}-database-secret",
            metadata={"name": DATABASE_SECRET, "namespace": namespace, "annotations": PATCH_FORCE},
            data=pulumi.Output.secret({"password": _b64(credentials.database_password)}),
            opts=first_value_only,
        )
        job_account = service_account(self, "database-password", PASSWORD_JOB, namespace, after)
        password_job = k8s.batch.v1.Job(
            f"{name}-database-password",
            metadata={
                "name": PASSWORD_JOB,
                "namespace": namespace,
                "annotations": {
                    "mlops.platform/policy-exception": "NETWORKPOLICY-DEFAULT-DENY",
                    # No TTL either: a TTL-deleted Job is a perpetual diff for Pulumi.
                    "mlops.platform/policy-exception-reason": (
                        "kubeflow is KFP's own namespace; KFP 2.17.0 ships no default-deny there (only a "
                        "seaweedfs policy) and its pods need flows we do not enumerate"
                    ),
                },
            },
            spec=database_password_job_spec(),
            opts=child(self, [database, job_account]),
        )
        return [artifact, database, password_job]


REVOKE_SCRIPT = f"""\
until wget -q --spider http://127.0.0.1:8333/status; do sleep 2; done
revoke="s3.configure -user kubeflow-admin -access_key {SHIPPED_ACCESS_KEY} -delete -apply"
until echo "$revoke" | /usr/bin/weed shell; do
  sleep 5
done
echo "revoked the shipped access key"
while true; do sleep 3600; done
"""


def revoke_shipped_key_container() -> dict[str, Any]:
    """A container in KFP's SeaweedFS pod that removes upstream's ``minio`` key once the server is up.

    In the pod because ``weed shell`` needs the master and filer ports, which KFP's own NetworkPolicy for
    SeaweedFS admits from nowhere in the namespace (only 8333); it stays running (a regular container that
    exits would be restarted) and costs a few MiB.
    """
    image = next(image for image in versions.KFP_IMAGES if "/seaweedfs:" in image)  # KFP's own
    return {
        "name": "revoke-shipped-key",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", REVOKE_SCRIPT],
        "resources": Resources(
            cpu_request="10m", memory_request="32Mi", cpu_limit="100m", memory_limit="128Mi"
        ).to_kubernetes(),
        # As KFP's seaweedfs container runs (its user; weed shell may write under its home).
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


def _short_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def _mysql_root_password_env() -> dict[str, Any]:
    """The mysql container's root password from ``mysql-secret``.

    A new volume (or one KFP's MySQL has not initialised yet) gets the password at init: the mysql:8.4
    entrypoint sets MYSQL_ROOT_PASSWORD for root@localhost and root@'%' (docker-library/mysql
    8.4/docker-entrypoint.sh@06118821); an initialised one gets it from the password Job.
    """
    secret_ref = {"secretKeyRef": {"name": DATABASE_SECRET, "key": "password"}}
    env = _after_upstream(MYSQL_UPSTREAM_ENV, {"name": "MYSQL_ROOT_PASSWORD", "valueFrom": secret_ref})
    return {"containers": [{"name": "mysql", "env": env}]}


def _after_upstream(upstream_names: tuple[str, ...], ours: dict[str, Any]) -> list[dict[str, Any]]:
    """A patch's list: upstream's items by key only (their fields stay upstream's), then ours."""
    return [{"name": name} for name in upstream_names] + [ours]


DATABASE_PASSWORD_SCRIPT = """\
set -eu
export MYSQL_PWD="$NEW_PASSWORD"  # never on the command line
if mysql -h "$MYSQL_HOST" -u root -e 'SELECT 1' >/dev/null 2>&1; then
  echo "root already has the configured password"; exit 0
fi
MYSQL_PWD= mysql -h "$MYSQL_HOST" -u root -e "
  ALTER USER 'root'@'%' IDENTIFIED BY '$NEW_PASSWORD';
  ALTER USER 'root'@'localhost' IDENTIFIED BY '$NEW_PASSWORD';"
echo "root password set"
"""


def database_password_job_spec() -> dict[str, Any]:
    """A Job that gives KFP's MySQL root the configured password if it still has the empty one.

    The password is URL-safe base64 (``derive_credential``), so it needs no quoting inside the SQL.
    """
    image = next(image for image in versions.KFP_IMAGES if "/mysql:" in image)  # KFP's own MySQL image
    job_container = pods.container(
        "set-password",
        image,
        resources=Resources(cpu_request="50m", memory_request="64Mi", cpu_limit="200m", memory_limit="256Mi"),
        readiness={},
        liveness={},
        command=["/bin/sh", "-c", DATABASE_PASSWORD_SCRIPT],
        env={"MYSQL_HOST": "mysql"},
        secret_env={"NEW_PASSWORD": (DATABASE_SECRET, "password")},
        run_as_user=999,  # the mysql image's user, as KFP's own mysql Deployment runs it
    )
    del job_container["readinessProbe"], job_container["livenessProbe"]
    template = pods.pod_template(
        {"app.kubernetes.io/name": PASSWORD_JOB},
        [job_container],
        service_account=PASSWORD_JOB,
        fs_group=999,
        restart_policy="OnFailure",
    )
    return {"backoffLimit": 20, "template": template}


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def _remote(upstream: versions.Upstream, version: str) -> str:
    """A kustomize remote target for ``version`` (settings may move the ref; the floor is checked there)."""
    return f"https://{upstream.repository}/{upstream.path}?ref={version}"
