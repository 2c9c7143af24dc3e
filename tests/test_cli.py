"""The `mlops` command: every listed sub-command loads and documents itself."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from platform_components import __version__
from platform_components.cli import COMMANDS, main


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_listed_command_loads_and_has_help(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: main " + name) or f" {name} " in result.output.splitlines()[0]


def test_top_level_help_lists_every_command_without_importing_them() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name, (_, _, summary) in COMMANDS.items():
        assert name in result.output and summary[:30] in result.output


def test_version() -> None:
    assert __version__ in CliRunner().invoke(main, ["--version"]).output
