"""A small client for the Open Inference (V2) protocol over REST, with a pandas codec.

Usage::

    with InferenceClient("http://127.0.0.1:8080") as client:
        result = client.infer("credit-default", frame)
        result.outputs  # {"output-1": [[0.9, 0.1], ...]} one value per row

The request id travels in the V2 ``id`` field; the server generates one when it is absent and returns it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from platform_components.errors import ServingError
from platform_components.serving.validation import EVENT_TIME_PARAMETER


class InferenceFailed(ServingError):
    """The server answered an inference call with an error; ``status_code`` is the HTTP status."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class InferenceResult:
    """A V2 response, decoded.

    Attributes:
        request_id: The id the server logged the prediction under.
        model_name: Model that answered.
        model_version: Registered version that answered (``None`` if the server did not say).
        outputs: Output name -> one value per row (a row of several values is a list).
    """

    request_id: str
    model_name: str
    model_version: str | None
    outputs: dict[str, list] = field(default_factory=dict)


def _datatype_for_values(name: str, values: Sequence[Any]) -> str:
    kinds = set()
    for value in values:
        if value is None:
            continue
        if isinstance(value, bool):
            kinds.add("BOOL")
        elif isinstance(value, int):
            kinds.add("INT64")
        elif isinstance(value, float):
            kinds.add("FP64")
        elif isinstance(value, str | bytes):
            kinds.add("BYTES")
        elif hasattr(value, "dtype"):  # numpy scalar
            kinds.add(_datatype_for_dtype(value.dtype))
        else:
            raise ServingError(
                f"input {name!r}: cannot encode a value of type {type(value).__name__} ({value!r}); "
                "use numbers, booleans or strings"
            )
    if not kinds:
        return "FP64"
    if kinds == {"INT64", "FP64"}:
        return "FP64"
    if len(kinds) > 1:
        raise ServingError(f"input {name!r} mixes value types {sorted(kinds)}; give one type per column")
    return kinds.pop()


def _datatype_for_dtype(dtype: Any) -> str:
    kind = getattr(dtype, "kind", "O")
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return "INT64"
    if kind == "f":
        return "FP64"
    return "BYTES"


def _plain(value: Any, datatype: str) -> Any:
    # JSON has no NaN or Infinity: a missing or non-finite number travels as null (strict JSON).
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if datatype == "BYTES":
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if isinstance(value, float) and math.isnan(value):
            return None
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def encode_request(
    rows: Any,
    request_id: str | None = None,
    event_time: float | None = None,
) -> dict[str, Any]:
    """A V2 request body from a pandas DataFrame or a mapping of column -> values.

    Each column becomes one input of shape ``[rows]``; datatypes follow the column types (numbers as
    FP64/INT64, booleans BOOL, anything else BYTES as UTF-8 strings). ``event_time`` (Unix seconds) travels
    as the request parameter ``mlops_event_time``: the time the prediction is logged and monitored at.

    Raises:
        ServingError: empty input, columns of different lengths, values that cannot be encoded, or an
            event time that is not a finite number.
    """
    if event_time is not None and (
        isinstance(event_time, bool)
        or not isinstance(event_time, int | float)
        or not math.isfinite(event_time)
    ):
        raise ServingError(f"event_time: {event_time!r} is not a finite number of Unix seconds")
    inputs = []
    columns: list[tuple[str, list[Any], str]] = []
    if hasattr(rows, "dtypes") and hasattr(rows, "columns"):
        for column in rows.columns:
            series = rows[column]
            datatype = _datatype_for_dtype(series.dtype)
            if datatype == "BYTES" and str(series.dtype) == "object" and series.notna().any():
                # object columns may hold numbers (e.g. ints with None): type them by their values.
                datatype = _datatype_for_values(str(column), series.dropna().tolist())
            columns.append((str(column), series.tolist(), datatype))
    elif isinstance(rows, Mapping):
        for column, values in rows.items():
            if isinstance(values, str | bytes) or not hasattr(values, "__len__"):
                raise ServingError(
                    f"input {column!r}: expected a list of values, one per row (got {values!r})"
                )
            values = list(values)
            columns.append((str(column), values, _datatype_for_values(str(column), values)))
    else:
        raise ServingError(
            f"rows must be a pandas DataFrame or a mapping of column -> values (got {type(rows).__name__})"
        )
    if not columns:
        raise ServingError("rows has no columns: send at least one input")
    lengths = {name: len(values) for name, values, _ in columns}
    if len(set(lengths.values())) != 1:
        raise ServingError(f"every column needs the same number of rows (got {lengths})")
    for name, values, datatype in columns:
        inputs.append(
            {
                "name": name,
                "datatype": datatype,
                "shape": [len(values)],
                "data": [_plain(value, datatype) for value in values],
            }
        )
    body: dict[str, Any] = {"inputs": inputs}
    if request_id is not None:
        body["id"] = str(request_id)
    if event_time is not None:
        body["parameters"] = {EVENT_TIME_PARAMETER: float(event_time)}
    return body


