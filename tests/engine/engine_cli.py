"""The engine tier's real Pulumi CLI, as the tests run it (not a conftest: imported by name).

The CLI, the Python language host and the kubernetes provider are built by `make engine` into the tools cache,
and the tier's virtual environment (`make engine-venv`: the exact SDK pins of tests/engine/requirements.txt
plus this project) sits beside the project's own. These helpers never build anything (minutes cold): they skip
the calling test, saying what to run, when a piece is absent.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BUILD_PY = REPO / "tools" / "build.py"
ENGINE_VENV = Path(os.environ.get("MLOPS_ENGINE_VENV", REPO / ".venv-engine"))
PASSPHRASE = "engine-test-passphrase"


@functools.cache
def _tools_module():
    spec = importlib.util.spec_from_file_location("mlops_tools_build_cli", BUILD_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def built_folder(name: str) -> Path:
    """The cache folder of the built tool ``name`` (skips when it is not built)."""
    module = _tools_module()
    folder = module.load_tools()[name].cache_dir(module.cache_root())
    if not (folder / "build.json").is_file():
        pytest.skip(f"{name} is not built in {folder.parent}: run `make engine` (or tools/build.py {name})")
    return folder


def engine_python() -> Path:
    """The engine tier venv's interpreter (skips when `make engine-venv` has not made it)."""
    python = ENGINE_VENV / "bin" / "python"
    if not python.is_file():
        pytest.skip(f"the engine tier's virtualenv {ENGINE_VENV} is absent: run `make engine-venv`")
    return python


@functools.cache
def pulumi_install() -> Path:
    """One folder holding the CLI with its bundled Python host beside it, as Pulumi's own install lays it out.

    The CLI looks for its bundled language plugins next to its own (symlink-resolved) executable
    (pulumi/pulumi sdk/go/common/workspace/plugins.go@v3.260.0, GetPluginPath), and with
    PULUMI_IGNORE_AMBIENT_PLUGINS set nowhere else; the host comes from another module (tools/
    pulumi-language-python), so the two cache folders are linked into one (hard links, else copies).
    """
    folder = Path(tempfile.mkdtemp(prefix="mlops-pulumi-install-"))
    atexit.register(shutil.rmtree, folder, True)
    for tool in ("pulumi", "pulumi-language-python"):
        for binary in built_folder(tool).iterdir():
            if binary.name != "build.json" and not (folder / binary.name).exists():
                try:
                    os.link(binary, folder / binary.name)
                except OSError:
                    shutil.copy2(binary, folder / binary.name)
    return folder


