"""The catalog (`mlops:catalog`): one declaration per project, validated as a whole, inline or from a file."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from platform_components.errors import ConfigError
from platform_components.settings import load_catalog_file, load_platform_settings

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "catalog" / "catalog.yaml"
SEED = {"mlops:secret_seed": "s" * 24}


def catalog() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(EXAMPLE.read_text()))


def load(**keys: Any):
    return load_platform_settings({**SEED, **{f"mlops:{key}": value for key, value in keys.items()}})


def problems(**keys: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        load(**keys)
    return str(raised.value)


def test_the_example_catalog_flattens_into_the_served_models_with_their_projects() -> None:
    settings = load(catalog=catalog(), models=[{"name": "legacy", "registered_model": "legacy"}])
    assert [(model.name, model.project) for model in settings.models] == [
        ("legacy", None),
        ("credit-default", "credit"),
        ("churn", "churn"),
    ]
    by_name = {model.name: model for model in settings.models}
    # Project keys reach its models; a model's own keys win; other projects keep the defaults.
    assert settings.effective_policy(by_name["credit-default"]).cooldown == 2 * 86400
    assert settings.effective_policy(by_name["churn"]).min_labels == 100
    assert settings.effective_policy(by_name["churn"]).cooldown == 86400
    assert settings.effective_policy(by_name["legacy"]).min_labels == 200
    assert settings.project_of(by_name["churn"]).route == "growth-oncall"
    assert settings.project_of(by_name["credit-default"]).route == "risk"
    assert settings.project_of(by_name["legacy"]) is None


def test_a_catalog_path_is_read_relative_to_the_repository_root(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path / "catalog.yaml")
    settings = load_platform_settings({**SEED, "mlops:catalog": "catalog.yaml"}, root=tmp_path)
    assert [project.name for project in settings.catalog.projects] == ["credit", "churn"]
    assert load_catalog_file(EXAMPLE) == settings.catalog
    with pytest.raises(ConfigError, match=r"catalog file .*absent\.yaml: cannot read it"):
        load_platform_settings({**SEED, "mlops:catalog": "absent.yaml"}, root=tmp_path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["projects"][0].update(team="nobody"),
            "mlops:catalog.projects.0.team: 'nobody' is not a team of the catalog",
        ),
        (
            lambda c: c["projects"][1].update(owner="carol"),
            "mlops:catalog.projects.1.owner: 'carol' is neither a person nor a team",
        ),
        (
            lambda c: c["teams"][0]["members"].append("mallory"),
            "mlops:catalog.teams.0.members: 'mallory' is not in people",
        ),
        (
            lambda c: c["projects"][1]["models"].append({"name": "credit-default", "registered_model": "x"}),
            "mlops:catalog.projects.1.models.1.name: deployment names must be unique",
        ),
        (
            lambda c: c["projects"][0]["quota"].update(max_models=0),
            "mlops:catalog.projects.0.models: 1 models declared but quota.max_models is 0",
        ),
        (
            lambda c: c["projects"][0]["models"][0].update(memory="5Gi"),
            "reserve 5.00Gi (memory x replicas) but quota.serving_memory is 4Gi",
        ),
        (
            lambda c: c["projects"][1].update(namespace="credit"),
            "mlops:catalog.projects.1.namespace: 'credit' is already project 'credit'",
        ),
        (
            lambda c: c["projects"][1].update(namespace="seldon"),
            "'seldon' is a namespace of the platform",
        ),
        (
            lambda c: c["projects"][0]["models"][0].update(project="churn"),
            "models.0.project is 'churn' inside project 'credit'",
        ),
        (
            lambda c: c["projects"][0]["policy"].update(cooldown="soon"),
            "'soon' is not a duration",
        ),
    ],
)
def test_each_rule_names_the_key_the_value_and_the_fix(change: Any, message: str) -> None:
    data = catalog()
    change(data)
    assert message in problems(catalog=data)


def test_top_level_models_and_policy_must_name_catalog_projects() -> None:
    text = problems(
        catalog=catalog(),
        models=[{"name": "m", "registered_model": "m", "project": "ghost"}],
        policy={"projects": {"phantom": {"cooldown": "1d"}}},
    )
    assert "mlops:models.0.project: 'ghost' is not a project of the catalog (projects: credit, churn)" in text
    assert "mlops:policy.projects.phantom: not a project of the catalog" in text


def test_top_level_models_count_against_their_projects_quota() -> None:
    data = catalog()
    data["projects"][0]["quota"]["max_models"] = 1
    text = problems(catalog=data, models=[{"name": "m", "registered_model": "m", "project": "credit"}])
    assert "2 models declared but quota.max_models is 1" in text


def test_a_policy_set_in_two_places_is_refused() -> None:
    assert "project 'credit' also has policy.projects.credit; keep one" in problems(
        catalog=catalog(), policy={"projects": {"credit": {"window": "12h"}}}
    )
    assert "model 'churn' has its own policy and policy.models.churn; keep one" in problems(
        catalog=catalog(), policy={"models": {"churn": {"window": "12h"}}}
    )


def test_a_bad_catalog_file_names_the_file_and_the_key(tmp_path: Path) -> None:
    data = catalog()
    data["projects"][0]["quota"]["pods"] = 0
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"projects\.0\.quota\.pods: .*catalog file"):
        load_catalog_file(path)
    path.write_text("projects: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_catalog_file(path)
