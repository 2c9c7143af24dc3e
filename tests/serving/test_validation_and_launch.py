"""Request validation against an MLflow signature, and the repository files launch.py writes."""

from __future__ import annotations

import json
import math

import pytest
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from platform_components.errors import ConfigError, ServingError
from platform_components.serving import launch
from platform_components.serving.client import decode_response, encode_request
from platform_components.serving.validation import InvalidRequest, check_body_size, validate_request

SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec("double", "income"),
            ColSpec("long", "age"),
            ColSpec("string", "purpose"),
            ColSpec("double", "bonus", required=False),
        ]
    )
)


def request(**columns) -> dict:
    base = {
        "income": {"datatype": "FP64", "shape": [2], "data": [1.0, 2.0]},
        "age": {"datatype": "INT64", "shape": [2], "data": [30, 40]},
        "purpose": {"datatype": "BYTES", "shape": [2], "data": ["car", "home"]},
    }
    for name, change in columns.items():
        base[name] = None if change is None else {**base.get(name, {}), **change}
    return {"inputs": [{"name": name, **spec} for name, spec in base.items() if spec is not None]}


def test_valid_request_returns_rows_and_columns():
    validated = validate_request(request(), SIGNATURE)
    assert validated.row_count == 2
    assert validated.columns["purpose"] == ["car", "home"]


def test_pydantic_request_is_checked_like_a_dict():
    from mlserver.types import InferenceRequest

    payload = InferenceRequest.model_validate(request(income={"shape": [3]}))
    with pytest.raises(InvalidRequest, match="'income'.*needs 3 values but data has 2") as caught:
        validate_request(payload, SIGNATURE)
    assert caught.value.status_code == 422
    assert caught.value.input_name == "income"


@pytest.mark.parametrize(
    ("changes", "status", "message"),
    [
        (
            {"colour": {"datatype": "BYTES", "shape": [2], "data": ["a", "b"]}},
            422,
            "'colour' is not an input",
        ),
        ({"age": None}, 422, r"missing input\(s\) \['age'\]"),
        ({"income": {"shape": [2, 2]}}, 422, "wrong rank"),
        ({"income": {"shape": [1, 2], "data": [[1.0, 2.0]]}}, 422, "wrong rank"),
        ({"income": {"shape": [2, 1], "data": [[1.0], [2.0, 3.0]]}}, 422, "nested data does not have shape"),
        ({"income": {"shape": [3], "data": [1.0, 2.0, 3.0]}}, 422, "different row counts"),
        ({"income": {"datatype": "BYTES", "data": ["1", "2"]}}, 422, "'income'.*send datatype FP64"),
        ({"purpose": {"datatype": "FP64", "data": [1.0, 2.0]}}, 422, "'purpose'.*send datatype BYTES"),
        ({"age": {"datatype": "FP64", "data": [30.0, 40.0]}}, 422, "'age'.*send datatype INT64"),
        ({"income": {"data": [math.nan, 1.0]}}, 422, "'income' row 0: NaN"),
        ({"income": {"data": [math.inf, 1.0]}}, 422, "'income' row 0: inf is not a finite number"),
        ({"income": {"data": [None, 1.0]}}, 422, "'income' row 0: missing value"),
        ({"purpose": {"data": ["car", None]}}, 422, "'purpose' row 1: missing value"),
        ({"income": {"datatype": "FP16", "data": [70000.0, 1.0]}}, 422, "out of range for datatype FP16"),
        ({"age": {"datatype": "INT8", "data": [300, 1]}}, 422, "out of range for datatype INT8"),
        ({"income": {"data": [True, 1.0]}}, 422, "not a number"),
        ({"income": {"data": 5}}, 400, "'data' must be a list"),
        ({"income": {"parameters": {"content_type": "base64"}}}, 422, "content_type 'base64'"),
        ({"income": {"datatype": "FP65"}}, 422, "unknown datatype 'FP65'"),
        ({"income": {"shape": [-2]}}, 422, "non-negative integers"),
    ],
)
def test_each_client_mistake_names_the_input_and_the_fix(changes, status, message):
    with pytest.raises(InvalidRequest, match=message) as caught:
        validate_request(request(**changes), SIGNATURE)
    assert caught.value.status_code == status


def test_optional_column_accepts_missing_values_but_not_infinity():
    assert validate_request(
        request(bonus={"datatype": "FP64", "shape": [2], "data": [None, math.nan]}), SIGNATURE
    )
    with pytest.raises(InvalidRequest, match="'bonus' row 1: inf"):
        validate_request(
            request(bonus={"datatype": "FP64", "shape": [2], "data": [1.0, math.inf]}), SIGNATURE
        )


