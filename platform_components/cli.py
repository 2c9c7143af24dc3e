"""The `mlops` command.

Sub-commands live beside the code they drive and are imported only when called, so `mlops --help`
stays fast and a heavy dependency (mlflow, mlserver, pulumi) loads only for the command that needs it.
"""

from __future__ import annotations

import importlib
import sys

import click

from platform_components import __version__
from platform_components.errors import PlatformError

# name -> (module, attribute, one-line help). The help is repeated here so `mlops --help` imports nothing.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "render": (
        "platform_components.render",
        "render_command",
        "Render a stack's Kubernetes objects offline.",
    ),
    "up": ("platform_components.local.cli", "up_command", "Start the local platform (MLflow, MLServer)."),
    "down": ("platform_components.local.cli", "down_command", "Stop the local platform."),
    "status": ("platform_components.local.cli", "status_command", "Show the local platform's processes."),
    "deploy": ("platform_components.local.cli", "deploy_command", "Serve a registered model's alias."),
    "loop": (
        "platform_components.local.cli",
        "loop_command",
        "Watch a served model: check, retrain, roll over.",
    ),
    "pipeline": (
        "platform_components.pipelines.cli",
        "pipeline_group",
        "Compile or run a project's pipeline.",
    ),
    "monitor": (
        "platform_components.monitoring.cli",
        "monitor_command",
        "Run a monitoring check for a model.",
    ),
    "decisions": ("platform_components.monitoring.cli", "decisions_command", "List retrain decisions."),
    "images": (
        "platform_components.images",
        "images_group",
        "Build and push the platform's images; regenerate their locks.",
    ),
    "fleet": (
        "platform_components.fleet.cli",
        "fleet_command",
        "Every model of every project, one row each.",
    ),
    "demo": ("platform_components.demo", "demo_command", "Run the whole loop on the local target."),
    "project": (
        "platform_components.scaffold.cli",
        "project_group",
        "Scaffold a project; stage its catalog entry; sync projects into MLflow/KFP.",
    ),
}


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attribute, _ = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}.{attribute} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlops")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """mlops-platform: provision the platform, run the local target, watch models."""
    import logging

    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run() -> None:
    """Entry point: turn PlatformError into one clear line and exit code 2, never a traceback."""
    try:
        # With standalone_mode=False click returns the code of a raised Exit instead of exiting.
        code = main(standalone_mode=False)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except PlatformError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    run()
