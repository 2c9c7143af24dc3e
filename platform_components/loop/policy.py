"""The loop's decision: a pure function of the recent windows, the model's facts and the policy.

``decide(state)`` looks at the stored windows of the serving version (one result per aligned window,
``monitoring.monitor.run_check``) and returns a ``Decision``: the action, the triggers that fired, what
blocked them and the evidence, including where the change began (``change_at``), which chooses the
training rows (``data.py``). No clock and no I/O: every time is event time and comes in ``state.now``.

Triggers, counted only on windows that end after the last retrain started (what came before was acted on):

- **drift**: at least ``drift_windows_required`` windows in the look-back are drift signals (drift share
  at or above ``drift_share``, a critical feature drifted, or the prediction drifted when
  ``prediction_drift_triggers``). Counting windows, not checks: a monitor checking every 15 minutes sees
  the same window many times, and one noisy window must not retrain a model.
- **performance**: the latest window with at least ``min_labels`` labelled rows is worse than the version's
  training holdout by more than ``max_performance_drop`` in ``performance_metric``.
- **estimated_performance** (off by default): the latest window's estimate (and, with
  ``estimated_drop_requires_band``, its whole band) is below the holdout by more than ``max_estimated_drop``.
- **age**: the version has served for longer than ``max_model_age`` (from its first prediction).
- **settled**: the last retrain trained on rows since a change, and the change is now ``settle_after`` old:
  one more retrain on the larger post-change data, once per change.

Drift alone does not retrain again for a change whose last challenger lost to the champion on the gate rows
(the champion held on the newest labels); a performance, estimated-performance or age trigger still does.

A **data-quality incident** wins over every trigger: when the latest window has a broken feature (missing
far more often than in training, out of the training range, unseen categories; ``broken_features``), the
action is ``incident``: alert, keep the champion, say which feature. Training on those rows would teach
the model the broken pipe. Broken windows are not drift signals.

Blocked: a retrain already running (``retrain_in_progress``) or the cool-down since the last one started.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from platform_components.settings import PERFORMANCE_METRICS, LoopPolicy

# Retrain outcomes that started nothing: they must not start the cool-down (a KFP API that was briefly down
# would otherwise block retraining for a whole cool-down).
NOTHING_STARTED = frozenset(
    {"refused", "not_started", "waiting_for_rows", "no labelled rows", "no pipeline runner configured"}
)


class Action(StrEnum):
    """What the policy decided."""

    RETRAIN = "retrain"
    NONE = "none"
    SUPPRESSED = "suppressed"
    INCIDENT = "incident"


@dataclass(frozen=True)
class LastRetrain:
    """The last retrain that started: when (event time), why, and the change its rows followed."""

    decided_at: float
    reasons: tuple[str, ...] = ()
    change_at: float | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class LoopState:
    """What ``decide`` looks at.

    Attributes:
        model: served model name.
        version: the serving version.
        now: the model's event clock.
        windows: stored results of that version (``MonitorResult.to_dict()``), any order.
        baseline: the version's training-holdout value of each metric (``{"roc_auc": 0.8, "ece": 0.02}``).
        first_served_at: event time of the version's first prediction (for the age trigger).
        last_retrain: the last retrain of the model that started, or None.
        retrain_in_progress: a retrain of the model holds the lease or is still running.
        policy: the model's effective policy.
    """

    model: str
    version: str
    now: float
    windows: Sequence[Mapping[str, Any]] = ()
    baseline: Mapping[str, float] = field(default_factory=dict)
    first_served_at: float | None = None
    last_retrain: LastRetrain | None = None
    retrain_in_progress: bool = False
    policy: LoopPolicy = field(default_factory=LoopPolicy)


@dataclass(frozen=True)
class Decision:
    """The policy's answer: the action, the triggers, what blocked them, where the change began, evidence."""

    model: str
    version: str
    action: Action
    reasons: list[str]
    blocked_by: str | None
    change_at: float | None
    evidence: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["action"] = self.action.value
        return data


