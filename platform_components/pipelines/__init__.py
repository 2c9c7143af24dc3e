"""KFP helpers shared by projects: run a pipeline locally, compile it, submit it to a cluster.

Public contract (what project code such as ``examples/credit_default`` may use):

- ``run_local(pipeline_func, arguments, *, pipeline_root) -> LocalRun``: ``kfp.local`` with
  ``SubprocessRunner(use_venv=False)``;
- ``compile_pipeline(pipeline_func, path) -> Path``: the IR YAML for a cluster;
- ``submit(host, pipeline_func, arguments, *, experiment) -> str``: a run on a KFP API server;
- ``load_pipeline("path/to/pipeline.py:func" | "package.module:func")``;
- ``PipelineError``: raised with the failing step's log;
- ``with_mlflow_credentials(task)``: the platform's MLflow credentials for a step running in the cluster.

kfp is imported inside the functions so importing this package stays cheap.
"""

from platform_components.pipelines.cluster import MLFLOW_CREDENTIALS_SECRET, with_mlflow_credentials
from platform_components.pipelines.runner import (
    LocalRun,
    PipelineError,
    coerce_arguments,
    compile_pipeline,
    load_pipeline,
    project_root_of,
    run_local,
    submit,
)

__all__ = [
    "MLFLOW_CREDENTIALS_SECRET",
    "LocalRun",
    "PipelineError",
    "coerce_arguments",
    "compile_pipeline",
    "load_pipeline",
    "project_root_of",
    "run_local",
    "submit",
    "with_mlflow_credentials",
]
