"""A local fake of the Kubeflow Pipelines v2beta1 REST API: the subset ``kfp.Client`` 2.17 uses.

It is a real HTTP server on 127.0.0.1 (stdlib ``http.server`` in a thread, a free port) so the real
``kfp.Client`` talks to it over the wire. What it serves, and how it answers, follows the API server of
kubeflow/pipelines at 2.17.0 (each rule cites where it was read; the values sit in
``tests/upstream_facts/kfp_api.py``):

- Routes: healthz, the two multipart upload endpoints, pipelines and versions (list/get), experiments
  (create/get/list/archive/unarchive), runs (create/get/list) under ``/apis/v2beta1``.
- Bodies are checked against the ``kfp_server_api`` models (the Python client generated from the same
  swagger) and turned into them with the API client's own deserializer. Like the server's protojson decoder
  (``DiscardUnknown: false``, backend/src/apiserver/common/utils.go), an unknown field, a wrong JSON type, an
  unknown enum name or two members of one oneof is refused with google.rpc.Status code 3 and HTTP 400.
  Responses are built as those models and serialised by the same client, so they parse by construction.
- Errors come back the way the gateway writes them: ``{"code", "message", "details": [google.rpc.Status]}``
  with the HTTP status of grpc-gateway's ``HTTPStatusFromCode``; the upload endpoints (plain HTTP handlers)
  answer ``{"error_message", "error_details"}`` instead. An unknown pipeline, version, experiment or run is
  NotFound (404) where the server reads it directly (get, list versions, a run's experiment), and Internal
  (500) where the server wraps the lookup in ``NewInternalServerError``: ``CreateRun`` with an unknown
  pipeline or version (resource_manager.go ``CreateRun``), an empty run or experiment name (api_converter.go).
- Single-user mode: namespaces are replaced by "" as ``ReplaceNamespace`` does.

Run states are driven by the test: ``fake.set_state(run_id, "RUNNING")`` and
``fake.finish(run_id, "SUCCEEDED" | "FAILED", error=..., failed_task=...)``, with the v2beta1
``RuntimeState`` names. ``error`` goes where the v2beta1 contract puts a final error (the FAILED entry of
``state_history``, run.proto ``RuntimeStatus.error``); ``failed_task`` adds a FAILED entry to
``run_details.task_details``, which is how the 2.17.0 server itself shows a failed step (its run store never
fills ``RuntimeStatus.error``).

Not implemented (answered 501 with a google.rpc.Status that says so, never silently): filter operations
other than EQUALS/NOT_EQUALS/IS_SUBSTRING, sorting other than by creation, zip/tarball uploads, multi-user
authorisation.
"""

from __future__ import annotations

import base64
import datetime
import email.parser
import email.policy
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kfp_server_api
import yaml
from kfp_server_api import models

API = "/apis/v2beta1"
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)

# google.golang.org/grpc/codes, and grpc-gateway v2.28.0 runtime/errors.go HTTPStatusFromCode.
OK, INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, ABORTED, UNIMPLEMENTED, INTERNAL = 0, 3, 5, 6, 10, 12, 13
HTTP_STATUS = {
    INVALID_ARGUMENT: 400,
    NOT_FOUND: 404,
    ALREADY_EXISTS: 409,
    ABORTED: 409,
    UNIMPLEMENTED: 501,
    INTERNAL: 500,
}
RUNTIME_STATES = tuple(models.V2beta1RuntimeState.allowable_values)
FINAL_STATES = ("SUCCEEDED", "SKIPPED", "FAILED", "CANCELED")
# kubeflow/pipelines backend/src/apiserver/list/list.go@2.17.0
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 200
# backend/src/apiserver/model/{pipeline,pipeline_version,experiment,run}.go@2.17.0 APIToModelFieldMap: the
# keys a filter may name (v2beta1 and v1beta1 names), mapped to the attribute of the API model we compare.
FILTER_KEYS = {
    "pipeline": {
        "id": "pipeline_id",
        "pipeline_id": "pipeline_id",
        "name": "name",
        "display_name": "display_name",
        "created_at": "created_at",
        "description": "description",
        "namespace": "namespace",
    },
    "pipeline_version": {
        "id": "pipeline_version_id",
        "pipeline_version_id": "pipeline_version_id",
        "name": "name",
        "display_name": "display_name",
        "created_at": "created_at",
        "description": "description",
        "status": None,
        "pipeline_spec": "pipeline_spec",
    },
    "experiment": {
        "id": "experiment_id",
        "experiment_id": "experiment_id",
        "name": "display_name",
        "display_name": "display_name",
        "created_at": "created_at",
        "last_run_created_at": "last_run_created_at",
        "description": "description",
        "namespace": "namespace",
        "storage_state": "storage_state",
    },
    "run": {
        "run_id": "run_id",
        "id": "run_id",
        "display_name": "display_name",
        "name": "display_name",
        "created_at": "created_at",
        "finished_at": "finished_at",
        "description": "description",
        "scheduled_at": "scheduled_at",
        "storage_state": "storage_state",
        "status": "state",
        "namespace": None,
        "experiment_id": "experiment_id",
        "state": "state",
        "state_history": None,
        "runtime_details": None,
        "recurring_run_id": "recurring_run_id",
    },
}
# proto oneofs of the request bodies we take (run.proto Run.pipeline_source).
ONEOFS = {
    "V2beta1Run": (("pipeline_version_id", "pipeline_spec", "pipeline_version_reference"),),
    "V2beta1Predicate": (
        (
            "int_value",
            "long_value",
            "string_value",
            "timestamp_value",
            "int_values",
            "long_values",
            "string_values",
        ),
    ),
}


