"""The pipeline's steps as KFP v2 lightweight components.

Each component is hermetic: everything it uses is imported inside the function, because KFP ships only the
function's source to the step's process (a subprocess locally, a pod in the cluster). The project's own
modules (``examples.credit_default.data``) and the platform package (``platform_components``) must
therefore be importable where the step runs: locally ``platform_components.pipelines.run_local`` puts the
project root on ``PYTHONPATH``; in the cluster they are baked into ``BASE_IMAGE`` (see the ``Dockerfile``).

``packages_to_install=[]`` and ``install_kfp_package=False``: the image (or the local environment) already
holds kfp, mlflow, scikit-learn and skops at the versions the platform tested, and installing at run time
would need the internet and make runs non-reproducible.
"""

# No `from __future__ import annotations`: KFP reads the real annotation objects to build the interface.
from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

# The one place that names the image the steps run in on a cluster; built from ./Dockerfile.
# kfp.local's SubprocessRunner ignores it and runs the steps in the current environment.
BASE_IMAGE = "ghcr.io/example-org/credit-default-pipeline:0.1.0"

COMPONENT_OPTIONS = {"base_image": BASE_IMAGE, "packages_to_install": [], "install_kfp_package": False}


@dsl.component(**COMPONENT_OPTIONS)
def prepare_data(
    train_start_day: int,
    train_end_day: int,
    rows_per_day: int,
    training_data_path: str,
    scenario: str,
    drift_start_day: int,
    seed: int,
    train: Output[Dataset],
    holdout: Output[Dataset],
    holdout_fraction: float = 0.25,
    tracking_uri: str = "",
) -> NamedTuple("PrepareOutputs", [("train_rows", int), ("holdout_rows", int), ("source", str)]):
    """Load labelled rows (a file, or generated days) and split them into train and holdout by seed.

    ``training_data_path`` is a local CSV or Parquet file, or an MLflow artifact URI
    (``runs:/<run_id>/<path>`` or ``mlflow-artifacts:/...``, e.g. the rows the cluster's monitor uploads
    for a retrain, labels in ``default`` or ``label``), downloaded from ``tracking_uri`` (empty:
    ``MLFLOW_TRACKING_URI``).
    """
    import collections
    import tempfile
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from examples.credit_default.data import (
        CATEGORICAL_FEATURES,
        FEATURES,
        LABEL,
        NUMERIC_FEATURES,
        SCENARIOS,
        generate_range,
    )

    if not 0.05 <= holdout_fraction <= 0.5:
        raise ValueError(f"holdout_fraction={holdout_fraction} must be between 0.05 and 0.5")
    if training_data_path.startswith(("runs:/", "mlflow-artifacts:", "models:/")):
        import mlflow

        # A pod cannot read the monitor's disk: the rows travel as an MLflow artifact.
        download_dir = tempfile.mkdtemp(prefix="training-data-")
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=training_data_path, dst_path=download_dir, tracking_uri=tracking_uri or None
            )
        except Exception as error:
            raise ValueError(
                f"training_data_path={training_data_path!r} could not be downloaded from MLflow at "
                f"{tracking_uri or 'MLFLOW_TRACKING_URI'} ({type(error).__name__}: {error}); pass an "
                "existing artifact URI such as runs:/<run_id>/retrain_data/labelled_rows.csv"
            ) from None
        path = Path(local)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in (".csv", ".parquet"))
            if len(files) != 1:
                raise ValueError(
                    f"training_data_path={training_data_path!r} is a folder with {len(files)} CSV/Parquet "
                    "files; point it at one file"
                )
            path = files[0]
    elif training_data_path:
        path = Path(training_data_path)
    if training_data_path:
        if not path.is_file():
            raise ValueError(
                f"training_data_path={training_data_path!r} is not a file; pass a CSV or Parquet file with "
                f"the feature columns and {LABEL!r}, or leave it empty to generate days"
            )
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
        elif path.suffix.lower() == ".csv":
            frame = pd.read_csv(path)
        else:
            raise ValueError(
                f"training_data_path={training_data_path!r} has suffix {path.suffix!r}; use .csv or .parquet"
            )
        if LABEL not in frame.columns and "label" in frame.columns:
            # The platform's monitor exports production rows with their ground truth as `label`.
            frame = frame.rename(columns={"label": LABEL})
        missing = [column for column in (*FEATURES, LABEL) if column not in frame.columns]
        if missing:
            raise ValueError(
                f"training_data_path={training_data_path!r} lacks columns {missing}; it needs "
                f"{[*FEATURES, LABEL]} (extra columns are ignored)"
            )
        frame = frame.dropna(subset=[LABEL])
        labels = frame[LABEL]
        if not labels.isin([0, 1, True, False]).all():
            bad = sorted({repr(value) for value in labels[~labels.isin([0, 1, True, False])]})[:5]
            raise ValueError(f"column {LABEL!r} must hold 0 or 1; found {', '.join(bad)}")
        source = f"file:{path}" if path == Path(training_data_path) else training_data_path
    else:
        if scenario and scenario not in SCENARIOS:
            raise ValueError(f"scenario={scenario!r} is unknown; use '' or one of {', '.join(SCENARIOS)}")
        frame = generate_range(
            train_start_day,
            train_end_day,
            rows_per_day,
            scenario=scenario or None,
            drift_start_day=drift_start_day,
            seed=seed,
        )
        source = f"generated:days={train_start_day}..{train_end_day - 1},rows_per_day={rows_per_day}"
        if scenario:
            source += f",scenario={scenario},drift_start_day={drift_start_day}"
    frame = frame[[*FEATURES, LABEL]].reset_index(drop=True)
    frame[LABEL] = frame[LABEL].astype("int64")
    # Fixed dtypes whatever the file held (ints in a CSV, objects in a join): the model signature, and so the
    # serving contract, must not change between versions because one file stored age as an integer.
    for column in NUMERIC_FEATURES:
        values = pd.to_numeric(frame[column], errors="coerce")
        unparsable = frame[column][values.isna() & frame[column].notna()]
        if len(unparsable):
            examples = ", ".join(sorted(map(repr, unparsable.unique()))[:5])
            raise ValueError(
                f"column {column!r} must be numeric; found {examples} "
                f"(fix the rows, or send NaN for a missing value)"
            )
        frame[column] = values.astype("float64")
    for column in CATEGORICAL_FEATURES:
        frame[column] = frame[column].where(frame[column].isna(), frame[column].astype(str))

    # Stratified split with a seeded permutation: the same data and seed give the same holdout, and both
    # classes land in both parts so ROC AUC is defined.
    rng = np.random.default_rng(seed)
    holdout_index = []
    for label_value in (0, 1):
        rows = np.flatnonzero(frame[LABEL].to_numpy() == label_value)
        if len(rows) < 4:
            raise ValueError(
                f"only {len(rows)} rows have {LABEL}={label_value}; need at least 4 of each class to train "
                f"and evaluate (add days or rows)"
            )
        take = max(1, int(round(len(rows) * holdout_fraction)))
        holdout_index.extend(rng.permutation(rows)[:take].tolist())
    is_holdout = np.zeros(len(frame), dtype=bool)
    is_holdout[holdout_index] = True
    frame[~is_holdout].reset_index(drop=True).to_parquet(train.path, index=False)
    frame[is_holdout].reset_index(drop=True).to_parquet(holdout.path, index=False)
    train.metadata.update({"rows": int((~is_holdout).sum()), "source": source})
    holdout.metadata.update({"rows": int(is_holdout.sum()), "source": source})
    print(
        f"prepared {len(frame)} rows from {source}: {(~is_holdout).sum()} train, {is_holdout.sum()} holdout"
    )
    outputs = collections.namedtuple("PrepareOutputs", ["train_rows", "holdout_rows", "source"])
    return outputs(int((~is_holdout).sum()), int(is_holdout.sum()), source)


