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


def submit(
    host: str,
    pipeline_func: Any,
    arguments: dict[str, Any],
    *,
    experiment: str,
    run_name: str | None = None,
    namespace: str | None = None,
) -> str:
    """Submit a run to a Kubeflow Pipelines API server and return its run id.

    Authentication follows ``kfp.Client`` (the in-cluster service-account token, or the file named by
    ``KF_PIPELINES_SA_TOKEN_PATH``).

    Raises:
        PipelineError: the server cannot be reached or refuses the run; the message names the host.
    """
    import kfp

    if not host.startswith(("http://", "https://")):
        raise PipelineError(f"host {host!r} must be a URL such as https://kfp.example.com/pipeline")
    try:
        client = kfp.Client(host=host, namespace=namespace)
        result = client.create_run_from_pipeline_func(
            pipeline_func, arguments=arguments, experiment_name=experiment, run_name=run_name
        )
    except Exception as error:  # kfp raises urllib3/ApiException/ValueError; one clear error for all
        raise PipelineError(
            f"submitting {getattr(pipeline_func, 'name', pipeline_func)!r} to {host} failed: "
            f"{type(error).__name__}: {error}"
        ) from error
    logger.info("submitted run %s to %s (experiment %s)", result.run_id, host, experiment)
    return str(result.run_id)


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
