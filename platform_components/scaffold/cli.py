"""``mlops project``: scaffold a new project; stage a platform stack with a project's catalog entry."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group(name="project", context_settings={"help_option_names": ["-h", "--help"]})
def project_group() -> None:
    """Start a project on the platform, check its catalog entry against a stack, sync its MLflow/KFP space.

    \b
    Examples:
      mlops project new loan-risk --dir ~/src
      mlops project sync --catalog catalog.yaml --dry-run
      mlops project stage --catalog platform/catalog.yaml --platform-dir ../mlops-platform --stack dev \\
          --out build/platform
    """


@project_group.command(name="new")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="The folder the project's own folder NAME is created in.",
)
@click.option("--team", default=None, help="The catalog team owning the project [default: NAME].")
@click.option(
    "--registry",
    default="ghcr.io/example-org",
    show_default=True,
    help="Registry prefix of the pipeline's image (components.BASE_IMAGE).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def new_command(name: str, directory: Path, team: str | None, registry: str, as_json: bool) -> None:
    """Scaffold project NAME from the platform's sample, ready to run.

    NAME (a DNS label starting with a letter, at most 40 characters) becomes the folder DIR/NAME, the
    project's namespace, its first model and, with '_' for '-', its Python package. The folder holds a data
    contract, the pipeline, data and model behaviour tests, the golden pipeline IR, a Makefile (test,
    compile, golden-check, render, preview) and a GitHub Actions workflow running those targets.
    """
    from platform_components.scaffold.generate import new_project

    scaffold = new_project(name, directory, team=team, registry=registry)
    if as_json:
        click.echo(json.dumps(scaffold.as_json(), indent=2))
        return
    click.echo(f"scaffolded {scaffold.names.name} in {scaffold.root} ({len(scaffold.files)} files)")
    click.echo(f"next: cd {scaffold.root} && make help   (PLATFORM_DIR: the platform repository)")


@project_group.command(name="stage")
@click.option(
    "--catalog",
    "catalog",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The project's catalog entry (people, teams, projects), e.g. platform/catalog.yaml.",
)
@click.option(
    "--platform-dir",
    required=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The platform repository (holding infra/stacks/).",
)
@click.option("--stack", required=True, help="The platform stack: infra/stacks/Pulumi.<stack>.yaml.")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the staged infra/stacks/Pulumi.<stack>.yaml (mlops render --root OUT).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what the merge did as JSON.")
def stage_command(catalog: Path, platform_dir: Path, stack: str, out: Path, as_json: bool) -> None:
    """Write the platform's STACK with the catalog entry merged in, for `mlops render` and `pulumi preview`.

    The platform's checkout is not modified. A project of the entry replaces the platform's project of the
    same name; people and teams the platform has keep the platform's definition.
    """
    from platform_components.scaffold.stage import stage_stack

    staged = stage_stack(catalog, platform_dir, stack, out)
    if as_json:
        click.echo(json.dumps(staged.as_json(), indent=2))
        return
    click.echo(f"staged {staged.stack_file} with project(s) {', '.join(staged.projects)}", err=True)
    for note in staged.kept_platform_definitions:
        click.echo(f"note: {note}: the platform catalog's definition is used, not the entry's", err=True)


def _sync_command() -> click.Command:
    # Imported here, not at the top: `mlops project new` must not pay for the sync's imports (httpx).
    from platform_components.projects.cli import sync_command

    return sync_command


project_group.add_command(_sync_command())