class ApiError(Exception):
    """A gRPC status the gateway turns into an HTTP error (message: the server's internal chain)."""

    def __init__(self, code: int, message: str, external: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.external = code, message, external

    def wrap(self, prefix: str) -> ApiError:
        """``util.Wrap``: the internal message gets a prefix; code and external message are kept."""
        return ApiError(self.code, f"{prefix}: {self.message}", self.external)

    def body(self) -> dict[str, Any]:
        # util.UserError.GRPCStatus (backend/src/common/util/error.go): message is the internal error, one
        # detail carries the external message; empty details are omitted (EmitUnpopulated: false).
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.external is not None:
            body["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.Status",
                    "code": self.code,
                    "message": self.external,
                }
            ]
        return body


class UploadError(Exception):
    """An error of the multipart upload handlers: ``{"error_message", "error_details"}`` (v1beta1 Error)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def not_found(resource: str, name: str, *wraps: str) -> ApiError:
    """``util.NewResourceNotFoundError`` wrapped by ``wraps`` (innermost first)."""
    error = ApiError(
        NOT_FOUND, f"ResourceNotFoundError: {resource} {name} not found", f"{resource} {name} not found"
    )
    for prefix in wraps:
        error = error.wrap(prefix)
    return error


def invalid_input(message: str) -> ApiError:
    """``util.NewInvalidInputError``."""
    return ApiError(INVALID_ARGUMENT, f"Invalid input error: {message}", message)


def internal(cause: ApiError | str, message: str) -> ApiError:
    """``util.NewInternalServerError``: code Internal, external "Internal Server Error"."""
    inner = cause.message if isinstance(cause, ApiError) else cause
    return ApiError(INTERNAL, f"InternalServerError: {message}: {inner}", "Internal Server Error")


def already_exists(message: str) -> ApiError:
    """``util.NewAlreadyExistError``."""
    return ApiError(ALREADY_EXISTS, f"Already exist error: {message}", message)


def unimplemented(what: str) -> ApiError:
    """Something the fake does not serve: said plainly, never guessed."""
    return ApiError(UNIMPLEMENTED, f"kfp_api_fake does not implement {what}")


# --- bodies: validation against the kfp_server_api models --------------------------------------------


class _Serializer(kfp_server_api.ApiClient):
    """The API client's own (de)serializer; timestamps written as protojson writes them (RFC 3339, Z)."""

    def sanitize_for_serialization(self, obj: Any) -> Any:
        if isinstance(obj, datetime.datetime):
            return obj.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return super().sanitize_for_serialization(obj)


