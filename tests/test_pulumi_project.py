"""Pulumi.yaml against the Pulumi CLI's own config rules, for every shipped stack.

The mocks never see the CLI's config merge: a declared key without a default makes `pulumi preview` stop
before the program runs. These tests apply that rule (tests/upstream_facts/pulumi.py) to each stack file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from upstream_facts import fact

from platform_components.settings import PlatformSettings, SecretSettings

REPO = Path(__file__).resolve().parents[1]
STACKS = sorted((REPO / "infra" / "stacks").glob("Pulumi.*.yaml"))


def _project() -> dict[str, Any]:
    return yaml.safe_load((REPO / "Pulumi.yaml").read_text())


def _own_key(project_name: str, key: str) -> str | None:
    """The bare key when ``key`` is namespaced by the project (bare or ``<project>:``), else None."""
    if ":" not in key:
        return key
    namespace, _, bare = key.partition(":")
    return bare if namespace == project_name else None


def _matches_type(type_name: str, items: dict[str, Any] | None, value: Any) -> bool:
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return True
        return isinstance(value, str) and value.lstrip("-").isdigit()
    if type_name == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if type_name == "object":
        return isinstance(value, dict)
    if not isinstance(value, list) or items is None:
        return False
    return all(_matches_type(items["type"], items.get("items"), item) for item in value)


def cli_config_errors(project: dict[str, Any], stack_name: str, stack: dict[str, Any]) -> list[str]:
    """What the CLI's config merge reports for one stack (empty: it goes on to run the program)."""
    errors: list[str] = []
    name = project["name"]
    declared: dict[str, Any] = project.get("config") or {}
    stack_config: dict[str, Any] = {}
    for key, value in (stack.get("config") or {}).items():
        stack_config[key if ":" in key else f"{name}:{key}"] = value
    missing = []
    for key, declaration in sorted(declared.items()):
        bare = _own_key(name, key)
        if bare is None or not isinstance(declaration, dict):
            continue
        type_name = declaration.get("type")
        if type_name is not None and type_name not in fact("pulumi.config.types"):
            errors.append(f"{key}: type {type_name!r} is not a config type")
        if type_name == "array" and "items" not in declaration:
            errors.append(f"{key}: an array needs `items`")
        if "default" in declaration and "value" in declaration:
            errors.append(f"{key}: both default and value")
        items = declaration.get("items")
        if (
            type_name
            and "default" in declaration
            and not _matches_type(type_name, items, declaration["default"])
        ):
            errors.append(f"{key}: default is not a {type_name}")
        full_key = f"{name}:{bare}"
        has_default = declaration.get("default") is not None or declaration.get("value") is not None
        if full_key not in stack_config:
            if not has_default:
                missing.append(bare)
                continue
            stack_value: Any = declaration.get("default", declaration.get("value"))  # plain, never secure
        else:
            stack_value = stack_config[full_key]
        is_secure = isinstance(stack_value, dict) and set(stack_value) == {"secure"}
        if declaration.get("secret") and not is_secure:
            errors.append(f"Stack '{stack_name}' with configuration key '{bare}' must be encrypted")
        if type_name and not is_secure and not _matches_type(type_name, items, stack_value):
            errors.append(f"Stack '{stack_name}' with configuration key '{bare}' must be of type {type_name}")
    if missing:
        prefix = fact("pulumi.config.required_without_default").format(stack=stack_name)
        errors.insert(0, f"{prefix} {', '.join(missing)}")
    return errors


def _stack_name(path: Path) -> str:
    return path.name.removeprefix("Pulumi.").removesuffix(".yaml")


def test_there_are_shipped_stacks() -> None:
    assert {_stack_name(path) for path in STACKS} >= {"dev", "staging", "prod", "local"}


@pytest.mark.parametrize("path", STACKS, ids=_stack_name)
def test_the_cli_accepts_the_config_of_every_shipped_stack(path: Path) -> None:
    assert cli_config_errors(_project(), _stack_name(path), yaml.safe_load(path.read_text())) == []


def test_the_rule_reports_a_declared_key_without_default_as_missing() -> None:
    """The checker is not vacuous: the Pulumi.yaml shape that broke every stack is reported."""
    project = {"name": "mlops", "config": {"mlflow": {"description": "x"}, "seed": {"type": "string"}}}
    errors = cli_config_errors(project, "dev", {"config": {"mlops:seed": "s"}})
    assert errors == ["Stack 'dev' is missing configuration mlflow"]


def test_the_rule_reports_a_secret_with_a_plain_default() -> None:
    project = {"name": "mlops", "config": {"token": {"type": "string", "secret": True, "default": ""}}}
    assert cli_config_errors(project, "dev", {"config": {}}) == [
        "Stack 'dev' with configuration key 'token' must be encrypted"
    ]


def test_only_the_seed_is_required_and_declared_keys_are_settings() -> None:
    declared = _project()["config"]
    required = {key for key, value in declared.items() if "default" not in value and "value" not in value}
    assert required == {"secret_seed"}
    assert declared["secret_seed"]["secret"] is True
    settings_keys = set(PlatformSettings.model_fields) - {"secrets"} | set(SecretSettings.model_fields)
    assert set(declared) <= settings_keys


def test_every_undeclared_setting_is_documented_in_pulumi_yaml() -> None:
    text = (REPO / "Pulumi.yaml").read_text()
    settings_keys = set(PlatformSettings.model_fields) - {"secrets"} | set(SecretSettings.model_fields)
    assert [key for key in sorted(settings_keys) if key not in text] == []
