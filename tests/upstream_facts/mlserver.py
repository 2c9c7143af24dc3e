"""MLServer (the inference server our runtime extends): what the event-time parameter and the metrics rely on.

Read in the installed wheel at the pinned version (the package's own source, no code copied).
"""

from __future__ import annotations

from upstream_facts import Fact

DATAPLANE = "SeldonIO/MLServer mlserver/types/dataplane.py@1.7.1"
HANDLERS = "SeldonIO/MLServer mlserver/handlers/dataplane.py@1.7.1"

FACTS = [
    Fact(
        key="mlserver.parameters.extra",
        statement=(
            "The V2 Parameters model of a request keeps keys it does not declare (pydantic extra='allow'), "
            "so a request-level parameter such as mlops_event_time reaches the runtime in "
            "payload.parameters.model_extra; the declared keys are content_type and headers"
        ),
        source=DATAPLANE,
        value={"extra": "allow", "declared": ["content_type", "headers"]},
    ),
    Fact(
        key="mlserver.dataplane.metrics",
        statement=(
            "MLServer's data plane counts every inference in two counters and a summary on the default "
            "Prometheus registry, labelled with the model name and the version as the request's path gives "
            "them (the version is None without /versions/<v>): four series per model with _created off"
        ),
        source=HANDLERS,
        value={
            "model_infer_request_success": ("counter", ("model", "version")),
            "model_infer_request_failure": ("counter", ("model", "version")),
            "model_infer_request_duration": ("summary", ("model", "version")),
        },
    ),
    Fact(
        key="mlserver.dataplane.labels_before_lookup",
        statement=(
            "DataPlane._infer_contextmanager creates the {model, version} children of its duration summary "
            "and failure counter before it asks the registry for the model, so a request for a name that "
            "is not loaded still adds series (then answers ModelNotFound, a 404)"
        ),
        source=HANDLERS,
        value=True,
    ),
    Fact(
        key="mlserver.rest.metrics_paths_grouped",
        statement=(
            "MLServer's REST app adds starlette_exporter's PrometheusMiddleware with prefix rest_server and "
            "the middleware's defaults, which label requests by route template (group_paths) and drop "
            "requests that match no route: the model name in the URL is not a label"
        ),
        source="SeldonIO/MLServer mlserver/rest/app.py@1.7.1",
        value={"prefix": "rest_server", "group_paths": True, "filter_unhandled_paths": True},
    ),
    Fact(
        key="prometheus_client.created_series_switch",
        statement=(
            "prometheus_client adds a _created sample to every counter, histogram and summary child unless "
            "disable_created_metrics() is called or PROMETHEUS_DISABLE_CREATED_SERIES is true at import"
        ),
        source="prometheus/client_python prometheus_client/metrics.py@v0.26.0",
        value="PROMETHEUS_DISABLE_CREATED_SERIES",
    ),
    Fact(
        key="mlserver.rest.mlserver_error_response",
        statement=(
            "MLServer's REST app registers one exception handler, for MLServerError: the answer is a JSON "
            "body {'error': str(exc)} with the error's status_code; any other exception leaves the app"
        ),
        source="SeldonIO/MLServer mlserver/rest/errors.py@1.7.1",
        value={"handled": "MLServerError", "body_key": "error"},
    ),
    Fact(
        key="starlette.server_error_reraises",
        statement=(
            "Starlette's ServerErrorMiddleware answers an unhandled exception with its plain 500 and then "
            "raises the exception again, to the server"
        ),
        source="encode/starlette starlette/middleware/errors.py@0.46.2",
        value=True,
    ),
    Fact(
        key="uvicorn.h11.closes_after_app_exception",
        statement=(
            "uvicorn's h11 protocol logs 'Exception in ASGI application' for an exception out of the app "
            "and, when the response had already started, closes the transport: a keep-alive client's "
            "next request on that connection is reset"
        ),
        source="encode/uvicorn uvicorn/protocols/http/h11_impl.py@0.55.0",
        value=True,
    ),
]
