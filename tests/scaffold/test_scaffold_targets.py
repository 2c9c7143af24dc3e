"""Every make target of a generated project that can run here, run for real against this checkout.

``test`` (data and behaviour tests), ``compile``, ``golden-check`` and ``render`` (this repository's dev stack
with the project's catalog entry); ``preview`` needs the real Pulumi engine and is in tests/engine. The
behaviour tests are checked to fail for the two models they exist to catch: a constant predictor and a model
that ignores the key feature.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from scaffolded import PROJECT_NAME, REPO, Project


def failed_tests(output: str) -> set[str]:
    """The test ids pytest's short summary lists as FAILED (``-ra``, the project's addopts)."""
    return set(re.findall(r"^FAILED tests/[\w/]+\.py::(\S+)", output, flags=re.MULTILINE))


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{path.name} no longer holds {old!r}: update this mutation"
    path.write_text(text.replace(old, new))


BEHAVIOUR = "test_model_behaviour.py"
QUALITY = "test_quality_meets_the_floor_on_each_named_slice"
DIRECTION = "test_raising_the_key_feature_moves_the_score_the_documented_way"
SLICES = ("all_rows", "high_debt_to_income", "renters", "self_employed", "young_applicants")


def test_make_test_runs_the_data_and_behaviour_tests_and_they_pass(project: Project) -> None:
    completed = project.make("test")
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    passed = int(re.search(r"(\d+) passed", output).group(1))  # type: ignore[union-attr]
    assert passed >= 19 and "failed" not in output, output


def test_make_compile_writes_the_pipeline_ir(project: Project) -> None:
    completed = project.make("compile")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    spec, _ = yaml.safe_load_all((project.root / "build" / "pipeline.yaml").read_text())
    assert spec["pipelineInfo"]["name"] == f"{PROJECT_NAME}-training"


def test_make_golden_check_passes_on_the_scaffold_and_fails_on_a_changed_pipeline(
    project: Project, tmp_path: Path
) -> None:
    completed = project.make("golden-check")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "matches tests/golden/pipeline.yaml" in completed.stdout

    changed = project.copy(tmp_path)
    replace_once(
        changed.root / "loan_risk" / "pipeline.py",
        "promotion_margin: float = 0.01,",
        "promotion_margin: float = 0.02,",
    )
    failing = changed.make("golden-check")
    assert failing.returncode != 0
    assert "differs from tests/golden/pipeline.yaml" in failing.stdout
    assert re.search(r"^[-+].*defaultValue: 0\.0[12]", failing.stdout, flags=re.MULTILINE), failing.stdout
    # `make golden` accepts the change on purpose; then the check passes again.
    assert changed.make("golden").returncode == 0
    assert changed.make("golden-check").returncode == 0


def test_make_render_renders_this_repository_with_the_projects_entry(project: Project) -> None:
    completed = project.make("render", STACK="dev")
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "valid: every object passed its schema and every policy" in output
    staged = yaml.safe_load((project.root / "build/platform/infra/stacks/Pulumi.dev.yaml").read_text())
    catalog = staged["config"]["mlops:catalog"]
    # The project joins the stack's own catalog: its projects are kept, the new one is added once.
    platform = yaml.safe_load((REPO / "infra/stacks/Pulumi.dev.yaml").read_text())["config"]["mlops:catalog"]
    assert [entry["name"] for entry in catalog["projects"]] == [
        *(entry["name"] for entry in platform["projects"]),
        PROJECT_NAME,
    ]
    # The project's model is declared on the platform: its owner object (the deployer's anchor) is rendered.
    owners = list(
        (project.root / "build" / "render" / "objects").rglob(f"configmap-mlops-model-{PROJECT_NAME}.yaml")
    )
    assert len(owners) == 1, owners
    owner = yaml.safe_load(owners[0].read_text())
    assert PROJECT_NAME in yaml.safe_dump(owner)


def test_make_render_fails_naming_the_key_when_the_entry_breaks_its_quota(
    project: Project, tmp_path: Path
) -> None:
    changed = project.copy(tmp_path)
    replace_once(changed.root / "platform" / "catalog.yaml", "memory: 1Gi", "memory: 4Gi")
    completed = changed.make("render", STACK="dev")
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0
    index = len(
        yaml.safe_load((REPO / "infra/stacks/Pulumi.dev.yaml").read_text())["config"]["mlops:catalog"][
            "projects"
        ]
    )
    assert f"mlops:catalog.projects.{index}.models" in output and "serving_memory" in output, output


def test_the_behaviour_tests_fail_for_a_constant_predictor(project: Project, tmp_path: Path) -> None:
    mutant = project.copy(tmp_path)
    (mutant.root / "loan_risk" / "model.py").write_text(
        '"""A constant predictor: the base rate for every row."""\n\n'
        "from sklearn.dummy import DummyClassifier\n\n\n"
        "def build_model(seed=0):\n"
        '    return DummyClassifier(strategy="prior"), {"classifier": "DummyClassifier"}\n'
    )
    completed = mutant.make("test")
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0, output
    failed = failed_tests(output)
    assert failed == {DIRECTION, *(f"{QUALITY}[{name}]" for name in SLICES)}, output


def test_the_direction_test_fails_for_a_model_that_ignores_the_key_feature(
    project: Project, tmp_path: Path
) -> None:
    mutant = project.copy(tmp_path)
    model = mutant.root / "loan_risk" / "model.py"
    replace_once(
        model,
        "numeric = [column for column in NUMERIC_FEATURES if column not in IGNORED_FEATURES]",
        "numeric = [column for column in NUMERIC_FEATURES if column not in (*IGNORED_FEATURES, KEY_FEATURE)]",
    )
    replace_once(model, "monotonic_cst={KEY_FEATURE: 1 if KEY_FEATURE_RAISES_SCORE else -1},", "")
    completed = mutant.make("test")
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0, output
    failed = failed_tests(output)
    # The direction test catches it; what else fails depends on how much the other features make up for it.
    assert DIRECTION in failed, output
    assert not {name for name in failed if not name.startswith((DIRECTION, QUALITY))}, failed


def test_make_preview_runs_pulumi_on_the_platform_with_the_staged_stack_the_pack_and_a_private_kubeconfig(
    project: Project,
) -> None:
    """The command line only (``make -n``): the real preview runs in tests/engine/test_scaffold_preview.py."""
    completed = project.make("-n", "preview", STACK="dev", PULUMI="pulumi", MLOPS_KUBECONFIG="apiVersion: v1")
    assert completed.returncode == 0, completed.stderr
    (command,) = [line for line in completed.stdout.splitlines() if " preview --cwd " in line]
    root = project.root.resolve()
    assert command.startswith(
        f"KUBECONFIG={root}/build/kubeconfig pulumi preview --cwd {REPO} --stack dev "
    ), command
    assert f"--config-file {root}/build/platform/infra/stacks/Pulumi.dev.yaml" in command
    assert f"--policy-pack {REPO}/policy/pulumi-analyzer-mlops-platform" in command
    assert "apiVersion" not in command  # the kubeconfig's content is written to the file, never echoed
    assert "umask 077" in completed.stdout
