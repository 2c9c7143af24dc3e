"""The cluster's monitor: the monitoring service plus the loop's round for every declared model.

``python -m platform_components.loop.service --state-dir /var/lib/mlops --port 8090 --tracking-uri URL
--check-interval 900 [--models /etc/mlops/models.json] [--kfp-host URL --pipeline /etc/mlops/pipeline.yaml]
[--serving-namespace seldon] [--store-url URL] [--catalog /etc/mlops/catalog.json] [--prometheus-url URL]``
serves what ``monitoring.service`` serves (feedback, ingest, ``GET /v2/fleet``,
metrics) and runs ``Loop.run_all`` over the models file (``loop/models.py``; ``MLOPS_MONITOR_MODELS``) every
``--check-interval`` seconds, keeping its state in the store ``--store-url`` or ``$MLOPS_MONITOR_STORE_URL``
names (in the cluster: the platform's PostgreSQL, from the monitor's Secret):

- retrains go to the KFP API (``--kfp-host``) with the project's compiled pipeline (``--pipeline``, mounted
  from the monitor's ConfigMap: the monitor holds no project code) in ``--experiment``; without
  ``--kfp-host`` decisions are recorded as "no pipeline runner configured";
- with ``--serving-namespace`` the round's deployer is the Seldon ``Model`` owner (``loop/seldon.py``): it
  creates each model's ``Model`` when its alias resolves and patches it when the alias moves.

Sharding: with ``--replicas N`` (``mlops:monitoring.monitor.replicas``; the StatefulSet's replicas) each pod
checks the models ``loop/shard.py`` gives its ordinal, read from its hostname ``<name>-<ordinal>``;
``--shard INDEX/COUNT`` says the share by hand. ``--window-cache-rows`` bounds the windows kept decoded in
memory across rounds (``mlops:monitoring.monitor.window_cache_rows``).

A bad models file, pipeline or flag stops start-up with exit code 2 and a message naming the flag and the
setting behind it (``mlops:monitoring.monitor.*``).
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from platform_components.errors import ConfigError
from platform_components.loop.models import MODELS_ENV, LoopModel, load_models
from platform_components.loop.round import Loop
from platform_components.loop.shard import Shard, parse_shard, shard_from_hostname
from platform_components.monitoring import service as monitoring_service
from platform_components.monitoring.store import PostgresMonitorStore
from platform_components.monitoring.window_cache import DEFAULT_MAX_ROWS, WindowCache

logger = logging.getLogger(__name__)

CATALOG_ENV = "MLOPS_MONITOR_CATALOG"


class LoopTask:
    """Background rounds: ``Loop.run_all`` over the models every ``interval`` wall-clock seconds."""

    def __init__(self, loop: Loop, models: Sequence[LoopModel], interval: float) -> None:
        self.loop, self.models, self.interval = loop, tuple(models), interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loop-rounds", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def run_once(self) -> dict[str, Any]:
        """One round of every model (each model's failure is logged and kept to itself)."""
        return self.loop.run_all(self.models)

    def _run(self) -> None:
        # The first round at once (a restarted monitor must not wait a whole interval), then every interval.
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # keep serving feedback and metrics; the next round retries
                logger.exception("loop round failed")
            if self._stop.wait(self.interval):
                return


@dataclass(frozen=True)
class RetrainFlags:
    """Where retrains go (``--kfp-host``, ``--pipeline``, ``--experiment``, ``--kfp-namespace``), checked."""

    host: str
    pipeline: Any  # a compiled IR path (the cluster's monitor) or a loaded @dsl.pipeline function
    experiment: str
    namespace: str | None


def parser() -> argparse.ArgumentParser:
    """The monitoring service's flags and the loop's (kubernetes/monitoring.py passes them)."""
    parsed = monitoring_service.parser(prog="python -m platform_components.loop.service")
    parsed.description = __doc__
    parsed.add_argument("--tracking-uri", required=True, help="MLflow tracking URI")
    parsed.add_argument(
        "--check-interval", type=float, default=900.0, help="wall-clock seconds between rounds (default 900)"
    )
    parsed.add_argument(
        "--models",
        default=None,
        help=f"models file (JSON list, schema in platform_components/loop/models.py); default: ${MODELS_ENV}",
    )
    parsed.add_argument("--kfp-host", default=None, help="KFP API URL retrains are submitted to")
    parsed.add_argument(
        "--pipeline",
        default=None,
        help="pipeline retrains submit: its compiled IR (pipeline.yaml) or path/to/pipeline.py:function",
    )
    parsed.add_argument("--experiment", default="mlops-retrain", help="KFP experiment of retrain runs")
    parsed.add_argument("--kfp-namespace", default=None, help="KFP namespace (multi-user installs)")
    parsed.add_argument(
        "--catalog",
        default=None,
        help=f"the catalog as JSON (people, teams, projects) for GET /v2/fleet; default ${CATALOG_ENV}, else "
        "catalog.json beside the models file when present",
    )
    parsed.add_argument(
        "--prometheus-url",
        default=None,
        help="Prometheus base URL GET /v2/fleet reads open alerts from (default: derived from the store)",
    )
    parsed.add_argument(
        "--serving-namespace",
        default=None,
        help="serve through Seldon Model objects in this namespace (mlops:namespaces.serving)",
    )
    parsed.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="monitor replicas sharing the models (mlops:monitoring.monitor.replicas); this pod's share "
        "comes from its StatefulSet hostname <name>-<ordinal> (default 1: every model)",
    )
    parsed.add_argument(
        "--shard",
        default=None,
        help="this replica's share as INDEX/COUNT, e.g. 0/2 (instead of --replicas and the hostname)",
    )
    parsed.add_argument(
        "--window-cache-rows",
        type=int,
        default=DEFAULT_MAX_ROWS,
        help="rows of the models' windows kept decoded across rounds, 0 for none "
        f"(mlops:monitoring.monitor.window_cache_rows; default {DEFAULT_MAX_ROWS})",
    )
    return parsed


