"""The real Pulumi CLI (tools/pulumi) runs Python programs through the real language host.

First steps of the engine tier: the CLI's own config validation and our SDK, language host and executor
working together. The kubernetes provider plugin is not built yet, so the platform's preview stops at the
provider; what these tests assert is everything before that. They skip where the tools are not built.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from engine_cli import REPO, PulumiCli


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.parametrize("stack", ["dev", "staging", "local"])
def test_the_real_cli_accepts_every_shipped_stacks_config_and_runs_the_program(
    stack: str, tmp_path: Path
) -> None:
    """Issue 7 item 1 on the real CLI: no "missing configuration values"; the program runs to its outputs.

    A copy of the repository with the stack's placeholder seed replaced by `pulumi config set --secret`.
    (prod, an EKS stack, needs the eks extra to run its program: not here.)
    """
    pulumi = PulumiCli(tmp_path)
    copy = tmp_path / "repo"
    skipped = shutil.ignore_patterns(".git", ".venv", ".mlops", "out", "__pycache__")
    shutil.copytree(REPO, copy, ignore=skipped)
    stack_file = copy / "infra" / "stacks" / f"Pulumi.{stack}.yaml"
    lines = stack_file.read_text().splitlines(keepends=True)
    seed = next(index for index, line in enumerate(lines) if line.strip() == "mlops:secret_seed:")
    stack_file.write_text("".join(lines[:seed] + lines[seed + 2 :]))  # the key and its `secure:` line
    (copy / "Pulumi.yaml").write_text(
        (copy / "Pulumi.yaml").read_text().replace("virtualenv: .venv", f"virtualenv: {Path(REPO, '.venv')}")
    )
    pulumi.run("stack", "init", stack, cwd=copy)
    pulumi.run("config", "set", "--secret", "mlops:secret_seed", "engine-seed-0123456789abcdef", cwd=copy)
    preview = pulumi.run("preview", cwd=copy, check=False)
    output = preview.stdout + preview.stderr
    assert "missing configuration value" not in output, output
    assert "tracking_uri" in output, output  # the program ran to its exports
    if preview.returncode != 0:  # until tools/pulumi-kubernetes is built and installed as a plugin
        errors = [line for line in output.splitlines() if line.strip().startswith("error:")]
        assert errors and all("pulumi-resource-kubernetes" in line for line in errors), output
