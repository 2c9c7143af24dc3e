"""Typed, validated settings: the one module that knows every config key and environment variable.

Two parts:
- ``LocalSettings``: the local target (``mlops up --local``), read from ``MLOPS_*`` environment variables.
- the platform description read from Pulumi stack config (added by the Kubernetes target).

Nothing here runs at import time.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from platform_components import versions
from platform_components.errors import ConfigError

ENV_PREFIX = "MLOPS_"


def format_validation_error(error: ValidationError, *, prefix: str, source: str) -> str:
    """One message per problem: the key (with its prefix), the value received and the expected form."""
    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"])
        value = problem.get("input")
        shown = "<missing>" if problem["type"] == "missing" else repr(value)
        lines.append(f"{prefix}{key}: {problem['msg']} (got {shown}); fix it in {source}")
    return "\n".join(lines)


class LocalSettings(BaseModel):
    """The local target: processes on one machine, state under ``state_dir``.

    Every field can be set with an environment variable ``MLOPS_<FIELD>`` (upper case), e.g.
    ``MLOPS_MLFLOW_PORT=5001``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    state_dir: Path = Field(Path(".mlops"), description="Folder for the database, artifacts, logs, PIDs.")
    host: str = Field("127.0.0.1", description="Interface every local process binds; loopback by default.")
    mlflow_port: int = Field(5000, ge=1, le=65535, description="MLflow tracking server port.")
    serving_http_port: int = Field(8080, ge=1, le=65535, description="MLServer REST (V2) port.")
    serving_grpc_port: int = Field(8081, ge=1, le=65535, description="MLServer gRPC port.")
    serving_metrics_port: int = Field(8082, ge=1, le=65535, description="MLServer Prometheus metrics port.")
    monitor_port: int = Field(8090, ge=1, le=65535, description="Monitor service: feedback and /metrics.")
    startup_timeout_seconds: float = Field(120.0, gt=0, description="How long `up` waits for health.")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> LocalSettings:
        """Read ``MLOPS_*`` variables, then apply explicit overrides (command-line flags win).

        Raises:
            ConfigError: naming the variable, the value and the expected form.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            variable = f"{ENV_PREFIX}{name.upper()}"
            if variable in environ:
                values[name] = environ[variable]
        values.update({key: value for key, value in overrides.items() if value is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            lines = []
            for problem in error.errors():
                field = str(problem["loc"][0]) if problem["loc"] else "?"
                lines.append(
                    f"{ENV_PREFIX}{field.upper()} (or the matching flag): {problem['msg']} "
                    f"(got {problem.get('input')!r})"
                )
            raise ConfigError("\n".join(lines)) from None

    @property
    def tracking_uri(self) -> str:
        return f"http://{self.host}:{self.mlflow_port}"

    @property
    def catalog_path(self) -> Path:
        """The local target's catalog (``docs/catalog.md``): the same mapping as ``mlops:catalog``."""
        return self.state_dir / "catalog.yaml"

    @property
    def inference_url(self) -> str:
        return f"http://{self.host}:{self.serving_http_port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{self.host}:{self.monitor_port}"


# ----
# The platform description (Kubernetes target), read from Pulumi stack config by ``load_platform_settings``.
# ----

CONFIG_NAMESPACE = "mlops"
"""Pulumi config namespace: every key is ``mlops:<key>``."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_DURATION = re.compile(r"^[0-9]+(ms|s|m|h|d|w|y)$")


def _dns_label(value: str, *, max_length: int = 63) -> str:
    """Validate a Kubernetes DNS-1123 label (namespace, Service and most object names)."""
    if len(value) > max_length or not _DNS_LABEL.match(value):
        raise ValueError(
            f"must be a Kubernetes name: lower-case letters, digits and '-', starting and ending with a "
            f"letter or "
            f"digit, at most {max_length} characters (e.g. 'credit-default')"
        )
    return value


def _quantity(value: str) -> str:
    if not _QUANTITY.match(value):
        raise ValueError("must be a Kubernetes quantity such as '250m', '1', '512Mi' or '2Gi'")
    return value


def _own_namespace(value: str) -> str:
    _dns_label(value)
    if value in ("default", "kube-system", "kube-public", "kube-node-lease"):
        raise ValueError(f"must be a namespace of its own, not the built-in {value!r} (e.g. 'mlflow')")
    return value


def _pinned_image(value: str) -> str:
    name, _, tag = value.rpartition(":")
    if "@sha256:" in value:
        return value
    if not name or "/" in tag or not tag or tag == "latest":
        raise ValueError(
            "must be an image pinned by tag (not 'latest') or digest, e.g. 'ghcr.io/org/monitor:0.1.0'"
        )
    return value


KubernetesName = Annotated[str, AfterValidator(_dns_label)]
NamespaceName = Annotated[str, AfterValidator(_own_namespace)]
PinnedImage = Annotated[str, AfterValidator(_pinned_image)]
"""A DNS-1123 label of at most 63 characters."""
ModelName = Annotated[str, AfterValidator(lambda value: _dns_label(value, max_length=40))]
"""Model deployment names are shorter: derived object names append suffixes and must stay <= 63."""
Quantity = Annotated[str, AfterValidator(_quantity)]


def _duration(value: str) -> str:
    if not _DURATION.match(value):
        raise ValueError("must be a Prometheus duration such as '15d', '12h' or '30m'")
    return value


Duration = Annotated[str, AfterValidator(_duration)]


class _Strict(BaseModel):
    """Base for every platform model: unknown keys are errors, values are immutable once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _parse_quantity(value: str) -> float:
    """A quantity in base units (cores or bytes) so requests can be compared with limits."""
    suffixes = {
        "m": 1e-3,
        "k": 1e3,
        "M": 1e6,
        "G": 1e9,
        "T": 1e12,
        "P": 1e15,
        "E": 1e18,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
        "Pi": 2**50,
        "Ei": 2**60,
    }
    match = _QUANTITY.match(value)
    if match is None:
        raise ValueError(f"not a quantity: {value!r}")
    return float(match.group(1)) * suffixes.get(match.group(3) or "", 1.0)


class Resources(_Strict):
    """CPU and memory requests and limits of one container (Kubernetes quantities)."""

    cpu_request: Quantity = Field("100m", description="CPU the scheduler reserves.")
    memory_request: Quantity = Field("256Mi", description="Memory the scheduler reserves.")
    cpu_limit: Quantity = Field("1", description="CPU ceiling; throttled above.")
    memory_limit: Quantity = Field("512Mi", description="Memory ceiling; OOM-killed above.")

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Resources:
        if _parse_quantity(self.cpu_request) > _parse_quantity(self.cpu_limit):
            raise ValueError(
                f"cpu_request {self.cpu_request} is above cpu_limit {self.cpu_limit}; lower the request"
            )
        if _parse_quantity(self.memory_request) > _parse_quantity(self.memory_limit):
            raise ValueError(
                f"memory_request {self.memory_request} is above memory_limit {self.memory_limit}; lower "
                f"the request"
            )
        return self

    def to_kubernetes(self) -> dict[str, dict[str, str]]:
        """The ``resources`` block of a container spec."""
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


class ClusterMode(StrEnum):
    """How the platform gets its cluster."""

    EXISTING = "existing"
    KIND = "kind"
    EKS = "eks"


class EksSettings(_Strict):
    """EKS cluster (needs the ``eks`` extra: pulumi-eks)."""

    region: str = Field("eu-west-1", description="AWS region.")
    kubernetes_version: str = Field(
        versions.KUBERNETES_MINOR,
        pattern=r"^1\.[0-9]{2}$",
        description="Control-plane version (default: the platform's target; check that EKS offers it).",
    )
    instance_type: str = Field("m6i.xlarge", description="Node instance type.")
    desired_nodes: int = Field(3, ge=1, le=100, description="Node group size.")


