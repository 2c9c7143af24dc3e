"""Each declared model's owner object and the deployer's rights, as the program renders them."""

# ruff: noqa: F811

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from pulumi_fixtures import config_for, model, render_program  # noqa: F401
from test_upstream_crds import CRD_FILES, problems
from upstream_facts import fact, upstream_path

from platform_components.errors import ServingError
from platform_components.kubernetes.deployer_access import ROLE_NAME
from platform_components.policies import check_objects
from platform_components.render import clean, kubernetes_objects
from platform_components.seldon_models import (
    MODEL_PLURAL,
    OWNER_KEYS,
    SELDON_GROUP,
    SELDON_VERSION,
    ModelOwner,
    owner_config_map,
    owner_name,
    seldon_model,
    storage_uri,
)
from platform_components.validation import validate_objects


def _find(objects: list[dict[str, Any]], kind: str, name: str, namespace: str) -> dict[str, Any]:
    [found] = [
        o
        for o in objects
        if o["kind"] == kind and o["metadata"]["name"] == name and o["metadata"].get("namespace") == namespace
    ]
    return found


def test_each_declared_model_has_an_owner_config_map_holding_what_the_deployer_reads(
    render_program: Any,
) -> None:
    config = config_for(
        models=[
            model("credit-default", replicas=2, memory="2Gi", server="mlserver-mlflow", project="risk"),
            model("churn", registered_model="Churn Model"),
        ],
        mlflow={"artifact_store": {"bucket": "team-artifacts"}},
    )
    objects = kubernetes_objects(render_program(config).resources)
    credit = ModelOwner.from_config_map(_find(objects, "ConfigMap", "mlops-model-credit-default", "seldon"))
    assert credit == ModelOwner(
        model="credit-default",
        registered_model="credit-default",
        alias="champion",
        replicas=2,
        memory="2Gi",
        artifacts_destination="s3://team-artifacts/",
        server="mlserver-mlflow",
        project="risk",
        storage_secret="mlops-artifact-store-rclone",
    )
    churn_map = _find(objects, "ConfigMap", "mlops-model-churn", "seldon")
    churn = ModelOwner.from_config_map(churn_map)
    assert (churn.registered_model, churn.server, churn.project) == ("Churn Model", None, None)
    assert "mlops.platform/project" not in churn_map["metadata"]["labels"]
    # The destination is the one the MLflow server writes to: its --artifacts-destination argument.
    [mlflow] = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "mlflow"]
    arguments = mlflow["spec"]["template"]["spec"]["containers"][0]["args"]
    assert arguments[arguments.index("--artifacts-destination") + 1] == credit.artifacts_destination


def test_the_deployer_role_reads_only_the_owners_and_cannot_delete_models(render_program: Any) -> None:
    config = config_for(models=[model("credit-default"), model("churn")])
    objects = kubernetes_objects(render_program(config).resources)
    role = _find(objects, "Role", ROLE_NAME, "seldon")
    crd = fact("seldon_deployer.model_crd")
    assert role["rules"] == [
        {
            "apiGroups": [crd["group"]],
            "resources": [crd["plural"]],
            "verbs": ["get", "list", "watch", "create", "patch", "update"],
        },
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["mlops-model-churn", "mlops-model-credit-default"],
            "verbs": ["get"],
        },
        # What OwnerReferencesPermissionEnforcement asks of whoever sets blockOwnerDeletion on a reference.
        {
            "apiGroups": [""],
            "resources": ["configmaps/finalizers"],
            "resourceNames": ["mlops-model-churn", "mlops-model-credit-default"],
            "verbs": [fact("kubernetes.gc_admission.rules")["block_owner_deletion"][0]],
        },
    ]
    binding = _find(objects, "RoleBinding", ROLE_NAME, "seldon")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE_NAME}
    # The subject is the account the monitor (where the deployer runs) runs as, with its token mounted.
    [monitor] = [
        o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "model-monitor"
    ]
    pod = monitor["spec"]["template"]["spec"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": "monitoring"}
    ]
    assert pod["automountServiceAccountToken"] is True


def test_without_models_the_role_grants_no_config_map_at_all(render_program: Any) -> None:
    objects = kubernetes_objects(render_program(config_for()).resources)
    role = _find(objects, "Role", ROLE_NAME, "seldon")
    # resourceNames: [] would mean every ConfigMap of the namespace (and every one's finalizers).
    assert [rule["resources"] for rule in role["rules"]] == [["models"]]


