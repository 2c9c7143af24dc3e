"""The churn project's two steps: train and register, then gate and promote.

Hermetic KFP lightweight components, like the example's: imports inside, the project package
(``loop.other_project``) and ``platform_components`` importable where the step runs.
"""

# No `from __future__ import annotations`: KFP reads the real annotation objects to build the interface.
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Output

# kfp.local ignores the image; a cluster would run the steps in an image holding this package.
BASE_IMAGE = "ghcr.io/example-org/churn-pipeline:0.1.0"
COMPONENT_OPTIONS = {"base_image": BASE_IMAGE, "packages_to_install": [], "install_kfp_package": False}


@dsl.component(**COMPONENT_OPTIONS)
def train_and_register(
    tracking_uri: str,
    model_name: str,
    training_data_path: str,
    gate_data_path: str,
    rows_per_day: int,
    seed: int,
    gate: Output[Dataset],
) -> NamedTuple("TrainOutputs", [("version", str), ("source", str), ("gate_source", str)]):
    """Read (or generate) labelled rows, fit a logistic regression, log it for the platform as challenger.

    The gate rows the next step compares on are ``gate_data_path``'s or, without it, this step's holdout.
    """
    import collections

    import mlflow
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from loop.other_project.data import (
        CATEGORICAL_FEATURES,
        FEATURES,
        LABEL,
        NUMERIC_FEATURES,
        generate_range,
    )
    from platform_components.pipelines import load_labelled_rows, log_model_for_platform

    features = list(FEATURES)
    if training_data_path:
        rows = load_labelled_rows(
            training_data_path, label=LABEL, features=features, tracking_uri=tracking_uri
        )
        source = training_data_path
    else:
        rows = generate_range(0, 7, rows_per_day, seed=seed)[[*features, LABEL]]
        source = f"generated:days=0..6,rows_per_day={rows_per_day}"
    rows[LABEL] = rows[LABEL].astype("int64")
    for column in NUMERIC_FEATURES:
        rows[column] = rows[column].astype("float64")
    train, holdout = train_test_split(rows, test_size=0.25, random_state=seed, stratify=rows[LABEL])
    model = Pipeline(
        [
            (
                "preprocess",
                ColumnTransformer(
                    [
                        ("numeric", StandardScaler(), list(NUMERIC_FEATURES)),
                        ("categorical", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_FEATURES)),
                    ]
                ),
            ),
            ("classifier", LogisticRegression(max_iter=1000)),
        ]
    ).fit(train[features], train[LABEL])

    if gate_data_path:
        gate_rows = load_labelled_rows(
            gate_data_path, label=LABEL, features=features, field="gate_data_path", tracking_uri=tracking_uri
        )
        gate_source = gate_data_path
    else:
        gate_rows, gate_source = holdout, "holdout"
    gate_rows.to_parquet(gate.path, index=False)

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(model_name)
    with mlflow.start_run(run_name=f"{model_name}-train"):
        mlflow.log_params({"classifier": "LogisticRegression", "data_source": source[:500], "seed": seed})
        version = log_model_for_platform(
            model,
            model_name=model_name,
            train=train,
            holdout=holdout,
            label=LABEL,
            numeric_features=list(NUMERIC_FEATURES),
            categorical_features=list(CATEGORICAL_FEATURES),
            tags={"pipeline": "churn-training", "data_source": source[:500]},
        )
    print(f"registered {model_name} v{version} from {len(train)} rows of {source}; gate: {gate_source}")
    outputs = collections.namedtuple("TrainOutputs", ["version", "source", "gate_source"])
    return outputs(version, source, gate_source)


@dsl.component(**COMPONENT_OPTIONS)
def gate_and_promote(
    tracking_uri: str,
    model_name: str,
    challenger_version: str,
    gate: dsl.Input[Dataset],
    gate_source: str,
    promotion_margin: float,
) -> dict:
    """Move ``champion`` to the challenger if it beats the champion on the gate rows by the margin."""
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from loop.other_project.data import FEATURES, LABEL
    from platform_components.pipelines import model_metrics

    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient()
    rows = pd.read_parquet(gate.path)

    def gate_auc(version: str) -> float:
        # Pinned versions, not aliases: the models compared are the ones the decision names.
        scores = np.asarray(
            mlflow.pyfunc.load_model(f"models:/{model_name}/{version}").predict(rows[list(FEATURES)])
        )
        return model_metrics("classification", rows[LABEL].to_numpy(), scores[:, -1])["roc_auc"]

    try:
        champion_version = str(client.get_model_version_by_alias(model_name, "champion").version)
    except MlflowException as error:
        if error.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            raise
        champion_version = ""
    challenger_auc = gate_auc(challenger_version)
    champion_auc = gate_auc(champion_version) if champion_version else None
    if champion_auc is None:
        promoted, reason = True, "no champion: the first version becomes champion"
    else:
        improvement = challenger_auc - champion_auc
        promoted = improvement >= promotion_margin - 1e-9  # "exactly the margin" counts
        reason = (
            f"ROC AUC on the gate rows ({gate_source}) {challenger_auc:.4f} vs champion v{champion_version} "
            f"{champion_auc:.4f}: improvement {improvement:+.4f} "
            f"{'meets' if promoted else 'is below'} the margin {promotion_margin:.4f}"
        )
    if promoted:
        client.set_registered_model_alias(model_name, "champion", challenger_version)
    client.set_model_version_tag(
        model_name, challenger_version, "promotion.decision", "promoted" if promoted else "rejected"
    )
    client.set_model_version_tag(model_name, challenger_version, "promotion.reason", reason)
    print(f"{model_name} v{challenger_version}: {'promoted' if promoted else 'rejected'}; {reason}")
    return {
        "model_name": model_name,
        "challenger_version": challenger_version,
        "champion_version_before": champion_version,
        "champion_version_after": challenger_version if promoted else champion_version,
        "promoted": promoted,
        "reason": reason,
        "promotion_margin": promotion_margin,
        "gate_source": gate_source,
        "gate_rows": len(rows),
        "challenger_roc_auc": challenger_auc,
        "champion_roc_auc": champion_auc,
    }