@dataclass
class _Raw:
    """What ``ApiClient.deserialize`` reads: an object with ``data``."""

    data: str


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def check_body(data: Any, klass: str, where: str = "") -> Any:
    """Refuse what protojson would refuse for this message; return ``data`` with proto (snake_case) names.

    protojson takes a field by its proto name or its lowerCamelCase JSON name; the API client's deserializer
    reads proto names only, so names are normalised here before it runs.

    Raises:
        ApiError: code InvalidArgument, naming the field (unknown field, wrong JSON type, bad enum value,
            two members of one oneof).
    """
    if data is None:
        return None
    if klass.startswith("list["):
        if not isinstance(data, list):
            raise _decode_error(where, f"expected a list, got {type(data).__name__}")
        inner = klass[5:-1]
        return [check_body(item, inner, f"{where}[{index}]") for index, item in enumerate(data)]
    if klass.startswith("dict("):
        if not isinstance(data, dict):
            raise _decode_error(where, f"expected an object, got {type(data).__name__}")
        inner = re.match(r"dict\(([^,]*), (.*)\)", klass).group(2)  # type: ignore[union-attr]
        return {key: check_body(item, inner, f"{where}.{key}") for key, item in data.items()}
    if klass == "str":
        if not isinstance(data, str):
            raise _decode_error(where, f"invalid value for string field: {json.dumps(data)}")
        return data
    if klass == "int":
        if isinstance(data, bool) or not (
            isinstance(data, int) or (isinstance(data, str) and re.fullmatch(r"-?\d+", data))
        ):
            raise _decode_error(where, f"invalid value for integer field: {json.dumps(data)}")
        return data
    if klass == "bool":
        if not isinstance(data, bool):
            raise _decode_error(where, f"invalid value for bool field: {json.dumps(data)}")
        return data
    if klass == "datetime":
        if not isinstance(data, str) or not re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", data
        ):
            raise _decode_error(where, f"invalid google.protobuf.Timestamp value {json.dumps(data)}")
        return data
    if klass == "object":
        return data  # google.protobuf.Struct / Value: any JSON
    model = getattr(models, klass)
    if not model.openapi_types:
        allowable = getattr(model, "allowable_values", None)
        if allowable is None:
            return data
        if isinstance(data, str) and data in allowable:
            return data
        if isinstance(data, int) and not isinstance(data, bool) and 0 <= data < len(allowable):
            return allowable[data]
        raise _decode_error(where, f"invalid value for enum field: {json.dumps(data)}")
    if not isinstance(data, dict):
        raise _decode_error(where, f"expected an object for {klass}, got {type(data).__name__}")
    names: dict[str, str] = {}
    for attribute, json_name in model.attribute_map.items():
        names[json_name] = attribute
        names[_camel(json_name)] = attribute
    normalised: dict[str, Any] = {}
    for key, value in data.items():
        attribute = names.get(key)
        if attribute is None:
            raise _decode_error(where, f'unknown field "{key}"')
        proto_name = model.attribute_map[attribute]
        if proto_name in normalised:
            raise _decode_error(where, f'duplicate field "{key}"')
        normalised[proto_name] = check_body(
            value, model.openapi_types[attribute], f"{where}.{key}" if where else key
        )
    for group in ONEOFS.get(klass, ()):
        present = [name for name in group if normalised.get(name) is not None]
        if len(present) > 1:
            raise _decode_error(
                where, f'error parsing "{present[1]}", oneof is already set by "{present[0]}"'
            )
    return normalised


def _decode_error(where: str, problem: str) -> ApiError:
    # grpc-gateway's generated handlers answer a decode failure with codes.InvalidArgument and "%v" of the
    # protojson error (backend/api/v2beta1/go_client/run.pb.gw.go@2.17.0 request_RunService_CreateRun_0).
    location = f" at {where}" if where else ""
    return ApiError(INVALID_ARGUMENT, f"proto: {problem}{location}")


def parse_body(raw: bytes, klass: str) -> Any:
    """Check ``raw`` (JSON) against ``klass`` and deserialize it with the API client's deserializer."""
    if not raw.strip():
        return getattr(models, klass)()
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise _decode_error("", f"syntax error: {error}") from None
    normalised = check_body(data, klass)
    return _SERIALIZER.deserialize(_Raw(json.dumps(normalised)), klass)


_SERIALIZER = _Serializer()


# --- the server ----------------------------------------------------------------------------------------


