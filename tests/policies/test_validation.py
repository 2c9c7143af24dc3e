"""Offline schema validation: bundled strict schemas for built-in kinds, our schemas for custom resources."""

from __future__ import annotations

import time
from typing import Any

import kubernetes_validate
import pytest

from platform_components.errors import ValidationFailed
from platform_components.validation import (
    CUSTOM_SCHEMAS,
    Problem,
    available_kubernetes_versions,
    validate_objects,
)

from .builders import deployment, find, load, main_container

Objects = list[dict[str, Any]]


def _paths(problems: list[Problem]) -> set[str]:
    return {problem.path for problem in problems}


def test_hardened_objects_and_custom_resources_are_valid() -> None:
    assert validate_objects(load("hardened") + load("custom_resources")) == []


@pytest.mark.parametrize("version", available_kubernetes_versions())
def test_the_fixtures_are_valid_for_every_bundled_version(version: str) -> None:
    assert validate_objects(load("hardened") + load("custom_resources"), kubernetes_version=version) == []


def test_agrees_with_kubernetes_validate_on_built_in_kinds() -> None:
    # Our loader reads kubernetes-validate's files itself; the library must accept what we accept...
    for obj in load("hardened"):
        kubernetes_validate.validate(obj, "1.31", strict=True)
    # ...and the first error it finds must be among ours.
    broken = load("hardened")
    deployment(broken)["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 3
    with pytest.raises(kubernetes_validate.ValidationError) as caught:
        kubernetes_validate.validate(deployment(broken), "1.31", strict=True)
    expected = ".".join(str(part) for part in caught.value.absolute_path)
    problems = validate_objects([deployment(broken)])
    assert [".".join(p.path.replace("[", ".").replace("]", "").split(".")) for p in problems] == [expected]


def test_a_broken_deployment_reports_all_its_errors_at_once() -> None:
    objects = load("hardened")
    broken = deployment(objects)
    broken["spec"]["replicas"] = 2.0
    broken["spec"]["replcias"] = 2
    container = main_container(objects)
    container["ports"][0]["containerPort"] = "8080"
    del container["name"]
    container["securityContext"]["runAsNonroot"] = True
    broken["metadata"]["labels"]["tier"] = 3

    problems = validate_objects([broken])

    assert all(problem.object_ref == "Deployment/serving/model-server" for problem in problems)
    base = "spec.template.spec.containers[0]"
    assert _paths(problems) == {
        "spec.replicas",
        "spec.replcias",
        f"{base}.ports[0].containerPort",
        f"{base}.name",
        f"{base}.securityContext.runAsNonroot",
        "metadata.labels.tier",
    }
    by_path = {problem.path: problem.message for problem in problems}
    assert "write 2" in by_path["spec.replicas"]
    assert "did you mean 'replicas'" in by_path["spec.replcias"]
    assert "did you mean 'runAsNonRoot'" in by_path[f"{base}.securityContext.runAsNonroot"]
    assert "required field 'name'" in by_path[f"{base}.name"]
    assert "expected integer" in by_path[f"{base}.ports[0].containerPort"]


def test_a_non_integral_float_where_an_int_belongs_fails() -> None:
    objects = load("hardened")
    deployment(objects)["spec"]["replicas"] = 1.5
    problems = validate_objects([deployment(objects)])
    assert [(p.path, p.message) for p in problems] == [("spec.replicas", "1.5 is a float; expected integer")]


def test_an_unknown_custom_kind_is_a_problem_not_a_pass() -> None:
    unknown = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "m"},
    }
    problems = validate_objects([unknown])
    assert len(problems) == 1
    assert problems[0].object_ref == "InferenceService//m"
    assert "no schema for kind InferenceService (serving.kserve.io/v1beta1)" in problems[0].message


def test_a_removed_built_in_api_version_is_a_problem() -> None:
    cronjob = find(load("hardened"), "CronJob", "drift-monitor")
    cronjob["apiVersion"] = "batch/v1beta1"
    problems = validate_objects([cronjob], kubernetes_version="1.31")
    assert [p.path for p in problems] == ["kind"]
    assert "Kubernetes 1.31 has no batch/v1beta1 CronJob" in problems[0].message


def test_a_crd_based_k8s_io_group_is_not_mistaken_for_a_built_in() -> None:
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "serving"},
    }
    problems = validate_objects([route])
    assert len(problems) == 1
    assert (
        "no built-in gateway.networking.k8s.io/v1 HTTPRoute; if it is a CRD, add a JSON schema"
        in problems[0].message
    )


