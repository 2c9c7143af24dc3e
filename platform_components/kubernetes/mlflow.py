"""MLflow tracking server and registry: PostgreSQL (bundled or external), S3 artifact store, basic-auth."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from platform_components import images, versions
from platform_components.kubernetes import pods
from platform_components.kubernetes.base import TOKEN_PREFIX, child, network_policy, secret, service_account
from platform_components.kubernetes.custom_resources import create, service_monitor
from platform_components.kubernetes.naming import keyed_name, labels, selector
from platform_components.settings import ArtifactStoreMode, DatabaseMode, MlflowSettings, Resources

MLFLOW_PORT = 5000
POSTGRES_PORT = 5432
S3_PORT = 8333
# SeaweedFS serves gRPC on each server's HTTP port + 10000 (seaweedfs weed/pb/grpc_client_server.go@4.34);
# `weed shell` talks gRPC to the master and the filer, so both ports must be reachable by the bucket Job.
SEAWEEDFS_MASTER_PORT = 9333
SEAWEEDFS_FILER_PORT = 8888
SEAWEEDFS_GRPC_OFFSET = 10000
SEAWEEDFS_MASTER_GRPC_PORT = SEAWEEDFS_MASTER_PORT + SEAWEEDFS_GRPC_OFFSET
SEAWEEDFS_FILER_GRPC_PORT = SEAWEEDFS_FILER_PORT + SEAWEEDFS_GRPC_OFFSET
SEAWEEDFS_METRICS_PORT = 9327
SEAWEEDFS_SHELL_PORTS = [
    SEAWEEDFS_MASTER_PORT,
    SEAWEEDFS_MASTER_GRPC_PORT,
    SEAWEEDFS_FILER_PORT,
    SEAWEEDFS_FILER_GRPC_PORT,
]
POSTGRES_UID = 999  # the official postgres image's user
SEAWEEDFS_UID = 1000


METRICS_AUTH_SECRET = "mlflow-metrics-auth"


def _ini_value(value: str) -> str:
    """``value`` as configparser reads it back: MLflow's ``ConfigParser()`` interpolates ``%``.

    mlflow 3.17.2 ``mlflow/server/auth/config.py`` reads basic_auth.ini with a default ``ConfigParser``
    (BasicInterpolation), where a literal ``%`` must be written ``%%`` (URL-quoted passwords have them).
    """
    if "\n" in value or "\r" in value:
        raise ValueError("a basic_auth.ini value cannot contain a line break")
    return value.replace("%", "%%")


def basic_auth_ini(
    *, default_permission: str, database_uri: str, admin_username: str, admin_password: str
) -> str:
    """MLflow's basic-auth configuration file, every value escaped for its parser."""
    entries = {
        "default_permission": default_permission,
        "database_uri": database_uri,
        "admin_username": admin_username,
        "admin_password": admin_password,
        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
    }
    return "\n".join(["[mlflow]", *(f"{key} = {_ini_value(value)}" for key, value in entries.items()), ""])