def shard_config(arguments: argparse.Namespace, store: Any = None) -> Shard:
    """This replica's share of the models from ``--shard`` or ``--replicas`` and the hostname.

    Raises:
        ConfigError: a malformed share, a hostname without an ordinal, or more than one replica on a
            store the replicas cannot share (SQLite).
    """
    if arguments.replicas < 1:
        raise ConfigError(
            f"--replicas: {arguments.replicas} must be >= 1 (mlops:monitoring.monitor.replicas)"
        )
    shard = parse_shard(arguments.shard) if arguments.shard else shard_from_hostname(arguments.replicas)
    if shard.count > 1 and store is not None and not isinstance(store, PostgresMonitorStore):
        raise ConfigError(
            f"--replicas/--shard: {shard.count} replicas need the shared PostgreSQL store, not "
            f"{store.location} (set mlops:monitoring.monitor.store to postgresql, or run one replica)"
        )
    return shard


def startup_config(arguments: argparse.Namespace) -> tuple[tuple[LoopModel, ...], RetrainFlags | None]:
    """The models file's entries and where retrains go, from the flags.

    Raises:
        ConfigError: a flag, the models file or the pipeline is wrong (named, with the setting and the fix).
    """
    models_path = arguments.models or os.environ.get(MODELS_ENV) or None
    if not models_path:
        raise ConfigError(
            f"--models: missing and ${MODELS_ENV} is not set; point it at the models file the platform "
            "mounts (/etc/mlops/models.json)"
        )
    models = load_models(models_path)
    logger.info("watching %d model(s) from %s", len(models), models_path)
    if arguments.check_interval <= 0:
        raise ConfigError(
            f"--check-interval: {arguments.check_interval} must be > 0 seconds "
            "(mlops:monitoring.monitor.check_interval_seconds)"
        )
    if arguments.kfp_host and not arguments.pipeline:
        raise ConfigError(
            f"--pipeline: missing with --kfp-host {arguments.kfp_host!r}; pass the project's compiled "
            "pipeline (mlops:monitoring.monitor.pipeline), e.g. --pipeline /etc/mlops/pipeline.yaml"
        )
    if arguments.kfp_host:
        _check_kfp_host(arguments.kfp_host)
    if not arguments.experiment or arguments.experiment.strip() != arguments.experiment:
        raise ConfigError(
            f"--experiment: {arguments.experiment!r} is empty or padded "
            "(mlops:monitoring.monitor.experiment); use e.g. mlops-retrain"
        )
    retrain = None
    if arguments.pipeline:
        from platform_components.pipelines.runner import PipelineError, load_pipeline, pipeline_input_names

        is_ir = arguments.pipeline.endswith((".yaml", ".yml", ".json"))
        try:
            # A compiled IR needs no project code (the cluster's monitor); FILE.py:FUNCTION does.
            pipeline = arguments.pipeline if is_ir else load_pipeline(arguments.pipeline)
            inputs = pipeline_input_names(pipeline)
        except PipelineError as error:
            raise ConfigError(f"--pipeline: {error}") from None
        if "training_data_path" not in inputs:
            raise ConfigError(
                f"--pipeline: {arguments.pipeline!r} has no input 'training_data_path' (it takes "
                f"{sorted(inputs)}); a retrain passes the chosen rows there"
            )
        if not arguments.kfp_host:
            logger.warning(
                "--pipeline %s is unused without --kfp-host: retrain decisions are recorded as 'no pipeline "
                "runner configured' (set mlops:monitoring.monitor.kfp_host)",
                arguments.pipeline,
            )
        if arguments.kfp_host:
            retrain = RetrainFlags(
                arguments.kfp_host.rstrip("/"), pipeline, arguments.experiment, arguments.kfp_namespace
            )
    return models, retrain


