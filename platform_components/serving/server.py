"""Our MLServer wrapper: ``python -m platform_components.serving.server REPO_DIR``.

Three changes to MLServer 1.7.1, each through a hook MLServer already has (no monkey-patching):

1. **Request-body limit** (MLServer has none): an ASGI middleware on the REST app answers 413 before the
   body is parsed, also for gzip bodies (decompressed with a bound, so a zip bomb is a 413, a corrupt
   stream a 400, where MLServer would answer 500).
2. **No 5xx for client errors**: our runtime validates before the model (``validation.py``), and the
   request errors that still escape as exceptions get exception handlers with 4xx.
3. **Switch versions without a failed request**: MLServer's registry registers a new version *before*
   loading it and makes it the default at once, so requests during the load get "model not ready"
   (and an older version deployed by rollback never becomes the default). Our registry loads the new
   version completely, then swaps it in atomically and unloads the previous one
   (``MLServer._create_model_registry`` is the hook).

The server binds 127.0.0.1 unless ``settings.json`` says otherwise, and runs inference in the server
process (``parallel_workers: 0``): one writer per prediction log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from mlserver import MLServer
from mlserver.context import model_context
from mlserver.errors import MLServerError
from mlserver.model import MLModel
from mlserver.registry import MultiModelRegistry, SingleModelRegistry
from mlserver.settings import ModelSettings, Settings

from platform_components.serving.launch import SERVER_SETTINGS_FILE, read_platform_settings
from platform_components.serving.validation import InvalidRequest

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def _send_error(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestBodyLimit:
    """ASGI middleware: reject bodies over ``max_body_bytes`` with 413, decode gzip with the same bound.

    The body is buffered here (FastAPI reads it whole anyway) and replayed to the app.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    def _too_large(self, size: int | str) -> str:
        return (
            f"request body is {size} bytes, over the limit of {self.max_body_bytes} bytes: "
            "split the rows into smaller requests"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers") or []
        content_length = None
        encodings: list[bytes] = []
        for key, value in headers:
            if key == b"content-length":
                content_length = value
            elif key == b"content-encoding":
                encodings.extend(part.strip().lower() for part in value.split(b","))
        if content_length is not None:
            try:
                declared = int(content_length)
            except ValueError:
                await _send_error(send, 400, f"Content-Length {content_length[:40]!r} is not a number")
                return
            if declared > self.max_body_bytes:
                await _send_error(send, 413, self._too_large(declared))
                return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                await _send_error(send, 413, self._too_large(f"more than {self.max_body_bytes}"))
                return
            more = bool(message.get("more_body"))
        encodings = [encoding for encoding in encodings if encoding and encoding != b"identity"]
        if encodings:
            if encodings != [b"gzip"]:
                await _send_error(
                    send, 415, f"Content-Encoding {encodings!r} is not supported; use gzip or none"
                )
                return
            try:
                decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
                inflated = decompressor.decompress(bytes(body), self.max_body_bytes + 1)
            except zlib.error as error:
                await _send_error(send, 400, f"the gzip body cannot be decompressed: {error}")
                return
            if len(inflated) > self.max_body_bytes or decompressor.unconsumed_tail:
                await _send_error(
                    send, 413, self._too_large(f"more than {self.max_body_bytes} (decompressed)")
                )
                return
            if not decompressor.eof:
                await _send_error(send, 400, "the gzip body is truncated")
                return
            body = bytearray(inflated)
            # The app must not decompress a second time.
            scope = dict(scope)
            scope["headers"] = [
                (key, value) for key, value in headers if key not in (b"content-encoding", b"content-length")
            ] + [(b"content-length", str(len(body)).encode())]
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


class ModelLoadFailed(MLServerError):
    """A model version could not be loaded; the message says which, why, and what keeps serving.

    MLServer would answer the load call with a bare "Internal Server Error"; this carries the cause to
    the caller of ``/v2/repository/models/<name>/load`` (422 when MLflow says the URI or version is
    wrong, else 500).
    """

    def __init__(self, model_settings: ModelSettings, error: Exception, *, serving: list[MLModel]) -> None:
        uri = model_settings.parameters.uri if model_settings.parameters else None
        still = ", ".join(f"version {model.version}" for model in serving) or "nothing"
        message = (
            f"could not load model {model_settings.name!r} version {model_settings.version!r} from {uri!r}: "
            f"{type(error).__name__}: {error}; still serving: {still}"
        )
        client_mistake = getattr(error, "error_code", None) in (
            "RESOURCE_DOES_NOT_EXIST",
            "INVALID_PARAMETER_VALUE",
        )
        super().__init__(message, 422 if client_mistake else 500)


class SwapOnReadyModelRegistry(SingleModelRegistry):
    """One served version per model name; a new version replaces the old only once it is ready."""

    async def load(self, model_settings: ModelSettings) -> MLModel:
        new_model = self._model_initialiser(model_settings)
        with model_context(model_settings):
            try:
                for callback in self._on_model_load:
                    new_model = await callback(new_model)
                new_model.ready = await new_model.load()
            except Exception as error:
                logger.exception("could not load model %s version %s", new_model.name, new_model.version)
                await asyncio.gather(
                    *[callback(new_model) for callback in self._on_model_unload], return_exceptions=True
                )
                raise ModelLoadFailed(model_settings, error, serving=await self.get_models()) from error
        previous = await self.get_models()
        # No await between these two lines: a request sees either the old model or the new one.
        self._versions = {new_model.version: new_model} if new_model.version else {}
        self._default = new_model
        for old_model in previous:
            if old_model is new_model:
                continue
            with model_context(old_model.settings):
                await asyncio.gather(
                    *[callback(old_model) for callback in self._on_model_unload], return_exceptions=True
                )
                old_model.ready = not await old_model.unload()
        logger.info("serving model %s version %s", new_model.name, new_model.version)
        return new_model


class SwapOnReadyMultiModelRegistry(MultiModelRegistry):
    """MLServer's multi-model registry, with :class:`SwapOnReadyModelRegistry` per model name."""

    async def load(self, model_settings: ModelSettings) -> MLModel:
        if model_settings.name not in self._models:
            self._models[model_settings.name] = SwapOnReadyModelRegistry(
                model_settings,
                on_model_load=self._on_model_load,
                on_model_reload=self._on_model_reload,
                on_model_unload=self._on_model_unload,
                model_initialiser=self._model_initialiser,
            )
        return await self._models[model_settings.name].load(model_settings)


async def _invalid_request_handler(request: Any, error: Exception) -> Any:
    from mlserver.rest.responses import Response

    status = getattr(error, "status_code", 400)
    return Response(status_code=status, content={"error": str(error)})


async def _malformed_body_handler(request: Any, error: Exception) -> Any:
    from mlserver.rest.responses import Response

    return Response(status_code=400, content={"error": f"malformed request body: {error}"})


class PlatformMLServer(MLServer):
    """MLServer with our body limit, 4xx mapping and swap-on-ready registry."""

    def __init__(self, settings: Settings, *, max_body_bytes: int) -> None:
        self._max_body_bytes = max_body_bytes
        super().__init__(settings)

    def _create_model_registry(self) -> MultiModelRegistry:
        if self._settings.parallel_workers:
            # Parallel workers keep their own copies of the model; our swap does not cover them.
            logger.warning("parallel_workers > 0: version switches use MLServer's own registry")
            return super()._create_model_registry()
        return SwapOnReadyMultiModelRegistry(
            on_model_load=[self.add_custom_handlers, _load_batching],
            on_model_reload=[self.reload_custom_handlers],
            on_model_unload=[self.remove_custom_handlers],
        )

    def _create_servers(self) -> None:
        super()._create_servers()
        app = self._rest_server._app
        app.add_middleware(RequestBodyLimit, max_body_bytes=self._max_body_bytes)
        app.add_exception_handler(InvalidRequest, _invalid_request_handler)
        # Body decoding errors (gzip, unicode) are the client's, not ours.
        app.add_exception_handler(UnicodeDecodeError, _malformed_body_handler)
        app.add_exception_handler(zlib.error, _malformed_body_handler)


async def _load_batching(model: MLModel) -> MLModel:
    from mlserver.batching import load_batching

    return await load_batching(model)


async def serve(repo_dir: Path) -> None:
    """Load settings from ``repo_dir`` and serve until a signal stops the server."""
    from mlserver.cli.serve import load_settings

    settings, models_settings = await load_settings(str(repo_dir))
    raw_settings_path = repo_dir / SERVER_SETTINGS_FILE
    raw = json.loads(raw_settings_path.read_text(encoding="utf-8")) if raw_settings_path.is_file() else {}
    if "host" not in raw:
        # MLServer binds every interface by default and has no auth: loopback unless asked.
        settings.host = "127.0.0.1"
    options = read_platform_settings(repo_dir)
    server = PlatformMLServer(settings, max_body_bytes=int(options["max_body_bytes"]))
    await server.start(models_settings)


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m platform_components.serving.server``."""
    parser = argparse.ArgumentParser(
        prog="python -m platform_components.serving.server",
        description="Start MLServer on a model repository with our validation, prediction log, body limit "
        "and zero-downtime version switches. Needs MLFLOW_TRACKING_URI for models:/ URIs.",
    )
    parser.add_argument("repo_dir", type=Path, help="model repository written by serving.launch")
    arguments = parser.parse_args(argv)
    repo_dir = arguments.repo_dir.resolve()
    if not repo_dir.is_dir():
        parser.error(f"REPO_DIR {repo_dir} is not a folder; write it with serving.launch first")

    import prometheus_client
    from mlserver.logging import configure_logger
    from mlserver.utils import install_uvloop_event_loop

    # `_created` series double every counter's cardinality and nobody alerts on them.
    prometheus_client.disable_created_metrics()
    configure_logger()
    install_uvloop_event_loop()
    asyncio.run(serve(repo_dir))


if __name__ == "__main__":
    main()
