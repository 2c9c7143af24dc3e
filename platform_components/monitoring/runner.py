"""Glue for one full check of a model: ingest, find the version and its profile, check, report, log.

Used by ``mlops monitor``, the monitor service's periodic loop and the local demo. The retrain policy is
applied by whoever owns the retrain callable (``policy.RetrainController``); ``check_model`` can run it
right after the check when a controller is passed.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from platform_components.monitoring.monitor import (
    DEFAULT_WINDOW_SECONDS,
    MonitorConfig,
    MonitorResult,
    run_check,
)
from platform_components.monitoring.policy import Decision, RetrainController
from platform_components.monitoring.profile import ReferenceProfile
from platform_components.monitoring.store import MonitorStore

logger = logging.getLogger(__name__)

_PROFILE_CACHE: dict[tuple[str, str, str], ReferenceProfile] = {}
_PROFILE_LOCK = threading.Lock()


@dataclass(frozen=True)
class CheckOutcome:
    """A check's result, the MLflow run it was logged to, and the policy decision when one was taken."""

    result: MonitorResult
    monitoring_run_id: str | None
    decision: Decision | None


def cached_profile(tracking_uri: str, model: str, version: str) -> ReferenceProfile:
    """The version's reference profile, downloaded once per process (a version's profile never changes)."""
    from platform_components.monitoring.tracking import load_reference_profile

    key = (tracking_uri, model, version)
    with _PROFILE_LOCK:
        if key in _PROFILE_CACHE:
            return _PROFILE_CACHE[key]
    profile = load_reference_profile(tracking_uri, model, version)
    with _PROFILE_LOCK:
        _PROFILE_CACHE[key] = profile
    return profile


def check_model(
    store: MonitorStore,
    model: str,
    *,
    state_dir: Path | None,
    tracking_uri: str | None,
    version: str | None = None,
    profile: ReferenceProfile | None = None,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
    config: MonitorConfig | None = None,
    log_to_mlflow: bool = True,
    controller: RetrainController | None = None,
    now: float | None = None,
) -> CheckOutcome:
    """Ingest the model's prediction log, check its version, log to MLflow, optionally apply the policy.

    Args:
        store: the monitor store.
        model: registered model name.
        state_dir: local state dir whose ``predictions/<model>`` log is ingested first (None: skip).
        tracking_uri: MLflow tracking URI for the profile, baseline and logging (None: needs ``profile``).
        version: version number or alias; None: the version with the most recent predictions.
        profile: use this reference profile instead of the version's MLflow artifact.
        window_seconds: window length, ending now.
        config: check settings.
        log_to_mlflow: log metrics and the HTML report to the version's monitoring run.
        controller: apply this retrain policy after the check.
        now: check time (default: the clock).
    """
    from platform_components.monitoring.errors import InvalidInput

    now = time.time() if now is None else now
    if state_dir is not None:
        store.ingest_state_dir(state_dir, model)
    if version is not None and not version.isdigit():
        if tracking_uri is None:
            raise InvalidInput(f"version {version!r} is an alias; pass a tracking URI to resolve it")
        from platform_components.monitoring.tracking import resolve_version

        version = resolve_version(tracking_uri, model, version)
    if version is None:
        versions = store.versions(model)
        if not versions:
            raise InvalidInput(
                f"model {model!r} has no logged predictions under {state_dir}; serve it and send traffic"
            )
        version = versions[-1]
    if profile is None:
        if tracking_uri is None:
            raise InvalidInput(
                "no reference profile: pass profile=... or a tracking URI to read it from MLflow"
            )
        profile = cached_profile(tracking_uri, model, version)
    result = run_check(store, model, version, profile, window_seconds=window_seconds, config=config, now=now)
    run_id = None
    if log_to_mlflow and tracking_uri is not None:
        from platform_components.monitoring.report import render_report
        from platform_components.monitoring.tracking import log_result

        history = store.results(model, version=version)[:-1][-50:]
        run_id = log_result(tracking_uri, result, report_html=render_report(result, history))
    decision = None
    if controller is not None:
        baseline = created = None
        if tracking_uri is not None:
            from platform_components.monitoring.tracking import baseline_metric, model_version_facts

            try:
                baseline = baseline_metric(tracking_uri, model, version, controller.config.performance_metric)
                created = model_version_facts(tracking_uri, model, version)["created_at"]
            except Exception:  # a version unknown to MLflow still gets drift-based decisions
                logger.warning("no baseline for %s v%s; performance and age triggers are off", model, version)
        decision = controller.evaluate(
            model, version, baseline_metric=baseline, model_created_at=created, now=now
        )
    return CheckOutcome(result=result, monitoring_run_id=run_id, decision=decision)