class ClusterSettings(_Strict):
    """Where the platform runs. ``existing`` (the default) uses a kubeconfig and context."""

    mode: ClusterMode = Field(ClusterMode.EXISTING, description="existing | kind | eks.")
    kubeconfig: str | None = Field(
        None, description="Path of the kubeconfig; None uses the provider's default."
    )
    context: str | None = Field(None, description="Context in the kubeconfig; None uses the current context.")
    kind_name: KubernetesName = Field(
        "mlops", description="kind cluster name (mode kind): context kind-<name>."
    )
    eks: EksSettings = Field(default_factory=EksSettings, description="Used when mode is eks.")


class Namespaces(_Strict):
    """Namespaces of the platform's parts; Kubeflow Pipelines' is fixed upstream (``KfpSettings``)."""

    mlflow: NamespaceName = "mlflow"
    serving: NamespaceName = Field("seldon", description="Seldon runtime, Servers and Models live here.")
    monitoring: NamespaceName = "monitoring"


class DatabaseMode(StrEnum):
    BUNDLED = "bundled"
    EXTERNAL = "external"


class DatabaseSettings(_Strict):
    """MLflow's backend store: a bundled PostgreSQL StatefulSet or an external database.

    The external URL is a secret (``mlops:mlflow_database_url``), never a plain value here.
    """

    mode: DatabaseMode = Field(DatabaseMode.BUNDLED, description="bundled | external.")
    storage_size: Quantity = Field("10Gi", description="PVC size of the bundled PostgreSQL.")
    storage_class: str | None = Field(
        None, description="StorageClass of the PVC; None uses the cluster default."
    )
    resources: Resources = Field(
        default_factory=lambda: Resources(cpu_request="250m", memory_request="512Mi", memory_limit="1Gi")
    )


class ArtifactStoreMode(StrEnum):
    BUNDLED = "bundled"
    EXTERNAL = "external"