# Rotation (issue 7 item 15): the postgres image reads POSTGRES_PASSWORD only when it initialises an empty
# PGDATA (docker-library/postgres docker-entrypoint.sh@6edb0a8c4def40c371514b34aef9037ec82d9110), and MLflow
# creates its admin only when absent (mlflow 3.17.2 mlflow/server/auth/__init__.py, create_admin_user). So a
# new secret seed would leave the Secrets and the stores disagreeing. Both pods therefore set the stored
# credential from the Secret in an init container on every start, and a checksum annotation restarts them when
# the Secret changes: the Secret is always the truth.
POSTGRES_SET_PASSWORD = (
    "set -eu\n"
    # An empty volume is initialised by the entrypoint itself, with this password.
    'if [ -s "$PGDATA/PG_VERSION" ]; then\n'
    "  quoted=$(printf '%s' \"$POSTGRES_PASSWORD\" | sed \"s/'/''/g\")\n"
    # Single-user mode needs no login and no running server; the password goes through stdin, not argv.
    '  printf "ALTER ROLE %s PASSWORD \'%s\';\\n" "$POSTGRES_USER" "$quoted"'
    ' | postgres --single -j -D "$PGDATA" postgres > /dev/null\n'
    "fi\n"
)
# The monitor store's database and role on the bundled PostgreSQL (issue 10: the monitor's replicas share
# their state there). Their own role, not MLflow's superuser: the monitor can reach its database only.
MONITOR_DATABASE = "monitor"
MONITOR_ROLE = "monitor"
MONITOR_PASSWORD_KEY = "MONITOR_DATABASE_PASSWORD"
# Where the image's entrypoint looks for init scripts; it runs them once, on an empty volume, with a
# temporary server on the Unix socket only, sourcing a *.sh that is not executable (a Secret volume's file,
# 0440) (docker-library/postgres 16/bookworm/docker-entrypoint.sh@6edb0a8c4def40c371514b34aef9037ec82d9110,
# _main and docker_process_init_files).
POSTGRES_INIT_DIR = "/docker-entrypoint-initdb.d"
# A fresh volume: the role and its database made by the entrypoint's first start (psql's :'variable' quotes
# the password). Sourced by the entrypoint's shell, so no `set` here: it would change the entrypoint's own.
POSTGRES_INIT_MONITOR = (
    'psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc --dbname postgres '
    f"--set role={MONITOR_ROLE} --set pw=\"${MONITOR_PASSWORD_KEY}\" <<'EOSQL'\n"
    "CREATE ROLE :\"role\" LOGIN PASSWORD :'pw';\n"
    f'CREATE DATABASE {MONITOR_DATABASE} OWNER :"role";\n'
    "EOSQL\n"
)
# An existing volume (made before the monitor's database, or with a rotated password), on every start
# beside the superuser's password: the role made if missing and its password set from the Secret, then the
# database made if missing. Single-user mode (-j: a statement ends at ";" and an empty line) goes on after
# an error, so existence is checked first rather than an error relied upon.
POSTGRES_SET_MONITOR_PASSWORD = (
    'if [ -s "$PGDATA/PG_VERSION" ]; then\n'
    f"  quoted=$(printf '%s' \"${MONITOR_PASSWORD_KEY}\" | sed \"s/'/''/g\")\n"
    "  {\n"
    f"    echo \"DO \\$\\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{MONITOR_ROLE}') THEN "
    f'CREATE ROLE {MONITOR_ROLE} LOGIN; END IF; END\\$\\$;"\n'
    "    echo\n"
    f'    printf "ALTER ROLE {MONITOR_ROLE} LOGIN PASSWORD \'%s\';\\n" "$quoted"\n'
    '  } | postgres --single -j -D "$PGDATA" postgres > /dev/null\n'
    # The whole answer is read before it is searched: grep -q would close the pipe under a writing server.
    f"  found=$(echo \"SELECT 1 AS found FROM pg_database WHERE datname = '{MONITOR_DATABASE}';\" "
    '| postgres --single -j -D "$PGDATA" postgres)\n'
    '  case "$found" in\n'
    "    *'found = \"1\"'*) ;;\n"
    f'    *) echo "CREATE DATABASE {MONITOR_DATABASE} OWNER {MONITOR_ROLE};" '
    '| postgres --single -j -D "$PGDATA" postgres > /dev/null ;;\n'
    "  esac\n"
    "fi\n"
)


def bundled_monitor_store_url(namespace: str, password: str) -> str:
    """The monitor store's URL on the bundled PostgreSQL (the Service ``postgres`` in MLflow's namespace)."""
    from urllib.parse import quote

    return (
        f"postgresql://{MONITOR_ROLE}:{quote(password, safe='')}@postgres.{namespace}.svc.cluster.local:"
        f"{POSTGRES_PORT}/{MONITOR_DATABASE}"
    )


MLFLOW_SET_ADMIN_PASSWORD = "\n".join(
    [
        "from mlflow.server.auth.config import read_auth_config",
        "from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore",
        "config = read_auth_config()",
        "store = SqlAlchemyStore()",
        "store.init_db(config.database_uri)",
        "if store.has_user(config.admin_username, use_primary=True):",
        "    store.update_user(config.admin_username, password=config.admin_password)",
    ]
)
CHECKSUM_ANNOTATION = "mlops.platform/credentials-checksum"


