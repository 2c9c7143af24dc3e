"""What the cluster deployer relies on: Seldon's Model CRD and rclone, Kubernetes' garbage collector and its
admission plugin, MLflow's proxied artifact paths and the kubernetes Python client.

Read at SeldonIO/seldon-core v2.10.2 (the tag's tree), kubernetes/kubernetes v1.36.3 and
k8s.io/apimachinery v0.36.3 (the Go module cache tools/ builds from), mlflow 3.17.2 and kubernetes 30.1.0 (the
installed wheels; the same files as the tags' sources).
"""

from __future__ import annotations

from upstream_facts import Fact

SELDON = "SeldonIO/seldon-core"
K8S = "kubernetes/kubernetes"
TAG = "v1.36.3"

FACTS = [
    Fact(
        key="seldon_deployer.model_crd",
        statement="Seldon's Model is the namespaced kind Model (plural models) of group mlops.seldon.io, "
        "served and stored at v1alpha1; its spec requires only storageUri and has requirements, replicas, "
        "memory, server and secretName among its fields",
        source=f"{SELDON} operator/config/crd/bases/mlops.seldon.io_models.yaml@v2.10.2",
        value={
            "group": "mlops.seldon.io",
            "version": "v1alpha1",
            "kind": "Model",
            "plural": "models",
            "scope": "Namespaced",
            "required": ["storageUri"],
            "fields": ["storageUri", "requirements", "replicas", "memory", "server", "secretName"],
        },
    ),
    Fact(
        key="seldon_deployer.rclone_remote_matches_secret",
        statement="With a secretName, the agent takes the text before the first ':' of storageUri as the "
        "rclone remote's name and refuses the Model unless the Secret's rclone config has that name; it then "
        "replaces that name by the config as an inline connection string",
        source=f"{SELDON} scheduler/pkg/agent/rclone/rclone.go@v2.10.2",
        value="s3",
    ),
    Fact(
        key="kubernetes.owner_reference.same_namespace",
        statement="An ownerReference has these fields and no namespace: the owner must be cluster-scoped or "
        "in the dependent's namespace; blockOwnerDeletion true keeps an owner being deleted in the "
        "foreground until the dependent is gone",
        source="kubernetes/apimachinery pkg/apis/meta/v1/types.go@v0.36.3",
        value=["apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion"],
    ),
    Fact(
        key="pulumi_kubernetes.delete_propagation",
        statement="The provider deletes an object with foreground propagation unless its "
        "pulumi.com/deletionPropagationPolicy annotation says orphan or background, and waits until it is "
        "gone",
        source="pulumi/pulumi-kubernetes provider/pkg/metadata/overrides.go@v4.25.0",
        value={"default": "Foreground", "annotation": "pulumi.com/deletionPropagationPolicy"},
    ),
    Fact(
        key="seldon_deployer.model_finalizer",
        statement="Seldon's operator adds the finalizer seldon.model.finalizer to every Model and removes it "
        "only after asking the scheduler to unload the model: without the operator a deleted Model stays",
        source=f"{SELDON} operator/controllers/mlops/model_controller.go@v2.10.2",
        value="seldon.model.finalizer",
    ),
    Fact(
        key="kubernetes.gc.absent_owner",
        statement="The garbage collector deletes a dependent once every owner it references is absent: not "
        "found, or found with another UID (a recreated owner does not adopt the old dependents)",
        source=f"{K8S} pkg/controller/garbagecollector/garbagecollector.go@{TAG}",
        value={"not_found": "dangling", "uid_mismatch": "dangling"},
    ),
    Fact(
        key="kubernetes.gc.controller_role",
        statement="The bootstrap role of the garbage collector's ServiceAccount may get, list, watch, patch, "
        "update and delete every resource of every group, custom resources included",
        source=f"{K8S} plugin/pkg/auth/authorizer/rbac/bootstrappolicy/controller_policy.go@{TAG}",
        value=["get", "list", "watch", "patch", "update", "delete"],
    ),
    Fact(
        key="kubernetes.gc_admission.rules",
        statement="The OwnerReferencesPermissionEnforcement admission plugin lets a create set any "
        "ownerReference, requires delete on the object for an update that changes its ownerReferences, and "
        "requires update on the owner's finalizers subresource to set blockOwnerDeletion true",
        source=f"{K8S} plugin/pkg/admission/gc/gc_admission.go@{TAG}",
        value={
            "create": None,
            "update_changing_owner_references": "delete",
            "block_owner_deletion": ("update", "finalizers"),
        },
    ),
    Fact(
        key="kubernetes.gc_admission.default_off",
        statement="OwnerReferencesPermissionEnforcement is registered but not in the API server's "
        "default-on admission plugins (clusters such as OpenShift turn it on)",
        source=f"{K8S} pkg/kubeapiserver/options/plugins.go@{TAG}",
        value="OwnerReferencesPermissionEnforcement",
    ),
    Fact(
        key="kubernetes.not_found_status",
        statement="A missing object is answered 404 with a Status of reason NotFound whose details name the "
        "object (group, kind as the resource, name)",
        source="kubernetes/apimachinery pkg/api/errors/errors.go@v0.36.3",
        value={"reason": "NotFound", "details": ["group", "kind", "name"]},
    ),
    Fact(
        key="mlflow.proxied_artifact_destination",
        statement="With --serve-artifacts, an mlflow-artifacts URI (mlflow-artifacts:/<path> or "
        "mlflow-artifacts://<host>/<path>) is stored at <path> without its leading slash under "
        "--artifacts-destination",
        source="mlflow/mlflow mlflow/server/handlers.py@v3.17.2",
        value="_get_proxied_run_artifact_destination_path",
    ),
    Fact(
        key="mlflow.model_version_download_uri",
        statement="A model version's download URI is its storage_location, else its source; registering "
        "from models:/<model id> stores the logged model's artifact_location as the storage location",
        source="mlflow/mlflow mlflow/store/model_registry/sqlalchemy_store.py@v3.17.2",
        value="storage_location or source",
    ),
    Fact(
        key="kubernetes_client.custom_object_patch",
        statement="CustomObjectsApi.patch_namespaced_custom_object sends its body as "
        "application/merge-patch+json (a JSON merge patch: null removes a key)",
        source="kubernetes-client/python kubernetes/client/api/custom_objects_api.py@v30.1.0",
        value="application/merge-patch+json",
    ),
    Fact(
        key="kubernetes_client.in_cluster",
        statement="load_incluster_config reads the API server from KUBERNETES_SERVICE_HOST/PORT and the "
        "token and CA the kubelet mounts under /var/run/secrets/kubernetes.io/serviceaccount/",
        source="kubernetes-client/python kubernetes/config/incluster_config.py@v30.1.0",
        value={
            "host_env": "KUBERNETES_SERVICE_HOST",
            "token": "/var/run/secrets/kubernetes.io/serviceaccount/token",
        },
    ),
]
