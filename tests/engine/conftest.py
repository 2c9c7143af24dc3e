"""Session fixtures of the engine tier: one PULUMI_HOME holding the built kubernetes provider plugin."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_cli import install_provider


@pytest.fixture(scope="session")
def pulumi_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PULUMI_HOME with ``pulumi-resource-kubernetes`` (tools/pulumi-kubernetes) installed as a plugin."""
    home = tmp_path_factory.mktemp("pulumi-home")
    install_provider(home)
    return home
