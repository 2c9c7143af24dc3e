"""Retrain policy: when to retrain a model, and the bookkeeping around doing it once.

``decide(state, now)`` is a pure function of the recent monitor results and the model's facts; it returns a
``Decision`` with the triggers that fired, what blocked them (cool-down, a retrain already running) and the
evidence. ``RetrainController.evaluate`` wraps it with the store: it reads the state, takes the model's
lease (a row in SQLite, so two monitor processes cannot both start a retrain), records the decision with
its evidence, runs the retrain callable passed in, and records the outcome.

Triggers:
- drift: at least ``drift_checks_required`` checks inside ``drift_lookback_seconds`` (and after the last
  retrain) were drift signals: drift share at or above ``drift_share_threshold``, a critical feature
  drifted, or (when enabled) the prediction distribution drifted. Requiring several checks keeps one noisy
  window from retraining a model.
- performance: the latest check with at least ``min_labels`` labelled rows has ``performance_metric``
  more than ``max_performance_drop`` below the champion's training-time holdout value.
- age: the model version is older than ``max_model_age_seconds``.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import pandas as pd

from platform_components.monitoring.errors import InvalidInput
from platform_components.monitoring.store import LABEL_COLUMN, MonitorStore

logger = logging.getLogger(__name__)

HIGHER_IS_BETTER = {
    "accuracy": True,
    "roc_auc": True,
    "brier": False,
    "ece": False,
    "mae": False,
    "rmse": False,
}


# Retrain outcomes that started nothing: they must not start the cool-down (a KFP API that was briefly down
# would otherwise block retraining for a whole cool-down).
NOTHING_STARTED = frozenset({"refused", "submit_failed", "no pipeline runner configured", "no labelled rows"})


class Action(StrEnum):
    """What the policy decided."""

    RETRAIN = "retrain"
    NONE = "none"
    SUPPRESSED = "suppressed"


@dataclass(frozen=True)
class PolicyConfig:
    """Retrain policy settings (see the module docstring for the triggers).

    Attributes:
        drift_share_threshold: a check is a drift signal when this share of features drifted.
        critical_features: any of these drifting makes a check a drift signal.
        include_prediction_drift: prediction drift alone makes a check a drift signal.
        drift_checks_required: drift signals needed inside the lookback to trigger.
        drift_lookback_seconds: how far back drift signals count.
        min_labels: labelled rows a check needs before its performance is trusted.
        performance_metric: metric compared with the baseline (accuracy, roc_auc, brier, ece, mae, rmse).
        max_performance_drop: allowed degradation of that metric (absolute, in the metric's units).
        max_model_age_seconds: retrain a version older than this (None: never for age).
        cooldown_seconds: no new retrain this soon after the last one started.
        lease_ttl_seconds: a retrain lease expires after this (a crashed retrain cannot block forever).
    """

    drift_share_threshold: float = 0.25
    critical_features: tuple[str, ...] = ()
    include_prediction_drift: bool = False
    drift_checks_required: int = 2
    drift_lookback_seconds: float = 3 * 24 * 3600.0
    min_labels: int = 200
    performance_metric: str = "roc_auc"
    max_performance_drop: float = 0.05
    max_model_age_seconds: float | None = 30 * 24 * 3600.0
    cooldown_seconds: float = 24 * 3600.0
    lease_ttl_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if self.performance_metric not in HIGHER_IS_BETTER:
            raise InvalidInput(
                f"performance_metric={self.performance_metric!r} is not known; use one of "
                f"{', '.join(HIGHER_IS_BETTER)}"
            )
        if not 0 < self.drift_share_threshold <= 1:
            raise InvalidInput(f"drift_share_threshold={self.drift_share_threshold} must be in (0, 1]")
        if self.drift_checks_required < 1:
            raise InvalidInput(f"drift_checks_required={self.drift_checks_required} must be >= 1")
        if self.cooldown_seconds < 0 or self.max_performance_drop < 0:
            raise InvalidInput("cooldown_seconds and max_performance_drop must be >= 0")


@dataclass(frozen=True)
class PolicyState:
    """What ``decide`` looks at.

    Attributes:
        model: registered model name.
        version: the serving (champion) version.
        results: recent monitor results of that version (``MonitorResult.to_dict()``), any order.
        baseline_metric: the champion's training-time holdout value of ``performance_metric``.
        model_created_at: when the version was created (unix s), for the age trigger.
        last_retrain_at: when the last retrain of the model started (unix s).
        retrain_in_progress: another retrain of the model holds the lease.
    """

    model: str
    version: str
    results: Sequence[Mapping[str, Any]] = ()
    baseline_metric: float | None = None
    model_created_at: float | None = None
    last_retrain_at: float | None = None
    retrain_in_progress: bool = False
    config: PolicyConfig = field(default_factory=PolicyConfig)


@dataclass(frozen=True)
class Decision:
    """The policy's answer: the action, the triggers that fired, what blocked them, and the evidence."""

    model: str
    version: str
    action: Action
    reasons: list[str]
    blocked_by: str | None
    evidence: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["action"] = self.action.value
        return data


def _is_drift_signal(result: Mapping[str, Any], config: PolicyConfig) -> bool:
    if result.get("status") != "ok":
        return False
    if float(result.get("drift_share", 0.0)) >= config.drift_share_threshold:
        return True
    drifted = set(result.get("drifted_features") or ())
    if drifted & set(config.critical_features):
        return True
    prediction = result.get("prediction") or {}
    return bool(config.include_prediction_drift and prediction.get("drifted"))


def decide(state: PolicyState, now: float) -> Decision:
    """Decide whether to retrain (pure: no clock, no I/O)."""
    config = state.config
    reasons: list[str] = []
    evidence: dict[str, Any] = {"now": now, "config": asdict(config)}
    since = now - config.drift_lookback_seconds
    # Checks up to the start of the last retrain (including the one that triggered it) were acted upon.
    acted_until = state.last_retrain_at if state.last_retrain_at is not None else -math.inf
    recent = sorted(
        (
            result
            for result in state.results
            if float(result.get("checked_at", 0.0)) >= since
            and float(result.get("checked_at", 0.0)) > acted_until
        ),
        key=lambda result: float(result.get("checked_at", 0.0)),
    )
    signals = [result for result in recent if _is_drift_signal(result, config)]
    evidence["drift"] = {
        "signals": len(signals),
        "required": config.drift_checks_required,
        "checks_considered": len(recent),
        "signal_checks": [
            {
                "checked_at": result.get("checked_at"),
                "drift_share": result.get("drift_share"),
                "drifted_features": result.get("drifted_features"),
                "max_psi": result.get("max_psi"),
            }
            for result in signals[-10:]
        ],
    }
    if len(signals) >= config.drift_checks_required:
        reasons.append("drift")

    metric = config.performance_metric
    trusted = [
        result
        for result in recent
        if result.get("performance") and int(result.get("labelled_rows", 0)) >= config.min_labels
    ]
    if trusted and state.baseline_metric is not None and trusted[-1]["performance"].get(metric) is not None:
        value = float(trusted[-1]["performance"][metric])
        drop = state.baseline_metric - value if HIGHER_IS_BETTER[metric] else value - state.baseline_metric
        evidence["performance"] = {
            "metric": metric,
            "value": value,
            "baseline": state.baseline_metric,
            "drop": drop,
            "allowed_drop": config.max_performance_drop,
            "labelled_rows": trusted[-1].get("labelled_rows"),
            "checked_at": trusted[-1].get("checked_at"),
        }
        if drop > config.max_performance_drop:
            reasons.append("performance")
    else:
        evidence["performance"] = {
            "metric": metric,
            "baseline": state.baseline_metric,
            "note": "not enough labelled rows or no baseline",
        }

    if config.max_model_age_seconds is not None and state.model_created_at is not None:
        age = now - state.model_created_at
        evidence["age"] = {"seconds": age, "max_seconds": config.max_model_age_seconds}
        if age > config.max_model_age_seconds:
            reasons.append("age")

    blocked_by = None
    if reasons:
        if state.retrain_in_progress:
            blocked_by = "retrain_in_progress"
        elif state.last_retrain_at is not None and now - state.last_retrain_at < config.cooldown_seconds:
            blocked_by = "cooldown"
            evidence["cooldown"] = {
                "last_retrain_at": state.last_retrain_at,
                "remaining_seconds": config.cooldown_seconds - (now - state.last_retrain_at),
            }
    if not reasons:
        action = Action.NONE
    elif blocked_by:
        action = Action.SUPPRESSED
    else:
        action = Action.RETRAIN
    return Decision(state.model, state.version, action, reasons, blocked_by, evidence)


@dataclass(frozen=True)
class RetrainRequest:
    """What the retrain callable gets: the model, the decision and the recent labelled rows."""

    model: str
    version: str
    decision_id: int
    reasons: list[str]
    labelled_rows: pd.DataFrame
    since: float


RetrainCallable = Callable[[RetrainRequest], Mapping[str, Any]]


def export_labelled_rows(
    store: MonitorStore, model: str, since: float | None, *, label_column: str = "label"
) -> pd.DataFrame:
    """Labelled rows of every version of ``model`` predicted since ``since``: features plus the label.

    This is the retraining data set of the loop ("the pipeline on recent labelled data"). Columns are the
    logged input features, ``label_column``, and ``timestamp`` (prediction time), oldest first.
    """
    window = store.window(model, None, start=since, labelled_only=True, limit=None)
    if window.empty:
        return pd.DataFrame()
    features = [column for column in window.columns if not column.startswith("__")]
    frame = window[features].copy()
    frame[label_column] = window[LABEL_COLUMN].to_numpy()
    frame["timestamp"] = window["__timestamp__"].to_numpy()
    return frame


class RetrainController:
    """Evaluates the policy against the store and runs at most one retrain per model at a time.

    Args:
        store: the monitor store.
        retrain: called with a ``RetrainRequest`` when the policy says retrain; returns a JSON-able mapping
            with at least ``outcome`` (e.g. ``promoted``, ``not_promoted``), stored as the decision outcome.
        config: policy settings.
        holder: lease holder id (default: host, pid and a random suffix).
        record_none: also record checks where no trigger fired (off: the decision log stays readable).
        training_window_seconds: how far back labelled rows are exported for the retrain.
    """

    def __init__(
        self,
        store: MonitorStore,
        retrain: RetrainCallable,
        *,
        config: PolicyConfig | None = None,
        holder: str | None = None,
        record_none: bool = False,
        training_window_seconds: float = 7 * 24 * 3600.0,
    ) -> None:
        self.store = store
        self.retrain = retrain
        self.config = config or PolicyConfig()
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.record_none = record_none
        self.training_window_seconds = training_window_seconds

    def state(
        self,
        model: str,
        version: str,
        *,
        now: float,
        baseline_metric: float | None = None,
        model_created_at: float | None = None,
    ) -> PolicyState:
        """Read the policy's inputs from the store."""
        results = self.store.results(model, version=version, since=now - self.config.drift_lookback_seconds)
        started = [
            decision.decided_at
            for decision in self.store.decisions(model)
            if decision.action == Action.RETRAIN.value and decision.outcome not in NOTHING_STARTED
        ]
        holder = self.store.lease_holder(model, now=now)
        return PolicyState(
            model=model,
            version=version,
            results=results,
            baseline_metric=baseline_metric,
            model_created_at=model_created_at,
            last_retrain_at=max(started, default=None),
            retrain_in_progress=holder is not None and holder != self.holder,
            config=self.config,
        )

    def evaluate(
        self,
        model: str,
        version: str,
        *,
        baseline_metric: float | None = None,
        model_created_at: float | None = None,
        now: float | None = None,
    ) -> Decision:
        """Decide, record, and (when the decision is retrain and the lease is ours) run the retrain."""
        now = time.time() if now is None else now
        decision = decide(
            self.state(
                model, version, now=now, baseline_metric=baseline_metric, model_created_at=model_created_at
            ),
            now,
        )
        if decision.action is Action.NONE:
            if self.record_none:
                self.store.record_decision(
                    model,
                    version,
                    action="none",
                    reasons=[],
                    evidence=decision.evidence,
                    outcome="none",
                    decided_at=now,
                )
            return decision
        if decision.action is Action.SUPPRESSED:
            self.store.record_decision(
                model,
                version,
                action=Action.SUPPRESSED.value,
                reasons=decision.reasons,
                evidence={**decision.evidence, "blocked_by": decision.blocked_by},
                outcome=f"blocked: {decision.blocked_by}",
                decided_at=now,
            )
            return decision
        if not self.store.acquire_lease(
            model, self.holder, ttl_seconds=self.config.lease_ttl_seconds, now=now
        ):
            # Another process took the lease between reading the state and now.
            self.store.record_decision(
                model,
                version,
                action=Action.RETRAIN.value,
                reasons=decision.reasons,
                evidence={**decision.evidence, "blocked_by": "retrain_in_progress"},
                outcome="refused",
                decided_at=now,
            )
            return Decision(
                model, version, Action.SUPPRESSED, decision.reasons, "retrain_in_progress", decision.evidence
            )
        decision_id = self.store.record_decision(
            model,
            version,
            action=Action.RETRAIN.value,
            reasons=decision.reasons,
            evidence=decision.evidence,
            outcome="started",
            decided_at=now,
        )
        try:
            since = now - self.training_window_seconds
            request = RetrainRequest(
                model=model,
                version=version,
                decision_id=decision_id,
                reasons=decision.reasons,
                labelled_rows=export_labelled_rows(self.store, model, since),
                since=since,
            )
            logger.info("retraining %s (v%s) because of %s", model, version, ", ".join(decision.reasons))
            try:
                detail = dict(self.retrain(request))
            except Exception as error:  # the retrain is user code: record the failure, never lose it
                logger.exception("retrain of %s failed", model)
                self.store.finish_decision(
                    decision_id, "failed", {"error": f"{type(error).__name__}: {error}"}
                )
                return decision
            self.store.finish_decision(decision_id, str(detail.get("outcome", "done")), detail)
        finally:
            self.store.release_lease(model, self.holder)
        return decision
