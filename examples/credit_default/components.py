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
    gate: Output[Dataset],
    holdout_fraction: float = 0.25,
    tracking_uri: str = "",
    gate_data_path: str = "",
) -> NamedTuple(
    "PrepareOutputs",
    [("train_rows", int), ("holdout_rows", int), ("source", str), ("gate_rows", int), ("gate_source", str)],
):
    """Load labelled rows (a file, or generated days), split train and holdout by seed, and pick gate rows.

    ``training_data_path`` and ``gate_data_path`` are local CSV or Parquet files, or MLflow artifact URIs
    (``runs:/<run_id>/<path>`` or ``mlflow-artifacts:/...``, what the platform's retrainer uploads in the
    cluster, labels in ``default`` or ``label``), downloaded from ``tracking_uri`` (empty:
    ``MLFLOW_TRACKING_URI``). The gate rows are what the promotion gate scores challenger and champion on:
    the ``gate_data_path`` rows (the most recent labelled rows, held out from training) or, without it,
    the holdout.
    """
    import collections

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
    from platform_components.pipelines import load_labelled_rows

    def typed(frame: pd.DataFrame, field: str) -> pd.DataFrame:
        # Fixed dtypes whatever the file held (ints in a CSV, objects in a join): the model signature, and
        # so the serving contract, must not change between versions because one file stored age as an int.
        frame = frame[[*FEATURES, LABEL]].reset_index(drop=True)
        labels = frame[LABEL]
        if not labels.isin([0, 1, True, False]).all():
            bad = sorted({repr(value) for value in labels[~labels.isin([0, 1, True, False])]})[:5]
            raise ValueError(f"{field}: column {LABEL!r} must hold 0 or 1; found {', '.join(bad)}")
        frame[LABEL] = labels.astype("int64")
        for column in NUMERIC_FEATURES:
            values = pd.to_numeric(frame[column], errors="coerce")
            unparsable = frame[column][values.isna() & frame[column].notna()]
            if len(unparsable):
                examples = ", ".join(sorted(map(repr, unparsable.unique()))[:5])
                raise ValueError(
                    f"{field}: column {column!r} must be numeric; found {examples} "
                    f"(fix the rows, or send NaN for a missing value)"
                )
            frame[column] = values.astype("float64")
        for column in CATEGORICAL_FEATURES:
            frame[column] = frame[column].where(frame[column].isna(), frame[column].astype(str))
        return frame

    if not 0.05 <= holdout_fraction <= 0.5:
        raise ValueError(f"holdout_fraction={holdout_fraction} must be between 0.05 and 0.5")
    if training_data_path:
        frame = load_labelled_rows(
            training_data_path,
            label=LABEL,
            features=FEATURES,
            field="training_data_path",
            tracking_uri=tracking_uri,
        )
        source = (
            training_data_path
            if training_data_path.startswith(("runs:/", "mlflow-artifacts:", "models:/"))
            else f"file:{training_data_path}"
        )
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
    frame = typed(frame, "training_data_path")

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
    train_frame = frame[~is_holdout].reset_index(drop=True)
    holdout_frame = frame[is_holdout].reset_index(drop=True)
    if gate_data_path:
        gate_frame = typed(
            load_labelled_rows(
                gate_data_path,
                label=LABEL,
                features=FEATURES,
                field="gate_data_path",
                tracking_uri=tracking_uri,
            ),
            "gate_data_path",
        )
        if gate_frame[LABEL].nunique() < 2:
            raise ValueError(
                f"gate_data_path={gate_data_path!r}: every row has {LABEL}={int(gate_frame[LABEL].iloc[0])}; "
                "the gate compares ROC AUC, which needs rows of both classes (pass more recent rows)"
            )
        gate_source = (
            gate_data_path
            if gate_data_path.startswith(("runs:/", "mlflow-artifacts:", "models:/"))
            else f"file:{gate_data_path}"
        )
    else:
        gate_frame, gate_source = holdout_frame, "holdout"
    train_frame.to_parquet(train.path, index=False)
    holdout_frame.to_parquet(holdout.path, index=False)
    gate_frame.to_parquet(gate.path, index=False)
    train.metadata.update({"rows": len(train_frame), "source": source})
    holdout.metadata.update({"rows": len(holdout_frame), "source": source})
    gate.metadata.update({"rows": len(gate_frame), "source": gate_source})
    print(
        f"prepared {len(frame)} rows from {source}: {len(train_frame)} train, {len(holdout_frame)} holdout; "
        f"{len(gate_frame)} gate rows from {gate_source}"
    )
    outputs = collections.namedtuple(
        "PrepareOutputs", ["train_rows", "holdout_rows", "source", "gate_rows", "gate_source"]
    )
    return outputs(len(train_frame), len(holdout_frame), source, len(gate_frame), gate_source)


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
    gate: Input[Dataset],
    challenger: Input[Model],
    metrics: Output[Metrics],
) -> NamedTuple(
    "EvaluateOutputs",
    [("challenger_metrics", dict), ("champion_metrics", dict), ("champion_version", str)],
):
    """Score the challenger and the current champion (if any) on the same gate rows."""
    import collections

    import mlflow
    import numpy as np
    import pandas as pd
    import skops.io
    import threadpoolctl
    from mlflow.exceptions import MlflowException

    from examples.credit_default.data import FEATURES, LABEL
    from platform_components.pipelines import gain_bounds, model_metrics

    threadpoolctl.threadpool_limits(limits=1)  # see train_model

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

    frame = pd.read_parquet(gate.path)
    features, labels = frame[list(FEATURES)], frame[LABEL].to_numpy()
    challenger_model = load_trusted_skops(challenger.path)
    # The platform's metric definitions: the same ones the monitor's baseline (holdout_*) uses.
    challenger_scores = challenger_model.predict_proba(features)[:, 1]
    challenger_metrics = model_metrics("classification", labels, challenger_scores)

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
        champion_metrics = model_metrics("classification", labels, champion_scores.astype(np.float64))
        # The gain with its band on these rows (paired bootstrap): the gate needs more than chance.
        bounds = gain_bounds(labels, challenger_scores, champion_scores.astype(np.float64))
        challenger_metrics["roc_auc_gain_lower"] = bounds["lower"]
        challenger_metrics["roc_auc_gain_upper"] = bounds["upper"]

    for key, value in challenger_metrics.items():
        metrics.log_metric(f"challenger_{key}", value)
    for key, value in champion_metrics.items():
        metrics.log_metric(f"champion_{key}", value)
    print(
        f"on {len(frame)} gate rows: challenger {challenger_metrics}; "
        f"champion v{champion_version or '-'} {champion_metrics}"
    )
    outputs = collections.namedtuple(
        "EvaluateOutputs", ["challenger_metrics", "champion_metrics", "champion_version"]
    )
    return outputs(challenger_metrics, champion_metrics, str(champion_version))


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
    gate_source: str,
    pipeline_run: str,
) -> NamedTuple("RegisterOutputs", [("version", str), ("run_id", str)]):
    """Log the challenger with what the platform needs (``log_model_for_platform``); register it."""
    import collections

    import mlflow
    import pandas as pd
    import skops.io
    import threadpoolctl

    from examples.credit_default.data import CATEGORICAL_FEATURES, LABEL, NUMERIC_FEATURES
    from platform_components.pipelines import log_model_for_platform

    threadpoolctl.threadpool_limits(limits=1)  # see train_model
    untrusted = skops.io.get_untrusted_types(file=challenger.path)
    unexpected = [name for name in untrusted if not name.startswith(("sklearn.", "numpy.", "scipy."))]
    if unexpected:
        raise ValueError(f"model artifact {challenger.path} holds unexpected types {unexpected}")
    model = skops.io.load(challenger.path, trusted=untrusted)

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(model_name)
    with mlflow.start_run(run_name=f"{model_name}-train") as run:
        mlflow.log_params(
            {**training_params, "data_source": data_source[:500], "gate_source": gate_source[:500]}
        )
        # The gate's view (the rows the promotion compares on); holdout_* come from the helper.
        mlflow.log_metrics({f"gate_challenger_{key}": value for key, value in challenger_metrics.items()})
        mlflow.log_metrics({f"gate_champion_{key}": value for key, value in champion_metrics.items()})
        version = log_model_for_platform(
            model,
            model_name=model_name,
            train=pd.read_parquet(train.path),
            holdout=pd.read_parquet(holdout.path),
            label=LABEL,
            numeric_features=list(NUMERIC_FEATURES),
            categorical_features=list(CATEGORICAL_FEATURES),
            tags={
                "pipeline": "credit-default-training",
                "pipeline_run": pipeline_run,
                "data_source": data_source[:500],
                "champion_version_at_training": champion_version or "none",
            },
            metadata={"data_source": data_source},
        )
        run_id = run.info.run_id
    print(f"registered {model_name} version {version} from run {run_id} as @challenger")
    outputs = collections.namedtuple("RegisterOutputs", ["version", "run_id"])
    return outputs(version, run_id)


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
    gate_source: str = "holdout",
) -> dict:
    """Move ``champion`` to the challenger only if its gate ROC AUC beats the champion's by the margin."""
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
        meets_margin = improvement >= promotion_margin - 1e-9
        # The band's lower end (paired bootstrap on the gate rows): above zero, the gain is not chance.
        lower = challenger_metrics.get("roc_auc_gain_lower")
        beyond_chance = lower is None or float(lower) > 0.0
        promoted = meets_margin and beyond_chance
        verdict = "meets" if meets_margin else "is below"
        reason = (
            f"ROC AUC on the gate rows ({gate_source}) {challenger_auc:.4f} vs champion v{champion_version} "
            f"{champion_auc:.4f}: improvement {improvement:+.4f} {verdict} the margin {promotion_margin:.4f}"
        )
        if lower is not None:
            reason += f"; its 90% band starts at {float(lower):+.4f}, " + (
                "above zero" if beyond_chance else "not above zero: within chance on these rows"
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
        "gate_source": gate_source,
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
