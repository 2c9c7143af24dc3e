"""The offline render: golden files of the dev stack, determinism, the CLI, and that checks can fail."""

# Fixtures come from pulumi_fixtures (see its docstring); pytest resolves them by parameter name.
# ruff: noqa: F811

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pulumi_fixtures import REPO, dev_render, render_program  # noqa: F401

from platform_components import images as images_of_ours
from platform_components.render import check, images, kubernetes_objects, releases, write_render
from platform_components.versions import KUBERNETES_MINOR

GOLDEN = Path(__file__).parent / "golden" / "dev"


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def write_dev(dev_render: Any, out: Path) -> None:
    objects = kubernetes_objects(dev_render.resources)
    entries = releases(dev_render.resources)
    write_render(out, objects, entries, images(objects, entries))


def test_golden_render_of_the_dev_stack(dev_render: Any, tmp_path: Path) -> None:
    """Byte-for-byte against golden/dev; `make golden` (MLOPS_UPDATE_GOLDEN=1) rewrites it."""
    write_dev(dev_render, tmp_path)
    if os.environ.get("MLOPS_UPDATE_GOLDEN") == "1":
        shutil.rmtree(GOLDEN, ignore_errors=True)
        shutil.copytree(tmp_path, GOLDEN)
    rendered, golden = files_of(tmp_path), files_of(GOLDEN)
    assert sorted(rendered) == sorted(golden), "files differ: run `make golden` and review the diff"
    changed = [name for name in rendered if rendered[name] != golden[name]]
    assert changed == [], f"changed: {changed}; run `make golden` and review the diff"


def test_render_is_deterministic(render_program: Any, dev_render: Any, tmp_path: Path) -> None:
    from platform_components.render import read_stack_config

    config, secret_keys = read_stack_config("dev", REPO)
    again = render_program(config, tuple(secret_keys), stack="dev")
    write_dev(dev_render, tmp_path / "first")
    write_dev(again, tmp_path / "second")
    assert files_of(tmp_path / "first") == files_of(tmp_path / "second")


def test_numbers_are_ints_and_secrets_redacted_in_files(dev_render: Any, tmp_path: Path) -> None:
    write_dev(dev_render, tmp_path)
    deployment = (tmp_path / "objects/mlflow/deployment-mlflow.yaml").read_text()
    assert "replicas: 1\n" in deployment and not re.search(r": 1\.0$", deployment, re.MULTILINE)
    secret = (tmp_path / "objects/mlflow/secret-mlflow-server.yaml").read_text()
    assert "admin-password: <redacted>" in secret


def test_releases_and_images_list_every_upstream(dev_render: Any) -> None:
    entries = releases(dev_render.resources)
    charts = {entry["chart"]: entry["version"] for entry in entries if entry["kind"] == "helm"}
    assert set(charts) == {
        "seldon-core-v2-crds",
        "seldon-core-v2-setup",
        "seldon-core-v2-runtime",
        "kube-prometheus-stack",
    }
    assert all(version for version in charts.values())
    image_list = images(kubernetes_objects(dev_render.resources), entries)
    assert images_of_ours.reference("mlflow") in image_list  # ours, not MLflow's bare image
    assert "ghcr.io/kubeflow/kfp-api-server:2.17.0" in image_list
    assert any(image.startswith("docker.io/seldonio/mlserver:1.7.1") for image in image_list)
    assert not any("bitnami" in image or "minio" in image for image in image_list)


def test_rendered_dev_objects_are_valid_and_policy_clean(dev_render: Any) -> None:
    objects = kubernetes_objects(dev_render.resources)
    assert check(objects, kubernetes_version=KUBERNETES_MINOR, allow_load_balancer=False) == []


def test_checks_report_a_load_balancer_and_a_schema_error(dev_render: Any) -> None:
    objects = kubernetes_objects(dev_render.resources)
    service = next(o for o in objects if o["kind"] == "Service")
    service["spec"]["type"] = "LoadBalancer"
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    deployment["spec"]["replicas"] = "two"
    problems = check(objects, kubernetes_version=KUBERNETES_MINOR, allow_load_balancer=False)
    assert any(line.startswith("policy") and "LoadBalancer" in line for line in problems), problems
    assert any(line.startswith("schema") and "replicas" in line for line in problems), problems


def test_mlops_render_dev_exits_zero(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "platform_components.cli",
            "render",
            "--stack",
            "dev",
            "--out",
            str(tmp_path),
            "--root",
            str(REPO),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    summary = json.loads(completed.stdout)
    assert summary["problems"] == [] and summary["objects"] >= 40
    assert (tmp_path / "releases.yaml").is_file() and (tmp_path / "images.txt").is_file()
    assert "valid: every object passed" in completed.stderr


def test_mlops_render_unknown_stack_names_the_known_ones(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "platform_components.cli",
            "render",
            "--stack",
            "nope",
            "--out",
            str(tmp_path),
            "--root",
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 2
    assert "--stack 'nope'" in completed.stderr and "dev" in completed.stderr


@pytest.mark.parametrize("stack", ["staging", "local"])
def test_other_stacks_render_clean(render_program: Any, stack: str) -> None:
    from platform_components.render import read_stack_config

    config, secret_keys = read_stack_config(stack, REPO)
    objects = kubernetes_objects(render_program(config, tuple(secret_keys), stack=stack).resources)
    assert check(objects, kubernetes_version=KUBERNETES_MINOR, allow_load_balancer=False) == []
