"""``log_model_for_platform`` writes what the loop reads, through MLflow's own readers, and refuses bad input.

One SQLite tracking store for the module (its schema migration takes a few seconds); the models are
small logistic and linear regressions fitted in the test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import mean_squared_error, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.svm import LinearSVC
from upstream_facts import fact

from platform_components.kubernetes.seldon import serving_env
from platform_components.monitoring.estimate import METADATA_KEY, PerformanceEstimator
from platform_components.monitoring.tracking import baseline_metric, load_reference_profile
from platform_components.pipelines import (
    PlatformModelError,
    load_labelled_rows,
    log_model_for_platform,
    model_metrics,
)

NUMERIC = ["tenure", "charges"]
CATEGORICAL = ["plan"]
FEATURES = [*NUMERIC, *CATEGORICAL]
LABEL = "churned"


def rows(count: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure": rng.uniform(0, 60, count),
            "charges": rng.normal(70, 20, count),
            "plan": rng.choice(["monthly", "yearly"], count),
        }
    )
    logit = -0.05 * frame["tenure"] + 0.03 * (frame["charges"] - 70) + (frame["plan"] == "monthly") * 1.2
    frame[LABEL] = (rng.random(count) < 1 / (1 + np.exp(-logit))).astype("int64")
    return frame


def classifier(train: pd.DataFrame) -> Pipeline:
    preprocess = ColumnTransformer(
        [("numeric", "passthrough", NUMERIC), ("categorical", OneHotEncoder(), CATEGORICAL)]
    )
    return Pipeline([("preprocess", preprocess), ("model", LogisticRegression())]).fit(
        train[FEATURES], train[LABEL]
    )


class Doubler(BaseEstimator, TransformerMixin):
    """A project's own transformer: a type skops does not trust by default."""

    def fit(self, frame, labels=None):
        return self

    def transform(self, frame):
        return np.asarray(frame, dtype=np.float64) * 2


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_name="platform-model")
    yield uri
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    return rows(800, seed=0), rows(400, seed=1)


@pytest.fixture(scope="module")
def logged(tracking: str, data) -> tuple[str, str, Pipeline]:
    train, holdout = data
    model = classifier(train)
    with mlflow.start_run() as run:
        version = log_model_for_platform(
            model,
            model_name="churn",
            train=train,
            holdout=holdout,
            label=LABEL,
            numeric_features=NUMERIC,
            categorical_features=CATEGORICAL,
            tags={"pipeline_run": "churn-training-abc"},
            metadata={"data_source": "generated"},
        )
    return version, run.info.run_id, model


def test_a_classifier_is_registered_as_challenger_with_its_signature_and_example(
    logged, tracking: str
) -> None:
    version, run_id, _ = logged
    client = mlflow.MlflowClient()
    assert version == "1"
    assert str(client.get_model_version_by_alias("churn", "challenger").version) == "1"
    registered = client.get_model_version("churn", "1")
    assert registered.run_id == run_id
    assert registered.tags["pipeline_run"] == "churn-training-abc"
    assert registered.tags["mlops.task"] == "classification"
    info = mlflow.models.get_model_info("models:/churn/1")
    assert info.signature.inputs.input_names() == FEATURES
    assert info.saved_input_example_info is not None
    assert info.flavors["sklearn"]["serialization_format"] == "skops"
    assert "skops" in fact("mlflow.sklearn.serialization_formats")
    # The monitor scores the positive-class column of what the served model returns.
    assert info.flavors["python_function"]["predict_fn"] == "predict_proba"
    assert "predict_proba" in fact("mlflow.sklearn.pyfunc_predict_fns")
    requirements = Path(mlflow.artifacts.download_artifacts("models:/churn/1/requirements.txt")).read_text()
    assert "scikit-learn==" in requirements and "skops==" in requirements


