"""The loop's round against a real MLflow (SQLite store) and a real monitor store, in event time.

The retrainer here is absent (decisions only) or a real ``LocalRetrainer`` on the second project's pipeline
(tests/loop/other_project); the deployer is absent (serving is the local platform's: tests/e2e).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from registered_model import features, register_version

from platform_components.loop.models import local_model
from platform_components.loop.round import Loop
from platform_components.monitoring.store import MonitorStore
from platform_components.monitoring.tracking import MONITORING_RUN_TAG
from platform_components.serving.predlog import PredictionLog, PredictionRecord
from platform_components.settings import PolicySettings

MODEL = "credit-default"
DAY = 86400.0
ORIGIN = 20_000 * DAY  # a whole UTC day in 2024: windows are aligned to it
pytestmark = pytest.mark.slow  # a real MLflow store: its schema migration alone takes ~10 s


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory):
    """A tracking store with version 1 of the model, its reference profile and holdout metric."""
    return register_version(tmp_path_factory.mktemp("mlflow"), MODEL)


def write_days(state_dir: Path, days: range, *, shift_from: int, rows: int = 400) -> None:
    """``rows`` predictions a day into the model's prediction log; incomes drift from day ``shift_from``."""
    rng = np.random.default_rng(1)
    with PredictionLog(state_dir / "predictions" / MODEL) as log:
        for day in days:
            for index in range(rows):
                frame = features(1, rng, income_shift=15.0 if day >= shift_from else 0.0)
                score = float(rng.beta(2, 5))
                log.append(
                    PredictionRecord(
                        f"d{day}-{index}",
                        MODEL,
                        "1",
                        ORIGIN + day * DAY + index * (DAY / rows),
                        frame.to_dict(orient="list"),
                        {"predict_proba": [[1 - score, score]]},
                    )
                )


def test_a_round_checks_the_window_at_the_event_clock_and_logs_it_with_a_report(
    registered, tmp_path: Path
) -> None:
    tracking_uri, client = registered
    write_days(tmp_path, range(0, 2), shift_from=1)
    entry = local_model(MODEL, PolicySettings())
    with MonitorStore.for_state_dir(tmp_path) as store:
        outcome = Loop(store, tracking_uri, state_dir=tmp_path).run_round(entry)
    result = outcome.result
    # The event clock is the last prediction of day 1: the window is day 1, whatever the wall clock says.
    assert (result.window_start, result.window_end) == (ORIGIN + DAY, ORIGIN + 2 * DAY)
    assert (outcome.version, result.rows) == ("1", 400)
    assert result.drifted_features == ["income"]
    assert outcome.decision.action.value == "none"  # one drifted window of the two the default requires
    run = client.get_run(outcome.monitoring_run_id)
    assert run.data.tags["mlops.model"] == MODEL and run.data.tags["mlops.model_version"] == "1"
    assert run.data.metrics["monitor_drift_share"] == pytest.approx(1 / 3)
    reports = client.list_artifacts(outcome.monitoring_run_id, "drift_reports")
    assert len(reports) == 1  # a drifted window gets its HTML report
    assert client.get_model_version(MODEL, "1").tags[MONITORING_RUN_TAG] == outcome.monitoring_run_id


def test_two_drifted_windows_decide_a_retrain_once_per_window_with_the_rows_since_the_change(
    registered, tmp_path: Path
) -> None:
    tracking_uri, _ = registered
    write_days(tmp_path, range(0, 5), shift_from=2, rows=300)
    # The labels are random against the scores: the realised ROC AUC is ~0.5, so this test turns the
    # performance trigger off to watch drift alone.
    policy = PolicySettings.model_validate(
        {"defaults": {"min_training_rows": 100, "gate_rows": 50, "max_performance_drop": 1.0}}
    )
    entry = local_model(MODEL, policy)
    with MonitorStore.for_state_dir(tmp_path) as store:
        for index in range(300 * 5):  # every row labelled at once
            day, row = divmod(index, 300)
            store.ingest_state_dir(tmp_path)
            store.add_labels(f"d{day}-{row}", [row % 3 == 0], received_at=ORIGIN + 5 * DAY)
        loop = Loop(store, tracking_uri, state_dir=tmp_path, log_to_mlflow=False)
        outcomes = [loop.run_round(entry, now=ORIGIN + day * DAY - 1) for day in (1, 2, 3, 4, 4, 4)]
        decisions = store.decisions(MODEL)
    assert [o.decision.action.value for o in outcomes[:2]] == ["none", "none"]
    assert outcomes[3].decision.reasons[:1] == ["drift"]  # windows 2 and 3 drifted
    # Without a runner the decision is recorded with its evidence, once for the window however often the
    # round repeats.
    retrains = [row for row in decisions if row.action == "retrain"]
    assert len(retrains) == 1 and retrains[0].outcome == "no pipeline runner configured"
    selection = retrains[0].evidence["selection"]
    assert selection["change_at"] == ORIGIN + 2 * DAY  # the first drifted window
    assert selection["train_span"][0] >= ORIGIN + 2 * DAY  # nothing from before the change
    assert selection["gate_rows"] == 50 and selection["gate_span"][1] < ORIGIN + 4 * DAY
    # `mlops decisions` shows it with its evidence.
    from click.testing import CliRunner

    from platform_components.monitoring.cli import decisions_command

    text = CliRunner().invoke(decisions_command, [MODEL, "--state-dir", str(tmp_path)]).output
    assert "retrain (drift) -> no pipeline runner configured; drift windows 2/2" in text, text
    assert "gated on 50" in text


def test_a_broken_feature_is_an_incident_and_starts_no_retrain(registered, tmp_path: Path) -> None:
    tracking_uri, _ = registered
    rng = np.random.default_rng(3)
    with PredictionLog(tmp_path / "predictions" / MODEL) as log:
        for day in range(3):
            for index in range(300):
                frame = features(1, rng)
                if day >= 1:
                    frame["income"] = np.nan  # an upstream system stopped sending it
                log.append(
                    PredictionRecord(
                        f"d{day}-{index}",
                        MODEL,
                        "1",
                        ORIGIN + day * DAY + index * 200.0,
                        frame.to_dict(orient="list"),
                        {"predict_proba": [[0.7, 0.3]]},
                    )
                )
    entry = local_model(MODEL, PolicySettings())
    with MonitorStore.for_state_dir(tmp_path) as store:
        loop = Loop(store, tracking_uri, state_dir=tmp_path, log_to_mlflow=False)
        outcomes = [loop.run_round(entry, now=ORIGIN + day * DAY - 1) for day in (1, 2, 3, 3)]
        decisions = store.decisions(MODEL)
    assert outcomes[1].decision.action.value == "incident"
    assert "income" in outcomes[1].decision.evidence["quality"]["broken_features"]
    assert all(row.action != "retrain" for row in decisions)
    assert [row.action for row in decisions] == ["incident", "incident"]  # once per window
