"""One table of every upstream chart, manifest ref and image the platform installs: version, licence, why.

Images are pinned by tag. Digests cannot be fetched on the machines that build this repository (no registry
access), so ``digest`` is empty; an air-gapped install mirrors ``mlops render``'s ``images.txt`` and may pin
digests at mirror time.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    CHART = "chart"
    MANIFEST = "manifest"
    IMAGE = "image"
    PACKAGE = "package"  # a Python package pinned in an image of ours (docker/requirements/*.txt)


@dataclass(frozen=True)
class Upstream:
    """One pinned upstream artefact.

    Attributes:
        name: our key for it (``seldon-core-v2-crds``, ``mlflow``).
        kind: chart | manifest | image | package.
        version: the pinned chart version, git ref or image tag.
        repository: Helm repository URL, git URL of the kustomize base, or image repository.
        licence: SPDX identifier (or "BSL-1.1").
        why: why this one and this version; says so when a version was not verifiable offline.
        chart: chart name inside the Helm repository (charts only).
        path: path inside the git repository (manifests only).
        digest: image digest when known (empty: see the module docstring).
    """

    name: str
    kind: Kind
    version: str
    repository: str
    licence: str
    why: str
    chart: str = ""
    path: str = ""
    digest: str = ""

    @property
    def image(self) -> str:
        """``repository:tag`` (images only)."""
        if self.kind is not Kind.IMAGE:
            raise ValueError(f"{self.name} is a {self.kind}, not an image")
        return f"{self.repository}:{self.version}"

    @property
    def remote_ref(self) -> str:
        """A kustomize remote target ``<repo>/<path>?ref=<version>`` (manifests only)."""
        if self.kind is not Kind.MANIFEST:
            raise ValueError(f"{self.name} is a {self.kind}, not a manifest")
        return f"{self.repository}/{self.path}?ref={self.version}"

    @property
    def kustomize_target(self) -> str:
        """The target's folder below KFP's ``manifests/kustomize`` (how a local copy of it is laid out)."""
        return self.path.removeprefix("manifests/kustomize/")


# The Kubernetes release the platform targets: offline validation uses its minor's schemas, the EKS mode
# asks for its minor, and the engine tier builds and runs its API server (tools/kubernetes, a test keeps the
# two equal). 1.36 is a supported minor on 2026-12 (1.31, the earlier target, left support in 2025).
KUBERNETES_VERSION = "1.36.3"
KUBERNETES_MINOR = KUBERNETES_VERSION.rpartition(".")[0]

SELDON_HELM_REPOSITORY = "https://seldonio.github.io/helm-charts/"
SELDON_VERSION = "2.10.2"
_SELDON_WHY = (
    "Seldon Core 2 is the serving backend the users asked for. BSL 1.1 since 2.7.0: production use needs a "
    "commercial licence from Seldon (each version turns Apache-2.0 four years after release). 2.10.2 is the "
    "version whose charts, CRDs and operator source were read for this program (SeldonIO/seldon-core tag "
    "v2.10.2; its data files are in ../shared/upstream/seldon-core-v2.10.2)."
)

UPSTREAMS: tuple[Upstream, ...] = (
    Upstream(
        "kfp-cluster-scoped-resources",
        Kind.MANIFEST,
        "2.17.0",
        "github.com/kubeflow/pipelines",
        "Apache-2.0",
        "KFP standalone, applied first (CRDs incl. applications.app.k8s.io). 2.17.0 is the CVE floor "
        "(CVE-2026-54745, CVSS 10, frontend /_proxy/ SSRF).",
        path="manifests/kustomize/cluster-scoped-resources",
    ),
    Upstream(
        "kfp-platform-agnostic",
        Kind.MANIFEST,
        "2.17.0",
        "github.com/kubeflow/pipelines",
        "Apache-2.0",
        "KFP standalone overlay for any cloud (env/dev adds the GCP inverse proxy and crashes off GCP, "
        "kubeflow/pipelines#9546). Bundles Argo Workflows v4.0.5, MySQL 8.4 and SeaweedFS 4.34.",
        path="manifests/kustomize/env/platform-agnostic",
    ),
    Upstream(
        "seldon-core-v2-crds",
        Kind.CHART,
        SELDON_VERSION,
        SELDON_HELM_REPOSITORY,
        "BSL-1.1",
        "Seldon Core 2 CRDs (Model, Server, SeldonRuntime, ...): installed before every Seldon custom "
        "resource. " + _SELDON_WHY,
        chart="seldon-core-v2-crds",
    ),
    Upstream(
        "seldon-core-v2-setup",
        Kind.CHART,
        SELDON_VERSION,
        SELDON_HELM_REPOSITORY,
        "BSL-1.1",
        "Seldon Core 2 operator (controller manager, SeldonConfig, ServerConfig). " + _SELDON_WHY,
        chart="seldon-core-v2-setup",
    ),
    Upstream(
        "seldon-core-v2-runtime",
        Kind.CHART,
        SELDON_VERSION,
        SELDON_HELM_REPOSITORY,
        "BSL-1.1",
        "SeldonRuntime (scheduler and envoy; the Kafka components are disabled) in the serving namespace; "
        "its LoadBalancer default is overridden to ClusterIP. The servers chart is not installed: it "
        "always creates an mlserver and a triton Server (minReplicas 1), and our Servers are sized from "
        "settings. " + _SELDON_WHY,
        chart="seldon-core-v2-runtime",
    ),
    Upstream(
        "kube-prometheus-stack",
        Kind.CHART,
        "81.6.2",
        "https://prometheus-community.github.io/helm-charts",
        "Apache-2.0",
        "Prometheus Operator, Prometheus, Alertmanager and Grafana (with the dashboard sidecar) in one "
        "chart; "
        "81.6.2 was published 2026-02 (seen in a renovate PR); newer 8x.y exist and are not verified here.",
        chart="kube-prometheus-stack",
    ),
    Upstream(
        "mlflow",
        Kind.PACKAGE,
        "3.17.2",
        "https://pypi.org/project/mlflow/",
        "Apache-2.0",
        (
            "The MLflow server, installed in our image docker/mlflow.Dockerfile from "
            "docker/requirements/mlflow.txt; 3.17.x clears the CVE floor 3.17.0 (CVE-2026-115886 SSRF, "
            "CVE-2026-64849 on CISA KEV). Not MLflow's ghcr.io/mlflow/mlflow image: it installs mlflow alone "
            "(mlflow/mlflow docker/Dockerfile): no psycopg2, boto3, prometheus-flask-exporter or Flask-WTF, "
            "so our server exits at start on it."
        ),
    ),
    Upstream(
        "python",
        Kind.IMAGE,
        "3.11-slim-bookworm",
        "docker.io/library/python",
        "PSF-2.0",
        "Base of our MLflow and monitor images and of a project's pipeline base: the Python the locks in "
        "docker/requirements/ are compiled for (3.11). Pin it by digest in your mirror.",
    ),
    Upstream(
        "mlserver",
        Kind.IMAGE,
        "1.7.1",
        "seldonio/mlserver",
        "Apache-2.0",
        "MLServer 1.7.1 (2025-06-06, last release) is the runtime Seldon Core 2 runs; Apache-2.0 for "
        "every release. "
        "Mitigations for CVE-2026-109156 (tar slip in environment tarballs): no environment_tarball, "
        "NetworkPolicy.",
    ),
    Upstream(
        "postgres",
        Kind.IMAGE,
        "16.10-bookworm",
        "docker.io/library/postgres",
        "PostgreSQL",
        "MLflow's bundled database from the official image: Bitnami's free versioned images moved to "
        "bitnamilegacy on 2025-08-28 (bitnami/containers#83267), so no Bitnami image or chart.",
    ),
    Upstream(
        "seaweedfs",
        Kind.IMAGE,
        "4.34",
        "ghcr.io/chrislusf/seaweedfs",
        "Apache-2.0",
        "S3-compatible artifact store, the same image and version KFP 2.17.0 bundles. Not MinIO: MinIO is "
        "AGPL-3.0 and its pinned images aged with open CVEs, which is why KFP moved off it "
        "(kubeflow/pipelines "
        "#6431, #7878, PR #11965).",
    ),
)

# Images the upstream charts and manifests pull with the values we set, fully qualified and tagged, so
# images.txt is a complete list for an air-gapped mirror. Each was read in upstream's files at the pinned
# version (tests/kubernetes/test_kfp_manifests.py and test_images.py recompute them from those files).
KUBE_PROMETHEUS_STACK_IMAGES = (
    # kube-prometheus-stack 81.6.2 values.yaml; the operator and config-reloader tags default to the
    # chart's appVersion v0.88.1 (templates/prometheus-operator/deployment.yaml).
    "quay.io/prometheus-operator/prometheus-operator:v0.88.1",
    "quay.io/prometheus-operator/prometheus-config-reloader:v0.88.1",
    "quay.io/prometheus/prometheus:v3.9.1",
    "quay.io/prometheus/alertmanager:v0.31.0",
    # prometheusOperator.admissionWebhooks.patch (enabled by default): the certgen Jobs.
    "ghcr.io/jkroepke/kube-webhook-certgen:1.7.6",
    # Sub-chart kube-state-metrics 7.1.0: tag defaults to v + appVersion 2.18.0.
    "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.18.0",
    # Sub-chart prometheus-node-exporter 4.51.1: v + appVersion 1.10.2 (listed although nodeExporter is off
    # in our values: a team that turns it on must not find its mirror incomplete).
    "quay.io/prometheus/node-exporter:v1.10.2",
    # Sub-chart grafana 11.1.1 (grafana-community/helm-charts): appVersion 12.3.2, the dashboard sidecar,
    # and the init-chown busybox.
    "docker.io/grafana/grafana:12.3.2",
    "quay.io/kiwigrid/k8s-sidecar:2.5.0",
    "docker.io/library/busybox:1.37.0",
)
KFP_IMAGES = (
    # kubeflow/pipelines manifests/kustomize env/platform-agnostic@2.17.0, built: every container and init
    # container image, the V2 driver/launcher images (ml-pipeline env), Argo's executor (--executor-image)
    # and the cache webhook's image (pipeline-install-config cacheImage).
    "ghcr.io/kubeflow/kfp-api-server:2.17.0",
    "ghcr.io/kubeflow/kfp-frontend:2.17.0",
    "ghcr.io/kubeflow/kfp-persistence-agent:2.17.0",
    "ghcr.io/kubeflow/kfp-scheduled-workflow-controller:2.17.0",
    "ghcr.io/kubeflow/kfp-viewer-crd-controller:2.17.0",
    "ghcr.io/kubeflow/kfp-visualization-server:2.17.0",
    "ghcr.io/kubeflow/kfp-metadata-writer:2.17.0",
    "ghcr.io/kubeflow/kfp-metadata-envoy:2.17.0",
    "ghcr.io/kubeflow/kfp-cache-deployer:2.17.0",
    "ghcr.io/kubeflow/kfp-cache-server:2.17.0",
    "ghcr.io/kubeflow/kfp-driver:2.17.0",
    "ghcr.io/kubeflow/kfp-launcher:2.17.0",
    "gcr.io/tfx-oss-public/ml_metadata_store_server:1.14.0",
    "quay.io/argoproj/workflow-controller:v4.0.5",
    "quay.io/argoproj/argoexec:v4.0.5",
    "docker.io/library/mysql:8.4",
    "docker.io/library/alpine:3.23",
    "ghcr.io/chrislusf/seaweedfs:4.34",
    # Not KFP's cacheImage: upstream leaves it untagged (so :latest); mlops:kfp.cache_image pins it and the
    # render lists it from the patch of pipeline-install-config.
)

CHART_DEFAULT_IMAGES: dict[str, tuple[str, ...]] = {
    # seldon-core-v2-setup values.yaml: the components our values leave on (hodometer, dataflow and
    # pipeline gateway are disabled; Triton runs only in a Server, and ours are MLServer).
    "seldon-core-v2-setup": tuple(
        f"docker.io/seldonio/{name}:{SELDON_VERSION}"
        for name in (
            "seldonv2-controller",
            "seldon-scheduler",
            "seldon-envoy",
            "seldon-agent",
            "seldon-rclone",
        )
    )
    + ("docker.io/seldonio/mlserver:1.7.1",),
    "kfp-platform-agnostic": KFP_IMAGES,
    "kube-prometheus-stack": KUBE_PROMETHEUS_STACK_IMAGES,
}
"""Images pulled by upstream charts/manifests with our values, by the versions.py entry that pulls them."""


# Floors from shared/research/security.md; tests/test_versions.py keeps the table above them.
FLOORS: dict[str, tuple[int, ...]] = {
    "mlflow": (3, 17, 0),
    "kfp-platform-agnostic": (2, 17, 0),
    "kfp-cluster-scoped-resources": (2, 17, 0),
    "mlserver": (1, 7, 1),
}


def get(name: str) -> Upstream:
    """The pinned entry called ``name``.

    Raises:
        KeyError: naming the unknown entry and the known ones.
    """
    for upstream in UPSTREAMS:
        if upstream.name == name:
            return upstream
    raise KeyError(f"no upstream called {name!r}; known: {', '.join(u.name for u in UPSTREAMS)}")


def version_tuple(version: str) -> tuple[int, ...]:
    """``v3.17.2`` or ``3.17.2-bookworm`` -> ``(3, 17, 2)`` for floor comparisons."""
    core = version.lstrip("v").split("-", 1)[0]
    return tuple(int(part) for part in core.split(".") if part.isdigit())
