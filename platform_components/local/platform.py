"""``LocalPlatform``: MLflow, MLServer and the monitor service as supervised processes on one machine.

Start order: MLflow first (MLServer loads deployed models from it at start-up, the monitor logs to it),
then MLServer and the monitor side by side. ``down`` stops in reverse order and checks by PID that the
whole tree is gone. The state folder keeps the registry, so ``up`` after ``down`` finds every run,
model and alias, and re-serves what ``deployments.json`` lists.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from platform_components.errors import ConfigError, LocalTargetError, ServingError
from platform_components.local.state import StateDir
from platform_components.local.supervisor import (
    ProcessRecord,
    ProcessSpec,
    check_ports_free,
    live_process,
    log_tail,
    probe,
    read_records,
    start_process,
    stop_process,
    stop_processes,
    wait_healthy,
    write_records,
)
from platform_components.settings import LocalSettings

logger = logging.getLogger(__name__)

COMPONENTS: tuple[str, ...] = ("mlflow", "serving", "monitor")
# One uvicorn worker: the local target serves one user, and every extra worker costs ~300 MB and start-up
# time on a 2-core machine. Requests still run concurrently (the Flask app runs in a thread pool).
MLFLOW_WORKERS = 1
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# MLflow numbers registered model versions 1, 2, 3, ...
_VERSION = re.compile(r"^[1-9][0-9]{0,17}$")

ProgressCallback = Callable[[str], None]


@dataclass(frozen=True)
class ProcessStatus:
    """One supervised process as ``mlops status`` shows it."""

    name: str
    running: bool
    healthy: bool
    pid: int | None
    ports: list[int]
    uptime_seconds: float | None
    log_path: str
    health_url: str


@dataclass(frozen=True)
class Deployment:
    """A model alias served by the local MLServer.

    Attributes:
        name: Registered model name, also the MLServer model name.
        version: The registry version being served.
        model_uri: ``models:/<name>/<version>``.
        url: The V2 inference endpoint of this model.
        alias: The alias that was resolved to ``version`` at deploy time; empty when the version was
            deployed by number (``deploy_version``, the loop's deployer).
        deployed_at: Unix seconds.
    """

    name: str
    version: str
    model_uri: str
    url: str
    alias: str = "champion"
    deployed_at: float = 0.0


@dataclass(frozen=True)
class Endpoints:
    """The endpoints contract of the local target (the same names as the Kubernetes target's)."""

    tracking_uri: str
    inference_url: str
    monitor_url: str
    metrics_url: str
    mlflow_ui_url: str


@dataclass(frozen=True)
class PlatformStatus:
    """Every supervised process and every deployment.

    Attributes:
        already_running: After ``up``: the processes that were running before the call.
    """

    state_dir: str
    processes: list[ProcessStatus]
    deployments: list[Deployment]
    endpoints: Endpoints
    already_running: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return bool(self.processes) and all(process.healthy for process in self.processes)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["healthy"] = self.healthy
        return data


@dataclass(frozen=True)
class DownResult:
    """What ``down`` stopped: ``{process name: signalled PIDs}`` (empty list: it was not running)."""

    stopped: dict[str, list[int]]


class LocalPlatform:
    """The local target.

    Args:
        settings: Ports, host, state dir and start-up timeout.
        components: Which processes to run, in start order; all of :data:`COMPONENTS` by default.
        progress: Called with one line of progress while waiting (the CLI prints them).
    """

    def __init__(
        self,
        settings: LocalSettings,
        *,
        components: Sequence[str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        chosen = tuple(COMPONENTS if components is None else components)
        unknown = [name for name in chosen if name not in COMPONENTS]
        if unknown:
            raise ConfigError(f"components: unknown {unknown}; choose from {list(COMPONENTS)}")
        self.settings = settings
        self.components = tuple(name for name in COMPONENTS if name in chosen)
        self.state = StateDir.at(settings.state_dir)
        self._progress = progress
        _check_distinct_ports(settings, self.components)

    @classmethod
    def attach(
        cls,
        state_dir: Path,
        *,
        components: Sequence[str] | None = None,
        progress: ProgressCallback | None = None,
        **overrides: object,
    ) -> LocalPlatform:
        """The platform that ``up`` started in ``state_dir``, with the ports it was started with.

        Precedence: explicit ``overrides`` > the settings recorded by ``up`` > ``MLOPS_*`` variables.
        """
        state = StateDir.at(state_dir)
        recorded = state.read_settings() or {}
        values = {**recorded, **{key: value for key, value in overrides.items() if value is not None}}
        values["state_dir"] = state.root
        settings = LocalSettings.from_env(**values)
        return cls(settings, components=components, progress=progress)

    # --- public API -----------------------------------------------------------------------------------

    def endpoints(self) -> Endpoints:
        settings = self.settings
        return Endpoints(
            tracking_uri=settings.tracking_uri,
            inference_url=settings.inference_url,
            monitor_url=settings.monitor_url,
            metrics_url=f"http://{settings.host}:{settings.serving_metrics_port}/metrics",
            mlflow_ui_url=f"{settings.tracking_uri}/",
        )

    def up(self) -> PlatformStatus:
        """Start what is not running, wait for health, re-serve recorded deployments (idempotent).

        Raises:
            LocalTargetError: a port is taken (before anything starts), or a process failed to become
                healthy (with its log tail; everything this call started is stopped again).
        """
        with self.state.lock():
            self.state.create()
            records = read_records(self.state.processes_file)
            already_running = [name for name in self.components if self._is_running(records.get(name))]
            for name in list(records):
                if not self._is_running(records[name]):
                    # A crashed leader may have left helpers in its session: clear them before restart.
                    stop_process(records.pop(name))
            write_records(self.state.processes_file, records)
            if already_running:
                self._adopt_recorded_settings()
            else:
                self.state.write_settings(self.settings.model_dump(mode="json"))
            missing = [name for name in self.components if name not in already_running]
            if already_running:
                self._say(f"already running: {', '.join(already_running)}")
            if missing:
                self._start(missing, records)
            if "serving" in self.components:
                self._reserve_deployments()
        status = self.status()
        return PlatformStatus(
            state_dir=status.state_dir,
            processes=status.processes,
            deployments=status.deployments,
            endpoints=status.endpoints,
            already_running=already_running,
        )

    def down(self) -> DownResult:
        """Stop every recorded process and its whole tree; verified by PID.

        Raises:
            LocalTargetError: a process survived SIGKILL.
        """
        with self.state.lock():
            records = read_records(self.state.processes_file)
            order = [name for name in reversed(COMPONENTS) if name in records]
            order += [name for name in records if name not in order]
            if order:
                self._say(f"stopping {', '.join(f'{name} (PID {records[name].pid})' for name in order)}")
            stopped = stop_processes([records[name] for name in order])
            self.state.processes_file.unlink(missing_ok=True)
        return DownResult(stopped=stopped)

    def status(self) -> PlatformStatus:
        """Every component: PID, ports, health, uptime, log path; and the recorded deployments."""
        records = read_records(self.state.processes_file)
        now = time.time()
        processes = []
        for name in self.components:
            record = records.get(name)
            live = live_process(record) if record else None
            processes.append(
                ProcessStatus(
                    name=name,
                    running=live is not None,
                    healthy=live is not None and probe(record.health_url),
                    pid=record.pid if live is not None else None,
                    ports=record.ports if record else self._ports(name),
                    uptime_seconds=round(now - record.create_time, 1) if live is not None else None,
                    log_path=str(self.state.logs_dir / f"{name}.log"),
                    health_url=record.health_url if record else self._health_url(name),
                )
            )
        return PlatformStatus(
            state_dir=str(self.state.root),
            processes=processes,
            deployments=[self._deployment(item) for item in self.state.read_deployments().values()],
            endpoints=self.endpoints(),
        )

    def deploy(self, model_name: str, alias: str = "champion") -> Deployment:
        """Serve the version that ``alias`` points to and record it so ``up`` re-serves it.

        Raises:
            ServingError: the model or alias does not exist (lists what does), or the load failed.
            LocalTargetError: the platform is not running.
        """
        _check_model_name(model_name)
        if not alias or not re.match(r"^[A-Za-z0-9_-]+$", alias):
            raise ServingError(f"alias {alias!r} is not a valid alias; e.g. --alias champion")
        with self.state.lock():
            self._require_running()
            version = resolve_alias(self.settings.tracking_uri, model_name, alias)
            self._say(f"deploying {model_name}@{alias} -> version {version}")
            return self._deploy_locked(model_name, model_name, version, alias=alias)

    def deploy_version(
        self, model_name: str, version: str, *, registered_model: str | None = None
    ) -> Deployment:
        """Serve ``version`` of ``registered_model`` (default: ``model_name``) as ``model_name``; record it.

        The loop's deployer calls this with the version it resolved the alias to: the switch is the same
        as ``deploy``'s (the new version loads completely before it takes traffic; no request fails).

        Raises:
            ServingError: the model name or version is not valid, the version is not in the registry, or
                the load failed (the previous version keeps serving).
            LocalTargetError: the platform is not running.
        """
        _check_model_name(model_name)
        registered = model_name if registered_model is None else registered_model
        version = str(version).strip()
        if not _VERSION.match(version):
            raise ServingError(
                f"version {version!r} of {registered!r} is not a registered model version; "
                "give the number MLflow assigned, e.g. '3'"
            )
        with self.state.lock():
            self._require_running()
            check_version_exists(self.settings.tracking_uri, registered, version)
            self._say(f"deploying {registered} version {version} as {model_name}")
            return self._deploy_locked(model_name, registered, version, alias="")

    def is_serving(self, model_name: str, version: str) -> bool:
        """Whether the serving process answers ready for ``version`` of ``model_name`` now."""
        ready_url = f"{self.settings.inference_url}/v2/models/{model_name}/versions/{version}/ready"
        return probe(ready_url)

    # --- internals ------------------------------------------------------------------------------------

    def _require_running(self) -> None:
        records = read_records(self.state.processes_file)
        for needed in ("mlflow", "serving"):
            record = records.get(needed)
            if not (self._is_running(record) and probe(record.health_url)):
                raise LocalTargetError(
                    f"{needed} is not running in {self.state.root}; start the platform with "
                    f"`mlops up --local --state-dir {self.state.root}` first"
                )

    def _deploy_locked(self, model_name: str, registered: str, version: str, *, alias: str) -> Deployment:
        """Serve and record a deployment; the caller holds the state lock and checked the platform runs."""
        deployment = Deployment(
            name=model_name,
            version=version,
            model_uri=f"models:/{registered}/{version}",
            url=f"{self.settings.inference_url}/v2/models/{model_name}/infer",
            alias=alias,
            deployed_at=time.time(),
        )
        deployments = self.state.read_deployments()
        try:
            self._serve(deployment)
        except BaseException:
            # Keep the repository equal to deployments.json: a restart must not pick up a version
            # that never loaded.
            self._restore_model_settings(model_name, deployments.get(model_name))
            raise
        deployments[model_name] = asdict(deployment)
        self.state.write_deployments(deployments)
        return deployment

    def _say(self, line: str) -> None:
        logger.info(line)
        if self._progress is not None:
            self._progress(line)

    def _adopt_recorded_settings(self) -> None:
        """Start the missing processes with the ports the running ones were started with."""
        recorded = self.state.read_settings()
        if recorded is None:
            return
        keep = {
            "state_dir": self.settings.state_dir,
            "startup_timeout_seconds": self.settings.startup_timeout_seconds,
        }
        adopted = LocalSettings.model_validate({**recorded, **keep})
        if adopted != self.settings:
            self._say(
                f"keeping the settings the running platform was started with ({self.state.settings_file})"
            )
            self.settings = adopted

    @staticmethod
    def _is_running(record: ProcessRecord | None) -> bool:
        return record is not None and live_process(record) is not None

    def _ports(self, name: str) -> list[int]:
        return sorted(self._port_settings(name))

    def _port_settings(self, name: str) -> dict[int, str]:
        settings = self.settings
        if name == "mlflow":
            return {settings.mlflow_port: "mlflow_port"}
        if name == "serving":
            return {
                settings.serving_http_port: "serving_http_port",
                settings.serving_grpc_port: "serving_grpc_port",
                settings.serving_metrics_port: "serving_metrics_port",
            }
        return {settings.monitor_port: "monitor_port"}

    def _health_url(self, name: str) -> str:
        settings = self.settings
        if name == "mlflow":
            return f"{settings.tracking_uri}/health"
        if name == "serving":
            return f"{settings.inference_url}/v2/health/live"
        return f"{settings.monitor_url}/health"

    def _spec(self, name: str) -> ProcessSpec:
        settings, state = self.settings, self.state
        common = {
            "name": name,
            "health_url": self._health_url(name),
            "ports": self._port_settings(name),
            "cwd": state.root,
        }
        if name == "mlflow":
            argv = [
                sys.executable, "-m", "mlflow", "server",
                "--backend-store-uri", f"sqlite:///{state.mlflow_db}",
                "--artifacts-destination", str(state.artifacts_dir),
                "--serve-artifacts",
                "--host", settings.host,
                "--port", str(settings.mlflow_port),
                "--workers", str(MLFLOW_WORKERS),
            ]  # fmt: skip
            # Jobs start a huey consumer and ~7 helper processes (~1.7 GB, +11 s start-up); nothing
            # on the local target uses them (toolchain.md).
            return ProcessSpec(argv=argv, env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, **common)
        if name == "serving":
            launch = _import_component("platform_components.serving.launch", "serving")
            self._sync_repository()
            # A new token for each serving process: the one it reads at start-up is the only one it takes.
            launch.create_admin_token(state.serving_admin_token_file)
            launch.write_server_settings(
                state.serving_repo,
                host=settings.host,
                http_port=settings.serving_http_port,
                grpc_port=settings.serving_grpc_port,
                metrics_port=settings.serving_metrics_port,
                admin_token_file=state.serving_admin_token_file,
            )
            argv = list(launch.server_command(state.serving_repo))
            # One OpenMP thread: on a shared 2-core machine a threaded one-row predict of a gradient-boosted
            # model took p95 138 ms instead of 9 ms (oversubscription); results are identical.
            env = {"MLFLOW_TRACKING_URI": settings.tracking_uri, "OMP_NUM_THREADS": "1"}
            return ProcessSpec(argv=argv, env=env, **common)
        service = _import_component("platform_components.monitoring.service", "monitor")
        argv = list(
            service.service_command(
                state_dir=state.root,
                host=settings.host,
                port=settings.monitor_port,
            )
        )
        return ProcessSpec(argv=argv, env={"MLFLOW_TRACKING_URI": settings.tracking_uri}, **common)

    def _start(self, names: list[str], records: dict[str, ProcessRecord]) -> None:
        specs = [self._spec(name) for name in names]
        check_ports_free(self.settings.host, specs)
        started: list[ProcessRecord] = []
        # MLflow alone first: the others talk to it as soon as they start.
        waves = [[spec for spec in specs if spec.name == "mlflow"], [s for s in specs if s.name != "mlflow"]]
        try:
            for wave in waves:
                if not wave:
                    continue
                batch = []
                for spec in wave:
                    self._say(f"starting {spec.name} (ports {sorted(spec.ports)}, log {self.state.logs_dir})")
                    record = start_process(spec, self.state.logs_dir)
                    started.append(record)
                    batch.append(record)
                    # Recorded at once, so `down` can stop it even if this process dies while waiting.
                    records[spec.name] = record
                    write_records(self.state.processes_file, records)
                wait_healthy(batch, self.settings.startup_timeout_seconds, progress=self._progress)
        except BaseException:
            for record in reversed(started):
                try:
                    stop_process(record)
                except LocalTargetError as error:
                    logger.error("cleaning up after a failed start: %s", error)
                records.pop(record.name, None)
            write_records(self.state.processes_file, records)
            raise

    def _write_model_settings(self, deployment: Deployment) -> None:
        launch = _import_component("platform_components.serving.launch", "serving")
        launch.write_model_settings(
            self.state.serving_repo,
            name=deployment.name,
            model_uri=deployment.model_uri,
            version=deployment.version,
            prediction_log_dir=self.state.predictions_dir(deployment.name),
        )

    def _restore_model_settings(self, name: str, previous: dict | None) -> None:
        if previous is not None:
            self._write_model_settings(self._deployment(previous))
            return
        settings_file = self.state.serving_repo / name / "model-settings.json"
        settings_file.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            settings_file.parent.rmdir()

    def _sync_repository(self) -> None:
        """Write model-settings for every recorded deployment before MLServer starts and loads them."""
        for item in self.state.read_deployments().values():
            self._write_model_settings(self._deployment(item))

    def _serve(self, deployment: Deployment) -> None:
        launch = _import_component("platform_components.serving.launch", "serving")
        self._write_model_settings(deployment)
        try:
            launch.reload_model(
                self.settings.inference_url,
                deployment.name,
                timeout=self.settings.startup_timeout_seconds,
                admin_token=launch.read_admin_token(self.state.serving_admin_token_file),
            )
        except Exception as error:
            # MLServer's answer is often a bare "Internal Server Error": the cause is in its log.
            log = self.state.logs_dir / "serving.log"
            raise ServingError(
                f"could not serve {deployment.model_uri}: {error}\nlast lines of {log}:\n{log_tail(log)}"
            ) from error

    def _reserve_deployments(self) -> None:
        """Make sure every recorded deployment is ready, at its recorded version.

        MLServer loads the repository at start-up (``_sync_repository`` wrote it from deployments.json);
        a model that is not ready yet, or whose load failed, is loaded again here.
        """
        for item in self.state.read_deployments().values():
            deployment = self._deployment(item)
            model_path = f"/v2/models/{deployment.name}/versions/{deployment.version}"
            ready_url = f"{self.settings.inference_url}{model_path}/ready"
            if probe(ready_url):
                continue
            self._say(f"serving {deployment.name} version {deployment.version}")
            self._serve(deployment)

    def _deployment(self, item: dict) -> Deployment:
        return Deployment(
            name=str(item["name"]),
            version=str(item["version"]),
            model_uri=str(item["model_uri"]),
            url=f"{self.settings.inference_url}/v2/models/{item['name']}/infer",
            alias=str(item.get("alias", "")),
            deployed_at=float(item.get("deployed_at", 0.0)),
        )


def _check_model_name(model_name: str) -> None:
    if not isinstance(model_name, str) or not _MODEL_NAME.match(model_name):
        raise ServingError(
            f"model name {model_name!r} is not usable as an MLServer model name; use letters, digits, "
            f"'.', '_' and '-' (e.g. credit-default)"
        )


def _import_component(module: str, component: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise LocalTargetError(
            f"the {component} component is not available ({module}: {error}); reinstall the package "
            f"with `pip install -e .[ml]`"
        ) from None


def _check_distinct_ports(settings: LocalSettings, components: Sequence[str]) -> None:
    fields = {"mlflow": ["mlflow_port"], "monitor": ["monitor_port"]}
    fields["serving"] = ["serving_http_port", "serving_grpc_port", "serving_metrics_port"]
    seen: dict[int, str] = {}
    for name in components:
        for field_name in fields[name]:
            port = getattr(settings, field_name)
            if port in seen:
                raise ConfigError(
                    f"MLOPS_{field_name.upper()}={port} is also MLOPS_{seen[port].upper()}; "
                    f"give every process its own port"
                )
            seen[port] = field_name


def _get_json(url: str, timeout: float = 10.0) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback http
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        try:
            return error.code, json.loads(error.read() or b"{}")
        except ValueError:
            return error.code, {}
    except (urllib.error.URLError, OSError) as error:
        raise LocalTargetError(f"MLflow at {url.split('/api/')[0]} is not reachable: {error}") from None


def resolve_alias(tracking_uri: str, model_name: str, alias: str) -> str:
    """The version that ``alias`` points to, read from the registry's REST API.

    Raises:
        ServingError: the model does not exist (lists the registered models) or has no such alias
            (lists its aliases).
    """
    base = f"{tracking_uri}/api/2.0/mlflow/registered-models"
    code, body = _get_json(f"{base}/get?{urllib.parse.urlencode({'name': model_name})}")
    if code == 404 or body.get("error_code") == "RESOURCE_DOES_NOT_EXIST":
        _, found = _get_json(f"{base}/search?max_results=100")
        names = sorted(model["name"] for model in found.get("registered_models", []))
        raise ServingError(
            f"registered model {model_name!r} does not exist in {tracking_uri}; registered models: "
            f"{names or 'none'} (train and register one first, e.g. with the example pipeline)"
        )
    if code != 200:
        raise ServingError(f"MLflow answered {code} for model {model_name!r}: {body}")
    aliases = {item["alias"]: str(item["version"]) for item in body["registered_model"].get("aliases", [])}
    if alias not in aliases:
        listing = ", ".join(f"{name} -> v{version}" for name, version in sorted(aliases.items()))
        raise ServingError(
            f"model {model_name!r} has no alias {alias!r}; its aliases: {listing or 'none'} "
            f"(set one with MlflowClient().set_registered_model_alias or pass --alias)"
        )
    return aliases[alias]


def check_version_exists(tracking_uri: str, model_name: str, version: str) -> None:
    """Raise unless ``version`` of ``model_name`` is in the registry (read from its REST API).

    Raises:
        ServingError: the model or the version does not exist (lists the model's versions).
    """
    base = f"{tracking_uri}/api/2.0/mlflow"
    query = urllib.parse.urlencode({"name": model_name, "version": version})
    code, body = _get_json(f"{base}/model-versions/get?{query}")
    if code == 200:
        return
    if code == 404 or body.get("error_code") == "RESOURCE_DOES_NOT_EXIST":
        search = urllib.parse.urlencode({"filter": f"name='{model_name}'", "max_results": 200})
        _, found = _get_json(f"{base}/model-versions/search?{search}")
        versions = sorted((item["version"] for item in found.get("model_versions", [])), key=int)
        raise ServingError(
            f"version {version!r} of registered model {model_name!r} does not exist in {tracking_uri}; "
            f"its versions: {versions or 'none'}"
        )
    raise ServingError(f"MLflow answered {code} for version {version!r} of {model_name!r}: {body}")
