"""The contract between a declared model's owner object and the cluster deployer, and the Seldon ``Model``.

Pulumi declares one owner object per model: a ConfigMap ``mlops-model-<name>`` in the serving namespace that
holds what the deployer needs (registered model, alias, server, replicas, memory, project, the artifact
store's destination and the rclone Secret). The loop's deployer (``platform_components.loop.seldon``)
reads it, creates the Seldon ``Model`` with an ownerReference to it and patches the Model when the alias
moves; deleting the owner (removing the model from the stack, ``pulumi destroy``) lets the garbage collector
delete the Model. Both sides import this module, which needs neither Pulumi nor a Kubernetes client.

Field names follow Seldon Core 2's ``mlops.seldon.io/v1alpha1`` Model CRD
(SeldonIO/seldon-core operator/config/crd/bases/mlops.seldon.io_models.yaml@v2.10.2).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from platform_components.errors import ServingError

SELDON_API = "mlops.seldon.io/v1alpha1"
SELDON_GROUP = "mlops.seldon.io"
SELDON_VERSION = "v1alpha1"
MODEL_PLURAL = "models"
PART_OF = "mlops-platform"

#: Labels of the Model (and the owner ConfigMap where they apply). Registered model names are free text
#: in MLflow, so the registered model goes in an annotation; versions are digits and aliases DNS labels.
MODEL_LABEL = "mlops.platform/model"
VERSION_LABEL = "mlops.platform/version"
ALIAS_LABEL = "mlops.platform/alias"
PROJECT_LABEL = "mlops.platform/project"
REGISTERED_MODEL_ANNOTATION = "mlops.platform/registered-model"
SOURCE_ANNOTATION = "mlops.platform/model-source"
#: ``app.kubernetes.io/managed-by`` of the Models the deployer creates (the owners are managed by Pulumi).
DEPLOYER_MANAGER = "mlops-deployer"
#: The owner ConfigMap's component label (``app.kubernetes.io/name``).
OWNER_COMPONENT = "model-owner"

#: Keys of the owner ConfigMap's ``data`` (all strings, as ConfigMap data is).
OWNER_KEYS = (
    "model",
    "registered_model",
    "alias",
    "server",
    "replicas",
    "memory",
    "project",
    "artifacts_destination",
    "storage_secret_name",
)


def owner_name(model: str) -> str:
    """The owner ConfigMap's name: ``mlops-model-<model>`` (model names are at most 40 characters)."""
    return f"mlops-model-{model}"


@dataclass(frozen=True)
class ModelOwner:
    """What the owner ConfigMap says about one model.

    Attributes:
        model: served model name (the Seldon ``Model``'s name).
        registered_model: MLflow registered model name.
        alias: the registry alias the model follows.
        replicas: Model replicas.
        memory: memory the scheduler reserves for the model on its Server (a Kubernetes quantity).
        artifacts_destination: ``--artifacts-destination`` of the MLflow server (``s3://<bucket>/``): where
            ``mlflow-artifacts:`` URIs are stored.
        server: the Server the model is pinned to, or None (the scheduler chooses).
        project: the project (team) that owns the model, or None.
        storage_secret: the rclone Secret the Seldon agent reads the artifact store with, or None.
        uid: the ConfigMap's UID (the ownerReference points at it); empty before it exists.
        deleting: the ConfigMap is being deleted (the model left the stack; its Model goes with it).
    """

    model: str
    registered_model: str
    alias: str
    replicas: int
    memory: str
    artifacts_destination: str
    server: str | None = None
    project: str | None = None
    storage_secret: str | None = None
    uid: str = ""
    deleting: bool = False

    def data(self) -> dict[str, str]:
        """The ConfigMap ``data`` (optional keys left out when unset)."""
        values = {
            "model": self.model,
            "registered_model": self.registered_model,
            "alias": self.alias,
            "server": self.server,
            "replicas": str(self.replicas),
            "memory": self.memory,
            "project": self.project,
            "artifacts_destination": self.artifacts_destination,
            "storage_secret_name": self.storage_secret,
        }
        return {key: value for key, value in values.items() if value is not None}

    @classmethod
    def from_config_map(cls, config_map: Mapping[str, Any]) -> ModelOwner:
        """Parse an owner ConfigMap as the API server returns it (``metadata``, ``data``).

        Raises:
            ServingError: a required key is missing or ``replicas`` is not a positive integer; the message
                names the ConfigMap and the key, and says that ``pulumi up`` writes it.
        """
        metadata = config_map.get("metadata") or {}
        where = f"ConfigMap {metadata.get('namespace', '?')}/{metadata.get('name', '?')}"
        data = config_map.get("data") or {}
        missing = [
            key
            for key in ("model", "registered_model", "alias", "replicas", "memory", "artifacts_destination")
            if not data.get(key)
        ]
        if missing:
            raise ServingError(
                f"{where} has no {', '.join(missing)}: it is the model's owner object, written by the "
                "platform's Pulumi program; run `pulumi up` to restore it, do not edit it by hand"
            )
        try:
            replicas = int(data["replicas"])
        except ValueError:
            replicas = 0
        if replicas < 1:
            raise ServingError(
                f"{where}: replicas is {data['replicas']!r}, expected a positive integer; set "
                "mlops:models[].replicas and run `pulumi up`"
            )
        return cls(
            model=data["model"],
            registered_model=data["registered_model"],
            alias=data["alias"],
            replicas=replicas,
            memory=data["memory"],
            artifacts_destination=data["artifacts_destination"],
            server=data.get("server") or None,
            project=data.get("project") or None,
            storage_secret=data.get("storage_secret_name") or None,
            uid=str(metadata.get("uid") or ""),
            deleting=bool(metadata.get("deletionTimestamp")),
        )


