"""The project scaffolded once per session (tests that change it work on a copy)."""

from __future__ import annotations

import sys

import pytest
from scaffolded import PROJECT_NAME, Project

from platform_components.scaffold import new_project


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """``mlops project new loan-risk``, once per session (tests that change it work on a ``copy``)."""
    return Project(new_project(PROJECT_NAME, tmp_path_factory.mktemp("scaffold"), python=sys.executable))
