"""Every policy rule: the hardened platform passes, one mutation fails it, a reasoned exception waives it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from platform_components.errors import ValidationFailed
from platform_components.policies import (
    REDACTED,
    RULES,
    Violation,
    check_objects,
    policy_exceptions,
    rule_ids,
)

from .builders import (
    annotate_exception,
    clone,
    deployment,
    find,
    load,
    main_container,
    pod_spec,
)

Objects = list[dict[str, Any]]


@dataclass(frozen=True)
class Case:
    """One failing fixture: ``mutate`` breaks the hardened objects and returns the object to annotate."""

    rule: str
    mutate: Callable[[Objects], dict[str, Any]]
    #: Substring of the violation's path (the field a user must change).
    path: str
    #: Rules the mutation breaks besides ``rule`` (a hostPath volume breaks two controls).
    also: frozenset[str] = frozenset()


def _set(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        target = target.setdefault(key, {})
    target[last] = value


def _container_sc(objects: Objects, field: str, value: Any) -> dict[str, Any]:
    _set(main_container(objects), f"securityContext.{field}", value)
    return deployment(objects)


def _pod(objects: Objects, field: str, value: Any) -> dict[str, Any]:
    _set(pod_spec(objects), field, value)
    return deployment(objects)


def _add_volume(objects: Objects, volume: dict[str, Any]) -> dict[str, Any]:
    pod_spec(objects)["volumes"].append(volume)
    return deployment(objects)


def _drop(objects: Objects, *path: str) -> dict[str, Any]:
    node: Any = main_container(objects)
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return deployment(objects)


def _env(objects: Objects, name: str, value: str) -> dict[str, Any]:
    main_container(objects)["env"].append({"name": name, "value": value})
    return deployment(objects)


def _role_rule(objects: Objects, rule: dict[str, Any]) -> dict[str, Any]:
    role = find(objects, "Role", "monitor")
    role["rules"].append(rule)
    return role


def _remove_default_deny(objects: Objects) -> dict[str, Any]:
    objects.remove(find(objects, "NetworkPolicy", "default-deny"))
    return find(objects, "Namespace", "serving")


def _open_egress(objects: Objects) -> dict[str, Any]:
    policy = find(objects, "NetworkPolicy", "model-server-egress")
    policy["spec"]["egress"][1]["to"][0]["ipBlock"]["except"] = []
    return policy


def _duplicate_configmap(objects: Objects) -> dict[str, Any]:
    copy_ = clone([find(objects, "ConfigMap", "model-server-config")])[0]
    objects.append(copy_)
    return copy_


def _default_namespace(objects: Objects) -> dict[str, Any]:
    config = find(objects, "ConfigMap", "model-server-config")
    del config["metadata"]["namespace"]
    return config


def _configmap_value(objects: Objects) -> dict[str, Any]:
    config = find(objects, "ConfigMap", "model-server-config")
    config["data"]["MLFLOW_BACKEND_STORE_URI"] = "postgresql+psycopg2://mlflow:hunter2@postgres:5432/mlflow"
    return config


def _secret_value(objects: Objects) -> dict[str, Any]:
    secret = find(objects, "Secret", "mlflow-client")
    secret["stringData"]["password"] = "hunter2"
    return secret


def _namespace_label(objects: Objects) -> dict[str, Any]:
    namespace = find(objects, "Namespace", "serving")
    namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "baseline"
    return namespace


def _server_override(objects: Objects) -> dict[str, Any]:
    server = find(objects, "Server", "mlserver")
    server["spec"]["podSpec"]["containers"][0]["securityContext"] = {"runAsUser": 0}
    return server


def _service_type(objects: Objects) -> dict[str, Any]:
    service = find(objects, "Service", "model-server")
    service["spec"]["type"] = "NodePort"
    return service


def _cluster_admin(objects: Objects) -> dict[str, Any]:
    binding = find(objects, "RoleBinding", "monitor")
    binding["roleRef"] = {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "cluster-admin",
    }
    return binding


def _bad_service_name(objects: Objects) -> dict[str, Any]:
    service = find(objects, "Service", "model-server")
    service["metadata"]["name"] = "9-model_server"
    return service


def _long_label(objects: Objects) -> dict[str, Any]:
    target = deployment(objects)
    target["metadata"]["labels"]["mlops.platform/model"] = "credit-default-" + "x" * 60
    return target


CASES = [
    Case(
        "PSS-RESTRICTED-VOLUME-TYPES",
        lambda o: _add_volume(o, {"name": "shared", "nfs": {"server": "nfs", "path": "/"}}),
        "volumes[2].nfs",
    ),
    Case(
        "PSS-RESTRICTED-ALLOW-PRIVILEGE-ESCALATION",
        lambda o: _drop(o, "securityContext", "allowPrivilegeEscalation"),
        "containers[0].securityContext.allowPrivilegeEscalation",
    ),
    Case(
        "PSS-RESTRICTED-RUN-AS-NON-ROOT",
        lambda o: _pod(o, "securityContext.runAsNonRoot", False),
        "spec.template.spec.securityContext.runAsNonRoot",
    ),
    Case(
        "PSS-RESTRICTED-RUN-AS-USER",
        lambda o: _container_sc(o, "runAsUser", 0),
        "containers[0].securityContext.runAsUser",
    ),
    Case(
        "PSS-RESTRICTED-SECCOMP",
        lambda o: _pod(o, "securityContext.seccompProfile.type", "Unconfined"),
        "securityContext.seccompProfile.type",
    ),
    Case(
        "PSS-RESTRICTED-CAPABILITIES",
        lambda o: _container_sc(o, "capabilities.add", ["NET_BIND_SERVICE", "SYS_ADMIN"]),
        "capabilities.add[1]",
    ),
    Case(
        "PSS-BASELINE-PRIVILEGED",
        lambda o: _container_sc(o, "privileged", True),
        "securityContext.privileged",
    ),
    Case("PSS-BASELINE-HOST-NAMESPACES", lambda o: _pod(o, "hostPID", True), "spec.template.spec.hostPID"),
    Case(
        "PSS-BASELINE-HOST-PROCESS",
        lambda o: _container_sc(o, "windowsOptions.hostProcess", True),
        "windowsOptions.hostProcess",
    ),
    Case(
        "PSS-BASELINE-HOST-PATH",
        lambda o: _add_volume(o, {"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}),
        "volumes[2].hostPath",
        also=frozenset({"PSS-RESTRICTED-VOLUME-TYPES"}),
    ),
    Case(
        "PSS-BASELINE-HOST-PORTS",
        lambda o: (
            _set(main_container(o), "ports", [{"containerPort": 8080, "hostPort": 8080}]) or deployment(o)
        ),
        "ports[0].hostPort",
    ),
    Case(
        "PSS-BASELINE-SYSCTLS",
        lambda o: _pod(o, "securityContext.sysctls", [{"name": "kernel.msgmax", "value": "65536"}]),
        "securityContext.sysctls[0].name",
    ),
    Case("PSS-BASELINE-PROC-MOUNT", lambda o: _container_sc(o, "procMount", "Unmasked"), "procMount"),
    Case(
        "PSS-BASELINE-SELINUX",
        lambda o: _container_sc(o, "seLinuxOptions", {"type": "spc_t"}),
        "seLinuxOptions.type",
    ),
    Case(
        "PSS-BASELINE-APPARMOR",
        lambda o: _pod(o, "securityContext.appArmorProfile", {"type": "Unconfined"}),
        "appArmorProfile.type",
    ),
    Case(
        "PSS-BASELINE-PROBE-HOST",
        lambda o: (
            _set(main_container(o), "lifecycle.preStop.httpGet", {"host": "169.254.169.254", "port": 80})
            or deployment(o)
        ),
        "lifecycle.preStop.httpGet.host",
    ),
    Case(
        "RESOURCES-REQUESTS-LIMITS",
        lambda o: _drop(o, "resources", "limits", "memory"),
        "containers[0].resources.limits.memory",
    ),
    Case("PROBES-LIVENESS", lambda o: _drop(o, "livenessProbe"), "containers[0].livenessProbe"),
    Case("PROBES-READINESS", lambda o: _drop(o, "readinessProbe"), "containers[0].readinessProbe"),
    Case(
        "READ-ONLY-ROOT-FILESYSTEM",
        lambda o: _container_sc(o, "readOnlyRootFilesystem", False),
        "containers[0].securityContext.readOnlyRootFilesystem",
    ),
    Case(
        "IMAGE-PINNED",
        lambda o: _set(main_container(o), "image", "docker.io/seldonio/mlserver:latest") or deployment(o),
        "containers[0].image",
    ),
    Case(
        "SERVICE-ACCOUNT-TOKEN",
        lambda o: _pod(o, "automountServiceAccountToken", True),
        "spec.template.spec.automountServiceAccountToken",
    ),
    Case("SELDON-SERVER-OVERRIDES", _server_override, "spec.podSpec.containers[0].securityContext.runAsUser"),
    Case("SERVICE-EXPOSURE", _service_type, "spec.type"),
    Case("NAMESPACE-PSS-LABELS", _namespace_label, 'labels["pod-security.kubernetes.io/enforce"]'),
    Case("NETWORKPOLICY-DEFAULT-DENY", _remove_default_deny, "metadata.name"),
    Case("NETWORKPOLICY-METADATA-EGRESS", _open_egress, "spec.egress[1].to[0].ipBlock"),
    Case("SECRET-ENV-PLAINTEXT", lambda o: _env(o, "DB_PASSWORD", "hunter2"), "containers[0].env[3].value"),
    Case("SECRET-CONFIGMAP-PLAINTEXT", _configmap_value, "data.MLFLOW_BACKEND_STORE_URI"),
    Case("SECRET-PLAINTEXT-VALUE", _secret_value, "stringData.password"),
    Case(
        "RBAC-WILDCARD",
        lambda o: _role_rule(o, {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}),
        "rules[1].verbs",
    ),
    Case(
        "RBAC-ESCALATION-VERBS",
        lambda o: _role_rule(
            o, {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["bind"]}
        ),
        "rules[1].verbs",
    ),
    Case(
        "RBAC-SECRETS-READ",
        lambda o: _role_rule(o, {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}),
        "rules[1].resources",
    ),
    Case(
        "RBAC-POD-EXEC",
        lambda o: _role_rule(o, {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}),
        "rules[1].resources",
    ),
    Case("RBAC-CLUSTER-ADMIN", _cluster_admin, "roleRef.name"),
    Case("NAME-VALID", _bad_service_name, "metadata.name"),
    Case("LABEL-VALID", _long_label, 'labels["mlops.platform/model"]'),
    Case("NAMESPACE-EXPLICIT", _default_namespace, "metadata.namespace"),
    Case("NAME-UNIQUE", _duplicate_configmap, "metadata.name"),
]


@pytest.fixture
def hardened() -> Objects:
    return load("hardened") + [obj for obj in load("custom_resources") if obj["kind"] == "Server"]


def _rules(violations: list[Violation]) -> set[str]:
    return {violation.rule for violation in violations}


def test_the_hardened_platform_slice_passes_every_rule(hardened: Objects) -> None:
    assert check_objects(hardened) == []


def test_every_rule_has_a_failing_fixture() -> None:
    exception_rules = {"POLICY-EXCEPTION-REASON", "POLICY-EXCEPTION-UNKNOWN-RULE"}
    assert {case.rule for case in CASES} | exception_rules == set(rule_ids())


def test_rule_ids_are_unique_and_stable() -> None:
    # Exceptions in manifests and reviewed skip lists refer to these ids: renaming one is a breaking change.
    assert rule_ids() == [
        "PSS-RESTRICTED-VOLUME-TYPES",
        "PSS-RESTRICTED-ALLOW-PRIVILEGE-ESCALATION",
        "PSS-RESTRICTED-RUN-AS-NON-ROOT",
        "PSS-RESTRICTED-RUN-AS-USER",
        "PSS-RESTRICTED-SECCOMP",
        "PSS-RESTRICTED-CAPABILITIES",
        "PSS-BASELINE-PRIVILEGED",
        "PSS-BASELINE-HOST-NAMESPACES",
        "PSS-BASELINE-HOST-PROCESS",
        "PSS-BASELINE-HOST-PATH",
        "PSS-BASELINE-HOST-PORTS",
        "PSS-BASELINE-SYSCTLS",
        "PSS-BASELINE-PROC-MOUNT",
        "PSS-BASELINE-SELINUX",
        "PSS-BASELINE-APPARMOR",
        "PSS-BASELINE-PROBE-HOST",
        "RESOURCES-REQUESTS-LIMITS",
        "PROBES-LIVENESS",
        "PROBES-READINESS",
        "READ-ONLY-ROOT-FILESYSTEM",
        "IMAGE-PINNED",
        "SERVICE-ACCOUNT-TOKEN",
        "SELDON-SERVER-OVERRIDES",
        "SERVICE-EXPOSURE",
        "NAMESPACE-PSS-LABELS",
        "NETWORKPOLICY-DEFAULT-DENY",
        "NETWORKPOLICY-METADATA-EGRESS",
        "SECRET-ENV-PLAINTEXT",
        "SECRET-CONFIGMAP-PLAINTEXT",
        "SECRET-PLAINTEXT-VALUE",
        "RBAC-WILDCARD",
        "RBAC-ESCALATION-VERBS",
        "RBAC-SECRETS-READ",
        "RBAC-POD-EXEC",
        "RBAC-CLUSTER-ADMIN",
        "NAME-VALID",
        "LABEL-VALID",
        "NAMESPACE-EXPLICIT",
        "NAME-UNIQUE",
        "POLICY-EXCEPTION-REASON",
        "POLICY-EXCEPTION-UNKNOWN-RULE",
    ]
    assert len({rule.id for rule in RULES}) == len(RULES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.rule)
def test_rule_fails_on_its_fixture_and_names_the_field(hardened: Objects, case: Case) -> None:
    target = case.mutate(hardened)
    violations = check_objects(hardened)
    assert _rules(violations) == {case.rule} | case.also
    mine = [violation for violation in violations if violation.rule == case.rule]
    assert any(case.path in violation.path for violation in mine), [v.path for v in mine]
    kind, namespace, name = mine[0].object_ref.split("/")
    assert (kind, name) == (target["kind"], target["metadata"]["name"])
    assert namespace == target["metadata"].get("namespace", "")
    # A message says what is wrong and what to do about it, in more than a few words.
    assert all(len(violation.message.split()) >= 6 for violation in mine)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.rule)
def test_reasoned_exception_waives_exactly_the_named_rules(hardened: Objects, case: Case) -> None:
    target = case.mutate(hardened)
    annotate_exception(target, ",".join(sorted({case.rule} | case.also)), "reviewed: upstream needs it")
    assert check_objects(hardened) == []
    assert any(case.rule in exception.rules for exception in policy_exceptions(hardened))


@pytest.mark.parametrize("case", CASES[:3] + CASES[-3:], ids=lambda case: case.rule)
def test_exception_without_a_reason_waives_nothing_and_is_reported(hardened: Objects, case: Case) -> None:
    target = case.mutate(hardened)
    annotate_exception(target, ",".join(sorted({case.rule} | case.also)), "   ")
    rules = _rules(check_objects(hardened))
    assert rules == {case.rule, "POLICY-EXCEPTION-REASON"} | case.also


def test_exception_naming_an_unknown_rule_is_a_violation(hardened: Objects) -> None:
    _drop(hardened, "readinessProbe")
    annotate_exception(deployment(hardened), "PROBES-READYNESS", "typo in the rule id")
    violations = check_objects(hardened)
    assert _rules(violations) == {"PROBES-READINESS", "POLICY-EXCEPTION-UNKNOWN-RULE"}
    unknown = next(v for v in violations if v.rule == "POLICY-EXCEPTION-UNKNOWN-RULE")
    assert "PROBES-READYNESS" in unknown.message


def test_exception_rules_themselves_cannot_be_waived(hardened: Objects) -> None:
    annotate_exception(deployment(hardened), "POLICY-EXCEPTION-REASON", "trying to silence the checker")
    assert _rules(check_objects(hardened)) == {"POLICY-EXCEPTION-UNKNOWN-RULE"}


def test_exception_on_the_pod_template_annotations_counts(hardened: Objects) -> None:
    # The fixture's CronJob waives SERVICE-ACCOUNT-TOKEN on its pod template; without that it fails.
    cronjob = find(hardened, "CronJob", "drift-monitor")
    assert check_objects(hardened) == []
    del cronjob["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["annotations"]
    violations = check_objects(hardened)
    assert [(v.rule, v.object_ref) for v in violations] == [
        ("SERVICE-ACCOUNT-TOKEN", "CronJob/serving/drift-monitor")
    ]


def test_bare_deployment_fails_the_expected_set_of_rules() -> None:
    violations = check_objects(load("bare_deployment"))
    assert _rules(violations) == {
        "IMAGE-PINNED",
        "NETWORKPOLICY-DEFAULT-DENY",
        "PROBES-LIVENESS",
        "PROBES-READINESS",
        "PSS-RESTRICTED-ALLOW-PRIVILEGE-ESCALATION",
        "PSS-RESTRICTED-CAPABILITIES",
        "PSS-RESTRICTED-RUN-AS-NON-ROOT",
        "PSS-RESTRICTED-SECCOMP",
        "READ-ONLY-ROOT-FILESYSTEM",
        "RESOURCES-REQUESTS-LIMITS",
        "SERVICE-ACCOUNT-TOKEN",
    }
    prefix = "spec.template.spec.containers[0].resources."
    resources = sorted(
        v.path.removeprefix(prefix) for v in violations if v.rule == "RESOURCES-REQUESTS-LIMITS"
    )
    assert resources == ["limits.cpu", "limits.memory", "requests.cpu", "requests.memory"]
    assert {v.object_ref for v in violations} == {"Deployment/apps/web"}


def test_load_balancer_is_allowed_only_when_asked(hardened: Objects) -> None:
    find(hardened, "Service", "model-server")["spec"]["type"] = "LoadBalancer"
    assert _rules(check_objects(hardened)) == {"SERVICE-EXPOSURE"}
    assert check_objects(hardened, allow_load_balancer=True) == []
    find(hardened, "Service", "model-server")["spec"]["type"] = "NodePort"
    assert _rules(check_objects(hardened, allow_load_balancer=True)) == {"SERVICE-EXPOSURE"}


@pytest.mark.parametrize("field", ["initContainers", "ephemeralContainers"])
def test_pod_security_visits_init_and_ephemeral_containers(hardened: Objects, field: str) -> None:
    pod = pod_spec(hardened)
    pod.setdefault(field, []).append(
        {
            "name": "debug",
            "image": "busybox:1.36",
            "securityContext": {"privileged": True},
            "resources": {
                "requests": {"cpu": "10m", "memory": "8Mi"},
                "limits": {"cpu": "10m", "memory": "8Mi"},
            },
        }
    )
    violations = check_objects(hardened)
    privileged = [v for v in violations if v.rule == "PSS-BASELINE-PRIVILEGED"]
    assert [v.path for v in privileged] == [
        f"spec.template.spec.{field}[{len(pod[field]) - 1}].securityContext.privileged"
    ]
    assert "PSS-RESTRICTED-ALLOW-PRIVILEGE-ESCALATION" in _rules(violations)


@pytest.mark.parametrize(
    ("kind", "template_path"),
    [
        ("Pod", ()),
        ("ReplicaSet", ("spec", "template")),
        ("DaemonSet", ("spec", "template")),
        ("Job", ("spec", "template")),
        ("CronJob", ("spec", "jobTemplate", "spec", "template")),
    ],
)
def test_every_workload_kind_is_checked(hardened: Objects, kind: str, template_path: tuple[str, ...]) -> None:
    template = deployment(hardened)["spec"]["template"]
    template["spec"]["hostNetwork"] = True
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": "other", "namespace": "serving"},
    }
    if template_path:
        node = obj
        for key in template_path[:-1]:
            node = node.setdefault(key, {})
        node[template_path[-1]] = template
    else:
        obj["spec"] = template["spec"]
    hardened.remove(deployment(hardened))
    hardened.append(obj)
    violations = [v for v in check_objects(hardened) if v.rule == "PSS-BASELINE-HOST-NAMESPACES"]
    assert [v.object_ref for v in violations] == [f"{kind}/serving/other"]


def test_jobs_need_no_probes_but_long_running_pods_do(hardened: Objects) -> None:
    cronjob = find(hardened, "CronJob", "drift-monitor")
    assert "livenessProbe" not in cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert check_objects(hardened) == []
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "one-off", "namespace": "serving"},
        "spec": clone([pod_spec(hardened)])[0],
    }
    for container in pod["spec"]["containers"]:
        del container["livenessProbe"]
    hardened.append(pod)
    assert _rules(check_objects(hardened)) == {"PROBES-LIVENESS"}
    pod["spec"]["restartPolicy"] = "Never"
    assert check_objects(hardened) == []


def test_service_account_with_token_off_covers_pods_that_leave_it_unset(hardened: Objects) -> None:
    del pod_spec(hardened)["automountServiceAccountToken"]
    assert (
        check_objects(hardened) == []
    )  # ServiceAccount model-server has automountServiceAccountToken: false
    find(hardened, "ServiceAccount", "model-server")["automountServiceAccountToken"] = True
    assert _rules(check_objects(hardened)) == {"SERVICE-ACCOUNT-TOKEN"}


def test_container_run_as_non_root_may_replace_the_pod_level_setting(hardened: Objects) -> None:
    del pod_spec(hardened)["securityContext"]["runAsNonRoot"]
    violations = check_objects(hardened)
    assert {v.path for v in violations} == {
        "spec.template.spec.initContainers[0].securityContext.runAsNonRoot",
        "spec.template.spec.containers[0].securityContext.runAsNonRoot",
    }
    for container in pod_spec(hardened)["initContainers"] + pod_spec(hardened)["containers"]:
        container["securityContext"]["runAsNonRoot"] = True
    assert check_objects(hardened) == []


@pytest.mark.parametrize(
    ("egress_to", "allowed"),
    [
        ([{"ipBlock": {"cidr": "169.254.0.0/16"}}], False),
        ([{"ipBlock": {"cidr": "10.0.0.0/8"}}], True),
        ([{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}}], True),
        ([{"ipBlock": {"cidr": "::/0"}}], False),
        ([{"ipBlock": {"cidr": "::/0", "except": ["fd00:ec2::254/128"]}}], True),
        ([], False),
        ([{"podSelector": {}}], True),
    ],
)
def test_egress_to_the_cloud_metadata_endpoint_is_refused(
    hardened: Objects, egress_to: list[dict[str, Any]], allowed: bool
) -> None:
    policy = find(hardened, "NetworkPolicy", "model-server-egress")
    policy["spec"]["egress"].append({"to": egress_to, "ports": [{"protocol": "TCP", "port": 80}]})
    assert (check_objects(hardened) == []) is allowed


def test_namespace_without_a_pinned_policy_version_fails(hardened: Objects) -> None:
    del find(hardened, "Namespace", "serving")["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce-version"
    ]
    violations = check_objects(hardened)
    assert [(v.rule, v.path) for v in violations] == [
        ("NAMESPACE-PSS-LABELS", 'metadata.labels["pod-security.kubernetes.io/enforce-version"]')
    ]


def test_a_default_deny_policy_with_rules_is_not_a_default_deny(hardened: Objects) -> None:
    find(hardened, "NetworkPolicy", "default-deny")["spec"]["ingress"] = [{}]
    assert _rules(check_objects(hardened)) == {"NETWORKPOLICY-DEFAULT-DENY"}


def test_secret_data_must_be_redacted_too(hardened: Objects) -> None:
    secret = find(hardened, "Secret", "mlflow-client")
    secret["data"] = {"ca.crt": "LS0tLS1CRUdJTi0tLS0t"}
    violations = check_objects(hardened)
    assert [(v.rule, v.path) for v in violations] == [("SECRET-PLAINTEXT-VALUE", 'data["ca.crt"]')]
    secret["data"] = {"ca.crt": REDACTED}
    assert check_objects(hardened) == []


def test_the_redaction_marker_is_agreed() -> None:
    assert REDACTED == "<redacted>"


def test_violations_are_sorted_and_deterministic() -> None:
    first = check_objects(load("bare_deployment") + load("hardened"))
    second = check_objects(load("hardened") + load("bare_deployment"))
    assert first == second
    assert first == sorted(first, key=lambda v: (v.object_ref, v.rule, v.path))


def test_malformed_objects_do_not_crash_the_rules() -> None:
    weird = [
        {
            "kind": "Deployment",
            "metadata": {"name": "x"},
            "spec": {"template": {"spec": {"containers": "nope"}}},
        },
        {"kind": "Pod", "metadata": None, "spec": {"containers": [None, {"name": 3, "env": {"a": 1}}]}},
        {"kind": "Role", "metadata": {"name": "r"}, "rules": [None, {"verbs": "*"}]},
        {
            "kind": "NetworkPolicy",
            "metadata": {"name": "n"},
            "spec": {"egress": [{"to": [{"ipBlock": {"cidr": "bad"}}]}]},
        },
    ]
    violations = check_objects(weird)
    assert {"NAME-VALID", "NETWORKPOLICY-DEFAULT-DENY"} <= _rules(violations)


def test_non_mapping_objects_are_refused_with_their_index() -> None:
    with pytest.raises(ValidationFailed, match=r"objects\[1\] is a str"):
        check_objects([{"kind": "ConfigMap", "metadata": {"name": "a"}}, "kind: ConfigMap"])


def test_three_thousand_objects_are_checked_in_linear_time() -> None:
    # A render of 1,000 model deployments holds thousands of objects; a rule that scans all objects per pod
    # (quadratic) took 2.5 s here before the lookups were indexed.
    objects = []
    for index in range(230):
        for obj in load("hardened"):
            obj["metadata"]["name"] += f"-{index}"
            objects.append(obj)
    started = time.perf_counter()
    assert check_objects(objects) == []
    assert time.perf_counter() - started < 2.0


def test_seldon_server_overrides_may_leave_fields_unset_but_not_weaken_them(hardened: Objects) -> None:
    # A Server carries a partial pod (the operator merges it into the ServerConfig's StatefulSet), so the
    # "must be set" rules do not apply to it; explicit insecure values do.
    server = find(hardened, "Server", "mlserver")
    assert "securityContext" not in server["spec"]["podSpec"]["containers"][0]
    assert check_objects(hardened) == []
    pod = server["spec"]["podSpec"]
    pod["hostNetwork"] = True
    pod["volumes"] = [{"name": "models", "hostPath": {"path": "/models"}}]
    pod["containers"][0]["securityContext"] = {"capabilities": {"add": ["SYS_ADMIN"]}, "privileged": True}
    server["spec"]["imageOverrides"] = {"agent": {"name": "agent", "image": "seldonio/seldon-agent:latest"}}
    paths = sorted(v.path for v in check_objects(hardened))
    assert paths == [
        "spec.imageOverrides.agent.image",
        "spec.podSpec.containers[0].securityContext.capabilities.add[0]",
        "spec.podSpec.containers[0].securityContext.privileged",
        "spec.podSpec.hostNetwork",
        "spec.podSpec.volumes[0].hostPath",
    ]


def test_a_seldon_server_makes_its_namespace_need_a_default_deny_policy() -> None:
    server = next(obj for obj in load("custom_resources") if obj["kind"] == "Server")
    violations = check_objects([server])
    assert [(v.rule, v.object_ref) for v in violations] == [
        ("NETWORKPOLICY-DEFAULT-DENY", "Server/serving/mlserver")
    ]


def test_all_mutations_at_once_report_exactly_the_union_of_their_rules(hardened: Objects) -> None:
    # Rules must not mask each other: breaking everything at once reports every broken rule, and no other.
    expected: set[str] = set()
    for case in CASES:
        try:
            case.mutate(hardened)
        except (AssertionError, KeyError, ValueError):
            continue  # an earlier mutation renamed or removed the object this one edits
        expected |= {case.rule} | case.also
    assert len(expected) > len(CASES) - 5
    assert _rules(check_objects(hardened)) == expected


@pytest.mark.parametrize(
    ("field", "handler"),
    [("readinessProbe", "httpGet"), ("livenessProbe", "tcpSocket"), ("startupProbe", "httpGet")],
)
def test_probes_may_not_target_another_host(hardened: Objects, field: str, handler: str) -> None:
    main_container(hardened)[field] = {handler: {"host": "10.0.0.1", "port": 8080}}
    violations = check_objects(hardened)
    assert [(v.rule, v.path) for v in violations] == [
        ("PSS-BASELINE-PROBE-HOST", f"spec.template.spec.containers[0].{field}.{handler}.host")
    ]
