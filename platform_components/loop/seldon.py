"""The cluster's deployer: it owns each model's Seldon ``Model`` and points it at the version to serve.

Pulumi declares each model and its owner object, a ConfigMap ``mlops-model-<name>`` in the serving
namespace (``platform_components.seldon_models``), and grants the monitor's ServiceAccount get on those
ConfigMaps and get, list, watch, create, patch and update (never delete) on ``models.mlops.seldon.io``
there. ``SeldonDeployer.ensure`` creates the ``Model`` with an ownerReference to its owner when the alias
first resolves, and patches it when the alias moves (or the stack changed its replicas, memory or server);
removing the model from the stack deletes the owner and the garbage collector deletes the ``Model``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from platform_components.errors import ServingError
from platform_components.loop.interfaces import Rollout
from platform_components.seldon_models import (
    MODEL_PLURAL,
    SELDON_GROUP,
    SELDON_VERSION,
    SOURCE_ANNOTATION,
    VERSION_LABEL,
    ModelOwner,
    owner_name,
    seldon_model,
    storage_uri,
)

logger = logging.getLogger(__name__)

#: (registered model, version) -> the version's MLflow download URI.
DownloadUri = Callable[[str, str], str]
#: The spec fields the deployer owns; a difference in any of them is patched.
OWNED_SPEC_FIELDS = ("storageUri", "requirements", "replicas", "memory", "server", "secretName")


def mlflow_download_uri(tracking_uri: str) -> DownloadUri:
    """A ``DownloadUri`` asking the MLflow server (``MlflowClient.get_model_version_download_uri``).

    The client takes its credentials from ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` (the
    monitor's pod has them from its Secret).
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)

    def download_uri(registered_model: str, version: str) -> str:
        return str(client.get_model_version_download_uri(registered_model, version))

    return download_uri


def kubernetes_api(kubeconfig: str | Path | None = None, context: str | None = None) -> Any:
    """A ``kubernetes.client.ApiClient``: in-cluster in a pod, else from ``kubeconfig`` and ``context``.

    In a pod (``KUBERNETES_SERVICE_HOST`` set, as the kubelet sets it in every container) the client uses
    the pod's ServiceAccount token; elsewhere the kubeconfig file (default: ``$KUBECONFIG`` or
    ``~/.kube/config``) and its ``context`` (default: the current one). No global configuration is changed.
    """
    from kubernetes import client, config

    if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
        return client.ApiClient(configuration)
    return config.new_client_from_config(
        config_file=str(kubeconfig) if kubeconfig is not None else None, context=context
    )


class SeldonDeployer:
    """``interfaces.Deployer`` over Seldon Core 2 ``Model`` objects in one serving namespace.

    Args:
        api: a ``kubernetes.client.ApiClient`` (``kubernetes_api()``), authenticated as the monitor's
            ServiceAccount in the cluster.
        namespace: the serving namespace (``mlops:namespaces.serving``), where owners and Models live.
        download_uri: resolves a registered model version to its MLflow download URI
            (``mlflow_download_uri(tracking_uri)``).
    """

    def __init__(self, api: Any, namespace: str, download_uri: DownloadUri) -> None:
        from kubernetes import client

        self._core = client.CoreV1Api(api)
        self._custom = client.CustomObjectsApi(api)
        self._namespace = namespace
        self._download_uri = download_uri

    def owner(self, model: str) -> ModelOwner:
        """The model's owner object, parsed.

        Raises:
            ServingError: it does not exist (the model is not declared in the stack), the ServiceAccount may
                not read it, or it is malformed; the message names the model and the fix.
        """
        from kubernetes.client.exceptions import ApiException

        name = owner_name(model)
        try:
            config_map = self._core.read_namespaced_config_map(name, self._namespace)
        except ApiException as error:
            # 403 too: the Role grants get on the owners of declared models only (resourceNames), so an
            # undeclared model's owner is forbidden rather than missing.
            if error.status in (403, 404):
                seen = "does not exist" if error.status == 404 else "may not be read by this account"
                raise ServingError(
                    f"model {model!r} has no owner object (ConfigMap {self._namespace}/{name} {seen}): "
                    f"declare it in the stack's mlops:models (name: {model}) and run `pulumi up`; the "
                    "deployer only serves declared models"
                ) from error
            raise self._api_error(f"read ConfigMap {self._namespace}/{name}", error) from error
        return ModelOwner.from_config_map(self._core.api_client.sanitize_for_serialization(config_map))

    def serving_version(self, model: str) -> str | None:
        """The version the ``Model`` serves (its ``mlops.platform/version`` label), None without a Model."""
        current = self._read_model(model)
        if current is None:
            return None
        return (current.get("metadata", {}).get("labels") or {}).get(VERSION_LABEL)

    def ensure(self, model: str, registered_model: str, version: str) -> Rollout:
        """Serve ``version`` of ``registered_model`` as ``model``: create the ``Model``, or patch it.

        A no-op (``changed=False``) when the Model already serves that version with the owner's settings.
        ``changed`` is True when the served version changed (or the Model was created); a patch of replicas,
        memory or server alone says so in ``detail["patched"]``.

        Raises:
            ServingError: no owner object, an owner for another registered model, a Model this deployer
                does not own, a version or artifact location Seldon cannot serve, or the API refused.
        """
        if not version.isdigit():
            raise ServingError(
                f"version {version!r} of {registered_model!r} is not an MLflow model version number"
            )
        owner = self.owner(model)
        if owner.deleting:
            raise ServingError(
                f"model {model!r} is being removed (its owner ConfigMap "
                f"{self._namespace}/{owner_name(model)} is being deleted): it left the stack's "
                "mlops:models; declare it again to serve it"
            )
        if owner.registered_model != registered_model:
            raise ServingError(
                f"model {model!r} is declared for registered model {owner.registered_model!r} (its owner "
                f"ConfigMap {self._namespace}/{owner_name(model)}), not {registered_model!r}: change "
                "mlops:models[].registered_model in the stack, or serve it under another name"
            )
        current = self._read_model(model)
        if current is not None:
            self._check_owned(model, current, owner)
            labels = current.get("metadata", {}).get("labels") or {}
            if labels.get(VERSION_LABEL) == version:
                source = (current.get("metadata", {}).get("annotations") or {}).get(SOURCE_ANNOTATION)
                storage = current.get("spec", {}).get("storageUri")
                desired = seldon_model(
                    owner, self._namespace, version=version, storage=storage, source=source
                )
                if _owned_spec(current) == _owned_spec(desired) and _labels_match(current, desired):
                    return Rollout(model, version, changed=False, detail={"action": "none"})
                self._patch(model, current, desired)
                return Rollout(model, version, changed=False, detail={"action": "patched", "patched": True})
        source = self._download_uri(registered_model, version)
        storage = storage_uri(source, owner.artifacts_destination)
        desired = seldon_model(owner, self._namespace, version=version, storage=storage, source=source)
        if current is None:
            created = self._create(model, desired)
            if created:
                logger.info("created Seldon Model %s serving %s version %s", model, registered_model, version)
                return Rollout(
                    model, version, changed=True, detail={"action": "created", "storageUri": storage}
                )
            current = self._read_model(model)  # created meanwhile by another writer: patch it
            if current is None:
                raise ServingError(
                    f"Seldon Model {self._namespace}/{model} was created and deleted meanwhile"
                )
            self._check_owned(model, current, owner)
        previous = (current.get("metadata", {}).get("labels") or {}).get(VERSION_LABEL)
        self._patch(model, current, desired)
        logger.info("patched Seldon Model %s: version %s -> %s", model, previous, version)
        return Rollout(
            model,
            version,
            changed=previous != version,
            detail={"action": "patched", "previous": previous, "storageUri": storage},
        )

    # ------------------------------------------------------------------------------------------- API calls

    def _read_model(self, model: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return dict(
                self._custom.get_namespaced_custom_object(
                    SELDON_GROUP, SELDON_VERSION, self._namespace, MODEL_PLURAL, model
                )
            )
        except ApiException as error:
            if error.status == 404 and _is_object_not_found(error, model):
                return None
            raise self._api_error(f"read Seldon Model {self._namespace}/{model}", error) from error

    def _create(self, model: str, body: Mapping[str, Any]) -> bool:
        """Create the Model; False when it already exists (409)."""
        from kubernetes.client.exceptions import ApiException

        try:
            self._custom.create_namespaced_custom_object(
                SELDON_GROUP, SELDON_VERSION, self._namespace, MODEL_PLURAL, dict(body)
            )
        except ApiException as error:
            if error.status == 409:
                return False
            raise self._api_error(f"create Seldon Model {self._namespace}/{model}", error) from error
        return True

    def _patch(self, model: str, current: Mapping[str, Any], desired: Mapping[str, Any]) -> None:
        """A JSON merge patch of labels, annotations and the owned spec fields; ownerReferences untouched.

        Changing ownerReferences on an update needs ``delete`` on the object where the
        OwnerReferencesPermissionEnforcement plugin is on (gc_admission.go@v1.36.3); this patch never does.
        """
        from kubernetes.client.exceptions import ApiException

        spec: dict[str, Any] = {key: desired["spec"].get(key) for key in OWNED_SPEC_FIELDS}
        # A merge patch removes a key given as null; keys neither side has are left out.
        spec = {
            key: value for key, value in spec.items() if value is not None or key in current.get("spec", {})
        }
        patch = {
            "metadata": {
                "labels": desired["metadata"]["labels"],
                "annotations": desired["metadata"]["annotations"],
            },
            "spec": spec,
        }
        try:
            self._custom.patch_namespaced_custom_object(
                SELDON_GROUP, SELDON_VERSION, self._namespace, MODEL_PLURAL, model, patch
            )
        except ApiException as error:
            raise self._api_error(f"patch Seldon Model {self._namespace}/{model}", error) from error

    def _check_owned(self, model: str, current: Mapping[str, Any], owner: ModelOwner) -> None:
        if current.get("metadata", {}).get("deletionTimestamp"):
            raise ServingError(
                f"Seldon Model {self._namespace}/{model} is being deleted (Seldon's operator unloads it "
                "first); the next round creates it again"
            )
        references = current.get("metadata", {}).get("ownerReferences") or []
        owned = [
            ref
            for ref in references
            if ref.get("kind") == "ConfigMap" and ref.get("name") == owner_name(model)
        ]
        if not owned:
            raise ServingError(
                f"Seldon Model {self._namespace}/{model} exists but is not owned by ConfigMap "
                f"{owner_name(model)}: it was created outside the platform; delete it (kubectl delete "
                f"model {model} -n {self._namespace}) and the next round creates the platform's"
            )
        if all(ref.get("uid") != owner.uid for ref in owned):
            raise ServingError(
                f"Seldon Model {self._namespace}/{model} belongs to a deleted owner object (ConfigMap "
                f"{owner_name(model)} was recreated with uid {owner.uid}); the garbage collector deletes it "
                "and the next round creates it again"
            )

    def _api_error(self, action: str, error: Any) -> ServingError:
        if error.status == 403:
            return ServingError(
                f"the Kubernetes API refused to {action}: {error.reason}. The monitor's ServiceAccount needs "
                f"the platform's Role in namespace {self._namespace} (get on the mlops-model-* ConfigMaps; "
                "get, list, watch, create, patch, update on models.mlops.seldon.io): run `pulumi up`"
            )
        if error.status == 404:
            return ServingError(
                f"the Kubernetes API answered 404 to {action}: is Seldon Core 2 installed (the "
                f"models.{SELDON_GROUP} CRD) and does namespace {self._namespace} exist? ({error.reason})"
            )
        return ServingError(f"the Kubernetes API refused to {action}: HTTP {error.status} {error.reason}")


def _owned_spec(model: Mapping[str, Any]) -> dict[str, Any]:
    spec = model.get("spec") or {}
    return {key: spec.get(key) for key in OWNED_SPEC_FIELDS}


def _labels_match(current: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    have = current.get("metadata", {}).get("labels") or {}
    return all(have.get(key) == value for key, value in desired["metadata"]["labels"].items())


def _is_object_not_found(error: Any, name: str) -> bool:
    """A 404 about the object ``name``, not about the kind: a missing object's Status names it in
    ``details`` (``NewNotFound`` in k8s.io/apimachinery pkg/api/errors/errors.go@v0.36.3); a missing CRD
    answers 404 without those details."""
    import json

    try:
        body = json.loads(error.body or "{}")
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    details = body.get("details") or {}
    return body.get("reason") == "NotFound" and details.get("name") == name