def broken_features(result: Mapping[str, Any], policy: LoopPolicy) -> dict[str, str]:
    """Features of a window the quality check marks broken, each with why (empty: none)."""
    broken: dict[str, str] = {}
    quality = result.get("quality") or {}
    for name, item in (quality.get("features") or {}).items():
        if int(item.get("rows") or 0) == 0:
            continue
        if item.get("column_present") is False:
            broken[name] = "column absent"
            continue
        missing = float(item.get("missing_rate") or 0.0)
        reference = float(item.get("reference_missing_rate") or 0.0)
        if missing - reference > policy.max_missing_increase:
            broken[name] = f"missing {missing:.1%} (training {reference:.1%})"
        elif float(item.get("out_of_range_rate") or 0.0) > policy.max_out_of_range:
            broken[name] = f"{float(item['out_of_range_rate']):.1%} outside the training range"
        elif float(item.get("unseen_rate") or 0.0) > policy.max_unseen:
            broken[name] = f"{float(item['unseen_rate']):.1%} unseen categories"
    return broken


def is_drift_signal(result: Mapping[str, Any], policy: LoopPolicy) -> bool:
    """Whether a window counts towards the drift trigger (see the module docstring)."""
    if result.get("status") != "ok":
        return False
    if float(result.get("drift_share") or 0.0) >= policy.drift_share:
        return True
    if set(result.get("drifted_features") or ()) & set(policy.critical_features):
        return True
    prediction = result.get("prediction") or {}
    return bool(policy.prediction_drift_triggers and prediction.get("drifted"))


def _drop(metric: str, value: float, baseline: float) -> float:
    return baseline - value if PERFORMANCE_METRICS[metric] else value - baseline


def _start(result: Mapping[str, Any]) -> float:
    return float(result.get("window_start", result.get("checked_at", 0.0)))


