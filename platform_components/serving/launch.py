"""Write an MLServer model repository for our monitored runtime, start it, and switch model versions.

The local target (``platform_components.local``) uses these to run MLServer; the same model-settings
files describe what Seldon Core 2 serves in the cluster.

Repository layout::

    <repo_dir>/settings.json                 MLServer server settings (ports, host, no parallel workers)
    <repo_dir>/platform-serving.json         our own server options (request-body limit, admin token file)
    <repo_dir>/<name>/model-settings.json    one served model: runtime, model URI, version, log directory

The model-repository API (``/v2/repository/...``: index, load, unload) is closed to inference clients: the
REST routes answer 403 unless the request carries the admin token (``Authorization: Bearer <token>``),
which the platform writes to a file only its user can read (mode 0600) before the server starts, and
gRPC refuses them always (see ``platform_components.serving.server``). ``reload_model`` and
``unload_model`` are the deployer's side of that channel.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import stat
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from platform_components.errors import ConfigError, ServingError

logger = logging.getLogger(__name__)

RUNTIME_IMPLEMENTATION = "platform_components.serving.runtime.MonitoredMLflowRuntime"
SERVER_SETTINGS_FILE = "settings.json"
PLATFORM_SETTINGS_FILE = "platform-serving.json"
MODEL_SETTINGS_FILE = "model-settings.json"
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
METRICS_ENDPOINT = "/metrics"

ADMIN_TOKEN_SCHEME = "Bearer"
# 32 random bytes, URL-safe base64: far beyond guessing, and safe in an HTTP header.
_ADMIN_TOKEN_BYTES = 32

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _check_port(field: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise ConfigError(f"{field} must be an integer port in 1..65535 (got {value!r})")


def _write_json_atomically(path: Path, content: dict[str, Any]) -> None:
    # MLServer re-reads model-settings on every load call: never let it see a half-written file.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def write_server_settings(
    repo_dir: Path,
    *,
    host: str,
    http_port: int,
    grpc_port: int,
    metrics_port: int,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    admin_token_file: Path | None = None,
) -> None:
    """Write MLServer's ``settings.json`` (and our ``platform-serving.json``) into ``repo_dir``.

    ``parallel_workers`` is 0: inference runs in the server process, which is faster for small models and
    keeps one writer per prediction log.

    Args:
        admin_token_file: The file (written by :func:`create_admin_token`) whose token opens the
            model-repository API; ``None``: the repository API is refused to every caller, and the server
            serves what the repository holds at start-up.

    Raises:
        ConfigError: a port is out of range or reused, the host is empty, or the body limit is not positive.
    """
    if not host or not isinstance(host, str):
        raise ConfigError(f"host must be an interface address such as 127.0.0.1 (got {host!r})")
    for field, value in (("http_port", http_port), ("grpc_port", grpc_port), ("metrics_port", metrics_port)):
        _check_port(field, value)
    if len({http_port, grpc_port, metrics_port}) != 3:
        raise ConfigError(
            "http_port, grpc_port and metrics_port must differ "
            f"(got {http_port}, {grpc_port}, {metrics_port})"
        )
    if not isinstance(max_body_bytes, int) or max_body_bytes <= 0:
        raise ConfigError(f"max_body_bytes must be a positive integer (got {max_body_bytes!r}), e.g. 8388608")
    repo_dir = Path(repo_dir)
    settings = {
        "host": host,
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "metrics_endpoint": METRICS_ENDPOINT,
        "parallel_workers": 0,
        "load_models_at_startup": True,
        "debug": False,
        "server_name": "mlops-platform",
        # gRPC has no limit of ours in front of it: cap it at the same size as REST.
        "grpc_max_message_length": max_body_bytes,
    }
    _write_json_atomically(repo_dir / SERVER_SETTINGS_FILE, settings)
    options = {
        "max_body_bytes": max_body_bytes,
        "admin_token_file": str(Path(admin_token_file).resolve()) if admin_token_file else None,
    }
    _write_json_atomically(repo_dir / PLATFORM_SETTINGS_FILE, options)


def read_platform_settings(repo_dir: Path) -> dict[str, Any]:
    """Our server options from ``platform-serving.json`` (defaults when absent)."""
    path = Path(repo_dir) / PLATFORM_SETTINGS_FILE
    options: dict[str, Any] = {"max_body_bytes": DEFAULT_MAX_BODY_BYTES, "admin_token_file": None}
    if path.is_file():
        options.update(json.loads(path.read_text(encoding="utf-8")))
    return options


def write_model_settings(
    repo_dir: Path,
    *,
    name: str,
    model_uri: str,
    version: str,
    prediction_log_dir: Path | None,
) -> Path:
    """Write ``repo_dir/<name>/model-settings.json`` for our monitored MLflow runtime.

    Args:
        repo_dir: The MLServer model repository.
        name: Served model name; the V2 path is ``/v2/models/<name>/infer``.
        model_uri: MLflow model URI, e.g. ``models:/credit-default/3`` (a fixed version, not an alias,
            so a restart serves what was deployed).
        version: The registered model version; responses report it as ``model_version``.
        prediction_log_dir: Where the runtime appends its prediction log (``None``: no log).

    Returns:
        The path of the written file.

    Raises:
        ConfigError: naming the bad argument.
    """
    if not isinstance(name, str) or not _MODEL_NAME.match(name):
        raise ConfigError(
            f"model name must be 1-128 characters of letters, digits, '.', '_' or '-' (got {name!r})"
        )
    if not model_uri or not isinstance(model_uri, str):
        raise ConfigError(
            f"model_uri must be an MLflow model URI such as models:/{name}/3 (got {model_uri!r})"
        )
    version = str(version).strip() if version is not None else ""
    if not version:
        raise ConfigError(f"version must be the registered model version such as '3' (got {version!r})")
    model_settings: dict[str, Any] = {
        "name": name,
        "implementation": RUNTIME_IMPLEMENTATION,
        "parameters": {
            "uri": model_uri,
            "version": version,
            "extra": {
                "prediction_log_dir": str(Path(prediction_log_dir).resolve()) if prediction_log_dir else None,
            },
        },
    }
    path = Path(repo_dir) / name / MODEL_SETTINGS_FILE
    _write_json_atomically(path, model_settings)
    return path


def create_admin_token(path: Path) -> str:
    """Write a new random admin token to ``path`` (mode 0600, replacing any old one) and return it.

    The file is created with its final mode (never world-readable for a moment) and renamed into place,
    so a reader sees the old token or the new one, never half of one.

    Raises:
        ServingError: the file cannot be written (names the path).
    """
    path = Path(path)
    token = secrets.token_urlsafe(_ADMIN_TOKEN_BYTES)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.unlink(missing_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(token + "\n")
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise ServingError(f"cannot write the serving admin token to {path}: {error.strerror}") from error
    return token


def read_admin_token(path: Path) -> str:
    """The admin token in ``path``, refused unless only its owner, this user, can read it.

    Raises:
        ServingError: the file is missing, not a regular file, readable by others or empty; the message
            names the path and the fix.
    """
    path = Path(path)
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise ServingError(
            f"the serving admin token {path} does not exist; restart serving (`mlops down --local`, then "
            "`mlops up --local`) to write a new one"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise ServingError(
            f"the serving admin token {path} is not a regular file; delete it and restart serving"
        )
    if info.st_mode & 0o077 or info.st_uid != os.geteuid():
        raise ServingError(
            f"the serving admin token {path} has mode {stat.filemode(info.st_mode)} and owner uid "
            f"{info.st_uid}: it must be readable by its owner only (this user, uid {os.geteuid()}); "
            f"delete it and restart serving, which writes a new one with mode 0600"
        )
    token = path.read_text(encoding="ascii").strip()
    if not token:
        raise ServingError(f"the serving admin token {path} is empty; delete it and restart serving")
    return token


def server_command(repo_dir: Path) -> list[str]:
    """The argv that starts our MLServer wrapper on ``repo_dir``.

    The process needs ``MLFLOW_TRACKING_URI`` in its environment to resolve ``models:/`` URIs.
    """
    return [sys.executable, "-m", "platform_components.serving.server", str(Path(repo_dir).resolve())]


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        return str(body.get("error") or body.get("detail") or body)
    return str(body)[:500]


def wait_until_live(inference_url: str, timeout: float = 60.0) -> None:
    """Block until ``/v2/health/live`` answers 200.

    Raises:
        ServingError: not live within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    with httpx.Client(base_url=inference_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            try:
                response = client.get("/v2/health/live")
                if response.status_code == 200:
                    return
                last_error = f"HTTP {response.status_code}"
            except httpx.TransportError as error:
                last_error = str(error) or type(error).__name__
            time.sleep(0.1)
    raise ServingError(f"MLServer at {inference_url} is not live after {timeout:.0f} s ({last_error})")


def _admin_headers(admin_token: str) -> dict[str, str]:
    if not admin_token:
        raise ServingError("an admin token is needed to load or unload models; read it with read_admin_token")
    return {"Authorization": f"{ADMIN_TOKEN_SCHEME} {admin_token}"}


def _refusal(response: httpx.Response, what: str) -> ServingError:
    message = _error_message(response)
    if response.status_code == 403:
        return ServingError(
            f"the serving process refused to {what} (HTTP 403: {message}); its admin token is the one it "
            "read at start-up: restart serving if the token file was replaced"
        )
    return ServingError(f"MLServer refused to {what} (HTTP {response.status_code}): {message}")


def reload_model(inference_url: str, name: str, timeout: float = 60.0, *, admin_token: str) -> None:
    """Load (or switch to) what ``<repo>/<name>/model-settings.json`` now says, then wait until ready.

    Our server loads the new version completely before it replaces the old one, so traffic sees no failed
    request during the switch (see ``platform_components.serving.server``).

    Args:
        admin_token: The token the server was started with (:func:`read_admin_token`).

    Raises:
        ServingError: the server refused the load (with its message) or the model is not ready in time.
    """
    deadline = time.monotonic() + timeout
    headers = _admin_headers(admin_token)
    with httpx.Client(base_url=inference_url, timeout=timeout) as client:
        try:
            response = client.post(f"/v2/repository/models/{name}/load", headers=headers)
        except httpx.TransportError as error:
            raise ServingError(
                f"cannot reach MLServer at {inference_url} to load {name!r}: {error}"
            ) from error
        if response.status_code != 200:
            raise _refusal(response, f"load model {name!r}")
        while time.monotonic() < deadline:
            ready = client.get(f"/v2/models/{name}/ready")
            if ready.status_code == 200:
                logger.info("model %s loaded and ready at %s", name, inference_url)
                return
            time.sleep(0.05)
    raise ServingError(f"model {name!r} is not ready at {inference_url} after {timeout:.0f} s")


def unload_model(inference_url: str, name: str, timeout: float = 30.0, *, admin_token: str) -> None:
    """Unload every version of ``name``.

    Args:
        admin_token: The token the server was started with (:func:`read_admin_token`).

    Raises:
        ServingError: the server refused (e.g. unknown model), with its message.
    """
    headers = _admin_headers(admin_token)
    with httpx.Client(base_url=inference_url, timeout=timeout) as client:
        try:
            response = client.post(f"/v2/repository/models/{name}/unload", headers=headers)
        except httpx.TransportError as error:
            raise ServingError(
                f"cannot reach MLServer at {inference_url} to unload {name!r}: {error}"
            ) from error
    if response.status_code != 200:
        raise _refusal(response, f"unload model {name!r}")
