"""``mlops project new``: the name is checked, the files are written from packaged templates, and the project
keeps the sample's pipeline contract (steps, platform inputs, MLflow credentials, image)."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from scaffolded import PROJECT_NAME, REPO, Project

from platform_components.cli import main
from platform_components.errors import PlatformError
from platform_components.scaffold import FILES, ScaffoldError, new_project, validate_name
from platform_components.scaffold.generate import GOLDEN, ProjectNames, fill

SAMPLE_GOLDEN = REPO / "tests" / "examples" / "golden" / "credit_default_pipeline.yaml"


@pytest.mark.parametrize(
    "name",
    ["Loan-Risk", "1loan", "loan_risk", "-loan", "loan-", "loan risk", "l" * 41, "loan.risk"],
)
def test_a_name_that_is_not_a_dns_label_starting_with_a_letter_is_refused_naming_it_and_the_fix(
    name: str,
) -> None:
    with pytest.raises(ScaffoldError, match=rf"NAME '{name}' is not a valid project name.*e\.g\. '[a-z]"):
        validate_name(name)


def test_an_empty_name_is_refused() -> None:
    with pytest.raises(ScaffoldError, match="NAME must not be empty"):
        validate_name("")


def test_an_existing_project_folder_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / PROJECT_NAME).mkdir()
    (tmp_path / PROJECT_NAME / "keep.txt").write_text("mine")
    with pytest.raises(ScaffoldError, match=rf"{PROJECT_NAME}' already exists.*choose another NAME"):
        new_project(PROJECT_NAME, tmp_path)
    assert sorted(path.name for path in (tmp_path / PROJECT_NAME).iterdir()) == ["keep.txt"]


def test_a_failed_compile_leaves_no_half_written_project(tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match="compiling the new project's pipeline failed"):
        new_project(PROJECT_NAME, tmp_path, python=shutil.which("false") or "/bin/false")
    assert not (tmp_path / PROJECT_NAME).exists()


def test_a_missing_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match=r"--dir '.*absent' is not an existing folder"):
        new_project(PROJECT_NAME, tmp_path / "absent")


def test_the_command_exits_2_with_one_line_naming_the_bad_value(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "platform_components.cli",
            "project",
            "new",
            "Bad_Name",
            "--dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.startswith("error: NAME 'Bad_Name' is not a valid project name")
    assert "Traceback" not in completed.stderr
    assert not list(tmp_path.iterdir())


def test_every_packaged_template_is_written_and_no_placeholder_is_left(project: Project) -> None:
    templates = resources.files("platform_components.scaffold").joinpath("templates")
    packaged = {
        str(Path(str(path)).relative_to(str(templates)))
        for path in Path(str(templates)).rglob("*.tmpl")  # an editable or a wheel install: a real folder
    }
    assert packaged == set(FILES)
    names = ProjectNames.of(PROJECT_NAME)
    for target in [*FILES.values(), GOLDEN]:
        path = project.root / target.format(package=names.package)
        assert path.is_file(), target
        assert "@@" not in path.read_text(), target


def test_the_templates_ship_in_the_wheel_as_package_data() -> None:
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    ours = patterns["platform_components.scaffold"]
    for template in FILES:
        path = f"templates/{template}"
        assert any(
            fnmatch.fnmatchcase(path, pattern) and pattern.count("/") == path.count("/") for pattern in ours
        ), f"{path} is not matched by package-data {ours}"


def test_an_unknown_placeholder_in_a_template_is_an_error_not_a_silent_blank() -> None:
    names = ProjectNames.of(PROJECT_NAME)
    assert fill("import @@package.contract  # $(PYTHON) ${{ x }}", names, source="t") == (
        "import loan_risk.contract  # $(PYTHON) ${{ x }}"
    )
    with pytest.raises(PlatformError, match=r"t: unknown placeholder @@packge; the placeholders are @@name"):
        fill("import @@packge", names, source="t")


def test_names_are_derived_in_one_place() -> None:
    names = ProjectNames.of("loan-risk", team="risk", registry="registry.example.com/ml/")
    assert names.package == "loan_risk"
    assert names.pipeline_function == "loan_risk_pipeline"
    assert names.pipeline_name == "loan-risk-training"
    assert names.team == "risk"
    assert names.image == "registry.example.com/ml/loan-risk-pipeline:0.1.0"
    with pytest.raises(ScaffoldError, match="--team 'Risk Team'"):
        ProjectNames.of("loan-risk", team="Risk Team")


def test_the_command_prints_what_it_wrote_as_json(tmp_path: Path) -> None:
    import json

    result = CliRunner().invoke(main, ["project", "new", "churn-model", "--dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    written = json.loads(result.output)
    assert written["project"] == "churn-model" and written["package"] == "churn_model"
    assert written["pipeline"] == "churn_model/pipeline.py:churn_model_pipeline"
    assert {".github/workflows/ci.yml", "Makefile", GOLDEN, "churn_model/contract.py"} <= set(
        written["files"]
    )
    assert Path(written["path"]) == (tmp_path / "churn-model").resolve()


def _ir(path: Path) -> tuple[dict, dict]:
    spec, platform = yaml.safe_load_all(path.read_text())
    return spec, platform


def test_the_generated_pipeline_keeps_the_samples_steps_inputs_and_credentials(project: Project) -> None:
    spec, platform = _ir(project.root / GOLDEN)
    sample_spec, sample_platform = _ir(SAMPLE_GOLDEN)
    assert spec["pipelineInfo"]["name"] == f"{PROJECT_NAME}-training"
    # The same five steps, wired the same way.
    tasks = spec["root"]["dag"]["tasks"]
    sample_tasks = sample_spec["root"]["dag"]["tasks"]
    assert set(tasks) == set(sample_tasks)
    for name, task in tasks.items():
        assert task.get("dependentTasks") == sample_tasks[name].get("dependentTasks"), name
    # What the platform's retrainers pass, with the sample's defaults.
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    sample_inputs = sample_spec["root"]["inputDefinitions"]["parameters"]
    for name in ("tracking_uri", "model_name", "training_data_path", "gate_data_path", "promotion_margin"):
        assert inputs[name].get("defaultValue") == (
            PROJECT_NAME if name == "model_name" else sample_inputs[name].get("defaultValue")
        ), name
    # Every step runs in the project's image without installing anything at run time.
    for name, executor in spec["deploymentSpec"]["executors"].items():
        container = executor["container"]
        assert container["image"] == f"ghcr.io/example-org/{PROJECT_NAME}-pipeline:0.1.0", name
        assert "pip install" not in " ".join(container["command"]), name

    # The steps that talk to MLflow get the platform's credentials, as the sample's do.
    def credentialed(platform_spec: dict) -> set[str]:
        executors = platform_spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
        return {name for name, executor in executors.items() if executor.get("secretAsEnv")}

    assert credentialed(platform) == credentialed(sample_platform)


def test_the_data_step_checks_the_contract_and_the_train_step_fits_the_model_seam(project: Project) -> None:
    spec, _ = _ir(project.root / GOLDEN)
    executors = spec["deploymentSpec"]["executors"]
    prepare = "\n".join(executors["exec-prepare-data"]["container"]["command"])
    train = "\n".join(executors["exec-train-model"]["container"]["command"])
    assert "from loan_risk.contract import FEATURES, LABEL, validate" in prepare
    assert 'validate(frame, field="training_data_path")' in prepare
    assert "from loan_risk.model import build_model" in train


def test_the_generated_code_is_ruff_clean(project: Project) -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed in this environment (the dev extra)")
    for command in ([ruff, "check", "."], [ruff, "format", "--check", "."]):
        completed = subprocess.run(
            command, cwd=project.root, capture_output=True, text=True, timeout=120, check=False
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr


def test_the_catalog_entry_is_a_valid_catalog_naming_the_project_its_team_and_model(project: Project) -> None:
    from platform_components.settings import CatalogSettings

    entry = CatalogSettings.model_validate(
        yaml.safe_load((project.root / "platform" / "catalog.yaml").read_text())
    )
    assert entry.problems() == []
    (declared,) = entry.projects
    assert (declared.name, declared.team, declared.owner) == (PROJECT_NAME, PROJECT_NAME, PROJECT_NAME)
    assert [(model.name, model.registered_model, model.alias) for model in declared.models] == [
        (PROJECT_NAME, PROJECT_NAME, "champion")
    ]
    assert declared.models[0].label_column == "default"  # the contract's label
