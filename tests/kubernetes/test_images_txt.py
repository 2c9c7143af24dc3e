"""images.txt lists every image the installs pull, each tagged or pinned by digest, recomputed from upstream.

The expected set is computed from upstream's own files in ../shared/upstream (KFP's built manifests, the
kube-prometheus-stack and Seldon values.yaml and Chart.yaml) and, for the Helm sub-charts whose files are not
there, from the upstream facts table.
"""

# Fixtures come from pulumi_fixtures (see its docstring); pytest resolves them by parameter name.
# ruff: noqa: F811
from __future__ import annotations

import re
from typing import Any

import yaml
from kfp_manifests import all_built_objects
from pulumi_fixtures import dev_render  # noqa: F401
from upstream_facts import fact, upstream_path

from platform_components.render import images, kubernetes_objects, releases

KPS = ("kube-prometheus-stack-81.6.2", "charts", "kube-prometheus-stack")
SELDON_SETUP = ("seldon-core-v2.10.2", "k8s", "helm-charts", "seldon-core-v2-setup")


def qualified(image: str) -> str:
    """A Docker reference with its registry explicit (``mysql:8.4`` -> ``docker.io/library/mysql:8.4``)."""
    first, _, rest = image.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        image = f"docker.io/{image}"
        first, _, rest = image.partition("/")
    if first == "docker.io" and "/" not in rest:
        image = f"docker.io/library/{rest}"
    return image


def pinned(image: str) -> bool:
    """Tagged (``:tag`` after the last slash) or pinned by digest."""
    return "@sha256:" in image or ":" in image.rpartition("/")[2]


def _dev_images(dev_render: Any) -> set[str]:
    objects = kubernetes_objects(dev_render.resources)
    return set(images(objects, releases(dev_render.resources)))


def kfp_images() -> set[str]:
    """Every image KFP's built env/platform-agnostic makes the cluster pull (but cacheImage: see its test)."""
    found = set()
    for obj in all_built_objects():
        if obj["kind"] != "Deployment":
            continue
        spec = obj["spec"]["template"]["spec"]
        for container in spec.get("initContainers", []) + spec["containers"]:
            found.add(container["image"])
            # Images a controller starts later: V2 driver/launcher (API server env), Argo's executor.
            found.update(
                e["value"] for e in container.get("env", []) if e["name"].endswith("_IMAGE") and "value" in e
            )
            arguments = container.get("args") or []
            found.update(
                arguments[index + 1]
                for index, argument in enumerate(arguments[:-1])
                if argument == "--executor-image"
            )
    # An untagged reference pulls :latest (Docker's rule): that is what a mirror must hold.
    return {qualified(image if pinned(image) else f"{image}:latest") for image in found}


def _image(values: dict[str, Any], default_tag: str) -> str:
    return f"{values['registry']}/{values['repository']}:{values.get('tag') or default_tag}"


def kube_prometheus_stack_images() -> set[str]:
    """Images the chart pulls with our values: its own from values.yaml/appVersion, sub-charts from facts."""
    chart = yaml.safe_load(upstream_path(*KPS, "Chart.yaml").read_text())
    values = yaml.safe_load(upstream_path(*KPS, "values.yaml").read_text())
    app_version = chart["appVersion"]
    operator = values["prometheusOperator"]
    found = {
        _image(operator["image"], app_version),
        _image(operator["prometheusConfigReloader"]["image"], app_version),
        _image(values["prometheus"]["prometheusSpec"]["image"], app_version),
        _image(values["alertmanager"]["alertmanagerSpec"]["image"], app_version),
    }
    webhooks = operator["admissionWebhooks"]
    if webhooks["enabled"] and webhooks["patch"]["enabled"]:
        found.add(_image(webhooks["patch"]["image"], app_version))
    dependencies = {item["name"]: item["version"] for item in chart["dependencies"]}
    subcharts = fact("images.kube_prometheus_stack.subchart_versions")
    assert {name: dependencies[name] for name in subcharts} == subcharts, "sub-chart moved: re-read the facts"
    found |= {fact("images.kube_state_metrics"), fact("images.node_exporter"), *fact("images.grafana")}
    return found


