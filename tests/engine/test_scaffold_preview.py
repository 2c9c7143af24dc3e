"""A generated project's ``make preview``: the real ``pulumi preview`` of the platform with the project added.

The team's CI runs it against the platform's backend and cluster; here the platform is a copy of this
repository with its dev stack initialised in a local file backend and pointed at the local API server (as
test_stacks.py does), its policy pack's environment built as test_policy_pack.py builds it, and the project
is fresh from ``mlops project new``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from engine_cli import (
    REPO,
    PulumiCli,
    copy_project,
    engine_python,
    point_at_cluster,
    replace_placeholder_secrets,
    summary,
)

from platform_components.scaffold import new_project

pytestmark = [pytest.mark.engine, pytest.mark.slow]

SEED = "engine-seed-0123456789abcdef0123456789"
PACK_NAME = "mlops-platform"  # policy/PulumiPolicy.yaml's pack, as the CLI names it (name@version)


def build_pack_venv(folder: Path) -> None:
    """``policy/.venv`` from PyPI under the engine pins (what ``make install-policy`` does with pip)."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.skip("uv (the dev extra) is not installed: it builds the policy pack's virtualenv")
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, ".venv"], cwd=folder, check=True)
    constraints = REPO / "tests" / "engine" / "requirements.txt"
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            ".venv/bin/python",
            "-r",
            "requirements.txt",
            "-c",
            str(constraints),
        ],
        cwd=folder,
        check=True,
        timeout=900,
    )


def test_make_preview_of_a_new_project_previews_the_platform_with_its_catalog_entry(
    engine_cluster: Any, kfp_manifests: Path, pulumi_home: Path, tmp_path: Path
) -> None:
    platform = copy_project(tmp_path / "mlops-platform", engine_python().parents[1])
    cli = PulumiCli(tmp_path, pulumi_home, kubeconfig=engine_cluster.kubeconfig_path())
    stack_file = platform / "infra" / "stacks" / "Pulumi.dev.yaml"
    assert replace_placeholder_secrets(stack_file) == ["mlops:secret_seed"]
    cli.run("stack", "init", "dev", cwd=platform)
    cli.run("config", "set", "--secret", "mlops:secret_seed", SEED, cwd=platform)
    point_at_cluster(cli, platform, engine_cluster.kubeconfig_path(), kfp_manifests)
    platform_stack = stack_file.read_text()
    build_pack_venv(platform / "policy")

    # The test's interpreter has kfp (ml extra) to compile the golden IR; the engine venv runs the program.
    project = new_project("loan-risk", tmp_path, python=sys.executable)
    environment = {
        **cli.env,
        "PYTHON": sys.executable,
        "PYTHONPATH": str(REPO),
        "PLATFORM_DIR": str(platform),
        "PULUMI": str(cli.cli / "pulumi"),
        "STACK": "dev",
        "MAKEFLAGS": "",
    }
    environment = {key: value for key, value in environment.items() if not key.startswith("PYTEST_")}
    completed = subprocess.run(
        ["make", "--no-print-directory", "preview"],
        cwd=project.root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    counts = summary(completed.stdout)
    print(f"make preview (dev + loan-risk):\n{counts.text}")
    assert counts["to create"] > 50, counts.text  # the whole platform, not an empty program
    assert "loan-risk" in completed.stdout  # the project's model is among the resources previewed
    assert f"{PACK_NAME}@v" in output, output  # the platform's policy pack ran ...
    assert "[mandatory]" not in output, output  # ... and found nothing
    assert stack_file.read_text() == platform_stack  # the platform's checkout is not modified
    assert engine_cluster.decoy_connections == 0
