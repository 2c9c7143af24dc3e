"""The scaffold tests' project and how its make targets run against this checkout (imported by name)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from platform_components.scaffold import Scaffold

REPO = Path(__file__).resolve().parents[2]
PROJECT_NAME = "loan-risk"


@dataclass(frozen=True)
class Project:
    """A generated project and the environment its make targets run in."""

    scaffold: Scaffold

    @property
    def root(self) -> Path:
        return self.scaffold.root

    def copy(self, destination: Path) -> Project:
        """An independent copy (its build output left behind) to change without touching the shared one."""
        target = destination / self.root.name
        shutil.copytree(
            self.root, target, ignore=shutil.ignore_patterns("build", "__pycache__", ".pytest_cache")
        )
        return Project(Scaffold(names=self.scaffold.names, root=target, files=[]))

    def make(self, *targets: str, timeout: int = 300, **variables: str) -> subprocess.CompletedProcess[str]:
        """``make TARGET`` in the project, with this interpreter and this checkout as the platform."""
        if shutil.which("make") is None:
            pytest.skip("the generated project's targets need `make`, which is not on PATH")
        return subprocess.run(
            [
                "make",
                "--no-print-directory",
                *targets,
                *(f"{key}={value}" for key, value in variables.items()),
            ],
            cwd=self.root,
            env=make_environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def make_environment() -> dict[str, str]:
    """This interpreter as the project's PYTHON, this checkout as PLATFORM_DIR (its code first on the path).

    The generated Makefile's defaults expect the platform's own environment in PLATFORM_DIR/.venv (what CI's
    ``make install`` makes); here the test's interpreter stands in for it.
    """
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("MLFLOW_", "PYTEST_"))
    }
    environment.update(
        {
            "PYTHON": sys.executable,
            "PLATFORM_DIR": str(REPO),
            "PYTHONPATH": str(REPO),
            "MAKEFLAGS": "",
        }
    )
    return environment
