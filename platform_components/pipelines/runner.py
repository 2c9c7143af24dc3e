"""Run KFP v2 pipelines locally (``kfp.local``), compile them to IR YAML, submit them to a cluster."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import logging
import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from platform_components.errors import PlatformError

logger = logging.getLogger(__name__)

# kfp.local serialises global state (kfp.local.init); one local run at a time per process.
_LOCAL_RUN_LOCK = threading.Lock()
_TASK_HEADER = re.compile(r"Executing task '([^']+)'")
_TASK_FAILED = re.compile(r"Task '([^']+)' finished with status FAILURE")


class PipelineError(PlatformError):
    """A pipeline could not be loaded, compiled, run or submitted; the message names the step and cause."""

    def __init__(self, message: str, *, task: str | None = None, log: str = "") -> None:
        super().__init__(message)
        self.task = task
        self.log = log


@dataclass(frozen=True)
class LocalRun:
    """The result of ``run_local``.

    Attributes:
        pipeline_name: The pipeline's name in its IR.
        pipeline_root: Absolute folder under which kfp.local wrote every task's artifacts.
        run_dir: This run's folder (``<pipeline_root>/<pipeline>-<timestamp>``), when it could be found.
        outputs: The pipeline's outputs by name (a pipeline returning one value has ``"Output"``).
        task_outputs: Task name -> its output parameters and output artifact URIs, read from the run folder.
        duration_seconds: Wall time of the run.
        log: Everything the run printed (kfp.local's progress and each step's output).
    """

    pipeline_name: str
    pipeline_root: Path
    run_dir: Path | None
    outputs: dict[str, Any]
    task_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    duration_seconds: float = 0.0
    log: str = ""

    @property
    def output(self) -> Any:
        """The single output of a pipeline that returns one value."""
        if set(self.outputs) != {"Output"}:
            raise PipelineError(
                f"pipeline {self.pipeline_name!r} has outputs {sorted(self.outputs)}, not one; "
                "read LocalRun.outputs[name] instead"
            )
        return self.outputs["Output"]


def load_pipeline(spec: str) -> Any:
    """Import a pipeline function from ``path/to/file.py:name`` or ``package.module:name``.

    A file inside a package (folders with ``__init__.py``) is imported under its dotted name with the
    package root put on ``sys.path``, so its own absolute imports work.

    Raises:
        PipelineError: the spec is malformed, the file or attribute is missing, or it is not a pipeline.
    """
    target, separator, attribute = spec.rpartition(":")
    if not separator or not target or not attribute:
        raise PipelineError(
            f"pipeline {spec!r} must look like path/to/pipeline.py:function or package.module:function"
        )
    if target.endswith(".py") or os.sep in target or "/" in target:
        path = Path(target).resolve()
        if not path.is_file():
            raise PipelineError(f"pipeline file {target!r} does not exist (resolved to {path})")
        root = _package_root(path)
        module_name = ".".join(path.relative_to(root).with_suffix("").parts)
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
    else:
        module_name = target
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise PipelineError(f"cannot import {module_name!r} for pipeline {spec!r}: {error}") from error
    try:
        pipeline_func = getattr(module, attribute)
    except AttributeError:
        raise PipelineError(
            f"{module_name!r} has no attribute {attribute!r}; pipelines there: {_pipelines_in(module)}"
        ) from None
    if not _is_pipeline(pipeline_func):
        raise PipelineError(f"{spec!r} is a {type(pipeline_func).__name__}, not a @dsl.pipeline function")
    return pipeline_func


def project_root_of(pipeline_func: Any) -> Path | None:
    """The folder to put on ``PYTHONPATH`` so a step can import the pipeline's own package."""
    # A GraphComponent's own __module__ is kfp's; the decorated function knows where the project lives.
    function = getattr(pipeline_func, "pipeline_func", pipeline_func)
    module = sys.modules.get(getattr(function, "__module__", None) or "")
    module_file = getattr(module, "__file__", None)
    return _package_root(Path(module_file).resolve()) if module_file else None