@dsl.component(**COMPONENT_OPTIONS)
def train_model(train: Input[Dataset], seed: int, model: Output[Model]) -> dict:
    """Fit a one-hot + gradient-boosting pipeline on the training rows; save it with skops."""
    import pandas as pd
    import skops.io
    import threadpoolctl
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    from examples.credit_default.data import CATEGORICAL_FEATURES, FEATURES, LABEL, NUMERIC_FEATURES

    # One OpenMP thread: HistGradientBoosting's threads spin-wait, and on a shared or CPU-limited node (a pod
    # sees the node's cores, not its quota) that made a 0.4 s fit take 14 s. The result does not change.
    threadpoolctl.threadpool_limits(limits=1)
    frame = pd.read_parquet(train.path)
    params = {
        "classifier": "HistGradientBoostingClassifier",
        "max_iter": 150,
        "learning_rate": 0.08,
        "max_leaf_nodes": 15,
        "l2_regularization": 1.0,
        "random_state": seed,
    }
    preprocess = ColumnTransformer(
        [
            ("numeric", "passthrough", list(NUMERIC_FEATURES)),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                list(CATEGORICAL_FEATURES),
            ),
        ]
    )
    # HistGradientBoosting handles missing numeric values natively, so a retrain on rows with a broken
    # upstream feature still trains (the monitor is what flags the breakage).
    classifier = HistGradientBoostingClassifier(
        max_iter=params["max_iter"],
        learning_rate=params["learning_rate"],
        max_leaf_nodes=params["max_leaf_nodes"],
        l2_regularization=params["l2_regularization"],
        random_state=seed,
    )
    pipeline = Pipeline([("preprocess", preprocess), ("classifier", classifier)])
    pipeline.fit(frame[list(FEATURES)], frame[LABEL])
    skops.io.dump(pipeline, model.path)
    model.metadata.update({"framework": "scikit-learn", "format": "skops", **params})
    print(f"trained {params['classifier']} on {len(frame)} rows")
    return params