def test_the_reference_profile_carries_label_task_and_a_calibrated_estimator(logged, data) -> None:
    version, _, model = logged
    train, holdout = data
    # The monitor's own reader: what it will load for this version.
    profile = load_reference_profile(mlflow.get_tracking_uri(), "churn", version)
    assert profile.features == FEATURES
    assert profile.row_count == len(train)
    assert profile.prediction is not None and profile.prediction.count == len(holdout)
    assert profile.metadata["label"] == LABEL
    assert profile.metadata["task"] == "classification"
    assert profile.metadata["data_source"] == "generated"
    estimator = PerformanceEstimator.from_dict(profile.metadata[METADATA_KEY])
    scores = model.predict_proba(holdout[FEATURES])[:, 1]
    # Fitted on the holdout's scores and labels, not on the training rows.
    assert estimator.reference.rows == len(holdout)
    assert estimator.reference.roc_auc == pytest.approx(roc_auc_score(holdout[LABEL], scores))


def test_holdout_metrics_are_the_baseline_the_monitor_reads(logged, data) -> None:
    version, run_id, model = logged
    _, holdout = data
    scores = model.predict_proba(holdout[FEATURES])[:, 1]
    expected = roc_auc_score(holdout[LABEL], scores)
    assert baseline_metric(mlflow.get_tracking_uri(), "churn", version, "roc_auc") == pytest.approx(expected)
    metrics = mlflow.MlflowClient().get_run(run_id).data.metrics
    assert {"holdout_roc_auc", "holdout_accuracy", "holdout_log_loss", "holdout_brier"} <= set(metrics)


def test_the_version_carries_its_holdout_metrics_as_tags_for_the_fleet_view(logged) -> None:
    from platform_components.fleet.registry import HOLDOUT_TAG_PREFIX
    from platform_components.pipelines.platform_model import HOLDOUT_TAG_PREFIX as WRITTEN_PREFIX

    version, run_id, _ = logged
    metrics = mlflow.MlflowClient().get_run(run_id).data.metrics
    tags = mlflow.MlflowClient().get_model_version("churn", version).tags
    # The fleet reads the baseline from the version's tags (one search), the loop from the run: they agree.
    assert WRITTEN_PREFIX == HOLDOUT_TAG_PREFIX
    for name in ("roc_auc", "accuracy", "brier"):
        assert float(tags[f"{HOLDOUT_TAG_PREFIX}{name}"]) == metrics[f"holdout_{name}"]


def test_the_model_folder_holds_the_model_settings_seldon_loads_without_naming_a_runtime(logged) -> None:
    version, _, _ = logged
    # Without this file Seldon's agent would write one naming the stock MLflow runtime: no prediction log.
    assert (
        fact("seldon.agent.model_settings_default_mlflow")["implementation"]
        == "mlserver_mlflow.MLflowRuntime"
    )
    settings_file = fact("seldon.agent.model_settings_file")
    settings = json.loads(mlflow.artifacts.load_text(f"models:/churn/{version}/{settings_file}"))
    # No implementation: MLServer takes the Server's variable, which names the platform's runtime.
    assert "implementation" not in settings
    assert fact("mlserver.model_settings.implementation_env") in serving_env("http://monitor:8000", 1 << 20)
    # The agent overwrites name and parameters.version; the registry version travels in extra.
    assert fact("seldon.agent.model_settings_overwrites") == ("name", "parameters.version")
    assert settings["parameters"].keys() == {"extra"}
    assert settings["parameters"]["extra"]["init_parameters"]["registered_version"] == version


def test_the_served_model_predicts_probabilities_through_pyfunc(logged, data) -> None:
    version, _, model = logged
    _, holdout = data
    loaded = mlflow.pyfunc.load_model(f"models:/churn/{version}")
    np.testing.assert_allclose(
        np.asarray(loaded.predict(holdout[FEATURES].head(20))),
        model.predict_proba(holdout[FEATURES].head(20)),
    )


def test_a_second_version_moves_challenger(logged, data) -> None:
    train, holdout = data
    with mlflow.start_run():
        version = log_model_for_platform(
            classifier(train.sample(frac=0.5, random_state=3)),
            model_name="churn",
            train=train,
            holdout=holdout,
            label=LABEL,
            numeric_features=NUMERIC,
            categorical_features=CATEGORICAL,
        )
    assert version == "2"
    assert str(mlflow.MlflowClient().get_model_version_by_alias("churn", "challenger").version) == "2"


