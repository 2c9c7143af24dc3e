"""kube-prometheus-stack 81.6.2 values and templates the monitoring release relies on."""

from __future__ import annotations

from upstream_facts import Fact

VALUES = (
    "prometheus-community/helm-charts charts/kube-prometheus-stack/values.yaml@kube-prometheus-stack-81.6.2"
)
OPERATOR = "prometheus-community/helm-charts charts/kube-prometheus-stack/templates/prometheus-operator"

FACTS = [
    Fact(
        key="kps.prometheus.resources_path",
        statement="Prometheus's container resources are set at this values path; the chart's default is {}",
        source=VALUES,
        value=("prometheus", "prometheusSpec", "resources"),
    ),
    Fact(
        key="kps.alertmanager.resources_path",
        statement="Alertmanager's container resources are set at this values path; the chart's default is {}",
        source=VALUES,
        value=("alertmanager", "alertmanagerSpec", "resources"),
    ),
    Fact(
        key="kps.operator.webhook_port",
        statement="With TLS on (the default) the operator listens for its admission webhook on "
        "prometheusOperator.tls.internalPort, 10250, the target of the webhook Service's 443",
        source=f"{OPERATOR}/deployment.yaml@kube-prometheus-stack-81.6.2",
        value=10250,
    ),
    Fact(
        key="kps.operator.pod_labels",
        statement="The operator's pods are selected by app=<chart name>-operator and release=<release name>; "
        "the chart name is kube-prometheus-stack unless nameOverride is set",
        source=f"{OPERATOR}/service.yaml@kube-prometheus-stack-81.6.2",
        value={"app": "kube-prometheus-stack-operator"},
    ),
    Fact(
        key="kps.kubelet.port_name",
        statement="The kubelet ServiceMonitor scrapes the kubelet Service's https-metrics port "
        "(kubelet.serviceMonitor.https defaults to true), the kubelet's own port on each node's address",
        source="prometheus-community/helm-charts charts/kube-prometheus-stack/templates/exporters/kubelet/"
        "servicemonitor.yaml@kube-prometheus-stack-81.6.2",
        value="https-metrics",
    ),
    Fact(
        key="prometheus.promtool.module",
        statement="promtool is the Go package cmd/promtool of the prometheus module; `promtool test rules` "
        "runs rule unit tests (input_series, alert_rule_test with exp_alerts)",
        source="prometheus/prometheus cmd/promtool/unittest.go@v0.309.1",
        value="github.com/prometheus/prometheus/cmd/promtool",
    ),
]
