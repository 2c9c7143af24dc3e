"""The loop's models file (``loop/models.py``): what the Pulumi program renders into the monitor's ConfigMap
is what the loop parses, with each model's policy resolved from ``mlops:policy`` (platform defaults, the
model's project, the model), its thresholds and its project; bad files name the entry and the field.

The stack is rendered offline (``render.run_program`` under mocks), once for the module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from platform_components.errors import ConfigError
from platform_components.loop.models import (
    MODELS_ENV,
    POLICY_FILE,
    load_models,
    local_model,
    local_policy,
    parse_models,
)
from platform_components.settings import LoopPolicy, PolicySettings

SEED = "test-seed-0123456789abcdef"
THRESHOLDS = {
    "drift_p_value": 0.02,
    "psi": 0.3,
    "min_accuracy": 0.95,
    "max_p95_latency_seconds": 0.5,
    "max_error_rate": 0.01,
}
# Three models: one in project "risk", one in "risk" with overrides of its own, one in no project.
MODELS = [
    {
        "name": "cd-prod",  # the Seldon Model's name: the prediction log's and the metrics' `model`
        "registered_model": "credit-default",  # the MLflow registered model behind it
        "project": "risk",
        "thresholds": THRESHOLDS,
        "label_column": "default",
        "pipeline_arguments": {"seed": 3},
    },
    {"name": "churn", "registered_model": "churn-clf", "project": "risk"},
    {"name": "plain", "registered_model": "plain"},
]
POLICY = {
    "defaults": {"cooldown": "12h", "gate_rows": 250},
    "projects": {"risk": {"min_labels": 150, "cooldown": "2d"}},
    "models": {"churn": {"min_labels": 100, "training_data": "recent"}},
}


def render_stack(**keys: Any) -> list[dict[str, Any]]:
    """The platform program's Kubernetes objects for a stack config of ``mlops:<key>`` = JSON values."""
    from platform_components.render import kubernetes_objects, run_program

    config = {"mlops:secret_seed": SEED}
    config.update({f"mlops:{key}": json.dumps(value) for key, value in keys.items()})
    return kubernetes_objects(run_program(config, ("mlops:secret_seed",)).resources)


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for item in objects:
        if item["kind"] == kind and item["metadata"]["name"] == name:
            return item
    raise AssertionError(f"no {kind} {name} in the render")


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return render_stack(models=MODELS, policy=POLICY)


