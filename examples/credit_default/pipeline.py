"""The credit-default training pipeline: prepare -> train -> evaluate -> register -> promote.

The platform's retrainers start it with ``tracking_uri``, ``model_name``, ``training_data_path``,
``gate_data_path`` and ``promotion_margin`` (the inputs it declares); the other inputs generate data for
a first model and for experiments.

Run it locally (needs an MLflow tracking server)::

    mlops pipeline run --local examples/credit_default/pipeline.py:credit_default_pipeline \\
        --arg tracking_uri=http://127.0.0.1:5000

Compile it for a cluster::

    mlops pipeline compile examples/credit_default/pipeline.py:credit_default_pipeline \\
        --out credit_default.yaml

The pipeline's output (the promote step's return value) is the decision: ``challenger_version``,
``champion_version_before``, ``champion_version_after``, ``promoted``, ``reason``, both metric sets and the
margin. The same facts are written to MLflow as tags of the new model version.
"""

# No `from __future__ import annotations`: KFP reads the real annotation objects to build the interface.
from kfp import dsl

from examples.credit_default.components import (
    evaluate_models,
    prepare_data,
    promote_model,
    register_model,
    train_model,
)
from platform_components.pipelines import with_mlflow_credentials

PIPELINE_NAME = "credit-default-training"


@dsl.pipeline(name=PIPELINE_NAME, description="Train, evaluate against the champion, register, promote.")
def credit_default_pipeline(
    tracking_uri: str,
    model_name: str = "credit-default",
    train_start_day: int = 0,
    train_end_day: int = 7,
    rows_per_day: int = 500,
    training_data_path: str = "",
    gate_data_path: str = "",
    scenario: str = "",
    drift_start_day: int = -1,
    promotion_margin: float = 0.01,
    seed: int = 0,
) -> dict:
    """Train a challenger for ``model_name`` and promote it to ``champion`` if it is better by the margin.

    Args:
        tracking_uri: MLflow tracking server, e.g. ``http://127.0.0.1:5000``.
        model_name: Registered model name in MLflow.
        train_start_day: First generated day (ignored when ``training_data_path`` is set).
        train_end_day: End of the generated days, exclusive.
        rows_per_day: Generated rows per day.
        training_data_path: A CSV or Parquet file of labelled rows (features + ``default``), e.g. recent
            production rows joined with their labels, as a local path or an MLflow artifact URI
            (``runs:/<run_id>/<path>``); empty means generate days instead.
        gate_data_path: The rows the promotion gate compares challenger and champion on: the most recent
            labelled rows, held out from ``training_data_path`` (same format); empty means the holdout
            split of the training rows.
        scenario: Drift scenario for generated days ('' for none; see ``data.SCENARIOS``).
        drift_start_day: Day the scenario starts; -1 means never.
        promotion_margin: Minimum ROC AUC improvement over the champion, on the same gate rows, to promote.
        seed: Seed for data generation, the train/holdout split and the model.
    """
    prepare = prepare_data(
        train_start_day=train_start_day,
        train_end_day=train_end_day,
        rows_per_day=rows_per_day,
        training_data_path=training_data_path,
        gate_data_path=gate_data_path,
        scenario=scenario,
        drift_start_day=drift_start_day,
        seed=seed,
        tracking_uri=tracking_uri,
    )
    train = train_model(train=prepare.outputs["train"], seed=seed)
    evaluate = evaluate_models(
        tracking_uri=tracking_uri,
        model_name=model_name,
        gate=prepare.outputs["gate"],
        challenger=train.outputs["model"],
    )
    register = register_model(
        tracking_uri=tracking_uri,
        model_name=model_name,
        train=prepare.outputs["train"],
        holdout=prepare.outputs["holdout"],
        challenger=train.outputs["model"],
        training_params=train.outputs["Output"],
        challenger_metrics=evaluate.outputs["challenger_metrics"],
        champion_metrics=evaluate.outputs["champion_metrics"],
        champion_version=evaluate.outputs["champion_version"],
        data_source=prepare.outputs["source"],
        gate_source=prepare.outputs["gate_source"],
        pipeline_run=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
    )
    promote = promote_model(
        tracking_uri=tracking_uri,
        model_name=model_name,
        challenger_version=register.outputs["version"],
        challenger_metrics=evaluate.outputs["challenger_metrics"],
        champion_metrics=evaluate.outputs["champion_metrics"],
        champion_version=evaluate.outputs["champion_version"],
        promotion_margin=promotion_margin,
        gate_source=prepare.outputs["gate_source"],
    )
    # In the cluster, MLflow refuses unauthenticated calls: every step that talks to it gets the platform's
    # credentials (locally and without auth the optional Secret is simply absent).
    for task in (prepare, evaluate, register, promote):
        with_mlflow_credentials(task)
    return promote.outputs["Output"]
