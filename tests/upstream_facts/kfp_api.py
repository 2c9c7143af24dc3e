"""The KFP 2.17.0 API server's v2beta1 REST contract, as the fake in tests/kfp_api_fake.py serves it.

Read in kubeflow/pipelines at tag 2.17.0 (backend/api/v2beta1/*.proto, backend/src/apiserver/...) and in
grpc-ecosystem/grpc-gateway at v2.28.0 (the version KFP's go.mod pins, whose runtime writes the HTTP errors).
"""

from __future__ import annotations

from upstream_facts import Fact

_KFP = "kubeflow/pipelines"
_TAG = "2.17.0"
_API = "backend/api/v2beta1"
_SERVER = "backend/src/apiserver"

FACTS = [
    Fact(
        key="kfp_api.routes",
        statement=(
            "The v2beta1 REST paths kfp.Client and the project sync use: healthz and the two multipart "
            "uploads are plain HTTP handlers on the top router; the rest are grpc-gateway routes declared in "
            "the protos (archive/unarchive as custom ':archive' methods with an empty body), a create "
            "taking the resource itself as the body"
        ),
        source=f"{_KFP} {_API}/run.proto@{_TAG}",
        value={
            ("GET", "/apis/v2beta1/healthz"),
            ("POST", "/apis/v2beta1/pipelines/upload"),
            ("POST", "/apis/v2beta1/pipelines/upload_version"),
            ("GET", "/apis/v2beta1/pipelines"),
            ("GET", "/apis/v2beta1/pipelines/{pipeline_id}"),
            ("GET", "/apis/v2beta1/pipelines/{pipeline_id}/versions"),
            ("GET", "/apis/v2beta1/pipelines/{pipeline_id}/versions/{pipeline_version_id}"),
            ("POST", "/apis/v2beta1/experiments"),
            ("GET", "/apis/v2beta1/experiments"),
            ("GET", "/apis/v2beta1/experiments/{experiment_id}"),
            # Custom methods of experiment.proto (the project sync archives a removed project's experiment).
            ("POST", "/apis/v2beta1/experiments/{experiment_id}:archive"),
            ("POST", "/apis/v2beta1/experiments/{experiment_id}:unarchive"),
            ("POST", "/apis/v2beta1/runs"),
            ("GET", "/apis/v2beta1/runs"),
            ("GET", "/apis/v2beta1/runs/{run_id}"),
        },
    ),
    Fact(
        key="kfp_api.upload_form_field",
        statement="The upload handlers read the pipeline file from the multipart form field 'uploadfile'",
        source=f"{_KFP} {_SERVER}/server/pipeline_upload_server.go@{_TAG}",
        value="uploadfile",
    ),
    Fact(
        key="kfp_api.json_options",
        statement=(
            "The gateway's JSON marshaler writes proto (snake_case) field names and omits unset fields, and "
            "its decoder does not discard unknown fields: a body with an unknown field is refused"
        ),
        source=f"{_KFP} {_SERVER}/common/utils.go@{_TAG}",
        value={"UseProtoNames": True, "EmitUnpopulated": False, "DiscardUnknown": False},
    ),
    Fact(
        key="kfp_api.decode_error_code",
        statement=(
            "A body the gateway cannot decode (unknown field, wrong type) is answered with gRPC code "
            "InvalidArgument (3) and the decoder's message"
        ),
        source=f"{_KFP} {_API}/go_client/run.pb.gw.go@{_TAG}",
        value=3,
    ),
    Fact(
        key="kfp_api.grpc_gateway_version",
        statement="KFP 2.17.0 builds its REST gateway with grpc-gateway v2.28.0",
        source=f"{_KFP} go.mod@{_TAG}",
        value="v2.28.0",
    ),
    Fact(
        key="kfp_api.http_status_from_code",
        statement=(
            "grpc-gateway's HTTPStatusFromCode: InvalidArgument 400, NotFound 404, AlreadyExists 409, "
            "Aborted 409, Unimplemented 501, Internal 500 (KFP sets no error handler of its own)"
        ),
        source="grpc-ecosystem/grpc-gateway runtime/errors.go@v2.28.0",
        value={3: 400, 5: 404, 6: 409, 10: 409, 12: 501, 13: 500},
    ),
    Fact(
        key="kfp_api.error_body",
        statement=(
            "An API error is a google.rpc.Status: code, message (the server's internal error chain) and one "
            "detail, itself a google.rpc.Status carrying the external message"
        ),
        source=f"{_KFP} backend/src/common/util/error.go@{_TAG}",
        value={
            "fields": ("code", "message", "details"),
            "detail_type": "type.googleapis.com/google.rpc.Status",
        },
    ),
    Fact(
        key="kfp_api.upload_error_body",
        statement=(
            "The upload handlers answer errors with the v1beta1 Error message (error_message, "
            "error_details), not a google.rpc.Status"
        ),
        source=f"{_KFP} {_SERVER}/server/pipeline_upload_server.go@{_TAG}",
        value=("error_message", "error_details"),
    ),
    Fact(
        key="kfp_api.not_found",
        statement=(
            "Reading an unknown run, pipeline, pipeline version or experiment is NotFound with the external "
            "message '<Resource> <id> not found' (ResourceNotFoundError), so HTTP 404"
        ),
        source=f"{_KFP} {_SERVER}/storage/run_store.go@{_TAG}",
        value={"code": 5, "http": 404, "resources": ("Run", "Pipeline", "PipelineVersion", "Experiment")},
    ),
    Fact(
        key="kfp_api.create_run_unknown_source",
        statement=(
            "CreateRun wraps the lookup of the run's pipeline version (or a pipeline's latest version) in "
            "NewInternalServerError: an unknown pipeline or version id is HTTP 500 'Internal Server Error', "
            "not 404; a version of another pipeline likewise"
        ),
        source=f"{_KFP} {_SERVER}/resource/resource_manager.go@{_TAG}",
        value={"code": 13, "http": 500, "external": "Internal Server Error"},
    ),
    Fact(
        key="kfp_api.create_run_unknown_experiment",
        statement="CreateRun with an unknown experiment_id is NotFound (GetValidExperimentNamespacePair)",
        source=f"{_KFP} {_SERVER}/resource/resource_manager.go@{_TAG}",
        value={"code": 5, "http": 404},
    ),
    Fact(
        key="kfp_api.create_run_empty_name",
        statement=(
            "A run without display_name, or an experiment without display_name, is refused by the API "
            "converter as an InternalServerError around an InvalidInputError: HTTP 500"
        ),
        source=f"{_KFP} {_SERVER}/server/api_converter.go@{_TAG}",
        value={"code": 13, "http": 500},
    ),
    Fact(
        key="kfp_api.create_run_pipeline_version_id_ignored",
        statement=(
            "The deprecated top-level Run.pipeline_version_id is not read by the v2beta1 converter; only "
            "pipeline_version_reference or pipeline_spec give a run its pipeline"
        ),
        source=f"{_KFP} {_SERVER}/server/api_converter.go@{_TAG}",
        value=("pipeline_version_reference", "pipeline_spec"),
    ),
    Fact(
        key="kfp_api.duplicate_name",
        statement=(
            "Uploading a pipeline whose name exists, or a version whose name exists in that pipeline, is "
            "AlreadyExists and the upload handler answers 409; creating an experiment with an existing name "
            "is AlreadyExists (409) too"
        ),
        source=f"{_KFP} {_SERVER}/server/pipeline_upload_server.go@{_TAG}",
        value=409,
    ),
    Fact(
        key="kfp_api.upload_version_unknown_pipeline",
        statement=(
            "upload_version with a pipelineid that does not exist is answered 400 'Failed to create a "
            "pipeline version' (the namespace lookup fails before the version is created), not 404"
        ),
        source=f"{_KFP} {_SERVER}/server/pipeline_upload_server.go@{_TAG}",
        value=400,
    ),
    Fact(
        key="kfp_api.upload_names",
        statement=(
            "An upload names the pipeline (or version) from the 'name' query parameter, else 'display_name', "
            "else the file name; uploading a pipeline also creates its first version with the pipeline's "
            "name and description"
        ),
        source=f"{_KFP} {_SERVER}/server/pipeline_upload_server.go@{_TAG}",
        value=("name", "display_name", "filename"),
    ),
    Fact(
        key="kfp_api.pipeline_spec_name_pattern",
        statement=(
            "The IR's pipelineInfo.name must match MLMD's rule, checked on every upload "
            "(InvalidArgument, 400)"
        ),
        source=f"{_KFP} {_SERVER}/common/utils.go@{_TAG}",
        value=r"^[a-z0-9][a-z0-9-]{0,127}$",
    ),
    Fact(
        key="kfp_api.stored_spec_with_platform",
        statement=(
            "A version whose file holds a second, platform document is returned with pipeline_spec = "
            "{pipeline_spec: ..., platform_spec: ...}; a single document is returned as is"
        ),
        source=f"{_KFP} {_SERVER}/server/api_util.go@{_TAG}",
        value=("pipeline_spec", "platform_spec"),
    ),
    Fact(
        key="kfp_api.get_version_ignores_pipeline_id",
        statement=(
            "GetPipelineVersion looks the version up by pipeline_version_id alone; pipeline_id is not checked"
        ),
        source=f"{_KFP} {_SERVER}/server/pipeline_server.go@{_TAG}",
        value=True,
    ),
    Fact(
        key="kfp_api.runtime_states",
        statement="The v2beta1 RuntimeState enum, in order",
        source=f"{_KFP} {_API}/run.proto@{_TAG}",
        value=(
            "RUNTIME_STATE_UNSPECIFIED",
            "PENDING",
            "RUNNING",
            "SUCCEEDED",
            "SKIPPED",
            "FAILED",
            "CANCELING",
            "CANCELED",
            "PAUSED",
        ),
    ),
    Fact(
        key="kfp_api.created_run_state",
        statement=(
            "A created run is stored in state PENDING with one state_history entry; finished_at is written "
            "from time.Unix(0), so an unfinished run reads 1970-01-01T00:00:00Z"
        ),
        source=f"{_KFP} {_SERVER}/resource/resource_manager.go@{_TAG}",
        value={"state": "PENDING", "unfinished_finished_at": "1970-01-01T00:00:00Z"},
    ),
    Fact(
        key="kfp_api.failure_visibility",
        statement=(
            "The run store appends state_history entries without an error and Run.error is only set when a "
            "run cannot be converted; a failed step shows as a FAILED entry of run_details.task_details "
            "(tasks joined to the run). The proto allows RuntimeStatus.error on the FAILED entry."
        ),
        source=f"{_KFP} {_SERVER}/storage/run_store.go@{_TAG}",
        value=("error", "state_history[].error", "run_details.task_details[].state"),
    ),
    *(
        Fact(
            key=f"kfp_api.filter_keys.{kind}",
            statement=(
                f"The keys a {kind} list filter may name (APIToModelFieldMap, v2beta1 and v1beta1 names); "
                "any other key is InvalidArgument 'no support for filtering on unrecognized field'"
            ),
            source=f"{_KFP} {_SERVER}/model/{kind}.go@{_TAG}",
            value=keys,
        )
        for kind, keys in {
            "pipeline": {
                "id",
                "pipeline_id",
                "name",
                "display_name",
                "created_at",
                "description",
                "namespace",
            },
            "pipeline_version": {
                "id",
                "pipeline_version_id",
                "name",
                "display_name",
                "created_at",
                "status",
                "description",
                "pipeline_spec",
            },
            "experiment": {
                "id",
                "experiment_id",
                "name",
                "display_name",
                "created_at",
                "last_run_created_at",
                "description",
                "namespace",
                "storage_state",
            },
            "run": {
                "run_id",
                "id",
                "display_name",
                "name",
                "created_at",
                "finished_at",
                "description",
                "scheduled_at",
                "storage_state",
                "status",
                "namespace",
                "experiment_id",
                "state",
                "state_history",
                "runtime_details",
                "recurring_run_id",
            },
        }.items()
    ),
    Fact(
        key="kfp_api.page_size",
        statement="List page size: 0 means 20, more than 200 means 200, negative is InvalidArgument",
        source=f"{_KFP} {_SERVER}/list/list.go@{_TAG}",
        value={"default": 20, "max": 200},
    ),
    Fact(
        key="kfp_api.healthz_fields",
        statement="healthz answers commit_sha, tag_name, multi_user and pipeline_store (omitted when empty)",
        source=f"{_KFP} {_SERVER}/main.go@{_TAG}",
        value=("commit_sha", "tag_name", "multi_user", "pipeline_store"),
    ),
    Fact(
        key="kfp_api.archive_experiment",
        statement="ArchiveExperiment archives the experiment and its runs and recurring runs; "
        "UnarchiveExperiment restores the experiment only, its archived runs stay archived; both answer an "
        "empty message. Deleting an experiment is a separate call (never made by the project sync)",
        source=f"{_KFP} {_API}/experiment.proto@{_TAG}",
        value={"states": ("AVAILABLE", "ARCHIVED"), "archive": ":archive", "unarchive": ":unarchive"},
    ),
]
