"""Our KFP objects against what KFP 2.17.0's built manifests create, and the launcher config KFP reads.

The manifests are built offline from ../shared/upstream (kfp_manifests.py); tests that need them skip, saying
why, where that folder is absent.
"""

# Fixtures come from pulumi_fixtures (see its docstring); pytest resolves them by parameter name.
# ruff: noqa: F811
from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml
from kfp_manifests import TARGETS, all_built_objects, built_objects, identity
from pulumi_fixtures import SEED, config_for, dev_render, render_program  # noqa: F401
from upstream_facts import fact

from platform_components.errors import ConfigError
from platform_components.kubernetes import kfp
from platform_components.render import clean, is_patch, kubernetes_objects, placeholder_secret, releases
from platform_components.settings import KfpSettings

KUBEFLOW = "kubeflow"
# The seed the dev stack renders with (the render cannot decrypt the stack's own).
DEV_SEED = placeholder_secret("mlops:secret_seed")


def _patches(resources: list[Any]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """Our Patch resources by the identity of the object they patch (inputs unredacted)."""
    found = {}
    for resource in resources:
        if is_patch(resource):
            inputs = clean(resource.inputs, redact=False)
            found[identity(inputs)] = inputs
    return found


def _kfp_resources(resources: list[Any]) -> list[Any]:
    return [resource for resource in resources if "KubeflowPipelines" in resource.urn]


def _built(kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in all_built_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"KFP's manifests create {len(matches)} {kind}/{name}"
    return matches[0]


# ---- the offline build itself ----


def test_kfp_targets_build_offline_to_the_objects_upstream_documents() -> None:
    counts = {target: len(built_objects(target)) for target in TARGETS}
    assert counts == fact("kfp.built_object_counts")


def test_localize_refuses_an_argo_base_at_another_tag(tmp_path: Path) -> None:
    (tmp_path / "kfp" / "argo").mkdir(parents=True)
    (tmp_path / "kfp" / "argo" / "kustomization.yaml").write_text(
        "resources:\n- https://github.com/argoproj/argo-workflows/manifests/base/crds/minimal?ref=v3.7.3\n"
    )
    with pytest.raises(ValueError, match="Argo base at v3.7.3"):
        kfp.localize_argo_refs(tmp_path / "kfp", tmp_path / "argo", fact("kfp.argo_version"))


# ---- item 4: no object of ours collides with one KFP creates; the launcher is patched ----


def test_no_object_we_create_is_one_kfp_manifests_already_create(dev_render: Any) -> None:
    """Same group/kind/namespace/name = AlreadyExists on `pulumi up` (pulumi-kubernetes >= 4.29)."""
    upstream = {identity(obj) for obj in all_built_objects()}
    ours = {identity(obj) for obj in kubernetes_objects(dev_render.resources)}
    assert ours, "the render created no objects"
    assert sorted(ours & upstream) == [], "create these as Patch resources, never as objects"


def test_every_patch_targets_an_object_kfp_creates_and_forces_only_where_kfp_owns_the_field(
    dev_render: Any,
) -> None:
    upstream = {identity(obj): obj for obj in all_built_objects()}
    patches = _patches(dev_render.resources)
    kfp_patches = {key: value for key, value in patches.items() if key[2] == KUBEFLOW}
    assert (("", "ConfigMap", KUBEFLOW, kfp.LAUNCHER_CONFIG_MAP)) in kfp_patches
    missing = sorted(key for key in kfp_patches if key not in upstream)
    assert missing == [], "a patch of an object nobody creates fails at `pulumi up`"
    for key, patch in kfp_patches.items():
        if patch.get("data"):  # a key KFP's manifests already set: KFP's field manager owns it
            annotations = patch["metadata"].get("annotations") or {}
            assert annotations.get(fact("pulumi_kubernetes.patch_force_annotation")) == "true", key


def test_the_launcher_config_is_patched_with_the_keys_and_fields_kfp_reads(dev_render: Any) -> None:
    launcher = _patches(dev_render.resources)[("", "ConfigMap", KUBEFLOW, kfp.LAUNCHER_CONFIG_MAP)]
    expected = fact("kfp.launcher_config_map")
    assert launcher["metadata"]["name"] == expected["name"]
    assert set(launcher["data"]) == set(expected["keys"])
    assert set(_built("ConfigMap", expected["name"])["data"]) <= set(expected["keys"])
    assert launcher["data"]["defaultPipelineRoot"] == "s3://mlflow-artifacts/pipelines"
    providers = yaml.safe_load(launcher["data"]["providers"])
    fields = fact("kfp.launcher_s3_provider_fields")
    default = providers["s3"]["default"]
    assert set(default) <= fields["default"]
    assert set(default["credentials"]) <= fields["credentials"]
    assert set(default["credentials"]["secretRef"]) == fields["secretRef"]
    # The Secret it names is ours, in the run's namespace, with the keys it names.
    reference = default["credentials"]["secretRef"]
    ours = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o
        for o in kubernetes_objects(dev_render.resources, redact=False)
        if o["kind"] == "Secret"
    }
    secret = ours[(KUBEFLOW, reference["secretName"])]
    assert {reference["accessKeyKey"], reference["secretKeyKey"]} <= set(secret["stringData"])


# ---- item 14: region from settings; KFP's bundled credentials replaced ----


@pytest.mark.parametrize(
    ("endpoint", "host", "disable_ssl"),
    [
        ("https://s3.eu-west-1.amazonaws.com", "s3.eu-west-1.amazonaws.com", False),
        ("http://minio.storage:9000", "minio.storage:9000", True),
        ("seaweedfs.mlflow.svc.cluster.local:8333", "seaweedfs.mlflow.svc.cluster.local:8333", True),
    ],
)
def test_launcher_endpoint_keeps_tls_unless_the_url_says_http(
    endpoint: str, host: str, disable_ssl: bool
) -> None:
    default = kfp.launcher_providers(endpoint, "eu-west-1")["s3"]["default"]
    assert (default["endpoint"], default["disableSSL"], default["region"]) == (host, disable_ssl, "eu-west-1")


def _render_with_external_store(render_program: Any) -> Any:
    """The platform with prod's kind of artifact store: external S3 in eu-west-1."""
    config = config_for(
        mlflow={
            "artifact_store": {
                "mode": "external",
                "endpoint": "https://s3.eu-west-1.amazonaws.com",
                "region": "eu-west-1",
                "bucket": "prod-artifacts",
            }
        },
        artifact_store_access_key_id="AKIAEXAMPLE",
        artifact_store_secret_access_key="example-secret",
    )
    keys = (
        "mlops:secret_seed",
        "mlops:artifact_store_access_key_id",
        "mlops:artifact_store_secret_access_key",
    )
    return render_program(config, keys)


def test_the_launcher_region_is_the_artifact_store_region(render_program: Any) -> None:
    result = _render_with_external_store(render_program)
    launcher = _patches(result.resources)[("", "ConfigMap", KUBEFLOW, kfp.LAUNCHER_CONFIG_MAP)]
    default = yaml.safe_load(launcher["data"]["providers"])["s3"]["default"]
    assert (default["region"], default["endpoint"], default["disableSSL"]) == (
        "eu-west-1",
        "s3.eu-west-1.amazonaws.com",
        False,
    )
    assert launcher["data"]["defaultPipelineRoot"] == "s3://prod-artifacts/pipelines"


def _decoded(patch: dict[str, Any]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in patch["data"].items()}


def test_kfp_bundled_stores_get_seed_derived_credentials_not_upstreams(dev_render: Any) -> None:
    patches = _patches(dev_render.resources)
    artifact_fact, database_fact = fact("kfp.artifact_secret"), fact("kfp.database_secret")
    artifact = _decoded(patches[("", "Secret", KUBEFLOW, artifact_fact["name"])])
    database = _decoded(patches[("", "Secret", KUBEFLOW, database_fact["name"])])
    # Upstream's Secrets hold what the facts say, so replacing exactly these keys is replacing them all.
    assert _built("Secret", artifact_fact["name"])["stringData"] == artifact_fact["shipped"]
    assert _built("Secret", database_fact["name"])["stringData"] == database_fact["shipped"]
    assert set(artifact) == set(artifact_fact["shipped"])
    assert database.keys() == {"password"}  # root stays the user KFP's pods log in as
    for key, shipped in (*artifact_fact["shipped"].items(), ("password", "")):
        value = artifact.get(key, database.get(key))
        assert value and value != shipped and len(value) >= 20, key
    # Derived from the seed as every other generated credential (stable across runs, new with the seed).
    credentials = kfp.kfp_credentials(DEV_SEED)
    assert artifact == {"accesskey": credentials.store_access_key, "secretkey": credentials.store_secret_key}
    assert database["password"] == credentials.database_password
    assert kfp.kfp_credentials("another-seed-0123456789") != credentials


def test_secret_patches_are_pulumi_secrets(dev_render: Any) -> None:
    for resource in _kfp_resources(dev_render.resources):
        if resource.type == "kubernetes:core/v1:SecretPatch":
            assert clean(resource.inputs["data"]) != clean(resource.inputs["data"], redact=False)


def test_every_pod_reading_kfp_credentials_restarts_when_they_change(dev_render: Any) -> None:
    """Env from a Secret is read at container start: every reader in KFP's manifests is restarted."""
    credential_secrets = {fact("kfp.artifact_secret")["name"], fact("kfp.database_secret")["name"]}
    readers = set()
    for obj in all_built_objects():
        if obj["kind"] != "Deployment":
            continue
        spec = obj["spec"]["template"]["spec"]
        for container in spec.get("initContainers", []) + spec["containers"]:
            names = {
                (item.get("valueFrom") or {}).get("secretKeyRef", {}).get("name")
                for item in container.get("env", [])
            } | {(item.get("secretRef") or {}).get("name") for item in container.get("envFrom", [])}
            if names & credential_secrets:
                readers.add(obj["metadata"]["name"])
    assert readers == fact("kfp.credential_readers")
    patches = _patches(dev_render.resources)
    fingerprints = set()
    for name in readers | {kfp.DATABASE_DEPLOYMENT}:
        template = patches[("apps", "Deployment", KUBEFLOW, name)]["spec"]["template"]
        fingerprints.add(template["metadata"]["annotations"][kfp.CREDENTIALS_HASH_ANNOTATION])
    assert fingerprints == {kfp.kfp_credentials(DEV_SEED).fingerprint()}


def test_mysql_gets_the_root_password_from_the_patched_secret(dev_render: Any) -> None:
    mysql = _built("Deployment", kfp.DATABASE_DEPLOYMENT)
    upstream_env = {item["name"]: item for item in mysql["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert upstream_env["MYSQL_ALLOW_EMPTY_PASSWORD"]["value"] == "true"
    patch = _patches(dev_render.resources)[("apps", "Deployment", KUBEFLOW, kfp.DATABASE_DEPLOYMENT)]
    (container,) = patch["spec"]["template"]["spec"]["containers"]
    assert container["name"] == mysql["spec"]["template"]["spec"]["containers"][0]["name"]
    *upstream_env, variable = container["env"]
    assert upstream_env == [{"name": name} for name in kfp.MYSQL_UPSTREAM_ENV]
    assert variable["name"] == fact("mysql.root_password_at_init")
    assert variable["valueFrom"]["secretKeyRef"] == {
        "name": fact("kfp.database_secret")["name"],
        "key": "password",
    }


def test_the_password_job_uses_kfps_mysql_image_and_host_and_keeps_the_password_off_argv(
    dev_render: Any,
) -> None:
    (job,) = [
        o
        for o in kubernetes_objects(dev_render.resources)
        if o["kind"] == "Job" and o["metadata"]["namespace"] == KUBEFLOW
    ]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    mysql = _built("Deployment", kfp.DATABASE_DEPLOYMENT)["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].rpartition("/")[2] == mysql["image"].rpartition("/")[2]
    service = _built("Service", "mysql")
    env = {item["name"]: item for item in container["env"]}
    assert env["MYSQL_HOST"]["value"] == service["metadata"]["name"]
    assert env["NEW_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == fact("kfp.database_secret")["name"]
    assert "-p" not in " ".join(container["command"]).replace("-p'", "")  # MYSQL_PWD, never -p<password>


# ---- local manifests (air gap) ----


def test_without_a_local_path_the_remote_refs_are_at_the_pinned_version() -> None:
    scoped, overlay = kfp.manifest_directories(KfpSettings())
    assert scoped.endswith("manifests/kustomize/cluster-scoped-resources?ref=2.17.0")
    assert overlay.endswith("manifests/kustomize/env/platform-agnostic?ref=2.17.0")


def test_a_local_manifests_path_is_applied_instead_of_the_remote_refs(
    render_program: Any, tmp_path: Path
) -> None:
    for target in TARGETS:
        (tmp_path / target).mkdir(parents=True)
        (tmp_path / target / "kustomization.yaml").write_text("resources: []\n")
    result = render_program(config_for(**{"kfp": {"manifests_path": str(tmp_path)}}))
    directories = sorted(
        entry["directory"] for entry in releases(result.resources) if entry["kind"] == "kustomize"
    )
    assert directories == [
        str(tmp_path / "cluster-scoped-resources"),
        str(tmp_path / "env/platform-agnostic"),
    ]
    versions = {entry["version"] for entry in releases(result.resources) if entry["kind"] == "kustomize"}
    assert versions == {None}


def test_a_local_manifests_path_without_the_targets_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"mlops:kfp.manifests_path .* no cluster-scoped-resources/kustomization"
    ):
        kfp.manifest_directories(KfpSettings(manifests_path=str(tmp_path)))


def test_a_relative_manifests_path_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="must be an absolute path"):
        KfpSettings(manifests_path="vendor/kfp")


def test_the_built_localized_targets_are_what_a_local_path_applies(tmp_path: Path) -> None:
    """The helper's localized folder satisfies the setting's check (the same folder a platform team makes)."""
    from kfp_manifests import kustomize_root

    scoped, overlay = kfp.manifest_directories(KfpSettings(manifests_path=str(kustomize_root())))
    assert Path(scoped, "kustomization.yaml").is_file() and Path(overlay, "kustomization.yaml").is_file()


def test_seldons_rclone_config_carries_the_artifact_store_region(render_program: Any) -> None:
    """Item 14's 'the same for rclone': Models load from the same bucket as pipeline roots."""
    objects = kubernetes_objects(_render_with_external_store(render_program).resources, redact=False)
    (rclone,) = [
        o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == "mlops-artifact-store-rclone"
    ]
    parameters = yaml.safe_load(rclone["stringData"]["s3"])["parameters"]
    assert parameters[fact("rclone.s3_region_option")] == "eu-west-1"


def test_the_shipped_seaweedfs_key_is_revoked_inside_kfps_seaweedfs_pod(dev_render: Any) -> None:
    """s3.configure appends keys: without a delete, minio/minio123 would stay valid next to ours."""
    assert fact("seaweedfs.s3_configure_appends_keys") == "-delete"
    seaweedfs = _built("Deployment", kfp.STORE_DEPLOYMENT)
    (server,) = seaweedfs["spec"]["template"]["spec"]["containers"]
    post_start = " ".join(server["lifecycle"]["postStart"]["exec"]["command"])
    assert "s3.configure -user kubeflow-admin -access_key $accesskey" in post_start
    # Why in the pod: KFP's policy admits namespace pods on the S3 port only.
    policy = _built("NetworkPolicy", "seaweedfs")
    same_namespace = [rule for rule in policy["spec"]["ingress"] if rule["from"] == [{"podSelector": {}}]]
    assert [port["port"] for rule in same_namespace for port in rule["ports"]] == [
        fact("kfp.seaweedfs_policy_ports")
    ]
    patch = _patches(dev_render.resources)[("apps", "Deployment", KUBEFLOW, kfp.STORE_DEPLOYMENT)]
    *upstream_containers, revoke = patch["spec"]["template"]["spec"]["containers"]
    assert upstream_containers == [{"name": name} for name in kfp.SEAWEEDFS_UPSTREAM_CONTAINERS]
    assert revoke["name"] != server["name"]  # a container of its own, not a change of upstream's
    assert revoke["image"] == server["image"]
    script = revoke["command"][-1]
    shipped = fact("kfp.artifact_secret")["shipped"]["accesskey"]
    assert f"-user kubeflow-admin -access_key {shipped} -delete -apply" in script
    assert "/usr/bin/weed shell" in script and "127.0.0.1:8333/status" in script
    assert revoke["resources"]["limits"] and revoke["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_a_new_secret_seed_never_rewrites_kfps_store_credentials(
    monkeypatch: pytest.MonkeyPatch, render_program: Any
) -> None:
    """MySQL keeps the first root password in its volume and SeaweedFS appends keys: a re-derived value
    would lock KFP's pods out, so both Secret patches keep their first value (ignore_changes on data)."""
    from platform_components import render

    ignored: dict[str, tuple[str, ...]] = {}
    record = render._record_dependencies

    def recording(monitor: Any) -> dict[str, tuple[str, ...]]:
        register = monitor.RegisterResource

        def register_resource(request: Any) -> Any:
            response = register(request)
            ignored[response.urn] = tuple(request.ignoreChanges)
            return response

        monitor.RegisterResource = register_resource
        return record(monitor)

    monkeypatch.setattr(render, "_record_dependencies", recording)
    result = render_program(config_for())
    secret_patches = [r for r in result.resources if r.type == "kubernetes:core/v1:SecretPatch"]
    assert {r.inputs["metadata"]["name"] for r in secret_patches} == {
        fact("kfp.artifact_secret")["name"],
        fact("kfp.database_secret")["name"],
    }
    assert {r.urn: ignored[r.urn] for r in secret_patches} == {r.urn: ("data",) for r in secret_patches}


def _container_images(objects: list[dict[str, Any]]) -> set[str]:
    found = set()
    for obj in objects:
        spec = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            found.add(container["image"])
    return found


def test_a_prepared_copy_pulls_every_kfp_image_from_the_mirror(tmp_path: Path) -> None:
    """Air gap: after mirror_kfp_images, kubectl kustomize gives KFP pods that pull only from the mirror."""
    import shutil
    import subprocess

    from kfp_manifests import ARGO_FOLDER, KFP_FOLDER, _build_root

    from platform_components import images
    from platform_components.settings import ImagesSettings

    copy_root = tmp_path / "copy"
    shutil.copytree(_build_root() / KFP_FOLDER, copy_root / KFP_FOLDER, symlinks=True)
    shutil.copytree(_build_root() / ARGO_FOLDER, copy_root / ARGO_FOLDER, symlinks=True)
    mirror = "registry.internal/mirror"
    root = copy_root / KFP_FOLDER / "manifests" / "kustomize"
    entries = images.kustomize_images(ImagesSettings(mirror=mirror))
    kfp.mirror_kfp_images(root, entries)
    kfp.mirror_kfp_images(root, entries)  # twice: the same entries, not duplicates
    built = subprocess.run(
        ["kubectl", "kustomize", str(root / "env/platform-agnostic")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    pulled = _container_images([obj for obj in yaml.safe_load_all(built) if obj])
    upstream = _container_images(built_objects("env/platform-agnostic"))
    assert len(pulled) == len(upstream) > 5
    assert sorted(image for image in pulled if not image.startswith(f"{mirror}/")) == []


def test_the_patches_name_upstreams_list_items_first_in_upstreams_order() -> None:
    """DeploymentPatches list KFP's own items (by name) before ours, as the live merged lists hold them.

    The provider diffs a patch's lists by position against the live object: if KFP's manifests gain or
    reorder an env var or container, these constants must follow, or every preview shows an update.
    """
    deployments = {
        obj["metadata"]["name"]: obj["spec"]["template"]["spec"]
        for obj in built_objects("env/platform-agnostic")
        if obj.get("kind") == "Deployment"
    }
    mysql_env = [item["name"] for item in deployments[kfp.DATABASE_DEPLOYMENT]["containers"][0]["env"]]
    assert tuple(mysql_env) == kfp.MYSQL_UPSTREAM_ENV
    store_containers = [container["name"] for container in deployments[kfp.STORE_DEPLOYMENT]["containers"]]
    assert tuple(store_containers) == kfp.SEAWEEDFS_UPSTREAM_CONTAINERS
