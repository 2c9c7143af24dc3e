"""``mlops fleet``: every declared model of every project, one row each (see ``platform_components.fleet``).

Only click, pydantic (the settings), PyYAML, the standard library and, for a PostgreSQL store, psycopg2
are imported on this path: the command answers for 1,000 models in under a second (bench/bench_fleet.py).
"""

from __future__ import annotations

import os
import webbrowser
from pathlib import Path

import click

from platform_components.errors import ConfigError


@click.command("fleet")
@click.option(
    "--target",
    type=click.Choice(["local", "cluster"]),
    default="local",
    show_default=True,
    help="local: read the state dir's catalog, store and MLflow; cluster: ask the monitor (--url).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Local state folder (default: MLOPS_STATE_DIR or .mlops).",
)
@click.option(
    "--catalog",
    "catalog_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Catalog file (default: <state>/catalog.yaml).",
)
@click.option(
    "--tracking-uri", default=None, help="MLflow server (default: the local target's, http://127.0.0.1:5000)."
)
@click.option(
    "--store-url",
    default=None,
    help="Monitor store, sqlite:///path or postgresql://... (default: $MLOPS_MONITOR_STORE_URL, "
    "else <state>/monitoring/monitor.sqlite).",
)
@click.option(
    "--url",
    default=None,
    help="cluster: the monitor's base URL, e.g. http://localhost:8090 after "
    "`kubectl -n monitoring port-forward svc/model-monitor 8090`.",
)
@click.option(
    "--prometheus-url",
    default=None,
    help="Read open alerts from this Prometheus (/api/v1/alerts); default: derive them from the store.",
)
@click.option(
    "--sort",
    "sort_column",
    default="project",
    show_default=True,
    help="Column to sort by (prefix - to reverse), e.g. -realised_drop.",
)
@click.option(
    "--filter",
    "filter_expression",
    default="",
    help="KEY=VALUE[,KEY!=VALUE...], all must hold, e.g. project=credit,drift=alarm or stale=true.",
)
@click.option(
    "--now",
    type=float,
    default=None,
    help="The fleet's clock, event time in Unix seconds (default: the latest event in the store).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON on stdout.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the HTML page (table and sparklines) here.",
)
@click.option(
    "--open",
    "open_page",
    is_flag=True,
    help="Open the HTML page in a browser (writes it to <state>/reports/fleet.html without --html).",
)
def fleet_command(
    target: str,
    state_dir: Path | None,
    catalog_path: Path | None,
    tracking_uri: str | None,
    store_url: str | None,
    url: str | None,
    prometheus_url: str | None,
    sort_column: str,
    filter_expression: str,
    now: float | None,
    as_json: bool,
    html_path: Path | None,
    open_page: bool,
) -> None:
    """Show every declared model of every project: serving version, traffic, last retrain and labels,
    drift, performance against its baseline, open alerts, its policy and whether it is stale.

    A model is stale when it had no labels, no check or no retrain for longer than its project's
    `staleness` allows, or when its project's owner is not in the catalog. Models the store knows but no
    declaration names are counted in the footer ("undeclared"), not shown as rows.
    """
    from platform_components.fleet import render
    from platform_components.fleet.rows import filter_rows, parse_filter, sort_rows

    terms = parse_filter(filter_expression)
    if target == "cluster":
        fleet = _from_monitor(url, now)
        if prometheus_url:
            # The monitor need not reach Prometheus: whoever runs the command may (a port-forward).
            from platform_components.fleet.sources import prometheus_alerts

            alerts = prometheus_alerts(prometheus_url)
            for row in fleet.rows:
                row["alerts"] = alerts.get(row["model"], [])
            fleet.alerts_source = "prometheus"
    else:
        if url:
            raise ConfigError("--url is for --target cluster; leave it out for the local target")
        fleet = _local(state_dir, catalog_path, tracking_uri, store_url, prometheus_url, now)
    rows = sort_rows(filter_rows(fleet.rows, terms), sort_column)
    if html_path is not None or open_page:
        if html_path is None:
            html_path = _state(state_dir) / "reports" / "fleet.html"
        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(render.page(fleet, rows), encoding="utf-8")
        if open_page:
            webbrowser.open(html_path.resolve().as_uri())
    if as_json:
        click.echo(render.to_json(fleet, rows))
    elif html_path is None:
        click.echo(render.table(fleet, rows))
    else:
        click.echo(f"wrote {html_path} ({len(rows)} rows)", err=True)


def _state(state_dir: Path | None) -> Path:
    if state_dir is not None:
        return state_dir
    return Path(os.environ.get("MLOPS_STATE_DIR") or ".mlops")


def _local(
    state_dir: Path | None,
    catalog_path: Path | None,
    tracking_uri: str | None,
    store_url: str | None,
    prometheus_url: str | None,
    now: float | None,
):
    from platform_components.fleet.sources import collect, local_declarations
    from platform_components.fleet.store_reader import StoreConnection
    from platform_components.settings import LocalSettings

    settings = LocalSettings.from_env(**({"state_dir": state_dir} if state_dir is not None else {}))
    catalog, declared = local_declarations(settings.state_dir, catalog_path)
    location = (
        store_url
        or os.environ.get("MLOPS_MONITOR_STORE_URL")
        or settings.state_dir / "monitoring" / "monitor.sqlite"
    )
    connection = StoreConnection(location)
    try:
        return collect(
            declared,
            catalog,
            connection.reader,
            tracking_uri or settings.tracking_uri,
            prometheus_url=prometheus_url,
            now=now,
        )
    finally:
        connection.close()


def _from_monitor(url: str | None, now: float | None):
    """The rows the cluster's monitor answers on ``GET /v2/fleet``."""
    import json
    import urllib.error
    import urllib.parse
    import urllib.request

    from platform_components.fleet.rows import Fleet

    if not url:
        raise ConfigError(
            "--url: missing for --target cluster; pass the monitor's base URL, e.g. "
            "`kubectl -n monitoring port-forward svc/model-monitor 8090` then --url http://localhost:8090"
        )
    query = "" if now is None else "?" + urllib.parse.urlencode({"now": now})
    endpoint = url.rstrip("/") + "/v2/fleet" + query
    try:
        with urllib.request.urlopen(endpoint, timeout=60) as response:
            document = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise ConfigError(
            f"--url {url!r}: GET /v2/fleet answered HTTP {error.code} ({error.read()[:300]!r})"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise ConfigError(
            f"--url {url!r}: cannot read /v2/fleet ({error}); is the monitor reachable there?"
        ) from None
    return Fleet(
        document["rows"],
        document.get("now"),
        list(document.get("undeclared", {}).get("models", [])),
        document.get("alerts_source", "store"),
    )