def owner_labels(owner: ModelOwner) -> dict[str, str]:
    """Labels of the owner ConfigMap."""
    labels = {
        "app.kubernetes.io/name": OWNER_COMPONENT,
        "app.kubernetes.io/instance": owner.model,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
        MODEL_LABEL: owner.model,
    }
    if owner.project:
        labels[PROJECT_LABEL] = owner.project
    return labels


def owner_config_map(owner: ModelOwner, namespace: str) -> dict[str, Any]:
    """The owner ConfigMap of one model (``apiVersion``, ``kind``, ``metadata``, ``data``)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": owner_name(owner.model), "namespace": namespace, "labels": owner_labels(owner)},
        "data": owner.data(),
    }


def storage_uri(download_uri: str, artifacts_destination: str) -> str:
    """Where the Seldon agent's rclone reads a model version: its MLflow download URI on the artifact store.

    The platform's MLflow server proxies artifacts (``--serve-artifacts --artifacts-destination
    s3://<bucket>/``), so a version's download URI is ``mlflow-artifacts:/<path>`` (or
    ``mlflow-artifacts://<host>/<path>``), stored at ``<destination>/<path>`` (the path without its leading
    slash is appended to the destination: ``_get_proxied_run_artifact_destination_path`` in mlflow/mlflow
    mlflow/server/handlers.py@v3.17.2). An ``s3://`` URI is already where the bytes are.

    Raises:
        ServingError: any other scheme (a local path, ``runs:/``, ``http``), which rclone cannot read from
            the Server's pod.
    """
    parsed = urllib.parse.urlparse(download_uri)
    if parsed.scheme == "mlflow-artifacts":
        destination = artifacts_destination.rstrip("/")
        return f"{destination}/{parsed.path.lstrip('/')}"
    if parsed.scheme == "s3":
        return download_uri
    raise ServingError(
        f"the model version's artifacts are at {download_uri!r}, which the Seldon agent cannot read: log the "
        "model to the platform's MLflow server (its artifacts are then mlflow-artifacts:/ URIs on the "
        "artifact store)"
    )


def seldon_model(
    owner: ModelOwner,
    namespace: str,
    *,
    version: str,
    storage: str,
    source: str | None = None,
) -> dict[str, Any]:
    """The Seldon Core 2 ``Model`` serving ``version`` of the owner's registered model.

    It serves the MLflow model folder at ``storage`` on an MLServer with the ``mlflow`` capability
    (``requirements``), labelled with the version (``serving_version`` reads it back) and owned by the owner
    ConfigMap (``ownerReferences``: the garbage collector deletes the Model when the owner is gone). The
    reference blocks the owner's deletion: pulumi-kubernetes deletes with foreground propagation
    (provider/pkg/metadata/overrides.go@v4.25.0), so the owner stays until the Model is gone, and the Model
    goes only once Seldon's operator has unloaded it and removed its finalizer (``seldon.model.finalizer``,
    SeldonIO/seldon-core operator/controllers/mlops/model_controller.go@v2.10.2). Pulumi therefore deletes
    the operator and the runtime, which the owner depends on, after the Model: a ``pulumi destroy`` leaves no
    Model stuck on a finalizer nobody removes. Setting it needs ``update`` on the owner's ``finalizers``
    subresource where the OwnerReferencesPermissionEnforcement admission plugin is on
    (kubernetes/kubernetes plugin/pkg/admission/gc/gc_admission.go@v1.36.3): the deployer's Role grants it on
    the owners only.

    Args:
        owner: the parsed owner ConfigMap, with its ``uid``.
        version: the MLflow model version served.
        storage: the ``storageUri`` (``storage_uri(...)`` of the version's download URI).
        source: the version's MLflow download URI, kept as an annotation for people reading the object.
    """
    if not owner.uid:
        raise ValueError(f"owner of model {owner.model!r} has no uid: read it from the API server first")
    spec: dict[str, Any] = {
        "storageUri": storage,
        "requirements": ["mlflow"],
        "replicas": owner.replicas,
        "memory": owner.memory,
    }
    if owner.server:
        spec["server"] = owner.server
    if owner.storage_secret:
        spec["secretName"] = owner.storage_secret  # rclone config for the private artifact store
    labels = {
        "app.kubernetes.io/name": "model",
        "app.kubernetes.io/instance": owner.model,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": DEPLOYER_MANAGER,
        MODEL_LABEL: owner.model,
        VERSION_LABEL: version,
        ALIAS_LABEL: owner.alias,
    }
    if owner.project:
        labels[PROJECT_LABEL] = owner.project
    annotations = {REGISTERED_MODEL_ANNOTATION: owner.registered_model}
    if source:
        annotations[SOURCE_ANNOTATION] = source
    return {
        "apiVersion": SELDON_API,
        "kind": "Model",
        "metadata": {
            "name": owner.model,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference(owner)],
        },
        "spec": spec,
    }


def owner_reference(owner: ModelOwner) -> dict[str, Any]:
    """The ownerReference to the owner ConfigMap (same namespace: a namespaced owner must be)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": owner_name(owner.model),
        "uid": owner.uid,
        "blockOwnerDeletion": True,
    }
