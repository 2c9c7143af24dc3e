"""Stage a platform stack with one project's catalog entry added: what `make render` and `make preview` check.

A team's repository holds its entry of the platform's catalog (``platform/catalog.yaml``: its project and,
when the team is new, the team and people). Before the entry is proposed to the platform, the team's CI
renders and previews the platform's stack as it would be with the entry: this module writes that stack file
(the platform's own, its catalog inlined with the entry merged in) under a folder of its own, so the
platform's checkout is never modified. ``mlops render --root <out>`` reads it; ``pulumi preview
--config-file <out>/infra/stacks/Pulumi.<stack>.yaml`` runs the platform's program with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from platform_components.errors import ConfigError
from platform_components.settings import CONFIG_NAMESPACE, CatalogSettings, format_validation_error

logger = logging.getLogger(__name__)

CATALOG_KEY = f"{CONFIG_NAMESPACE}:catalog"


@dataclass
class Staged:
    """The staged stack file and what the merge did."""

    stack_file: Path
    projects: list[str]
    added_teams: list[str] = field(default_factory=list)
    added_people: list[str] = field(default_factory=list)
    kept_platform_definitions: list[str] = field(default_factory=list)
    replaced_projects: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "stack_file": str(self.stack_file),
            "projects": self.projects,
            "added_teams": self.added_teams,
            "added_people": self.added_people,
            "kept_platform_definitions": self.kept_platform_definitions,
            "replaced_projects": self.replaced_projects,
        }


def _read_yaml(path: Path, what: str) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{what} {path}: cannot read it ({error.strerror or error})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{what} {path}: not valid YAML ({error})") from None


def read_entry(path: Path) -> dict[str, Any]:
    """A project's catalog entry (``people``, ``teams``, ``projects``), validated as a catalog on its own.

    Raises:
        ConfigError: unreadable, not YAML, not a catalog mapping, or without a project.
    """
    data = _read_yaml(path, "--catalog")
    if not isinstance(data, dict):
        raise ConfigError(
            f"--catalog {path}: must be a mapping with people, teams and projects (docs/catalog.md), got "
            f"{type(data).__name__}"
        )
    try:
        CatalogSettings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, prefix="", source=f"--catalog {path}")) from None
    if not data.get("projects"):
        raise ConfigError(f"--catalog {path}: declares no project; add the project's entry under projects:")
    return data


def _platform_catalog(value: Any, platform_dir: Path, stack_file: Path) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):  # a path relative to the platform repository's root (docs/catalog.md)
        path = Path(value) if Path(value).is_absolute() else platform_dir / value
        value = _read_yaml(path, f"{CATALOG_KEY} of {stack_file}: catalog file") or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{stack_file}: {CATALOG_KEY} must be a mapping or a file path, got {value!r}")
    return value


def merge_entry(platform: dict[str, Any], entry: dict[str, Any], staged: Staged) -> dict[str, Any]:
    """The platform's catalog with ``entry`` merged in (both plain mappings; neither is changed).

    Projects of the entry replace the platform's project of the same name (an update of an onboarded
    project) or are added. People and teams the platform already has keep the platform's definition (the
    entry's copy only onboards a new team); new ones are added.
    """
    merged = {key: list(platform.get(key) or []) for key in ("people", "teams", "projects")}
    for key, added, kept in (
        ("people", staged.added_people, staged.kept_platform_definitions),
        ("teams", staged.added_teams, staged.kept_platform_definitions),
    ):
        known = {item.get("name") for item in merged[key] if isinstance(item, dict)}
        for item in entry.get(key) or []:
            if item["name"] in known:
                if item not in merged[key]:
                    kept.append(f"{key[:-1] if key == 'teams' else 'person'} {item['name']}")
                continue
            merged[key].append(item)
            added.append(item["name"])
    for project in entry["projects"]:
        names = [item.get("name") for item in merged["projects"]]
        if project["name"] in names:
            merged["projects"][names.index(project["name"])] = project
            staged.replaced_projects.append(project["name"])
        else:
            merged["projects"].append(project)
        staged.projects.append(project["name"])
    return merged


def stage_stack(catalog: Path, platform_dir: Path, stack: str, out: Path) -> Staged:
    """Write ``out/infra/stacks/Pulumi.<stack>.yaml``: the platform's stack with ``catalog``'s entry merged.

    The stack file keeps everything else byte-for-byte in meaning (secrets stay encrypted, with the stack's
    ``encryptionsalt``), so ``pulumi preview --config-file`` decrypts it as the platform's own.

    Raises:
        ConfigError: the platform has no such stack, or the entry or the platform's catalog is malformed.
            The merged catalog's cross-entry rules (owners, quotas, unique names) are checked by the render
            and the preview, which name the key.
    """
    platform_dir = Path(platform_dir)
    stack_file = platform_dir / "infra" / "stacks" / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        known = sorted(
            path.name.removeprefix("Pulumi.").removesuffix(".yaml")
            for path in stack_file.parent.glob("Pulumi.*.yaml")
        )
        raise ConfigError(
            f"--stack {stack!r}: no stack file {stack_file} in --platform-dir {str(platform_dir)!r}; known "
            f"stacks: {', '.join(known) or 'none'} (is PLATFORM_DIR the platform repository?)"
        )
    entry = read_entry(Path(catalog))
    document = _read_yaml(stack_file, "stack file") or {}
    config = document.setdefault("config", {}) or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{stack_file}: 'config' must be a mapping of mlops:<key> to values")
    current = config.pop(CATALOG_KEY, config.pop("catalog", None))
    staged = Staged(stack_file=Path(out) / "infra" / "stacks" / stack_file.name, projects=[])
    config[CATALOG_KEY] = merge_entry(_platform_catalog(current, platform_dir, stack_file), entry, staged)
    document["config"] = config
    staged.stack_file.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# Staged by `mlops project stage`: {stack_file} with the catalog entry {catalog} merged in.\n"
        "# Generated; do not edit (edit the entry, or the platform's stack).\n"
    )
    staged.stack_file.write_text(header + yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    logger.info("staged %s with projects %s", staged.stack_file, staged.projects)
    return staged