def _check_kfp_host(host: str) -> None:
    """The rule ``settings.MonitorSettings.kfp_host`` applies, for a flag given by hand.

    Raises:
        ConfigError: not ``http(s)://host[:port]``; a path is refused too: ``kfp.Client`` appends
            ``/apis/v2beta1`` to the host, so every call would go to a wrong URL.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"--kfp-host: {host!r} is not a URL (mlops:monitoring.monitor.kfp_host); "
            "use e.g. http://ml-pipeline.kubeflow.svc.cluster.local:8888"
        )
    if parts.path not in ("", "/"):
        raise ConfigError(
            f"--kfp-host: {host!r} is not the KFP API's base URL, http(s)://host[:port] without a path "
            "(mlops:monitoring.monitor.kfp_host); use e.g. http://ml-pipeline.kubeflow.svc.cluster.local:8888"
        )


def build_loop(arguments: argparse.Namespace, retrain: RetrainFlags | None, store: Any) -> Loop:
    """The round's retrainer and deployer from the flags."""
    retrainer = None
    if retrain is not None:
        from platform_components.loop.retrain import KfpRetrainer

        retrainer = KfpRetrainer(
            retrain.host,
            retrain.pipeline,
            tracking_uri=arguments.tracking_uri,
            experiment=retrain.experiment,
            namespace=retrain.namespace,
        )
    deployer = None
    if arguments.serving_namespace:
        from platform_components.loop.seldon import SeldonDeployer, kubernetes_api, mlflow_download_uri

        try:
            api = kubernetes_api()
        except Exception as error:  # kubernetes.config.ConfigException: no pod token and no kubeconfig
            raise ConfigError(
                f"--serving-namespace: cannot reach the Kubernetes API to serve models in "
                f"{arguments.serving_namespace!r} ({type(error).__name__}: {error}); run the monitor in its "
                "pod (its ServiceAccount), or set KUBECONFIG, or leave the flag out when serving is not the "
                "loop's"
            ) from None
        deployer = SeldonDeployer(
            api, arguments.serving_namespace, mlflow_download_uri(arguments.tracking_uri)
        )
    if arguments.window_cache_rows < 0:
        raise ConfigError(
            f"--window-cache-rows: {arguments.window_cache_rows} must be >= 0 "
            "(mlops:monitoring.monitor.window_cache_rows; 0 turns the cache off)"
        )
    return Loop(
        store,
        arguments.tracking_uri,
        retrainer=retrainer,
        deployer=deployer,
        cache=WindowCache(arguments.window_cache_rows) if arguments.window_cache_rows else None,
        shard=shard_config(arguments, store),
    )