def _rows_of(output: Mapping[str, Any]) -> list:
    data = output.get("data") or []
    shape = output.get("shape") or [len(data)]
    if len(shape) <= 1:
        return list(data)
    # Nested data is already per row; flat data is cut into rows of prod(shape[1:]).
    if data and isinstance(data[0], list):
        return list(data)
    width = math.prod(int(size) for size in shape[1:])
    rows = [data[index : index + width] for index in range(0, len(data), width)] if width else []
    for size in reversed([int(size) for size in shape[2:]]):
        rows = [[row[index : index + size] for index in range(0, len(row), size)] for row in rows]
    return rows


def decode_response(body: Mapping[str, Any]) -> InferenceResult:
    """An :class:`InferenceResult` from a V2 response body."""
    outputs = {str(output["name"]): _rows_of(output) for output in body.get("outputs") or []}
    version = body.get("model_version")
    return InferenceResult(
        request_id=str(body.get("id") or ""),
        model_name=str(body.get("model_name") or ""),
        model_version=None if version is None else str(version),
        outputs=outputs,
    )


class InferenceClient:
    """V2 REST client with a keep-alive connection pool.

    Args:
        base_url: Server root, e.g. ``http://127.0.0.1:8080``.
        timeout: Seconds per call.
    """

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            headers={"Content-Type": "application/json"},
        )

    def _raise_for_error(self, response: httpx.Response, what: str) -> None:
        if response.status_code < 400:
            return
        try:
            body = response.json()
            message = body.get("error") or body.get("detail") if isinstance(body, dict) else body
        except ValueError:
            message = response.text[:500]
        raise InferenceFailed(
            f"{what} failed with HTTP {response.status_code}: {message}", response.status_code
        )

    def infer(
        self,
        model: str,
        rows: Any,
        request_id: str | None = None,
        event_time: float | None = None,
    ) -> InferenceResult:
        """Send rows (a DataFrame or a mapping column -> values) to ``model``; one request, many rows.

        Args:
            model: the served model's name.
            rows: the input rows.
            request_id: the V2 ``id`` (default: the server makes one).
            event_time: when the prediction happens, Unix seconds (default: the server's clock); the
                server refuses a time more than 300 s ahead of its clock.

        Raises:
            InferenceFailed: the server answered 4xx/5xx; the message is the server's.
            ServingError: the server cannot be reached or the rows cannot be encoded.
        """
        body = encode_request(rows, request_id, event_time)
        content = json.dumps(body, separators=(",", ":"), allow_nan=False)
        try:
            response = self._http.post(f"/v2/models/{model}/infer", content=content)
        except httpx.TransportError as error:
            raise ServingError(f"cannot reach {self.base_url} for model {model!r}: {error}") from error
        self._raise_for_error(response, f"inference on {model!r}")
        return decode_response(response.json())

    def ready(self, model: str) -> bool:
        """Whether ``model`` is loaded and ready (False when unknown or unreachable)."""
        try:
            return self._http.get(f"/v2/models/{model}/ready").status_code == 200
        except httpx.TransportError:
            return False

    def metadata(self, model: str) -> dict:
        """The model's V2 metadata (inputs, outputs, versions).

        Raises:
            InferenceFailed: unknown model or server error.
        """
        try:
            response = self._http.get(f"/v2/models/{model}")
        except httpx.TransportError as error:
            raise ServingError(f"cannot reach {self.base_url} for model {model!r}: {error}") from error
        self._raise_for_error(response, f"metadata of {model!r}")
        return dict(response.json())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> InferenceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
