"""Our images (Dockerfiles, locks, `mlops images`) and where every image in the render is pulled from."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from upstream_facts import fact, upstream_path

from platform_components import images, versions
from platform_components.errors import ConfigError, PlatformError
from platform_components.render import kubernetes_objects, read_stack_config, run_program
from platform_components.settings import ImagesSettings, load_platform_settings

sys.path.insert(0, str(Path(__file__).parent / "kubernetes"))
from pulumi_fixtures import SEED, config_for  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REGISTRY = "registry.example.test/platform"
MIRROR = "mirror.example.test/upstream"
PIN = re.compile(r"^[A-Za-z0-9._-]+(\[[a-z0-9,_-]+\])?==[A-Za-z0-9.+!_-]+$")
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for obj in objects:
        if obj["kind"] not in WORKLOADS:
            continue
        spec = obj["spec"]
        if obj["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        if obj["kind"] != "Pod":
            spec = spec["template"]["spec"]
        found.append((f"{obj['kind']}/{obj['metadata']['name']}", spec))
    return found


def container_images(objects: list[dict[str, Any]]) -> set[str]:
    """Every container image of every pod the render creates (Seldon Servers' image override included)."""
    found = set()
    for _, spec in pod_specs(objects):
        found.update(c["image"] for c in spec.get("containers", []) + spec.get("initContainers", []))
    for obj in objects:
        if obj["kind"] == "Server":
            found.update(c["image"] for c in obj["spec"]["podSpec"]["containers"] if "image" in c)
    return found


def release_values(resources: list[Any]) -> dict[str, dict[str, Any]]:
    return {
        str(item.inputs["chart"]): item.inputs.get("values") or {}
        for item in resources
        if item.type == "kubernetes:helm.sh/v3:Release"
    }


@pytest.fixture(scope="module")
def configured_render() -> Any:
    """The dev stack with our registry, a pull secret and a mirror set."""
    config, secret_keys = read_stack_config("dev", REPO)
    config["mlops:images"] = json.dumps(
        {"registry": REGISTRY, "pull_secrets": ["registry-credentials"], "mirror": MIRROR}
    )
    return run_program(config, secret_keys, stack="dev")


@pytest.fixture(scope="module")
def default_render() -> Any:
    return run_program(config_for(), ("mlops:secret_seed",))


# ---- item 5: the MLflow server runs our image, which has what the bare one lacks


def test_mlflow_runs_our_image_by_default_not_mlflows_bare_one(default_render: Any) -> None:
    objects = kubernetes_objects(default_render.resources)
    (deployment,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "mlflow"]
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == images.reference("mlflow")
    assert image == f"ghcr.io/mlops-platform/mlflow:{versions.get('mlflow').version.lstrip('v')}-0.1.0"
    assert not image.startswith("ghcr.io/mlflow/mlflow")


def test_mlflow_lock_has_what_the_server_command_needs() -> None:
    """The bare image installs only mlflow; the lock adds each package the Deployment's flags need."""
    assert fact("mlflow_image.published.installs_only_mlflow") == ("mlflow",)
    pins = lock_pins(REPO / "docker/requirements/mlflow.txt")
    wanted = {
        fact("mlflow_image.extra.auth"),  # --app-name basic-auth
        fact("mlflow_image.extra.db_postgres"),  # postgresql+psycopg2://
        *fact("mlflow_image.extra.s3_and_metrics"),  # s3:// artifacts, --expose-prometheus
    }
    assert wanted <= set(pins), f"missing from the MLflow lock: {sorted(wanted - set(pins))}"
    assert pins["mlflow"] == versions.get("mlflow").version.lstrip("v")


def lock_pins(path: Path) -> dict[str, str]:
    pins = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        assert PIN.match(line), f"{path.name}: {line!r} is not an exact pin (name==version)"
        name, version = line.split("==")
        pins[re.sub(r"[-_.]+", "-", name.split("[")[0]).lower()] = version
    return pins


@pytest.mark.parametrize("image", images.OUR_IMAGES, ids=lambda image: image.name)
def test_each_dockerfile_installs_exactly_its_lock(image: images.OurImage) -> None:
    dockerfile = (REPO / image.dockerfile).read_text()
    lock = REPO / image.lock
    assert lock_pins(lock), f"{image.lock} is empty"
    assert f"COPY {image.lock} " in dockerfile, f"{image.dockerfile} does not copy {image.lock}"
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert installs and all("--no-deps" in line for line in installs), (
        f"{image.dockerfile}: every pip install must be --no-deps, so only the lock's pins are installed"
    )
    assert "pip check" in dockerfile
    assert lock.read_text().startswith(
        "# This file was autogenerated by uv via the following command:\n#    mlops images lock"
    )


def test_dockerfiles_start_from_the_bases_versions_py_pins() -> None:
    """Every base is a row of versions.py (python for ours, mlserver for serving), named with its registry."""
    pinned = {
        f"docker.io/{u.image}" if not u.image.split("/")[0].count(".") else u.image
        for u in versions.UPSTREAMS
        if u.kind is versions.Kind.IMAGE
    }
    for image in images.OUR_IMAGES:
        bases = [
            line.split()[1]
            for line in (REPO / image.dockerfile).read_text().splitlines()
            if line.startswith("FROM ")
        ]
        assert bases and set(bases) <= pinned, f"{image.dockerfile}: {bases} not pinned in versions.py"


def test_platform_lock_matches_the_ml_extra_floors() -> None:
    """The lock is the `ml` extra: mlflow, kfp and mlserver at the floors versions.py keeps."""
    pins = lock_pins(REPO / "docker/requirements/platform.txt")
    for name, floor in versions.FLOORS.items():
        package = {"kfp-platform-agnostic": "kfp", "kfp-cluster-scoped-resources": "kfp"}.get(name, name)
        assert versions.version_tuple(pins[package]) >= floor, f"{package} {pins[package]} below {floor}"
    assert pins["mlserver"] == versions.get("mlserver").version


# ---- item 7: `mlops images` lists exactly the images of ours that the render runs


def dry_run(*args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(images.images_group, ["build", *args, "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_render_runs_exactly_the_images_the_dry_run_lists(configured_render: Any) -> None:
    objects = kubernetes_objects(configured_render.resources)
    ours = {image for image in container_images(objects) if image.startswith(f"{REGISTRY}/")}
    listed = dry_run("--registry", REGISTRY)
    assert ours == {plan["image"] for plan in listed if plan["rendered"]}
    assert not [i for i in container_images(objects) if i.startswith("ghcr.io/mlops-platform/")]


def test_dry_run_json_lists_image_dockerfile_context_tag_and_push_target() -> None:
    listed = {plan["name"]: plan for plan in dry_run("--registry", REGISTRY)}
    assert sorted(listed) == ["credit-default-pipeline", "mlflow", "monitor", "serving"]
    for plan in listed.values():
        assert (REPO / plan["dockerfile"]).is_file()
        assert (REPO / plan["context"]).is_dir()
        assert plan["push"] == f"{REGISTRY}/{plan['name']}:{plan['tag']}"
        assert plan["commands"] == [
            [plan["commands"][0][0], "build", "--file", plan["dockerfile"], "--tag", plan["push"], "."]
        ]


def test_pipeline_base_tag_matches_the_example_pipeline() -> None:
    from examples.credit_default.components import BASE_IMAGE

    plan = next(plan for plan in dry_run() if plan["name"] == "credit-default-pipeline")
    assert BASE_IMAGE.rsplit("/", 1)[1] == f"{plan['name']}:{plan['tag']}"


def test_push_dry_run_pushes_the_built_tags() -> None:
    result = CliRunner().invoke(
        images.images_group,
        ["push", "--registry", REGISTRY, "--only", "mlflow", "--dry-run", "--builder", "podman"],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"podman push {images.reference('mlflow', ImagesSettings(registry=REGISTRY))}"
    ]


def test_build_without_any_builder_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PlatformError, match=r"no container builder found on PATH .*install Docker, Podman"):
        images.find_builder()
    result = CliRunner().invoke(images.images_group, ["build", "--registry", REGISTRY])
    assert isinstance(result.exception, PlatformError)


def test_unknown_image_and_bad_registry_are_named() -> None:
    with pytest.raises(ConfigError, match=r"--only nope: not an image of ours; use one of mlflow"):
        images._selected(REGISTRY, ["nope"])
    with pytest.raises(ConfigError, match=r"--registry: .*no scheme.*\(got 'https://r.io/x'\)"):
        images._selected("https://r.io/x", [])


def test_lock_command_is_the_documented_uv_compile() -> None:
    commands = images.lock_commands("uv")
    assert [command[command.index("--output-file") + 1] for command in commands] == sorted(images.LOCK_INPUTS)
    for command in commands:
        assert command[:3] == ["uv", "pip", "compile"]
        assert "--python-version" in command and "3.11" in command


# ---- settings: registry prefix, pull secrets, mirror, digests


def test_images_settings_default_to_our_public_registry_with_no_secrets_or_mirror() -> None:
    settings = ImagesSettings()
    assert (settings.registry, settings.pull_secrets, settings.mirror, settings.digests) == (
        "ghcr.io/mlops-platform",
        (),
        None,
        {},
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"registry": "https://r.io/x"}, r"mlops:images\.registry: .*no scheme"),
        ({"registry": "r.io/x/"}, r"mlops:images\.registry: .*trailing '/'"),
        ({"mirror": "Mirror.IO"}, r"mlops:images\.mirror: .*registry host"),
        ({"pull_secrets": ["Reg_Cred"]}, r"mlops:images\.pull_secrets\.0: .*Kubernetes name"),
        ({"digests": {"mlflow": "sha256:abc"}}, r"mlops:images\.digests\.mlflow: .*sha256:<64 hex"),
        ({"digests": {"grafana": "sha256:" + "0" * 64}}, r"mlops:images\.digests\.grafana"),
    ],
)
def test_bad_images_settings_name_the_key(value: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_platform_settings({"mlops:secret_seed": SEED, "mlops:images": json.dumps(value)})


def test_a_digest_pins_our_image_and_an_explicit_image_still_wins() -> None:
    digest = "sha256:" + "a" * 64
    settings = load_platform_settings(
        {
            "mlops:secret_seed": SEED,
            "mlops:images": json.dumps({"registry": REGISTRY, "digests": {"monitor": digest}}),
            "mlops:seldon": json.dumps({"serving_image": "other.example/serving:9.9.9"}),
        }
    )
    resolved = images.resolve(settings)
    assert resolved.monitoring.monitor.image == f"{REGISTRY}/monitor:0.1.0@{digest}"
    assert resolved.seldon.serving_image == "other.example/serving:9.9.9"
    assert resolved.mlflow.image == images.reference("mlflow", settings.images)


def test_every_pod_we_render_has_the_pull_secrets(configured_render: Any) -> None:
    specs = pod_specs(kubernetes_objects(configured_render.resources))
    assert specs, "no pods rendered"
    missing = [
        name for name, spec in specs if spec.get("imagePullSecrets") != [{"name": "registry-credentials"}]
    ]
    assert not missing, f"pods without imagePullSecrets: {missing}"


def test_no_pull_secrets_by_default(default_render: Any) -> None:
    specs = pod_specs(kubernetes_objects(default_render.resources))
    assert not [name for name, spec in specs if "imagePullSecrets" in spec]


def test_every_upstream_image_in_our_pods_comes_from_the_mirror(configured_render: Any) -> None:
    found = container_images(kubernetes_objects(configured_render.resources))
    upstream = {image for image in found if not image.startswith(f"{REGISTRY}/")}
    assert upstream, "expected upstream images (postgres, seaweedfs) in the render"
    assert {image for image in upstream if not image.startswith(f"{MIRROR}/")} == set()
    assert f"{MIRROR}/library/postgres:{versions.get('postgres').version}" in upstream


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("postgres:16", "m.io/x/library/postgres:16"),
        ("seldonio/mlserver:1.7.1", "m.io/x/seldonio/mlserver:1.7.1"),
        ("docker.io/library/mysql:8.4", "m.io/x/library/mysql:8.4"),
        ("ghcr.io/chrislusf/seaweedfs:4.34", "m.io/x/chrislusf/seaweedfs:4.34"),
        ("localhost:5000/a/b@sha256:" + "1" * 64, "m.io/x/a/b@sha256:" + "1" * 64),
    ],
)
def test_mirror_replaces_the_registry_and_keeps_the_path(ref: str, expected: str) -> None:
    assert images.mirrored(ref, "m.io/x") == expected
    assert images.mirrored(ref, None) == ref


