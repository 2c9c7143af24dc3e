"""Metric names and labels Seldon Core 2's agent exports, and how it spells status codes (v2.10.2)."""

from __future__ import annotations

from upstream_facts import Fact

AGENT = "SeldonIO/seldon-core scheduler/pkg/metrics/agent.go@v2.10.2"

FACTS = [
    Fact(
        key="seldon.metrics.infer_count",
        statement="The agent counts inference calls per model in a counter of this name",
        source=AGENT,
        value="seldon_model_infer_total",
    ),
    Fact(
        key="seldon.metrics.infer_seconds",
        statement="The agent sums inference latency in seconds per model in a counter of this name",
        source=AGENT,
        value="seldon_model_infer_seconds_total",
    ),
    Fact(
        key="seldon.metrics.infer_counter_labels",
        statement="Both per-model inference counters carry exactly these labels",
        source=AGENT,
        value=("server", "server_replica", "model", "model_internal", "method_type", "code"),
    ),
    Fact(
        key="seldon.metrics.histogram",
        statement="The agent's inference latency histogram has this name",
        source=AGENT,
        value="seldon_model_infer_api_seconds",
    ),
    Fact(
        key="seldon.metrics.histogram_labels",
        statement="The latency histogram is labelled by server, replica, method and code only: no model",
        source=AGENT,
        value=("server", "server_replica", "method", "code"),
    ),
    Fact(
        key="seldon.metrics.rest_code",
        statement="REST inference records the HTTP status as a decimal string (HttpCodeToString, %d)",
        source="SeldonIO/seldon-core scheduler/pkg/agent/rproxy.go@v2.10.2",
        value=("200", "400", "404", "500", "503"),
    ),
    Fact(
        key="seldon.metrics.grpc_code",
        statement="gRPC inference records the status code's Go name (codes.Code.String()), e.g. OK, Internal",
        source="SeldonIO/seldon-core scheduler/pkg/agent/rproxy_grpc.go@v2.10.2",
        value="Code.String",
    ),
    Fact(
        key="seldon.metrics.model_label",
        statement="The model label is the external model name (the Model's name, no _<version> suffix)",
        source="SeldonIO/seldon-core scheduler/pkg/agent/rproxy.go@v2.10.2",
        value="Model.metadata.name",
    ),
    Fact(
        key="grpc.codes.names",
        statement="grpc-go's Code.String() spells the status codes so (Seldon 2.10.2 pins grpc-go v1.73.0)",
        source="grpc/grpc-go codes/code_string.go@v1.73.0",
        value=(
            "OK",
            "Canceled",
            "Unknown",
            "InvalidArgument",
            "DeadlineExceeded",
            "NotFound",
            "AlreadyExists",
            "PermissionDenied",
            "ResourceExhausted",
            "FailedPrecondition",
            "Aborted",
            "OutOfRange",
            "Unimplemented",
            "Internal",
            "Unavailable",
            "DataLoss",
            "Unauthenticated",
        ),  # fmt: skip
    ),
    Fact(
        key="grpc.codes.server_errors",
        statement="The gRPC codes whose HTTP mapping is 5xx (the rest map to 2xx or 4xx, a client's doing)",
        source="googleapis/go-genproto googleapis/rpc/code/code.pb.go@ff82c1b0f217",
        value=("Unknown", "DeadlineExceeded", "Unimplemented", "Internal", "Unavailable", "DataLoss"),
    ),
]
