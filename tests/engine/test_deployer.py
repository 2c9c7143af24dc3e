"""The cluster deployer against the local API server, as the monitor's ServiceAccount.

The objects are the program's own render (namespaces, the monitor's ServiceAccount, each model's owner
ConfigMap, the deployer's Role and RoleBinding), applied with kubectl as the platform's Pulumi program would
create them; Seldon's CRDs are installed by the ``engine_cluster`` fixture. The deployer then runs with a
token of the monitor's ServiceAccount (TokenRequest), so every call is authorised by the rendered Role: it
creates the Model with an ownerReference to its owner, leaves it alone when nothing changed, patches it when
the version or the owner changes, is refused ``delete``, and the controller manager's garbage collector
deletes the Model once its owner is deleted.

No Seldon operator runs here: nothing loads the model; what is verified is the objects and the rights.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster import LocalCluster, wait_for
from upstream_facts import fact

from platform_components.errors import ServingError
from platform_components.loop.seldon import SeldonDeployer, kubernetes_api
from platform_components.render import kubernetes_objects, run_program

pytestmark = pytest.mark.engine

SEED = "engine-seed-0123456789abcdef0123456789"


@dataclass(frozen=True)
class Spaces:
    """The namespaces of one test (each test its own: a deleted namespace terminates asynchronously)."""

    serving: str
    monitoring: str


def _render(spaces: Spaces, replicas: int, server: str | None = None) -> list[dict[str, Any]]:
    """The objects the deployer relies on, from the program's render of a two-model stack."""
    config = {
        "mlops:secret_seed": SEED,
        "mlops:namespaces": json.dumps({"serving": spaces.serving, "monitoring": spaces.monitoring}),
        "mlops:models": json.dumps(
            [
                {
                    "name": "credit-default",
                    "registered_model": "Credit Default",
                    "replicas": replicas,
                    **({"server": server} if server else {}),
                },
                {"name": "churn", "registered_model": "churn", "project": "retention"},
            ]
        ),
        "mlops:upstream": json.dumps({"helm_charts": False}),
    }
    objects = kubernetes_objects(run_program(config, ("mlops:secret_seed",)).resources)

    def wanted_object(obj: dict[str, Any]) -> bool:
        kind, name = obj["kind"], obj["metadata"]["name"]
        namespace = obj["metadata"].get("namespace")
        if kind == "Namespace":
            return name in (spaces.serving, spaces.monitoring)
        if kind == "ServiceAccount":
            return (namespace, name) == (spaces.monitoring, "model-monitor")
        owner = kind == "ConfigMap" and name.startswith("mlops-model-")
        return namespace == spaces.serving and (kind in ("Role", "RoleBinding") or owner)

    wanted = [obj for obj in objects if wanted_object(obj)]
    assert sorted((o["kind"], o["metadata"]["name"]) for o in wanted) == [
        ("ConfigMap", "mlops-model-churn"),
        ("ConfigMap", "mlops-model-credit-default"),
        ("Namespace", spaces.monitoring),
        ("Namespace", spaces.serving),
        ("Role", "mlops-model-deployer"),
        ("RoleBinding", "mlops-model-deployer"),
        ("ServiceAccount", "model-monitor"),
    ]
    return wanted


def _apply(cluster: LocalCluster, objects: list[dict[str, Any]]) -> None:
    """Namespaces first (as the program orders them): the API server admits nothing into a namespace it has
    not seen yet."""
    namespaces = [obj for obj in objects if obj["kind"] == "Namespace"]
    rest = [obj for obj in objects if obj["kind"] != "Namespace"]
    for batch in (namespaces, rest):
        cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(batch))


