"""Our MLServer wrapper: ``python -m platform_components.serving.server REPO_DIR``.

Five changes to MLServer 1.7.1, each through a hook MLServer already has (no monkey-patching):

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
4. **Model load and unload are not for inference clients**: MLServer serves its model-repository API
   (index, load, unload) on the inference ports with no authentication, so any client could unload the
   model (``mlserver/rest/app.py``, ``mlserver/grpc/server.py`` @1.7.1). On REST those routes answer 403
   unless the request carries the admin token the platform wrote to a mode-0600 file in its state folder
   (``Authorization: Bearer <token>``, compared in constant time); on gRPC they answer PERMISSION_DENIED
   always, through an interceptor (the deployer uses REST). ``MLServer._create_servers`` is the hook.
5. **A made-up model name creates no series**: MLServer's data plane labels its request counters and
   duration summary with the model name and version *from the URL* before it looks the model up, so every
   name a client invents would add series to ``/metrics`` for good (``mlserver/handlers/dataplane.py``
   @1.7.1). :class:`KnownModelsDataPlane` answers 404 for a model or version that is not loaded first.

The server binds 127.0.0.1 unless ``settings.json`` says otherwise, and runs inference in the server
process (``parallel_workers: 0``): one writer per prediction log.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import grpc
from mlserver import MLServer
from mlserver.context import model_context
from mlserver.errors import MLServerError
from mlserver.grpc import GRPCServer
from mlserver.handlers import DataPlane
from mlserver.model import MLModel
from mlserver.registry import MultiModelRegistry, SingleModelRegistry
from mlserver.settings import ModelSettings, Settings
from mlserver.types import InferenceRequest, InferenceResponse

from platform_components.serving.launch import (
    ADMIN_TOKEN_SCHEME,
    SERVER_SETTINGS_FILE,
    read_admin_token,
    read_platform_settings,
)
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


REPOSITORY_PATH_PREFIX = "/v2/repository"
# Every model-repository RPC MLServer 1.7.1 registers on its gRPC port: the three of its own service and
# the three copies inside the inference service (mlserver/grpc/server.py, dataplane_pb2_grpc.py,
# model_repository_pb2_grpc.py @1.7.1).
REFUSED_GRPC_METHODS = frozenset(
    f"/{service}/{method}"
    for service in ("inference.model_repository.ModelRepositoryService", "inference.GRPCInferenceService")
    for method in ("RepositoryIndex", "RepositoryModelLoad", "RepositoryModelUnload")
)
REPOSITORY_REFUSED = (
    "the model repository API (index, load, unload) is not open to inference clients: models are loaded "
    "and unloaded by the platform's deployer (`mlops deploy MODEL`, or the loop), which "
    "authenticates on the REST port with the admin token in the platform's state folder"
)


class RepositoryGuard:
    """ASGI middleware: ``/v2/repository/...`` answers 403 unless ``Authorization`` carries the admin token.

    Args:
        app: The REST app.
        admin_token: The token that opens the routes; ``None`` refuses them to everyone.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], admin_token: str | None) -> None:
        self.app = app
        self._expected = f"{ADMIN_TOKEN_SCHEME} {admin_token}".encode() if admin_token else None

    def _authorised(self, scope: Scope) -> bool:
        if self._expected is None:
            return False
        given = [value for key, value in scope.get("headers") or [] if key == b"authorization"]
        # One header exactly: with two, which one a later layer reads is not ours to guess.
        return len(given) == 1 and hmac.compare_digest(given[0], self._expected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Starlette matches routes on the decoded path, so every spelling that reaches a repository route
        # (a trailing slash is a redirect to it) starts with the prefix.
        if (
            scope["type"] == "http"
            and str(scope.get("path", "")).startswith(REPOSITORY_PATH_PREFIX)
            and not self._authorised(scope)
        ):
            await _send_error(send, 403, REPOSITORY_REFUSED)
            return
        await self.app(scope, receive, send)


async def _refuse_repository_rpc(request: bytes, context: grpc.aio.ServicerContext) -> None:
    await context.abort(grpc.StatusCode.PERMISSION_DENIED, REPOSITORY_REFUSED)


# No deserializer: the request is never read.
_REFUSAL_HANDLER = grpc.unary_unary_rpc_method_handler(_refuse_repository_rpc)


class RepositoryRefusal(grpc.aio.ServerInterceptor):
    """gRPC interceptor answering every model-repository RPC with PERMISSION_DENIED, before any handler."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if handler_call_details.method in REFUSED_GRPC_METHODS:
            return _REFUSAL_HANDLER
        return await continuation(handler_call_details)


class InferenceOnlyGRPCServer(GRPCServer):
    """MLServer's gRPC server with :class:`RepositoryRefusal` first in its interceptor chain.

    MLServer 1.7.1's ``GRPCServer._create_server`` (called by ``start``) assigns its interceptor list to
    ``self._interceptors``, appends to it and passes a copy to ``grpc.aio.server``; it takes no
    interceptor from outside (mlserver/grpc/server.py@1.7.1). This attribute, a property here, puts ours
    in front of whatever list MLServer builds, so its own interceptors (metrics, logging, tracing) stay
    exactly its own.
    """

    _platform_interceptors: list[Any]

    @property
    def _interceptors(self) -> list[Any]:
        return self._platform_interceptors

    @_interceptors.setter
    def _interceptors(self, value: list[Any]) -> None:
        self._platform_interceptors = [RepositoryRefusal(), *value]


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


class KnownModelsDataPlane(DataPlane):
    """MLServer's data plane, answering 404 for a model (or version) that is not loaded before the metrics.

    ``DataPlane.infer`` creates the ``{model, version}`` children of ``model_infer_request_success``,
    ``_failure`` and ``_duration`` from the request's path before the registry says whether the model
    exists (``mlserver/handlers/dataplane.py``@1.7.1): without this check a client could add four series
    per invented name. The look-up is the registry's own (``ModelNotFound``: MLServer's 404).

    Built from the data plane MLServer made (:meth:`adopt`): its counters are registered once per process
    on the default registry, so a second ``DataPlane`` could not be constructed.
    """

    @classmethod
    def adopt(cls, plane: DataPlane) -> KnownModelsDataPlane:
        """The same data plane (its registry, cache, counters), with the check in front of inference."""
        adopted = cls.__new__(cls)
        adopted.__dict__.update(plane.__dict__)
        return adopted

    async def infer(
        self, payload: InferenceRequest, name: str, version: str | None = None
    ) -> InferenceResponse:
        await self._model_registry.get_model(name, version)  # ModelNotFound (404) before any series
        return await super().infer(payload, name, version)

    async def infer_stream(
        self, payloads: AsyncIterator[InferenceRequest], name: str, version: str | None = None
    ) -> AsyncIterator[InferenceResponse]:
        await self._model_registry.get_model(name, version)
        async for response in super().infer_stream(payloads, name, version):
            yield response


async def _invalid_request_handler(request: Any, error: Exception) -> Any:
    from mlserver.rest.responses import Response

    status = getattr(error, "status_code", 400)
    return Response(status_code=status, content={"error": str(error)})


async def _malformed_body_handler(request: Any, error: Exception) -> Any:
    from mlserver.rest.responses import Response

    return Response(status_code=400, content={"error": f"malformed request body: {error}"})


class PlatformMLServer(MLServer):
    """MLServer with our body limit, 4xx mapping, swap-on-ready registry, closed repository API and a data
    plane that creates no series for unknown models.

    Args:
        settings: MLServer's server settings.
        max_body_bytes: The REST request-body limit.
        admin_token: The token that opens the REST repository routes; ``None`` refuses them to everyone.
    """

    def __init__(self, settings: Settings, *, max_body_bytes: int, admin_token: str | None = None) -> None:
        self._max_body_bytes = max_body_bytes
        self._admin_token = admin_token
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
        # MLServer.__init__ makes the data plane just before calling this; the servers get ours.
        self._data_plane = KnownModelsDataPlane.adopt(self._data_plane)
        super()._create_servers()
        # GRPCServer.__init__ only keeps its arguments; the server is built and bound in start(), so the
        # one MLServer made is replaced before anything listens (mlserver/grpc/server.py@1.7.1).
        self._grpc_server = InferenceOnlyGRPCServer(
            self._settings, self._data_plane, self._model_repository_handlers
        )
        app = self._rest_server._app
        app.add_middleware(RequestBodyLimit, max_body_bytes=self._max_body_bytes)
        # Added last, so outermost: a refused call is answered before its body is read.
        app.add_middleware(RepositoryGuard, admin_token=self._admin_token)
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
    token_file = options.get("admin_token_file")
    # A missing or loose token file stops the start-up here, naming the file: failing closed.
    admin_token = read_admin_token(Path(token_file)) if token_file else None
    if admin_token is None:
        logger.warning(
            "no admin token file in %s: the model repository API is refused to every caller", repo_dir
        )
    server = PlatformMLServer(
        settings, max_body_bytes=int(options["max_body_bytes"]), admin_token=admin_token
    )
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