def test_seldon_setup_chart_gets_mirror_and_pull_secrets_through_its_own_keys(configured_render: Any) -> None:
    values = release_values(configured_render.resources)["seldon-core-v2-setup"]
    assert values[fact("image_sources.seldon_setup.image_pull_secrets")] == [{"name": "registry-credentials"}]
    for key in fact("image_sources.seldon_setup.image_keys"):
        node = values
        for part in key.split("."):
            node = node[part]
        assert node["image"]["registry"] == MIRROR, key


def test_seldon_image_keys_are_every_image_in_the_setup_chart() -> None:
    """Read upstream's values.yaml: a new image block in a version bump fails here until it is mirrored."""
    path = upstream_path("seldon-core-v2.10.2", "k8s", "helm-charts", "seldon-core-v2-setup", "values.yaml")
    upstream = yaml.safe_load(path.read_text())
    blocks = []

    def walk(node: Any, prefix: tuple[str, ...]) -> None:
        if isinstance(node, dict):
            image = node.get("image")
            if isinstance(image, dict) and {"registry", "repository", "tag"} <= set(image):
                blocks.append(".".join(prefix))
            for key, child in node.items():
                walk(child, (*prefix, key))

    walk(upstream, ())
    assert (
        sorted(blocks)
        == sorted(fact("image_sources.seldon_setup.image_keys"))
        == sorted(images.SELDON_SETUP_IMAGE_KEYS)
    )
    assert fact("image_sources.seldon_setup.image_pull_secrets") in upstream


