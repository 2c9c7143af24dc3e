"""Check a V2 inference request against an MLflow model signature before the model sees it.

MLServer answers some malformed tensors with HTTP 500 (``cannot reshape array``) and MLflow's own schema
enforcement raises deep inside ``predict``. Here every client mistake becomes an :class:`InvalidRequest`
carrying a 4xx status and a message that names the input, the problem and the fix:

- 400: the request is structurally malformed (no inputs, duplicate names, data not a list, bad id);
- 413: the body or the number of values is over the limit;
- 422: well-formed but does not fit the signature (unknown or missing input, wrong shape or rank,
  inconsistent row counts, datatype not matching the column type, missing or non-finite values), or a
  request parameter ``mlops_event_time`` that is not a finite number of Unix seconds or lies more than
  ``event_time.MAX_AHEAD_SECONDS`` ahead of the server's clock.

``mlops_event_time`` is when the prediction happened in the client's world (a replay, a simulated
calendar, a batch scored late): the prediction log records it as the prediction's timestamp, and the
monitor measures its windows on it. It is ours, not the model's, and never reaches the model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from platform_components.errors import ServingError

NUMERIC_DATATYPES = frozenset(
    {"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"}
)
INTEGER_DATATYPES = frozenset({"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"})
ALL_DATATYPES = NUMERIC_DATATYPES | {"BOOL", "BYTES"}
# Values outside these ranges overflow when MLServer builds the numpy array (inf for FP16, wrap-around or
# OverflowError for integers) and then fail inside the model with a 500.
_RANGES: dict[str, tuple[float, float]] = {
    **{f"INT{bits}": (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) for bits in (8, 16, 32, 64)},
    **{f"UINT{bits}": (0, 2**bits - 1) for bits in (8, 16, 32, 64)},
    "FP16": (-65504.0, 65504.0),
    "FP32": (-3.4028234663852886e38, 3.4028234663852886e38),
    "FP64": (-math.inf, math.inf),
}
MAX_REQUEST_ID_LENGTH = 256
# The request parameter carrying a prediction's event time (Unix seconds; default: the server's clock).
EVENT_TIME_PARAMETER = "mlops_event_time"
# A client's clock may run a little ahead of the server's; further ahead is a mistake (ms, not s?).
# Content types MLServer's decoders handle for a column without surprises: none, "str" for strings
# (what MLServer's own PandasCodec sends) and "np" for numbers and booleans.
_REQUEST_CONTENT_TYPES = frozenset({None, "", "pd"})

# MLflow column type name -> V2 datatypes we accept for it (safe conversions only, as MLflow's own
# schema enforcement allows int -> double but not double -> long).
_ACCEPTED_DATATYPES: dict[str, frozenset[str]] = {
    "double": NUMERIC_DATATYPES,
    "float": NUMERIC_DATATYPES,
    "long": INTEGER_DATATYPES,
    "integer": INTEGER_DATATYPES,
    "boolean": frozenset({"BOOL"}),
    "string": frozenset({"BYTES"}),
    "binary": frozenset({"BYTES"}),
    "datetime": frozenset({"BYTES"}),
}
_SUGGESTED_DATATYPE = {
    "double": "FP64",
    "float": "FP32",
    "long": "INT64",
    "integer": "INT32",
    "boolean": "BOOL",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
}


class InvalidRequest(ServingError):
    """A client error in an inference request.

    Attributes:
        status_code: 400, 413 or 422.
        input_name: The offending input, when one is to blame.
    """

    def __init__(self, message: str, *, status_code: int = 422, input_name: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.input_name = input_name


@dataclass(frozen=True)
class ColumnRule:
    """What one signature column accepts."""

    name: str
    type_name: str
    required: bool

    @property
    def numeric(self) -> bool:
        return self.type_name in ("double", "float", "long", "integer")


@dataclass(frozen=True)
class ValidatedRequest:
    """A request that passed: row count, the columns as plain lists (used for the prediction log) and the
    event time the client gave (None: use the clock)."""

    row_count: int
    columns: dict[str, list]
    event_time: float | None = None


_ABSENT = object()


def _request_parameter(request: Any, name: str) -> Any:
    """A request-level parameter's value, or ``_ABSENT``."""
    if isinstance(request, Mapping):
        parameters = request.get("parameters")
        return parameters.get(name, _ABSENT) if isinstance(parameters, Mapping) else _ABSENT
    parameters = request.parameters
    extra = getattr(parameters, "model_extra", None) if parameters is not None else None
    return extra.get(name, _ABSENT) if extra else _ABSENT


