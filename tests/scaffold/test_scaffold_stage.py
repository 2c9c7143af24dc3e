"""``mlops project stage``: a stack with a project's catalog entry merged in; the platform untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from platform_components.cli import main
from platform_components.errors import ConfigError
from platform_components.scaffold import stage_stack

PLATFORM_CATALOG = {
    "people": [{"name": "alice", "email": "alice@example.com"}],
    "teams": [{"name": "risk", "group": "oidc:risk-data-science", "members": ["alice"]}],
    "projects": [
        {"name": "credit", "team": "risk", "owner": "alice", "models": []},
        {"name": "loan-risk", "team": "risk", "owner": "alice", "description": "the old entry"},
    ],
}
ENTRY = {
    "people": [{"name": "bob"}],
    "teams": [
        {"name": "risk", "group": "oidc:risk", "members": []},  # the platform's definition wins
        {"name": "lending", "group": "oidc:lending", "members": ["bob"]},
    ],
    "projects": [{"name": "loan-risk", "team": "lending", "owner": "bob", "description": "the new entry"}],
}


def platform(tmp_path: Path, catalog: object) -> Path:
    root = tmp_path / "platform"
    stacks = root / "infra" / "stacks"
    stacks.mkdir(parents=True)
    config: dict[str, object] = {
        "mlops:secret_seed": {"secure": "v1:abc"},
        "mlops:cluster": {"mode": "existing", "context": "dev"},
    }
    if catalog is not None:
        config["mlops:catalog"] = catalog
    (stacks / "Pulumi.dev.yaml").write_text(
        yaml.safe_dump({"encryptionsalt": "v1:salt", "config": config}, sort_keys=False)
    )
    return root


def write_entry(tmp_path: Path, entry: object) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(entry, sort_keys=False))
    return path


def staged_config(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("as_file", [False, True], ids=["inline-catalog", "catalog-file"])
def test_the_entry_replaces_its_project_adds_what_is_new_and_keeps_the_platforms_teams(
    tmp_path: Path, as_file: bool
) -> None:
    if as_file:
        root = platform(tmp_path, "catalog/catalog.yaml")
        (root / "catalog").mkdir()
        (root / "catalog" / "catalog.yaml").write_text(yaml.safe_dump(PLATFORM_CATALOG))
    else:
        root = platform(tmp_path, PLATFORM_CATALOG)
    before = (root / "infra/stacks/Pulumi.dev.yaml").read_text()
    staged = stage_stack(write_entry(tmp_path, ENTRY), root, "dev", tmp_path / "out")
    document = staged_config(staged.stack_file)
    catalog = document["config"]["mlops:catalog"]
    assert [person["name"] for person in catalog["people"]] == ["alice", "bob"]
    assert catalog["teams"] == [PLATFORM_CATALOG["teams"][0], ENTRY["teams"][1]]
    assert [project["name"] for project in catalog["projects"]] == ["credit", "loan-risk"]
    assert catalog["projects"][1]["description"] == "the new entry"
    assert staged.replaced_projects == ["loan-risk"] and staged.kept_platform_definitions == ["team risk"]
    # Everything else as the platform has it: secrets still encrypted, with the stack's salt.
    assert document["encryptionsalt"] == "v1:salt"
    assert document["config"]["mlops:secret_seed"] == {"secure": "v1:abc"}
    assert document["config"]["mlops:cluster"] == {"mode": "existing", "context": "dev"}
    assert (root / "infra/stacks/Pulumi.dev.yaml").read_text() == before


def test_a_stack_without_a_catalog_gets_one_with_the_entry(tmp_path: Path) -> None:
    staged = stage_stack(write_entry(tmp_path, ENTRY), platform(tmp_path, None), "dev", tmp_path / "out")
    catalog = staged_config(staged.stack_file)["config"]["mlops:catalog"]
    assert [project["name"] for project in catalog["projects"]] == ["loan-risk"]
    assert [team["name"] for team in catalog["teams"]] == ["risk", "lending"]


def test_an_unknown_stack_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--stack 'prod': no stack file .* known stacks: dev"):
        stage_stack(write_entry(tmp_path, ENTRY), platform(tmp_path, None), "prod", tmp_path / "out")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"projects": []}, "declares no project"),
        ([1, 2], "must be a mapping with people, teams and projects"),
        ({"projects": [{"name": "Loan", "team": "t", "owner": "t"}]}, r"projects\.0\.name"),
        ({"projekts": []}, "projekts"),
    ],
    ids=["no-project", "not-a-mapping", "bad-name", "unknown-key"],
)
def test_a_malformed_entry_is_refused_naming_the_key(tmp_path: Path, entry: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        stage_stack(write_entry(tmp_path, entry), platform(tmp_path, None), "dev", tmp_path / "out")


def test_the_command_prints_the_merge_as_json(tmp_path: Path) -> None:
    import json

    root = platform(tmp_path, PLATFORM_CATALOG)
    result = CliRunner().invoke(
        main,
        [
            "project",
            "stage",
            "--catalog",
            str(write_entry(tmp_path, ENTRY)),
            "--platform-dir",
            str(root),
            "--stack",
            "dev",
            "--out",
            str(tmp_path / "out"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    merged = json.loads(result.output)
    assert merged["projects"] == ["loan-risk"] and merged["added_teams"] == ["lending"]
    assert merged["stack_file"] == str(tmp_path / "out" / "infra" / "stacks" / "Pulumi.dev.yaml")