def coerce_arguments(pipeline_func: Any, raw: Mapping[str, str]) -> dict[str, Any]:
    """Turn ``key=value`` strings into the pipeline's parameter types; reject unknown or missing keys.

    Raises:
        PipelineError: naming the parameter, the value and the expected type.
    """
    inputs = pipeline_func.component_spec.inputs or {}
    unknown = sorted(set(raw) - set(inputs))
    if unknown:
        raise PipelineError(
            f"unknown pipeline argument(s) {unknown}; {pipeline_func.name!r} takes {sorted(inputs)}"
        )
    arguments: dict[str, Any] = {}
    for name, text in raw.items():
        kind = inputs[name].type
        try:
            arguments[name] = _coerce(text, kind)
        except (ValueError, json.JSONDecodeError):
            raise PipelineError(
                f"argument {name}={text!r} is not a valid {kind}; e.g. {_EXAMPLES.get(kind, 'a value')}"
            ) from None
    missing = sorted(name for name, spec in inputs.items() if not spec.optional and name not in arguments)
    if missing:
        raise PipelineError(f"missing required pipeline argument(s) {missing}: pass --arg {missing[0]}=VALUE")
    return arguments


def compile_pipeline(pipeline_func: Any, path: Path | str) -> Path:
    """Compile ``pipeline_func`` to KFP IR YAML at ``path`` (parents created); returns the path."""
    from kfp import compiler

    if not _is_pipeline(pipeline_func):
        raise PipelineError(f"{pipeline_func!r} is not a @dsl.pipeline function; cannot compile it")
    target = Path(path)
    if target.suffix not in (".yaml", ".yml", ".json"):
        raise PipelineError(f"output path {str(target)!r} must end in .yaml, .yml or .json")
    target.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(pipeline_func, str(target))
    logger.info("compiled pipeline %s to %s", pipeline_func.name, target)
    return target


def run_local(
    pipeline_func: Any,
    arguments: dict[str, Any],
    *,
    pipeline_root: Path,
    echo: TextIO | None = None,
) -> LocalRun:
    """Run a pipeline on this machine with ``kfp.local`` and ``SubprocessRunner(use_venv=False)``.

    Steps run as subprocesses of this interpreter's environment (no venv, no pip install), one after the
    other. The pipeline's project root is put on ``PYTHONPATH`` so steps can import the project's modules.

    Args:
        pipeline_func: A ``@dsl.pipeline`` function.
        arguments: Pipeline parameters by name.
        pipeline_root: Folder for the run's artifacts; made absolute (kfp.local requires it).
        echo: Also stream the run's output here (e.g. ``sys.stderr`` in a CLI); it is always captured.

    Returns:
        The run's outputs, per-task outputs and log.

    Raises:
        PipelineError: a step failed; the message holds that step's name and the tail of its log.
    """
    from kfp import local

    if not _is_pipeline(pipeline_func):
        raise PipelineError(f"{pipeline_func!r} is not a @dsl.pipeline function; cannot run it")
    _check_argument_names(pipeline_func, arguments)
    root = Path(pipeline_root).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    project_root = project_root_of(pipeline_func)
    buffer = _Tee(echo)
    started = time.monotonic()
    before = {child.name for child in root.iterdir()}
    with _LOCAL_RUN_LOCK, _pythonpath(project_root), warnings.catch_warnings():
        # SubprocessRunner warns when the cluster image name lacks "python"; with use_venv=False the image
        # is never used locally, so the warning is noise.
        warnings.filterwarnings("ignore", message=".*custom or non-Python base image.*")
        local.init(
            runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root), raise_on_error=True
        )
        try:
            with contextlib.redirect_stdout(buffer):
                task = pipeline_func(**arguments)
        except RuntimeError as error:
            log = _strip_ansi(buffer.getvalue())
            failed_task = _failed_task(_strip_ansi(str(error)), log)
            tail = _task_log_tail(log, failed_task)
            cause = _last_exception_line(tail) or _strip_ansi(str(error))
            log_file = _save_log(_new_run_dir(root, before, pipeline_func.name), log)
            raise PipelineError(
                f"pipeline {pipeline_func.name!r} failed in step {failed_task or '?'}: {cause}\n"
                f"full log: {log_file or 'not saved'}\n"
                f"--- last lines of step {failed_task or '?'} ---\n{tail}",
                task=failed_task,
                log=log,
            ) from None
    duration = time.monotonic() - started
    run_dir = _new_run_dir(root, before, pipeline_func.name)
    outputs = dict(task.outputs) if getattr(task, "outputs", None) else {}
    log = _strip_ansi(buffer.getvalue())
    _save_log(run_dir, log)
    logger.info("pipeline %s finished in %.1f s (%s)", pipeline_func.name, duration, run_dir)
    return LocalRun(
        pipeline_name=pipeline_func.name,
        pipeline_root=root,
        run_dir=run_dir,
        outputs=outputs,
        task_outputs=_read_task_outputs(run_dir) if run_dir else {},
        duration_seconds=duration,
        log=log,
    )


