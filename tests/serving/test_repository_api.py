"""The model-repository API is closed to inference clients (REST and gRPC); the admin token opens it on REST.

The process tests run on the session's real server (``serving_server``: MLflow, a registered model, our
MLServer wrapper); the unit tests read MLServer's own route table and service descriptors, so a version of
MLServer that adds a repository route or RPC fails here until the guard covers it.
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess

import grpc
import httpx
import pytest
from processes import find_free_port
from upstream_facts import fact

from platform_components.errors import ServingError
from platform_components.serving import launch
from platform_components.serving.client import InferenceClient
from platform_components.serving.server import (
    REFUSED_GRPC_METHODS,
    REPOSITORY_PATH_PREFIX,
    RepositoryGuard,
)

from .conftest import MODEL_NAME, make_frame

pytestmark = pytest.mark.timeout(300)

REPOSITORY_CALLS = [
    "/v2/repository/index",
    f"/v2/repository/models/{MODEL_NAME}/load",
    f"/v2/repository/models/{MODEL_NAME}/unload",
]


def _assert_still_serving(server) -> None:
    assert httpx.get(f"{server.url}/v2/models/{MODEL_NAME}/ready", timeout=10).status_code == 200
    with InferenceClient(server.url) as client:
        assert client.infer(MODEL_NAME, make_frame(1, seed=2).drop(columns=["default"])).model_version == "1"


# --- REST, on the real server -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-the-token"},
        {"Authorization": "not-the-token"},
        {"Authorization": ""},
    ],
    ids=["no-token", "wrong-token", "no-scheme", "empty"],
)
@pytest.mark.parametrize("path", [*REPOSITORY_CALLS, "/v2/repository/index/", "/v2/repository/anything"])
def test_an_inference_client_cannot_list_load_or_unload_over_rest(serving_server, path, headers):
    response = httpx.post(f"{serving_server.url}{path}", headers=headers, json={}, timeout=10)
    assert response.status_code == 403, response.text
    assert "mlops deploy" in response.json()["error"]
    _assert_still_serving(serving_server)


def test_two_authorization_headers_are_refused_even_with_the_token(serving_server):
    headers = [
        ("Authorization", "Bearer not-the-token"),
        ("Authorization", f"Bearer {serving_server.admin_token}"),
    ]
    with httpx.Client(base_url=serving_server.url, timeout=10) as client:
        response = client.post("/v2/repository/index", headers=headers, json={})
    assert response.status_code == 403


def test_the_deployer_lists_and_loads_with_the_admin_token(serving_server):
    headers = {"Authorization": f"Bearer {serving_server.admin_token}"}
    index = httpx.post(f"{serving_server.url}/v2/repository/index", headers=headers, json={}, timeout=10)
    assert index.status_code == 200, index.text
    assert [(item["name"], item["state"]) for item in index.json()] == [(MODEL_NAME, "READY")]
    launch.reload_model(serving_server.url, MODEL_NAME, timeout=60, admin_token=serving_server.admin_token)
    _assert_still_serving(serving_server)


def test_a_load_with_a_stale_token_says_to_restart_serving(serving_server):
    with pytest.raises(ServingError, match=r"HTTP 403.*mlops deploy.*restart serving"):
        launch.reload_model(serving_server.url, MODEL_NAME, timeout=10, admin_token="an-old-token")
    with pytest.raises(ServingError, match=r"HTTP 403"):
        launch.unload_model(serving_server.url, MODEL_NAME, timeout=10, admin_token="an-old-token")
    _assert_still_serving(serving_server)


def test_inference_routes_need_no_token(serving_server):
    for path in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{MODEL_NAME}", "/v2"):
        assert httpx.get(f"{serving_server.url}{path}", timeout=10).status_code == 200, path


# --- gRPC, on the real server -------------------------------------------------------------------------


def _grpc_calls():
    from mlserver.grpc import dataplane_pb2 as dataplane
    from mlserver.grpc import model_repository_pb2 as repository

    inference = "/inference.GRPCInferenceService"
    own = "/inference.model_repository.ModelRepositoryService"
    return [
        (f"{own}/RepositoryIndex", repository.RepositoryIndexRequest(), repository.RepositoryIndexResponse),
        (
            f"{own}/RepositoryModelLoad",
            repository.RepositoryModelLoadRequest(model_name=MODEL_NAME),
            repository.RepositoryModelLoadResponse,
        ),
        (
            f"{own}/RepositoryModelUnload",
            repository.RepositoryModelUnloadRequest(model_name=MODEL_NAME),
            repository.RepositoryModelUnloadResponse,
        ),
        (
            f"{inference}/RepositoryIndex",
            dataplane.RepositoryIndexRequest(),
            dataplane.RepositoryIndexResponse,
        ),
        (
            f"{inference}/RepositoryModelLoad",
            dataplane.RepositoryModelLoadRequest(model_name=MODEL_NAME),
            dataplane.RepositoryModelLoadResponse,
        ),
        (
            f"{inference}/RepositoryModelUnload",
            dataplane.RepositoryModelUnloadRequest(model_name=MODEL_NAME),
            dataplane.RepositoryModelUnloadResponse,
        ),
    ]


@pytest.mark.parametrize("with_token", [False, True], ids=["no-token", "admin-token"])
def test_an_inference_client_cannot_list_load_or_unload_over_grpc(serving_server, with_token):
    from mlserver.grpc import dataplane_pb2 as dataplane

    metadata = (("authorization", f"Bearer {serving_server.admin_token}"),) if with_token else ()
    calls = _grpc_calls()
    assert {method for method, _, _ in calls} == REFUSED_GRPC_METHODS
    with grpc.insecure_channel(serving_server.grpc_target) as channel:
        for method, request, response_type in calls:
            call = channel.unary_unary(
                method,
                request_serializer=type(request).SerializeToString,
                response_deserializer=response_type.FromString,
            )
            with pytest.raises(grpc.RpcError) as refused:
                call(request, timeout=10, metadata=metadata)
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, method
            assert "mlops deploy" in refused.value.details(), method
        # The rest of the inference service still answers on the same port.
        ready = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelReady",
            request_serializer=dataplane.ModelReadyRequest.SerializeToString,
            response_deserializer=dataplane.ModelReadyResponse.FromString,
        )
        assert ready(dataplane.ModelReadyRequest(name=MODEL_NAME), timeout=10).ready is True
    _assert_still_serving(serving_server)


# --- the token file -----------------------------------------------------------------------------------


def test_the_admin_token_file_is_new_each_time_and_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "serving" / "admin.token"
    first = launch.create_admin_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert launch.read_admin_token(path) == first and len(first) >= 40
    second = launch.create_admin_token(path)
    assert second != first and launch.read_admin_token(path) == second
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [item.name for item in path.parent.iterdir()] == ["admin.token"]


def test_a_token_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "admin.token"
    launch.create_admin_token(path)
    os.chmod(path, 0o644)
    with pytest.raises(ServingError, match=r"-rw-r--r--.*readable by its owner only.*restart serving"):
        launch.read_admin_token(path)


def test_a_missing_or_empty_token_file_is_refused(tmp_path):
    with pytest.raises(ServingError, match=r"does not exist.*mlops up --local"):
        launch.read_admin_token(tmp_path / "absent.token")
    empty = tmp_path / "empty.token"
    empty.touch(mode=0o600)
    with pytest.raises(ServingError, match="is empty"):
        launch.read_admin_token(empty)


def test_the_server_settings_name_the_token_file(tmp_path):
    token_file = tmp_path / "admin.token"
    launch.write_server_settings(
        tmp_path,
        host="127.0.0.1",
        http_port=9001,
        grpc_port=9002,
        metrics_port=9003,
        admin_token_file=token_file,
    )
    assert launch.read_platform_settings(tmp_path)["admin_token_file"] == str(token_file.resolve())
    launch.write_server_settings(
        tmp_path, host="127.0.0.1", http_port=9001, grpc_port=9002, metrics_port=9003
    )
    assert launch.read_platform_settings(tmp_path)["admin_token_file"] is None


def test_the_server_does_not_start_on_a_token_file_others_can_read(tmp_path):
    token_file = tmp_path / "admin.token"
    launch.create_admin_token(token_file)
    os.chmod(token_file, 0o640)
    repo = tmp_path / "repo"
    ports = set()
    while len(ports) < 3:
        ports.add(find_free_port())
    http_port, grpc_port, metrics_port = sorted(ports)
    launch.write_server_settings(
        repo,
        host="127.0.0.1",
        http_port=http_port,
        grpc_port=grpc_port,
        metrics_port=metrics_port,
        admin_token_file=token_file,
    )
    finished = subprocess.run(
        launch.server_command(repo), capture_output=True, text=True, timeout=120, check=False
    )
    assert finished.returncode != 0
    assert "readable by its owner only" in finished.stderr, finished.stderr[-2000:]


# --- the guard itself, without a server ---------------------------------------------------------------


def _call_guard(admin_token: str | None, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, bool]:
    """(status the guard answered, 0 if none; whether the request reached the app)."""
    reached: list[bool] = []
    sent: list[dict] = []

    async def app(scope, receive, send) -> None:
        reached.append(True)

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "path": path, "headers": headers, "method": "POST"}
    asyncio.run(RepositoryGuard(app, admin_token=admin_token)(scope, receive, send))
    status = sent[0]["status"] if sent else 0
    return status, bool(reached)


def test_without_a_token_the_guard_refuses_everyone():
    for header in ([], [(b"authorization", b"Bearer None")], [(b"authorization", b"Bearer ")]):
        assert _call_guard(None, "/v2/repository/index", header) == (403, False)
    assert _call_guard(None, "/v2/models/m/infer", []) == (0, True)


def test_the_guard_lets_inference_paths_and_the_right_token_through():
    token = "s3cret"
    assert _call_guard(token, "/v2/models/m/infer", []) == (0, True)
    assert _call_guard(token, "/v2/repository/index", [(b"authorization", b"Bearer s3cret")]) == (0, True)
    assert _call_guard(token, "/v2/repository/index", [(b"authorization", b"Bearer s3cre")]) == (403, False)
    assert _call_guard(token, "/v2/repository/index", [(b"authorization", b"bearer s3cret")]) == (403, False)
    assert _call_guard(token, "/v2/repository/models/m/load", []) == (403, False)


# --- what MLServer registers, read from MLServer ------------------------------------------------------


def test_every_repository_route_mlserver_registers_is_behind_the_guard():
    from mlserver.handlers import ModelRepositoryHandlers
    from mlserver.registry import MultiModelRegistry
    from mlserver.repository import SchemalessModelRepository
    from mlserver.rest.app import create_app
    from mlserver.rest.endpoints import ModelRepositoryEndpoints
    from mlserver.settings import Settings

    settings = Settings(metrics_endpoint=None)
    handlers = ModelRepositoryHandlers(
        repository=SchemalessModelRepository("."), model_registry=MultiModelRegistry()
    )
    # The data plane is only kept by the endpoints (a real one registers process-wide metrics).
    app = create_app(settings, None, handlers)
    repository_routes = {
        route.path: sorted(route.methods)
        for route in app.routes
        if isinstance(getattr(getattr(route, "endpoint", None), "__self__", None), ModelRepositoryEndpoints)
    }
    assert repository_routes == fact("mlserver.rest.repository_routes")
    assert all(path.startswith(REPOSITORY_PATH_PREFIX) for path in repository_routes)
    # Nothing else MLServer serves starts with the prefix: the guard closes the repository API only.
    others = [route.path for route in app.routes if route.path not in repository_routes]
    assert others and not [path for path in others if path.startswith(REPOSITORY_PATH_PREFIX)]


def test_every_repository_rpc_mlserver_registers_is_refused():
    from mlserver.grpc import dataplane_pb2, model_repository_pb2

    repository_rpcs = set()
    for module in (dataplane_pb2, model_repository_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                if method.name.startswith("Repository"):
                    repository_rpcs.add(f"/{service.full_name}/{method.name}")
    assert repository_rpcs == set(fact("mlserver.grpc.repository_methods")) == REFUSED_GRPC_METHODS


def test_mlserver_maps_no_http_status_to_permission_denied():
    from mlserver.grpc.utils import STATUS_CODE_MAPPING

    assert {status: code.name for status, code in STATUS_CODE_MAPPING.items()} == fact(
        "mlserver.grpc.status_mapping"
    )


def test_the_refusal_runs_before_mlservers_own_interceptors():
    from mlserver.grpc.interceptors import LoggingInterceptor, PromServerInterceptor
    from mlserver.settings import Settings

    from platform_components.serving.server import InferenceOnlyGRPCServer, RepositoryRefusal

    settings = Settings(host="127.0.0.1", grpc_port=find_free_port(), metrics_endpoint="/metrics", debug=True)
    # The servicers only keep the data plane and handlers; no call reaches them here.
    server = InferenceOnlyGRPCServer(settings, None, None)
    assert fact("mlserver.grpc.interceptors_attribute") == "_interceptors"

    async def build() -> list:
        aio_server = server._create_server()
        await aio_server.stop(None)
        return list(server._interceptors)

    kinds = [type(interceptor) for interceptor in asyncio.run(build())]
    # MLServer's own list, unchanged, behind ours: access logs (debug mode), then metrics. Once per
    # process: the metrics interceptor registers its series in the global registry.
    assert kinds == [RepositoryRefusal, LoggingInterceptor, PromServerInterceptor]