def test_owner_config_maps_are_updated_in_place_so_a_changed_size_keeps_the_model(
    render_program: Any,
) -> None:
    """A replaced owner would get a new UID, and the garbage collector would delete the served Model."""
    result = render_program(config_for(models=[model("credit-default")]))
    [provider] = [r for r in result.resources if r.type == "pulumi:providers:kubernetes"]
    assert "enableConfigMapMutable" in fact("pulumi_kubernetes.provider.mutable_options")
    assert provider.inputs["enableConfigMapMutable"] == "true"
    owner = _find(kubernetes_objects(result.resources), "ConfigMap", owner_name("credit-default"), "seldon")
    assert "immutable" not in owner


def test_the_storage_uri_names_the_rclone_remote_of_the_storage_secret(render_program: Any) -> None:
    """Seldon's agent refuses a Model whose storageUri remote differs from its Secret's rclone config name."""
    result = render_program(config_for(models=[model("credit-default")]))
    objects = kubernetes_objects(result.resources)
    owner = ModelOwner.from_config_map(_find(objects, "ConfigMap", owner_name("credit-default"), "seldon"))
    [secret] = [
        clean(r.inputs, redact=False)
        for r in result.resources
        if r.type == "kubernetes:core/v1:Secret" and r.inputs["metadata"]["name"] == owner.storage_secret
    ]
    text = json.dumps(secret)
    remote = fact("seldon_deployer.rclone_remote_matches_secret")
    assert f"name: {remote}\\n" in text
    owned = ModelOwner(**{**owner.__dict__, "uid": "0000"})
    body = seldon_model(
        owned,
        "seldon",
        version="3",
        storage=storage_uri("mlflow-artifacts:/1/models/m-1/artifacts", owner.artifacts_destination),
    )
    assert body["spec"]["storageUri"].split(":", 1)[0] == remote
    assert body["spec"]["secretName"] == owner.storage_secret


def _owner(**changes: Any) -> ModelOwner:
    values: dict[str, Any] = {
        "model": "credit-default",
        "registered_model": "Credit Default",
        "alias": "champion",
        "replicas": 2,
        "memory": "1500Mi",
        "artifacts_destination": "s3://mlflow-artifacts/",
        "server": "mlserver-mlflow",
        "project": "risk",
        "storage_secret": "mlops-artifact-store-rclone",
        "uid": "6b0c4c8e-0000-4000-8000-000000000001",
    }
    return ModelOwner(**{**values, **changes})


def test_the_crd_facts_are_upstreams_model_crd() -> None:
    crd = yaml.safe_load(upstream_path(*CRD_FILES[("mlops.seldon.io", "Model")]).read_text())
    expected = fact("seldon_deployer.model_crd")
    assert crd["spec"]["group"] == expected["group"]
    assert crd["spec"]["names"]["kind"] == expected["kind"]
    assert crd["spec"]["names"]["plural"] == expected["plural"]
    assert crd["spec"]["scope"] == expected["scope"]
    [served] = [v for v in crd["spec"]["versions"] if v["name"] == expected["version"]]
    assert served["served"] and served["storage"]
    spec = served["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["required"] == expected["required"]
    assert set(expected["fields"]) <= set(spec["properties"])
    assert (
        expected["group"],
        expected["version"],
        expected["plural"],
    ) == (SELDON_GROUP, SELDON_VERSION, MODEL_PLURAL)


@pytest.mark.parametrize(
    "owner",
    [_owner(), _owner(server=None, project=None, storage_secret=None, replicas=1, memory="1Gi")],
    ids=["every-field", "defaults"],
)
def test_the_model_the_deployer_builds_validates_against_upstreams_crd_and_our_schema(
    owner: ModelOwner,
) -> None:
    body = seldon_model(owner, "seldon", version="12", storage="s3://mlflow-artifacts/1/models/m-1/artifacts")
    assert problems(body) == []
    assert validate_objects([body]) == []
    assert check_objects([body]) == []  # the policies judge it like any object of ours
    assert body["spec"]["requirements"] == ["mlflow"]
    assert body["metadata"]["labels"]["mlops.platform/version"] == "12"
    assert body["metadata"]["annotations"]["mlops.platform/registered-model"] == owner.registered_model
    assert ("mlops.platform/project" in body["metadata"]["labels"]) == (owner.project is not None)


def test_the_model_is_owned_by_its_owner_config_map_and_blocks_its_deletion() -> None:
    body = seldon_model(_owner(), "seldon", version="1", storage="s3://b/p")
    [reference] = body["metadata"]["ownerReferences"]
    # Fields an ownerReference has (no namespace: the owner is in the Model's namespace).
    assert set(reference) <= set(fact("kubernetes.owner_reference.same_namespace"))
    # Blocking: Pulumi deletes the owner in the foreground, so it waits for the Model (and Seldon's
    # operator removing its finalizer) before deleting what the owner depends on.
    assert fact("pulumi_kubernetes.delete_propagation")["default"] == "Foreground"
    assert reference == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "mlops-model-credit-default",
        "uid": _owner().uid,
        "blockOwnerDeletion": True,
    }
    assert body["metadata"]["namespace"] == "seldon"