@dataclass
class Recorded:
    """One request the fake answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    status: int


@dataclass
class _State:
    pipelines: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    experiments: dict[str, Any] = field(default_factory=dict)
    runs: dict[str, Any] = field(default_factory=dict)
    default_experiment_id: str | None = None


class KfpApiFake:
    """The fake server. Use as a context manager; ``host`` is the URL to give ``kfp.Client``.

    Attributes:
        host: ``http://127.0.0.1:<port>``.
        requests: Every request answered, in order (method, path, query, status).
    """

    def __init__(self) -> None:
        self.state = _State()
        self.requests: list[Recorded] = []
        self.hooks: list[tuple[str, str, Callable[[], None]]] = []
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.host = ""

    # -- lifecycle
    def start(self) -> KfpApiFake:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host = f"http://127.0.0.1:{self._server.server_address[1]}"
        # A short poll interval: shutdown() waits up to one interval (0.5 s by default, per test).
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="kfp-api-fake",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> KfpApiFake:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- test controls
    def set_state(self, run_id: str, state: str) -> None:
        """Move a run to ``state`` (a v2beta1 RuntimeState name), as the persistence agent would report."""
        if state in FINAL_STATES:
            self.finish(run_id, state)
        else:
            self._transition(run_id, state)

    def finish(
        self, run_id: str, state: str, *, error: str | None = None, failed_task: str | None = None
    ) -> None:
        """End a run in ``state``; ``error`` goes on the final state_history entry, ``failed_task`` into
        run_details.task_details as a FAILED task (see the module docstring)."""
        if state not in FINAL_STATES:
            raise ValueError(f"{state!r} is not a final RuntimeState; use one of {FINAL_STATES}")
        with self.lock:
            run = self._transition(run_id, state, error=error)
            now = _now()
            run.finished_at = now
            if failed_task is not None:
                task = models.V2beta1PipelineTaskDetail(
                    run_id=run_id,
                    task_id=str(uuid.uuid4()),
                    display_name=failed_task,
                    create_time=run.created_at,
                    start_time=run.created_at,
                    end_time=now,
                    state="FAILED",
                    state_history=[models.V2beta1RuntimeStatus(update_time=now, state="FAILED")],
                )
                run.run_details = models.V2beta1RunDetails(task_details=[task])

    def _transition(self, run_id: str, state: str, *, error: str | None = None) -> Any:
        if state not in RUNTIME_STATES:
            raise ValueError(f"{state!r} is not a v2beta1 RuntimeState; use one of {RUNTIME_STATES}")
        with self.lock:
            run = self.state.runs[run_id]
            run.state = state
            status = models.V2beta1RuntimeStatus(update_time=_now(), state=state)
            if error is not None:
                status.error = models.GoogleRpcStatus(code=2, message=error)
            run.state_history = [*(run.state_history or []), status]
            return run

    def before(self, method: str, path: str, action: Callable[[], None]) -> None:
        """Run ``action`` once, just before the next ``method path`` request is handled (a concurrent
        change on the server, e.g. a version deleted between a client's lookup and its use)."""
        self.hooks.append((method, path, action))

    def uploads(self) -> list[Recorded]:
        """The upload requests answered 200 (pipelines and versions)."""
        return [r for r in self.requests if r.path.startswith(f"{API}/pipelines/upload") and r.status == 200]

    # -- dispatch
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, Any]:
        """Route one request; returns (HTTP status, JSON-able body)."""
        with self.lock:
            for hook in [hook for hook in self.hooks if hook[:2] == (method, path)]:
                self.hooks.remove(hook)
                hook[2]()
        for route_method, pattern, handler in self._routes():
            match = re.fullmatch(pattern, path)
            if match is None:
                continue
            if route_method is not None and route_method != method:
                continue
            try:
                with self.lock:
                    return 200, handler(query=query, headers=headers, body=body, **match.groupdict())
            except ApiError as error:
                return HTTP_STATUS.get(error.code, 500), error.body()
            except UploadError as error:
                return error.status, {"error_message": error.message, "error_details": error.message}
        if path.startswith("/apis/"):
            # Upstream serves more of the API (archive, terminate, delete, v1beta1, ...) than the fake; say so
            # rather than answer a misleading 404. Code Unimplemented, as the gateway gives a wrong method.
            return 501, unimplemented(f"{method} {path}").body()
        # grpc-gateway DefaultRoutingErrorHandler: an unknown path is NotFound.
        return 404, ApiError(NOT_FOUND, "Not Found").body()

    def _routes(self) -> list[tuple[str | None, str, Callable[..., Any]]]:
        segment = r"[^/:]+"
        return [
            ("GET", f"{API}/healthz", self._healthz),
            # The upload handlers are registered without a method (backend/src/apiserver/main.go
            # buildHTTPRouter): any method reaches them and fails on the missing form file.
            (None, f"{API}/pipelines/upload", self._upload_pipeline),
            (None, f"{API}/pipelines/upload_version", self._upload_version),
            ("GET", f"{API}/pipelines", self._list_pipelines),
            ("GET", f"{API}/pipelines/(?P<pipeline_id>{segment})", self._get_pipeline),
            ("GET", f"{API}/pipelines/(?P<pipeline_id>{segment})/versions", self._list_versions),
            (
                "GET",
                f"{API}/pipelines/(?P<pipeline_id>{segment})/versions/(?P<version_id>{segment})",
                self._get_version,
            ),
            ("POST", f"{API}/experiments", self._create_experiment),
            ("GET", f"{API}/experiments", self._list_experiments),
            ("GET", f"{API}/experiments/(?P<experiment_id>{segment})", self._get_experiment),
            ("POST", f"{API}/experiments/(?P<experiment_id>{segment}):archive", self._archive_experiment),
            ("POST", f"{API}/experiments/(?P<experiment_id>{segment}):unarchive", self._unarchive_experiment),
            ("POST", f"{API}/runs", self._create_run),
            ("GET", f"{API}/runs", self._list_runs),
            ("GET", f"{API}/runs/(?P<run_id>{segment})", self._get_run),
        ]

    # -- healthz
    def _healthz(self, **_: Any) -> dict[str, Any]:
        # main.go healthzResponse: commit_sha, tag_name, multi_user, pipeline_store (omitempty).
        return {
            "commit_sha": "unknown",
            "tag_name": "2.17.0",
            "multi_user": False,
            "pipeline_store": "database",
        }

    # -- pipelines
    def _upload_pipeline(self, *, query: dict[str, list[str]], headers: Any, body: bytes) -> Any:
        # pipeline_upload_server.go uploadPipeline@2.17.0, step by step.
        filename, content = _form_file(headers, body, "Failed to read pipeline from file")
        spec = _read_pipeline_file(filename, content, "Failed to read a pipeline spec file")
        name = _first(query, "name") or _first(query, "display_name") or filename
        display_name = _first(query, "display_name") or name
        description = _first(query, "description")
        tags = _tags(query)
        if any(p.name == name and not p.namespace for p in self.state.pipelines.values()):
            raise UploadError(409, "Failed to create a pipeline and a pipeline version")
        now = _now()
        pipeline = models.V2beta1Pipeline(
            pipeline_id=str(uuid.uuid4()),
            name=name,
            display_name=display_name,
            description=description or None,
            created_at=now,
            tags=tags,
        )
        version = models.V2beta1PipelineVersion(
            pipeline_id=pipeline.pipeline_id,
            pipeline_version_id=str(uuid.uuid4()),
            name=name,
            display_name=display_name,
            description=description or None,
            created_at=now,
            pipeline_spec=spec,
        )
        self.state.pipelines[pipeline.pipeline_id] = pipeline
        self.state.versions[version.pipeline_version_id] = version
        return pipeline

    def _upload_version(self, *, query: dict[str, list[str]], headers: Any, body: bytes) -> Any:
        # pipeline_upload_server.go uploadPipelineVersion@2.17.0.
        filename, content = _form_file(headers, body, "Failed to create a pipeline version")
        spec = _read_pipeline_file(filename, content, "Failed to create a pipeline version")
        pipeline_id = _first(query, "pipelineid")
        if not pipeline_id:
            raise UploadError(400, "Failed to create a pipeline version")
        name = _first(query, "name") or _first(query, "display_name") or filename
        display_name = _first(query, "display_name") or name
        if pipeline_id not in self.state.pipelines:
            # FetchNamespaceFromPipelineId fails: the handler answers 400, not 404.
            raise UploadError(400, "Failed to create a pipeline version")
        tags = _tags(query)
        if any(v.pipeline_id == pipeline_id and v.name == name for v in self.state.versions.values()):
            raise UploadError(409, "Failed to create a pipeline version")
        version = models.V2beta1PipelineVersion(
            pipeline_id=pipeline_id,
            pipeline_version_id=str(uuid.uuid4()),
            name=name,
            display_name=display_name,
            description=_first(query, "description") or None,
            created_at=_now(),
            pipeline_spec=spec,
            tags=tags,
        )
        self.state.versions[version.pipeline_version_id] = version
        return version

    def _list_pipelines(self, *, query: dict[str, list[str]], **_: Any) -> Any:
        items = _listing(list(self.state.pipelines.values()), query, "pipeline")
        page, total, token = items
        return models.V2beta1ListPipelinesResponse(
            pipelines=page or None, total_size=total, next_page_token=token
        )

    def _get_pipeline(self, *, pipeline_id: str, **_: Any) -> Any:
        pipeline = self.state.pipelines.get(pipeline_id)
        if pipeline is None:
            raise not_found(
                "Pipeline",
                pipeline_id,
                f"Failed to get a pipeline with id {pipeline_id}",
                f"Failed to get a pipeline {pipeline_id}. Check error stack",
            )
        return pipeline

    def _list_versions(self, *, pipeline_id: str, query: dict[str, list[str]], **_: Any) -> Any:
        if pipeline_id not in self.state.pipelines:
            raise not_found(
                "Pipeline",
                pipeline_id,
                f"Failed to get a pipeline with id {pipeline_id}",
                f"Failed to get namespace for pipeline id {pipeline_id}",
                "Failed to list pipeline versions due to error fetching the namespace for pipeline "
                f"{pipeline_id}",
                f"Failed to list pipeline versions for pipeline {pipeline_id}",
            )
        versions = [v for v in self.state.versions.values() if v.pipeline_id == pipeline_id]
        page, total, token = _listing(versions, query, "pipeline_version")
        return models.V2beta1ListPipelineVersionsResponse(
            pipeline_versions=page or None, total_size=total, next_page_token=token
        )

    def _get_version(self, *, pipeline_id: str, version_id: str, **_: Any) -> Any:
        # The v2beta1 GetPipelineVersion looks the version up by its id alone; pipeline_id is not checked
        # (pipeline_server.go GetPipelineVersion@2.17.0).
        del pipeline_id
        version = self.state.versions.get(version_id)
        if version is None:
            raise not_found(
                "PipelineVersion",
                version_id,
                f"Failed to get a pipeline version with id {version_id}",
                f"Failed to get a pipeline version {version_id}",
            )
        return version

    # -- experiments
    def _create_experiment(self, *, body: bytes, **_: Any) -> Any:
        experiment = parse_body(body, "V2beta1Experiment")
        if not experiment.display_name:
            raise internal(
                invalid_input("Experiment must have a non-empty name"),
                "Failed to convert API experiment to model experiment",
            ).wrap("[ExperimentServer]: Failed to create a experiment due to conversion error")
        if any(e.display_name == experiment.display_name for e in self.state.experiments.values()):
            raise already_exists(
                f"Failed to create a new experiment. The name {experiment.display_name} already exists. "
                "Please specify a new name"
            ).wrap("Failed to create a experiment")
        return self._add_experiment(experiment.display_name, experiment.description)

    def _add_experiment(self, name: str, description: str | None) -> Any:
        experiment = models.V2beta1Experiment(
            experiment_id=str(uuid.uuid4()),
            display_name=name,
            description=description or None,
            created_at=_now(),
            last_run_created_at=EPOCH,
            storage_state="AVAILABLE",
        )
        self.state.experiments[experiment.experiment_id] = experiment
        return experiment

    def _list_experiments(self, *, query: dict[str, list[str]], **_: Any) -> Any:
        page, total, token = _listing(list(self.state.experiments.values()), query, "experiment")
        return models.V2beta1ListExperimentsResponse(
            experiments=page or None, total_size=total, next_page_token=token
        )

    def _get_experiment(self, *, experiment_id: str, **_: Any) -> Any:
        experiment = self.state.experiments.get(experiment_id)
        if experiment is None:
            raise not_found("Experiment", experiment_id, "Failed to fetch experiment")
        return experiment

    def _archive_experiment(self, *, experiment_id: str, **_: Any) -> Any:
        # experiment.proto ArchiveExperiment: the experiment and its runs become ARCHIVED (kept, hidden from
        # the default listing in the UI); the answer is an empty message.
        experiment = self._get_experiment(experiment_id=experiment_id)
        experiment.storage_state = "ARCHIVED"
        for run in self.state.runs.values():
            if run.experiment_id == experiment_id:
                run.storage_state = "ARCHIVED"
        return {}

    def _unarchive_experiment(self, *, experiment_id: str, **_: Any) -> Any:
        # UnarchiveExperiment restores the experiment; its archived runs stay archived (experiment.proto).
        self._get_experiment(experiment_id=experiment_id).storage_state = "AVAILABLE"
        return {}

    # -- runs
    def _create_run(self, *, body: bytes, **_: Any) -> Any:
        # run_server.go CreateRun / createRun and resource_manager.go CreateRun@2.17.0, in their order.
        run = parse_body(body, "V2beta1Run")
        if run.plugins_output:
            raise ApiError(
                ABORTED,
                "BadRequestError: plugins_output is server-owned and populated exclusively via plugin "
                "lifecycle hooks: plugins_output must not be set by the client",
                "plugins_output is server-owned and populated exclusively via plugin lifecycle hooks",
            )
        if not run.display_name:
            raise internal(
                invalid_input("Run name cannot be empty"),
                "Failed to convert a API run detail to its internal representation",
            ).wrap("CreateJob(job.ToV2())Failed to create a run due to conversion error")
        experiment_id = run.experiment_id
        if experiment_id:
            if experiment_id not in self.state.experiments:
                raise not_found(
                    "Experiment",
                    experiment_id,
                    f"Failed to fetch namespace from experiment {experiment_id}",
                    f"Failed to fetch namespace for experiment {experiment_id}",
                    "Failed to create a run due to invalid experimentId and namespace combination",
                    "Failed to create a new run",
                )
        else:
            experiment_id = self._default_experiment()
        reference = run.pipeline_version_reference
        source_spec = None
        version = None
        if reference is not None and reference.pipeline_version_id:
            version = self.state.versions.get(reference.pipeline_version_id)
            if version is None:
                raise self._run_source_error(
                    not_found(
                        "PipelineVersion",
                        reference.pipeline_version_id,
                        f"Failed to get a pipeline version with id {reference.pipeline_version_id}",
                        "Failed to fetch a pipeline version and its manifest from pipeline version "
                        f"{reference.pipeline_version_id}",
                    )
                )
            if reference.pipeline_id and version.pipeline_id != reference.pipeline_id:
                raise self._run_source_error(
                    invalid_input(
                        f"Pipeline version {version.pipeline_version_id} belongs to pipeline "
                        f"{version.pipeline_id} (not {reference.pipeline_id})"
                    )
                )
        elif reference is not None and reference.pipeline_id:
            if reference.pipeline_id not in self.state.pipelines:
                raise self._run_source_error(
                    not_found(
                        "Pipeline",
                        reference.pipeline_id,
                        "Failed to get the latest pipeline version as pipeline was not found",
                        "Failed to fetch a pipeline version and its manifest from pipeline "
                        f"{reference.pipeline_id}",
                    )
                )
            candidates = [v for v in self.state.versions.values() if v.pipeline_id == reference.pipeline_id]
            version = max(candidates, key=lambda v: v.created_at)
        elif run.pipeline_spec:
            source_spec = run.pipeline_spec
        else:
            raise internal(
                invalid_input("Failed to fetch a template with an empty pipeline spec manifest"),
                "Failed to create a run due to error fetching manifest",
            ).wrap("Failed to create a new run")
        now = _now()
        runtime_config = run.runtime_config
        if runtime_config is not None and not runtime_config.parameters and not runtime_config.pipeline_root:
            runtime_config = None
        created = models.V2beta1Run(
            experiment_id=experiment_id,
            run_id=str(uuid.uuid4()),
            display_name=run.display_name,
            description=run.description or None,
            storage_state="AVAILABLE",
            service_account=run.service_account or None,
            runtime_config=runtime_config,
            created_at=now,
            scheduled_at=now,
            finished_at=EPOCH,
            state="PENDING",
            state_history=[models.V2beta1RuntimeStatus(update_time=now, state="PENDING")],
        )
        if version is not None:
            created.pipeline_version_reference = models.V2beta1PipelineVersionReference(
                pipeline_id=version.pipeline_id, pipeline_version_id=version.pipeline_version_id
            )
        else:
            created.pipeline_spec = source_spec
        self.state.runs[created.run_id] = created
        self.state.experiments[experiment_id].last_run_created_at = now
        return created

    @staticmethod
    def _run_source_error(cause: ApiError) -> ApiError:
        # resource_manager.go CreateRun wraps every template error in NewInternalServerError: an unknown
        # pipeline or version reaches the client as 500 "Internal Server Error", not 404.
        return internal(
            cause.wrap("Failed to fetch a template due to error retrieving pipeline version"),
            "Failed to create a run due to error fetching manifest",
        ).wrap("Failed to create a new run")

    def _default_experiment(self) -> str:
        if self.state.default_experiment_id is None:
            self.state.default_experiment_id = self._add_experiment("Default", None).experiment_id
        return self.state.default_experiment_id

    def _list_runs(self, *, query: dict[str, list[str]], **_: Any) -> Any:
        runs = list(self.state.runs.values())
        experiment_id = _first(query, "experiment_id")
        if experiment_id:
            runs = [r for r in runs if r.experiment_id == experiment_id]
        page, total, token = _listing(runs, query, "run")
        return models.V2beta1ListRunsResponse(runs=page or None, total_size=total, next_page_token=token)

    def _get_run(self, *, run_id: str, **_: Any) -> Any:
        run = self.state.runs.get(run_id)
        if run is None:
            raise not_found("Run", run_id, f"Failed to fetch run {run_id}", "Failed to get a run")
        return run