def _get(cluster: LocalCluster, spaces: Spaces, kind: str, name: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", kind, name, "-n", spaces.serving, "-o", "json", "--ignore-not-found")
    return json.loads(result.stdout) if result.stdout.strip() else None


def _can(cluster: LocalCluster, spaces: Spaces, verb: str, what: str, subresource: str | None = None) -> bool:
    """``kubectl auth can-i`` as the monitor's ServiceAccount (the admin context impersonates it)."""
    account = f"system:serviceaccount:{spaces.monitoring}:model-monitor"
    extra = [f"--subresource={subresource}"] if subresource else []
    result = cluster.kubectl(
        "auth", "can-i", verb, what, *extra, "-n", spaces.serving, f"--as={account}", check=False
    )
    return result.stdout.strip() == "yes"


def _monitor_kubeconfig(cluster: LocalCluster, spaces: Spaces, folder: Path) -> Path:
    """A kubeconfig whose user is a token of the monitor's ServiceAccount (what a pod would mount)."""
    token = cluster.kubectl(
        "create", "token", "model-monitor", "-n", spaces.monitoring, "--duration=1h"
    ).stdout
    admin = json.loads(cluster.kubeconfig_path().read_text())
    [engine] = [c for c in admin["clusters"] if c["name"] == "engine"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [engine],
        "users": [{"name": "model-monitor", "user": {"token": token.strip()}}],
        "contexts": [{"name": "monitor", "context": {"cluster": "engine", "user": "model-monitor"}}],
        "current-context": "monitor",
    }
    path = folder / "monitor.kubeconfig"
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def _wait_until_the_garbage_collector_watches_models(cluster: LocalCluster, spaces: Spaces) -> None:
    """A probe Model whose owner is deleted at once: gone when the collector's graph holds Models.

    The controller manager's garbage collector starts watching a new kind at its next resync with
    discovery; the CRDs were installed moments ago. Until then an owner deleted in the foreground finds no
    dependent to wait for, which a real cluster (CRDs installed long before) never shows.
    """
    cluster.kubectl("create", "configmap", "gc-probe", "-n", spaces.serving)
    probe_owner = json.loads(
        cluster.kubectl("get", "configmap", "gc-probe", "-n", spaces.serving, "-o", "json").stdout
    )
    probe = {
        "apiVersion": "mlops.seldon.io/v1alpha1",
        "kind": "Model",
        "metadata": {
            "name": "gc-probe",
            "namespace": spaces.serving,
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "gc-probe",
                    "uid": probe_owner["metadata"]["uid"],
                }
            ],
        },
        "spec": {"storageUri": "s3://probe/none"},
    }
    cluster.kubectl("create", "-f", "-", input=json.dumps(probe))
    cluster.kubectl("delete", "configmap", "gc-probe", "-n", spaces.serving)
    wait_for(
        "the garbage collector to watch Seldon Models (a probe Model of a deleted owner to go)",
        lambda: _get(cluster, spaces, "models.mlops.seldon.io", "gc-probe") is None,
        timeout=120,
    )


@pytest.fixture
def spaces(engine_cluster: LocalCluster, request: pytest.FixtureRequest) -> Iterator[Spaces]:
    """The rendered objects applied in two namespaces of this test's own; deleted afterwards."""
    suffix = hashlib.sha256(request.node.name.encode()).hexdigest()[:6]
    created = Spaces(serving=f"serving-{suffix}", monitoring=f"monitoring-{suffix}")
    _apply(engine_cluster, _render(created, replicas=1))
    _wait_until_the_garbage_collector_watches_models(engine_cluster, created)
    yield created
    for namespace in (created.serving, created.monitoring):
        engine_cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")


def download_uri(registered_model: str, version: str) -> str:
    """What the platform's MLflow answers for a version logged as a model of run 1 (proxied artifacts)."""
    return f"mlflow-artifacts:/1/models/m-{version}/artifacts"