class ArtifactStoreSettings(_Strict):
    """S3-compatible object store for MLflow artifacts (and the models Seldon loads).

    ``bundled`` runs SeaweedFS (Apache-2.0, what Kubeflow Pipelines itself moved to); ``external`` needs
    ``endpoint`` and the secrets ``mlops:artifact_store_access_key_id`` /
    ``mlops:artifact_store_secret_access_key``.
    """

    mode: ArtifactStoreMode = Field(ArtifactStoreMode.BUNDLED, description="bundled | external.")
    endpoint: str | None = Field(
        None, description="S3 endpoint URL (external mode), e.g. https://s3.eu-west-1.amazonaws.com."
    )
    bucket: KubernetesName = Field("mlflow-artifacts", description="Bucket for MLflow artifacts.")
    region: str = Field("us-east-1", description="S3 region (SeaweedFS ignores it).")
    storage_size: Quantity = Field("20Gi", description="PVC size of the bundled store.")
    storage_class: str | None = None
    volume_size_limit_mb: int = Field(
        1024,
        ge=64,
        le=30000,
        description="SeaweedFS volume size limit in MiB (-master.volumeSizeLimitMB); with storage_size it "
        "sets how many volumes the bundled store may create (-volume.max).",
    )
    resources: Resources = Field(default_factory=Resources)

    @property
    def max_volumes(self) -> int:
        """How many SeaweedFS volumes fit on the PVC, one volume's worth kept free for the filer's metadata.

        ``weed server`` defaults ``-volume.max`` to 8 whatever the disk
        (seaweedfs/seaweedfs weed/command/server.go@4.34): a 20Gi PVC
        would stop taking writes at 8 GiB without this.
        """
        return int(_parse_quantity(self.storage_size) // (self.volume_size_limit_mb * 2**20)) - 1

    @model_validator(mode="after")
    def _room_for_volumes(self) -> ArtifactStoreSettings:
        if self.mode is ArtifactStoreMode.BUNDLED and self.max_volumes < 1:
            raise ValueError(
                f"storage_size {self.storage_size!r} holds fewer than two SeaweedFS volumes of "
                f"volume_size_limit_mb={self.volume_size_limit_mb} (one is kept free for metadata): raise "
                "mlops:mlflow.artifact_store.storage_size or lower "
                "mlops:mlflow.artifact_store.volume_size_limit_mb"
            )
        return self

    @model_validator(mode="after")
    def _endpoint_for_external(self) -> ArtifactStoreSettings:
        if self.mode is ArtifactStoreMode.EXTERNAL:
            if not self.endpoint:
                raise ValueError(
                    "endpoint is required when mode is external, e.g. 'https://s3.eu-west-1.amazonaws.com'"
                )
            if not self.endpoint.startswith(("https://", "http://")):
                raise ValueError(
                    f"endpoint {self.endpoint!r} must start with https:// (or http:// in a private network)"
                )
        return self


class AuthSettings(_Strict):
    """MLflow basic-auth. It is always on and fails closed; these settings only shape it."""

    admin_username: KubernetesName = Field("admin", description="MLflow admin user.")
    default_permission: Literal["NO_PERMISSIONS", "READ"] = Field(
        "NO_PERMISSIONS", description="Permission new users get on others' resources (MLflow ships READ)."
    )


OurImageName = Literal["mlflow", "monitor", "serving", "credit-default-pipeline"]
"""The images the platform builds from docker/ (``platform_components/images.py`` lists them)."""
_REGISTRY_PREFIX = re.compile(
    r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*$"
)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def _registry_prefix(value: str) -> str:
    if "://" in value or value.endswith("/") or not _REGISTRY_PREFIX.match(value):
        raise ValueError(
            "must be a registry host with an optional path, no scheme, tag or trailing '/', "
            "e.g. 'registry.example.com/mlops' or 'ghcr.io/my-org'"
        )
    return value


def _digest(value: str) -> str:
    if not _DIGEST.match(value):
        raise ValueError(
            "must be an image digest 'sha256:<64 hex digits>' (from `docker push` or `crane digest`)"
        )
    return value


RegistryPrefix = Annotated[str, AfterValidator(_registry_prefix)]
ImageDigest = Annotated[str, AfterValidator(_digest)]


class ImagesSettings(_Strict):
    """Where images come from: ours (built by ``mlops images build|push``) and upstream's (mirror).

    Our images are ``<registry>/<name>:<tag>`` (``@<digest>`` added when ``digests`` has the name); the image
    fields of ``mlflow``, ``seldon`` and ``monitoring.monitor`` still override one image each.
    """

    registry: RegistryPrefix = Field(
        "ghcr.io/mlops-platform",
        description="Registry prefix our images are pushed to and pulled from (`mlops images push`).",
    )
    pull_secrets: tuple[KubernetesName, ...] = Field(
        (),
        description="Secrets of type kubernetes.io/dockerconfigjson set as imagePullSecrets on every pod the "
        "platform renders and passed to the charts; create them in each namespace.",
    )
    mirror: RegistryPrefix | None = Field(
        None,
        description="Registry prefix mirroring every upstream image (air gap): "
        "'docker.io/library/postgres:16' is pulled as '<mirror>/library/postgres:16'; "
        "None pulls from upstream's registries.",
    )
    digests: dict[OurImageName, ImageDigest] = Field(
        default_factory=dict, description="Pin our images by digest once pushed: image name -> sha256:..."
    )


class MlflowSettings(_Strict):
    """The MLflow tracking server and model registry."""

    image: PinnedImage | None = Field(
        None,
        description="Image override; None uses ours, <images.registry>/mlflow (docker/mlflow.Dockerfile).",
    )
    replicas: int = Field(2, ge=1, le=20, description="Server replicas (a PodDisruptionBudget keeps one up).")
    workers: int = Field(2, ge=1, le=16, description="uvicorn workers per replica.")
    resources: Resources = Field(
        default_factory=lambda: Resources(
            cpu_request="250m", memory_request="1Gi", cpu_limit="2", memory_limit="2Gi"
        )
    )
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    artifact_store: ArtifactStoreSettings = Field(default_factory=ArtifactStoreSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    allowed_hosts: tuple[str, ...] = Field(
        (), description="Extra Host headers MLflow accepts (e.g. your ingress host)."
    )
    cors_allowed_origins: tuple[str, ...] = Field(
        (),
        description="Browser origins ('https://host[:port]') besides localhost whose pages may send MLflow "
        "state-changing API requests (`mlflow server --cors-allowed-origins`), e.g. your ingress's "
        "'https://mlflow.example.com'. Empty (the default): MLflow refuses them from every other origin. "
        "'*' is refused: it would let any site's page write to the registry.",
    )
    pod_address_patterns: tuple[str, ...] = Field(
        ("10.*", *[f"172.{i}.*" for i in range(16, 32)], "192.168.*"),
        min_length=1,
        description="fnmatch patterns of pod IPs (RFC 1918 by default, as MLflow's own default): Prometheus "
        "scrapes a pod with Host <pod IP>:5000, so MLflow allows '<pattern>:5000'. Set your pod CIDR's, "
        "e.g. ['100.64.*'].",
    )

    @field_validator("cors_allowed_origins")
    @classmethod
    def _cors_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+", origin):
                raise ValueError(
                    f"cors_allowed_origins entry {origin!r} must be one origin, scheme and host with an "
                    "optional port and no path or wildcard, e.g. 'https://mlflow.example.com'; set "
                    "mlops:mlflow.cors_allowed_origins"
                )
        return value

    @field_validator("pod_address_patterns")
    @classmethod
    def _address_patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            if not re.fullmatch(r"[0-9a-fA-F:.\[\]*]+", pattern) or pattern.strip("*.:") == "":
                raise ValueError(
                    f"pod_address_patterns entry {pattern!r} must be an IP address pattern such as '10.*' "
                    "(a bare '*' would accept any Host header); set mlops:mlflow.pod_address_patterns"
                )
        return value


class KfpSettings(_Strict):
    """Kubeflow Pipelines standalone."""

    version: str = Field(
        "2.17.0", pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$", description="Manifests ref; floor 2.17.0."
    )
    namespace: Literal["kubeflow"] = Field(
        "kubeflow", description="Hard-coded upstream in cluster-scoped-resources and every env overlay."
    )
    manifests_path: str | None = Field(
        None,
        description=(
            "Local copy of KFP's manifests/kustomize folder (air gap): holds cluster-scoped-resources/ "
            "and "
            "env/platform-agnostic/ with their Argo bases made local. None applies the remote kustomize refs "
            "at `version`."
        ),
    )
    cache_image: PinnedImage = Field(
        "ghcr.io/containerd/busybox:1.36",
        description=(
            "Image KFP's cache webhook runs in place of a cached step; upstream leaves it untagged "
            "(pipeline-install-config cacheImage), which pulls :latest."
        ),
    )
    pipeline_root_prefix: str = Field(
        "pipelines",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$",
        description="Key prefix of pipeline roots in the artifact bucket (s3://<bucket>/<prefix>).",
    )

    @model_validator(mode="after")
    def _floor(self) -> KfpSettings:
        if tuple(int(part) for part in self.version.split(".")) < (2, 17, 0):
            raise ValueError(
                f"version {self.version} is below the CVE floor 2.17.0 (CVE-2026-54745); use 2.17.0"
            )
        if self.manifests_path is not None and not Path(self.manifests_path).is_absolute():
            raise ValueError(
                f"manifests_path {self.manifests_path!r} must be an absolute path (the Pulumi program runs "
                "from infra/), e.g. /srv/mirror/kubeflow-pipelines-2.17.0/manifests/kustomize"
            )
        return self


class ServerSettings(_Strict):
    """One Seldon ``Server`` running MLServer, where Models with ``requirements: [mlflow]`` are scheduled."""

    name: KubernetesName = Field("mlserver-mlflow", description="Server name; models pin to it.")
    replicas: int = Field(1, ge=1, le=50)
    resources: Resources = Field(
        default_factory=lambda: Resources(
            cpu_request="500m", memory_request="2Gi", cpu_limit="2", memory_limit="4Gi"
        )
    )


class SeldonSettings(_Strict):
    """Seldon Core 2 (BSL 1.1 from 2.7: production use needs a licence from Seldon)."""

    chart_version: str | None = Field(None, description="Chart version override; None uses versions.py.")
    servers: tuple[ServerSettings, ...] = Field((ServerSettings(),), min_length=1)
    serving_image: PinnedImage | None = Field(
        None,
        description="MLServer with our monitored runtime; None uses ours, <images.registry>/serving "
        "(docker/serving.Dockerfile).",
    )
    prediction_log_limit_bytes: int = Field(
        512 * 1024 * 1024,
        ge=16 * 1024 * 1024,
        description="Disk bound of each model's prediction log on a Server (unshipped records included); "
        "shipped segments are deleted above half of it.",
    )
    prediction_log_volume_size: Quantity = Field(
        "4Gi",
        description="Size of each Server pod's own prediction-log volume (a generic ephemeral volume, apart "
        "from the models volume Seldon mounts read-only in the mlserver container); it must hold "
        "prediction_log_limit_bytes for every model placed on the Server.",
    )
    operator_namespace: NamespaceName = Field(
        "seldon-system",
        description="Namespace of the Seldon operator (setup chart, SeldonConfig, ServerConfigs). The "
        "operator's Deployment drops no capabilities and no value reaches it, so this namespace enforces "
        "Pod Security 'baseline'; the serving namespace keeps 'restricted'.",
    )

    @model_validator(mode="after")
    def _unique_servers(self) -> SeldonSettings:
        names = [server.name for server in self.servers]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"server names must be unique; repeated: {', '.join(duplicates)}")
        if _parse_quantity(self.prediction_log_volume_size) < self.prediction_log_limit_bytes:
            raise ValueError(
                f"prediction_log_volume_size {self.prediction_log_volume_size} is smaller than "
                f"prediction_log_limit_bytes ({self.prediction_log_limit_bytes}): set "
                "mlops:seldon.prediction_log_volume_size to at least one model's log bound, e.g. 4Gi"
            )
        return self


class GrafanaSettings(_Strict):
    enabled: bool = True
    admin_user: str = Field("admin", min_length=1)
    dashboards_per_config_map: int = Field(
        50, ge=1, le=200, description="Model dashboards are sharded into ConfigMaps (1 MiB object limit)."
    )


class MonitorStoreMode(StrEnum):
    """Where the cluster's monitor keeps its state (leases, ingest positions, results, decisions, labels)."""

    POSTGRESQL = "postgresql"
    SQLITE = "sqlite"


class MonitorSettings(_Strict):
    """The platform's model monitor service: one for every model (not one per model: see ModelDeployment).

    It serves ``/v2/feedback`` and ``/metrics`` and checks every model every ``check_interval_seconds``.
    """

    image: PinnedImage | None = Field(
        None, description="Override; None uses ours, <images.registry>/monitor (docker/monitor.Dockerfile)."
    )
    check_interval_seconds: int = Field(
        900, ge=60, le=86400, description="Seconds between checks of every model."
    )
    storage_size: Quantity = Field(
        "10Gi", description="PVC for the monitor's state dir (the store's file when store is sqlite)."
    )
    store: MonitorStoreMode = Field(
        MonitorStoreMode.POSTGRESQL,
        description="postgresql: the platform's PostgreSQL, shared by the monitor's replicas (the bundled "
        "one: database `monitor` with its own role; an external MLflow database: the URL in the secret "
        "mlops:monitor_database_url) | sqlite: a file on the monitor's PVC (one replica).",
    )
    resources: Resources = Field(
        default_factory=lambda: Resources(cpu_request="250m", memory_request="512Mi", memory_limit="2Gi")
    )
    # The Service `ml-pipeline` (port `http` 8888) in KFP's fixed namespace `kubeflow`: kubeflow/pipelines
    # manifests/kustomize/base/pipeline/ml-pipeline-apiserver-service.yaml and env/platform-agnostic
    # kustomization.yaml (namespace: kubeflow)@2.17.0.
    kfp_host: str = Field(
        "http://ml-pipeline.kubeflow.svc.cluster.local:8888",
        description="KFP API the monitor submits retrains to; default: the ml-pipeline Service of the KFP "
        "the platform installs.",
    )
    pipeline: str | None = Field(
        None,
        description="The project's compiled pipeline IR (`mlops pipeline compile FILE.py:FUNCTION --out "
        "FILE.yaml`): a .yaml/.yml/.json path, absolute or relative to the Pulumi project root, read at "
        "render and mounted read-only in the monitor. None: retrain decisions are recorded, nothing is "
        "submitted.",
    )
    experiment: str = Field(
        "mlops-retrain",
        min_length=1,
        max_length=128,
        pattern=r"^\S(.*\S)?$",
        description="KFP experiment of the retrain runs (created when missing).",
    )
    replicas: int = Field(
        1,
        ge=1,
        le=64,
        description="Monitor replicas (StatefulSet pods); the models are sharded across them by a hash of "
        "the model name (loop/shard.py), each pod takes its share from its ordinal. More than 1 needs "
        "store: postgresql (the replicas share leases, positions and results).",
    )
    window_cache_rows: int = Field(
        2_000_000,
        ge=0,
        le=1_000_000_000,
        description="Rows of the models' current windows each replica keeps decoded in memory across "
        "rounds (monitoring/window_cache.py; 0: none, every round reads whole windows). The round "
        "benchmark's replica held 1.03 M rows of a dozen features at 652 MB RSS, so the default fits the "
        "monitor's 2Gi limit with room for a window read whole: raise resources.memory_limit with it.",
    )

    @model_validator(mode="after")
    def _replicas_share_a_database(self) -> MonitorSettings:
        if self.replicas > 1 and self.store is not MonitorStoreMode.POSTGRESQL:
            raise ValueError(
                f"replicas={self.replicas} needs store: postgresql (got store: {self.store.value}): replicas "
                "share leases, ingest positions and results, which a SQLite file on one pod's volume cannot; "
                "set mlops:monitoring.monitor.store to postgresql or replicas to 1"
            )
        return self

    @field_validator("kfp_host")
    @classmethod
    def _kfp_host_is_a_url(cls, value: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError(
                "must be the KFP API's base URL, http(s)://host[:port] without a path, e.g. "
                "http://ml-pipeline.kubeflow.svc.cluster.local:8888"
            )
        return value.rstrip("/")

    @field_validator("pipeline")
    @classmethod
    def _pipeline_is_an_ir_file(cls, value: str | None) -> str | None:
        if value is not None and not value.endswith((".yaml", ".yml", ".json")):
            raise ValueError(
                "must be the path of a compiled pipeline (.yaml, .yml or .json), e.g. "
                "build/credit_default_pipeline.yaml from `mlops pipeline compile`; not the Python source"
            )
        return value


class MonitoringSettings(_Strict):
    """kube-prometheus-stack plus the model monitor."""

    chart_version: str | None = Field(None, description="Chart version override; None uses versions.py.")
    retention: Duration = Field("15d", description="Prometheus retention time.")
    storage_size: Quantity = Field("50Gi", description="Prometheus PVC size.")
    # kube-prometheus-stack sets no resources for either (values.yaml prometheus.prometheusSpec.resources and
    # alertmanager.alertmanagerSpec.resources are {}), so the namespace LimitRange's 512Mi default would cap
    # them. Prometheus needs about 2 GiB per million series.
    prometheus_resources: Resources = Field(
        default_factory=lambda: Resources(
            cpu_request="500m", memory_request="2Gi", cpu_limit="2", memory_limit="4Gi"
        ),
        description="Prometheus container requests and limits.",
    )
    alertmanager_resources: Resources = Field(
        default_factory=lambda: Resources(
            cpu_request="50m", memory_request="128Mi", cpu_limit="500m", memory_limit="256Mi"
        ),
        description="Alertmanager container requests and limits.",
    )
    grafana: GrafanaSettings = Field(default_factory=GrafanaSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    rules_per_object: int = Field(
        50,
        ge=1,
        le=500,
        description="Models per PrometheusRule object (rules are sharded, not one object per model).",
    )


class Thresholds(_Strict):
    """When a model's alerts fire."""

    drift_p_value: float = Field(
        0.01, gt=0, lt=1, description="Feature drift when the corrected p-value is below."
    )
    psi: float = Field(0.2, gt=0, description="Prediction/feature drift when PSI is above.")
    min_accuracy: float = Field(0.7, ge=0, le=1, description="Alert when labelled accuracy falls below.")
    max_p95_latency_seconds: float = Field(
        0.5,
        gt=0,
        description="Alert when the model's mean serving latency is above (Seldon 2.10 exports no per-model "
        "latency histogram, so no quantile; the name is kept for existing stacks).",
    )
    max_error_rate: float = Field(
        0.01, ge=0, le=1, description="Alert when the 5xx share of requests is above."
    )


_POLICY_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d|w)$")
_POLICY_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def _policy_seconds(value: Any) -> Any:
    """A policy duration: seconds as a number, or a string such as ``'90m'``, ``'12h'``, ``'3d'``."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as '3d', '12h', '90m' or a number of seconds")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        match = _POLICY_DURATION.match(text)
        if match:
            return float(match.group(1)) * _POLICY_UNITS[match.group(2)]
        try:
            return float(text)
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a duration; write e.g. '3d', '12h', '90m' or a number of seconds")


Seconds = Annotated[float, BeforeValidator(_policy_seconds), Field(ge=0)]
"""A duration in event time (seconds), written as a number or ``'3d'``/``'12h'``/``'90m'``/``'1w'``."""

PERFORMANCE_METRICS: dict[str, bool] = {
    "accuracy": True,
    "roc_auc": True,
    "brier": False,
    "ece": False,
    "mae": False,
    "rmse": False,
}
"""Metrics a policy may watch, and whether higher is better."""


class LoopPolicy(_Strict):
    """When the loop retrains, on which rows, and when it promotes: one policy for both targets.

    Every duration is event time: measured on the timestamps of predictions and labels (the inference
    request's ``mlops_event_time``, the feedback's ``event_time``; the clock when a client gives none),
    never on the wall clock of the process that checks. The platform's defaults are these field defaults;
    ``PolicySettings`` overrides them platform-wide, per project and per model with the same keys.
    """

    # -- windows and triggers
    window: Seconds = Field(
        86400.0, gt=0, description="Length of a check window; windows are aligned to multiples of it."
    )
    drift_share: float = Field(
        0.25, gt=0, le=1, description="A window is a drift signal when this share of features drifted."
    )
    critical_features: tuple[str, ...] = Field(
        (), description="Any of these drifting makes a window a drift signal on its own."
    )
    prediction_drift_triggers: bool = Field(
        False, description="Drift of the prediction distribution alone makes a window a drift signal."
    )
    drift_windows_required: int = Field(
        2, ge=1, le=100, description="Drift-signal windows inside the look-back needed to retrain."
    )
    lookback: Seconds = Field(
        3 * 86400.0, gt=0, description="How far back drift signals and labelled windows count."
    )
    min_labels: int = Field(
        200, ge=1, description="Labelled rows a window needs before its realised performance is trusted."
    )
    performance_metric: Literal["accuracy", "roc_auc", "brier", "ece", "mae", "rmse"] = Field(
        "roc_auc", description="Metric compared with the version's training-time holdout value."
    )
    max_performance_drop: float = Field(
        0.05, ge=0, description="Retrain when the realised metric is worse than the holdout by more."
    )
    estimated_performance_triggers: bool = Field(
        False,
        description="An estimated drop (classifiers; from the model's calibrated scores, before labels) "
        "triggers a retrain too. Off by default: the estimate is blind to concept shift.",
    )
    max_estimated_drop: float = Field(
        0.05, ge=0, description="Retrain when the estimated metric is below the holdout by more."
    )
    estimated_drop_requires_band: bool = Field(
        True, description="The estimate's whole band must be below the allowed value, not only its centre."
    )
    max_model_age: Seconds | None = Field(
        90 * 86400.0, description="Retrain a version older than this (null: never for age)."
    )
    # -- pacing
    cooldown: Seconds = Field(86400.0, description="No new retrain this soon after the last one started.")
    lease_ttl_seconds: float = Field(
        6 * 3600.0,
        gt=0,
        description="Wall-clock seconds a running retrain holds the model's lease (a crashed monitor cannot "
        "block retraining for longer).",
    )
    # -- training data
    training_data: Literal["since_change", "recent"] = Field(
        "since_change",
        description="since_change: rows since the change the monitor detected (the first alarm window), "
        "widened only when too few; recent: the last max_training_window of labelled rows.",
    )
    min_training_rows: int = Field(
        800, ge=10, description="Fewer labelled rows than this since the change and the retrain waits."
    )
    max_wait_for_rows: Seconds = Field(
        3 * 86400.0,
        description="How long after the change a retrain waits for min_training_rows before it widens the "
        "rows back in time.",
    )
    max_training_window: Seconds = Field(
        30 * 86400.0, gt=0, description="Never train on rows older than this (and the span of 'recent')."
    )
    settle_after: Seconds | None = Field(
        4 * 86400.0,
        description="Once this long after a detected change, retrain once more on the now larger post-change "
        "data (null: never).",
    )
    # -- gate
    gate_rows: int = Field(
        300, ge=20, description="The most recent labelled rows, held out from training, that the gate scores."
    )
    promotion_margin: float = Field(
        0.01, ge=0, description="The challenger must beat the champion on the gate rows by this."
    )
    max_ece_increase: float = Field(
        0.05,
        ge=0,
        description="Flag the calibration when the realised expected calibration error exceeds the "
        "holdout's by more (classifiers; a flag, not a trigger: a label-prior shift shows here first).",
    )
    # -- data quality
    max_missing_increase: float = Field(
        0.05, ge=0, le=1, description="A feature missing this much more often than in training is broken."
    )
    max_out_of_range: float = Field(
        0.05,
        ge=0,
        le=1,
        description="A numeric feature with this share outside the training range is broken.",
    )
    max_unseen: float = Field(
        0.05, ge=0, le=1, description="A categorical feature with this share of unseen values is broken."
    )

    @model_validator(mode="after")
    def _coherent(self) -> LoopPolicy:
        if self.lookback < self.window:
            raise ValueError(
                f"lookback={self.lookback:g}s is shorter than window={self.window:g}s; the look-back must "
                "hold at least one window"
            )
        if self.gate_rows >= self.min_training_rows:
            raise ValueError(
                f"gate_rows={self.gate_rows} must be below min_training_rows={self.min_training_rows}: the "
                "gate rows are held out of the training rows"
            )
        return self


_POLICY_KEYS = tuple(LoopPolicy.model_fields)


class PolicyOverride(_Strict):
    """Some of ``LoopPolicy``'s keys: what a platform, project or model changes; unset keys inherit."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            raise ValueError(f"expected a mapping of policy keys, got {type(data).__name__}")
        unknown = sorted(set(data) - set(_POLICY_KEYS))
        if unknown:
            raise ValueError(
                f"unknown policy key(s) {', '.join(map(repr, unknown))}; "
                f"the keys are {', '.join(_POLICY_KEYS)}"
            )
        return data

    def values(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class PolicySettings(_Strict):
    """The loop's policy (``mlops:policy`` on a stack; ``policy.yaml`` on the local target), same keys.

    ``defaults`` changes the platform's defaults, ``projects.<name>`` a project's models, ``models.<name>``
    one model (by served model name); the most specific wins, key by key. Keys: ``LoopPolicy``'s fields.
    """

    defaults: PolicyOverride = Field(default_factory=PolicyOverride)
    projects: dict[KubernetesName, PolicyOverride] = Field(default_factory=dict)
    models: dict[str, PolicyOverride] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _each_resolves(self) -> PolicySettings:
        # Validate every combination a model can see now, so a bad value fails at preview, not mid-loop.
        self.resolve(None, None)
        for project in self.projects:
            self.resolve(project, None)
        for model in self.models:
            self.resolve(None, model)
        return self

    def resolve(self, project: str | None, model: str | None) -> LoopPolicy:
        """The effective policy of a model: defaults, then its project's keys, then its own."""
        layers = [("defaults", self.defaults)]
        if project is not None and project in self.projects:
            layers.append((f"projects.{project}", self.projects[project]))
        if model is not None and model in self.models:
            layers.append((f"models.{model}", self.models[model]))
        merged: dict[str, Any] = {}
        for _, layer in layers:
            merged.update(layer.values())
        try:
            return LoopPolicy(**merged)
        except ValidationError as error:
            where = " + ".join(name for name, _ in layers)
            raise ValueError(f"policy ({where}): {_plain_errors(error)}") from None


def _plain_errors(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'policy'}: {item['msg']}"
        + ("" if item["type"] == "missing" else f" (got {item.get('input')!r})")
        for item in error.errors()
    )


def load_policy_file(path: Path) -> PolicySettings:
    """The local target's ``policy.yaml`` (the same keys as ``mlops:policy``).

    Raises:
        ConfigError: unreadable, not YAML, or a key or value is wrong (named, with the fix).
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise ConfigError(f"policy file {path}: cannot read it ({error.strerror or error})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"policy file {path}: not valid YAML ({error})") from None
    try:
        return PolicySettings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(
            f"policy file {path}: {_plain_errors(error)}; the keys are defaults/projects/models, each a "
            f"mapping of {', '.join(_POLICY_KEYS)}"
        ) from None


class ModelDeploymentSettings(_Strict):
    """A model the platform serves and watches, declared by MLflow registered model and alias only.

    The alias is resolved at run time, never here: the loop's deployer creates (and patches) the Seldon
    ``Model`` when the alias resolves (DESIGN: the loop). A declaration renders the model's owner object (a
    ConfigMap ``mlops-model-<name>`` in the serving namespace: what the deployer reads, and what the
    ``Model`` is garbage-collected with) and what the monitor and the alert rules read (its ``models.json``
    entry, rule group and dashboard). A version or an artifact URI in the stack would pin what the registry
    moves, so both are refused.
    """

    name: ModelName = Field(description="Deployment name (Model CR name), at most 40 characters.")
    registered_model: str = Field(min_length=1, description="MLflow registered model name.")
    alias: KubernetesName = Field("champion", description="Alias the deployment follows.")
    server: KubernetesName | None = Field(
        None, description="Pin to one Server; None lets the scheduler choose."
    )
    replicas: int = Field(1, ge=1, le=50)
    memory: Quantity = Field("1Gi", description="Memory the scheduler reserves on the Server for this model.")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    project: KubernetesName | None = Field(
        None,
        description="The project (team) owning the model: its Seldon Model is labelled with it and its "
        "policy overrides (mlops:policy.projects) apply.",
    )
    label_column: str = Field("label", min_length=1, description="Label column the model's pipeline reads.")
    pipeline_arguments: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Extra pipeline arguments of this model's retrain runs."
    )
    policy: PolicyOverride | None = Field(
        None,
        description="This model's loop policy keys (as mlops:policy.models.<name>; set one of the two).",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_pinned_artifact(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            pinned = [key for key in ("version", "storage_uri") if key in data]
            if pinned:
                raise ValueError(
                    f"{' and '.join(pinned)} cannot be set: models are declared by registered_model and "
                    f"alias only (the deployer serves the version the alias points to); remove "
                    f"{' and '.join(pinned)}"
                )
        return data


class Person(_Strict):
    """Someone the catalog knows: a project's owner must be a person or a team of the catalog."""

    name: KubernetesName = Field(description="Short name, e.g. 'alice'.")
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+$", description="Where the fleet view points.")


class Team(_Strict):
    """A team: the group its members sign in with is what a project's RBAC binds."""

    name: KubernetesName
    group: str = Field(
        min_length=1,
        description="The identity provider's group (a Kubernetes RBAC Group subject), e.g. 'oidc:risk-ds'.",
    )
    members: tuple[KubernetesName, ...] = Field((), description="People of the catalog in this team.")


class ProjectQuota(_Strict):
    """What a project may use: its namespace's ResourceQuota and its models' share of the serving namespace.

    Models run in the shared serving namespace (one Seldon runtime), where a ResourceQuota cannot tell
    projects apart, so ``max_models`` and ``serving_memory`` are enforced by validation: a stack whose
    project declares more is refused at preview, naming the project.
    """

    cpu: Quantity = Field("4", description="requests.cpu of the project namespace's ResourceQuota.")
    memory: Quantity = Field("8Gi", description="requests.memory of the project namespace's ResourceQuota.")
    cpu_limit: Quantity = Field("8", description="limits.cpu of the ResourceQuota.")
    memory_limit: Quantity = Field("16Gi", description="limits.memory of the ResourceQuota.")
    pods: int = Field(20, ge=1, description="pods of the ResourceQuota.")
    max_models: int = Field(10, ge=0, description="Models the project may serve.")
    serving_memory: Quantity = Field(
        "8Gi", description="Memory its models may reserve on the shared Servers (sum of memory x replicas)."
    )


class ProjectLimits(_Strict):
    """The LimitRange of a project namespace: what a container gets when it asks for nothing."""

    default_cpu_request: Quantity = "100m"
    default_memory_request: Quantity = "256Mi"
    default_cpu_limit: Quantity = "1"
    default_memory_limit: Quantity = "1Gi"

    @model_validator(mode="after")
    def _requests_within_limits(self) -> ProjectLimits:
        Resources(
            cpu_request=self.default_cpu_request,
            memory_request=self.default_memory_request,
            cpu_limit=self.default_cpu_limit,
            memory_limit=self.default_memory_limit,
        )
        return self


class Staleness(_Strict):
    """How long a model may go without each thing before the fleet view calls it stale (event time)."""

    labels: Seconds = Field(7 * 86400.0, gt=0, description="Without ground truth for longer: stale.")
    check: Seconds = Field(2 * 86400.0, gt=0, description="Without a monitoring check for longer: stale.")
    retrain: Seconds = Field(90 * 86400.0, gt=0, description="Without a retrain for longer: stale.")


class ProjectSettings(_Strict):
    """One team's project, onboarded by this declaration (``mlops:catalog`` ``projects``).

    It gets a namespace (Pod Security "restricted", ResourceQuota, LimitRange), RBAC for its team's group
    (edit in its namespace, view where the platform is shared), a Kubeflow Pipelines experiment and the
    service account its runs use, its own space in MLflow, a Grafana folder, and its models (served in the
    shared serving namespace, labelled with the project). Removing it archives, never deletes, its MLflow
    data and monitor history.
    """

    name: KubernetesName = Field(description="Project name; also its MLflow space and Grafana folder.")
    team: KubernetesName = Field(description="The owning team (a team of the catalog).")
    owner: KubernetesName = Field(description="The accountable person or team (of the catalog).")
    alert_route: KubernetesName | None = Field(
        None, description="Value of the alert-routing label mlops_route on its alerts (default: its team)."
    )
    namespace: NamespaceName | None = Field(None, description="Its namespace (default: the project name).")
    description: str = Field("", description="One line for the fleet view.")
    quota: ProjectQuota = Field(default_factory=ProjectQuota)
    limits: ProjectLimits = Field(default_factory=ProjectLimits)
    staleness: Staleness = Field(default_factory=Staleness)
    policy: PolicyOverride | None = Field(
        None, description="The project's loop policy keys (the same as mlops:policy.projects.<name>)."
    )
    models: tuple[ModelDeploymentSettings, ...] = Field(())

    @property
    def namespace_name(self) -> str:
        return self.namespace or self.name

    @property
    def route(self) -> str:
        return self.alert_route or self.team

    @model_validator(mode="after")
    def _models_are_ours(self) -> ProjectSettings:
        for index, model in enumerate(self.models):
            if model.project not in (None, self.name):
                raise ValueError(
                    f"models.{index}.project is {model.project!r} inside project {self.name!r}; remove it "
                    f"(a model declared under a project belongs to it)"
                )
        return self


class CatalogSettings(_Strict):
    """Who and what the platform serves: people, teams and their projects (``mlops:catalog``).

    Inline in the stack, or a path to a YAML file holding the same mapping (relative to the repository
    root; ``docs/catalog.md`` documents the format). The local target reads the same file
    (``<state>/catalog.yaml`` or ``--catalog``).
    """

    people: tuple[Person, ...] = Field(())
    teams: tuple[Team, ...] = Field(())
    projects: tuple[ProjectSettings, ...] = Field(())

    def project(self, name: str) -> ProjectSettings | None:
        return next((project for project in self.projects if project.name == name), None)

    def problems(self, models: Collection[ModelDeploymentSettings] | None = None) -> list[tuple[str, str]]:
        """(key under the catalog, message with the fix) for every rule across entries.

        Args:
            models: every served model, to count against the projects' quotas (default: the catalog's own;
                a stack adds its top-level ``mlops:models`` that name a project).
        """
        found: list[tuple[str, str]] = []
        people = [person.name for person in self.people]
        teams = [team.name for team in self.teams]
        for kind, names in (("people", people), ("teams", teams)):
            for index, name in enumerate(names):
                if name in names[:index]:
                    found.append((f"{kind}.{index}.name", f"{name!r} appears twice; keep one"))
        for index, team in enumerate(self.teams):
            for member in team.members:
                if member not in people:
                    found.append(
                        (
                            f"teams.{index}.members",
                            f"{member!r} is not in people; add them to people or remove",
                        )
                    )
        seen_projects: list[str] = []
        seen_namespaces: dict[str, str] = {}
        for index, project in enumerate(self.projects):
            where = f"projects.{index}"
            if project.name in seen_projects:
                found.append((f"{where}.name", f"{project.name!r} appears twice; rename one"))
            seen_projects.append(project.name)
            if project.team not in teams:
                found.append(
                    (
                        f"{where}.team",
                        f"{project.team!r} is not a team of the catalog (teams: "
                        f"{', '.join(teams) or 'none'}); add it under teams",
                    )
                )
            if project.owner not in people and project.owner not in teams:
                found.append(
                    (
                        f"{where}.owner",
                        f"{project.owner!r} is neither a person nor a team of the catalog; "
                        f"add them under people or name someone who is",
                    )
                )
            namespace = project.namespace_name
            if namespace in seen_namespaces:
                found.append(
                    (
                        f"{where}.namespace",
                        f"{namespace!r} is already project {seen_namespaces[namespace]!r}'s "
                        f"namespace; set another",
                    )
                )
            seen_namespaces.setdefault(namespace, project.name)
            quota = project.quota
            if models is None:
                owned = list(project.models)
            else:
                owned = [model for model in models if model.project == project.name]
            if len(owned) > quota.max_models:
                found.append(
                    (
                        f"{where}.models",
                        f"{len(owned)} models declared but quota.max_models is "
                        f"{quota.max_models}; raise quota.max_models or remove models",
                    )
                )
            reserved = sum(_parse_quantity(model.memory) * model.replicas for model in owned)
            if reserved > _parse_quantity(quota.serving_memory):
                found.append(
                    (
                        f"{where}.models",
                        f"its models reserve {reserved / 2**30:.2f}Gi (memory x replicas) "
                        f"but quota.serving_memory is {quota.serving_memory}; raise it or lower their memory",
                    )
                )
        return found


def load_catalog_file(path: Path) -> CatalogSettings:
    """A catalog YAML file (the same mapping as ``mlops:catalog``), validated.

    Raises:
        ConfigError: unreadable, not YAML, or an entry is wrong (named, with the fix).
    """
    data = _read_catalog(Path(path))
    try:
        catalog = CatalogSettings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, prefix="", source=f"catalog file {path}")) from None
    problems = catalog.problems()
    if problems:
        raise ConfigError("\n".join(f"{key}: {message}, in catalog file {path}" for key, message in problems))
    return catalog


