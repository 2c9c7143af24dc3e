"""One round of the loop for one model: window -> check -> decide -> retrain -> gate -> roll out -> record.

The same code runs on both targets; only the ``Retrainer`` and ``Deployer`` differ (``interfaces.py``):

1. **Roll out**: resolve the model's alias in MLflow and have the deployer serve that version (a no-op
   when it already does). A promotion, by the loop's gate or by hand, is served within one round.
2. **Window**: ingest the local prediction logs (local target; in the cluster the shipper posts them), and
   read the model's event clock: the latest event time its predictions and labels carry. Every duration of
   the policy is measured on it.
3. **Check** the aligned window holding the clock for the serving version (drift, prediction drift, data
   quality, estimated performance), then bring the realised performance of earlier windows up to date as
   their labels arrive (``monitoring.monitor.refresh_realised``).
4. **Finish** a retrain that was running (``Retrainer.poll``): when it succeeded, the gate's verdict is the
   registry's alias: moved means promoted, and the deployer rolls out.
5. **Decide** (``policy.decide``), **choose the rows** (``data.select``) and **retrain**: at most one per
   model, under the store's lease (wall clock: it guards against crashed processes, not the calendar).
6. **Record** the decision with its evidence (once per window for repeats), and log the window's metrics to
   the version's MLflow monitoring run (one batch; the HTML report only when something fired).

``run_all`` is the monitor's round over the fleet, and its cost is what one replica can watch: it takes
only the models of its shard (``loop/shard.py``), resolves every alias with one registry search, keeps each
window decoded across rounds (``monitoring/window_cache.py``: only new rows and labels are read) and logs
every window's metrics with the round's batches (``tracking.RoundLog``: one ``monitor-rounds`` run, at most
1,000 metrics a call, written while the round goes on); only a window where something fired also gets its
version's monitoring run with the HTML report (matplotlib is imported then, never for a quiet window).
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platform_components.loop import data as training_data
from platform_components.loop.interfaces import (
    Deployer,
    Retrainer,
    RetrainRequest,
    RetrainState,
    RetrainStatus,
    Rollout,
)
from platform_components.loop.models import LoopModel
from platform_components.loop.policy import (
    NOTHING_STARTED,
    Action,
    Decision,
    LastRetrain,
    LoopState,
    decide,
)
from platform_components.loop.shard import Shard
from platform_components.monitoring.monitor import MonitorConfig, MonitorResult, refresh_realised, run_check
from platform_components.monitoring.profile import ReferenceProfile
from platform_components.monitoring.store import MonitorStore
from platform_components.monitoring.window_cache import WindowCache

logger = logging.getLogger(__name__)

RUNNING_OUTCOME = "running"
_CACHE_LOCK = threading.Lock()
_PROFILES: dict[tuple[str, str, str], ReferenceProfile] = {}
_BASELINES: dict[tuple[str, str, str], dict[str, float]] = {}


def default_holder() -> str:
    """The lease holder of this host's loop: stable across restarts, so a restarted monitor resumes its own
    running retrain (a StatefulSet pod keeps its hostname)."""
    return f"{socket.gethostname()}:loop"


def cached_profile(tracking_uri: str, model: str, version: str) -> ReferenceProfile:
    """The version's reference profile, downloaded once per process (a version's profile never changes)."""
    from platform_components.monitoring.tracking import load_reference_profile

    key = (tracking_uri, model, version)
    with _CACHE_LOCK:
        if key in _PROFILES:
            return _PROFILES[key]
    profile = load_reference_profile(tracking_uri, model, version)
    with _CACHE_LOCK:
        _PROFILES[key] = profile
    return profile


def holdout_baseline(tracking_uri: str, model: str, version: str, metrics: Sequence[str]) -> dict[str, float]:
    """The version's training-holdout values of ``metrics`` (``holdout_<metric>`` of its run), cached."""
    from platform_components.monitoring.tracking import baseline_metric

    key = (tracking_uri, model, version)
    with _CACHE_LOCK:
        if key in _BASELINES and all(name in _BASELINES[key] for name in metrics):
            return _BASELINES[key]
    values: dict[str, float] = {}
    for name in metrics:
        value = baseline_metric(tracking_uri, model, version, name)
        if value is not None:
            values[name] = value
    with _CACHE_LOCK:
        _BASELINES[key] = {**_BASELINES.get(key, {}), **values}
        return _BASELINES[key]