@pytest.fixture(scope="module")
def entries(rendered: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The rendered ConfigMap's models.json, written to a file and read by the loop's own loader."""
    path = tmp_path_factory.mktemp("monitor-config") / "models.json"
    path.write_text(find(rendered, "ConfigMap", "model-monitor")["data"]["models.json"])
    return {entry.name: entry for entry in load_models(path)}


def test_the_rendered_models_file_parses_with_every_declared_model(entries: dict[str, Any]) -> None:
    assert list(entries) == ["cd-prod", "churn", "plain"]
    entry = entries["cd-prod"]
    assert (entry.name, entry.registered_model, entry.alias, entry.project) == (
        "cd-prod",
        "credit-default",
        "champion",
        "risk",
    )
    assert entry.thresholds.model_dump() == THRESHOLDS
    assert (entry.label_column, entry.pipeline_arguments) == ("default", {"seed": 3})
    assert (entries["plain"].project, entries["plain"].label_column) == (None, "label")


def test_each_entry_carries_its_resolved_policy(entries: dict[str, Any]) -> None:
    defaults = LoopPolicy()
    # The platform's defaults as the stack changed them, for a model in no project.
    plain = entries["plain"].policy
    assert (plain.cooldown, plain.gate_rows, plain.min_labels) == (12 * 3600.0, 250, defaults.min_labels)
    # A project's keys win over the defaults for its models; the rest of the defaults still apply.
    risk = entries["cd-prod"].policy
    assert (risk.cooldown, risk.min_labels, risk.gate_rows) == (2 * 86400.0, 150, 250)
    assert risk.training_data == defaults.training_data
    # A model's own keys win over its project's, key by key.
    churn = entries["churn"].policy
    assert (churn.min_labels, churn.training_data, churn.cooldown, churn.gate_rows) == (
        100,
        "recent",
        2 * 86400.0,
        250,
    )
    # Exactly what the settings resolve: the monitor runs the policy the stack declares, every key.
    settings = PolicySettings.model_validate(POLICY)
    for name, entry in entries.items():
        assert entry.policy == settings.resolve(entry.project, name), name


def test_the_monitor_is_pointed_at_the_mounted_file(rendered: list[dict[str, Any]]) -> None:
    statefulset = find(rendered, "StatefulSet", "model-monitor")
    [container] = statefulset["spec"]["template"]["spec"]["containers"]
    assert container["command"][-2:] == ["-m", "platform_components.loop.service"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env[MODELS_ENV] == "/etc/mlops/models.json"
    assert "--check-interval" in container["args"]


def test_without_a_policy_every_entry_has_the_platform_defaults() -> None:
    objects = render_stack(models=[{"name": "m", "registered_model": "m", "project": "risk"}])
    [entry] = parse_models(find(objects, "ConfigMap", "model-monitor")["data"]["models.json"])
    assert entry.policy == LoopPolicy()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", r"models.json: not valid JSON"),
        ('{"name": "a"}', r"models.json: expected a JSON list of models, got dict"),
        ('[{"name": "a"}]', r"models.json\[0\].registered_model: Field required"),
        ('[{"name": "", "registered_model": "a"}]', r"\[0\].name: String should have at least 1 character"),
        (
            '[{"name": "a", "registered_model": "a", "thresholds": {"psi": -1}}]',
            r"models.json\[0\].thresholds.psi: Input should be greater than 0 \(got -1\)",
        ),
        (
            '[{"name": "a", "registered_model": "a", "thresholds": {"drift_p_value": 2}}]',
            r"\[0\].thresholds.drift_p_value: Input should be less than 1 \(got 2\)",
        ),
        ('[{"name": "a", "registered_model": "a", "alais": "x"}]', r"\[0\].alais: Extra inputs"),
        (
            '[{"name": "a", "registered_model": "a"}, {"name": "b", "registered_model": "b", '
            '"policy": {"window": 0}}]',
            r"models.json\[1\].policy.window: Input should be greater than 0",
        ),
        (
            '[{"name": "a", "registered_model": "a", "policy": {"cooldwn": "1d"}}]',
            r"\[0\].policy.cooldwn: Extra inputs are not permitted",
        ),
        (
            '[{"name": "a", "registered_model": "a", "policy": {"cooldown": "2x"}}]',
            r"\[0\].policy.cooldown: .*'2x' is not a duration; write e.g. '3d'",
        ),
        (
            '[{"name": "a", "registered_model": "a", "policy": {"window": 7200, "lookback": 3600}}]',
            r"\[0\].policy: .*lookback=3600s is shorter than window=7200s",
        ),
        (
            '[{"name": "a", "registered_model": "a", "policy": {"performance_metric": "f1"}}]',
            r"\[0\].policy.performance_metric: Input should be 'accuracy', .* \(got 'f1'\)",
        ),
        (
            '[{"name": "a", "registered_model": "a"}, {"name": "a", "registered_model": "b"}]',
            r"models.json\[1\].name: 'a' is also entry \[0\]",
        ),
    ],
)
def test_bad_models_files_name_the_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_models(text)


def test_the_error_names_the_file_it_read(tmp_path: Path) -> None:
    path = tmp_path / "mounted.json"
    path.write_text('[{"name": "a", "registered_model": "a", "thresholds": {"min_accuracy": 3}}]')
    with pytest.raises(
        ConfigError, match=rf"{path}\[0\]\.thresholds\.min_accuracy: Input should be less than or equal to 1"
    ):
        load_models(path)


def test_a_missing_models_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"{MODELS_ENV}=.*nope.json.*cannot read it"):
        load_models(tmp_path / "nope.json")


def test_the_thresholds_are_the_checks_drift_levels() -> None:
    """``drift_p_value`` and ``psi`` are the check's levels (the alert rules read the same thresholds);
    the task comes from the version's reference profile."""
    from platform_components.loop.round import check_config
    from platform_components.monitoring.profile import build_reference_profile

    [entry] = parse_models(json.dumps([{"name": "m", "registered_model": "m", "thresholds": THRESHOLDS}]))
    frame = pd.DataFrame({"x": np.linspace(0.0, 1.0, 50)})
    profile = build_reference_profile(frame, numeric=["x"], categorical=[], metadata={"task": "regression"})
    check = check_config(entry, profile)
    assert (check.alpha, check.psi_threshold, check.task) == (0.02, 0.3, "regression")


def test_the_local_target_reads_the_same_keys_from_policy_yaml(tmp_path: Path) -> None:
    assert local_policy(tmp_path) == PolicySettings()  # no file: the platform's defaults
    (tmp_path / POLICY_FILE).write_text(
        "defaults: {cooldown: 12h}\nprojects: {risk: {min_labels: 150}}\nmodels: {churn: {min_labels: 100}}\n"
    )
    policy = local_policy(tmp_path)
    entry = local_model("churn", policy, project="risk")
    assert (entry.name, entry.registered_model, entry.project) == ("churn", "churn", "risk")
    assert (entry.policy.cooldown, entry.policy.min_labels) == (12 * 3600.0, 100)
    assert local_model("other", policy, project="risk").policy.min_labels == 150
    assert local_model("other", policy, registered_model="reg").registered_model == "reg"


def test_a_bad_local_policy_file_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("defaults: {cooldwn: 1d}\n")
    with pytest.raises(ConfigError, match=r"policy file .*mine.yaml: .*unknown policy key\(s\) 'cooldwn'"):
        local_policy(tmp_path, path)