class _Handler(BaseHTTPRequestHandler):
    server_fake: KfpApiFake
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload = self.server_fake.handle(self.command, parts.path, query, self.headers, body)
        data = json.dumps(_SERIALIZER.sanitize_for_serialization(payload)).encode()
        with self.server_fake.lock:
            self.server_fake.requests.append(Recorded(self.command, parts.path, query, status))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        return


# --- helpers -------------------------------------------------------------------------------------------


def _now() -> datetime.datetime:
    # protojson Timestamps from time.Unix(seconds, 0): whole seconds.
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _first(query: dict[str, list[str]], key: str) -> str:
    values = query.get(key) or [""]
    return values[0]


def _tags(query: dict[str, list[str]]) -> dict[str, str] | None:
    """The optional ``tags`` query parameter: a JSON object of strings (pipeline_upload_server.go)."""
    text = _first(query, "tags")
    if not text:
        return None
    try:
        tags = json.loads(text)
    except ValueError:
        tags = None
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise UploadError(
            400, "Failed to parse tags query parameter. Expected JSON object with string keys and values"
        )
    return tags


def _form_file(headers: Any, body: bytes, failure: str) -> tuple[str, bytes]:
    """The ``uploadfile`` part of a multipart/form-data body (``r.FormFile(FormFileKey)``)."""
    content_type = headers.get("Content-Type", "")
    if not content_type.startswith("multipart/form-data"):
        raise UploadError(400, failure)
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "uploadfile":
            return part.get_filename() or "", part.get_payload(decode=True) or b""
    raise UploadError(400, failure)


