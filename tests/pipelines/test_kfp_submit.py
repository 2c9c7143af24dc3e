"""The cluster retrain path: submit and run status through the real kfp.Client, against the KFP API fake.

The fake (tests/kfp_api_fake.py) is a real HTTP server speaking the v2beta1 REST API of the 2.17.0 API
server; the tests here first prove it answers as that server does (status codes, error bodies, refusing bad
bodies), then drive the platform's ``submit_run`` and ``run_status`` through it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import kfp
import kfp_server_api
import pytest
from kfp_api_fake import FILTER_KEYS, HTTP_STATUS, RUNTIME_STATES, KfpApiFake
from upstream_facts import fact

from platform_components.pipelines import runner
from platform_components.pipelines.runner import (
    IR_MARKER_PREFIX,
    RUN_STATES,
    PipelineError,
    load_pipeline,
    pipeline_input_names,
    run_status,
    submit,
    submit_run,
)

REPO = Path(__file__).resolve().parents[2]
# The example project's compiled pipeline, kept as a golden file by tests/examples.
GOLDEN_IR = REPO / "tests" / "examples" / "golden" / "credit_default_pipeline.yaml"
PIPELINE = "credit-default-training"
ARGUMENTS = {"tracking_uri": "http://mlflow.mlops.svc:5000", "training_data_path": "runs:/abc/rows.csv"}
API = "/apis/v2beta1"


@pytest.fixture
def kfp_api(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The fake, serving on a free port; kfp.Client's environment variables cleared."""
    for name in (
        "KF_PIPELINES_ENDPOINT",
        "KF_PIPELINES_UI_ENDPOINT",
        "KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME",
    ):
        monkeypatch.delenv(name, raising=False)
    with KfpApiFake() as fake:
        yield fake


@pytest.fixture
def ir(tmp_path: Path) -> Path:
    """A copy of the example's compiled IR (two YAML documents: pipeline spec and platform spec)."""
    path = tmp_path / "credit_default_pipeline.yaml"
    shutil.copyfile(GOLDEN_IR, path)
    return path


def client_for(fake: KfpApiFake) -> kfp.Client:
    with pytest.warns(FutureWarning):  # kfp.Client warns on every construction
        return kfp.Client(host=fake.host)