@dsl.component(**COMPONENT_OPTIONS)
def evaluate_models(
    tracking_uri: str,
    model_name: str,
    holdout: Input[Dataset],
    challenger: Input[Model],
    metrics: Output[Metrics],
) -> NamedTuple(
    "EvaluateOutputs",
    [("challenger_metrics", dict), ("champion_metrics", dict), ("champion_version", str)],
):
    """Score the challenger and the current champion (if any) on the same holdout rows."""
    import collections

    import mlflow
    import numpy as np
    import pandas as pd
    import skops.io
    import threadpoolctl
    from mlflow.exceptions import MlflowException
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    from examples.credit_default.data import FEATURES, LABEL

    threadpoolctl.threadpool_limits(limits=1)  # see train_model

    def score(labels: np.ndarray, probabilities: np.ndarray) -> dict:
        return {
            "roc_auc": float(roc_auc_score(labels, probabilities)),
            "accuracy": float(accuracy_score(labels, probabilities >= 0.5)),
            "log_loss": float(log_loss(labels, probabilities, labels=[0, 1])),
        }

    def load_trusted_skops(path: str):
        # The file was written by this run's train step; still refuse any type outside the libraries the
        # model is built from, so a swapped artifact cannot run arbitrary code.
        untrusted = skops.io.get_untrusted_types(file=path)
        unexpected = [name for name in untrusted if not name.startswith(("sklearn.", "numpy.", "scipy."))]
        if unexpected:
            raise ValueError(
                f"model artifact {path} holds unexpected types {unexpected}; refusing to load it"
            )
        return skops.io.load(path, trusted=untrusted)

    frame = pd.read_parquet(holdout.path)
    features, labels = frame[list(FEATURES)], frame[LABEL].to_numpy()
    challenger_model = load_trusted_skops(challenger.path)
    challenger_metrics = score(labels, challenger_model.predict_proba(features)[:, 1])

    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient()
    champion_metrics: dict = {}
    champion_version = ""
    try:
        champion_version = client.get_model_version_by_alias(model_name, "champion").version
    except MlflowException as error:
        # No registered model yet, or no champion alias: the challenger wins by default.
        if error.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            raise
        print(f"no champion for {model_name!r} ({error.error_code}); the challenger is compared with nothing")
    if champion_version:
        # Pin the version, not the alias, so the evaluated model is the one the promotion step names.
        champion = mlflow.pyfunc.load_model(f"models:/{model_name}/{champion_version}")
        champion_scores = np.asarray(champion.predict(features))
        if champion_scores.ndim == 2:
            champion_scores = champion_scores[:, -1]
        champion_metrics = score(labels, champion_scores.astype(np.float64))

    for key, value in challenger_metrics.items():
        metrics.log_metric(f"challenger_{key}", value)
    for key, value in champion_metrics.items():
        metrics.log_metric(f"champion_{key}", value)
    print(f"challenger {challenger_metrics}; champion v{champion_version or '-'} {champion_metrics}")
    outputs = collections.namedtuple(
        "EvaluateOutputs", ["challenger_metrics", "champion_metrics", "champion_version"]
    )
    return outputs(challenger_metrics, champion_metrics, champion_version)


