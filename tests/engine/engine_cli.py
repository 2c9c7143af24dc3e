"""The engine tier's real Pulumi CLI, as the tests run it (not a conftest: imported by name).

The CLI and the Python language host are built by `make engine` into the tools cache; these helpers never
build them (minutes cold) and skip the calling test, saying so, when they are absent.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_PY = REPO / "tools" / "build.py"


def built_folder(name: str) -> Path:
    """The cache folder of the built tool ``name`` (skips when it is not built)."""
    spec = importlib.util.spec_from_file_location("mlops_tools_build_cli", BUILD_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        folder = module.load_tools()[name].cache_dir(module.cache_root())
    finally:
        del sys.modules[spec.name]
    if not (folder / "build.json").is_file():
        pytest.skip(f"{name} is not built in {folder.parent}: run `make engine` (or tools/build.py {name})")
    return folder


class PulumiCli:
    """The real CLI on a local file backend under ``home``, with a passphrase secrets provider."""

    def __init__(self, home: Path) -> None:
        self.cli = built_folder("pulumi")
        host = built_folder("pulumi-language-python")
        backend = home / "state"
        backend.mkdir(parents=True)
        path = [str(Path(sys.executable).parent), str(host), str(self.cli), os.environ["PATH"]]
        self.env = {
            **os.environ,
            "PATH": os.pathsep.join(path),
            "PULUMI_HOME": str(home / "pulumi-home"),
            "PULUMI_CONFIG_PASSPHRASE": "engine-test-passphrase",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        }
        self.run("login", f"file://{backend}", cwd=home)

    def run(self, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(
            [str(self.cli / "pulumi"), *args, "--non-interactive"],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if check:
            assert completed.returncode == 0, (
                f"pulumi {' '.join(args)}:\n{completed.stdout}\n{completed.stderr}"
            )
        return completed