# --- the cluster path: the KFP v2beta1 API --------------------------------------------------------------

# The settings a cluster retrain reads; errors name them so the fix is one setting away.
KFP_HOST_SETTING = "mlops:monitoring.monitor.kfp_host"
KFP_PIPELINE_SETTING = "mlops:monitoring.monitor.pipeline"
KFP_EXPERIMENT_SETTING = "mlops:monitoring.monitor.experiment"

# The v2beta1 RuntimeState names (kubeflow/pipelines backend/api/v2beta1/run.proto@2.17.0) -> ours.
# RUNTIME_STATE_UNSPECIFIED is "not used" upstream; a run the server has not reported on yet is pending.
RUN_STATES: dict[str, str] = {
    "RUNTIME_STATE_UNSPECIFIED": "pending",
    "PENDING": "pending",
    "RUNNING": "running",
    "SUCCEEDED": "succeeded",
    "SKIPPED": "skipped",
    "FAILED": "failed",
    "CANCELING": "canceling",
    "CANCELED": "canceled",
    "PAUSED": "paused",
}
FINAL_RUN_STATES = frozenset({"succeeded", "skipped", "failed", "canceled"})
# Versions the platform uploads carry this description; it is how the same IR is found again.
IR_MARKER_PREFIX = "mlops-platform ir sha256:"
_HEALTHZ_TIMEOUT_SECONDS = 10.0
_EPOCH = 0.0


@dataclass(frozen=True)
class SubmittedRun:
    """What ``submit_run`` created or reused on the KFP API server.

    Attributes:
        run_id: The new run.
        pipeline_id: The pipeline (found by name, or uploaded).
        pipeline_version_id: The version the run uses (found by its IR hash, or uploaded).
        experiment_id: The experiment (found by name, or created).
        version_uploaded: True when this call uploaded the IR (a new pipeline or a new version).
    """

    run_id: str
    pipeline_id: str
    pipeline_version_id: str
    experiment_id: str
    version_uploaded: bool


@dataclass(frozen=True)
class RunStatus:
    """A KFP run's state in our words.

    Attributes:
        run_id: The run.
        state: ``pending``, ``running``, ``succeeded``, ``skipped``, ``failed``, ``canceling``, ``canceled``,
            ``paused`` or ``unknown`` (``RUN_STATES``).
        api_state: The v2beta1 RuntimeState name as the server sent it (None when it sent none).
        error: Why the run failed, was canceled or could not be read; None otherwise.
        failed_tasks: Display names of the run's tasks in state FAILED.
        finished_at: Epoch seconds of completion, None while it runs.
    """

    run_id: str
    state: str
    api_state: str | None
    error: str | None = None
    failed_tasks: tuple[str, ...] = ()
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        """True once the run reached a final state (succeeded, skipped, failed, canceled)."""
        return self.state in FINAL_RUN_STATES


def submit(
    host: str,
    pipeline: Any,
    arguments: dict[str, Any],
    *,
    experiment: str,
    run_name: str | None = None,
    namespace: str | None = None,
    pipeline_name: str | None = None,
) -> str:
    """Submit a run to a Kubeflow Pipelines API server and return its run id (see ``submit_run``)."""
    return submit_run(
        host,
        pipeline,
        arguments,
        experiment=experiment,
        run_name=run_name,
        namespace=namespace,
        pipeline_name=pipeline_name,
    ).run_id