def test_a_regressor_logs_predict_and_error_metrics_without_an_estimator(tracking: str, data) -> None:
    train, holdout = data
    model = LinearRegression().fit(train[NUMERIC], train["charges"] * 0.5 + train["tenure"])
    target = holdout["charges"] * 0.5 + holdout["tenure"]
    with mlflow.start_run() as run:
        version = log_model_for_platform(
            model,
            model_name="charges",
            train=train,
            holdout=holdout.assign(target=target),
            label="target",
            numeric_features=NUMERIC,
            task="regression",
        )
    info = mlflow.models.get_model_info(f"models:/charges/{version}")
    assert info.flavors["python_function"]["predict_fn"] == "predict"
    profile = load_reference_profile(mlflow.get_tracking_uri(), "charges", version)
    assert profile.metadata["task"] == "regression"
    assert METADATA_KEY not in profile.metadata
    metrics = mlflow.MlflowClient().get_run(run.info.run_id).data.metrics
    rmse = float(np.sqrt(mean_squared_error(target, model.predict(holdout[NUMERIC]))))
    assert metrics["holdout_rmse"] == pytest.approx(rmse)
    assert {"holdout_mae", "holdout_r2"} <= set(metrics)


def test_a_project_type_must_be_named_before_skops_trusts_it(tracking: str, data) -> None:
    train, holdout = data
    model = Pipeline([("double", Doubler()), ("model", LogisticRegression())]).fit(
        train[NUMERIC], train[LABEL]
    )
    arguments = dict(
        model_name="doubled", train=train, holdout=holdout, label=LABEL, numeric_features=NUMERIC
    )
    type_name = f"{Doubler.__module__}.Doubler"
    with mlflow.start_run():
        with pytest.raises(
            PlatformModelError, match=rf"types outside .*\['{type_name}'\].*skops_trusted_types"
        ):
            log_model_for_platform(model, **arguments)
        assert log_model_for_platform(model, skops_trusted_types=[type_name], **arguments) == "1"


def call(model=None, **overrides):
    train, holdout = rows(300, seed=0), rows(200, seed=1)
    arguments = {
        "model_name": "churn",
        "train": train,
        "holdout": holdout,
        "label": LABEL,
        "numeric_features": NUMERIC,
        "categorical_features": CATEGORICAL,
        **overrides,
    }
    return log_model_for_platform(model if model is not None else classifier(train), **arguments)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"task": "ranking"}, r"task='ranking' is not known; use one of classification, regression"),
        ({"model_name": " "}, r"model_name=' ' is empty"),
        ({"numeric_features": "tenure"}, r"numeric_features='tenure' is a string; pass a list"),
        ({"numeric_features": ["tenure", "plan"]}, r"features \['plan'\] are listed more than once"),
        (
            {"train": rows(50, 0).drop(columns=["charges"])},
            r"train lacks feature columns \['charges'\]",
        ),
        (
            {"holdout": rows(200, 1).drop(columns=[LABEL])},
            r"holdout lacks the label column label='churned' .*pass the held-out rows with their labels",
        ),
        ({"label": "tenure"}, r"label='tenure' is also listed as a feature"),
        (
            {"holdout": rows(200, 1).assign(churned=2)},
            r"column 'churned' must hold 0 or 1 for task='classification'; found 2",
        ),
        (
            {"holdout": rows(200, 1).assign(churned=0)},
            r"column 'churned' holds only 0; hold out rows of both classes",
        ),
        (
            {
                "holdout": rows(200, 1)
                .astype({LABEL: "float64"})
                .assign(churned=lambda f: f[LABEL].where(f.index > 0))
            },
            r"holdout: 1 rows have no 'churned'; hold out labelled rows only",
        ),
        (
            {"holdout": rows(12, 1)},
            r"holdout: the performance estimator cannot be calibrated on it .*at least 10 of each class",
        ),
    ],
)
def test_bad_input_names_the_argument_and_the_fix(overrides: dict, message: str) -> None:
    with pytest.raises(PlatformModelError, match=message):
        call(**overrides)


def test_a_classifier_without_predict_proba_is_refused() -> None:
    train = rows(300, seed=0)
    model = LinearSVC().fit(train[NUMERIC], train[LABEL])
    with pytest.raises(
        PlatformModelError, match=r"LinearSVC has no predict_proba, which task='classification'"
    ):
        call(model, categorical_features=[])