def _read_pipeline_file(filename: str, content: bytes, failure: str) -> dict[str, Any]:
    """``ReadPipelineFile`` (server/util.go) then the stored form of the spec (api_util.go
    ``YamlStringToPipelineSpecStruct``): the pipeline spec, or ``{"pipeline_spec", "platform_spec"}`` when the
    file has a second, platform document. YAML or JSON by file name; zip/tarball not implemented here."""
    if content[:2] == b"PK" or content[:2] == b"\x1f\x8b":
        raise UploadError(501, "kfp_api_fake does not implement zip or tarball uploads")
    if not filename.endswith((".yaml", ".yml", ".json")):
        raise UploadError(400, failure)
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        documents = [doc for doc in yaml.load_all(content, Loader=loader) if doc is not None]
    except yaml.YAMLError:
        documents = []
    pipeline_specs = [
        doc for doc in documents if isinstance(doc, dict) and "pipelineInfo" in doc and "root" in doc
    ]
    platform_specs = [doc for doc in documents if isinstance(doc, dict) and "platforms" in doc]
    if len(pipeline_specs) != 1:
        # template.New: neither a v1 (Argo) nor a v2 (PipelineSpec) template.
        raise UploadError(400, "unknown template format")
    _v2_pipeline_name(pipeline_specs[0])
    if platform_specs:
        return {"pipeline_spec": pipeline_specs[0], "platform_spec": platform_specs[0]}
    return pipeline_specs[0]