def test_the_kubernetes_version_decides_which_fields_exist() -> None:
    # Pod-level resources arrived in 1.32: unknown to the 1.31 schema, accepted by 1.32.
    objects = load("hardened")
    deployment(objects)["spec"]["template"]["spec"]["resources"] = {"limits": {"cpu": "2", "memory": "2Gi"}}
    assert _paths(validate_objects([deployment(objects)], kubernetes_version="1.31")) == {
        "spec.template.spec.resources"
    }
    assert validate_objects([deployment(objects)], kubernetes_version="1.32") == []


@pytest.mark.parametrize("version", ["1.31", "v1.31", "1.31.4"])
def test_version_spellings_are_accepted(version: str) -> None:
    assert validate_objects(load("bare_deployment"), kubernetes_version=version) == []


@pytest.mark.parametrize("version", ["1.20", "2.0", "latest", ""])
def test_an_unbundled_version_is_refused_with_the_available_list(version: str) -> None:
    with pytest.raises(ValidationFailed, match=r"has no bundled schemas; use one of 1\.25, .*1\.31.*1\.37"):
        validate_objects([], kubernetes_version=version)


def test_objects_without_identity_are_problems() -> None:
    problems = validate_objects(
        [{"kind": "ConfigMap", "metadata": {"name": "a"}}, {"apiVersion": "v1", "kind": "ConfigMap"}, "x"]
    )
    assert [(p.object_ref, p.path) for p in problems] == [
        ("ConfigMap//a", "apiVersion"),
        ("ConfigMap//", "metadata.name"),
        ("?/?/objects[2]", ""),
    ]


def test_every_custom_kind_has_a_valid_fixture() -> None:
    kinds = {
        (obj["apiVersion"].split("/")[0], obj["apiVersion"].split("/")[1], obj["kind"])
        for obj in load("custom_resources")
    }
    assert kinds == set(CUSTOM_SCHEMAS)


def _custom(kind: str) -> dict[str, Any]:
    return next(obj for obj in load("custom_resources") if obj["kind"] == kind)


def test_model_errors_are_all_reported() -> None:
    model = _custom("Model")
    del model["spec"]["storageUri"]
    model["spec"]["storageUrl"] = "gs://x"
    model["spec"]["replicas"] = "2"
    model["spec"]["memory"] = "lots"
    problems = validate_objects([model])
    assert _paths(problems) == {"spec.storageUri", "spec.storageUrl", "spec.replicas", "spec.memory"}
    assert "did you mean 'storageUri'" in {p.path: p.message for p in problems}["spec.storageUrl"]


def test_model_cannot_have_both_explainer_and_llm() -> None:
    model = _custom("Model")
    model["spec"]["explainer"] = {"type": "anchor_tabular", "modelRef": "credit-default"}
    model["spec"]["llm"] = {"modelRef": "chat"}
    problems = validate_objects([model])
    assert [(p.path, p.message) for p in problems] == [
        ("spec", "explainer, llm cannot all be set together; keep only one")
    ]


def test_server_pod_spec_overrides_use_core_types() -> None:
    server = _custom("Server")
    pod = server["spec"]["podSpec"]
    pod["containers"].append({"image": "seldonio/mlserver:1.7.1"})
    pod["containers"][0]["resources"]["limits"]["gpu"] = {"count": 1}
    pod["hostUsers"] = False  # a core PodSpec field Seldon's override type does not carry
    problems = validate_objects([server])
    assert _paths(problems) == {
        "spec.podSpec.containers[1].name",
        "spec.podSpec.containers[0].resources.limits.gpu",
        "spec.podSpec.hostUsers",
    }


def test_service_monitor_needs_a_selector_and_valid_durations() -> None:
    monitor = _custom("ServiceMonitor")
    del monitor["spec"]["selector"]
    monitor["spec"]["endpoints"][0]["interval"] = "30 seconds"
    monitor["spec"]["endpoints"][0]["relabelings"][0]["action"] = "rename"
    problems = validate_objects([monitor])
    assert _paths(problems) == {
        "spec.selector",
        "spec.endpoints[0].interval",
        "spec.endpoints[0].relabelings[0].action",
    }


def test_pod_monitor_endpoints_are_strict() -> None:
    monitor = _custom("PodMonitor")
    monitor["spec"]["podMetricsEndpoints"][0]["intervall"] = "15s"
    problems = validate_objects([monitor])
    assert [(p.path, "did you mean 'interval'" in p.message) for p in problems] == [
        ("spec.podMetricsEndpoints[0].intervall", True)
    ]


def test_prometheus_rule_needs_exactly_one_of_record_and_alert() -> None:
    rule_set = _custom("PrometheusRule")
    rules = rule_set["spec"]["groups"][0]["rules"]
    rules[0]["alert"] = "AlsoAnAlert"
    del rules[1]["alert"]
    rules[1]["for"] = "ten minutes"
    problems = validate_objects([rule_set])
    assert _paths(problems) == {
        "spec.groups[0].rules[0]",
        "spec.groups[0].rules[1]",
        "spec.groups[0].rules[1].for",
    }
    messages = {p.path: p.message for p in problems}
    assert messages["spec.groups[0].rules[0]"] == "set exactly one of alert, record; found alert, record"
    assert messages["spec.groups[0].rules[1]"] == "set exactly one of alert, record; found none"


