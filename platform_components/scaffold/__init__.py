"""Scaffold a new project from the platform's sample (``mlops project new``) and stage its catalog entry.

Public:

- ``new_project(name, directory, *, team, registry) -> Scaffold``: writes ``directory/name`` from the
  templates (package data under ``templates/``) and compiles its golden pipeline IR;
- ``validate_name(name)``; ``ProjectNames``; ``ScaffoldError``;
- ``stage_stack(catalog, platform_dir, stack, out) -> Staged``: the platform's stack file with a project's
  catalog entry merged in (what the project's ``make render`` and ``make preview`` check).
"""

from platform_components.scaffold.generate import (
    FILES,
    ProjectNames,
    Scaffold,
    ScaffoldError,
    new_project,
    validate_name,
)
from platform_components.scaffold.stage import Staged, stage_stack

__all__ = [
    "FILES",
    "ProjectNames",
    "Scaffold",
    "ScaffoldError",
    "Staged",
    "new_project",
    "stage_stack",
    "validate_name",
]