def credentials_checksum(*values: str) -> str:
    """A short digest that changes with the credentials (restarts the pod); reveals nothing usable."""
    digest = hashlib.sha256()
    for value in values:
        digest.update(value.encode() + b"\0")
    return digest.hexdigest()[:16]


def cors_arguments(settings: MlflowSettings) -> list[str]:
    """``--cors-allowed-origins`` with the settings' origins, or nothing: MLflow then refuses state-changing
    API requests from every origin but localhost (``mlflow.cors.default`` in the upstream facts)."""
    if not settings.cors_allowed_origins:
        return []
    return ["--cors-allowed-origins", ",".join(settings.cors_allowed_origins)]


def mlflow_allowed_hosts(namespace: str, settings: MlflowSettings) -> str:
    """The ``--allowed-hosts`` value: the Service's names, the settings' hosts, and pod addresses.

    MLflow compares the Host header exactly, or with fnmatch when the entry has a ``*`` (mlflow 3.17.2
    ``mlflow/server/security_utils.py``, ``is_allowed_host_header``). Prometheus sends Host = the target's
    address, ``<pod IP>:5000``, so each pod address pattern is allowed with the MLflow port only.
    """
    hosts = [
        f"mlflow.{namespace}.svc.cluster.local",
        f"mlflow.{namespace}.svc",
        f"mlflow.{namespace}",
        "mlflow",
        *settings.allowed_hosts,
    ]
    pods_ = [f"{pattern}:{MLFLOW_PORT}" for pattern in settings.pod_address_patterns]
    return ",".join(hosts + [f"{host}:{MLFLOW_PORT}" for host in hosts] + pods_)


@dataclass(frozen=True)
class MlflowCredentials:
    """Credential values (plain strings here; they only ever leave as Pulumi secrets inside Secrets)."""

    admin_password: str
    flask_secret_key: str
    database_password: str
    database_url: str | None
    store_access_key_id: str
    store_secret_access_key: str
    #: The monitor's role on the bundled PostgreSQL; None: no monitor database there (sqlite, or its own URL).
    monitor_database_password: str | None = None


@dataclass(frozen=True)
class MlflowServerArgs:
    """Arguments of ``MlflowServer``.

    Attributes:
        settings: replicas, resources, database, artifact store and auth (see ``MlflowSettings``).
        namespace: namespace to create (default ``mlflow``).
        credentials: derived or configured credentials.
        client_namespaces: namespaces allowed to call MLflow and the artifact store.
        monitoring_namespace: where Prometheus runs (allowed to scrape).
        monitoring_release: the kube-prometheus-stack release the ServiceMonitor depends on (its CRDs).
    """

    settings: MlflowSettings
    namespace: str
    credentials: MlflowCredentials
    client_namespaces: tuple[str, ...] = ()
    monitoring_namespace: str = "monitoring"
    monitoring_release: pulumi.Resource | None = None
    extra_depends_on: list[pulumi.Resource] = field(default_factory=list)


def artifacts_destination(bucket: str) -> str:
    """The server's ``--artifacts-destination``: proxied ``mlflow-artifacts:/<path>`` is ``s3://<bucket>/<path>``."""
    return f"s3://{bucket}/"


