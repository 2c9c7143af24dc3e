"""How a project's model enters the loop: one call logs everything the platform reads about it.

``log_model_for_platform`` runs inside the project's MLflow run (its register step) and writes, for any
project's scikit-learn-compatible model:

- the model, scikit-learn flavour, serialised with skops (no pickle), with its signature, an input example
  and pinned ``pip_requirements``; for a classifier the pyfunc's prediction is ``predict_proba``, whose
  positive-class column the monitor scores (``monitoring.store.score_of``);
- the reference profile (``monitoring.profile.build_reference_profile``) of the training rows, with the
  model's scores on the holdout as the prediction reference, as the run artifact
  ``monitoring/reference_profile.json`` (``monitoring.tracking.PROFILE_ARTIFACT``). Its metadata names the
  ``label``, the ``task`` and, for a classifier, the ``PerformanceEstimator`` fitted on the holdout's
  scores and labels under ``estimate.METADATA_KEY``: the monitor estimates performance before labels
  arrive from it;
- ``holdout_<metric>`` metrics computed here on the holdout (one definition for every project, the
  baseline the monitor compares realised performance with), ``train_rows`` / ``holdout_rows`` params, the
  ``mlops.task`` tag and the caller's tags; the same metrics as ``mlops.holdout.<metric>`` tags of the
  registered version (what ``mlops fleet`` reads, in one registry search for the whole fleet);
- a registered version, alias ``challenger``, and the ``model-settings.json`` Seldon Core 2 needs beside
  the model (see ``_seldon_model_settings``).

``load_labelled_rows`` reads what the platform's retrainers hand a pipeline (``training_data_path``,
``gate_data_path``: a CSV or Parquet file, local or an MLflow artifact URI), and ``model_metrics`` is the
metric set the promotion gate compares, so challenger, champion and baseline are scored alike.

numpy, pandas, scikit-learn and MLflow are imported inside the functions so importing
``platform_components.pipelines`` stays cheap.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from platform_components.errors import PlatformError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

logger = logging.getLogger(__name__)

TASKS: tuple[str, ...] = ("classification", "regression")
CHALLENGER_ALIAS = "challenger"
MODEL_ARTIFACT_NAME = "model"
SELDON_MODEL_SETTINGS_FILE = "model-settings.json"
# The label column's name in rows the platform exports from production (features joined with feedback).
PLATFORM_LABEL_COLUMN = "label"
TASK_TAG = "mlops.task"
# Each holdout metric is also a tag of the registered version (``mlops.holdout.roc_auc``): the fleet view
# reads every served version's baseline in one registry search instead of one run lookup per model.
HOLDOUT_TAG_PREFIX = "mlops.holdout."
# skops refuses to load any type outside its default allow-list unless told; types from the libraries a
# scikit-learn model is built from are trusted here, anything else must be named by the caller.
TRUSTED_TYPE_PREFIXES: tuple[str, ...] = ("sklearn.", "numpy.", "scipy.")
# The packages the serving image and the pipeline image pin; their installed versions go into the model.
BASE_REQUIREMENTS: tuple[str, ...] = ("mlflow", "scikit-learn", "skops", "numpy", "pandas", "scipy")
_INPUT_EXAMPLE_ROWS = 5
_MLFLOW_URI_PREFIXES = ("runs:/", "mlflow-artifacts:", "models:/")


class PlatformModelError(PlatformError, ValueError):
    """A model, its data or its rows cannot enter the loop; the message names the field and the fix.

    A ``ValueError`` too, so a pipeline step that raises it fails like any bad argument.
    """


def model_metrics(task: str, labels: Any, predictions: Any) -> dict[str, float]:
    """The metrics the platform records and gates on, with scikit-learn's definitions.

    Args:
        task: ``classification`` (binary; ``predictions`` are positive-class probabilities) or
            ``regression``.
        labels: true values, one per row.
        predictions: the model's score (classification) or value (regression) per row.

    Returns:
        Classification: ``roc_auc``, ``accuracy`` (score >= 0.5), ``log_loss``, ``brier``, ``ece`` (the
        monitor's expected calibration error).
        Regression: ``rmse``, ``mae``, ``r2``.

    Raises:
        PlatformModelError: unknown task, lengths that differ, or a classification with one class only.
    """
    import numpy as np
    from sklearn.metrics import (
        accuracy_score,
        brier_score_loss,
        log_loss,
        mean_absolute_error,
        mean_squared_error,
        r2_score,
        roc_auc_score,
    )

    _check_task(task)
    truth = np.asarray(labels, dtype=np.float64)
    scores = np.asarray(predictions, dtype=np.float64)
    if truth.shape != scores.shape or truth.ndim != 1:
        raise PlatformModelError(
            f"labels {truth.shape} and predictions {scores.shape} must be one value per row, the same length"
        )
    if task == "regression":
        return {
            "rmse": float(math.sqrt(mean_squared_error(truth, scores))),
            "mae": float(mean_absolute_error(truth, scores)),
            "r2": float(r2_score(truth, scores)),
        }
    if len(np.unique(truth)) < 2:
        raise PlatformModelError(
            f"labels hold one class only ({np.unique(truth).tolist()}); ROC AUC needs both 0 and 1 rows"
        )
    from platform_components.monitoring.performance import expected_calibration_error

    return {
        "roc_auc": float(roc_auc_score(truth, scores)),
        "accuracy": float(accuracy_score(truth, scores >= 0.5)),
        "log_loss": float(log_loss(truth, scores, labels=[0, 1])),
        "brier": float(brier_score_loss(truth, scores)),
        # The monitor's own binning, so the loop's calibration flag compares like with like.
        "ece": float(expected_calibration_error(truth, scores)),
    }


def gain_bounds(
    labels: Any,
    challenger_scores: Any,
    champion_scores: Any,
    *,
    draws: int = 400,
    level: float = 0.90,
    seed: int = 0,
) -> dict[str, float]:
    """How much better the challenger ranks than the champion on the same rows: ROC AUC gain with a band.

    A paired bootstrap over the rows (both models scored on each resample), so the band is the gate's own
    sampling error at its size: on 300 gate rows two equal models differ by 0.02-0.03 in ROC AUC by chance,
    more than a typical promotion margin. The gate promotes only when ``lower`` is above zero (the gain is
    more than chance at ``level``, one-sided ``(1 + level) / 2``) and ``gain`` meets the margin.

    Returns:
        ``gain`` (on all rows), ``lower`` and ``upper`` (the band's ends).

    Raises:
        PlatformModelError: lengths differ, or one class only.
    """
    import numpy as np
    from sklearn.metrics import roc_auc_score

    truth = np.asarray(labels, dtype=np.float64)
    new = np.asarray(challenger_scores, dtype=np.float64)
    old = np.asarray(champion_scores, dtype=np.float64)
    if not (truth.shape == new.shape == old.shape) or truth.ndim != 1:
        raise PlatformModelError(
            f"labels {truth.shape}, challenger {new.shape} and champion {old.shape} scores must be one value "
            "per row, the same rows"
        )
    if len(np.unique(truth)) < 2:
        raise PlatformModelError("the gate rows hold one class only; ROC AUC needs both 0 and 1 rows")
    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(draws):
        rows = rng.integers(0, len(truth), len(truth))
        if truth[rows].min() == truth[rows].max():
            continue
        gains.append(roc_auc_score(truth[rows], new[rows]) - roc_auc_score(truth[rows], old[rows]))
    tail = (1.0 - level) / 2.0
    lower, upper = np.quantile(np.asarray(gains), [tail, 1.0 - tail])
    return {
        "gain": float(roc_auc_score(truth, new) - roc_auc_score(truth, old)),
        "lower": float(lower),
        "upper": float(upper),
    }


def load_labelled_rows(
    path: str,
    *,
    label: str,
    features: Sequence[str],
    field: str = "training_data_path",
    tracking_uri: str = "",
) -> pd.DataFrame:
    """Read labelled rows a retrainer handed the pipeline: the features and ``label``, labelled rows only.

    Args:
        path: a local ``.csv`` or ``.parquet`` file, or an MLflow artifact URI (``runs:/<run_id>/<path>``,
            ``mlflow-artifacts:/...``) of one such file (or of a folder holding exactly one), downloaded from
            ``tracking_uri``: a pod cannot read the monitor's disk, so the rows travel through MLflow.
        label: the project's label column. Rows the platform exports call it ``label``; it is renamed.
        features: the feature columns the model takes; other columns (request id, event time) are dropped.
        field: the pipeline input ``path`` came from, for error messages.
        tracking_uri: MLflow tracking URI for artifact URIs (empty: ``MLFLOW_TRACKING_URI``).

    Returns:
        The columns ``[*features, label]`` in that order, rows whose label is missing dropped, index reset.

    Raises:
        PlatformModelError: naming ``field`` and the value: not a file, not downloadable, an unknown
            suffix, missing columns, or no labelled row.
    """
    import pandas as pd

    if not path:
        raise PlatformModelError(f"{field} is empty; pass a CSV or Parquet file of labelled rows")
    local = _local_file(path, field, tracking_uri)
    if local.suffix.lower() == ".parquet":
        frame = pd.read_parquet(local)
    elif local.suffix.lower() == ".csv":
        frame = pd.read_csv(local)
    else:
        raise PlatformModelError(f"{field}={path!r} has suffix {local.suffix!r}; use .csv or .parquet")
    if label not in frame.columns and PLATFORM_LABEL_COLUMN in frame.columns:
        frame = frame.rename(columns={PLATFORM_LABEL_COLUMN: label})
    missing = [column for column in (*features, label) if column not in frame.columns]
    if missing:
        raise PlatformModelError(
            f"{field}={path!r} lacks columns {missing}; it needs {[*features, label]} "
            "(extra columns are ignored)"
        )
    frame = frame.dropna(subset=[label])
    if frame.empty:
        raise PlatformModelError(f"{field}={path!r} has no row with a {label!r} value; pass labelled rows")
    return frame[[*features, label]].reset_index(drop=True)


def _local_file(path: str, field: str, tracking_uri: str) -> Path:
    if not path.startswith(_MLFLOW_URI_PREFIXES):
        local = Path(path)
        if not local.is_file():
            raise PlatformModelError(
                f"{field}={path!r} is not a file; pass a CSV or Parquet file of labelled rows"
            )
        return local
    import mlflow

    download_dir = tempfile.mkdtemp(prefix="labelled-rows-")
    try:
        downloaded = mlflow.artifacts.download_artifacts(
            artifact_uri=path, dst_path=download_dir, tracking_uri=tracking_uri or None
        )
    except Exception as error:
        raise PlatformModelError(
            f"{field}={path!r} could not be downloaded from MLflow at "
            f"{tracking_uri or 'MLFLOW_TRACKING_URI'} ({type(error).__name__}: {error}); pass an existing "
            "artifact URI such as runs:/<run_id>/retrain_data/train.csv"
        ) from error
    local = Path(downloaded)
    if local.is_dir():
        files = sorted(item for item in local.rglob("*") if item.suffix.lower() in (".csv", ".parquet"))
        if len(files) != 1:
            raise PlatformModelError(
                f"{field}={path!r} is a folder with {len(files)} CSV/Parquet files; point it at one file"
            )
        local = files[0]
    return local


def log_model_for_platform(
    model: Any,
    *,
    model_name: str,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    label: str,
    numeric_features: Sequence[str],
    categorical_features: Sequence[str] = (),
    task: str = "classification",
    tags: Mapping[str, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    skops_trusted_types: Sequence[str] = (),
    extra_requirements: Sequence[str] = (),
    estimator_seed: int = 0,
) -> str:
    """Log a trained model with what the loop needs, register it and point ``challenger`` at it.

    Call it inside the active MLflow run of the project's training step (the run's experiment is the
    caller's choice); see the module docstring for what is written where.

    Args:
        model: a fitted scikit-learn-compatible model: ``predict_proba`` (two columns) for classification,
            ``predict`` for regression; it takes a frame of ``[*numeric_features, *categorical_features]``.
        model_name: the registered model name.
        train: the rows the model was trained on (features; other columns are ignored): the drift
            reference.
        holdout: rows held out from training, with ``label``: the holdout metrics, the prediction
            reference and, for a classifier, the performance estimator's calibration.
        label: the label column of ``holdout``.
        numeric_features: numeric input columns, in the model's order.
        categorical_features: categorical input columns, after the numeric ones.
        task: ``classification`` (binary, labels 0/1) or ``regression``.
        tags: set on the run and on the registered version (e.g. ``data_source``, ``pipeline_run``).
        metadata: JSON-able facts kept in the reference profile's metadata (the platform's own keys win).
        skops_trusted_types: types outside scikit-learn, numpy and scipy the model's skops file may hold
            (e.g. a project's own transformer); each must be named here, after review.
        extra_requirements: pip requirements beyond the platform's pinned base (``BASE_REQUIREMENTS``).
        estimator_seed: seed of the performance estimator's bootstrap (the same inputs give the same
            estimator).

    Returns:
        The registered version, e.g. ``"3"``.

    Raises:
        PlatformModelError: no active MLflow run, an unknown task, features missing from the frames, a
            holdout without the label (or with one class, or labels other than 0/1 for a classifier), a
            classifier without ``predict_proba``, or types skops would have to trust blindly; the message
            names the argument, the value and the fix.
    """
    import mlflow
    from mlflow.models import infer_signature

    from platform_components.monitoring import estimate
    from platform_components.monitoring.errors import InvalidInput
    from platform_components.monitoring.profile import build_reference_profile
    from platform_components.monitoring.tracking import PROFILE_ARTIFACT

    if not model_name or not model_name.strip():
        raise PlatformModelError(f"model_name={model_name!r} is empty; pass the registered model name")
    _check_task(task)
    features = _features(numeric_features, categorical_features)
    _check_frame("train", train, features)
    _check_frame("holdout", holdout, features)
    if label in features:
        raise PlatformModelError(f"label={label!r} is also listed as a feature; the label is not an input")
    if label not in holdout.columns:
        raise PlatformModelError(
            f"holdout lacks the label column label={label!r} (columns: {list(holdout.columns)}); pass the "
            "held-out rows with their labels"
        )
    truth = _holdout_labels(holdout[label], label, task)
    predict = _prediction_function(model, task)

    holdout_predictions = _predictions(model, predict, holdout[features], task, "holdout")
    metrics = model_metrics(task, truth, holdout_predictions)
    profile_metadata: dict[str, Any] = {
        **dict(metadata or {}),
        "label": label,
        "task": task,
        "model_name": model_name,
    }
    if task == "classification":
        try:
            estimator = estimate.fit_estimator(truth, holdout_predictions, seed=estimator_seed)
        except InvalidInput as error:
            raise PlatformModelError(
                f"holdout: the performance estimator cannot be calibrated on it ({error})"
            ) from None
        profile_metadata[estimate.METADATA_KEY] = estimator.to_dict()
    try:
        profile = build_reference_profile(
            train[features],
            numeric=list(numeric_features),
            categorical=list(categorical_features),
            prediction_scores=holdout_predictions,
            metadata=profile_metadata,
        )
        profile_json = profile.to_json()
    except InvalidInput as error:
        raise PlatformModelError(f"train: no reference profile can be built from it ({error})") from None
    except ValueError as error:  # json.dumps(allow_nan=False) on a metadata value
        raise PlatformModelError(f"metadata: not JSON without NaN/infinity ({error})") from None

    trusted_types = _skops_trusted_types(model, skops_trusted_types)
    # Every check above runs before anything is written: a refused model leaves no half-logged run.
    run = mlflow.active_run()
    if run is None:
        raise PlatformModelError(
            "log_model_for_platform needs an active MLflow run: call it inside "
            "`with mlflow.start_run():` in the training step"
        )
    input_example = train[features].head(_INPUT_EXAMPLE_ROWS)
    signature = infer_signature(input_example, predict(input_example))
    requirements = [
        *(f"{package}=={importlib.metadata.version(package)}" for package in BASE_REQUIREMENTS),
        *extra_requirements,
    ]
    all_tags = {TASK_TAG: task, **{key: str(value) for key, value in (tags or {}).items()}}

    mlflow.log_params({"train_rows": len(train), "holdout_rows": len(holdout)})
    mlflow.log_metrics({f"holdout_{name}": value for name, value in metrics.items()})
    mlflow.set_tags(all_tags)
    info = mlflow.sklearn.log_model(
        model,
        name=MODEL_ARTIFACT_NAME,
        signature=signature,
        input_example=input_example,
        pyfunc_predict_fn="predict_proba" if task == "classification" else "predict",
        serialization_format="skops",
        skops_trusted_types=trusted_types,
        pip_requirements=requirements,
    )
    mlflow.log_text(profile_json, PROFILE_ARTIFACT)
    holdout_tags = {f"{HOLDOUT_TAG_PREFIX}{name}": repr(float(value)) for name, value in metrics.items()}
    version = mlflow.register_model(info.model_uri, model_name, tags={**all_tags, **holdout_tags})
    client = mlflow.MlflowClient()
    with tempfile.TemporaryDirectory() as folder:
        settings_path = os.path.join(folder, SELDON_MODEL_SETTINGS_FILE)
        with open(settings_path, "w") as handle:
            json.dump(_seldon_model_settings(str(version.version)), handle)
        client.log_model_artifact(info.model_id, settings_path)
    client.set_registered_model_alias(model_name, CHALLENGER_ALIAS, version.version)
    logger.info(
        "registered %s version %s from run %s as @%s (%s)",
        model_name,
        version.version,
        run.info.run_id,
        CHALLENGER_ALIAS,
        ", ".join(f"holdout_{name}={value:.4f}" for name, value in metrics.items()),
    )
    return str(version.version)


def _seldon_model_settings(version: str) -> dict[str, Any]:
    """The ``model-settings.json`` logged beside the model for Seldon Core 2.

    Without one, Seldon's agent writes its own from the Model's ``requirements`` and, for ``mlflow``, names
    ``implementation: mlserver_mlflow.MLflowRuntime`` (SeldonIO/seldon-core
    scheduler/pkg/agent/repository/mlserver/settings.go@v2.10.2 ``createMLFlowModelSettings``), which
    would bypass the platform's monitored runtime. This file names no ``implementation``, so MLServer
    takes it from ``MLSERVER_MODEL_IMPLEMENTATION`` on the Server (``kubernetes.seldon.serving_env``), and
    it carries the registry version the runtime labels predictions with (Seldon renames models and counts
    its own versions: the agent overwrites ``name`` and ``parameters.version``, same repository
    scheduler/pkg/agent/repository/mlserver/mlserver.go@v2.10.2 ``updateNameAndVersion``).
    """
    return {"parameters": {"extra": {"init_parameters": {"registered_version": version}}}}


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise PlatformModelError(f"task={task!r} is not known; use one of {', '.join(TASKS)}")


def _features(numeric: Sequence[str], categorical: Sequence[str]) -> list[str]:
    for name, value in (("numeric_features", numeric), ("categorical_features", categorical)):
        if isinstance(value, str):
            raise PlatformModelError(f"{name}={value!r} is a string; pass a list of column names")
    features = [*numeric, *categorical]
    if not features:
        raise PlatformModelError("numeric_features and categorical_features are both empty; list the inputs")
    duplicates = sorted({name for name in features if features.count(name) > 1})
    if duplicates:
        raise PlatformModelError(
            f"features {duplicates} are listed more than once; list each as numeric or categorical"
        )
    return features


def _check_frame(field: str, frame: Any, features: Sequence[str]) -> None:
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise PlatformModelError(f"{field} is a {type(frame).__name__}; pass a pandas DataFrame")
    if frame.empty:
        raise PlatformModelError(f"{field} has no rows; pass the {field} rows the model was built with")
    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise PlatformModelError(
            f"{field} lacks feature columns {missing} (columns: {list(frame.columns)}); pass frames with "
            "every listed feature"
        )


def _holdout_labels(values: pd.Series, label: str, task: str) -> np.ndarray:
    import numpy as np

    if values.isna().any():
        raise PlatformModelError(
            f"holdout: {int(values.isna().sum())} rows have no {label!r}; hold out labelled rows only"
        )
    try:
        truth = values.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        examples = sorted({repr(value) for value in values})[:5]
        raise PlatformModelError(
            f"holdout: column {label!r} is not numeric (e.g. {', '.join(examples)}); encode the label as "
            "0/1 (classification) or a number (regression)"
        ) from None
    if task == "classification":
        invalid = ~np.isin(truth, (0.0, 1.0))
        if invalid.any():
            examples = sorted({repr(value) for value in values[invalid]})[:5]
            raise PlatformModelError(
                f"holdout: column {label!r} must hold 0 or 1 for task='classification'; found "
                f"{', '.join(examples)} (the platform monitors binary classifiers: encode the positive "
                "class as 1)"
            )
        if len(np.unique(truth)) < 2:
            raise PlatformModelError(
                f"holdout: column {label!r} holds only {int(truth[0])}; hold out rows of both classes "
                "(a stratified split)"
            )
    elif not np.isfinite(truth).all():
        raise PlatformModelError(f"holdout: column {label!r} holds infinite values; pass finite labels")
    return truth


def _prediction_function(model: Any, task: str) -> Any:
    if task == "classification":
        predict = getattr(model, "predict_proba", None)
        if not callable(predict):
            raise PlatformModelError(
                f"model: a {type(model).__name__} has no predict_proba, which task='classification' needs "
                "(the monitor scores the positive-class probability); use a probabilistic classifier, "
                "e.g. wrap it in sklearn.calibration.CalibratedClassifierCV, or pass task='regression'"
            )
        return predict
    predict = getattr(model, "predict", None)
    if not callable(predict):
        raise PlatformModelError(f"model: a {type(model).__name__} has no predict; pass a fitted model")
    return predict


def _predictions(model: Any, predict: Any, frame: pd.DataFrame, task: str, field: str) -> np.ndarray:
    import numpy as np

    try:
        output = np.asarray(predict(frame), dtype=np.float64)
    except Exception as error:
        raise PlatformModelError(
            f"model: a {type(model).__name__} failed to predict the {field} rows "
            f"({type(error).__name__}: {error}); is it fitted on these feature columns?"
        ) from error
    if task == "classification":
        if output.ndim != 2 or output.shape[1] != 2:
            raise PlatformModelError(
                f"model: predict_proba returned shape {output.shape}; the platform monitors binary "
                "classifiers (two columns: P(0), P(1)); encode the label as 0/1"
            )
        output = output[:, 1]
    else:
        output = output.reshape(len(frame), -1)
        if output.shape[1] != 1:
            raise PlatformModelError(
                f"model: predict returned {output.shape[1]} values per row; the platform monitors one"
            )
        output = output[:, 0]
    if not np.isfinite(output).all():
        raise PlatformModelError(f"model: predictions on the {field} rows hold NaN or infinite values")
    return output


def _skops_trusted_types(model: Any, allowed: Sequence[str]) -> list[str]:
    import skops.io

    if isinstance(allowed, str):
        raise PlatformModelError(f"skops_trusted_types={allowed!r} is a string; pass a list of type names")
    try:
        untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    except Exception as error:
        raise PlatformModelError(
            f"model: a {type(model).__name__} cannot be serialised with skops ({type(error).__name__}: "
            f"{error}); define custom classes at module level of an importable package"
        ) from error
    unexpected = [
        name for name in untrusted if not name.startswith(TRUSTED_TYPE_PREFIXES) and name not in allowed
    ]
    if unexpected:
        raise PlatformModelError(
            f"model: its skops file holds types outside scikit-learn, numpy and scipy: {unexpected}; review "
            "them and pass skops_trusted_types=[...] naming each, or build the model from library types"
        )
    return list(untrusted)