def event_time_of(request: Any, *, now: float | None = None) -> float | None:
    """The request's ``parameters.mlops_event_time`` (None when absent).

    Args:
        request: a V2 request as a dict, or MLServer's ``InferenceRequest``.
        now: the server's clock (default: ``time.time()``).

    Raises:
        InvalidRequest: 422 when the value is not a finite number (a boolean or a string is not), or is
            more than ``event_time.MAX_AHEAD_SECONDS`` ahead of ``now``.
    """
    from platform_components.event_time import check_event_time

    value = _request_parameter(request, EVENT_TIME_PARAMETER)
    if value is _ABSENT:
        return None
    try:
        return check_event_time(
            value, field=f"parameters.{EVENT_TIME_PARAMETER}", clock="the server's", now=now
        )
    except ValueError as error:
        raise InvalidRequest(str(error)) from None


def rules_from_signature(signature: Any) -> dict[str, ColumnRule] | None:
    """Per-column rules from an ``mlflow.models.ModelSignature`` (None: no column schema to check)."""
    if signature is None or signature.inputs is None:
        return None
    schema = signature.inputs
    if schema.is_tensor_spec():
        return None
    rules = {}
    for column in schema.inputs:
        type_name = getattr(column.type, "name", None) or type(column.type).__name__.lower()
        rules[column.name] = ColumnRule(name=column.name, type_name=str(type_name), required=column.required)
    return rules


def check_body_size(size: int, limit: int) -> None:
    """Raise 413 when ``size`` bytes exceed ``limit``."""
    if size > limit:
        raise InvalidRequest(
            f"request body is {size} bytes, over the limit of {limit} bytes: split the rows into smaller "
            "requests",
            status_code=413,
        )


def _request_content_type(request: Any) -> Any:
    if isinstance(request, Mapping):
        parameters = request.get("parameters")
        return parameters.get("content_type") if isinstance(parameters, Mapping) else None
    return request.parameters.content_type if request.parameters is not None else None


def _as_plain_inputs(request: Any) -> tuple[Any, list[dict[str, Any]]]:
    """(id, inputs as dicts) from a dict or MLServer's pydantic ``InferenceRequest``."""
    if isinstance(request, Mapping):
        request_id = request.get("id")
        raw_inputs = request.get("inputs")
        if not isinstance(raw_inputs, list):
            raise InvalidRequest(
                f"'inputs' must be a list of tensors (got {type(raw_inputs).__name__})", status_code=400
            )
        inputs = []
        for position, item in enumerate(raw_inputs):
            if not isinstance(item, Mapping):
                raise InvalidRequest(
                    f"inputs[{position}] must be an object with name, datatype, shape and data"
                )
            inputs.append(dict(item))
        return request_id, inputs
    inputs = []
    for item in request.inputs or []:
        data = item.data.root if hasattr(item.data, "root") else item.data
        datatype = item.datatype.value if hasattr(item.datatype, "value") else item.datatype
        content_type = item.parameters.content_type if item.parameters is not None else None
        inputs.append(
            {
                "name": item.name,
                "datatype": datatype,
                "shape": list(item.shape),
                "data": data,
                "parameters": {"content_type": content_type} if content_type else None,
            }
        )
    return request.id, inputs


def _nesting_matches(data: Any, shape: Sequence[int]) -> bool:
    """Whether nested lists have exactly ``shape`` (ragged or deeper nesting makes numpy fail later)."""
    if not shape:
        return not isinstance(data, list)
    if not isinstance(data, list) or len(data) != shape[0]:
        return False
    return all(_nesting_matches(item, shape[1:]) for item in data)