def submit_run(
    host: str,
    pipeline: Any,
    arguments: dict[str, Any],
    *,
    experiment: str,
    run_name: str | None = None,
    namespace: str | None = None,
    pipeline_name: str | None = None,
) -> SubmittedRun:
    """Make sure the pipeline and its version exist, make sure the experiment exists, and start a run.

    The compiled IR is uploaded once and reused: a pipeline is found by name, and a version of it by the
    SHA-256 of the IR, kept in the version's description (``IR_MARKER_PREFIX``). The same IR submitted again
    reuses its version; a changed IR becomes a new version named ``<pipeline>-<hash[:12]>``. A pipeline given
    by name only runs its latest version.

    The KFP API of a standalone install is unauthenticated inside the cluster (single-user); reach it through
    its Service (``http://ml-pipeline.kubeflow.svc.cluster.local:8888``).

    Args:
        host: The KFP API URL.
        pipeline: A ``@dsl.pipeline`` function (compiled here), the path of its compiled IR YAML
            (``.yaml``/``.yml``/``.json``), or the name of a pipeline already uploaded to the server.
        arguments: Pipeline parameters by name.
        experiment: The KFP experiment, created when missing.
        run_name: The run's display name (default: ``<pipeline> <UTC time>``).
        namespace: KFP namespace (multi-user installs); None for standalone.
        pipeline_name: The pipeline's name on the server (default: the IR's ``pipelineInfo.name``).

    Raises:
        PipelineError: the server cannot be reached or refuses a step; the message names the host, the
            pipeline, what was refused and the setting to fix. A 4xx carries the server's message, not a
            stack trace.
    """
    _check_host(host)
    if not experiment or experiment.isspace():
        raise PipelineError(
            f"experiment {experiment!r} is empty; set {KFP_EXPERIMENT_SETTING}, e.g. mlops-retrain"
        )
    with contextlib.ExitStack() as stack:
        source = _pipeline_source(pipeline, pipeline_name, stack)
        call = _KfpCalls(host, source.name)
        client = call.client(namespace)
        if source.ir_path is None:
            pipeline_id, version_id = call.latest_version(client)
            uploaded = False
        else:
            pipeline_id, version_id, uploaded = call.ensure_version(client, source.ir_path, source.digest)
        experiment_id = call.ensure_experiment(client, experiment, namespace)
        name = run_name or f"{source.name} {time.strftime('%Y-%m-%d %H-%M-%S', time.gmtime())}"
        run = call.run(
            "create the run",
            f"check the arguments against the pipeline's inputs and {KFP_PIPELINE_SETTING}",
            client.run_pipeline,
            experiment_id=experiment_id,
            job_name=name,
            params=arguments,
            pipeline_id=pipeline_id,
            version_id=version_id,
        )
    logger.info(
        "submitted run %s of %s (version %s) to %s, experiment %s",
        run.run_id,
        source.name,
        version_id,
        host,
        experiment,
    )
    return SubmittedRun(str(run.run_id), pipeline_id, version_id, experiment_id, uploaded)


def run_status(host: str, run_id: str, *, namespace: str | None = None) -> RunStatus:
    """Read a run from the KFP API and say where it is, with the error message when it failed.

    A failure's reason is taken from the run's ``error``, else from the last ``state_history`` entry that
    carries one, else from the names of its FAILED tasks (all the 2.17.0 server itself reports).

    Raises:
        PipelineError: the server cannot be reached, or has no such run (the message names host and run).
    """
    _check_host(host)
    call = _KfpCalls(host, None)
    client = call.client(namespace)
    run = call.run(
        f"read run {run_id}",
        f"the run may have been deleted, or {KFP_HOST_SETTING} points at another server",
        client.get_run,
        run_id,
    )
    api_state = str(run.state) if run.state is not None else None
    if api_state is None and run.error is None:
        # protojson omits an enum's zero value (EmitUnpopulated: false): no state is UNSPECIFIED.
        api_state = "RUNTIME_STATE_UNSPECIFIED"
    state = RUN_STATES.get(api_state or "", "unknown")
    failed_tasks = tuple(
        str(task.display_name or task.task_id)
        for task in (run.run_details.task_details or [] if run.run_details else [])
        if task.state == "FAILED"
    )
    error = _run_error(run)
    if state == "failed" and error is None:
        error = (
            f"step(s) {', '.join(failed_tasks)} failed"
            if failed_tasks
            else f"the run failed without a message; see {host}/#/runs/details/{run_id}"
        )
    if state == "canceled" and error is None:
        error = "the run was canceled"
    if state == "unknown" and error is None:
        error = f"the server sent state {api_state!r}, which v2beta1 does not define"
    finished_at = run.finished_at.timestamp() if run.finished_at is not None else None
    return RunStatus(
        run_id=str(run.run_id or run_id),
        state=state,
        api_state=api_state,
        error=error if state in ("failed", "canceled", "unknown") or run.error is not None else None,
        failed_tasks=failed_tasks,
        finished_at=finished_at if finished_at and finished_at > _EPOCH else None,
    )


