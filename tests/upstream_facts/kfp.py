"""Kubeflow Pipelines 2.17.0 (its manifests, launcher config and bundled stores) and what we patch in it."""

from __future__ import annotations

from upstream_facts import Fact

_KFP = "kubeflow/pipelines"
_TAG = "2.17.0"
_MANIFESTS = "manifests/kustomize"

FACTS = [
    Fact(
        key="kfp.argo_version",
        statement="KFP 2.17.0 builds its Argo Workflows from five remote kustomize bases at this ref",
        source=f"{_KFP} {_MANIFESTS}/third-party/argo/base/kustomization.yaml@{_TAG}",
        value="v4.0.5",
    ),
    Fact(
        key="kfp.built_object_counts",
        statement="Built offline, cluster-scoped-resources makes 16 objects and env/platform-agnostic 72",
        source=f"{_KFP} {_MANIFESTS}/env/platform-agnostic/kustomization.yaml@{_TAG}",
        value={"cluster-scoped-resources": 16, "env/platform-agnostic": 72},
    ),
    Fact(
        key="kfp.launcher_config_map",
        statement=(
            "The launcher reads the ConfigMap kfp-launcher in the run's namespace: defaultPipelineRoot "
            "(empty means minio://mlpipeline/v2/artifacts) and providers, a YAML document; the "
            "platform-agnostic overlay creates it with an empty defaultPipelineRoot"
        ),
        source=f"{_KFP} backend/src/v2/config/env.go@{_TAG}",
        value={"name": "kfp-launcher", "keys": ("defaultPipelineRoot", "providers")},
    ),
    Fact(
        key="kfp.launcher_s3_provider_fields",
        statement=(
            "providers.s3.default takes endpoint, region, disableSSL, forcePathStyle, maxRetries and "
            "credentials {fromEnv, secretRef {secretName, accessKeyKey, secretKeyKey}}; an endpoint without "
            "scheme gets http:// when disableSSL is true, else https://"
        ),
        source=f"{_KFP} backend/src/v2/config/s3.go@{_TAG}",
        value={
            "default": {"endpoint", "region", "disableSSL", "forcePathStyle", "maxRetries", "credentials"},
            "credentials": {"fromEnv", "secretRef"},
            "secretRef": {"secretName", "accessKeyKey", "secretKeyKey"},
        },
    ),
    Fact(
        key="kfp.artifact_secret",
        statement=(
            "KFP's bundled SeaweedFS credentials are the Secret mlpipeline-minio-artifact with keys "
            "accesskey/secretkey, shipped as minio/minio123; SeaweedFS gets them by envFrom and configures "
            "its kubeflow-admin S3 user from them at every start (postStart)"
        ),
        source=f"{_KFP} {_MANIFESTS}/third-party/seaweedfs/base/seaweedfs/seaweedfs-deployment.yaml@{_TAG}",
        value={
            "name": "mlpipeline-minio-artifact",
            "shipped": {"accesskey": "minio", "secretkey": "minio123"},
        },
    ),
    Fact(
        key="kfp.database_secret",
        statement=(
            "KFP's pods log in to the bundled MySQL with the Secret mysql-secret (username root, password "
            "empty); the mysql Deployment sets MYSQL_ALLOW_EMPTY_PASSWORD=true"
        ),
        source=f"{_KFP} {_MANIFESTS}/base/installs/generic/mysql-secret.yaml@{_TAG}",
        value={"name": "mysql-secret", "shipped": {"username": "root", "password": ""}},
    ),
    Fact(
        key="kfp.credential_readers",
        statement=(
            "The Deployments that read mlpipeline-minio-artifact or mysql-secret (env secretKeyRef or "
            "envFrom): ml-pipeline, ml-pipeline-ui, cache-server, metadata-grpc-deployment, seaweedfs; the "
            "mysql Deployment is the one that must get the password"
        ),
        source=f"{_KFP} {_MANIFESTS}/base/pipeline/ml-pipeline-apiserver-deployment.yaml@{_TAG}",
        value=frozenset(
            {"ml-pipeline", "ml-pipeline-ui", "cache-server", "metadata-grpc-deployment", "seaweedfs"}
        ),
    ),
    Fact(
        key="mysql.root_password_at_init",
        statement=(
            "The mysql:8.4 entrypoint sets MYSQL_ROOT_PASSWORD for root@localhost and root@'%' only when "
            "the data directory is new; MYSQL_ALLOW_EMPTY_PASSWORD is only checked when no password is set"
        ),
        source="docker-library/mysql 8.4/docker-entrypoint.sh@06118821c80d79b251254736b06670828b63b6aa",
        value="MYSQL_ROOT_PASSWORD",
    ),
    Fact(
        key="pulumi_kubernetes.patch_force_annotation",
        statement=(
            "A <Kind>Patch resource applies its fields by server-side apply under its own field manager; a "
            "conflict with another manager fails unless the patch carries this annotation set to true"
        ),
        source="pulumi/pulumi-kubernetes sdk/python/pulumi_kubernetes/core/v1/ConfigMapPatch.py@v4.34.2",
        value="pulumi.com/patchForce",
    ),
    Fact(
        key="pulumi_kubernetes.create_already_exists",
        statement=(
            "Since 4.29.0 a new resource is created client-side: an object that already exists fails with "
            "AlreadyExists instead of being upserted; Patch resources are the way to change such objects"
        ),
        source="pulumi/pulumi-kubernetes CHANGELOG.md@v4.29.0",
        value="4.29.0",
    ),
]

FACTS += [
    Fact(
        key="seaweedfs.s3_configure_appends_keys",
        statement=(
            "weed shell s3.configure -user U -access_key K adds K to U's credentials and keeps the others; "
            "-delete with -access_key removes that key only"
        ),
        source="seaweedfs/seaweedfs weed/shell/command_s3_configure.go@4.34",
        value="-delete",
    ),
    Fact(
        key="kfp.seaweedfs_policy_ports",
        statement=(
            "KFP's NetworkPolicy for SeaweedFS admits pods of its own namespace on 8333 only, so weed shell "
            "(master 9333/19333, filer 8888/18888) works only from inside the SeaweedFS pod"
        ),
        source="kubeflow/pipelines manifests/kustomize/third-party/seaweedfs/base/seaweedfs/"
        "seaweedfs-networkpolicy.yaml@2.17.0",
        value=8333,
    ),
]
