"""The real Pulumi CLI (tools/pulumi) runs a Python program through the real language host.

A first step of the engine tier: the CLI and the Python language host are built from the Go module proxy by
`make engine` (tools/pulumi, tools/pulumi-language-python); this test never builds them (minutes cold) and
skips, saying so, when they are not in the tools cache. It runs `pulumi up` on a local file backend with a
passphrase-encrypted secret and reads the outputs back, so the CLI, the host, its executor and our installed
SDK are shown to work together.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BUILD_PY = Path(__file__).resolve().parents[2] / "tools" / "build.py"


def _built_folder(name: str) -> Path:
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


@pytest.mark.slow
def test_the_real_cli_runs_a_python_program_with_a_secret(tmp_path: Path) -> None:
    cli = _built_folder("pulumi")
    host = _built_folder("pulumi-language-python")
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text(
        f"name: probe\nruntime:\n  name: python\n  options:\n    virtualenv: {Path(sys.prefix)}\n"
    )
    (project / "__main__.py").write_text(
        "import pulumi\n"
        "config = pulumi.Config()\n"
        "pulumi.export('answer', 42)\n"
        "pulumi.export('seed_length', config.require_secret('seed').apply(len))\n"
    )
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), str(host), str(cli), os.environ["PATH"]]),
        "PULUMI_HOME": str(tmp_path / "home"),
        "PULUMI_CONFIG_PASSPHRASE": "engine-test-passphrase",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
    }
    backend = tmp_path / "state"
    backend.mkdir()

    def pulumi(*args: str) -> str:
        completed = subprocess.run(
            [str(cli / "pulumi"), *args, "--non-interactive"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert completed.returncode == 0, f"pulumi {' '.join(args)}:\n{completed.stdout}\n{completed.stderr}"
        return completed.stdout

    pulumi("login", f"file://{backend}")
    pulumi("stack", "init", "dev")
    pulumi("config", "set", "--secret", "seed", "0123456789")
    assert "0123456789" not in (project / "Pulumi.dev.yaml").read_text()  # encrypted, not plain text
    summary = pulumi("up", "--yes")
    assert "1 created" in summary, summary
    outputs = json.loads(pulumi("stack", "output", "--json", "--show-secrets"))
    assert outputs == {"answer": 42, "seed_length": 10}
    assert "1 unchanged" in pulumi("up", "--yes")  # a second up changes nothing
