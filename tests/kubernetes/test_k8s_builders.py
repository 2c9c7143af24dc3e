"""Pure builders (names, labels, credentials, pod specs, custom resources, alerts): no Pulumi needed."""

# Fixtures come from pulumi_fixtures (see its docstring); pytest resolves them by parameter name.
# ruff: noqa: F811

from __future__ import annotations

from typing import Any

import pytest
from pulumi_fixtures import config_for, render_program  # noqa: F401

from platform_components.errors import ConfigError
from platform_components.kubernetes import pods
from platform_components.kubernetes.model import alert_rules, dashboard, rule_group
from platform_components.kubernetes.naming import derive_credential, labels, object_name, selector
from platform_components.render import kubernetes_objects
from platform_components.settings import ModelDeploymentSettings, Resources


def test_long_names_are_cut_to_63_with_a_stable_hash() -> None:
    long = object_name("model", "x" * 80, "dashboards")
    assert len(long) == 63 and long == object_name("model", "x" * 80, "dashboards")
    assert long != object_name("model", "x" * 80, "rules")
    assert object_name("mlops", "mlflow") == "mlops-mlflow"


def test_selectors_are_a_subset_of_labels() -> None:
    assert selector("mlflow", "mlops").items() <= labels("mlflow", "mlops").items()


def test_derived_credentials_are_stable_distinct_and_seed_bound() -> None:
    first = derive_credential("seed-0123456789abcdef", "postgres-password")
    assert first == derive_credential("seed-0123456789abcdef", "postgres-password")
    assert first != derive_credential("seed-0123456789abcdef", "mlflow-admin-password")
    assert first != derive_credential("seed-0123456789abcdeX", "postgres-password")
    assert len(first) == 32 and first.replace("-", "").replace("_", "").isalnum()


def test_containers_are_hardened_and_credentials_come_from_secrets() -> None:
    spec = pods.container(
        "app",
        "example/app:1.0",
        resources=Resources(),
        readiness=pods.tcp_probe(8080),
        liveness=pods.tcp_probe(8080),
        env={"MODE": "prod"},
        secret_env={"TOKEN": ("app-secret", "token")},
    )
    assert spec["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "app-secret", "key": "token"}}} in spec[
        "env"
    ]
    assert spec["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}


def test_network_policy_rules_without_ports_mean_every_port() -> None:
    policy = pods.allow_policy("p", "ns", {"a": "b"}, egress=[([{"podSelector": {}}], [])])
    assert policy["spec"]["egress"] == [{"to": [{"podSelector": {}}]}]
    assert pods.outside_cluster()["ipBlock"]["except"] == ["169.254.169.254/32"]


def model_settings(**thresholds: Any) -> ModelDeploymentSettings:
    return ModelDeploymentSettings(
        name="credit",
        registered_model="credit-default",
        thresholds=thresholds,
    )


def test_alert_rules_carry_severity_for_and_runbook() -> None:
    rules = alert_rules(model_settings(max_p95_latency_seconds=0.25))
    assert len(rules) == 5
    latency = next(rule for rule in rules if rule.alert == "ModelLatencyHigh")
    assert latency.expr.endswith("> 0.25") and 'model="credit"' in latency.expr
    group = rule_group(model_settings())
    assert group["name"] == "model-credit"
    assert all(
        rule["for"] and rule["labels"]["severity"] and rule["annotations"]["runbook_url"]
        for rule in group["rules"]
    )
    assert all(rule["labels"]["model"] == "credit" for rule in group["rules"])


def test_dashboard_has_traffic_latency_drift_and_accuracy_panels() -> None:
    titles = [panel["title"] for panel in dashboard(model_settings())["panels"]]
    assert titles == [
        "Requests per second",
        "Server error share",
        "Mean latency (s)",
        "Drifted features",
        "Largest feature PSI",
        "Prediction drift (KS statistic)",
        "Accuracy (labelled)",
    ]


def test_kind_mode_selects_the_kind_context(render_program: Any) -> None:
    result = render_program(config_for(cluster={"mode": "kind", "kind_name": "laptop"}))
    provider = next(r for r in result.resources if r.type == "pulumi:providers:kubernetes")
    assert provider.inputs["context"] == "kind-laptop"


def test_existing_mode_passes_kubeconfig_and_context(render_program: Any) -> None:
    result = render_program(config_for(cluster={"kubeconfig": "/etc/kube/config", "context": "prod-eu"}))
    provider = next(r for r in result.resources if r.type == "pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == "/etc/kube/config" and provider.inputs["context"] == "prod-eu"
    objects = kubernetes_objects(result.resources)
    assert objects, "nothing rendered"


def test_eks_mode_without_the_extra_names_the_key_and_the_fix(render_program: Any) -> None:
    pytest.importorskip("pulumi")
    try:
        import pulumi_eks  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"mlops:cluster\.mode: 'eks' needs the eks extra.*pip install"):
            render_program(config_for(cluster={"mode": "eks"}))
    else:
        pytest.skip(
            "pulumi-eks is installed: the EKS path needs AWS invokes the offline render does not mock"
        )


def test_a_changed_model_declaration_restarts_the_monitor_and_configmaps_update_in_place(
    render_program: Any,
) -> None:
    """The monitor reads models.json only at start: a new threshold must restart it (its checksum changes).

    The provider updates ConfigMaps and Secrets in place (the engine tier saw it replace the fixed-name
    models.json ConfigMap, a delete then a create, on every threshold change).
    """

    def monitor(psi: float) -> tuple[dict[str, Any], Any]:
        model = {"name": "credit-default", "registered_model": "credit-default", "thresholds": {"psi": psi}}
        result = render_program(config_for(models=[model]))
        provider = next(r for r in result.resources if r.type == "pulumi:providers:kubernetes")
        statefulset = next(
            obj
            for obj in kubernetes_objects(result.resources)
            if obj["kind"] == "StatefulSet" and obj["metadata"]["name"] == "model-monitor"
        )
        return statefulset["spec"]["template"]["metadata"]["annotations"], provider

    before, provider = monitor(0.2)
    after, _ = monitor(0.3)
    key = "mlops.platform/models-checksum"
    assert before[key] != after[key]
    assert monitor(0.2)[0][key] == before[key]  # stable for the same declaration: no restart on every up
    assert provider.inputs["enableConfigMapMutable"] == "true"  # provider config travels as strings
    assert provider.inputs["enableSecretMutable"] == "true"
