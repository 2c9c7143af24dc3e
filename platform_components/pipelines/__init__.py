"""KFP helpers shared by projects: run a pipeline locally, compile it, submit it to a cluster.

Public contract (what project code such as ``examples/credit_default`` may use):

- ``run_local(pipeline_func, arguments, *, pipeline_root) -> LocalRun``: ``kfp.local`` with
  ``SubprocessRunner(use_venv=False)``;
- ``compile_pipeline(pipeline_func, path) -> Path``: the IR YAML for a cluster;
- ``submit(host, pipeline, arguments, *, experiment) -> str``: a run on a KFP API server (``pipeline``: a
  ``@dsl.pipeline`` function, a compiled IR path or an uploaded pipeline's name; the IR is uploaded once and
  reused by its hash); ``submit_run`` returns the pipeline, version and experiment ids too;
- ``run_status(host, run_id) -> RunStatus``: a KFP run's state in our words, with the failure's reason;
- ``pipeline_input_names(pipeline)``: the inputs of a pipeline function or of its compiled IR file;
- ``load_pipeline("path/to/pipeline.py:func" | "package.module:func")``;
- ``PipelineError``: raised with the failing step's log;
- ``with_mlflow_credentials(task)``: the platform's MLflow credentials for a step running in the cluster;
- ``log_model_for_platform(model, *, model_name, train, holdout, label, numeric_features, ...) -> version``:
  inside the training step's MLflow run, logs the model and what the loop reads about it (signature,
  reference profile with the performance estimator, holdout metrics), registers it as ``challenger``;
- ``load_labelled_rows(path, *, label, features, field, tracking_uri)``: the rows a retrainer passes as
  ``training_data_path`` / ``gate_data_path``; ``model_metrics(task, labels, predictions)``: the metrics the
  promotion gate compares; ``PlatformModelError``.

kfp is imported inside the functions so importing this package stays cheap.
"""

from platform_components.pipelines.cluster import MLFLOW_CREDENTIALS_SECRET, with_mlflow_credentials
from platform_components.pipelines.platform_model import (
    PlatformModelError,
    gain_bounds,
    load_labelled_rows,
    log_model_for_platform,
    model_metrics,
)
from platform_components.pipelines.runner import (
    LocalRun,
    PipelineError,
    RunStatus,
    SubmittedRun,
    coerce_arguments,
    compile_pipeline,
    load_pipeline,
    pipeline_input_names,
    project_root_of,
    run_local,
    run_status,
    submit,
    submit_run,
)

__all__ = [
    "MLFLOW_CREDENTIALS_SECRET",
    "LocalRun",
    "PipelineError",
    "PlatformModelError",
    "RunStatus",
    "SubmittedRun",
    "coerce_arguments",
    "compile_pipeline",
    "gain_bounds",
    "load_labelled_rows",
    "load_pipeline",
    "log_model_for_platform",
    "model_metrics",
    "pipeline_input_names",
    "project_root_of",
    "run_local",
    "run_status",
    "submit",
    "submit_run",
    "with_mlflow_credentials",
]