def pipeline_input_names(pipeline: Any) -> frozenset[str]:
    """The inputs a pipeline takes, from a ``@dsl.pipeline`` function or its compiled IR file.

    A cluster retrainer that holds only the IR (the monitor image carries no project code) uses this to
    decide which arguments to pass, as ``component_spec.inputs`` does for a function.

    Raises:
        PipelineError: the file is missing or not a compiled KFP v2 pipeline.
    """
    if _is_pipeline(pipeline):
        return frozenset(pipeline.component_spec.inputs or {})
    path = Path(pipeline)
    if not path.is_file():
        raise PipelineError(
            f"pipeline IR {str(path)!r} does not exist; set {KFP_PIPELINE_SETTING} to its path"
        )
    spec = _ir_documents(path.read_bytes(), path)[0]
    inputs = (spec.get("root") or {}).get("inputDefinitions") or {}
    return frozenset({**(inputs.get("parameters") or {}), **(inputs.get("artifacts") or {})})


@dataclass(frozen=True)
class _PipelineSource:
    name: str
    ir_path: Path | None
    digest: str


def _pipeline_source(
    pipeline: Any, pipeline_name: str | None, stack: contextlib.ExitStack
) -> _PipelineSource:
    """What ``pipeline`` names: an IR to upload (compiled here from a function) or an uploaded pipeline."""
    import hashlib

    if _is_pipeline(pipeline):
        folder = Path(stack.enter_context(_temporary_directory()))
        path = compile_pipeline(pipeline, folder / "pipeline.yaml")
    elif isinstance(pipeline, os.PathLike) or (
        isinstance(pipeline, str) and pipeline.endswith((".yaml", ".yml", ".json"))
    ):
        path = Path(pipeline)
        if not path.is_file():
            raise PipelineError(
                f"pipeline IR {str(path)!r} does not exist; compile it (mlops pipelines compile) and set "
                f"{KFP_PIPELINE_SETTING} to its path"
            )
    elif isinstance(pipeline, str) and pipeline.strip():
        return _PipelineSource(pipeline_name or pipeline, None, "")
    else:
        raise PipelineError(
            f"pipeline {pipeline!r} is neither a @dsl.pipeline function, a compiled IR path nor a pipeline "
            f"name; set {KFP_PIPELINE_SETTING}"
        )
    content = path.read_bytes()
    name = pipeline_name or _ir_name(content, path)
    return _PipelineSource(name, path, hashlib.sha256(content).hexdigest())


def _ir_name(content: bytes, path: Path) -> str:
    name = (_ir_documents(content, path)[0].get("pipelineInfo") or {}).get("name")
    return str(name)


def _ir_documents(content: bytes, path: Path) -> list[dict[str, Any]]:
    """The IR's documents, the pipeline spec (the one with ``pipelineInfo.name``) first."""
    import yaml

    try:
        # libyaml's loader where built (the example's IR takes 0.4 s to parse in pure Python).
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        documents = [
            document for document in yaml.load_all(content, Loader=loader) if isinstance(document, dict)
        ]
    except yaml.YAMLError as error:
        raise PipelineError(f"pipeline IR {str(path)!r} is not YAML: {error}") from None
    specs = [document for document in documents if (document.get("pipelineInfo") or {}).get("name")]
    if not specs:
        raise PipelineError(
            f"pipeline IR {str(path)!r} has no pipelineInfo.name; is it a compiled KFP v2 pipeline? "
            f"(set {KFP_PIPELINE_SETTING} to the file the compiler wrote)"
        )
    return specs + [document for document in documents if document is not specs[0]]


@contextlib.contextmanager
def _temporary_directory() -> Iterator[str]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mlops-kfp-") as folder:
        yield folder


def _check_host(host: str) -> None:
    if not isinstance(host, str) or not host.startswith(("http://", "https://")):
        raise PipelineError(
            f"host {host!r} must be a URL such as http://ml-pipeline.kubeflow.svc.cluster.local:8888; "
            f"set {KFP_HOST_SETTING}"
        )