def test_nothing_is_logged_without_an_active_run(tracking: str) -> None:
    with pytest.raises(PlatformModelError, match=r"needs an active MLflow run: .*mlflow.start_run"):
        call()


def test_labelled_rows_from_the_platform_have_their_label_renamed_and_extras_dropped(tmp_path: Path) -> None:
    frame = rows(50, seed=4).rename(columns={LABEL: "label"}).astype({"label": "float64"})
    frame.loc[:9, "label"] = np.nan  # labels that have not arrived
    frame.insert(0, "request_id", [f"r{index}" for index in range(len(frame))])
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    loaded = load_labelled_rows(str(path), label=LABEL, features=FEATURES, field="gate_data_path")
    assert list(loaded.columns) == [*FEATURES, LABEL]
    assert len(loaded) == 40


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("rows.json", "{}", r"gate_data_path='.*rows.json' has suffix '.json'; use .csv or .parquet"),
        ("absent.csv", None, r"gate_data_path='.*absent.csv' is not a file"),
        ("rows.csv", "tenure,plan\n1,a\n", r"lacks columns \['charges', 'churned'\]"),
        ("rows.csv", "tenure,charges,plan,churned\n1,2,a,\n", r"has no row with a 'churned' value"),
    ],
)
def test_unreadable_rows_name_the_input(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(PlatformModelError, match=message):
        load_labelled_rows(str(path), label=LABEL, features=FEATURES, field="gate_data_path")


def test_rows_from_an_mlflow_artifact_are_downloaded(tracking: str, tmp_path: Path) -> None:
    frame = rows(30, seed=5)
    with mlflow.start_run() as run:
        mlflow.log_text(frame.to_csv(index=False), "retrain_data/gate.csv")
    loaded = load_labelled_rows(
        f"runs:/{run.info.run_id}/retrain_data/gate.csv",
        label=LABEL,
        features=FEATURES,
        tracking_uri=tracking,
    )
    pd.testing.assert_frame_equal(loaded, frame[[*FEATURES, LABEL]])
    with pytest.raises(PlatformModelError, match=r"training_data_path='runs:/.*' could not be downloaded"):
        load_labelled_rows(f"runs:/{run.info.run_id}/absent.csv", label=LABEL, features=FEATURES)


def test_gate_metrics_match_scikit_learn_and_refuse_one_class() -> None:
    labels = np.array([0, 1, 1, 0, 1])
    scores = np.array([0.2, 0.7, 0.6, 0.4, 0.3])
    metrics = model_metrics("classification", labels, scores)
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert metrics["accuracy"] == pytest.approx(0.8)
    with pytest.raises(PlatformModelError, match=r"one class only"):
        model_metrics("classification", [1, 1], [0.2, 0.4])


def test_the_gain_band_holds_zero_for_equal_models_and_not_for_a_better_one() -> None:
    from platform_components.pipelines import gain_bounds

    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 300)
    # Two models of the same skill (independent errors): on 300 rows they differ by chance only.
    same = gain_bounds(labels, labels + rng.normal(0, 1.2, 300), labels + rng.normal(0, 1.2, 300))
    assert same["lower"] < 0 < same["upper"] and abs(same["gain"]) > 0.005  # a raw gain a margin could pass
    better = gain_bounds(labels, labels + rng.normal(0, 0.6, 300), labels + rng.normal(0, 1.2, 300))
    assert better["lower"] > 0 and better["gain"] > 0.1
    with pytest.raises(PlatformModelError, match="one class only"):
        gain_bounds(np.zeros(10), np.zeros(10), np.zeros(10))


def test_the_metrics_hold_the_monitors_calibration_error_so_the_loop_can_flag_calibration() -> None:
    from platform_components.monitoring.performance import classifier_metrics
    from platform_components.pipelines import model_metrics

    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 400)
    scores = np.clip(labels * 0.6 + rng.normal(0.2, 0.2, 400), 0, 1)
    assert model_metrics("classification", labels, scores)["ece"] == pytest.approx(
        classifier_metrics(labels, scores).ece
    )