def test_kube_prometheus_stack_gets_mirror_and_pull_secrets_in_its_global_keys(
    configured_render: Any,
) -> None:
    path = upstream_path("kube-prometheus-stack-81.6.2", "charts", "kube-prometheus-stack", "values.yaml")
    upstream_global = yaml.safe_load(path.read_text())["global"]
    registry_key, secrets_key = fact("image_sources.kube_prometheus_stack.global_image_keys")
    assert {registry_key, secrets_key} <= set(upstream_global)
    values = release_values(configured_render.resources)["kube-prometheus-stack"]["global"]
    assert values[registry_key] == MIRROR
    assert values[secrets_key] == [{"name": "registry-credentials"}]


def test_kfp_kustomize_images_cover_every_kfp_image() -> None:
    entries = images.kustomize_images(ImagesSettings(mirror=MIRROR))
    names = {entry["name"] for entry in entries}
    assert names >= {ref.rsplit(":", 1)[0] for ref in versions.CHART_DEFAULT_IMAGES["kfp-platform-agnostic"]}
    assert {"mysql", "docker.io/alpine"} <= names  # how KFP 2.17.0's manifests spell them
    assert all(entry["newName"].startswith(f"{MIRROR}/") for entry in entries)
    assert images.kustomize_images(ImagesSettings()) == []