def check_config(entry: LoopModel, profile: ReferenceProfile) -> MonitorConfig:
    """The check's settings: the model's drift thresholds (the alert rules use the same), its task."""
    return MonitorConfig(
        alpha=entry.thresholds.drift_p_value,
        psi_threshold=entry.thresholds.psi,
        task=str(profile.metadata.get("task", "classification")),
    )


@dataclass
class RoundResult:
    """What one round did for one model (``to_dict`` is the ``--json`` line)."""

    model: str
    version: str | None
    now: float | None
    result: MonitorResult | None = None
    decision: Decision | None = None
    decision_id: int | None = None
    retrain: dict[str, Any] | None = None
    finished: list[dict[str, Any]] = field(default_factory=list)
    rollout: Rollout | None = None
    monitoring_run_id: str | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        result = self.result
        return {
            "model": self.model,
            "version": self.version,
            "now": self.now,
            "window_start": None if result is None else result.window_start,
            "status": None if result is None else result.status,
            "rows": None if result is None else result.rows,
            "labelled_rows": None if result is None else result.labelled_rows,
            "drift_share": None if result is None else result.drift_share,
            "drifted_features": [] if result is None else result.drifted_features,
            "estimated": None if result is None else getattr(result, "estimated", None),
            "decision": None if self.decision is None else self.decision.action.value,
            "reasons": [] if self.decision is None else self.decision.reasons,
            "blocked_by": None if self.decision is None else self.decision.blocked_by,
            "decision_id": self.decision_id,
            "retrain": self.retrain,
            "finished": self.finished,
            "rollout": None if self.rollout is None else dataclasses.asdict(self.rollout),
            "note": self.note,
        }


