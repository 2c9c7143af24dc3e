"""The loop's decision: a table of cases for the pure ``decide``."""

from __future__ import annotations

import pytest

from platform_components.loop.policy import Action, LastRetrain, LoopState, broken_features, decide
from platform_components.settings import LoopPolicy

DAY = 86400.0
NOW = 100 * DAY
POLICY = LoopPolicy(critical_features=("annual_income",))


def window(
    day: float,
    drift_share: float = 0.0,
    drifted=(),
    roc_auc=None,
    labelled=0,
    status="ok",
    quality=None,
    estimated=None,
    ece=None,
):
    """A stored window of one day ending at ``day + 1`` days (as ``run_check`` stores it)."""
    performance = None
    if roc_auc is not None:
        performance = {"roc_auc": roc_auc, "accuracy": 0.8, "rows": labelled}
        if ece is not None:
            performance["ece"] = ece
    return {
        "window_start": day * DAY,
        "window_end": (day + 1) * DAY,
        "checked_at": (day + 1) * DAY - 1,
        "status": status,
        "drift_share": drift_share,
        "drifted_features": list(drifted),
        "max_psi": 0.0,
        "labelled_rows": labelled,
        "performance": performance,
        "prediction": None,
        "quality": quality or {"features": {}},
        "estimated": estimated,
    }


def broken_income():
    return {
        "features": {
            "annual_income": {
                "rows": 600,
                "missing_rate": 0.0,
                "reference_missing_rate": 0.0,
                "out_of_range_rate": 0.4,
                "unseen_rate": 0.0,
                "column_present": True,
            }
        }
    }


def state(windows=(), **kwargs):
    values = {"model": "m", "version": "3", "now": NOW, "windows": windows, "baseline": {"roc_auc": 0.80}}
    values.update(kwargs)
    values.setdefault("policy", POLICY)
    return LoopState(**values)


CASES = [
    ("quiet", state([window(99)]), Action.NONE, [], None),
    ("one drifted window is not enough", state([window(99, 0.5)]), Action.NONE, [], None),
    ("two drifted windows", state([window(98, 0.5), window(99, 0.3)]), Action.RETRAIN, ["drift"], None),
    (
        "drifted windows before the look-back do not count",
        state([window(90, 0.5), window(91, 0.5), window(99)]),
        Action.NONE,
        [],
        None,
    ),
    (
        "a critical feature alone is a signal",
        state([window(98, 0.1, ["annual_income"]), window(99, 0.1, ["annual_income"])]),
        Action.RETRAIN,
        ["drift"],
        None,
    ),
    (
        "insufficient data is never a signal",
        state([window(98, 0.9, status="insufficient_data"), window(99, 0.9, status="insufficient_data")]),
        Action.NONE,
        [],
        None,
    ),
    (
        "realised drop over the allowed one on enough labels",
        state([window(98, roc_auc=0.70, labelled=600), window(99)]),
        Action.RETRAIN,
        ["performance"],
        None,
    ),
    (
        "a drop on too few labels is not trusted",
        state([window(98, roc_auc=0.50, labelled=100), window(99)]),
        Action.NONE,
        [],
        None,
    ),
    (
        "a drop within the allowed one",
        state([window(98, roc_auc=0.77, labelled=600)]),
        Action.NONE,
        [],
        None,
    ),
    (
        "windows that ended before the last retrain were acted on",
        state(
            [window(98, 0.5), window(99, 0.5)],
            last_retrain=LastRetrain(decided_at=99.2 * DAY),
        ),
        Action.NONE,  # the windows that ended before the retrain were acted on; one left is not enough
        [],
        None,
    ),
    (
        "cool-down blocks a trigger that came after the retrain",
        state(
            [window(98.9, 0.5), window(99.0, 0.5)],
            now=99.5 * DAY,
            last_retrain=LastRetrain(decided_at=99.0 * DAY - 1),
        ),
        Action.SUPPRESSED,
        ["drift"],
        "cooldown",
    ),
    (
        "a running retrain blocks",
        state([window(98, 0.5), window(99, 0.5)], retrain_in_progress=True),
        Action.SUPPRESSED,
        ["drift"],
        "retrain_in_progress",
    ),
    ("age", state([window(99)], first_served_at=NOW - 91 * DAY), Action.RETRAIN, ["age"], None),
    (
        "age off",
        state(
            [window(99)],
            first_served_at=NOW - 400 * DAY,
            policy=LoopPolicy(max_model_age=None),
        ),
        Action.NONE,
        [],
        None,
    ),
    (
        "a broken feature is an incident, not a retrain",
        state([window(98, 0.5), window(99, 0.5, quality=broken_income())]),
        Action.INCIDENT,
        ["data_quality"],
        None,
    ),
    (
        "estimated drop does not trigger by default",
        state([window(99, estimated={"roc_auc": {"value": 0.6, "lower": 0.55, "upper": 0.65}})]),
        Action.NONE,
        [],
        None,
    ),
    (
        "estimated drop triggers when enabled",
        state(
            [window(99, estimated={"roc_auc": {"value": 0.6, "lower": 0.55, "upper": 0.65}})],
            policy=LoopPolicy(estimated_performance_triggers=True),
        ),
        Action.RETRAIN,
        ["estimated_performance"],
        None,
    ),
    (
        "an estimated drop whose band reaches the allowed value does not trigger",
        state(
            [window(99, estimated={"roc_auc": {"value": 0.72, "lower": 0.6, "upper": 0.78}})],
            policy=LoopPolicy(estimated_performance_triggers=True),
        ),
        Action.NONE,
        [],
        None,
    ),
    (
        "settled: one more retrain once the change is old enough",
        state(
            [window(99)],
            last_retrain=LastRetrain(decided_at=96 * DAY, reasons=("drift",), change_at=95 * DAY),
        ),
        Action.RETRAIN,
        ["settled"],
        None,
    ),
    (
        "settled only once per change",
        state(
            [window(99)],
            last_retrain=LastRetrain(decided_at=97 * DAY, reasons=("settled",), change_at=92 * DAY),
        ),
        Action.NONE,
        [],
        None,
    ),
]


