"""Upstream facts: how kube-prometheus-stack's Grafana files dashboards in folders (the dashboard sidecar).

kube-prometheus-stack 81.6.2 installs the grafana chart 11.1.1 (grafana-community/helm-charts, Chart.yaml's
dependencies; fact images.chart_dependencies), whose sidecar is kiwigrid/k8s-sidecar 2.5.0 and whose Grafana
is 12.3.2. Neither chart's values.yaml nor the sidecar is in ../shared/upstream: read with the fetch tool.
platform_components/kubernetes/monitoring.py sets the two values; project.py names the annotation.
"""

from __future__ import annotations

from upstream_facts import Fact

CHART = "grafana-community/helm-charts charts/grafana"
GRAFANA_COMMIT = "669d0865b2ad17e51ece47d196c8f1af9aff37b8"

FACTS = [
    Fact(
        key="grafana.sidecar.folder_annotation_value",
        statement="sidecar.dashboards.folderAnnotation (default null) names the annotation the dashboard "
        "sidecar reads on a dashboard ConfigMap; the chart passes it to the sidecar as FOLDER_ANNOTATION",
        source=f"{CHART}/values.yaml@grafana-11.1.1",
        value=("sidecar", "dashboards", "folderAnnotation"),
    ),
    Fact(
        key="grafana.sidecar.folders_from_files_structure_value",
        statement="sidecar.dashboards.provider.foldersFromFilesStructure (default false) goes into the "
        "sidecar provider's options; when true the chart leaves out the provider's folder and folderUid "
        "(templates/_config.tpl grafana.configDashboardProviderData)",
        source=f"{CHART}/templates/_config.tpl@grafana-11.1.1",
        value=("sidecar", "dashboards", "provider", "foldersFromFilesStructure"),
    ),
    Fact(
        key="k8s_sidecar.folder_annotation_relative",
        statement="The sidecar writes a resource annotated with FOLDER_ANNOTATION into that folder, joined "
        "under its FOLDER (/tmp/dashboards) when the value is relative; unannotated ones stay in FOLDER",
        source="kiwigrid/k8s-sidecar src/resources.py@2.5.0",
        value="/tmp/dashboards",
    ),
    Fact(
        key="grafana.provisioning.folders_from_files_structure",
        statement="With foldersFromFilesStructure a file provider puts a dashboard in the folder named after "
        "its file's directory, and a file directly in the provider's path in the General folder (no folder). "
        "Read at a 2026 commit of grafana main, not at the v12.3.2 tag (too large a repository to fetch)",
        source=f"grafana/grafana pkg/services/provisioning/dashboards/file_reader.go@{GRAFANA_COMMIT}",
        value="General",
    ),
]
