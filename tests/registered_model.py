"""A registered model version with a reference profile on a real MLflow store (SQLite), for monitor tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from platform_components.monitoring.profile import build_reference_profile
from platform_components.monitoring.tracking import PROFILE_ARTIFACT


def features(rows: int, rng: np.random.Generator, income_shift: float = 0.0) -> pd.DataFrame:
    """Rows of three features; ``income_shift`` moves the incomes (1.5 sd at 15)."""
    return pd.DataFrame(
        {
            "income": rng.normal(50 + income_shift, 10, rows),
            "age": rng.normal(40, 8, rows),
            "purpose": rng.choice(["car", "house", "education"], rows),
        }
    )


def register_version(root: Path, model: str) -> tuple[str, object]:
    """Version 1 of ``model`` (alias ``champion``) with its reference profile and ``holdout_roc_auc`` 0.9."""
    from mlflow.tracking import MlflowClient

    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = client.create_experiment("train", artifact_location=(root / "artifacts").as_uri())
    run = client.create_run(experiment_id)
    rng = np.random.default_rng(0)
    profile = build_reference_profile(
        features(5_000, rng),
        numeric=["income", "age"],
        categorical=["purpose"],
        prediction_scores=rng.beta(2, 5, 5_000),
    )
    client.log_text(run.info.run_id, profile.to_json(), PROFILE_ARTIFACT)
    client.log_metric(run.info.run_id, "holdout_roc_auc", 0.9)
    client.set_terminated(run.info.run_id)
    client.create_registered_model(model)
    client.create_model_version(model, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    client.set_registered_model_alias(model, "champion", "1")
    return tracking_uri, client