def install_provider(pulumi_home: Path) -> None:
    """Install the built pulumi-resource-kubernetes into ``pulumi_home`` as plugin kubernetes v<pin>.

    The CLI never downloads a plugin here (automatic acquisition is off and there is no internet): the
    provider the tools cache holds is installed with ``pulumi plugin install ... --file``.
    """
    cli = pulumi_install() / "pulumi"
    provider = built_folder("pulumi-kubernetes") / "pulumi-resource-kubernetes"
    env = {**os.environ, "PULUMI_HOME": str(pulumi_home), "PULUMI_SKIP_UPDATE_CHECK": "true"}
    version = _tools_module().load_tools()["pulumi-kubernetes"].version
    subprocess.run(
        [str(cli), "plugin", "install", "resource", "kubernetes", version, "--file", str(provider)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )


@dataclass(frozen=True)
class Summary:
    """The counts in the ``Resources:`` block Pulumi prints after a preview, up or destroy."""

    counts: dict[str, int]
    text: str

    def __getitem__(self, key: str) -> int:
        return self.counts.get(key, 0)


_SUMMARY_LINE = re.compile(
    r"^\s*[+~-]*\s*(\d+)\s+"
    r"(to create|to update|to delete|to replace|created|updated|deleted|replaced|unchanged)\b"
)


def summary(output: str) -> Summary:
    """Parse Pulumi's ``Resources:`` block (``+ 3 created``, ``12 unchanged``...) from an update's output."""
    lines = output.splitlines()
    try:
        start = max(index for index, line in enumerate(lines) if line.strip() == "Resources:")
    except ValueError as error:
        raise AssertionError(f"no `Resources:` summary in the output:\n{output}") from error
    counts: dict[str, int] = {}
    block: list[str] = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        block.append(line)
        match = _SUMMARY_LINE.match(line)
        if match:
            counts[match.group(2)] = int(match.group(1))
    return Summary(counts=counts, text="\n".join(block))


class PulumiCli:
    """The real CLI on a local file backend under ``home``, with a passphrase secrets provider.

    Args:
        home: the test's folder; the backend state goes to ``home/state``.
        pulumi_home: a PULUMI_HOME that already holds the provider plugin (``install_provider``); None makes
            one under ``home`` (without the provider).
        kubeconfig: the KUBECONFIG the provider sees (None: the ambient one).
    """

    def __init__(self, home: Path, pulumi_home: Path | None = None, kubeconfig: Path | None = None) -> None:
        self.cli = pulumi_install()
        backend = home / "state"
        backend.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "PULUMI_HOME": str(pulumi_home or home / "pulumi-home"),
            # The backend by environment, not `pulumi login`: tests share one PULUMI_HOME (the installed
            # plugin) and a login would write the current backend into it.
            "PULUMI_BACKEND_URL": f"file://{backend}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
            # The Python host built here is sdk/v3@v3.79.0 (the newest module that still holds it): it reads
            # `runtime.options.virtualenv` from command-line flags that CLI 3.260.0 no longer passes (the
            # options now travel in the RPC's ProgramInfo), so the interpreter is named the way that host
            # documents: PULUMI_PYTHON_CMD (sdk/python/cmd/pulumi-language-python/main.go@v3.79.0).
            "PULUMI_PYTHON_CMD": str(engine_python()),
        }
        if kubeconfig is not None:
            self.env["KUBECONFIG"] = str(kubeconfig)

    def run(
        self, *args: str, cwd: Path, check: bool = True, timeout: int = 900
    ) -> subprocess.CompletedProcess[str]:
        try:
            completed = subprocess.run(
                [str(self.cli / "pulumi"), *args, "--non-interactive"],
                cwd=cwd,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as expired:
            # What Pulumi printed until then says which resource it was waiting for.
            printed = [
                part.decode() if isinstance(part, bytes) else part or ""
                for part in (expired.stdout, expired.stderr)
            ]
            raise AssertionError(
                f"pulumi {' '.join(args)} still running after {timeout} s:\n" + "\n".join(printed)[-20000:]
            ) from None
        if check:
            assert completed.returncode == 0, (
                f"pulumi {' '.join(args)}:\n{completed.stdout}\n{completed.stderr}"
            )
        return completed


def copy_project(destination: Path, venv: Path) -> Path:
    """A copy of the repository whose Pulumi.yaml runs the program in ``venv`` (the stacks untouched)."""
    skipped = shutil.ignore_patterns(".git", ".venv*", ".mlops", "out", "__pycache__", "mlruns", "*.egg-info")
    shutil.copytree(REPO, destination, ignore=skipped)
    project = destination / "Pulumi.yaml"
    project.write_text(project.read_text().replace("virtualenv: .venv", f"virtualenv: {venv}"))
    return destination


def replace_placeholder_secrets(stack_file: Path) -> list[str]:
    """Drop the shipped ``secure: v1:REPLACE...`` placeholders; return their keys (set them with --secret)."""
    document = yaml.safe_load(stack_file.read_text())
    config = document["config"]
    keys = [key for key, value in config.items() if isinstance(value, dict) and "secure" in value]
    for key in keys:
        del config[key]
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
    return keys


def point_at_cluster(cli: PulumiCli, project: Path, kubeconfig: Path, kfp_manifests: Path) -> None:
    """Point the stack at the local API server's ``engine`` context, charts off, KFP from a local copy.

    The kubeconfig's current context is a decoy (tests/engine/cluster.py): the stack must name ``engine``.
    """
    for key, value in {
        "mlops:cluster.kubeconfig": str(kubeconfig),
        "mlops:cluster.context": "engine",
        "mlops:upstream.helm_charts": "false",
        "mlops:kfp.manifests_path": str(kfp_manifests),
    }.items():
        cli.run("config", "set", "--path", key, value, cwd=project)
