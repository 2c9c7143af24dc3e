"""``mlops project sync``: the catalog's projects into MLflow, KFP and the monitor store (``sync.py``).

In the cluster a Job runs it after every catalog change (``kubernetes/project_space.py``); locally
``mlops up --local`` runs it on ``<state>/catalog.yaml`` (``sync_local_catalog``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from platform_components.errors import ConfigError

#: MLflow's own variables for basic-auth credentials (the Job sets them from the MLflow server's Secret).
USERNAME_ENV = "MLFLOW_TRACKING_USERNAME"
PASSWORD_ENV = "MLFLOW_TRACKING_PASSWORD"


def read_users_file(path: Path | None) -> dict[str, str]:
    """``{"username": "password", ...}`` for the platform users the sync may create.

    Raises:
        ConfigError: unreadable, not JSON, or not a mapping of non-empty strings.
    """
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"--users-file {path}: cannot read it ({error.strerror or error})") from None
    except ValueError as error:
        raise ConfigError(f"--users-file {path}: not valid JSON ({error})") from None
    if not isinstance(data, dict) or not all(
        isinstance(key, str) and key and isinstance(value, str) and value for key, value in data.items()
    ):
        raise ConfigError(
            f'--users-file {path}: expected a JSON object of usernames to passwords, e.g. {{"mlops-monitor": '
            f'"<password>"}}; every key and value a non-empty string'
        )
    return data


def run_sync(
    catalog_path: Path,
    *,
    mlflow_url: str,
    kfp_url: str | None = None,
    store_url: str | None = None,
    users_file: Path | None = None,
    dry_run: bool = False,
):
    """Load the catalog and sync it; returns the ``SyncReport``."""
    from platform_components.monitoring.store import open_store
    from platform_components.projects.kfp_space import KfpExperiments
    from platform_components.projects.mlflow_space import MlflowSpaces
    from platform_components.projects.sync import ProjectSync
    from platform_components.settings import load_catalog_file

    catalog = load_catalog_file(catalog_path)
    passwords = read_users_file(users_file)
    store = open_store(store_url) if store_url else None
    kfp = KfpExperiments(kfp_url) if kfp_url else None
    try:
        with MlflowSpaces(mlflow_url, os.environ.get(USERNAME_ENV), os.environ.get(PASSWORD_ENV)) as mlflow:
            return ProjectSync(mlflow, kfp=kfp, store=store, passwords=passwords, dry_run=dry_run).run(
                catalog
            )
    finally:
        if store is not None:
            store.close()
        if kfp is not None:
            kfp.close()


def format_report(report) -> list[str]:
    """Human lines: one per project, its changes indented, then the notes."""
    lines = []
    for project in report.projects:
        state = "ARCHIVED" if project.state == "archived" else "active"
        changed = f"{len(project.changes)} change(s)" if project.changes else "up to date"
        lines.append(
            f"{project.name}: {state}, MLflow experiment {project.mlflow_experiment_id or '-'}, "
            f"KFP experiment {project.kfp_experiment_id or '-'}, {len(project.models)} model(s), {changed}"
        )
        lines += [f"  {change}" for change in project.changes]
        lines += [f"  note: {note}" for note in project.notes]
    if not report.projects:
        lines.append("no projects in the catalog and none to archive")
    lines += [f"note: {note}" for note in report.notes]
    return lines


def sync_local_catalog(state_dir: Path, tracking_uri: str, say) -> None:
    """``mlops up --local``: sync ``<state>/catalog.yaml`` when present (the local target has no KFP)."""
    from platform_components.monitoring.store import STORE_RELATIVE_PATH

    catalog = Path(state_dir) / "catalog.yaml"
    if not catalog.exists():
        return
    report = run_sync(catalog, mlflow_url=tracking_uri, store_url=str(Path(state_dir) / STORE_RELATIVE_PATH))
    say(f"catalog {catalog}: {len(report.projects)} project(s) synced into MLflow")
    for line in format_report(report):
        if not line.startswith("note: no --kfp-url"):
            say(line)


@click.command(name="sync")
@click.option(
    "--catalog",
    "catalog_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The catalog YAML (docs/catalog.md) [default: <state-dir>/catalog.yaml].",
)
@click.option(
    "--mlflow-url",
    default=None,
    help=f"Tracking server [default: MLFLOW_TRACKING_URI, else the local target's]. Credentials: "
    f"{USERNAME_ENV} and {PASSWORD_ENV} (an MLflow admin where it runs basic auth).",
)
@click.option(
    "--kfp-url",
    default=None,
    help="KFP API server, e.g. http://ml-pipeline.kubeflow.svc.cluster.local:8888 "
    "[default: none: KFP skipped].",
)
@click.option(
    "--monitor-store",
    "store_url",
    default=None,
    help="Monitor store URL (sqlite:///PATH or postgresql://...) whose history of removed projects is marked "
    "archived [default: MLOPS_MONITOR_STORE_URL, else the local target's store when it exists].",
)
@click.option(
    "--users-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help='JSON {"mlops-monitor": "<password>", "<project>-pipeline": "<password>"}: platform users the sync '
    "may create. A missing user without a password keeps no grants (said in the output).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The local target's state folder [default: MLOPS_STATE_DIR or .mlops].",
)
@click.option("--dry-run", is_flag=True, help="Read everything, change nothing, print what would change.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def sync_command(
    catalog_path: Path | None,
    mlflow_url: str | None,
    kfp_url: str | None,
    store_url: str | None,
    users_file: Path | None,
    state_dir: Path | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Give every catalog project its space in MLflow and KFP; ARCHIVE (never delete) projects that left it.

    Each project gets an MLflow experiment named after it, its declared registered models (created if
    absent), tags (mlops.project, mlops.owner, mlops.team), grants (mlops-monitor READ, <project>-pipeline
    EDIT, the role team-<team> EDIT, assigned to the team's existing users) and a KFP experiment. A project
    tagged by an earlier sync but no longer in the catalog is archived: tag mlops.archived on its experiment
    and models, grants lowered to READ, its KFP experiment archived, its monitor history marked. Idempotent:
    a second run changes nothing.

    \b
    Examples:
      mlops project sync --dry-run
      mlops project sync --catalog catalog.yaml --mlflow-url http://mlflow:5000 --kfp-url http://ml-pipeline:8888
    """
    from platform_components.monitoring.store import STORE_RELATIVE_PATH, STORE_URL_ENV
    from platform_components.settings import LocalSettings

    local = LocalSettings.from_env(state_dir=state_dir)
    catalog_path = catalog_path or local.catalog_path
    if not catalog_path.exists():
        raise click.UsageError(
            f"--catalog: {catalog_path} does not exist; write the catalog there (docs/catalog.md) or pass "
            f"--catalog PATH"
        )
    mlflow_url = mlflow_url or os.environ.get("MLFLOW_TRACKING_URI") or local.tracking_uri
    if store_url is None:
        store_url = os.environ.get(STORE_URL_ENV)
    if store_url is None and (local.state_dir / STORE_RELATIVE_PATH).exists():
        store_url = str(local.state_dir / STORE_RELATIVE_PATH)
    report = run_sync(
        catalog_path,
        mlflow_url=mlflow_url,
        kfp_url=kfp_url,
        store_url=store_url,
        users_file=users_file,
        dry_run=dry_run,
    )
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2, sort_keys=True))
        return
    for line in format_report(report):
        click.echo(line)
    archived = [project.name for project in report.archived]
    if archived:
        click.echo(
            f"archived (never deleted): {', '.join(archived)}; their MLflow data, KFP runs and monitor "
            f"history are kept"
        )
