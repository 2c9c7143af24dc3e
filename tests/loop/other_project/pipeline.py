"""The churn project's pipeline: train and register -> gate and promote.

It declares the platform inputs the loop's retrainers pass (``tracking_uri``, ``model_name``,
``training_data_path``, ``gate_data_path``, ``promotion_margin``); without a training file it generates
seven days of subscribers, which is how its first version is made.
"""

# No `from __future__ import annotations`: KFP reads the real annotation objects to build the interface.
from kfp import dsl

from loop.other_project.components import gate_and_promote, train_and_register
from platform_components.pipelines import with_mlflow_credentials

PIPELINE_NAME = "churn-training"


@dsl.pipeline(name=PIPELINE_NAME, description="Train a churn classifier, gate it against the champion.")
def churn_pipeline(
    tracking_uri: str,
    model_name: str = "churn",
    training_data_path: str = "",
    gate_data_path: str = "",
    promotion_margin: float = 0.01,
    rows_per_day: int = 400,
    seed: int = 0,
) -> dict:
    """Train a challenger for ``model_name`` and promote it if it beats the champion on the gate rows.

    Args:
        tracking_uri: MLflow tracking URI.
        model_name: Registered model name.
        training_data_path: Labelled rows (CSV or Parquet, local or ``runs:/...``); empty: generate days.
        gate_data_path: The most recent labelled rows, held out from training; empty: the holdout.
        promotion_margin: Minimum ROC AUC improvement over the champion on the gate rows.
        rows_per_day: Rows per generated day.
        seed: Seed of the generated days, the split and the model.
    """
    trained = train_and_register(
        tracking_uri=tracking_uri,
        model_name=model_name,
        training_data_path=training_data_path,
        gate_data_path=gate_data_path,
        rows_per_day=rows_per_day,
        seed=seed,
    )
    promote = gate_and_promote(
        tracking_uri=tracking_uri,
        model_name=model_name,
        challenger_version=trained.outputs["version"],
        gate=trained.outputs["gate"],
        gate_source=trained.outputs["gate_source"],
        promotion_margin=promotion_margin,
    )
    for task in (trained, promote):
        with_mlflow_credentials(task)
    return promote.output
