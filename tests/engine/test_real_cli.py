"""The real Pulumi CLI (tools/pulumi) runs Python programs through the real language host.

The smallest program first: the CLI, the Python host, the engine venv's SDK and a passphrase-encrypted secret
working together (the platform's stacks: test_stacks.py). Skips where the tools are not built.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from engine_cli import PulumiCli

pytestmark = [pytest.mark.engine, pytest.mark.slow]


def test_the_real_cli_runs_a_python_program_with_a_secret(tmp_path: Path) -> None:
    pulumi = PulumiCli(tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: probe\nruntime: python\n")
    (project / "__main__.py").write_text(
        "import pulumi\n"
        "config = pulumi.Config()\n"
        "pulumi.export('answer', 42)\n"
        "pulumi.export('seed_length', config.require_secret('seed').apply(len))\n"
    )
    pulumi.run("stack", "init", "dev", cwd=project)
    pulumi.run("config", "set", "--secret", "seed", "0123456789", cwd=project)
    assert "0123456789" not in (project / "Pulumi.dev.yaml").read_text()  # encrypted, not plain text
    summary = pulumi.run("up", "--yes", cwd=project).stdout
    assert "1 created" in summary, summary
    outputs = json.loads(pulumi.run("stack", "output", "--json", "--show-secrets", cwd=project).stdout)
    assert outputs == {"answer": 42, "seed_length": 10}
    assert "1 unchanged" in pulumi.run("up", "--yes", cwd=project).stdout  # a second up changes nothing