def test_integers_are_accepted_for_double_columns_and_rows_of_one_value():
    assert validate_request(request(income={"datatype": "INT64", "data": [1, 2]}), SIGNATURE).row_count == 2
    assert (
        validate_request(request(income={"shape": [2, 1], "data": [[1.0], [2.0]]}), SIGNATURE).row_count == 2
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": []}, "no inputs"),
        ({"inputs": "x"}, "'inputs' must be a list"),
        ({"id": 5, "inputs": request()["inputs"]}, "'id' must be a string"),
        ({"inputs": request()["inputs"] * 2}, "appears twice"),
        ({"parameters": {"content_type": "np"}, "inputs": request()["inputs"]}, "content_type 'np'"),
    ],
)
def test_structural_mistakes(body, message):
    with pytest.raises(InvalidRequest, match=message):
        validate_request(body, SIGNATURE)


def test_value_limit_and_body_limit_are_413():
    with pytest.raises(InvalidRequest, match="more than 4 values") as caught:
        validate_request(request(), SIGNATURE, max_values=4)
    assert caught.value.status_code == 413
    with pytest.raises(InvalidRequest, match="over the limit of 10 bytes") as caught:
        check_body_size(11, 10)
    assert caught.value.status_code == 413


def test_client_codec_types_columns_and_sends_nan_as_null():
    import pandas as pd

    frame = pd.DataFrame({"income": [1.5, float("nan")], "age": [30, 40], "purpose": ["car", "home"]})
    body = encode_request(frame, request_id="r1")
    by_name = {item["name"]: item for item in body["inputs"]}
    assert body["id"] == "r1"
    assert by_name["income"] == {"name": "income", "datatype": "FP64", "shape": [2], "data": [1.5, None]}
    assert by_name["age"]["datatype"] == "INT64"
    assert by_name["purpose"]["datatype"] == "BYTES"
    json.dumps(body, allow_nan=False)  # strict JSON
    with pytest.raises(ServingError, match="same number of rows"):
        encode_request({"a": [1, 2], "b": [1]})


def test_client_decodes_flat_outputs_into_rows():
    result = decode_response(
        {
            "id": "r1",
            "model_name": "m",
            "model_version": "4",
            "outputs": [
                {"name": "output-1", "shape": [2, 2], "datatype": "FP64", "data": [0.1, 0.9, 0.8, 0.2]}
            ],
        }
    )
    assert result.outputs == {"output-1": [[0.1, 0.9], [0.8, 0.2]]}
    assert (result.request_id, result.model_version) == ("r1", "4")


def test_launch_writes_loopback_settings_without_parallel_workers(tmp_path):
    launch.write_server_settings(
        tmp_path, host="127.0.0.1", http_port=9001, grpc_port=9002, metrics_port=9003
    )
    settings = json.loads((tmp_path / "settings.json").read_text())
    assert settings["host"] == "127.0.0.1"
    assert settings["parallel_workers"] == 0
    assert (settings["http_port"], settings["metrics_port"]) == (9001, 9003)
    assert launch.read_platform_settings(tmp_path)["max_body_bytes"] == 8 * 1024 * 1024
    path = launch.write_model_settings(
        tmp_path,
        name="credit-default",
        model_uri="models:/credit-default/3",
        version="3",
        prediction_log_dir=None,
    )
    model_settings = json.loads(path.read_text())
    assert path == tmp_path / "credit-default" / "model-settings.json"
    assert model_settings["implementation"] == launch.RUNTIME_IMPLEMENTATION
    assert model_settings["parameters"]["version"] == "3"
    assert launch.server_command(tmp_path)[-3:] == ["-m", "platform_components.serving.server", str(tmp_path)]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"http_port": 0}, "http_port must be an integer port"),
        ({"grpc_port": 9001}, "must differ"),
        ({"max_body_bytes": 0}, "max_body_bytes must be a positive integer"),
        ({"host": ""}, "host must be"),
    ],
)
def test_launch_rejects_bad_server_settings(tmp_path, arguments, message):
    values = {"host": "127.0.0.1", "http_port": 9001, "grpc_port": 9002, "metrics_port": 9003, **arguments}
    with pytest.raises(ConfigError, match=message):
        launch.write_server_settings(tmp_path, **values)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"name": "../escape"}, "model name must be"),
        ({"model_uri": ""}, "model_uri must be"),
        ({"version": " "}, "version must be"),
    ],
)
def test_launch_rejects_bad_model_settings(tmp_path, arguments, message):
    values = {
        "name": "m",
        "model_uri": "models:/m/1",
        "version": "1",
        "prediction_log_dir": None,
        **arguments,
    }
    with pytest.raises(ConfigError, match=message):
        launch.write_model_settings(tmp_path, **values)


def test_reload_of_an_unreachable_server_is_a_serving_error(free_port):
    with pytest.raises(ServingError, match="cannot reach MLServer"):
        launch.reload_model(f"http://127.0.0.1:{free_port}", "m", timeout=2, admin_token="t")