def test_the_deployer_creates_patches_and_cannot_delete_the_model_and_gc_removes_it_with_its_owner(
    engine_cluster: LocalCluster, spaces: Spaces, tmp_path: Path
) -> None:
    api = kubernetes_api(_monitor_kubeconfig(engine_cluster, spaces, tmp_path), "monitor")
    deployer = SeldonDeployer(api, spaces.serving, download_uri)
    owner = _get(engine_cluster, spaces, "configmap", "mlops-model-credit-default")
    assert owner is not None

    assert deployer.serving_version("credit-default") is None
    created = deployer.ensure("credit-default", "Credit Default", "1")
    assert (created.version, created.changed, created.detail["action"]) == ("1", True, "created")
    model = _get(engine_cluster, spaces, "models.mlops.seldon.io", "credit-default")
    assert model is not None
    assert model["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "mlops-model-credit-default",
            "uid": owner["metadata"]["uid"],
            "blockOwnerDeletion": True,
        }
    ]
    assert model["spec"] == {
        "storageUri": "s3://mlflow-artifacts/1/models/m-1/artifacts",
        "requirements": ["mlflow"],
        "replicas": 1,
        "memory": "1Gi",
        "secretName": "mlops-artifact-store-rclone",
    }
    assert model["metadata"]["annotations"]["mlops.platform/registered-model"] == "Credit Default"
    assert deployer.serving_version("credit-default") == "1"

    # The same version again: nothing is written.
    again = deployer.ensure("credit-default", "Credit Default", "1")
    assert (again.changed, again.detail["action"]) == (False, "none")
    unchanged = _get(engine_cluster, spaces, "models.mlops.seldon.io", "credit-default")
    assert unchanged is not None
    assert unchanged["metadata"]["resourceVersion"] == model["metadata"]["resourceVersion"]

    # The alias moved: the same object (same uid) now serves version 2.
    moved = deployer.ensure("credit-default", "Credit Default", "2")
    assert (moved.changed, moved.detail["previous"]) == (True, "1")
    patched = _get(engine_cluster, spaces, "models.mlops.seldon.io", "credit-default")
    assert patched is not None
    assert patched["metadata"]["uid"] == model["metadata"]["uid"]
    assert patched["spec"]["storageUri"] == "s3://mlflow-artifacts/1/models/m-2/artifacts"
    assert patched["metadata"]["labels"]["mlops.platform/version"] == "2"
    assert patched["metadata"]["ownerReferences"] == model["metadata"]["ownerReferences"]
    assert deployer.serving_version("credit-default") == "2"

    # The stack changed the replicas and pinned a Server: the owner is updated in place and the deployer
    # follows it; unpinned again, the Model's server goes (a merge patch's null).
    _apply(engine_cluster, _render(spaces, replicas=3, server="mlserver-mlflow"))
    deployer.ensure("credit-default", "Credit Default", "2")
    pinned = _get(engine_cluster, spaces, "models.mlops.seldon.io", "credit-default")
    assert pinned is not None and pinned["spec"]["server"] == "mlserver-mlflow"
    _apply(engine_cluster, _render(spaces, replicas=3))
    resized_owner = _get(engine_cluster, spaces, "configmap", "mlops-model-credit-default")
    assert resized_owner is not None and resized_owner["metadata"]["uid"] == owner["metadata"]["uid"]
    resized = deployer.ensure("credit-default", "Credit Default", "2")
    assert (resized.changed, resized.detail.get("patched")) == (False, True)
    after_resize = _get(engine_cluster, spaces, "models.mlops.seldon.io", "credit-default")
    assert after_resize is not None and after_resize["spec"]["replicas"] == 3
    assert "server" not in after_resize["spec"]

    # The monitor's account cannot delete a Model (nor read any other ConfigMap of the namespace).
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException) as refused:
        client.CustomObjectsApi(api).delete_namespaced_custom_object(
            "mlops.seldon.io", "v1alpha1", spaces.serving, "models", "credit-default"
        )
    assert refused.value.status == 403
    with pytest.raises(ApiException) as hidden:
        client.CoreV1Api(api).read_namespaced_config_map("kube-root-ca.crt", spaces.serving)
    assert hidden.value.status == 403

    # What OwnerReferencesPermissionEnforcement (off here, on in some clusters) would ask of the account
    # for blockOwnerDeletion: update on the owner's finalizers, and only on the owners.
    assert _can(engine_cluster, spaces, "update", "configmaps/mlops-model-credit-default", "finalizers")
    assert not _can(engine_cluster, spaces, "update", "configmaps/kube-root-ca.crt", "finalizers")
    assert not _can(engine_cluster, spaces, "delete", "models.mlops.seldon.io/credit-default")

    # Removing the model from the stack deletes its owner in the foreground (as pulumi-kubernetes does);
    # the owner waits for the Model, and the Model for Seldon's operator to remove its finalizer (done by hand
    # here: no operator runs).
    finalizer = fact("seldon_deployer.model_finalizer")
    engine_cluster.kubectl(
        "patch", "models.mlops.seldon.io", "credit-default", "-n", spaces.serving, "--type=merge",
        "-p", json.dumps({"metadata": {"finalizers": [finalizer]}}),
    )  # fmt: skip
    engine_cluster.kubectl(
        "delete", "configmap", "mlops-model-credit-default", "-n", spaces.serving,
        "--cascade=foreground", "--wait=false",
    )  # fmt: skip

    def model_deleting() -> bool:
        found = _get(engine_cluster, spaces, "models.mlops.seldon.io", "credit-default")
        return found is not None and "deletionTimestamp" in found["metadata"]

    wait_for(
        "the garbage collector to delete the Model of an owner deleted in the foreground", model_deleting, 120
    )
    waiting_owner = _get(engine_cluster, spaces, "configmap", "mlops-model-credit-default")
    assert waiting_owner is not None and "deletionTimestamp" in waiting_owner["metadata"]
    assert "foregroundDeletion" in waiting_owner["metadata"]["finalizers"]
    with pytest.raises(ServingError, match=r"model 'credit-default' is being removed .*left the stack"):
        deployer.ensure("credit-default", "Credit Default", "2")
    engine_cluster.kubectl(
        "patch", "models.mlops.seldon.io", "credit-default", "-n", spaces.serving, "--type=merge",
        "-p", json.dumps({"metadata": {"finalizers": []}}),
    )  # fmt: skip
    wait_for(
        "the Model and then its owner to be gone",
        lambda: (
            _get(engine_cluster, spaces, "models.mlops.seldon.io", "credit-default") is None
            and _get(engine_cluster, spaces, "configmap", "mlops-model-credit-default") is None
        ),
        timeout=120,
    )
    with pytest.raises(ServingError, match=r"model 'credit-default' has no owner object .*pulumi up"):
        deployer.ensure("credit-default", "Credit Default", "2")
    assert deployer.serving_version("credit-default") is None