def _read_catalog(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise ConfigError(f"catalog file {path}: cannot read it ({error.strerror or error})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"catalog file {path}: not valid YAML ({error})") from None


class UpstreamSettings(_Strict):
    """Whether the platform installs upstream's Helm charts itself (``mlops:upstream``).

    ``helm_charts: true`` (the default): the program installs Seldon Core 2 (crds, setup, runtime, servers)
    and kube-prometheus-stack from their chart repositories at the versions pinned in versions.py.

    ``helm_charts: false``: the program creates no Helm release. The platform team installs those charts
    itself, at the same pinned versions and with the values the program would pass (``mlops render`` writes
    them to ``releases.yaml``), for example from a mirror or an air-gapped chart registry, before
    ``pulumi up``. Everything of ours is still created: namespaces, policies, Secrets, MLflow and its
    stores, the monitor, and the custom resources (Seldon ``Server``, ``ServiceMonitor``, ``PodMonitor``,
    ``PrometheusRule``), which then depend on no release: their CRDs must already be installed. Kubeflow
    Pipelines' remote manifests have their own switch in ``mlops:kfp``.
    """

    helm_charts: bool = Field(True, description="Install upstream's Helm charts (off: you install them).")


class SecretSettings(_Strict):
    """Values that only ever come from Pulumi secret config (``pulumi config set --secret``)."""

    secret_seed: SecretStr = Field(
        description="Seed every generated credential is derived from (HMAC-SHA256)."
    )
    mlflow_database_url: SecretStr | None = Field(
        None, description="postgresql+psycopg2://... (external database)."
    )
    monitor_database_url: SecretStr | None = Field(
        None,
        description="postgresql://user:password@host:5432/monitor: the monitor store's database (required "
        "with an external MLflow database; overrides the bundled PostgreSQL's `monitor` database).",
    )
    artifact_store_access_key_id: SecretStr | None = None
    artifact_store_secret_access_key: SecretStr | None = None
    mlflow_admin_password: SecretStr | None = Field(None, description="Overrides the derived admin password.")
    grafana_admin_password: SecretStr | None = Field(
        None, description="Overrides the derived Grafana password."
    )

    @field_validator("secret_seed")
    @classmethod
    def _long_seed(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters, e.g. `openssl rand -base64 32`")
        return value

    @field_validator("mlflow_database_url")
    @classmethod
    def _database_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("postgresql+psycopg2://", "mysql+pymysql://")
        ):
            raise ValueError(
                "must start with postgresql+psycopg2:// (plain postgresql:// makes SQLAlchemy 2 look for "
                "psycopg 3)"
            )
        return value

    @field_validator("monitor_database_url")
    @classmethod
    def _monitor_database_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("postgresql://", "postgresql+psycopg2://")
        ):
            raise ValueError(
                "must be a PostgreSQL URL, postgresql://user:password@host:5432/monitor (the monitor's own "
                "database and role; percent-encode reserved characters in the password)"
            )
        return value


SECRET_KEYS: tuple[str, ...] = tuple(SecretSettings.model_fields)
"""Config keys that must be Pulumi secrets."""


class PlatformSettings(_Strict):
    """The whole platform: every ``mlops:<key>`` of a stack, validated."""

    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    namespaces: Namespaces = Field(default_factory=Namespaces)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    kfp: KfpSettings = Field(default_factory=KfpSettings)
    seldon: SeldonSettings = Field(default_factory=SeldonSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    images: ImagesSettings = Field(default_factory=ImagesSettings)
    models: tuple[ModelDeploymentSettings, ...] = Field(
        (),
        description="Every served model. Read: the stack's mlops:models plus each catalog project's "
        "models (with project set), flattened at validation.",
    )
    policy: PolicySettings = Field(
        default_factory=PolicySettings,
        description="The loop's policy: platform defaults, per project and per model (LoopPolicy keys); "
        "catalog projects' and models' own policy keys are merged in at validation.",
    )
    catalog: CatalogSettings = Field(
        default_factory=CatalogSettings,
        description="People, teams and projects (inline, or a path to a YAML file: load_platform_settings).",
    )
    upstream: UpstreamSettings = Field(default_factory=UpstreamSettings)
    allow_load_balancer: bool = Field(
        False, description="Allow Services of type LoadBalancer (off: ClusterIP only)."
    )
    secrets: SecretSettings
    _model_keys: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _flatten_catalog(self) -> PlatformSettings:
        """Fold the catalog's models and policy keys into ``models`` and ``policy``: one list for readers.

        Conflicts (a project or model whose policy is set in both places) are refused here; the
        cross-entry rules (unique names, quotas) run in ``_check_consistency`` so they name stack keys.
        """
        flattened = [*self.models]
        projects = dict(self.policy.projects)
        models = dict(self.policy.models)
        for index, project in enumerate(self.catalog.projects):
            if project.policy is not None:
                if project.name in projects:
                    raise ValueError(
                        f"catalog.projects.{index}.policy: project {project.name!r} also has "
                        f"policy.projects.{project.name}; keep one of the two"
                    )
                projects[project.name] = project.policy
            for model in project.models:
                flattened.append(model.model_copy(update={"project": project.name}))
        for model in flattened:
            if model.policy is not None:
                if model.name in self.policy.models:
                    raise ValueError(
                        f"model {model.name!r} has its own policy and policy.models.{model.name}; keep one"
                    )
                models[model.name] = model.policy
        keys = [f"models.{index}" for index in range(len(self.models))]
        keys += [
            f"catalog.projects.{index}.models.{position}"
            for index, project in enumerate(self.catalog.projects)
            for position in range(len(project.models))
        ]
        # Frozen models: set the derived fields once, here, before anyone reads them.
        object.__setattr__(self, "models", tuple(flattened))
        self._model_keys = tuple(keys)
        if projects != dict(self.policy.projects) or models != dict(self.policy.models):
            policy = PolicySettings.model_validate(
                {"defaults": self.policy.defaults, "projects": projects, "models": models}
            )
            object.__setattr__(self, "policy", policy)
        return self

    def model_key(self, index: int) -> str:
        """Where ``models[index]`` was declared: ``models.3`` or ``catalog.projects.1.models.0``."""
        return self._model_keys[index] if index < len(self._model_keys) else f"models.{index}"

    def project_of(self, model: ModelDeploymentSettings) -> ProjectSettings | None:
        """The catalog project a model belongs to (None: no project, or one outside the catalog)."""
        return self.catalog.project(model.project) if model.project else None

    def effective_policy(self, model: ModelDeploymentSettings) -> LoopPolicy:
        """The resolved loop policy of a model: defaults, its project's keys, its own."""
        return self.policy.resolve(model.project, model.name)


def _config_key(loc: tuple[int | str, ...]) -> str:
    """``mlops:mlflow.replicas`` from a pydantic error location (secrets are top-level keys)."""
    parts = [str(part) for part in loc]
    if parts and parts[0] == "secrets":
        parts = parts[1:]
    return f"{CONFIG_NAMESPACE}:" + ".".join(parts) if parts else f"{CONFIG_NAMESPACE}:<root>"


def _expected_form(problem: Mapping[str, Any]) -> str:
    """A short hint of the expected form for a pydantic error."""
    kind = problem["type"]
    if kind == "extra_forbidden":
        return "remove it (unknown key; see Pulumi.yaml for the declared keys)"
    if kind == "missing":
        return "set it"
    return str(problem["msg"])


def _repository_root() -> Path:
    """Where relative paths in stack config start: the folder holding Pulumi.yaml (or the working one)."""
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / "Pulumi.yaml").is_file():
            return folder
    return here


def load_platform_settings(
    config: Mapping[str, Any],
    *,
    plaintext_keys: Collection[str] = (),
    source: str = "the stack config",
    root: Path | None = None,
) -> PlatformSettings:
    """Validate a stack's ``mlops:*`` config into ``PlatformSettings``: the one place config keys are read.

    Args:
        config: ``mlops:<key>`` (or bare ``<key>``) -> value; a value may be a JSON string (as Pulumi's
            ``Config.get`` returns it) or already-parsed data (as a stack file holds it).
        plaintext_keys: keys whose value was given in plain text; a secret key among them is an error
            (secrets go in with ``pulumi config set --secret``).
        source: where the config came from, for messages.
        root: where a relative ``mlops:catalog`` path starts (default: the folder holding Pulumi.yaml).

    Raises:
        ConfigError: one line per problem naming the key (``mlops:mlflow.replicas``), the value and the
            expected form. Nothing has been created when it is raised.
    """
    values: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    problems: list[str] = []
    plaintext = {key.split(":", 1)[-1] for key in plaintext_keys}
    for full_key, raw in config.items():
        namespace, _, key = full_key.rpartition(":")
        if namespace not in ("", CONFIG_NAMESPACE):
            continue  # other providers' config (kubernetes:context, aws:region) is not ours
        if key in SECRET_KEYS:
            if key in plaintext:
                problems.append(
                    f"{CONFIG_NAMESPACE}:{key}: is a secret but was given in plain text; "
                    f"set it with `pulumi config set --secret {CONFIG_NAMESPACE}:{key} ...` in {source}"
                )
                continue
            secrets[key] = raw
            continue
        values[key] = _decode(raw)
    if isinstance(values.get("catalog"), str):
        catalog_path = Path(values["catalog"])
        if not catalog_path.is_absolute():
            catalog_path = (root or _repository_root()) / catalog_path
        values["catalog"] = _read_catalog(catalog_path)
        source = f"{source} (catalog file {catalog_path})"
    if problems:
        raise ConfigError("\n".join(problems))
    values["secrets"] = secrets
    try:
        settings = PlatformSettings.model_validate(values)
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            loc = problem["loc"]
            value = problem.get("input")
            if not loc:  # a rule across keys (PlatformSettings' own validators): the message names them
                message = str(problem["msg"]).removeprefix("Value error, ")
                lines.append(f"{CONFIG_NAMESPACE}:{message}; fix it in {source}")
                continue
            shown = "<missing>" if problem["type"] == "missing" else _redact(loc, value)
            lines.append(f"{_config_key(loc)}: {_expected_form(problem)} (got {shown}); fix it in {source}")
        raise ConfigError("\n".join(lines)) from None
    _check_consistency(settings, source)
    _check_required_secrets(settings, source)
    return settings


def _decode(raw: Any) -> Any:
    """Pulumi hands structured config over as JSON text; plain strings stay strings."""
    if isinstance(raw, str):
        text = raw.strip()
        if text[:1] in ("{", "[") or text in ("true", "false", "null") or _NUMBER.match(text):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                return raw
    return raw


_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
_SECRET_LIKE = re.compile(r"password|secret|token|access_key|credential", re.IGNORECASE)


def _redact(loc: tuple[int | str, ...], value: Any) -> str:
    """Never echo a secret value in an error message (nor the whole config, which holds the secrets)."""
    if not loc:
        return "<the whole config>"
    if loc[0] == "secrets" or any(_SECRET_LIKE.search(str(part)) for part in loc):
        return "<secret>"
    return repr(value)


def _check_consistency(settings: PlatformSettings, source: str) -> None:
    """Rules across keys (unique names, known servers, distinct namespaces), each naming its key."""
    problems = []
    names = [model.name for model in settings.models]
    for index, name in enumerate(names):
        if name in names[:index]:
            problems.append(
                f"{CONFIG_NAMESPACE}:{settings.model_key(index)}.name: deployment names must be unique "
                f"(got {name!r} again); rename one in {source}"
            )
    for key, message in settings.catalog.problems(settings.models):
        problems.append(f"{CONFIG_NAMESPACE}:catalog.{key}: {message}, in {source}")
    projects = [project.name for project in settings.catalog.projects]
    if projects:
        for index, model in enumerate(settings.models):
            if model.project is not None and model.project not in projects:
                problems.append(
                    f"{CONFIG_NAMESPACE}:{settings.model_key(index)}.project: {model.project!r} is not a "
                    f"project of the catalog (projects: {', '.join(projects)}); use one of them or add it, "
                    f"in {source}"
                )
        for name in settings.policy.projects:
            if name not in projects:
                problems.append(
                    f"{CONFIG_NAMESPACE}:policy.projects.{name}: not a project of the catalog (projects: "
                    f"{', '.join(projects)}); use one of them in {source}"
                )
        platform_namespaces = {*settings.namespaces.model_dump().values(), settings.kfp.namespace}
        for index, project in enumerate(settings.catalog.projects):
            if project.namespace_name in platform_namespaces:
                problems.append(
                    f"{CONFIG_NAMESPACE}:catalog.projects.{index}.namespace: {project.namespace_name!r} is a "
                    f"namespace of the platform; set the project's namespace to another, in {source}"
                )
    servers = sorted(server.name for server in settings.seldon.servers)
    for index, model in enumerate(settings.models):
        if model.server is not None and model.server not in servers:
            problems.append(
                f"{CONFIG_NAMESPACE}:{settings.model_key(index)}.server: not a server in seldon.servers "
                f"(got {model.server!r}); use one of {', '.join(servers)} or leave it unset, in {source}"
            )
    for name in settings.policy.models:
        if name not in names:
            problems.append(
                f"{CONFIG_NAMESPACE}:policy.models.{name}: not a declared model (models: "
                f"{', '.join(names) or 'none'}); use a name from mlops:models in {source}"
            )
    for index, model in enumerate(settings.models):
        try:
            settings.policy.resolve(model.project, model.name)
        except ValueError as error:
            problems.append(
                f"{CONFIG_NAMESPACE}:{settings.model_key(index)}: {error}; fix mlops:policy in {source}"
            )
    seen: dict[str, str] = {"kubeflow": "kfp.namespace"}
    for field, value in settings.namespaces.model_dump().items():
        if value in seen:
            problems.append(
                f"{CONFIG_NAMESPACE}:namespaces.{field}: must differ from {seen[value]} (got {value!r}); "
                f"choose another namespace in {source}"
            )
        seen.setdefault(value, f"namespaces.{field}")
    if problems:
        raise ConfigError("\n".join(problems))


def _check_required_secrets(settings: PlatformSettings, source: str) -> None:
    missing = []
    secrets = settings.secrets
    if settings.mlflow.database.mode is DatabaseMode.EXTERNAL and secrets.mlflow_database_url is None:
        missing.append(
            ("mlflow_database_url", "postgresql+psycopg2://user:password@host:5432/mlflow", "external")
        )
    if (
        settings.monitoring.monitor.store is MonitorStoreMode.POSTGRESQL
        and settings.mlflow.database.mode is DatabaseMode.EXTERNAL
        and secrets.monitor_database_url is None
    ):
        missing.append(
            ("monitor_database_url", "postgresql://monitor:password@host:5432/monitor", "external")
        )
    if settings.mlflow.artifact_store.mode is ArtifactStoreMode.EXTERNAL:
        for key in ("artifact_store_access_key_id", "artifact_store_secret_access_key"):
            if getattr(secrets, key) is None:
                missing.append((key, "the store's key", "external"))
    if missing:
        raise ConfigError(
            "\n".join(
                f"{CONFIG_NAMESPACE}:{key}: missing secret (needed because the mode is {mode}); set it with "
                f"`pulumi config set --secret {CONFIG_NAMESPACE}:{key} '<{example}>'` in {source}"
                for key, example, mode in missing
            )
        )


def read_pulumi_config() -> PlatformSettings:
    """Read ``pulumi.Config("mlops")`` of the running Pulumi program into ``PlatformSettings``.

    Only called from inside a Pulumi program (``infra/__main__.py`` or the offline render); importing this
    module does not import Pulumi.
    """
    import pulumi
    from pulumi.runtime import config as runtime_config

    values: dict[str, Any] = {}
    plaintext: list[str] = []
    # The engine passes config either explicitly (set_all_config: mocks, the language host) or as
    # PULUMI_CONFIG.
    known = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    secret_keys = set(runtime_config.get_config_secret_keys_env())
    for full_key in sorted(known):
        namespace, _, key = full_key.rpartition(":")
        if namespace != CONFIG_NAMESPACE:
            continue
        values[full_key] = pulumi.Config(CONFIG_NAMESPACE).get(key)
        is_secret = runtime_config.is_config_secret(full_key) or full_key in secret_keys
        if key in SECRET_KEYS and not is_secret:
            plaintext.append(full_key)
    return load_platform_settings(values, plaintext_keys=plaintext, source=f"stack {pulumi.get_stack()}")