def _flatten(name: str, data: Any) -> list:
    if not isinstance(data, list):
        raise InvalidRequest(
            f"input {name!r}: 'data' must be a list of values (got {type(data).__name__})",
            status_code=400,
            input_name=name,
        )
    if not any(isinstance(value, list) for value in data):
        return data
    flat: list = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
    return flat


def _check_values(rule: ColumnRule | None, name: str, datatype: str, values: list) -> None:
    allow_missing = rule is not None and not rule.required
    if datatype in NUMERIC_DATATYPES:
        integer = datatype in INTEGER_DATATYPES
        low, high = _RANGES[datatype]
        for row, value in enumerate(values):
            if value is None:
                if allow_missing:
                    continue
                raise InvalidRequest(
                    f"input {name!r} row {row}: missing value (null) in a required column; send a number",
                    input_name=name,
                )
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidRequest(
                    f"input {name!r} row {row}: {value!r} is not a number but datatype is {datatype}",
                    input_name=name,
                )
            if isinstance(value, float):
                if math.isnan(value):
                    if allow_missing:
                        continue
                    raise InvalidRequest(
                        f"input {name!r} row {row}: NaN is not allowed in a required column",
                        input_name=name,
                    )
                if math.isinf(value):
                    raise InvalidRequest(
                        f"input {name!r} row {row}: {value!r} is not a finite number", input_name=name
                    )
                if integer and not value.is_integer():
                    raise InvalidRequest(
                        f"input {name!r} row {row}: {value!r} is not an integer but datatype is {datatype}",
                        input_name=name,
                    )
            if not low <= value <= high:
                raise InvalidRequest(
                    f"input {name!r} row {row}: {value!r} is out of range for datatype {datatype}; "
                    "send a wider datatype (FP64 or INT64)",
                    input_name=name,
                )
    elif datatype == "BYTES":
        for row, value in enumerate(values):
            if value is None:
                if allow_missing:
                    continue
                raise InvalidRequest(
                    f"input {name!r} row {row}: missing value (null) in a required column; send a string",
                    input_name=name,
                )
            if not isinstance(value, str | bytes):
                raise InvalidRequest(
                    f"input {name!r} row {row}: {value!r} is not a string but datatype is BYTES",
                    input_name=name,
                )
    elif datatype == "BOOL":
        for row, value in enumerate(values):
            if value is None and allow_missing:
                continue
            if not isinstance(value, bool):
                raise InvalidRequest(
                    f"input {name!r} row {row}: {value!r} is not true/false but datatype is BOOL",
                    input_name=name,
                )


