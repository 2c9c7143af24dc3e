"""What the monitor's KFP retrainer relies on: where the API is reached and how a compiled IR is read.

Read in kubeflow/pipelines at tag 2.17.0: the manifests the platform installs (the API Service, its namespace)
and the SDK's loader of compiled pipelines (the retrainer reads a pipeline's inputs from its IR).
"""

from __future__ import annotations

from upstream_facts import Fact

_KFP = "kubeflow/pipelines"
_TAG = "2.17.0"
_MANIFESTS = "manifests/kustomize"

FACTS = [
    Fact(
        key="kfp_retrain.api_service",
        statement="The KFP API server is reached through the Service ml-pipeline, whose port named http is "
        "8888 (targetPort 8888; 8887 is gRPC); the REST API kfp.Client speaks is on the http port",
        source=f"{_KFP} {_MANIFESTS}/base/pipeline/ml-pipeline-apiserver-service.yaml@{_TAG}",
        value={"name": "ml-pipeline", "port_name": "http", "port": 8888},
    ),
    Fact(
        key="kfp_retrain.namespace",
        statement="The env/platform-agnostic overlay the platform applies puts every namespaced object, the "
        "ml-pipeline Service included, in the namespace kubeflow",
        source=f"{_KFP} {_MANIFESTS}/env/platform-agnostic/kustomization.yaml@{_TAG}",
        value="kubeflow",
    ),
    Fact(
        key="kfp_retrain.ir_inputs_optional",
        statement="kfp.components.load_component_from_file reads a compiled pipeline IR (pipeline spec, and "
        "the platform spec as a second document) into a ComponentSpec whose inputs carry `optional`: the "
        "IR's isOptional, else whether the parameter has a defaultValue",
        source=f"{_KFP} sdk/python/kfp/dsl/structures.py@{_TAG}",
        value=True,
    ),
    Fact(
        key="kfp_retrain.upload_pipeline_package",
        statement="kfp.Client.upload_pipeline(pipeline_package_path, ...) uploads a compiled pipeline file "
        "through the multipart upload API; no pipeline function or project code is needed to submit",
        source=f"{_KFP} sdk/python/kfp/client/client.py@{_TAG}",
        value="pipeline_package_path",
    ),
]
