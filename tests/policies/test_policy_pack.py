"""The pulumi-policy pack's translation of Pulumi resources, and the pack's wiring.

pulumi-policy cannot be installed in this environment (it needs protobuf<6, kfp needs >=6.31), so the wiring
test loads ``policy/__main__.py`` against a minimal stand-in for the ``pulumi_policy`` module that records
the policies and the reported violations. The rules themselves are the real ones.
"""

from __future__ import annotations

import runpy
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from platform_components.policies import rule_ids
from platform_components.policies.pulumi_objects import object_from_pulumi

from .builders import deployment, find, load

PACK = Path(__file__).resolve().parents[2] / "policy" / "__main__.py"


@pytest.mark.parametrize(
    ("token", "api_version", "kind"),
    [
        ("kubernetes:core/v1:Namespace", "v1", "Namespace"),
        ("kubernetes:apps/v1:Deployment", "apps/v1", "Deployment"),
        ("kubernetes:networking.k8s.io/v1:NetworkPolicy", "networking.k8s.io/v1", "NetworkPolicy"),
        (
            "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
        ),
    ],
)
def test_type_tokens_become_api_version_and_kind(token: str, api_version: str, kind: str) -> None:
    obj = object_from_pulumi(token, {"metadata": {"name": "x", "namespace": "ns"}, "spec": {}}, "logical")
    assert obj == {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "x", "namespace": "ns"},
        "spec": {},
    }


def test_custom_resources_keep_their_own_api_version_and_kind() -> None:
    props = {"apiVersion": "mlops.seldon.io/v1alpha1", "kind": "Model", "metadata": {"name": "m"}, "spec": {}}
    obj = object_from_pulumi("kubernetes:apiextensions.k8s.io:CustomResource", props, "m")
    assert obj is not None and (obj["apiVersion"], obj["kind"]) == ("mlops.seldon.io/v1alpha1", "Model")


@pytest.mark.parametrize(
    "token",
    [
        "kubernetes:helm.sh/v3:Release",
        "kubernetes:helm.sh/v4:Chart",
        "kubernetes:yaml/v2:ConfigGroup",
        "kubernetes:kustomize/v2:Directory",
        "kubernetes:apps/v1:DeploymentPatch",
        "kubernetes:core/v1:ConfigMapList",
        "aws:s3/bucket:Bucket",
        "pulumi:providers:kubernetes",
    ],
)
def test_non_objects_are_skipped(token: str) -> None:
    assert object_from_pulumi(token, {"metadata": {"name": "x"}}, "x") is None


def test_auto_named_resources_get_a_name_as_long_as_pulumi_would_make_it() -> None:
    obj = object_from_pulumi("kubernetes:core/v1:ConfigMap", {"data": {}}, "settings")
    assert obj is not None and obj["metadata"]["name"] == "settings-00000000"


def test_secret_markers_are_unwrapped_and_unknowns_become_none() -> None:
    secret = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "hunter2"}
    props = {
        "metadata": {"name": "s"},
        "data": {"MLFLOW_TRACKING_PASSWORD": secret, "HOST": "04da6b54-80e4-46f7-96ec-b56ff0331ba9"},
    }
    obj = object_from_pulumi("kubernetes:core/v1:ConfigMap", props, "s")
    assert obj is not None and obj["data"] == {"MLFLOW_TRACKING_PASSWORD": "hunter2", "HOST": None}


@dataclass
class _Recorder:
    policies: list[Any] = field(default_factory=list)
    reports: list[tuple[str, str | None]] = field(default_factory=list)

    def report(self, message: str, urn: str | None = None) -> None:
        self.reports.append((message, urn))


def _stand_in_pulumi_policy(recorder: _Recorder) -> types.ModuleType:
    module = types.ModuleType("pulumi_policy")

    class _Policy:
        def __init__(self, **kwargs: Any) -> None:
            self.__dict__.update(kwargs)

    def _pack(**kwargs: Any) -> None:
        recorder.policies.extend(kwargs["policies"])

    module.EnforcementLevel = types.SimpleNamespace(MANDATORY="mandatory")  # type: ignore[attr-defined]
    module.PolicyConfigSchema = _Policy  # type: ignore[attr-defined]
    module.PolicyPack = _pack  # type: ignore[attr-defined]
    module.ResourceValidationPolicy = _Policy  # type: ignore[attr-defined]
    module.StackValidationPolicy = _Policy  # type: ignore[attr-defined]
    for name in ("ReportViolation", "ResourceValidationArgs", "StackValidationArgs"):
        setattr(module, name, object)
    return module


def _resource(obj: dict[str, Any], config: dict[str, Any] | None = None) -> types.SimpleNamespace:
    group, _, version = obj["apiVersion"].rpartition("/")
    token = f"kubernetes:{group or 'core'}/{version}:{obj['kind']}"
    props = {key: value for key, value in obj.items() if key not in ("apiVersion", "kind")}
    urn = f"urn:pulumi:dev::mlops::{token}::{obj['metadata']['name']}"
    return types.SimpleNamespace(
        resource_type=token,
        props=props,
        name=obj["metadata"]["name"],
        urn=urn,
        get_config=lambda: config or {},
    )


def test_the_pack_reports_object_rules_per_resource_and_cross_object_rules_per_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = _Recorder()
    monkeypatch.setitem(sys.modules, "pulumi_policy", _stand_in_pulumi_policy(recorder))
    runpy.run_path(str(PACK), run_name="__main__")
    resource_policy, stack_policy = recorder.policies

    objects = load("hardened")
    objects.remove(find(objects, "NetworkPolicy", "default-deny"))
    deployment(objects)["spec"]["template"]["spec"]["hostNetwork"] = True
    # A live Secret holds real values: the render-only redaction rule must stay quiet.
    find(objects, "Secret", "mlflow-client")["stringData"]["password"] = "the-real-one"
    resources = [_resource(obj) for obj in objects]

    for resource in resources:
        resource_policy.validate(resource, recorder.report)
    assert [(message.split("]")[0], urn) for message, urn in recorder.reports] == [
        ("[PSS-BASELINE-HOST-NAMESPACES", None)
    ]

    recorder.reports.clear()
    stack = types.SimpleNamespace(resources=resources, get_config=dict)
    stack_policy.validate(stack, recorder.report)
    assert [(message.split("]")[0], urn) for message, urn in recorder.reports] == [
        ("[NETWORKPOLICY-DEFAULT-DENY", "urn:pulumi:dev::mlops::kubernetes:core/v1:Namespace::serving")
    ]


def test_the_pack_allows_the_gateway_load_balancer_only_through_its_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = _Recorder()
    monkeypatch.setitem(sys.modules, "pulumi_policy", _stand_in_pulumi_policy(recorder))
    runpy.run_path(str(PACK), run_name="__main__")
    resource_policy = recorder.policies[0]
    assert resource_policy.config_schema.properties == {
        "allowLoadBalancer": {"type": "boolean", "default": False}
    }
    service = find(load("hardened"), "Service", "model-server")
    service["spec"]["type"] = "LoadBalancer"
    resource_policy.validate(_resource(service), recorder.report)
    assert [message.split("]")[0] for message, _ in recorder.reports] == ["[SERVICE-EXPOSURE"]
    recorder.reports.clear()
    resource_policy.validate(_resource(service, {"allowLoadBalancer": True}), recorder.report)
    assert recorder.reports == []


def test_the_pack_readme_lists_every_rule() -> None:
    readme = (PACK.parent / "README.md").read_text()
    missing = [rule_id for rule_id in rule_ids() if f"`{rule_id}`" not in readme]
    assert missing == []