def _run_error(run: Any) -> str | None:
    if run.error is not None and (run.error.message or run.error.details):
        return str(run.error.message or run.error.details)
    for status in reversed(run.state_history or []):
        if status.error is not None and status.error.message:
            return str(status.error.message)
    return None


class _KfpCalls:
    """One conversation with a KFP API server: every call's failure becomes a PipelineError that names the
    host, the pipeline and the setting to fix."""

    def __init__(self, host: str, pipeline: str | None) -> None:
        self.host, self.pipeline = host.rstrip("/"), pipeline

    def client(self, namespace: str | None) -> Any:
        """A ``kfp.Client`` after a healthz check of our own.

        kfp.Client checks healthz itself and retries an HTTP error five times, five seconds apart; one quick
        check first turns a wrong host into one clear error instead.
        """
        import httpx
        import kfp

        url = f"{self.host}/apis/v2beta1/healthz"
        try:
            response = httpx.get(url, timeout=_HEALTHZ_TIMEOUT_SECONDS)
        except httpx.HTTPError as error:
            doing = f"submitting {self.pipeline!r} to {self.host} failed: " if self.pipeline else ""
            raise PipelineError(
                f"{doing}cannot reach the KFP API at {self.host} ({type(error).__name__}: {error}); "
                f"set {KFP_HOST_SETTING} to the ml-pipeline Service URL, "
                "e.g. http://ml-pipeline.kubeflow.svc.cluster.local:8888"
            ) from error
        if response.status_code != 200:
            raise PipelineError(
                f"{url} answered HTTP {response.status_code}, not the KFP API's healthz; "
                f"set {KFP_HOST_SETTING} to the ml-pipeline Service URL (port 8888)"
            )
        with _quiet():
            return kfp.Client(host=self.host, namespace=namespace)

    def run(self, step: str, fix: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        """Call ``function``; a refusal or an outage becomes a PipelineError about ``step``."""
        import kfp_server_api
        import urllib3

        subject = f" for pipeline {self.pipeline!r}" if self.pipeline else ""
        try:
            with _quiet():
                return function(*args, **kwargs)
        except kfp_server_api.ApiException as error:
            status = int(error.status or 0)
            message = _api_message(error)
            text = f"KFP API at {self.host} refused to {step}{subject} (HTTP {status}): {message}; {fix}"
            if 400 <= status < 500:
                raise PipelineError(text) from None
            raise PipelineError(text) from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise PipelineError(
                f"lost the KFP API at {self.host} while trying to {step}{subject}: {error}; "
                f"check {KFP_HOST_SETTING}"
            ) from error
        except ValueError as error:  # kfp.Client's own checks (e.g. two pipelines with one name)
            raise PipelineError(f"cannot {step}{subject} on {self.host}: {error}; {fix}") from None

    def find_pipeline(self, client: Any) -> str | None:
        return self.run(
            "look the pipeline up by name",
            f"rename the duplicates on the server or set {KFP_PIPELINE_SETTING} to a unique name",
            client.get_pipeline_id,
            self.pipeline,
        )

    def latest_version(self, client: Any) -> tuple[str, str]:
        """The latest version of a pipeline given by name (it must exist)."""
        pipeline_id = self.find_pipeline(client)
        if pipeline_id is None:
            raise PipelineError(
                f"KFP API at {self.host} has no pipeline named {self.pipeline!r}; upload it, or set "
                f"{KFP_PIPELINE_SETTING} to the compiled IR so the platform uploads it"
            )
        listing = self.run(
            "list the pipeline's versions",
            f"check {KFP_PIPELINE_SETTING}",
            client.list_pipeline_versions,
            pipeline_id,
            page_size=1,
            sort_by="created_at desc",
        )
        versions = listing.pipeline_versions or []
        if not versions:
            raise PipelineError(
                f"pipeline {self.pipeline!r} on {self.host} has no version; upload one, or set "
                f"{KFP_PIPELINE_SETTING} to the compiled IR"
            )
        return pipeline_id, str(versions[0].pipeline_version_id)

    def ensure_version(self, client: Any, ir_path: Path, digest: str) -> tuple[str, str, bool]:
        """The pipeline and the version holding this IR, uploading what is missing."""
        marker = f"{IR_MARKER_PREFIX}{digest}"
        fix = f"check the IR at {ir_path} ({KFP_PIPELINE_SETTING})"
        pipeline_id = self.find_pipeline(client)
        if pipeline_id is None:
            try:
                created = self.run(
                    "upload the pipeline",
                    fix,
                    client.upload_pipeline,
                    str(ir_path),
                    pipeline_name=self.pipeline,
                    description=marker,
                )
            except PipelineError:
                # Another submitter may have uploaded it between our lookup and our upload (HTTP 409).
                pipeline_id = self.find_pipeline(client)
                if pipeline_id is None:
                    raise
            else:
                pipeline_id = str(created.pipeline_id)
                version = self.version_with(client, pipeline_id, marker)
                if version is None:
                    raise PipelineError(
                        f"KFP API at {self.host} uploaded pipeline {self.pipeline!r} ({pipeline_id}) but "
                        "lists no version of it with the uploaded IR; is the server a KFP 2.x API?"
                    )
                return pipeline_id, version, True
        version = self.version_with(client, pipeline_id, marker)
        if version is not None:
            return pipeline_id, version, False
        created_version = self.run(
            "upload a new pipeline version",
            fix,
            client.upload_pipeline_version,
            str(ir_path),
            pipeline_version_name=f"{self.pipeline}-{digest[:12]}",
            pipeline_id=pipeline_id,
            description=marker,
        )
        return pipeline_id, str(created_version.pipeline_version_id), True

    def version_with(self, client: Any, pipeline_id: str, marker: str) -> str | None:
        """The id of the pipeline's version whose description is ``marker``, if any."""
        predicate = {"operation": "EQUALS", "key": "description", "string_value": marker}
        listing = self.run(
            "list the pipeline's versions",
            f"check {KFP_PIPELINE_SETTING}",
            client.list_pipeline_versions,
            pipeline_id,
            page_size=1,
            filter=json.dumps({"predicates": [predicate]}),
        )
        versions = listing.pipeline_versions or []
        return str(versions[0].pipeline_version_id) if versions else None

    def ensure_experiment(self, client: Any, experiment: str, namespace: str | None) -> str:
        created = self.run(
            f"find or create experiment {experiment!r}",
            f"set {KFP_EXPERIMENT_SETTING} to a valid experiment name",
            client.create_experiment,
            experiment,
            namespace=namespace,
        )
        return str(created.experiment_id)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """kfp.Client prints UI links to stdout and warns on every construction; keep both out of our output."""
    buffer = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(buffer):
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"kfp\.client")
        yield
    if buffer.getvalue().strip():
        logger.debug("kfp.Client: %s", buffer.getvalue().strip())