@pytest.mark.parametrize(
    ("name", "loop_state", "action", "reasons", "blocked_by"), CASES, ids=[c[0] for c in CASES]
)
def test_decision_table(name, loop_state, action, reasons, blocked_by) -> None:
    decision = decide(loop_state)
    assert (decision.action, decision.reasons, decision.blocked_by) == (action, reasons, blocked_by), (
        name,
        decision.evidence,
    )


def test_the_change_begins_at_the_first_alarm_window() -> None:
    decision = decide(state([window(97), window(98, 0.5), window(99, 0.5)]))
    assert decision.change_at == 98 * DAY
    performance = decide(
        state([window(97, roc_auc=0.79, labelled=600), window(98, roc_auc=0.6, labelled=600)])
    )
    assert performance.change_at == 98 * DAY


def test_an_alarm_right_after_a_retrain_continues_the_same_change() -> None:
    decision = decide(
        state(
            [window(98.5, 0.5), window(99, 0.5)],
            last_retrain=LastRetrain(decided_at=98.2 * DAY, reasons=("drift",), change_at=96 * DAY),
        )
    )
    assert decision.action is Action.RETRAIN
    assert decision.change_at == 96 * DAY


def test_calibration_is_flagged_not_acted_on() -> None:
    decision = decide(
        state([window(98, roc_auc=0.79, labelled=600, ece=0.20)], baseline={"roc_auc": 0.8, "ece": 0.03})
    )
    assert decision.action is Action.NONE
    assert decision.evidence["calibration"]["flagged"] is True


def test_broken_features_names_each_broken_feature_and_why() -> None:
    quality = broken_income()
    quality["features"]["debt_to_income"] = {
        "rows": 600,
        "missing_rate": 0.3,
        "reference_missing_rate": 0.01,
        "column_present": True,
    }
    quality["features"]["age"] = {"rows": 600, "missing_rate": 0.02, "reference_missing_rate": 0.01}
    found = broken_features(window(99, quality=quality), POLICY)
    assert set(found) == {"annual_income", "debt_to_income"}
    assert "outside the training range" in found["annual_income"]
    assert "missing 30.0%" in found["debt_to_income"]


def test_drift_alone_does_not_retrain_again_after_a_challenger_lost_on_the_same_change() -> None:
    lost = LastRetrain(decided_at=98.2 * DAY, reasons=("drift",), change_at=96 * DAY, outcome="not_promoted")
    windows = [window(98.5, 0.5), window(99, 0.5)]
    held = decide(state(windows, last_retrain=lost))
    assert held.action is Action.NONE and "held" in held.evidence["drift"]
    # A label that shows the champion worse still retrains; so does drift after a promoted challenger.
    worse = decide(state([*windows, window(99.2, 0.5, roc_auc=0.6, labelled=600)], last_retrain=lost))
    assert worse.action is Action.RETRAIN and "performance" in worse.reasons
    promoted = LastRetrain(decided_at=98.2 * DAY, reasons=("drift",), change_at=96 * DAY, outcome="promoted")
    assert decide(state(windows, last_retrain=promoted)).action is Action.RETRAIN