def decide(state: LoopState) -> Decision:
    """Decide what the loop does for the serving version now (pure: see the module docstring)."""
    policy, now = state.policy, state.now
    evidence: dict[str, Any] = {"now": now}
    reasons: list[str] = []
    acted_until = state.last_retrain.decided_at if state.last_retrain is not None else -math.inf
    windows = sorted(
        (
            result
            for result in state.windows
            if float(result.get("window_end", 0.0)) > max(now - policy.lookback, acted_until)
        ),
        key=_start,
    )
    alarms: list[float] = []  # window starts of drift or performance alarms: where the change began

    latest = windows[-1] if windows else None
    broken = broken_features(latest, policy) if latest is not None else {}
    if broken:
        evidence["quality"] = {"window_start": _start(latest), "broken_features": broken}
        return Decision(state.model, state.version, Action.INCIDENT, ["data_quality"], None, None, evidence)

    usable = [result for result in windows if not broken_features(result, policy)]
    signals = [result for result in usable if is_drift_signal(result, policy)]
    evidence["drift"] = {
        "signal_windows": len(signals),
        "required": policy.drift_windows_required,
        "windows_considered": len(usable),
        "signals": [
            {
                "window_start": _start(result),
                "drift_share": result.get("drift_share"),
                "drifted_features": result.get("drifted_features"),
                "max_psi": result.get("max_psi"),
            }
            for result in signals[-10:]
        ],
    }
    if len(signals) >= policy.drift_windows_required:
        reasons.append("drift")
        alarms.append(_start(signals[0]))

    metric = policy.performance_metric
    labelled = [
        result
        for result in usable
        if (result.get("performance") or {}).get(metric) is not None
        and int((result.get("performance") or {}).get("rows", result.get("labelled_rows", 0)) or 0)
        >= policy.min_labels
    ]
    baseline = state.baseline.get(metric)
    if labelled and baseline is not None:
        window = labelled[-1]
        value = float(window["performance"][metric])
        drop = _drop(metric, value, float(baseline))
        evidence["performance"] = {
            "metric": metric,
            "value": value,
            "baseline": baseline,
            "drop": drop,
            "allowed_drop": policy.max_performance_drop,
            "window_start": _start(window),
            "labelled_rows": window.get("labelled_rows"),
        }
        if drop > policy.max_performance_drop:
            reasons.append("performance")
            alarms.append(
                min(
                    _start(result)
                    for result in labelled
                    if _drop(metric, float(result["performance"][metric]), float(baseline))
                    > policy.max_performance_drop
                )
            )
        ece, ece_baseline = window["performance"].get("ece"), state.baseline.get("ece")
        if ece is not None and ece_baseline is not None:
            flagged = float(ece) - float(ece_baseline) > policy.max_ece_increase
            evidence["calibration"] = {
                "ece": float(ece),
                "baseline": float(ece_baseline),
                "allowed_increase": policy.max_ece_increase,
                "flagged": flagged,
            }
    else:
        evidence["performance"] = {
            "metric": metric,
            "baseline": baseline,
            "note": f"no window with {policy.min_labels} labelled rows yet, or no holdout baseline",
        }

    estimated = _estimated(usable[-1] if usable else None, metric, baseline)
    if estimated is not None:
        value, lower, upper = estimated
        drop = float(baseline) - value
        worst_case = float(baseline) - (upper if upper is not None else value)
        fired = (worst_case if policy.estimated_drop_requires_band else drop) > policy.max_estimated_drop
        evidence["estimated_performance"] = {
            "metric": metric,
            "value": value,
            "band": [lower, upper],
            "baseline": baseline,
            "drop": drop,
            "allowed_drop": policy.max_estimated_drop,
            "fired": fired,
            "triggers": policy.estimated_performance_triggers,
        }
        if fired and policy.estimated_performance_triggers:
            reasons.append("estimated_performance")
            alarms.append(_start(usable[-1]))

    if policy.max_model_age is not None and state.first_served_at is not None:
        age = now - state.first_served_at
        evidence["age"] = {"seconds": age, "max_seconds": policy.max_model_age}
        if age > policy.max_model_age:
            reasons.append("age")

    last = state.last_retrain
    change_at = min(alarms) if alarms else None
    if (
        change_at is not None
        and last is not None
        and last.change_at is not None
        and change_at - last.decided_at <= policy.lookback
    ):
        # The alarm went on right after the last retrain: the same change, still not recovered from; its
        # rows since the first alarm stay in the training data.
        change_at = min(change_at, last.change_at)
    if (
        not reasons
        and policy.settle_after is not None
        and last is not None
        and last.change_at is not None
        and "settled" not in last.reasons
        and now - last.change_at >= policy.settle_after
    ):
        reasons.append("settled")
        change_at = last.change_at
        evidence["settled"] = {"change_at": last.change_at, "settle_after": policy.settle_after}
    if change_at is None and last is not None and last.change_at is not None and "age" not in reasons:
        change_at = last.change_at  # the same change is still being recovered from
    evidence["change_at"] = change_at
    if (
        reasons == ["drift"]
        and last is not None
        and last.outcome == "not_promoted"
        and last.change_at is not None
        and change_at == last.change_at
    ):
        # The inputs moved, a challenger trained on the rows since the move lost to the champion on the
        # newest labelled rows, and no label says the champion got worse: drift alone again is the same
        # evidence, and retraining on it every cool-down would only repeat the verdict.
        evidence["drift"]["held"] = (
            "drift alone, after a challenger trained on this change lost to the champion on the gate rows"
        )
        reasons = []

    blocked_by = None
    if reasons:
        if state.retrain_in_progress:
            blocked_by = "retrain_in_progress"
        elif last is not None and now - last.decided_at < policy.cooldown:
            blocked_by = "cooldown"
            evidence["cooldown"] = {
                "last_retrain_at": last.decided_at,
                "remaining_seconds": policy.cooldown - (now - last.decided_at),
            }
    action = Action.NONE if not reasons else Action.SUPPRESSED if blocked_by else Action.RETRAIN
    return Decision(state.model, state.version, action, reasons, blocked_by, change_at, evidence)


def _estimated(
    result: Mapping[str, Any] | None, metric: str, baseline: float | None
) -> tuple[float, float | None, float | None] | None:
    """The window's estimated ``metric`` and its band, when the window has one (classifiers)."""
    if result is None or baseline is None or metric not in ("roc_auc", "accuracy"):
        return None
    item = (result.get("estimated") or {}).get(metric)
    if not isinstance(item, Mapping) or item.get("value") is None:
        return None
    lower, upper = item.get("lower"), item.get("upper")
    return (
        float(item["value"]),
        None if lower is None else float(lower),
        None if upper is None else float(upper),
    )
