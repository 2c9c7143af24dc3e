"""A prediction's event time: the request parameter ``mlops_event_time`` becomes the logged timestamp."""

from __future__ import annotations

import math
import time

import httpx
import pytest
from mlserver.types import InferenceRequest, Parameters
from upstream_facts import fact

from platform_components.event_time import MAX_AHEAD_SECONDS as MAX_EVENT_TIME_AHEAD_SECONDS
from platform_components.serving.client import InferenceClient, InferenceFailed, encode_request
from platform_components.serving.predlog import read_records
from platform_components.serving.validation import (
    EVENT_TIME_PARAMETER,
    InvalidRequest,
    event_time_of,
)

from .conftest import MODEL_NAME, make_frame

NOW = 1_750_000_000.0


def _request(parameters: dict | None) -> dict:
    body = encode_request({"income": [1.0]})
    if parameters is not None:
        body["parameters"] = parameters
    return body


def test_mlserver_keeps_undeclared_request_parameters_as_extras() -> None:
    expected = fact("mlserver.parameters.extra")
    assert Parameters.model_config["extra"] == expected["extra"]
    assert sorted(Parameters.model_fields) == expected["declared"]
    parsed = InferenceRequest.model_validate(_request({EVENT_TIME_PARAMETER: NOW - 5}))
    assert parsed.parameters is not None and parsed.parameters.model_extra == {EVENT_TIME_PARAMETER: NOW - 5}


@pytest.mark.parametrize("as_model", [False, True], ids=["dict", "InferenceRequest"])
def test_the_event_time_is_read_from_the_request_parameters(as_model: bool) -> None:
    def event_time(parameters: dict | None):
        body = _request(parameters)
        return event_time_of(InferenceRequest.model_validate(body) if as_model else body, now=NOW)

    assert event_time(None) is None
    assert event_time({"content_type": "pd"}) is None
    assert event_time({EVENT_TIME_PARAMETER: NOW - 86_400}) == NOW - 86_400
    assert event_time({EVENT_TIME_PARAMETER: int(NOW)}) == NOW
    assert event_time({EVENT_TIME_PARAMETER: NOW + MAX_EVENT_TIME_AHEAD_SECONDS}) == NOW + 300


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2025-06-15", "not a finite number"),
        (True, "not a finite number"),
        (None, "not a finite number"),
        (math.inf, "not a finite number"),
        (math.nan, "not a finite number"),
        ([NOW], "not a finite number"),
        (NOW + MAX_EVENT_TIME_AHEAD_SECONDS + 1, "301 s ahead of the server's clock"),
        (NOW * 1_000, "ahead of the server's clock"),  # milliseconds
    ],
)
def test_a_bad_event_time_is_a_422_naming_the_parameter(value, problem: str) -> None:
    with pytest.raises(InvalidRequest, match=f"^parameters.mlops_event_time: .*{problem}") as caught:
        event_time_of(_request({EVENT_TIME_PARAMETER: value}), now=NOW)
    assert caught.value.status_code == 422


def test_the_model_never_gets_the_event_time() -> None:
    from platform_components.serving.runtime import model_params

    body = _request({EVENT_TIME_PARAMETER: NOW, "headers": {"x": "1"}, "temperature": 0.5})
    assert model_params(InferenceRequest.model_validate(body)) == {"temperature": 0.5}
    only_ours = InferenceRequest.model_validate(_request({EVENT_TIME_PARAMETER: NOW}))
    assert model_params(only_ours) is None


def test_the_client_sends_the_event_time_as_the_request_parameter() -> None:
    assert encode_request({"a": [1]}, event_time=NOW)["parameters"] == {EVENT_TIME_PARAMETER: NOW}
    assert "parameters" not in encode_request({"a": [1]})


@pytest.mark.timeout(300)
def test_the_served_model_logs_the_event_time_and_refuses_a_bad_one(serving_server) -> None:
    frame = make_frame(3, seed=21).drop(columns=["default"])
    event_time = time.time() - 3 * 86_400
    with InferenceClient(serving_server.url) as client:
        past = client.infer(MODEL_NAME, frame, event_time=event_time)
        plain = client.infer(MODEL_NAME, frame)
        with pytest.raises(InferenceFailed, match="parameters.mlops_event_time: .* ahead") as caught:
            client.infer(MODEL_NAME, frame, event_time=time.time() + 3_600)
    assert caught.value.status_code == 422
    body = encode_request(frame)
    body["parameters"] = {EVENT_TIME_PARAMETER: "yesterday"}
    response = httpx.post(f"{serving_server.url}/v2/models/{MODEL_NAME}/infer", json=body, timeout=10)
    assert response.status_code == 422 and "parameters.mlops_event_time" in response.text
    assert len(past.outputs[next(iter(past.outputs))]) == 3  # the model answered as without the parameter
    timestamps = {record.request_id: record.timestamp for record in read_records(serving_server.log_dir)}
    assert timestamps[past.request_id] == event_time
    assert abs(timestamps[plain.request_id] - time.time()) < 60
