"""The generated CI workflow: every ``run:`` step is ``make <target>`` of the project, actions are pinned by
commit, permissions are read-only, and actionlint (built from the Go module proxy, tools/actionlint) passes
it and every workflow file of this repository."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from scaffolded import REPO, Project
from upstream_facts import fact

WORKFLOW = ".github/workflows/ci.yml"
# What the issue asks CI to run: the tests, the golden pipeline, and on the platform render and preview.
REQUIRED_TARGETS = {"test", "golden-check", "render", "preview"}


def makefile_targets(makefile: Path) -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", makefile.read_text(), flags=re.MULTILINE))


def workflow_steps(workflow: Path) -> list[dict]:
    document = yaml.safe_load(workflow.read_text())
    return [step for job in document["jobs"].values() for step in job["steps"]]


def test_every_run_step_is_a_make_target_of_the_project(project: Project) -> None:
    targets = makefile_targets(project.root / "Makefile")
    ran = set()
    for step in workflow_steps(project.root / WORKFLOW):
        assert ("run" in step) != ("uses" in step), step
        if "run" in step:
            match = re.fullmatch(r"make ([a-z][a-z-]*)", step["run"].strip())
            assert match, f"run step {step['run']!r} is not `make <target>`"
            assert match.group(1) in targets, f"{match.group(1)} is not a target of the project's Makefile"
            ran.add(match.group(1))
    assert ran >= REQUIRED_TARGETS, REQUIRED_TARGETS - ran


def test_the_makefile_has_the_targets_ci_and_people_run(project: Project) -> None:
    assert {"test", "compile", "golden-check", "render", "preview", "install", "help"} <= makefile_targets(
        project.root / "Makefile"
    )


def test_every_action_is_pinned_by_full_commit_with_its_version_and_permissions_are_read_only(
    project: Project,
) -> None:
    text = (project.root / WORKFLOW).read_text()
    uses = re.findall(r"^\s*-?\s*uses:\s*(\S+)(.*)$", text, flags=re.MULTILINE)
    assert uses
    for reference, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", reference), (
            f"{reference} is not pinned by commit"
        )
        assert re.fullmatch(r"\s*# v\d+(\.\d+)*", comment), f"{reference}: add the version as `# vX.Y.Z`"
    document = yaml.safe_load(text)
    assert document["permissions"] == {"contents": "read"}
    for name, job in document["jobs"].items():
        assert "permissions" not in job, f"job {name} widens the workflow's permissions"


PINS = {
    "actions/checkout": "actions.checkout.pin",
    "actions/setup-python": "actions.setup_python.pin",
    "pulumi/actions": "pulumi.actions.pin",
}


def test_each_action_is_the_commit_of_its_tag_and_gets_only_inputs_it_declares(project: Project) -> None:
    text = (project.root / WORKFLOW).read_text()
    for step in workflow_steps(project.root / WORKFLOW):
        if "uses" not in step:
            continue
        action, _, commit = step["uses"].partition("@")
        pin = fact(PINS[action])
        assert commit == pin["commit"], f"{action}@{commit} is not {pin['tag']} ({pin['commit']})"
        assert re.search(rf"{re.escape(step['uses'])} # {re.escape(pin['tag'])}$", text, flags=re.MULTILINE)
        assert set(step.get("with", {})) <= set(pin["inputs"]), (action, step.get("with"))


def test_checkouts_keep_no_credentials(project: Project) -> None:
    for step in workflow_steps(project.root / WORKFLOW):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False, step


@pytest.fixture(scope="session")
def actionlint() -> Path:
    """actionlint from tools/build.py (built from the Go module proxy), or the binary MLOPS_ACTIONLINT names.

    Skips, saying why, when neither is there or the build fails (no Go toolchain, no module proxy).
    """
    override = os.environ.get("MLOPS_ACTIONLINT")
    if override:
        return Path(override)
    build = REPO / "tools" / "build.py"
    if shutil.which("go") is None:
        pytest.skip(
            "actionlint is built from the Go module proxy (tools/actionlint) and there is no `go` on PATH"
        )
    result = subprocess.run(
        [sys.executable, str(build), "--print-path", "actionlint"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"tools/build.py could not build actionlint: {result.stderr.strip()[-500:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def lint(actionlint: Path, *workflows: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    # -no-color: plain messages in the assertion; shellcheck/pyflakes run when installed, else are skipped.
    return subprocess.run(
        [str(actionlint), "-no-color", *map(str, workflows)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_generated_workflow_passes_actionlint(actionlint: Path, project: Project) -> None:
    completed = lint(actionlint, project.root / WORKFLOW, cwd=project.root)
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_actionlint_finds_a_broken_workflow(actionlint: Path, project: Project, tmp_path: Path) -> None:
    """The control: the tool really checks (an unknown context and a job without runs-on fail it)."""
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    text = (project.root / WORKFLOW).read_text()
    text = text.replace("${{ vars.MLOPS_STACK || 'dev' }}", "${{ variables.MLOPS_STACK }}")
    broken.write_text(text.replace("    runs-on: ubuntu-24.04\n", "", 1))
    completed = lint(actionlint, broken, cwd=tmp_path)
    assert completed.returncode != 0
    assert fact("actionlint.message.runs_on_missing") in completed.stdout, completed.stdout
    assert fact("actionlint.message.undefined_variable") in completed.stdout, completed.stdout


REPOSITORY_WORKFLOWS = sorted(
    [*(REPO / ".github" / "workflows").glob("*.yml"), *(REPO / ".github" / "workflows").glob("*.yaml")]
)


@pytest.mark.parametrize("workflow", REPOSITORY_WORKFLOWS, ids=lambda path: path.name)
def test_every_workflow_of_this_repository_passes_actionlint(actionlint: Path, workflow: Path) -> None:
    completed = lint(actionlint, workflow, cwd=REPO)
    assert completed.returncode == 0, completed.stdout + completed.stderr