def _api_message(error: Any) -> str:
    """The server's own words from an ApiException body (gateway google.rpc.Status or upload error)."""
    try:
        body = json.loads(error.body or "")
    except (TypeError, ValueError):
        return str(error.reason or "no message")
    if not isinstance(body, dict):
        return str(body)
    details = [
        detail.get("message")
        for detail in body.get("details") or []
        if isinstance(detail, dict) and detail.get("message")
    ]
    message = body.get("message") or body.get("error_message") or ""
    if details and details[0] not in message:
        return f"{details[0]} ({message})" if message else str(details[0])
    return str(message or details or error.reason or "no message")


# --- helpers -------------------------------------------------------------------------------------------

_EXAMPLES = {
    "Integer": "7",
    "Float": "0.01",
    "Boolean": "true",
    "String": "text",
    "Dict": '{"key": 1}',
    "List": "[1, 2]",
}


def _check_argument_names(pipeline_func: Any, arguments: Mapping[str, Any]) -> None:
    inputs = pipeline_func.component_spec.inputs or {}
    unknown = sorted(set(arguments) - set(inputs))
    if unknown:
        raise PipelineError(
            f"unknown pipeline argument(s) {unknown}; {pipeline_func.name!r} takes {sorted(inputs)}"
        )
    missing = sorted(name for name, spec in inputs.items() if not spec.optional and name not in arguments)
    if missing:
        raise PipelineError(f"missing required pipeline argument(s) {missing}; pass them in arguments")