def test_a_model_cannot_be_built_before_its_owner_exists() -> None:
    with pytest.raises(ValueError, match=r"owner of model 'credit-default' has no uid"):
        seldon_model(_owner(uid=""), "seldon", version="1", storage="s3://b/p")


@pytest.mark.parametrize(
    ("download_uri", "expected"),
    [
        ("mlflow-artifacts:/1/models/m-abc/artifacts", "s3://mlflow-artifacts/1/models/m-abc/artifacts"),
        (
            "mlflow-artifacts://mlflow.mlflow.svc:5000/1/models/m-abc/artifacts",
            "s3://mlflow-artifacts/1/models/m-abc/artifacts",
        ),
        ("s3://elsewhere/models/m-abc", "s3://elsewhere/models/m-abc"),
    ],
)
def test_storage_uri_is_where_the_mlflow_server_stored_the_version(download_uri: str, expected: str) -> None:
    assert storage_uri(download_uri, "s3://mlflow-artifacts/") == expected
    assert storage_uri(download_uri, "s3://mlflow-artifacts") == expected


@pytest.mark.parametrize("download_uri", ["/tmp/mlruns/1/models/m-abc", "file:///tmp/m", "runs:/abc/model"])
def test_a_version_seldon_cannot_read_is_refused_with_the_fix(download_uri: str) -> None:
    with pytest.raises(
        ServingError, match=r"Seldon agent cannot read: log the model to the platform's MLflow"
    ):
        storage_uri(download_uri, "s3://mlflow-artifacts/")


def test_an_owner_config_map_round_trips_and_a_broken_one_names_the_key_and_the_fix() -> None:
    owner = _owner()
    config_map = owner_config_map(owner, "seldon")
    config_map["metadata"]["uid"] = owner.uid
    assert ModelOwner.from_config_map(config_map) == owner
    assert set(config_map["data"]) == set(OWNER_KEYS)
    del config_map["data"]["registered_model"]
    with pytest.raises(
        ServingError, match=r"ConfigMap seldon/mlops-model-credit-default has no registered_model.*pulumi up"
    ):
        ModelOwner.from_config_map(config_map)
    config_map = owner_config_map(owner, "seldon")
    config_map["data"]["replicas"] = "two"
    with pytest.raises(
        ServingError, match=r"replicas is 'two', expected a positive integer; set mlops:models"
    ):
        ModelOwner.from_config_map(config_map)


def test_owners_are_created_after_and_deleted_before_seldons_runtime(render_program: Any) -> None:
    """The owner's foreground deletion waits for the Model, whose finalizer only the operator removes."""
    result = render_program(config_for(models=[model("credit-default")]))
    [owner] = [
        r
        for r in result.resources
        if r.type == "kubernetes:core/v1:ConfigMap"
        and r.inputs["metadata"]["name"] == "mlops-model-credit-default"
    ]
    [runtime] = [
        r
        for r in result.resources
        if r.type == "kubernetes:helm.sh/v3:Release" and r.name.endswith("-runtime")
    ]
    [setup] = [
        r for r in result.resources if r.type == "kubernetes:helm.sh/v3:Release" and r.name.endswith("-setup")
    ]
    assert runtime.urn in owner.dependencies
    assert setup.urn in runtime.dependencies  # the operator's release, before the runtime's