def seldon_images() -> set[str]:
    """seldon-core-v2-setup's images for the components our values leave on, at the pinned version."""
    values = yaml.safe_load(upstream_path(*SELDON_SETUP, "values.yaml").read_text())
    server_config = values["serverConfig"]
    # The model gateway is switched off (no Kafka): seldon.py's runtime values disable it.
    sections = [values[name]["image"] for name in ("controller", "scheduler", "envoy")]
    sections += [server_config[name]["image"] for name in ("agent", "rclone", "mlserver")]
    return {qualified(_image(section, "")) for section in sections}


def test_images_txt_lists_every_image_kfp_pulls(dev_render: Any) -> None:
    expected = kfp_images()
    assert {image.rpartition("/")[2].partition(":")[0] for image in expected} >= {
        "kfp-cache-deployer",
        "kfp-cache-server",
        "kfp-driver",
        "kfp-launcher",
        "alpine",
        "argoexec",
    }
    assert sorted(expected - _dev_images(dev_render)) == []


def test_images_txt_lists_every_image_kube_prometheus_stack_pulls(dev_render: Any) -> None:
    expected = kube_prometheus_stack_images()
    assert any("kube-webhook-certgen" in image for image in expected)
    assert sorted(expected - _dev_images(dev_render)) == []


def test_images_txt_lists_every_image_seldon_pulls(dev_render: Any) -> None:
    assert sorted(seldon_images() - _dev_images(dev_render)) == []


def test_every_image_in_images_txt_is_tagged_or_pinned_by_digest_never_latest(dev_render: Any) -> None:
    listed = _dev_images(dev_render)
    assert listed, "images.txt would be empty"
    assert sorted(image for image in listed if not pinned(image) or image.endswith(":latest")) == []


def test_kfps_untagged_cache_image_is_pinned_by_a_patch_and_listed(dev_render: Any) -> None:
    (install_config,) = [
        o
        for o in all_built_objects()
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "pipeline-install-config"
    ]
    assert install_config["data"]["cacheImage"] == fact("images.kfp_cache_image_untagged")
    assert not pinned(install_config["data"]["cacheImage"])  # upstream pulls :latest
    (patch,) = [
        entry
        for entry in releases(dev_render.resources)
        if entry["kind"] == "patch" and entry["target"] == "ConfigMap/kubeflow/pipeline-install-config"
    ]
    pinned_image = patch["fields"]["data"]["cacheImage"]
    assert pinned(pinned_image) and pinned_image.partition(":")[0] == fact("images.kfp_cache_image_untagged")
    assert pinned_image in _dev_images(dev_render)


def test_every_image_in_images_txt_is_fully_qualified(dev_render: Any) -> None:
    """A mirror rewrites registry/repository: a short name would hide which registry it came from."""
    listed = _dev_images(dev_render)
    assert sorted(image for image in listed if qualified(image) != image) == []


def test_qualified_and_pinned_follow_docker_reference_rules() -> None:
    assert qualified("mysql:8.4") == "docker.io/library/mysql:8.4"
    assert qualified("docker.io/alpine:3.23") == "docker.io/library/alpine:3.23"
    assert qualified("ghcr.io/kubeflow/kfp-launcher:2.17.0") == "ghcr.io/kubeflow/kfp-launcher:2.17.0"
    assert qualified("localhost:5000/x:1") == "localhost:5000/x:1"
    assert not pinned("localhost:5000/busybox") and pinned("busybox@sha256:" + "0" * 64)
    assert re.fullmatch(r"[a-z0-9./:-]+", qualified("grafana/grafana:12.3.2"))