def validate_request(
    request: Any,
    signature: Any,
    *,
    max_values: int | None = None,
    now: float | None = None,
) -> ValidatedRequest:
    """Check a V2 request against a model signature; return its columns as plain lists.

    Args:
        request: A V2 request as a dict, or MLServer's ``InferenceRequest``.
        signature: The model's ``mlflow.models.ModelSignature`` (None: structure checks only).
        max_values: Upper bound on the number of values across inputs (413 above it).
        now: The server's clock for the ``mlops_event_time`` check (default: ``time.time()``).

    Raises:
        InvalidRequest: with status 400/413/422 and a message naming the input and the fix.
    """
    request_id, inputs = _as_plain_inputs(request)
    if request_id is not None and (
        not isinstance(request_id, str) or len(request_id) > MAX_REQUEST_ID_LENGTH
    ):
        raise InvalidRequest(
            f"'id' must be a string of at most {MAX_REQUEST_ID_LENGTH} characters "
            f"(got {str(request_id)[:80]!r})",
            status_code=400,
        )
    content_type = _request_content_type(request)
    if content_type not in _REQUEST_CONTENT_TYPES:
        raise InvalidRequest(
            f"request parameters.content_type {content_type!r} is not supported; leave it out (the model "
            "decodes its columns as a table)",
            status_code=422,
        )
    if not inputs:
        raise InvalidRequest("the request has no inputs: send one input per model column", status_code=400)
    event_time = event_time_of(request, now=now)
    rules = rules_from_signature(signature)
    seen: set[str] = set()
    columns: dict[str, list] = {}
    row_counts: dict[str, int] = {}
    total_values = 0
    for item in inputs:
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"every input needs a non-empty 'name' (got {name!r})", status_code=400)
        if name in seen:
            raise InvalidRequest(
                f"input {name!r} appears twice: send each column once", status_code=400, input_name=name
            )
        seen.add(name)
        rule = None
        if rules is not None:
            rule = rules.get(name)
            if rule is None:
                raise InvalidRequest(
                    f"input {name!r} is not an input of this model; expected inputs: {sorted(rules)}",
                    input_name=name,
                )
        datatype = item.get("datatype")
        if datatype not in ALL_DATATYPES:
            raise InvalidRequest(
                f"input {name!r}: unknown datatype {datatype!r}; use one of {sorted(ALL_DATATYPES)}",
                input_name=name,
            )
        parameters = item.get("parameters") or {}
        content_type = parameters.get("content_type") if isinstance(parameters, Mapping) else None
        allowed = ("str",) if datatype == "BYTES" else ("np",)
        if content_type not in (None, "", *allowed):
            raise InvalidRequest(
                f"input {name!r}: content_type {content_type!r} is not supported for a column; leave it out",
                input_name=name,
            )
        if rule is not None and datatype not in _ACCEPTED_DATATYPES.get(rule.type_name, ALL_DATATYPES):
            suggested = _SUGGESTED_DATATYPE.get(rule.type_name, "the column's type")
            raise InvalidRequest(
                f"input {name!r}: datatype {datatype} does not match the model's {rule.type_name} column; "
                f"send datatype {suggested}",
                input_name=name,
            )
        shape = item.get("shape")
        if (
            not isinstance(shape, Sequence)
            or isinstance(shape, str)
            or not all(isinstance(size, int) and not isinstance(size, bool) and size >= 0 for size in shape)
        ):
            raise InvalidRequest(
                f"input {name!r}: shape must be a list of non-negative integers (got {shape!r})",
                input_name=name,
            )
        if rules is not None and not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise InvalidRequest(
                f"input {name!r}: shape {list(shape)} has the wrong rank for a column; "
                "use [rows] or [rows, 1]",
                input_name=name,
            )
        data = item.get("data")
        values = _flatten(name, data)
        nested = values is not data  # _flatten returns the list itself when nothing is nested
        if nested and not _nesting_matches(data, shape):
            raise InvalidRequest(
                f"input {name!r}: nested data does not have shape {list(shape)}; send a flat list of "
                f"{math.prod(shape)} values",
                input_name=name,
            )
        expected = math.prod(shape)
        if expected != len(values):
            raise InvalidRequest(
                f"input {name!r}: shape {list(shape)} needs {expected} values but data has {len(values)}",
                input_name=name,
            )
        total_values += len(values)
        if max_values is not None and total_values > max_values:
            raise InvalidRequest(
                f"the request carries more than {max_values} values: split the rows into smaller requests",
                status_code=413,
                input_name=name,
            )
        _check_values(rule, name, datatype, values)
        row_counts[name] = shape[0] if shape else 1
        columns[name] = values
    if rules is not None:
        missing = sorted(column for column, rule in rules.items() if rule.required and column not in columns)
        if missing:
            raise InvalidRequest(
                f"missing input(s) {missing}: the model needs every required column "
                f"({sorted(column for column, rule in rules.items() if rule.required)})",
                input_name=missing[0],
            )
    if len(set(row_counts.values())) > 1:
        raise InvalidRequest(
            f"inputs have different row counts {row_counts}: every column needs one value per row"
        )
    row_count = next(iter(row_counts.values()))
    if row_count == 0:
        raise InvalidRequest("the request has zero rows: send at least one row", status_code=422)
    return ValidatedRequest(row_count=row_count, columns=columns, event_time=event_time)