def api_error(call: Any, *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(kfp_server_api.ApiException) as caught:
        call(*args, **kwargs)
    return caught.value.status, json.loads(caught.value.body)


# --- the fake answers as the 2.17.0 API server ----------------------------------------------------------


def test_the_fake_uses_upstreams_codes_states_and_filter_keys() -> None:
    assert fact("kfp_api.http_status_from_code") == HTTP_STATUS
    assert fact("kfp_api.runtime_states") == RUNTIME_STATES
    # The client generated from the same swagger agrees with the proto.
    assert tuple(kfp_server_api.V2beta1RuntimeState.allowable_values) == fact("kfp_api.runtime_states")
    for kind in ("pipeline", "pipeline_version", "experiment", "run"):
        assert set(FILTER_KEYS[kind]) == fact(f"kfp_api.filter_keys.{kind}")


def test_the_fake_serves_exactly_the_routes_kfp_client_uses(kfp_api: KfpApiFake) -> None:
    served = set()
    for method, pattern, _ in kfp_api._routes():
        path = (
            pattern.replace("(?P<", "{")
            .replace(">[^/:]+)", "}")
            .replace("version_id}", "pipeline_version_id}")
        )
        served.add((method or "POST", path))
    assert served == fact("kfp_api.routes")


def test_a_body_with_an_unknown_field_is_refused_with_400(kfp_api: KfpApiFake) -> None:
    response = httpx.post(f"{kfp_api.host}{API}/experiments", json={"display_name": "e", "colour": "red"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == fact("kfp_api.decode_error_code") and 'unknown field "colour"' in body["message"]
    assert kfp_api.state.experiments == {}  # nothing was created

    # Filters are checked too: against the Filter model, then against the resource's filterable keys.
    for predicate, problem in (
        ({"key": "display_name", "operation": "EQUALS", "stringVal": "x"}, 'unknown field "stringVal"'),
        ({"key": "colour", "operation": "EQUALS", "string_value": "x"}, "unrecognized field 'colour'"),
    ):
        filter_text = json.dumps({"predicates": [predicate]})
        response = httpx.get(f"{kfp_api.host}{API}/pipelines", params={"filter": filter_text})
        assert response.status_code == 400 and problem in response.json()["message"], response.text


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"display_name": 7}, "invalid value for string field"),
        (
            {"display_name": "r", "runtime_config": {"parameters": {}, "pipelineRoots": "s3://x"}},
            "unknown field",
        ),
        ({"display_name": "r", "state": "DONE"}, "invalid value for enum field"),
        (
            {"display_name": "r", "pipeline_spec": {}, "pipeline_version_reference": {"pipeline_id": "p"}},
            "oneof is already set",
        ),
        ({"display_name": "r", "created_at": "yesterday"}, "google.protobuf.Timestamp"),
    ],
)
def test_run_bodies_are_checked_against_the_client_models(
    kfp_api: KfpApiFake, body: dict, problem: str
) -> None:
    response = httpx.post(f"{kfp_api.host}{API}/runs", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == 3 and problem in response.json()["message"]


def test_what_the_fake_does_not_serve_is_said_never_guessed(kfp_api: KfpApiFake, ir: Path) -> None:
    for method, path in (("POST", f"{API}/runs/r1:terminate"), ("DELETE", f"{API}/runs/r1")):
        response = httpx.request(method, f"{kfp_api.host}{path}")
        assert response.status_code == 501 and "kfp_api_fake does not implement" in response.json()["message"]
    assert httpx.get(f"{kfp_api.host}/elsewhere").status_code == 404
    response = httpx.post(
        f"{kfp_api.host}{API}/pipelines/upload",
        params={"name": PIPELINE, "tags": "[1]"},
        files={"uploadfile": (ir.name, ir.read_bytes())},
    )
    assert response.status_code == 400 and "Failed to parse tags" in response.json()["error_message"]


def test_camel_case_names_are_accepted_as_protojson_accepts_them(kfp_api: KfpApiFake) -> None:
    response = httpx.post(f"{kfp_api.host}{API}/experiments", json={"displayName": "camel"})
    assert response.status_code == 200
    assert response.json()["display_name"] == "camel"  # answered with proto names (UseProtoNames)


def test_unknown_ids_are_refused_as_the_api_server_refuses_them(kfp_api: KfpApiFake, ir: Path) -> None:
    client = client_for(kfp_api)
    pipeline = client.upload_pipeline(str(ir), pipeline_name=PIPELINE)
    experiment = client.create_experiment("e")
    not_found = fact("kfp_api.not_found")

    for call, args, resource in [
        (client.get_pipeline, ("no-such-pipeline",), "Pipeline"),
        (client.get_pipeline_version, (pipeline.pipeline_id, "no-such-version"), "PipelineVersion"),
        (client.list_pipeline_versions, ("no-such-pipeline",), "Pipeline"),
        (client.get_run, ("no-such-run",), "Run"),
    ]:
        status, body = api_error(call, *args)
        assert status == not_found["http"] and body["code"] == not_found["code"], (call, body)
        detail = body["details"][0]
        assert detail["@type"] == fact("kfp_api.error_body")["detail_type"]
        assert detail["message"] == f"{resource} {args[-1]} not found"
    status, body = api_error(client._experiment_api.experiment_service_get_experiment, experiment_id="nope")
    assert status == 404 and body["details"][0]["message"] == "Experiment nope not found"

    # CreateRun wraps the version lookup in an InternalServerError: 500, as upstream, for either id.
    unknown_source = fact("kfp_api.create_run_unknown_source")
    unknown_version = api_error(
        client.run_pipeline,
        experiment.experiment_id,
        "r",
        pipeline_id=pipeline.pipeline_id,
        version_id="no-such-version",
    )
    reference = kfp_server_api.V2beta1PipelineVersionReference(pipeline_id="no-such-pipeline")
    unknown_pipeline = api_error(
        client._run_api.run_service_create_run,
        kfp_server_api.V2beta1Run(
            display_name="r", experiment_id=experiment.experiment_id, pipeline_version_reference=reference
        ),
    )
    for status, body in (unknown_version, unknown_pipeline):
        assert status == unknown_source["http"] and body["code"] == unknown_source["code"]
        assert body["details"][0]["message"] == unknown_source["external"]
        assert "not found" in body["message"]  # the cause is kept in the internal chain
    status, body = api_error(
        client.run_pipeline, "no-such-experiment", "r", pipeline_id=pipeline.pipeline_id, version_id="v"
    )
    assert status == fact("kfp_api.create_run_unknown_experiment")["http"]
    assert body["details"][0]["message"] == "Experiment no-such-experiment not found"

    # The upload handler answers an unknown pipelineid with 400 and its own error body.
    status, body = api_error(
        client.upload_pipeline_version, str(ir), pipeline_version_name="v2", pipeline_id="no-such-pipeline"
    )
    assert status == fact("kfp_api.upload_version_unknown_pipeline")
    assert tuple(body) == fact("kfp_api.upload_error_body")
    assert kfp_api.state.runs == {}


def test_duplicate_names_and_nameless_runs_are_refused_as_upstream(kfp_api: KfpApiFake, ir: Path) -> None:
    client = client_for(kfp_api)
    client.upload_pipeline(str(ir), pipeline_name=PIPELINE)
    status, _ = api_error(client.upload_pipeline, str(ir), pipeline_name=PIPELINE)
    assert status == fact("kfp_api.duplicate_name")
    response = httpx.post(f"{kfp_api.host}{API}/runs", json={"pipeline_spec": {"pipelineInfo": {}}})
    assert response.status_code == fact("kfp_api.create_run_empty_name")["http"]


def test_an_uploaded_pipeline_keeps_its_platform_document_as_upstream_stores_it(
    kfp_api: KfpApiFake, ir: Path
) -> None:
    client = client_for(kfp_api)
    pipeline = client.upload_pipeline(str(ir), pipeline_name=PIPELINE, description="d")
    [version] = client.list_pipeline_versions(pipeline.pipeline_id).pipeline_versions
    # The first version is named and described like the pipeline (uploadPipeline@2.17.0).
    assert (version.name, version.display_name, version.description) == (PIPELINE, PIPELINE, "d")
    assert set(version.pipeline_spec) == set(fact("kfp_api.stored_spec_with_platform"))
    assert version.pipeline_spec["pipeline_spec"]["pipelineInfo"]["name"] == PIPELINE


# --- the platform's submit and run status -----------------------------------------------------------


def test_submit_then_succeeded_is_reported_as_succeeded(kfp_api: KfpApiFake, ir: Path) -> None:
    submitted = submit_run(kfp_api.host, ir, ARGUMENTS, experiment="mlops-retrain", run_name="retrain-1")
    status = run_status(kfp_api.host, submitted.run_id)
    assert (status.state, status.api_state, status.finished, status.finished_at) == (
        "pending",
        fact("kfp_api.created_run_state")["state"],
        False,
        None,
    )
    kfp_api.set_state(submitted.run_id, "RUNNING")
    assert run_status(kfp_api.host, submitted.run_id).state == "running"
    kfp_api.finish(submitted.run_id, "SUCCEEDED")
    done = run_status(kfp_api.host, submitted.run_id)
    assert (done.state, done.finished, done.error) == ("succeeded", True, None)
    assert done.finished_at is not None

    # What reached the server: the run of the uploaded version, in the experiment, with our arguments.
    run = kfp_api.state.runs[submitted.run_id]
    assert run.display_name == "retrain-1"
    assert run.runtime_config.parameters == ARGUMENTS
    assert run.pipeline_version_reference.pipeline_version_id == submitted.pipeline_version_id
    assert kfp_api.state.experiments[submitted.experiment_id].display_name == "mlops-retrain"


def test_submit_then_failed_reports_failed_with_the_error(kfp_api: KfpApiFake, ir: Path) -> None:
    run_id = submit(kfp_api.host, ir, ARGUMENTS, experiment="mlops-retrain")
    kfp_api.finish(run_id, "FAILED", error="train: ValueError: 0 labelled rows")
    status = run_status(kfp_api.host, run_id)
    assert (status.state, status.finished) == ("failed", True)
    assert status.error == "train: ValueError: 0 labelled rows"


def test_a_failed_run_without_a_message_names_its_failed_step(kfp_api: KfpApiFake, ir: Path) -> None:
    """What the 2.17.0 server itself shows of a failure: a FAILED task, no error message."""
    run_id = submit(kfp_api.host, ir, ARGUMENTS, experiment="mlops-retrain")
    kfp_api.finish(run_id, "FAILED", failed_task="train-model")
    status = run_status(kfp_api.host, run_id)
    assert status.state == "failed" and status.failed_tasks == ("train-model",)
    assert status.error == "step(s) train-model failed"


def test_every_runtime_state_is_reported_in_our_words(kfp_api: KfpApiFake, ir: Path) -> None:
    run_id = submit(kfp_api.host, ir, ARGUMENTS, experiment="e")
    seen = {}
    for api_state in ("RUNNING", "PAUSED", "CANCELING", "CANCELED", "SKIPPED"):
        kfp_api.set_state(run_id, api_state)
        status = run_status(kfp_api.host, run_id)
        seen[api_state] = (status.state, status.finished, status.error)
    assert seen == {
        "RUNNING": ("running", False, None),
        "PAUSED": ("paused", False, None),
        "CANCELING": ("canceling", False, None),
        "CANCELED": ("canceled", True, "the run was canceled"),
        "SKIPPED": ("skipped", True, None),
    }
    # A run whose state is the enum's zero value arrives without the field (EmitUnpopulated: false).
    kfp_api.state.runs[run_id].state = None
    status = run_status(kfp_api.host, run_id)
    assert (status.state, status.api_state) == ("pending", "RUNTIME_STATE_UNSPECIFIED")


def test_the_same_ir_reuses_its_version_and_a_changed_ir_makes_a_new_one(
    kfp_api: KfpApiFake, ir: Path
) -> None:
    first = submit_run(kfp_api.host, ir, ARGUMENTS, experiment="mlops-retrain")
    again = submit_run(kfp_api.host, ir, ARGUMENTS, experiment="mlops-retrain")
    assert first.version_uploaded and not again.version_uploaded
    assert (again.pipeline_id, again.pipeline_version_id, again.experiment_id) == (
        first.pipeline_id,
        first.pipeline_version_id,
        first.experiment_id,
    )
    assert len(kfp_api.uploads()) == 1 and len(kfp_api.state.experiments) == 1

    changed = ir.with_name("changed.yaml")
    changed.write_text(ir.read_text().replace("Train, evaluate against the champion", "Train again"))
    digest = hashlib.sha256(changed.read_bytes()).hexdigest()
    new = submit_run(kfp_api.host, changed, ARGUMENTS, experiment="mlops-retrain")
    assert new.version_uploaded and new.pipeline_id == first.pipeline_id
    assert new.pipeline_version_id != first.pipeline_version_id
    version = kfp_api.state.versions[new.pipeline_version_id]
    assert (
        version.name == f"{PIPELINE}-{digest[:12]}" and version.description == f"{IR_MARKER_PREFIX}{digest}"
    )

    # Going back to the first IR finds its version again; nothing more is uploaded.
    back = submit_run(kfp_api.host, ir, ARGUMENTS, experiment="mlops-retrain")
    assert back.pipeline_version_id == first.pipeline_version_id and not back.version_uploaded
    assert len(kfp_api.uploads()) == 2 and len(kfp_api.state.runs) == 4


TINY_PIPELINE = """
from kfp import dsl


@dsl.component(base_image="python:3.11")
def echo(text: str) -> str:
    \"\"\"Return the text.\"\"\"
    return text


@dsl.pipeline(name="tiny-retrain")
def tiny(text: str = "hi") -> str:
    return echo(text=text).output
"""


def test_a_pipeline_function_is_compiled_and_submitted(kfp_api: KfpApiFake, tmp_path: Path) -> None:
    source = tmp_path / "tiny_retrain_pipeline.py"
    source.write_text(TINY_PIPELINE)
    tiny = load_pipeline(f"{source}:tiny")
    submitted = submit_run(kfp_api.host, tiny, {"text": "x"}, experiment="e")
    assert kfp_api.state.pipelines[submitted.pipeline_id].name == "tiny-retrain"
    assert submit_run(kfp_api.host, tiny, {"text": "y"}, experiment="e").version_uploaded is False


def test_a_pipeline_given_by_name_runs_its_latest_version(kfp_api: KfpApiFake, ir: Path) -> None:
    first = submit_run(kfp_api.host, ir, ARGUMENTS, experiment="e")
    # The server keeps whole seconds (time.Unix): let a second pass between the two versions.
    kfp_api.state.versions[first.pipeline_version_id].created_at -= datetime.timedelta(seconds=1)
    changed = ir.with_name("changed.yaml")
    changed.write_text(ir.read_text().replace("Train, evaluate", "Train, then evaluate"))
    latest = submit_run(kfp_api.host, changed, ARGUMENTS, experiment="e")
    by_name = submit_run(kfp_api.host, PIPELINE, ARGUMENTS, experiment="e")
    assert by_name.pipeline_id == first.pipeline_id
    assert by_name.pipeline_version_id == latest.pipeline_version_id and not by_name.version_uploaded


def test_an_unknown_pipeline_name_names_host_pipeline_and_setting(kfp_api: KfpApiFake) -> None:
    with pytest.raises(
        PipelineError,
        match=rf"{kfp_api.host} has no pipeline named 'nothing-here'.*"
        rf"{runner.KFP_PIPELINE_SETTING}",
    ):
        submit(kfp_api.host, "nothing-here", {}, experiment="e")
    assert kfp_api.state.runs == {}


def test_a_refused_run_names_the_server_message_without_a_traceback(kfp_api: KfpApiFake) -> None:
    with pytest.raises(
        PipelineError,
        match=r"refused to read run no-such-run \(HTTP 404\): .*Run no-such-run "
        rf"not found.*{runner.KFP_HOST_SETTING}",
    ) as caught:
        run_status(kfp_api.host, "no-such-run")
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_server_error_keeps_its_cause(kfp_api: KfpApiFake, ir: Path) -> None:
    first = submit_run(kfp_api.host, ir, ARGUMENTS, experiment="e")
    # Someone deletes the version between our lookup and our run: CreateRun answers 500 as upstream does.
    kfp_api.before("POST", f"{API}/runs", lambda: kfp_api.state.versions.pop(first.pipeline_version_id))
    with pytest.raises(
        PipelineError,
        match=rf"refused to create the run for pipeline '{PIPELINE}' \(HTTP 500\): Internal Server Error "
        rf"\(.*PipelineVersion {first.pipeline_version_id} not found",
    ) as caught:
        submit_run(kfp_api.host, ir, ARGUMENTS, experiment="e")
    assert isinstance(caught.value.__cause__, kfp_server_api.ApiException)
    assert list(kfp_api.state.runs) == [first.run_id]


def test_a_host_that_is_not_the_kfp_api_is_named_with_the_setting(kfp_api: KfpApiFake, ir: Path) -> None:
    with pytest.raises(
        PipelineError,
        match=rf"answered HTTP 404, not the KFP API's healthz; set "
        rf"{runner.KFP_HOST_SETTING}",
    ):
        submit(f"{kfp_api.host}/wrong-prefix", ir, ARGUMENTS, experiment="e")


@pytest.mark.parametrize(
    ("pipeline", "message"),
    [
        ("missing.yaml", r"pipeline IR 'missing.yaml' does not exist"),
        (42, r"pipeline 42 is neither a @dsl.pipeline function, a compiled IR path nor a pipeline name"),
    ],
)
def test_a_bad_pipeline_is_refused_before_any_call(kfp_api: KfpApiFake, pipeline: Any, message: str) -> None:
    with pytest.raises(PipelineError, match=rf"{message}.*{runner.KFP_PIPELINE_SETTING}"):
        submit(kfp_api.host, pipeline, {}, experiment="e")
    assert kfp_api.requests == []


def test_an_ir_without_pipeline_info_is_refused_before_any_call(kfp_api: KfpApiFake, tmp_path: Path) -> None:
    path = tmp_path / "not-a-pipeline.yaml"
    path.write_text("kind: ConfigMap\n")
    with pytest.raises(PipelineError, match=r"has no pipelineInfo.name"):
        submit(kfp_api.host, path, {}, experiment="e")
    assert kfp_api.requests == []


def test_our_states_cover_every_runtime_state() -> None:
    assert tuple(RUN_STATES) == fact("kfp_api.runtime_states")
    assert {"succeeded", "skipped", "failed", "canceled"} == runner.FINAL_RUN_STATES


def test_the_inputs_of_a_compiled_ir_are_those_of_its_function() -> None:
    function = load_pipeline("examples.credit_default.pipeline:credit_default_pipeline")
    assert pipeline_input_names(GOLDEN_IR) == pipeline_input_names(function)
    assert {"training_data_path", "tracking_uri", "model_name"} <= pipeline_input_names(GOLDEN_IR)


# --- the same contract, asked of a real API server -----------------------------------------------------


@pytest.mark.cluster
def test_a_real_api_server_answers_as_the_fake_does(ir: Path) -> None:
    """Needs --run-cluster and MLOPS_KFP_HOST (a KFP 2.17 API URL). Creates one experiment, nothing else.

    The fake's codes and bodies above are read from upstream's source; this asks a running server the same
    questions, so a drift between the two shows here first.
    """
    import os

    host = os.environ.get("MLOPS_KFP_HOST")
    if not host:
        pytest.fail(
            "set MLOPS_KFP_HOST to the KFP API URL, e.g. http://127.0.0.1:8888 (port-forward ml-pipeline)"
        )
    with pytest.warns(FutureWarning):
        client = kfp.Client(host=host)
    status, body = api_error(client.get_run, "00000000-0000-0000-0000-000000000000")
    assert status == fact("kfp_api.not_found")["http"] and body["code"] == fact("kfp_api.not_found")["code"]
    assert body["details"][0]["message"] == "Run 00000000-0000-0000-0000-000000000000 not found"
    response = httpx.post(
        f"{host}{API}/experiments", json={"display_name": "mlops-contract", "colour": "red"}
    )
    assert response.status_code == 400 and response.json()["code"] == fact("kfp_api.decode_error_code")
    experiment = client.create_experiment("mlops-contract-check")
    status, body = api_error(
        client.run_pipeline, experiment.experiment_id, "r", pipeline_id="p", version_id="v"
    )
    assert status == fact("kfp_api.create_run_unknown_source")["http"]
    status, body = api_error(
        client.upload_pipeline_version, str(ir), pipeline_version_name="v", pipeline_id="p"
    )
    assert status == fact("kfp_api.upload_version_unknown_pipeline") and tuple(body) == fact(
        "kfp_api.upload_error_body"
    )