@dataclass
class Loop:
    """Runs rounds for models on one target.

    Attributes:
        store: the monitor store (predictions, labels, windows, decisions, leases).
        tracking_uri: MLflow: aliases, profiles, baselines, logging.
        retrainer: where retrains run (None: decide and record only, "no pipeline runner configured").
        deployer: what serves the alias's version (None: serving is not the loop's, e.g. a bare monitor).
        state_dir: local target: ingest ``<state_dir>/predictions`` before each round.
        holder: lease holder id (default: this host's loop).
        log_to_mlflow: log each window to MLflow (``run_all``: the round's batches; ``run_round``
            alone: the version's monitoring run).
        say: progress lines (None: log only).
        cache: the windows kept decoded across rounds (None: every check reads its whole window).
        shard: this replica's share of the models (``run_all`` skips the others).
    """

    store: MonitorStore
    tracking_uri: str
    retrainer: Retrainer | None = None
    deployer: Deployer | None = None
    state_dir: Path | None = None
    holder: str = field(default_factory=default_holder)
    log_to_mlflow: bool = True
    say: Callable[[str], None] | None = None
    cache: WindowCache | None = None
    shard: Shard = field(default_factory=Shard)
    _aliases: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)
    _round_log: Any = field(default=None, repr=False)
    _reported: dict[tuple[str, str, float], tuple[str, tuple[str, ...]]] = field(
        default_factory=dict, repr=False
    )

    # -- public --------------------------------------------------------------------------------------

    def run_round(self, entry: LoopModel, *, now: float | None = None) -> RoundResult:
        """One round for ``entry`` (see the module docstring). ``now``: an event time, default the clock
        the model's own events give.

        Raises:
            TrackingError: MLflow cannot resolve the alias or has no reference profile for the version.
        """
        from platform_components.monitoring.tracking import resolve_version

        if self.state_dir is not None:
            self.store.ingest_state_dir(self.state_dir, entry.name)
        alias_version = self._aliases.get((entry.registered_model, entry.alias)) or resolve_version(
            self.tracking_uri, entry.registered_model, entry.alias
        )
        rollout = self._roll_out(entry, alias_version)
        serving = rollout.version if rollout is not None else alias_version
        clock = self.store.event_clock(entry.name) if now is None else now
        outcome = RoundResult(entry.name, serving, clock, rollout=rollout)
        if clock is None:
            outcome.note = "no predictions yet: nothing to check"
            outcome.finished = self._finish_running(entry, None)
            return outcome
        profile = cached_profile(self.tracking_uri, entry.registered_model, serving)
        policy = entry.policy
        outcome.result = run_check(
            self.store,
            entry.name,
            serving,
            profile,
            window_seconds=policy.window,
            config=check_config(entry, profile),
            now=clock,
            cache=self.cache,
        )
        refresh_realised(
            self.store,
            entry.name,
            serving,
            now=clock,
            lookback_seconds=policy.lookback,
            min_labels=policy.min_labels,
            profile=profile,
            cache=self.cache,
        )
        outcome.finished = self._finish_running(entry, clock)
        if any(item.get("rollout") for item in outcome.finished):
            # The gate promoted: the rest of this round's decision concerns a version that no longer serves.
            outcome.version = outcome.finished[-1]["rollout"]["version"]
            outcome.note = "promoted and rolled out this round; the new version is checked from the next one"
            return outcome
        windows = self.store.results(
            entry.name, version=serving, since=clock - policy.lookback - policy.window
        )
        state = LoopState(
            model=entry.name,
            version=serving,
            now=clock,
            windows=windows,
            baseline=holdout_baseline(
                self.tracking_uri, entry.registered_model, serving, (policy.performance_metric, "ece")
            ),
            first_served_at=self.store.first_prediction_at(entry.name, serving),
            last_retrain=self._last_retrain(entry.name),
            retrain_in_progress=self._retrain_in_progress(entry.name),
            policy=policy,
        )
        outcome.decision = decision = decide(state)
        outcome.decision_id, outcome.retrain = self._act(entry, decision, windows, clock)
        if outcome.retrain and outcome.retrain.get("rollout"):
            outcome.version = outcome.retrain["rollout"]["version"]  # promoted and served this round
        if self.log_to_mlflow:
            outcome.monitoring_run_id = self._log(entry, outcome.result, decision)
        return outcome

    def run_all(
        self, entries: Sequence[LoopModel], *, now: float | None = None
    ) -> dict[str, RoundResult | Exception]:
        """A round for every model of this replica's shard (see the module docstring); one model's failure
        (MLflow down, no alias yet) never stops the others."""
        from platform_components.monitoring.tracking import RoundLog, resolve_aliases

        entries = self.shard.select(entries, name=lambda entry: entry.name)
        outcomes: dict[str, RoundResult | Exception] = {}
        try:
            self._aliases = resolve_aliases(
                self.tracking_uri, {(entry.registered_model, entry.alias) for entry in entries}
            )
        except Exception as error:  # the registry is down: each model's own resolution says so
            logger.warning("could not resolve the round's aliases at once: %s", error)
            self._aliases = {}
        self._round_log = RoundLog(self.tracking_uri) if self.log_to_mlflow and entries else None
        try:
            for entry in entries:
                try:
                    outcomes[entry.name] = self.run_round(entry, now=now)
                except Exception as error:
                    logger.warning("round of %s failed: %s: %s", entry.name, type(error).__name__, error)
                    outcomes[entry.name] = error
        finally:
            round_log, self._round_log, self._aliases = self._round_log, None, {}
            if round_log is not None:
                try:
                    run_id = round_log.flush()
                except Exception as error:  # logging must not stop the loop; the store has every window
                    logger.warning("%s", error)
                else:
                    for outcome in outcomes.values():
                        if isinstance(outcome, RoundResult) and outcome.monitoring_run_id is None:
                            outcome.monitoring_run_id = run_id if outcome.result is not None else None
        return outcomes

    # -- steps ---------------------------------------------------------------------------------------

    def _say(self, line: str) -> None:
        logger.info(line)
        if self.say is not None:
            self.say(line)

    def _roll_out(self, entry: LoopModel, version: str) -> Rollout | None:
        if self.deployer is None:
            return None
        rollout = self.deployer.ensure(entry.name, entry.registered_model, version)
        if rollout.changed:
            self._say(f"{entry.name}: now serving version {rollout.version} ({entry.alias})")
        return rollout

    def _last_retrain(self, model: str) -> LastRetrain | None:
        started = self.store.decisions(
            model, limit=1, action=Action.RETRAIN.value, excluding_outcomes=sorted(NOTHING_STARTED)
        )
        if not started:
            return None
        row = started[-1]
        change_at = (row.evidence or {}).get("change_at")
        return LastRetrain(
            decided_at=float(row.decided_at),
            reasons=tuple(row.reasons),
            change_at=None if change_at is None else float(change_at),
            outcome=row.outcome,
        )

    def _retrain_in_progress(self, model: str) -> bool:
        if self.store.lease_holder(model, now=time.time()) is not None:
            return True
        return any(row.outcome == RUNNING_OUTCOME for row in self.store.decisions(model, limit=20))

    def _is_repeat(self, model: str, decision: Decision, window_start: float | None) -> bool:
        """The same decision that started nothing was already recorded for this window (rounds repeat)."""
        last = self.store.decisions(model, limit=1)
        if not last:
            return False
        row = last[0]
        return (
            (row.action == decision.action.value or row.outcome == "waiting_for_rows")
            and row.reasons == decision.reasons
            and (row.evidence or {}).get("blocked_by") == decision.blocked_by
            and (row.evidence or {}).get("window_start") == window_start
        )

    def _act(
        self, entry: LoopModel, decision: Decision, windows: Sequence[Mapping[str, Any]], now: float
    ) -> tuple[int | None, dict[str, Any] | None]:
        """Record the decision and, when it says retrain, start one. Returns (decision id, retrain info)."""
        if decision.action is Action.NONE:
            return None, None
        window_start = max((float(result["window_start"]) for result in windows), default=None)
        evidence = {
            **decision.evidence,
            "window_start": window_start,
            "blocked_by": decision.blocked_by,
            "policy": entry.policy.model_dump(),
        }

        def record(action: Action, outcome: str, **extra: Any) -> int:
            return self.store.record_decision(
                entry.name,
                decision.version,
                action=action.value,
                reasons=decision.reasons,
                evidence={**evidence, **extra},
                outcome=outcome,
                decided_at=now,
            )

        if decision.action is not Action.RETRAIN:
            if self._is_repeat(entry.name, decision, window_start):
                return None, None
            if decision.action is Action.INCIDENT:
                broken = decision.evidence["quality"]["broken_features"]
                self._say(
                    f"{entry.name}: data-quality incident, champion kept, no retrain on broken rows: "
                    + "; ".join(f"{name}: {why}" for name, why in broken.items())
                )
                return record(decision.action, "champion_kept"), None
            return record(decision.action, f"blocked: {decision.blocked_by}"), None
        policy = entry.policy
        all_windows = self.store.results(entry.name, since=now - policy.max_training_window)
        chosen = training_data.select(
            self.store,
            entry.name,
            policy,
            now=now,
            change_at=decision.change_at,
            broken=training_data.broken_spans(all_windows, policy),
            label_column=entry.label_column,
            settled=decision.reasons == ["settled"],
        )
        if isinstance(chosen, training_data.Waiting):
            info = {"state": "waiting_for_rows", "reason": chosen.reason}
            waiting = dataclasses.replace(decision, action=Action.SUPPRESSED, blocked_by="waiting_for_rows")
            if self._is_repeat(entry.name, waiting, window_start):
                return None, info
            selection = dict(chosen.selection)
            return (
                record(
                    Action.SUPPRESSED, "waiting_for_rows", blocked_by="waiting_for_rows", selection=selection
                ),
                info,
            )
        evidence["selection"] = dict(chosen.selection)
        if self.retrainer is None:
            info = {"state": RetrainState.NOT_STARTED.value, "reason": "no pipeline runner"}
            if self._is_repeat(entry.name, decision, window_start):
                return None, info
            return record(Action.RETRAIN, "no pipeline runner configured"), info
        if not self.store.acquire_lease(
            entry.name, self.holder, ttl_seconds=policy.lease_ttl_seconds, now=time.time()
        ):
            return record(Action.RETRAIN, "refused", blocked_by="retrain_in_progress"), {"state": "refused"}
        decision_id = record(Action.RETRAIN, "started")
        request = RetrainRequest(
            model=entry.name,
            registered_model=entry.registered_model,
            champion_version=decision.version,
            decision_id=decision_id,
            reasons=tuple(decision.reasons),
            data=chosen,
            promotion_margin=policy.promotion_margin,
            arguments=dict(entry.pipeline_arguments),
        )
        self._say(
            f"{entry.name}: retraining because of {', '.join(decision.reasons)} on "
            f"{len(chosen.train)} rows ({chosen.selection.get('mode')}), gate on {len(chosen.gate)}"
        )
        try:
            status = self.retrainer.start(request)
        except Exception as error:  # the pipeline is user code: record the failure, never lose it
            logger.exception("retrain of %s failed to start", entry.name)
            status = RetrainStatus(RetrainState.FAILED, detail={"error": f"{type(error).__name__}: {error}"})
        return decision_id, self._settle(entry, decision_id, decision.version, status)

    def _settle(
        self, entry: LoopModel, decision_id: int, champion_version: str, status: RetrainStatus
    ) -> dict[str, Any]:
        """Record a retrain's state; when it finished, release the lease and follow the gate's verdict."""
        detail: dict[str, Any] = {"state": status.state.value, "run_id": status.run_id, **dict(status.detail)}
        if status.state is RetrainState.RUNNING:
            self.store.finish_decision(decision_id, RUNNING_OUTCOME, detail)
            return detail
        try:
            if status.state is RetrainState.SUCCEEDED:
                from platform_components.monitoring.tracking import resolve_version

                after = resolve_version(self.tracking_uri, entry.registered_model, entry.alias)
                detail["champion_version_before"] = champion_version
                detail["champion_version_after"] = after
                detail["promoted"] = after != champion_version
                outcome = "promoted" if detail["promoted"] else "not_promoted"
                if detail["promoted"]:
                    rollout = self._roll_out(entry, after)
                    if rollout is not None:
                        detail["rollout"] = dataclasses.asdict(rollout)
            elif status.state is RetrainState.FAILED:
                outcome = "failed"
            else:
                outcome = "not_started"
            self.store.finish_decision(decision_id, outcome, detail)
            detail["outcome"] = outcome
        finally:
            self.store.release_lease(entry.name, self.holder)
        return detail

    def _finish_running(self, entry: LoopModel, now: float | None) -> list[dict[str, Any]]:
        """Poll retrains still running; close the finished ones (outcome, lease, roll-out)."""
        finished = []
        for row in self.store.decisions(entry.name, limit=20):
            if row.outcome != RUNNING_OUTCOME:
                continue
            run_id = (row.outcome_detail or {}).get("run_id")
            if self.retrainer is None or not run_id:
                continue
            try:
                status = self.retrainer.poll(str(run_id))
            except Exception as error:  # the API is down: poll again next round
                logger.warning("cannot poll retrain %s of %s: %s", run_id, entry.name, error)
                continue
            if status.state is RetrainState.RUNNING:
                continue
            detail = self._settle(entry, row.id, str(row.version), status)
            self._say(f"{entry.name}: retrain {run_id} finished: {detail.get('outcome')}")
            finished.append(detail)
        return finished

    def _log(self, entry: LoopModel, result: MonitorResult, decision: Decision) -> str | None:
        from platform_components.monitoring.report import render_report
        from platform_components.monitoring.tracking import log_result

        alarmed = decision.action is not Action.NONE or bool(result.drifted_features)
        if self._round_log is not None:
            # The fleet's round: every window's metrics go with the round's batches; an alarm also gets
            # its version's monitoring run with the report, below, once per window and verdict: an alarm
            # that stands for the rest of the day is not drawn again every round.
            self._round_log.add(result, model=entry.registered_model)
            key = (entry.name, result.version, result.window_start)
            verdict = (decision.action.value, tuple(result.drifted_features))
            if not alarmed or self._reported.get(key) == verdict:
                return None
            if len(self._reported) > 100_000:
                self._reported.clear()
            self._reported[key] = verdict
        report = None
        if alarmed:
            # An alarm gets its HTML report; a quiet window only its metrics (the 1,000-model round).
            history = self.store.results(entry.name, version=result.version)[:-1][-50:]
            report = render_report(result, history)
        try:
            return log_result(
                self.tracking_uri,
                dataclasses.replace(result, model=entry.registered_model),
                report_html=report,
            )
        except Exception as error:  # logging must not stop the loop; the store has the window
            logger.warning("could not log the window of %s to MLflow: %s", entry.name, error)
            return None