def _v2_pipeline_name(spec: dict[str, Any]) -> str:
    """``common.ValidatePipelineName`` on pipelineInfo.name (MLMD's rule), answered 400 as InvalidArgument."""
    name = (spec.get("pipelineInfo") or {}).get("name") or ""
    if not name:
        raise UploadError(400, "pipeline's name cannot be empty")
    if len(name) > 128:
        raise UploadError(400, "pipeline's name must contain no more than 128 characters")
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,127}", name):
        raise UploadError(
            400,
            "pipeline's name must contain only lowercase alphanumeric characters or '-' and must start with "
            "alphanumeric characters",
        )
    return name


def _listing(items: list[Any], query: dict[str, list[str]], kind: str) -> tuple[list[Any], int, str | None]:
    """Filter, order (by creation) and page ``items`` as the list endpoints do."""
    filter_text = _first(query, "filter")
    if filter_text:
        filter_model = parse_body(filter_text.encode(), "V2beta1Filter")
        for predicate in filter_model.predicates or []:
            if predicate.key not in FILTER_KEYS[kind]:
                # filter.go NewWithKeyMap: an unknown key is InvalidArgument, whatever the table holds.
                raise invalid_input(f"no support for filtering on unrecognized field {predicate.key!r}")
            items = [item for item in items if _matches(item, predicate, kind)]
    sort_by = _first(query, "sort_by")
    if sort_by and sort_by.split()[0] != "created_at":
        raise unimplemented(f"sort_by={sort_by!r} (only created_at)")
    items = sorted(items, key=lambda item: item.created_at, reverse=sort_by.endswith(" desc"))
    try:
        page_size = int(_first(query, "page_size") or 0)
    except ValueError:
        raise _decode_error("page_size", "invalid value for int32") from None
    if page_size < 0:
        raise invalid_input(f"The page size should be greater than 0. Got {page_size}")
    page_size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    token = _first(query, "page_token")
    offset = int(base64.urlsafe_b64decode(token).decode()) if token else 0
    page = items[offset : offset + page_size]
    more = offset + page_size < len(items)
    next_token = base64.urlsafe_b64encode(str(offset + page_size).encode()).decode() if more else None
    return page, len(items), next_token


def _matches(item: Any, predicate: Any, kind: str) -> bool:
    attribute = FILTER_KEYS[kind][predicate.key]
    if attribute is None:
        raise unimplemented(f"filtering on {predicate.key!r}")
    operation = predicate.operation
    if isinstance(operation, int):
        operation = models.V2beta1PredicateOperation.allowable_values[operation]
    actual = getattr(item, attribute)
    expected: Any = predicate.string_value
    if expected is None:
        expected = predicate.int_value if predicate.int_value is not None else predicate.long_value
    if operation == "EQUALS":
        return (actual or "") == expected
    if operation == "NOT_EQUALS":
        return (actual or "") != expected
    if operation == "IS_SUBSTRING":
        return str(expected) in str(actual or "")
    raise unimplemented(f"filter operation {operation}")


__all__ = ["ApiError", "KfpApiFake", "Recorded", "check_body", "parse_body"]
