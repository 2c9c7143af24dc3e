"""Write a new project from the templates: the sample's pipeline, a data contract, tests, Makefile and CI.

The templates are package data (``templates/``, files ending in ``.tmpl``) filled with ``string.Template``
whose delimiter is ``@@`` (``@@package``): Makefiles and workflows are full of ``$``, Python of ``@``, and
neither writes ``@@``. The placeholders are the few names of ``ProjectNames``; any other ``@@word`` fails.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import string
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from platform_components.errors import ConfigError, PlatformError

logger = logging.getLogger(__name__)

# A DNS-1035 label: the project name is a namespace, a Service-like object name (must start with a letter)
# and, with '-' as '_', the project's Python package. Its first model carries the name, and model names are
# at most 40 characters (settings.ModelName: derived object names append suffixes and stay within 63).
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
MAX_NAME_LENGTH = 40

# template (relative to templates/) -> path in the project; "{package}" is the project's package folder.
FILES: dict[str, str] = {
    "README.md.tmpl": "README.md",
    "Makefile.tmpl": "Makefile",
    "pyproject.toml.tmpl": "pyproject.toml",
    "gitignore.tmpl": ".gitignore",
    "Dockerfile.tmpl": "Dockerfile",
    "github/workflows/ci.yml.tmpl": ".github/workflows/ci.yml",
    "platform/catalog.yaml.tmpl": "platform/catalog.yaml",
    "package/__init__.py.tmpl": "{package}/__init__.py",
    "package/contract.py.tmpl": "{package}/contract.py",
    "package/data.py.tmpl": "{package}/data.py",
    "package/model.py.tmpl": "{package}/model.py",
    "package/components.py.tmpl": "{package}/components.py",
    "package/pipeline.py.tmpl": "{package}/pipeline.py",
    "tests/conftest.py.tmpl": "tests/conftest.py",
    "tests/test_data.py.tmpl": "tests/test_data.py",
    "tests/test_model_behaviour.py.tmpl": "tests/test_model_behaviour.py",
}
GOLDEN = "tests/golden/pipeline.yaml"


class _ProjectTemplate(string.Template):
    delimiter = "@@"


class ScaffoldError(ConfigError):
    """The project cannot be scaffolded as asked; the message names the value and the fix."""


@dataclass(frozen=True)
class ProjectNames:
    """Every name derived from the project's name, in one place.

    Attributes:
        name: the project (DNS-1035 label): its namespace, catalog entry, first model and folder.
        package: its Python package (``name`` with ``_`` for ``-``).
        pipeline_function: the ``@dsl.pipeline`` function in ``<package>/pipeline.py``.
        pipeline_name: the pipeline's KFP name.
        team: the catalog team that owns it.
        image: the pipeline steps' image on a cluster (``components.BASE_IMAGE``).
    """

    name: str
    package: str
    pipeline_function: str
    pipeline_name: str
    team: str
    image: str

    @classmethod
    def of(cls, name: str, *, team: str | None = None, registry: str = "ghcr.io/example-org") -> ProjectNames:
        """The names of project ``name`` (validated; see ``validate_name``)."""
        validate_name(name)
        if team is not None:
            validate_name(team, what="--team")
        package = name.replace("-", "_")
        return cls(
            name=name,
            package=package,
            pipeline_function=f"{package}_pipeline",
            pipeline_name=f"{name}-training",
            team=team or name,
            image=f"{registry.rstrip('/')}/{name}-pipeline:0.1.0",
        )

    def substitutions(self) -> dict[str, str]:
        return {
            "name": self.name,
            "package": self.package,
            "pipeline_function": self.pipeline_function,
            "pipeline_name": self.pipeline_name,
            "team": self.team,
            "image": self.image,
        }


@dataclass
class Scaffold:
    """What ``new_project`` wrote."""

    names: ProjectNames
    root: Path
    files: list[Path] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "project": self.names.name,
            "package": self.names.package,
            "team": self.names.team,
            "path": str(self.root),
            "pipeline": f"{self.names.package}/pipeline.py:{self.names.pipeline_function}",
            "files": sorted(str(path.relative_to(self.root)) for path in self.files),
        }


def validate_name(name: str, *, what: str = "NAME") -> str:
    """``name`` if it is a DNS-1035 label of at most 40 characters, else ``ScaffoldError`` with the fix."""
    if not isinstance(name, str) or not name:
        raise ScaffoldError(f"{what} must not be empty; e.g. loan-risk")
    if len(name) > MAX_NAME_LENGTH or not _NAME.match(name):
        suggestion = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
        suggestion = re.sub(r"^[^a-z]+", "", suggestion)[:MAX_NAME_LENGTH].rstrip("-") or "loan-risk"
        raise ScaffoldError(
            f"{what} {name!r} is not a valid project name: use lower-case letters, digits and '-', starting "
            f"with a letter and ending with a letter or digit, at most {MAX_NAME_LENGTH} characters (it "
            f"becomes a Kubernetes namespace, a model name and a Python package); e.g. {suggestion!r}"
        )
    return name


def render_template(template: str, names: ProjectNames) -> str:
    """The text of template ``template`` (a key of ``FILES``) filled with the project's names."""
    text = resources.files(__package__).joinpath("templates", template).read_text(encoding="utf-8")
    return fill(text, names, source=f"template {template}")