def test_the_deployer_refuses_undeclared_models_other_registered_models_and_models_it_does_not_own(
    engine_cluster: LocalCluster, spaces: Spaces, tmp_path: Path
) -> None:
    deployer = SeldonDeployer(
        kubernetes_api(_monitor_kubeconfig(engine_cluster, spaces, tmp_path), "monitor"),
        spaces.serving,
        download_uri,
    )
    with pytest.raises(
        ServingError, match=rf"model 'fraud' has no owner object \(ConfigMap {spaces.serving}/"
    ):
        deployer.ensure("fraud", "fraud", "1")
    with pytest.raises(ServingError, match=r"declared for registered model 'churn'.*not 'Churn v2'"):
        deployer.ensure("churn", "Churn v2", "1")
    # A Model made by hand under a declared name is not taken over.
    engine_cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "mlops.seldon.io/v1alpha1",
                "kind": "Model",
                "metadata": {"name": "churn", "namespace": spaces.serving},
                "spec": {"storageUri": "s3://elsewhere/churn"},
            }
        ),
    )
    with pytest.raises(
        ServingError, match=r"exists but is not owned by ConfigMap mlops-model-churn.*kubectl delete"
    ):
        deployer.ensure("churn", "churn", "1")
    engine_cluster.kubectl("delete", "models.mlops.seldon.io", "churn", "-n", spaces.serving)
    rollout = deployer.ensure("churn", "churn", "4")
    assert rollout.changed
    churn = _get(engine_cluster, spaces, "models.mlops.seldon.io", "churn")
    assert churn is not None and churn["metadata"]["labels"]["mlops.platform/project"] == "retention"