class MlflowServer(pulumi.ComponentResource):
    """``mlflow server`` behind basic-auth (fail-closed, NO_PERMISSIONS default), ``--serve-artifacts``,
    ``--allowed-hosts`` set, on PostgreSQL, with an S3 artifact store; probes, PDB, NetworkPolicies and a
    ServiceMonitor."""

    tracking_uri: pulumi.Output[str]
    store_endpoint: pulumi.Output[str]
    bucket: pulumi.Output[str]
    store_secret_name: pulumi.Output[str]

    def __init__(self, name: str, args: MlflowServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN_PREFIX}:MlflowServer", name, None, opts)
        self._args = args
        settings = args.settings
        namespace = args.namespace
        service_host = f"mlflow.{namespace}.svc.cluster.local"
        depends = list(args.extra_depends_on)
        if settings.artifact_store.mode is ArtifactStoreMode.BUNDLED:
            endpoint = f"http://seaweedfs.{namespace}.svc.cluster.local:{S3_PORT}"
            depends.append(self._create_seaweedfs(name, namespace))
        else:
            endpoint = str(settings.artifact_store.endpoint)
        database_url = args.credentials.database_url
        if settings.database.mode is DatabaseMode.BUNDLED:
            depends.append(self._create_postgres(name, namespace))
            database_url = (
                f"postgresql+psycopg2://mlflow:{args.credentials.database_password}"
                f"@postgres.{namespace}.svc.cluster.local:{POSTGRES_PORT}/mlflow"
            )
        assert database_url is not None  # settings validation guarantees it for external databases
        self._create_server(name, namespace, service_host, endpoint, database_url, depends)
        self.tracking_uri = pulumi.Output.from_input(f"http://{service_host}:{MLFLOW_PORT}")
        self.store_endpoint = pulumi.Output.from_input(endpoint)
        self.bucket = pulumi.Output.from_input(settings.artifact_store.bucket)
        self.store_secret_name = pulumi.Output.from_input("artifact-store")
        self.register_outputs(
            {"tracking_uri": self.tracking_uri, "store_endpoint": self.store_endpoint, "bucket": self.bucket}
        )

    # ---- PostgreSQL ----

    def _create_postgres(self, name: str, namespace: str) -> pulumi.Resource:
        settings = self._args.settings.database
        pod_labels = labels("postgres", name)
        opts = child(self)
        monitor_password = self._args.credentials.monitor_database_password
        passwords = {"POSTGRES_PASSWORD": self._args.credentials.database_password}
        if monitor_password is not None:
            passwords[MONITOR_PASSWORD_KEY] = monitor_password
            # A Secret, not a ConfigMap: the script names the role's password variable, and nothing that
            # handles a credential is kept in a ConfigMap (policies/secrets.py).
            secret(
                self,
                "postgres-init-secret",
                "postgres-init",
                namespace,
                {"monitor.sh": POSTGRES_INIT_MONITOR},
                opts,
            )
        secret(self, "postgres-secret", "postgres", namespace, passwords, opts)
        service_account(self, "postgres", "postgres", namespace, opts)
        ready = pods.exec_probe(["pg_isready", "-U", "mlflow", "-d", "mlflow", "-h", "127.0.0.1"])
        database = pods.container(
            "postgres",
            versions.get("postgres").image,
            resources=settings.resources,
            readiness=ready,
            liveness=pods.exec_probe(
                ["pg_isready", "-U", "mlflow", "-h", "127.0.0.1"], period=20, failures=6
            ),
            startup=pods.exec_probe(["pg_isready", "-U", "mlflow", "-h", "127.0.0.1"], period=5, failures=60),
            ports={"postgres": POSTGRES_PORT},
            env={
                "POSTGRES_USER": "mlflow",
                "POSTGRES_DB": "mlflow",
                "PGDATA": "/var/lib/postgresql/data/pgdata",
            },
            secret_env={key: ("postgres", key) for key in passwords},
            mounts={"data": "/var/lib/postgresql/data", "run": "/var/run/postgresql", "tmp": "/tmp"},
            read_only_mounts={"init": POSTGRES_INIT_DIR} if monitor_password is not None else None,
            run_as_user=POSTGRES_UID,
        )
        set_password = {
            key: value
            for key, value in database.items()
            if key not in ("readinessProbe", "livenessProbe", "startupProbe", "ports")
        }
        script = POSTGRES_SET_PASSWORD + (
            POSTGRES_SET_MONITOR_PASSWORD if monitor_password is not None else ""
        )
        set_password.update(name="set-password", command=["/bin/sh", "-c"], args=[script])
        claim = pods.volume_claim("data", settings.storage_size, settings.storage_class)
        volumes = [pods.empty_dir("run", size_limit="16Mi"), pods.empty_dir("tmp", size_limit="1Gi")]
        if monitor_password is not None:
            volumes.append(pods.secret_volume("init", "postgres-init"))
        template = pods.pod_template(
            pod_labels,
            [database],
            service_account="postgres",
            volumes=volumes,
            init_containers=[set_password],
            fs_group=POSTGRES_UID,
            termination_grace_seconds=60,
        )
        template["metadata"]["annotations"] = {CHECKSUM_ANNOTATION: credentials_checksum(*passwords.values())}
        statefulset = k8s.apps.v1.StatefulSet(
            f"{name}-postgres",
            metadata={"name": "postgres", "namespace": namespace, "labels": pod_labels},
            spec={
                "serviceName": "postgres",
                "replicas": 1,
                "selector": {"matchLabels": selector("postgres", name)},
                "template": template,
                "volumeClaimTemplates": [claim],
            },
            opts=opts,
        )
        k8s.core.v1.Service(
            f"{name}-postgres-service",
            metadata={"name": "postgres", "namespace": namespace, "labels": pod_labels},
            spec=pods.cluster_ip_service_spec(selector("postgres", name), {"postgres": POSTGRES_PORT}),
            opts=opts,
        )
        # The model monitor's replicas keep their store in the `monitor` database.
        monitor = (
            [
                {
                    **pods.namespace_selector(self._args.monitoring_namespace),
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "model-monitor"}},
                }
            ]
            if monitor_password is not None
            else []
        )
        network_policy(
            self,
            "postgres-allow",
            pods.allow_policy(
                "postgres-allow",
                namespace,
                selector("postgres", name),
                ingress=[
                    ([{"podSelector": {"matchLabels": selector("mlflow", name)}}, *monitor], [POSTGRES_PORT])
                ],
            ),
            opts,
        )
        return statefulset

    # ---- SeaweedFS (bundled S3 store)
    # ------------------------------------------------------------------------

    def _create_seaweedfs(self, name: str, namespace: str) -> pulumi.Resource:
        store = self._args.settings.artifact_store
        credentials = self._args.credentials
        pod_labels = labels("seaweedfs", name)
        opts = child(self)
        identities = {
            "identities": [
                {
                    "name": "mlflow",
                    "credentials": [
                        {
                            "accessKey": credentials.store_access_key_id,
                            "secretKey": credentials.store_secret_access_key,
                        }
                    ],
                    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                }
            ]
        }
        secret(
            self,
            "seaweedfs-config",
            "seaweedfs-s3-config",
            namespace,
            {"s3.json": json.dumps(identities)},
            opts,
        )
        service_account(self, "seaweedfs", "seaweedfs", namespace, opts)
        server = pods.container(
            "seaweedfs",
            versions.get("seaweedfs").image,
            resources=store.resources,
            readiness=pods.tcp_probe("s3"),
            liveness=pods.tcp_probe("s3", period=20, failures=6),
            startup=pods.tcp_probe("s3", period=5, failures=60),
            command=["weed"],
            args=[
                "server",
                "-dir=/data",
                "-ip.bind=0.0.0.0",
                f"-master.port={SEAWEEDFS_MASTER_PORT}",
                f"-filer.port={SEAWEEDFS_FILER_PORT}",
                f"-master.volumeSizeLimitMB={store.volume_size_limit_mb}",
                # weed server's default is 8 volumes whatever the disk: count the PVC instead.
                f"-volume.max={store.max_volumes}",
                "-s3",
                f"-s3.port={S3_PORT}",
                "-s3.config=/etc/seaweedfs/s3.json",
                f"-metricsPort={SEAWEEDFS_METRICS_PORT}",
            ],
            ports={
                "s3": S3_PORT,
                "master": SEAWEEDFS_MASTER_PORT,
                "master-grpc": SEAWEEDFS_MASTER_GRPC_PORT,
                "filer": SEAWEEDFS_FILER_PORT,
                "filer-grpc": SEAWEEDFS_FILER_GRPC_PORT,
                "metrics": SEAWEEDFS_METRICS_PORT,
            },
            mounts={"data": "/data", "tmp": "/tmp"},
            read_only_mounts={"s3-config": "/etc/seaweedfs"},
            run_as_user=SEAWEEDFS_UID,
        )
        claim = pods.volume_claim("data", store.storage_size, store.storage_class)
        statefulset = k8s.apps.v1.StatefulSet(
            f"{name}-seaweedfs",
            metadata={"name": "seaweedfs", "namespace": namespace, "labels": pod_labels},
            spec={
                "serviceName": "seaweedfs",
                "replicas": 1,
                "selector": {"matchLabels": selector("seaweedfs", name)},
                "template": pods.pod_template(
                    pod_labels,
                    [server],
                    service_account="seaweedfs",
                    volumes=[pods.empty_dir("tmp"), pods.secret_volume("s3-config", "seaweedfs-s3-config")],
                    fs_group=SEAWEEDFS_UID,
                ),
                "volumeClaimTemplates": [claim],
            },
            opts=opts,
        )
        k8s.core.v1.Service(
            f"{name}-seaweedfs-service",
            metadata={"name": "seaweedfs", "namespace": namespace, "labels": pod_labels},
            spec=pods.cluster_ip_service_spec(
                selector("seaweedfs", name),
                {
                    "s3": S3_PORT,
                    "master": SEAWEEDFS_MASTER_PORT,
                    "master-grpc": SEAWEEDFS_MASTER_GRPC_PORT,
                    "filer": SEAWEEDFS_FILER_PORT,
                    "filer-grpc": SEAWEEDFS_FILER_GRPC_PORT,
                },
            ),
            opts=opts,
        )
        # The bucket must exist before MLflow writes to it: one Job asks the SeaweedFS shell to create it.
        job_labels = labels("seaweedfs-bucket", name)
        job_container = pods.container(
            "create-bucket",
            versions.get("seaweedfs").image,
            resources=Resources(
                cpu_request="50m", memory_request="64Mi", cpu_limit="500m", memory_limit="256Mi"
            ),
            readiness=pods.tcp_probe(SEAWEEDFS_MASTER_PORT),
            liveness=pods.tcp_probe(SEAWEEDFS_MASTER_PORT),
            command=["/bin/sh", "-c"],
            # -filer given so the shell uses the Service, not the pod address the master would hand out.
            args=[
                f"echo 's3.bucket.create -name {store.bucket}' | weed shell"
                f" -master=seaweedfs:{SEAWEEDFS_MASTER_PORT} -filer=seaweedfs:{SEAWEEDFS_FILER_PORT}"
            ],
            mounts={"tmp": "/tmp"},
            run_as_user=SEAWEEDFS_UID,
        )
        # Probes are not allowed on Job pods' semantics we rely on; drop them (the Job has no long-lived
        # server).
        del job_container["readinessProbe"], job_container["livenessProbe"]
        k8s.batch.v1.Job(
            f"{name}-create-bucket",
            metadata={
                # No ttlSecondsAfterFinished: a deleted Job is recreated by every `pulumi up` (a perpetual
                # diff); the name is keyed by what the Job does instead (naming.keyed_name).
                "name": keyed_name("seaweedfs-create-bucket", job_container["image"], *job_container["args"]),
                "namespace": namespace,
                "labels": job_labels,
            },
            spec={
                "backoffLimit": 10,
                "template": pods.pod_template(
                    job_labels,
                    [job_container],
                    service_account="seaweedfs",
                    volumes=[pods.empty_dir("tmp")],
                    fs_group=SEAWEEDFS_UID,
                    restart_policy="OnFailure",
                ),
            },
            opts=child(self, [statefulset]),
        )
        peers = [{"podSelector": {}}] + [pods.namespace_selector(ns) for ns in self._args.client_namespaces]
        network_policy(
            self,
            "seaweedfs-allow",
            pods.allow_policy(
                "seaweedfs-allow",
                namespace,
                selector("seaweedfs", name),
                ingress=[
                    (peers, [S3_PORT]),
                    # Only the bucket Job runs `weed shell`: HTTP and gRPC of the master and the filer.
                    (
                        [{"podSelector": {"matchLabels": selector("seaweedfs-bucket", name)}}],
                        SEAWEEDFS_SHELL_PORTS,
                    ),
                    ([pods.namespace_selector(self._args.monitoring_namespace)], [SEAWEEDFS_METRICS_PORT]),
                ],
            ),
            opts,
        )
        network_policy(
            self,
            "seaweedfs-bucket-egress",
            pods.allow_policy(
                "seaweedfs-bucket-egress",
                namespace,
                selector("seaweedfs-bucket", name),
                egress=[
                    (
                        [{"podSelector": {"matchLabels": selector("seaweedfs", name)}}],
                        SEAWEEDFS_SHELL_PORTS,
                    )
                ],
            ),
            opts,
        )
        return statefulset

    # ---- the MLflow server
    # -----------------------------------------------------------------------------------

    def _create_server(
        self,
        name: str,
        namespace: str,
        service_host: str,
        endpoint: str,
        database_url: str,
        depends: list[pulumi.Resource],
    ) -> None:
        settings = self._args.settings
        credentials = self._args.credentials
        pod_labels = labels("mlflow", name)
        opts = child(self)
        auth_ini = basic_auth_ini(
            default_permission=settings.auth.default_permission,
            database_uri=database_url,
            admin_username=settings.auth.admin_username,
            admin_password=credentials.admin_password,
        )
        secret(
            self,
            "server-secret",
            "mlflow-server",
            namespace,
            {
                "backend-store-uri": database_url,
                "flask-secret-key": credentials.flask_secret_key,
                "admin-password": credentials.admin_password,
                "basic_auth.ini": auth_ini,
            },
            opts,
        )
        secret(
            self,
            "store-secret",
            "artifact-store",
            namespace,
            {
                "AWS_ACCESS_KEY_ID": credentials.store_access_key_id,
                "AWS_SECRET_ACCESS_KEY": credentials.store_secret_access_key,
            },
            opts,
        )
        # Prometheus scrapes /metrics behind basic auth; the operator reads these keys from the
        # ServiceMonitor's namespace. The admin is the only user that exists at deploy time, and with
        # MLFLOW_BASIC_AUTH_FAIL_CLOSED a route without a validator (/metrics) is refused to any other user.
        secret(
            self,
            "metrics-auth",
            METRICS_AUTH_SECRET,
            namespace,
            {"username": settings.auth.admin_username, "password": credentials.admin_password},
            opts,
        )
        service_account(self, "server", "mlflow", namespace, opts)
        allowed_hosts = mlflow_allowed_hosts(namespace, settings)
        image = settings.image or images.reference("mlflow")
        server = pods.container(
            "mlflow",
            image,
            resources=settings.resources,
            readiness=pods.http_probe("/health", "http", host_header=service_host),
            liveness=pods.http_probe("/health", "http", host_header=service_host, period=20, failures=6),
            startup=pods.http_probe("/health", "http", host_header=service_host, period=5, failures=60),
            command=["mlflow", "server"],
            args=[
                "--host",
                "0.0.0.0",
                "--port",
                str(MLFLOW_PORT),
                "--workers",
                str(settings.workers),
                # No --backend-store-uri: `mlflow server` reads MLFLOW_BACKEND_STORE_URI (Secret-backed) from
                # the environment; as an argument the password would show in /proc/<pid>/cmdline and ps.
                "--serve-artifacts",
                "--artifacts-destination",
                artifacts_destination(settings.artifact_store.bucket),
                "--app-name",
                "basic-auth",
                "--allowed-hosts",
                allowed_hosts,
                "--x-frame-options",
                "DENY",
                "--expose-prometheus",
                "/tmp/prometheus",
                *cors_arguments(settings),
            ],
            ports={"http": MLFLOW_PORT},
            env={
                "MLFLOW_S3_ENDPOINT_URL": endpoint,
                "AWS_DEFAULT_REGION": settings.artifact_store.region,
                "MLFLOW_AUTH_CONFIG_PATH": "/etc/mlflow-auth/basic_auth.ini",
                "MLFLOW_BASIC_AUTH_FAIL_CLOSED": "true",
                "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                "HOME": "/tmp",
            },
            secret_env={
                "MLFLOW_BACKEND_STORE_URI": ("mlflow-server", "backend-store-uri"),
                "MLFLOW_FLASK_SERVER_SECRET_KEY": ("mlflow-server", "flask-secret-key"),
                "MLFLOW_AUTH_ADMIN_PASSWORD": ("mlflow-server", "admin-password"),
                "AWS_ACCESS_KEY_ID": ("artifact-store", "AWS_ACCESS_KEY_ID"),
                "AWS_SECRET_ACCESS_KEY": ("artifact-store", "AWS_SECRET_ACCESS_KEY"),
            },
            mounts={"tmp": "/tmp"},
            read_only_mounts={"auth": "/etc/mlflow-auth"},
        )
        set_admin = {
            key: value
            for key, value in server.items()
            if key not in ("readinessProbe", "livenessProbe", "startupProbe", "ports", "args")
        }
        set_admin.update(name="set-admin-password", command=["python", "-c", MLFLOW_SET_ADMIN_PASSWORD])
        template = pods.pod_template(
            pod_labels,
            [server],
            service_account="mlflow",
            volumes=[pods.empty_dir("tmp", size_limit="2Gi"), pods.secret_volume("auth", "mlflow-server")],
            init_containers=[set_admin],
        )
        template["metadata"]["annotations"] = {
            CHECKSUM_ANNOTATION: credentials_checksum(
                database_url, credentials.admin_password, credentials.flask_secret_key
            )
        }
        k8s.apps.v1.Deployment(
            f"{name}-server",
            metadata={"name": "mlflow", "namespace": namespace, "labels": pod_labels},
            spec={
                "replicas": settings.replicas,
                "selector": {"matchLabels": selector("mlflow", name)},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "template": template,
            },
            opts=child(self, depends),
        )
        k8s.core.v1.Service(
            f"{name}-service",
            metadata={"name": "mlflow", "namespace": namespace, "labels": pod_labels},
            spec=pods.cluster_ip_service_spec(selector("mlflow", name), {"http": MLFLOW_PORT}),
            opts=opts,
        )
        budget = {"minAvailable": 1} if settings.replicas > 1 else {"maxUnavailable": 1}
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata={"name": "mlflow", "namespace": namespace},
            spec={"selector": {"matchLabels": selector("mlflow", name)}, **budget},
            opts=opts,
        )
        callers = [{"podSelector": {}}] + [pods.namespace_selector(ns) for ns in self._args.client_namespaces]
        callers.append(pods.namespace_selector(self._args.monitoring_namespace))
        egress = [
            ([{"podSelector": {"matchLabels": selector("postgres", name)}}], [POSTGRES_PORT]),
            ([{"podSelector": {"matchLabels": selector("seaweedfs", name)}}], [S3_PORT]),
        ]
        if settings.database.mode is DatabaseMode.EXTERNAL:
            egress.append(([pods.outside_cluster()], [POSTGRES_PORT, 3306]))
        if settings.artifact_store.mode is ArtifactStoreMode.EXTERNAL:
            egress.append(([pods.outside_cluster()], [443, 80]))
        network_policy(
            self,
            "server-allow",
            pods.allow_policy(
                "mlflow-allow",
                namespace,
                selector("mlflow", name),
                ingress=[(callers, [MLFLOW_PORT])],
                egress=egress,
            ),
            opts,
        )
        monitor_opts = child(self, [self._args.monitoring_release] if self._args.monitoring_release else [])
        create(
            f"{name}-service-monitor",
            service_monitor(
                "mlflow",
                namespace,
                selector=selector("mlflow", name),
                port="http",
                path="/metrics",
                labels=labels("mlflow", name),
                basic_auth_secret=METRICS_AUTH_SECRET,
            ),
            monitor_opts,
        )