def _save_log(run_dir: Path | None, log: str) -> Path | None:
    """Keep the run's log beside its artifacts (``<run_dir>/run.log``) for a post-mortem."""
    if run_dir is None:
        return None
    path = run_dir / "run.log"
    try:
        path.write_text(log)
    except OSError as error:
        logger.warning("cannot save the run log to %s: %s", path, error)
        return None
    return path


def _coerce(text: str, kind: str) -> Any:
    if kind == "Integer":
        return int(text)
    if kind == "Float":
        return float(text)
    if kind == "Boolean":
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValueError(text)
    if kind in ("Dict", "List"):
        value = json.loads(text)
        if not isinstance(value, dict if kind == "Dict" else list):
            raise ValueError(text)
        return value
    return text


def _is_pipeline(candidate: Any) -> bool:
    from kfp.dsl.graph_component import GraphComponent

    return isinstance(candidate, GraphComponent)


def _pipelines_in(module: Any) -> list[str]:
    return sorted(name for name, value in vars(module).items() if _is_pipeline(value))


def _package_root(path: Path) -> Path:
    directory = path.parent
    while (directory / "__init__.py").is_file() and directory.parent != directory:
        directory = directory.parent
    return directory


@contextlib.contextmanager
def _pythonpath(directory: Path | None) -> Iterator[None]:
    """Prepend ``directory`` to PYTHONPATH for the steps' subprocesses, then restore it."""
    previous = os.environ.get("PYTHONPATH")
    if directory is not None:
        parts = [str(directory), *(previous.split(os.pathsep) if previous else [])]
        os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = previous


class _Tee(io.StringIO):
    """Captures what kfp.local prints and optionally forwards it."""

    def __init__(self, echo: TextIO | None) -> None:
        super().__init__()
        self._echo = echo

    def write(self, text: str) -> int:
        if self._echo is not None:
            self._echo.write(text)
            self._echo.flush()
        return super().write(text)


def _failed_task(message: str, log: str) -> str | None:
    for text in (message, log):
        found = _TASK_FAILED.findall(text)
        if found:
            return found[-1]
    match = re.search(r"Inner task failed: '([^']+)'", message) or re.search(r"task '([^']+)'", message)
    if match:
        return match.group(1)
    headers = _TASK_HEADER.findall(log)
    return headers[-1] if headers else None


def _task_log_tail(log: str, task: str | None, lines: int = 25) -> str:
    """The failing task's section of the run log (from its 'Executing task' header), last ``lines`` lines."""
    section = log
    if task:
        start = log.rfind(f"Executing task '{task}'")
        if start >= 0:
            section = log[start:]
    return "\n".join(section.rstrip().splitlines()[-lines:])


def _last_exception_line(text: str) -> str | None:
    """The final ``SomeError: message`` line of a Python traceback in ``text``."""
    found = re.findall(
        r"^\s*((?:[\w.]+)(?:Error|Exception|Exit|Failed|Interrupt)\b.*)$", text, flags=re.MULTILINE
    )
    return found[-1].strip() if found else None


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _new_run_dir(root: Path, before: set[str], pipeline_name: str) -> Path | None:
    created = sorted(
        (child for child in root.iterdir() if child.is_dir() and child.name not in before),
        key=lambda child: child.stat().st_mtime,
    )
    named = [child for child in created if child.name.startswith(pipeline_name)]
    chosen = named or created
    return chosen[-1] if chosen else None


def _read_task_outputs(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Task name -> output parameters and artifact URIs, from each task's ``executor_output.json``."""
    results: dict[str, dict[str, Any]] = {}
    for output_file in sorted(run_dir.glob("*/executor_output.json")):
        try:
            content = json.loads(output_file.read_text())
        except (OSError, json.JSONDecodeError) as error:
            logger.warning("cannot read %s: %s", output_file, error)
            continue
        values: dict[str, Any] = dict(content.get("parameterValues", {}))
        for name, artifact_list in content.get("artifacts", {}).items():
            uris = [artifact.get("uri") for artifact in artifact_list.get("artifacts", [])]
            values[name] = uris[0] if len(uris) == 1 else uris
        results[output_file.parent.name] = values
    # Tasks without executor_output.json (no outputs) still appear, with nothing in them.
    for task_dir in run_dir.iterdir():
        if task_dir.is_dir():
            results.setdefault(task_dir.name, {})
    return results
