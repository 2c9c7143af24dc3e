"""Where MLServer 1.7.1 serves its model-repository API, and the hooks our wrapper uses to close it.

Read in the installed wheel (mlserver 1.7.1, identical to the tag's files) and in SeldonIO/MLServer at 1.7.1.
"""

from __future__ import annotations

from upstream_facts import Fact

REST_APP = "SeldonIO/MLServer mlserver/rest/app.py@1.7.1"
GRPC_SERVER = "SeldonIO/MLServer mlserver/grpc/server.py@1.7.1"

FACTS = [
    Fact(
        key="mlserver.rest.repository_routes",
        statement="The REST app registers the model-repository API as three POST routes (index, load, "
        "unload) beside the inference routes, on the same port, with no authentication",
        source=REST_APP,
        value={
            "/v2/repository/index": ["POST"],
            "/v2/repository/models/{model_name}/load": ["POST"],
            "/v2/repository/models/{model_name}/unload": ["POST"],
        },
    ),
    Fact(
        key="mlserver.grpc.repository_methods",
        statement="The gRPC server registers both the ModelRepositoryService and the inference service on "
        "one port, and both carry RepositoryIndex, RepositoryModelLoad and RepositoryModelUnload",
        source=GRPC_SERVER,
        value=(
            "/inference.GRPCInferenceService/RepositoryIndex",
            "/inference.GRPCInferenceService/RepositoryModelLoad",
            "/inference.GRPCInferenceService/RepositoryModelUnload",
            "/inference.model_repository.ModelRepositoryService/RepositoryIndex",
            "/inference.model_repository.ModelRepositoryService/RepositoryModelLoad",
            "/inference.model_repository.ModelRepositoryService/RepositoryModelUnload",
        ),
    ),
    Fact(
        key="mlserver.grpc.interceptors_attribute",
        statement="GRPCServer._create_server assigns its interceptor list to this attribute, appends the "
        "metrics and tracing interceptors to it, and passes a copy to grpc.aio.server; it accepts no "
        "interceptor from outside",
        source=GRPC_SERVER,
        value="_interceptors",
    ),
    Fact(
        key="mlserver.grpc.built_in_start",
        statement="GRPCServer's constructor only keeps its arguments; the aio server is created and its "
        "port bound in start(), through _create_server",
        source=GRPC_SERVER,
        value="start",
    ),
    Fact(
        key="mlserver.server.create_servers",
        statement="MLServer.__init__ calls _create_servers, which sets _rest_server and _grpc_server from "
        "the settings, the data plane and the model-repository handlers; start() starts those two",
        source="SeldonIO/MLServer mlserver/server.py@1.7.1",
        value=("_rest_server", "_grpc_server"),
    ),
    Fact(
        key="mlserver.rest.app_attribute",
        statement="RESTServer keeps the FastAPI app it builds with create_app in this attribute, before "
        "the server starts",
        source="SeldonIO/MLServer mlserver/rest/server.py@1.7.1",
        value="_app",
    ),
    Fact(
        key="mlserver.grpc.status_mapping",
        statement="MLServer's gRPC handlers map only HTTP 400, 404, 422 and 500 to gRPC codes, everything "
        "else to UNKNOWN, and RepositoryIndex has no error mapping at all, so a refusal through "
        "MLServer's handlers could not be PERMISSION_DENIED: the interceptor answers instead",
        source="SeldonIO/MLServer mlserver/grpc/utils.py@1.7.1",
        value={400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 422: "FAILED_PRECONDITION", 500: "INTERNAL"},
    ),
]