def test_mirror_plan_copies_every_upstream_image_of_the_render_to_where_the_render_pulls_it(
    configured_render: Any, tmp_path: Path
) -> None:
    """images.txt of a render without mirror -> the pairs to copy; the mirrored render pulls the targets."""
    plain = run_program(
        {**config_for(), "mlops:images": json.dumps({"registry": REGISTRY})}, ("mlops:secret_seed",)
    )
    objects = kubernetes_objects(plain.resources)
    listing = tmp_path / "images.txt"
    listing.write_text("".join(f"{image}\n" for image in sorted(container_images(objects))))
    result = CliRunner().invoke(
        images.images_group,
        ["mirror-plan", str(listing), "--mirror", MIRROR, "--registry", REGISTRY, "--json"],
    )
    assert result.exit_code == 0, result.output
    targets = {pair["target"] for pair in json.loads(result.stdout)}
    mirrored_render = container_images(kubernetes_objects(configured_render.resources))
    assert {image for image in mirrored_render if not image.startswith(f"{REGISTRY}/")} <= targets
    assert not [pair for pair in json.loads(result.stdout) if pair["source"].startswith(f"{REGISTRY}/")]


def test_an_image_of_ours_given_by_override_is_not_moved_to_the_mirror() -> None:
    override = "other-registry.example.test/team/mlflow:3.17.2-custom"
    result = run_program(
        {
            **config_for(),
            "mlops:images": json.dumps({"registry": REGISTRY, "mirror": MIRROR}),
            "mlops:mlflow": json.dumps({"image": override}),
        },
        ("mlops:secret_seed",),
    )
    objects = kubernetes_objects(result.resources)
    (deployment,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "mlflow"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == override