def test_custom_resource_metadata_is_the_strict_core_object_meta() -> None:
    model = _custom("Model")
    model["metadata"]["label"] = {"a": "b"}
    problems = validate_objects([model])
    assert [p.path for p in problems] == ["metadata.label"]
    assert "did you mean 'labels'" in problems[0].message


def test_two_hundred_objects_validate_in_under_two_seconds() -> None:
    objects = (load("hardened") + load("custom_resources")) * 11
    validate_objects(objects[:20])  # schemas load once per process; the budget is for a render's validation
    started = time.perf_counter()
    assert validate_objects(objects[:200]) == []
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize("quantity", ["1GB", "one", "1.5 Gi", "-"])
def test_a_malformed_quantity_fails_offline(quantity: str) -> None:
    objects = load("hardened")
    main_container(objects)["resources"]["limits"]["memory"] = quantity
    problems = validate_objects([deployment(objects)])
    assert [(p.path, p.message) for p in problems] == [
        (
            "spec.template.spec.containers[0].resources.limits.memory",
            f"{quantity!r} is not a Kubernetes quantity such as 500m, 2, 512Mi or 1Gi",
        )
    ]


@pytest.mark.parametrize("quantity", ["500m", "2", "1.5", "512Mi", "1e3", 2, 0.5])
def test_well_formed_quantities_pass(quantity: object) -> None:
    objects = load("hardened")
    main_container(objects)["resources"]["limits"]["cpu"] = quantity
    assert validate_objects([deployment(objects)]) == []


def test_custom_resource_patterns_explain_the_expected_form() -> None:
    model = _custom("Model")
    model["spec"]["memory"] = "lots"
    monitor = _custom("ServiceMonitor")
    monitor["spec"]["endpoints"][0]["interval"] = "30 seconds"
    messages = [p.message for p in validate_objects([model, monitor])]
    assert messages == [
        "'lots' is not a Kubernetes quantity such as 500m, 2, 512Mi or 1Gi",
        "'30 seconds' is not a Prometheus duration such as 30s, 5m or 1h30m",
    ]


def test_a_selector_that_misses_the_template_labels_is_refused() -> None:
    objects = load("hardened")
    deployment(objects)["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = "model-servr"
    problems = validate_objects([deployment(objects)])
    assert [p.path for p in problems] == ["spec.selector"]
    assert "does not match the pod template's labels" in problems[0].message
    deployment(objects)["spec"]["selector"] = {
        "matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": ["model-server"]}]
    }
    assert validate_objects([deployment(objects)]) == []
    deployment(objects)["spec"]["selector"] = {}
    assert [p.message for p in validate_objects([deployment(objects)])] == [
        "selector is empty; select the pod template's labels (matchLabels)"
    ]


def test_pod_level_mistakes_the_api_server_or_kubelet_would_catch_late() -> None:
    objects = load("hardened")
    pod = deployment(objects)["spec"]["template"]["spec"]
    pod["initContainers"][0]["name"] = "mlserver"  # repeats the main container's name
    container = pod["containers"][0]
    container["ports"][0]["name"] = "metrics-http-port"  # 17 characters: not an IANA service name
    container["volumeMounts"].append({"name": "cache", "mountPath": "/cache"})
    problems = validate_objects([deployment(objects)])
    base = "spec.template.spec.containers[0]"
    assert {p.path for p in problems} == {
        f"{base}.name",
        f"{base}.ports[0].name",
        f"{base}.volumeMounts[2].name",
        f"{base}.livenessProbe.httpGet.port",  # the probes still name port "http"
        f"{base}.readinessProbe.httpGet.port",
    }


def test_job_pods_need_a_terminating_restart_policy() -> None:
    cronjob = find(load("hardened"), "CronJob", "drift-monitor")
    del cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"]
    problems = validate_objects([cronjob])
    assert [(p.path, p.message) for p in problems] == [
        (
            "spec.jobTemplate.spec.template.spec.restartPolicy",
            "a Job's pods need restartPolicy Never or OnFailure, got None",
        )
    ]


def test_statefulset_mounts_may_name_volume_claim_templates() -> None:
    statefulset = find(load("hardened"), "StatefulSet", "postgres")
    assert validate_objects([statefulset]) == []
    statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] = "pgdata"
    assert [p.path for p in validate_objects([statefulset])] == [
        "spec.template.spec.containers[0].volumeMounts[0].name"
    ]