@dsl.component(**COMPONENT_OPTIONS)
def register_model(
    tracking_uri: str,
    model_name: str,
    train: Input[Dataset],
    holdout: Input[Dataset],
    challenger: Input[Model],
    training_params: dict,
    challenger_metrics: dict,
    champion_metrics: dict,
    champion_version: str,
    data_source: str,
    pipeline_run: str,
) -> NamedTuple("RegisterOutputs", [("version", str), ("run_id", str)]):
    """Log params, metrics, the model and its reference profile to MLflow; register it as ``challenger``."""
    import collections
    import importlib.metadata
    import json
    import os
    import tempfile

    import mlflow
    import pandas as pd
    import skops.io
    import threadpoolctl
    from mlflow.models import infer_signature

    from examples.credit_default.data import CATEGORICAL_FEATURES, FEATURES, LABEL, NUMERIC_FEATURES
    from platform_components.monitoring.profile import build_reference_profile

    threadpoolctl.threadpool_limits(limits=1)  # see train_model
    untrusted = skops.io.get_untrusted_types(file=challenger.path)
    unexpected = [name for name in untrusted if not name.startswith(("sklearn.", "numpy.", "scipy."))]
    if unexpected:
        raise ValueError(f"model artifact {challenger.path} holds unexpected types {unexpected}")
    model = skops.io.load(challenger.path, trusted=untrusted)
    train_frame = pd.read_parquet(train.path)
    holdout_frame = pd.read_parquet(holdout.path)
    features = train_frame[list(FEATURES)]
    input_example = features.head(5)
    signature = infer_signature(input_example, model.predict_proba(input_example))
    # Explicit requirements: inference scans the environment (slow, and it picks up test tools).
    requirements = [
        f"{package}=={importlib.metadata.version(package)}"
        for package in ("mlflow", "scikit-learn", "skops", "numpy", "pandas", "scipy")
    ]
    profile = build_reference_profile(
        features,
        numeric=list(NUMERIC_FEATURES),
        categorical=list(CATEGORICAL_FEATURES),
        prediction_scores=model.predict_proba(holdout_frame[list(FEATURES)])[:, 1],
        metadata={"label": LABEL, "model_name": model_name, "data_source": data_source},
    )

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(model_name)
    with mlflow.start_run(run_name=f"{model_name}-train") as run:
        mlflow.log_params({**training_params, "data_source": data_source[:500]})
        mlflow.log_params({"train_rows": len(train_frame), "holdout_rows": len(holdout_frame)})
        mlflow.log_metrics({f"holdout_{key}": value for key, value in challenger_metrics.items()})
        mlflow.log_metrics({f"champion_holdout_{key}": value for key, value in champion_metrics.items()})
        mlflow.set_tags(
            {
                "pipeline": "credit-default-training",
                "pipeline_run": pipeline_run,
                "champion_version_at_training": champion_version or "none",
            }
        )
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=signature,
            input_example=input_example,
            pyfunc_predict_fn="predict_proba",
            serialization_format="skops",
            skops_trusted_types=untrusted,
            pip_requirements=requirements,
        )
        mlflow.log_text(profile.to_json(), "monitoring/reference_profile.json")
        run_id = run.info.run_id
    version = mlflow.register_model(
        info.model_uri, model_name, tags={"data_source": data_source[:500], "pipeline_run": pipeline_run}
    )
    client = mlflow.MlflowClient()
    # Seldon Core 2 loads a model folder only with a model-settings.json in it, and the platform's serving
    # runtime reads the registry version from it (Seldon renames models), so monitoring can tie each
    # prediction to this version. No `implementation`: the serving image chooses the runtime.
    with tempfile.TemporaryDirectory() as folder:
        settings_path = os.path.join(folder, "model-settings.json")
        with open(settings_path, "w") as handle:
            json.dump(
                {"parameters": {"extra": {"init_parameters": {"registered_version": str(version.version)}}}},
                handle,
            )
        client.log_model_artifact(info.model_id, settings_path)
    client.set_registered_model_alias(model_name, "challenger", version.version)
    print(f"registered {model_name} version {version.version} from run {run_id} as @challenger")
    outputs = collections.namedtuple("RegisterOutputs", ["version", "run_id"])
    return outputs(str(version.version), run_id)


