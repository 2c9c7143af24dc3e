"""The Pulumi program under mocks: structure, ordering, security defaults, no plaintext secrets."""

# Fixtures come from pulumi_fixtures (see its docstring); pytest resolves them by parameter name.
# ruff: noqa: F811

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pulumi
import pytest
from pulumi_fixtures import SEED, config_for, dev_render, model, pulumi_mocks, render_program  # noqa: F401

from platform_components.kubernetes.model import ModelDeployments, ModelDeploymentsArgs, previous_owner_urn
from platform_components.kubernetes.naming import derive_credential
from platform_components.kubernetes.platform import credentials
from platform_components.render import clean, kubernetes_objects, placeholder_secret, releases
from platform_components.settings import ModelDeploymentSettings, load_platform_settings

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    spec = obj.get("spec", {})
    if obj["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    if obj["kind"] in WORKLOAD_KINDS:
        return spec["template"]["spec"]
    return None


def test_no_object_appears_twice(dev_render: Any) -> None:
    objects = kubernetes_objects(dev_render.resources)
    keys = Counter(
        (o["apiVersion"], o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects
    )
    assert objects, "the program registered no Kubernetes objects"
    assert [key for key, count in keys.items() if count > 1] == []


def test_every_resource_is_a_child_of_the_platform(dev_render: Any) -> None:
    # Mock URNs carry the immediate parent's type: "<parent type>$<type>".
    top_level = [r for r in dev_render.resources if r.parent_type in (None, "pulumi:pulumi:Stack")]
    assert [r.type for r in top_level] == ["mlops:platform:MlopsPlatform"]
    components = {r.type for r in dev_render.resources if r.type.startswith("mlops:platform:")}
    assert components == {
        f"mlops:platform:{kind}"
        for kind in (
            "MlopsPlatform",
            "Cluster",
            "MlflowServer",
            "KubeflowPipelines",
            "SeldonServing",
            "Monitoring",
            "ModelDeployments",
            "ModelDeployerAccess",
            "Project",
            "ProjectSpaceSync",
        )
    }
    for resource in dev_render.resources:
        if resource not in top_level:
            assert resource.parent_type in components, resource.urn


def test_names_are_unique_valid_and_short(dev_render: Any) -> None:
    objects = kubernetes_objects(dev_render.resources)
    for obj in objects:
        name = obj["metadata"]["name"]
        assert len(name) <= 63 and DNS_LABEL.match(name), name
    pulumi_names = [r.name for r in dev_render.resources]
    assert len(pulumi_names) == len(set(pulumi_names))
    assert all(len(name) <= 63 for name in pulumi_names)


def test_every_pod_template_is_restricted_with_requests_limits_and_probes(dev_render: Any) -> None:
    objects = kubernetes_objects(dev_render.resources)
    workloads = [o for o in objects if pod_spec(o) is not None]
    assert {o["kind"] for o in workloads} >= {"Deployment", "StatefulSet", "Job"}
    for obj in workloads:
        spec = pod_spec(obj)
        assert spec is not None
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        # Only the monitor calls the API server (the loop's deployer), and its pod says why.
        if where == "StatefulSet/model-monitor":
            annotations = obj["spec"]["template"]["metadata"]["annotations"]
            assert spec["automountServiceAccountToken"] is True, where
            assert annotations["mlops.platform/policy-exception"] == "SERVICE-ACCOUNT-TOKEN", where
        else:
            assert spec["automountServiceAccountToken"] is False, where
        assert spec["serviceAccountName"] not in ("", "default"), where
        for volume in spec.get("volumes", []):
            assert set(volume) - {"name"} <= {"emptyDir", "secret", "configMap", "persistentVolumeClaim"}, (
                where
            )
        for container in spec["containers"] + spec.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context["runAsUser"] > 0, where
            assert set(container["resources"]["requests"]) == {"cpu", "memory"}, where
            assert set(container["resources"]["limits"]) == {"cpu", "memory"}, where
            assert ":" in container["image"] and not container["image"].endswith(":latest"), where
            init = container in spec.get("initContainers", []) and container.get("restartPolicy") != "Always"
            if init:  # the API server forbids probes on init containers (sidecars excepted)
                assert not {"readinessProbe", "livenessProbe", "startupProbe"} & set(container), where
            elif obj["kind"] in ("Deployment", "StatefulSet"):  # long-running servers; Jobs run to completion
                assert {"readinessProbe", "livenessProbe"} <= set(container), where


def test_no_secret_value_appears_in_plain_text(dev_render: Any) -> None:
    settings = load_platform_settings(
        {
            "mlops:secret_seed": placeholder_secret("mlops:secret_seed"),
            "mlops:models": [model("credit-default")],
        }
    )
    generated = credentials(settings)
    secret_values = [
        placeholder_secret("mlops:secret_seed"),
        generated.admin_password,
        generated.flask_secret_key,
        generated.database_password,
        generated.store_access_key_id,
        generated.store_secret_access_key,
        derive_credential(placeholder_secret("mlops:secret_seed"), "grafana-admin-password"),
    ]
    everything = json.dumps([clean(r.inputs) for r in dev_render.resources]) + json.dumps(dev_render.outputs)
    for value in secret_values:
        assert value not in everything
    secrets = [o for o in kubernetes_objects(dev_render.resources) if o["kind"] == "Secret"]
    assert len(secrets) >= 5
    for secret in secrets:
        assert set(secret["stringData"].values()) == {"<redacted>"}, secret["metadata"]["name"]
    # The unredacted values really are the generated ones: the redaction is not hiding an empty Secret.
    raw = json.dumps([clean(r.inputs, redact=False) for r in dev_render.resources])
    assert generated.admin_password in raw


def test_no_password_in_env_values_or_config_maps(dev_render: Any) -> None:
    for obj in kubernetes_objects(dev_render.resources, redact=False):
        if obj["kind"] == "ConfigMap":
            assert "password" not in json.dumps(obj.get("data", {})).lower(), obj["metadata"]["name"]
        spec = pod_spec(obj)
        for container in (spec or {}).get("containers", []):
            for variable in container.get("env", []):
                if re.search("PASSWORD|SECRET|KEY_ID|STORE_URI", variable["name"]):
                    assert "valueFrom" in variable, (obj["metadata"]["name"], variable["name"])


def test_services_are_cluster_ip_and_seldon_load_balancer_is_overridden(dev_render: Any) -> None:
    services = [o for o in kubernetes_objects(dev_render.resources) if o["kind"] == "Service"]
    assert services and all(service["spec"]["type"] == "ClusterIP" for service in services)
    runtime = next(r for r in releases(dev_render.resources) if r["chart"] == "seldon-core-v2-runtime")
    assert runtime["values"]["envoy"]["serviceType"] == "ClusterIP"
    assert runtime["values"]["scheduler"]["serviceType"] == "ClusterIP"


def test_load_balancer_only_when_asked(render_program: Any) -> None:
    result = render_program(config_for(allow_load_balancer="true"))
    runtime = next(r for r in releases(result.resources) if r["chart"] == "seldon-core-v2-runtime")
    assert runtime["values"]["envoy"]["serviceType"] == "LoadBalancer"


def test_custom_resources_depend_on_the_release_installing_their_crds(dev_render: Any) -> None:
    crd_release = {
        "mlops.seldon.io": "mlops-serving-crds",
        "monitoring.coreos.com": "mlops-monitoring-kube-prometheus-stack",
    }
    checked = 0
    for resource in dev_render.resources:
        group = resource.type.split(":")[1].split("/")[0]
        if group in crd_release:
            names = [urn.rsplit("::", 1)[1] for urn in resource.dependencies]
            assert crd_release[group] in names, (resource.name, names)
            checked += 1
    assert checked >= 5


def test_kfp_cluster_scoped_resources_come_before_the_overlay(dev_render: Any) -> None:
    refs = {r["resource"]: r for r in releases(dev_render.resources) if r["kind"] == "kustomize"}
    assert refs["mlops-pipelines-cluster-scoped"]["directory"].endswith("cluster-scoped-resources?ref=2.17.0")
    assert refs["mlops-pipelines-platform-agnostic"]["directory"].endswith("env/platform-agnostic?ref=2.17.0")
    overlay = next(r for r in dev_render.resources if r.name == "mlops-pipelines-platform-agnostic")
    assert any(urn.endswith("::mlops-pipelines-cluster-scoped") for urn in overlay.dependencies)


def test_namespaces_enforce_restricted_and_deny_by_default(dev_render: Any) -> None:
    objects = kubernetes_objects(dev_render.resources)
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    # The platform's, and the dev catalog's two projects' (tests/kubernetes/test_project.py).
    assert {n["metadata"]["name"] for n in namespaces} == {
        "mlflow",
        "seldon",
        "monitoring",
        "seldon-system",
        "credit",
        "churn",
    }
    # The Seldon operator's own namespace is the one stated exception (tests/kubernetes/test_seldon_pss.py).
    namespaces = [n for n in namespaces if n["metadata"]["name"] != "seldon-system"]
    for namespace in namespaces:
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        deny = [
            o
            for o in objects
            if o["kind"] == "NetworkPolicy"
            and o["metadata"]["name"] == "default-deny"
            and o["metadata"]["namespace"] == namespace["metadata"]["name"]
        ]
        assert deny and deny[0]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        limits = [
            o
            for o in objects
            if o["kind"] == "LimitRange" and o["metadata"]["namespace"] == namespace["metadata"]["name"]
        ]
        assert limits and limits[0]["spec"]["limits"][0]["default"]["memory"]


def test_each_model_adds_one_resource_and_no_seldon_model(render_program: Any) -> None:
    ten = render_program(config_for(models=[model(f"m-{i}") for i in range(10)]))
    twenty = render_program(config_for(models=[model(f"m-{i}") for i in range(20)]))
    per_model = (len(twenty.resources) - len(ten.resources)) / 10
    # Issue 2 allowed 3; a component per model doubled a fleet's resources (bench/bench_render.py).
    assert per_model == 1
    added = Counter(r.type for r in twenty.resources) - Counter(r.type for r in ten.resources)
    assert added == {"kubernetes:core/v1:ConfigMap": 10}
    objects = kubernetes_objects(twenty.resources)
    assert [o for o in objects if o["kind"] == "Model"] == []
    # The declaration is what the monitor reads: every model is in its models.json.
    [monitor_config] = [o for o in objects if o["kind"] == "ConfigMap" and "models.json" in o.get("data", {})]
    declared = json.loads(monitor_config["data"]["models.json"])
    entries = declared["models"] if isinstance(declared, dict) else declared
    assert sorted(entry["name"] for entry in entries) == sorted(f"m-{i}" for i in range(20))
    assert {entry["alias"] for entry in entries} == {"champion"}


def test_model_rules_and_dashboards_are_sharded(render_program: Any) -> None:
    config = config_for(
        models=[model(f"m-{i}") for i in range(7)],
        monitoring={"rules_per_object": 3, "grafana": {"dashboards_per_config_map": 4}},
    )
    objects = kubernetes_objects(render_program(config).resources)
    rules = [
        o for o in objects if o["kind"] == "PrometheusRule" and o["metadata"]["name"].startswith("model-")
    ]
    assert [len(r["spec"]["groups"]) for r in rules] == [3, 3, 1]
    alerts = {rule["alert"] for group in rules[0]["spec"]["groups"] for rule in group["rules"]}
    assert alerts == {
        "ModelErrorRateHigh",
        "ModelLatencyHigh",
        "ModelFeatureDrift",
        "ModelFeaturePsiHigh",
        "ModelAccuracyLow",
    }
    dashboards = [
        o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("model-dash")
    ]
    assert [len(d["data"]) for d in dashboards] == [4, 3]
    assert all(d["metadata"]["labels"]["grafana_dashboard"] == "1" for d in dashboards)


def test_thresholds_reach_the_alert_expressions(render_program: Any) -> None:
    config = config_for(models=[model("credit", thresholds={"min_accuracy": 0.83, "max_error_rate": 0.02})])
    objects = kubernetes_objects(render_program(config).resources)
    rule = next(
        o for o in objects if o["kind"] == "PrometheusRule" and o["metadata"]["name"] == "model-rules-000"
    )
    expressions = {r["alert"]: r["expr"] for r in rule["spec"]["groups"][0]["rules"]}
    assert expressions["ModelAccuracyLow"].endswith("< 0.83")
    assert expressions["ModelErrorRateHigh"].endswith("> 0.02")


def test_external_database_and_store_use_configured_secrets(render_program: Any) -> None:
    config = config_for(
        mlflow={
            "database": {"mode": "external"},
            "artifact_store": {"mode": "external", "endpoint": "https://s3.example.com", "bucket": "acme"},
        },
        mlflow_database_url="postgresql+psycopg2://u:p4ss-word-xyz@db.example.com:5432/mlflow",
        monitor_database_url="postgresql://monitor:m0nitor-pass-xyz@db.example.com:5433/monitor",
        artifact_store_access_key_id="AKIAEXAMPLE000",
        artifact_store_secret_access_key="very-secret-store-key",
    )
    secret_keys = (
        "mlops:secret_seed",
        "mlops:mlflow_database_url",
        "mlops:monitor_database_url",
        "mlops:artifact_store_access_key_id",
        "mlops:artifact_store_secret_access_key",
    )
    result = render_program(config, secret_keys)
    objects = kubernetes_objects(result.resources)
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert ("StatefulSet", "postgres") not in kinds and ("StatefulSet", "seaweedfs") not in kinds
    text = json.dumps([clean(r.inputs) for r in result.resources])
    assert (
        "p4ss-word-xyz" not in text and "very-secret-store-key" not in text and "AKIAEXAMPLE000" not in text
    )
    assert "m0nitor-pass-xyz" not in text
    raw = json.dumps([clean(r.inputs, redact=False) for r in result.resources])
    assert "very-secret-store-key" in raw


def test_a_secret_in_plain_text_config_is_refused(render_program: Any) -> None:
    from platform_components.errors import ConfigError

    with pytest.raises(ConfigError, match=r"mlops:secret_seed: is a secret but was given in plain text"):
        render_program(config_for(), secret_keys=())


def test_settings_errors_name_the_key_under_the_program(render_program: Any) -> None:
    from platform_components.errors import ConfigError

    with pytest.raises(ConfigError, match=r"mlops:mlflow\.replicas: .*got 'many'"):
        render_program(config_for(mlflow={"replicas": "many"}))


def test_model_deployments_declare_each_model_by_its_owner_object_and_no_seldon_model(
    pulumi_mocks: Any,
) -> None:
    models = [
        ModelDeploymentSettings(name=name, registered_model=name) for name in ("credit-default", "churn")
    ]

    paths: list[dict[str, str]] = []

    @pulumi.runtime.test
    def build() -> pulumi.Output[Any]:
        deployments = ModelDeployments(
            "mlops-model",
            ModelDeploymentsArgs(models, "seldon", "rclone", "s3://mlflow-artifacts/"),
        )
        paths.append(deployments.inference_paths)
        return deployments.urn  # the decorator awaits this and every outstanding registration

    build()
    assert paths == [{"credit-default": "/v2/models/credit-default/infer", "churn": "/v2/models/churn/infer"}]
    assert [(args.typ, args.name) for args in pulumi_mocks.resources] == [
        ("mlops:platform:ModelDeployments", "mlops-model"),
        ("kubernetes:core/v1:ConfigMap", "mlops-model-credit-default-owner"),
        ("kubernetes:core/v1:ConfigMap", "mlops-model-churn-owner"),
    ]
    owner = pulumi_mocks.resources[1].inputs
    assert owner["metadata"]["name"] == "mlops-model-credit-default"
    assert owner["metadata"]["namespace"] == "seldon"


def test_each_owner_keeps_the_urn_it_had_under_its_own_model_deployment(dev_render: Any) -> None:
    # The owner's URN when each model had its own ModelDeployment component (issue 2's layout): a stack
    # deployed then must move its owners in state on `pulumi up`, never replace them (deleting an owner
    # garbage-collects its Seldon Model).
    [owner] = [r for r in dev_render.resources if r.name == "mlops-model-credit-default-owner"]
    assert owner.aliases == (
        "urn:pulumi:dev::mlops::mlops:platform:MlopsPlatform$mlops:platform:ModelDeployment"
        "$kubernetes:core/v1:ConfigMap::mlops-model-credit-default-owner",
    )


def test_the_previous_owner_urn_follows_the_engines_full_parent_chain() -> None:
    # The engine's URNs carry every ancestor's type (the mocks' only the parent's): a platform nested in
    # a component of the user's keeps that prefix, and a component at the root has none.
    nested = (
        "urn:pulumi:prod::mlops::acme:Infra$mlops:platform:MlopsPlatform$mlops:platform:ModelDeployments::m"
    )
    assert previous_owner_urn(nested, "m-a-owner") == (
        "urn:pulumi:prod::mlops::acme:Infra$mlops:platform:MlopsPlatform$mlops:platform:ModelDeployment"
        "$kubernetes:core/v1:ConfigMap::m-a-owner"
    )
    root = "urn:pulumi:prod::mlops::mlops:platform:ModelDeployments::m"
    assert previous_owner_urn(root, "m-a-owner") == (
        "urn:pulumi:prod::mlops::mlops:platform:ModelDeployment$kubernetes:core/v1:ConfigMap::m-a-owner"
    )


def test_the_platform_says_each_model_gets_an_owner_object(
    render_program: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages: list[str] = []
    monkeypatch.setattr(pulumi.log, "info", lambda message, *args, **kwargs: messages.append(message))
    render_program(config_for(models=[model("credit-default")]))
    assert any(
        "owner object" in message
        and "credit-default@champion" in message
        and "deployer creates its Seldon Model" in message
        for message in messages
    )


def test_unhandled_invokes_fail_loudly(render_program: Any) -> None:
    def program_with_invoke() -> None:
        pulumi.runtime.invoke("kubernetes:yaml:decode", {"text": "kind: ConfigMap"})

    with pytest.raises(Exception, match="does not handle the invoke 'kubernetes:yaml:decode'"):
        render_program(config_for(), program=program_with_invoke)


def test_the_same_seed_gives_the_same_credentials_and_a_new_seed_rotates_them() -> None:
    first = credentials(load_platform_settings({"mlops:secret_seed": SEED}))
    again = credentials(load_platform_settings({"mlops:secret_seed": SEED}))
    rotated = credentials(load_platform_settings({"mlops:secret_seed": SEED + "-rotated"}))
    assert first == again
    assert first.admin_password != rotated.admin_password
    assert len(first.admin_password) == 32 and first.admin_password != first.database_password


def test_settings_are_read_from_the_engine_environment_as_in_pulumi_up(
    render_program: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pulumi up` hands config to the language host as PULUMI_CONFIG / PULUMI_CONFIG_SECRET_KEYS."""
    from platform_components.settings import read_pulumi_config

    monkeypatch.setenv(
        "PULUMI_CONFIG", json.dumps({"mlops:secret_seed": SEED, "mlops:mlflow": '{"replicas": 3}'})
    )
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["mlops:secret_seed"]))
    seen: list[Any] = []
    render_program({}, (), program=lambda: seen.append(read_pulumi_config()))
    assert seen[0].mlflow.replicas == 3
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", "[]")
    with pytest.raises(Exception, match=r"mlops:secret_seed: is a secret but was given in plain text"):
        render_program({}, (), program=read_pulumi_config)


STACKS = ("dev", "staging", "local", "prod")


@pytest.mark.parametrize("stack", STACKS)
def test_every_kubernetes_resource_of_every_stack_goes_to_the_cluster_provider(stack: str) -> None:
    """A resource without an explicit provider goes to the ambient kubeconfig context, not the cluster.

    prod's EKS cluster needs the optional eks extra (not installed here): its cluster is swapped for an
    existing one; the rest of its graph is rendered as shipped.
    """
    from pulumi_fixtures import REPO

    from platform_components.render import read_stack_config, run_program

    config, secret_keys = read_stack_config(stack, REPO)
    if stack == "prod":
        config["mlops:cluster"] = json.dumps({"mode": "existing", "context": "prod"})
    result = run_program(config, secret_keys, stack=stack)
    providers = [r for r in result.resources if r.type == "pulumi:providers:kubernetes"]
    assert [r.name for r in providers] == ["mlops-cluster-provider"]
    expected = f"{providers[0].urn}::"
    checked = [r for r in result.resources if r.type.startswith("kubernetes:")]
    assert len(checked) > 20
    assert [r.urn for r in checked if not r.provider.startswith(expected)] == []


def test_eks_mode_passes_the_configured_region_to_an_explicit_aws_provider() -> None:
    from platform_components.kubernetes.cluster import eks_arguments

    settings = load_platform_settings(
        {
            "mlops:secret_seed": SEED,
            "mlops:cluster": {"mode": "eks", "eks": {"region": "ap-south-1", "desired_nodes": 4}},
        }
    )
    provider_args, cluster_args = eks_arguments(settings.cluster)
    assert provider_args == {"region": "ap-south-1"}
    assert cluster_args["desired_capacity"] == 4 and cluster_args["max_size"] == 8
    assert "region" not in cluster_args


def test_the_prod_stack_region_reaches_the_aws_provider() -> None:
    from pulumi_fixtures import REPO

    from platform_components.kubernetes.cluster import eks_arguments
    from platform_components.render import read_stack_config

    config, secret_keys = read_stack_config("prod", REPO)
    settings = load_platform_settings(config, plaintext_keys=set(config) - set(secret_keys))
    assert eks_arguments(settings.cluster)[0] == {"region": "eu-west-1"}


def _bucket_jobs(result: Any) -> list[dict[str, Any]]:
    return [
        o
        for o in kubernetes_objects(result.resources)
        if o["kind"] == "Job" and o["metadata"]["name"].startswith("seaweedfs-create-bucket")
    ]


def test_the_bucket_job_has_no_ttl_and_a_name_keyed_by_what_it_does(render_program: Any) -> None:
    """A TTL lets the API server delete the Job, so every later `pulumi up` recreates it (perpetual diff)."""
    first = _bucket_jobs(render_program(config_for()))
    again = _bucket_jobs(render_program(config_for()))
    other = _bucket_jobs(render_program(config_for(mlflow={"artifact_store": {"bucket": "other-bucket"}})))
    assert len(first) == 1 and "ttlSecondsAfterFinished" not in first[0]["spec"]
    assert first[0]["metadata"]["name"] == again[0]["metadata"]["name"]
    assert first[0]["metadata"]["name"] != other[0]["metadata"]["name"]


def test_with_upstream_charts_off_no_release_is_created_and_nothing_depends_on_one(
    render_program: Any,
) -> None:
    """The engine tier's API server cannot fetch remote charts: `mlops:upstream.helm_charts: false`."""
    on = render_program(config_for(models=[model("credit-default")]))
    off = render_program(config_for(models=[model("credit-default")], upstream={"helm_charts": False}))
    assert {r["chart"] for r in releases(on.resources) if r["kind"] == "helm"} >= {
        "kube-prometheus-stack",
        "seldon-core-v2-crds",
    }
    assert [r for r in releases(off.resources) if r["kind"] == "helm"] == []
    urns = {r.urn for r in off.resources}
    assert [(r.name, d) for r in off.resources for d in r.dependencies if d not in urns] == []

    def kinds(result: Any) -> Counter[str]:
        return Counter(o["kind"] for o in kubernetes_objects(result.resources))

    # Every object of ours is still there, custom resources included.
    assert kinds(off) == kinds(on)
    assert kinds(off)["PrometheusRule"] >= 2 and kinds(off)["Server"] >= 1