def create_app(arguments: argparse.Namespace) -> Any:
    """The monitoring application with the loop's rounds as its background task.

    Raises:
        ConfigError: see ``startup_config``; or ``--serving-namespace`` without a reachable Kubernetes
            configuration.
    """
    from pathlib import Path

    models, retrain = startup_config(arguments)
    # The cluster's replicas share one PostgreSQL database ($MLOPS_MONITOR_STORE_URL, from a Secret).
    store = monitoring_service.open_service_store(arguments)
    try:
        loop = build_loop(arguments, retrain, store)
    except BaseException:
        store.close()
        raise
    task = LoopTask(loop, models, arguments.check_interval)
    from platform_components.monitoring.model_info import ModelInfoCollector

    fleet, catalog = fleet_provider(arguments, models, store)
    app = monitoring_service.create_app(
        Path(arguments.state_dir),
        tasks=[task],
        store=store,
        fleet=fleet,
        collectors=[ModelInfoCollector(models, catalog)],
    )
    app.state.loop_task = task
    return app


def fleet_provider(arguments: argparse.Namespace, models: Sequence[LoopModel], store: Any) -> tuple[Any, Any]:
    """What answers ``GET /v2/fleet``: the models file's models, the catalog, the store and the registry.

    Returns:
        ``rows(now) -> dict`` (the route's answer) and ``catalog() -> CatalogSettings`` (also what
        ``mlops_model_info`` labels its series with).

    The catalog is ``--catalog``, ``$MLOPS_MONITOR_CATALOG``, or ``catalog.json`` beside the models file
    (the monitor's ConfigMap holds both: ``kubernetes/monitoring.py``); without one the rows still come,
    with no owners.

    Raises:
        ConfigError: the catalog file is unreadable or invalid (named).
    """
    from pathlib import Path

    from platform_components.fleet.sources import (
        CATALOG_FILE,
        cluster_declarations,
        collect,
        parse_catalog_json,
    )
    from platform_components.fleet.store_reader import reader_for_store
    from platform_components.settings import CatalogSettings

    chosen = arguments.catalog or os.environ.get(CATALOG_ENV) or None
    models_path = arguments.models or os.environ.get(MODELS_ENV)
    if chosen is None and models_path and (Path(models_path).parent / CATALOG_FILE).is_file():
        chosen = str(Path(models_path).parent / CATALOG_FILE)
    reader = reader_for_store(store)
    cached: dict[str, Any] = {}

    def catalog() -> CatalogSettings:
        # Read again when the file changes: the kubelet updates a mounted ConfigMap in place.
        if chosen is None:
            return CatalogSettings()
        try:
            stamp = os.stat(chosen).st_mtime_ns
            if cached.get("stamp") != stamp:
                text = Path(chosen).read_text(encoding="utf-8")
                cached.update(stamp=stamp, catalog=parse_catalog_json(text, source=chosen))
        except OSError as error:
            raise ConfigError(f"--catalog {chosen!r}: cannot read it ({error.strerror or error})") from None
        return cached["catalog"]

    catalog()  # a bad catalog stops start-up, like a bad models file
    declared = cluster_declarations(models)

    def rows(now: float | None) -> dict[str, Any]:
        fleet = collect(
            declared,
            catalog(),
            reader,
            arguments.tracking_uri,
            prometheus_url=arguments.prometheus_url,
            now=now,
        )
        return fleet.to_dict()

    return rows, catalog


def main(argv: list[str] | None = None) -> None:
    """Start the monitor with the loop (see the module docstring)."""
    parsed = parser()
    arguments = parsed.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app(arguments)
    except ConfigError as error:
        parsed.exit(2, f"error: {error}\n")
    monitoring_service.serve(app, arguments)


if __name__ == "__main__":
    main()