def fill(text: str, names: ProjectNames, *, source: str) -> str:
    """``text`` with every ``@@placeholder`` replaced by the project's names.

    Raises:
        PlatformError: ``text`` has a placeholder outside ``ProjectNames.substitutions`` (a template bug).
    """
    try:
        return _ProjectTemplate(text).substitute(names.substitutions())
    except KeyError as error:
        raise PlatformError(
            f"{source}: unknown placeholder @@{error.args[0]}; the placeholders are "
            f"{', '.join('@@' + key for key in names.substitutions())} (a literal @@ is written @@@@)"
        ) from None
    except ValueError as error:
        raise PlatformError(f"{source}: {error} (a literal @@ is written @@@@)") from None


def new_project(
    name: str,
    directory: Path,
    *,
    team: str | None = None,
    registry: str = "ghcr.io/example-org",
    python: str | None = None,
) -> Scaffold:
    """Scaffold project ``name`` in ``directory/name`` and compile its golden pipeline IR.

    Args:
        name: the project's name (a DNS-1035 label, at most 40 characters).
        directory: the folder the project's own folder is created in; it must exist.
        team: the catalog team owning the project (default: ``name``).
        registry: the registry prefix of the pipeline's image.
        python: the interpreter that compiles the golden IR (default: this one; it needs kfp).

    Raises:
        ScaffoldError: the name is invalid, ``directory`` is not a folder, or the project folder exists.
        PlatformError: compiling the generated pipeline failed (its output is in the message); nothing is
            left behind.
    """
    names = ProjectNames.of(name, team=team, registry=registry)
    directory = Path(directory)
    if not directory.is_dir():
        raise ScaffoldError(f"--dir {str(directory)!r} is not an existing folder; create it or pass another")
    root = (directory / names.name).resolve()
    if root.exists():
        raise ScaffoldError(
            f"{str(root)!r} already exists: NAME {names.name!r} would overwrite it; choose another NAME, "
            f"another --dir, or remove the folder"
        )
    scaffold = Scaffold(names=names, root=root)
    try:
        for template, target in FILES.items():
            path = root / target.format(package=names.package)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render_template(template, names), encoding="utf-8")
            scaffold.files.append(path)
        scaffold.files.append(compile_golden(root, names, python=python or sys.executable))
    except BaseException:
        # The folder is ours (it did not exist): a half-written project would block the retry.
        shutil.rmtree(root, ignore_errors=True)
        raise
    logger.info("scaffolded project %s in %s (%d files)", names.name, root, len(scaffold.files))
    return scaffold


def compile_golden(root: Path, names: ProjectNames, *, python: str) -> Path:
    """Compile the project's pipeline into its golden IR in a child process (this one never imports it).

    The child sees the project and the platform package, the way ``make compile`` runs it, so the golden file
    is what the project's own target produces.
    """
    golden = root / GOLDEN
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(root), *filter(None, [environment.get("PYTHONPATH", "")])]
    )
    command = [
        python,
        "-m",
        "platform_components.cli",
        "pipeline",
        "compile",
        f"{names.package}/pipeline.py:{names.pipeline_function}",
        "--out",
        str(golden),
    ]
    completed = subprocess.run(
        command, cwd=root, env=environment, capture_output=True, text=True, timeout=300, check=False
    )
    if completed.returncode != 0:
        raise PlatformError(
            f"compiling the new project's pipeline failed ({' '.join(command[2:])}):\n"
            f"{(completed.stdout + completed.stderr).strip()[-2000:]}"
        )
    return golden
