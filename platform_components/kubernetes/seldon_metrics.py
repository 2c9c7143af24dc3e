"""PromQL over the inference metrics Seldon Core 2's agent exports: one place for names, labels and codes.

Seldon Core 2.10 (SeldonIO/seldon-core scheduler/pkg/metrics/agent.go@v2.10.2) counts every inference per
model in ``seldon_model_infer_total`` and sums its latency in ``seldon_model_infer_seconds_total``, both
labelled ``server, server_replica, model, model_internal, method_type, code``. The latency histogram
``seldon_model_infer_api_seconds`` has no ``model`` label (``server, server_replica, method, code``), so
per-model latency is the ratio of the two counters (a mean, not a quantile); the histogram serves only
the fleet-wide quantile.

``code`` is the HTTP status as a decimal string for REST (``HttpCodeToString``, scheduler/pkg/agent/rproxy.go)
and the gRPC status name for gRPC (``codes.Code.String()``: ``OK``, ``Internal``, ...,
scheduler/pkg/agent/rproxy_grpc.go). A client's mistake (our serving layer's 4xx, gRPC ``InvalidArgument``)
or a success (gRPC ``OK``) is not a server error: only 5xx and the gRPC codes Google's API design maps to
5xx count.
"""

from __future__ import annotations

INFER_COUNT = "seldon_model_infer_total"
INFER_SECONDS = "seldon_model_infer_seconds_total"
INFER_HISTOGRAM = "seldon_model_infer_api_seconds"

# gRPC codes whose HTTP mapping is 5xx (google/rpc/code.proto): Unknown, DeadlineExceeded, Unimplemented,
# Internal, Unavailable, DataLoss; spelled as grpc-go's Code.String() (codes/code_string.go@v1.73.0, the
# version Seldon 2.10.2's scheduler/go.mod pins).
GRPC_SERVER_ERROR_CODES = (
    "Unknown",
    "DeadlineExceeded",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
)
SERVER_ERROR_CODE_PATTERN = "5..|" + "|".join(GRPC_SERVER_ERROR_CODES)


def _selector(*matchers: str) -> str:
    present = [matcher for matcher in matchers if matcher]
    return "{" + ",".join(present) + "}" if present else ""


def error_share(model_matcher: str = "", window: str = "5m") -> str:
    """The share of inference requests that failed on the server side (0 when there is no traffic)."""
    errors = _selector(model_matcher, f'code=~"{SERVER_ERROR_CODE_PATTERN}"')
    every = _selector(model_matcher)
    return (
        f"(sum(rate({INFER_COUNT}{errors}[{window}])) or vector(0)) / "
        f"clamp_min(sum(rate({INFER_COUNT}{every}[{window}])), 1e-9)"
    )


def mean_latency(model_matcher: str, window: str = "5m") -> str:
    """Mean inference latency in seconds from Seldon's per-model counters (empty when there is no traffic)."""
    selector = _selector(model_matcher)
    return f"sum(rate({INFER_SECONDS}{selector}[{window}])) / sum(rate({INFER_COUNT}{selector}[{window}]))"


def fleet_latency_quantile(quantile: float, window: str = "5m") -> str:
    """A latency quantile over every model, from the agent's histogram (it has no ``model`` label)."""
    return f"histogram_quantile({quantile}, sum by (le) (rate({INFER_HISTOGRAM}_bucket[{window}])))"