@dsl.component(**COMPONENT_OPTIONS)
def promote_model(
    tracking_uri: str,
    model_name: str,
    challenger_version: str,
    challenger_metrics: dict,
    champion_metrics: dict,
    champion_version: str,
    promotion_margin: float,
    decision_metrics: Output[Metrics],
) -> dict:
    """Move ``champion`` to the challenger only if its holdout ROC AUC beats the champion's by the margin."""
    import json
    import time

    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient()
    challenger_auc = float(challenger_metrics["roc_auc"])
    if not champion_version:
        promoted, reason = True, "no champion: the first version becomes champion"
        improvement = None
    else:
        champion_auc = float(champion_metrics["roc_auc"])
        improvement = challenger_auc - champion_auc
        # A tolerance so "exactly the margin" counts: 0.8125 - 0.8 is 0.012499999... in floating point.
        promoted = improvement >= promotion_margin - 1e-9
        verdict = "meets" if promoted else "is below"
        reason = (
            f"holdout ROC AUC {challenger_auc:.4f} vs champion v{champion_version} {champion_auc:.4f}: "
            f"improvement {improvement:+.4f} {verdict} the margin {promotion_margin:.4f}"
        )
    if promoted:
        # Guard against a concurrent promotion: only move the alias if it still points where we evaluated.
        try:
            current = client.get_model_version_by_alias(model_name, "champion").version
        except MlflowException:
            current = ""
        if current != champion_version:
            promoted = False
            reason = (
                f"champion moved from v{champion_version or '-'} to v{current or '-'} during this run; "
                f"not promoting v{challenger_version} (evaluate again against the new champion)"
            )
    if promoted:
        client.set_registered_model_alias(model_name, "champion", challenger_version)
    champion_after = challenger_version if promoted else champion_version
    decision = {
        "model_name": model_name,
        "challenger_version": challenger_version,
        "champion_version_before": champion_version,
        "champion_version_after": champion_after,
        "promoted": promoted,
        "reason": reason,
        "promotion_margin": promotion_margin,
        "roc_auc_improvement": improvement,
        "challenger_metrics": challenger_metrics,
        "champion_metrics": champion_metrics,
        "decided_at": time.time(),
    }
    client.set_model_version_tag(
        model_name, challenger_version, "promotion.decision", "promoted" if promoted else "rejected"
    )
    client.set_model_version_tag(model_name, challenger_version, "promotion.reason", reason)
    client.set_model_version_tag(
        model_name, challenger_version, "promotion.evidence", json.dumps(decision, sort_keys=True)
    )
    client.update_model_version(
        model_name,
        challenger_version,
        description=f"{'Promoted to champion' if promoted else 'Not promoted'}: {reason}",
    )
    decision_metrics.log_metric("promoted", 1.0 if promoted else 0.0)
    decision_metrics.log_metric("challenger_roc_auc", challenger_auc)
    if improvement is not None:
        decision_metrics.log_metric("roc_auc_improvement", improvement)
    print(
        f"decision for {model_name} v{challenger_version}: {'promoted' if promoted else 'rejected'}; {reason}"
    )
    return decision
