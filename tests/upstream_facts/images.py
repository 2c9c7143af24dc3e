"""Images the upstream installs pull where upstream's own files are not in ../shared/upstream (sub-charts)."""

from __future__ import annotations

from upstream_facts import Fact

_CHARTS = "prometheus-community/helm-charts"

FACTS = [
    Fact(
        key="images.kube_prometheus_stack.subchart_versions",
        statement="kube-prometheus-stack 81.6.2 depends on these sub-chart versions (Chart.yaml)",
        source=f"{_CHARTS} charts/kube-prometheus-stack/Chart.yaml@kube-prometheus-stack-81.6.2",
        value={"kube-state-metrics": "7.1.0", "prometheus-node-exporter": "4.51.1", "grafana": "11.1.1"},
    ),
    Fact(
        key="images.kube_state_metrics",
        statement="kube-state-metrics chart 7.1.0 pulls registry.k8s.io/kube-state-metrics/"
        "kube-state-metrics tagged v + its appVersion 2.18.0 (values.yaml leaves tag empty)",
        source=f"{_CHARTS} charts/kube-state-metrics/values.yaml@kube-state-metrics-7.1.0",
        value="registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.18.0",
    ),
    Fact(
        key="images.node_exporter",
        statement="prometheus-node-exporter chart 4.51.1 pulls quay.io/prometheus/node-exporter tagged v + "
        "its appVersion 1.10.2",
        source=f"{_CHARTS} charts/prometheus-node-exporter/values.yaml@prometheus-node-exporter-4.51.1",
        value="quay.io/prometheus/node-exporter:v1.10.2",
    ),
    Fact(
        key="images.grafana",
        statement="grafana chart 11.1.1 pulls docker.io/grafana/grafana at its appVersion 12.3.2, the "
        "dashboard sidecar quay.io/kiwigrid/k8s-sidecar:2.5.0 and the init-chown "
        "docker.io/library/busybox:1.37.0",
        source="grafana-community/helm-charts charts/grafana/values.yaml@grafana-11.1.1",
        value=(
            "docker.io/grafana/grafana:12.3.2",
            "quay.io/kiwigrid/k8s-sidecar:2.5.0",
            "docker.io/library/busybox:1.37.0",
        ),
    ),
    Fact(
        key="images.kfp_cache_image_untagged",
        statement="KFP's pipeline-install-config sets cacheImage to ghcr.io/containerd/busybox without a tag",
        source=(
            "kubeflow/pipelines manifests/kustomize/base/installs/generic/pipeline-install-config.yaml@2.17.0"
        ),
        value="ghcr.io/containerd/busybox",
    ),
]
