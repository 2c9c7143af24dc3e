"""The loop's two side effects, each an interface with one implementation per target.

A ``Retrainer`` starts the project's pipeline on the data the policy chose and reports how the run went;
the pipeline trains, registers a challenger and applies the promotion gate (it moves the registry's
``champion`` alias or not). A ``Deployer`` serves the version an alias resolves to. The round never knows
which target it runs on: it calls ``start``/``poll`` and ``ensure``.

Times are event time (Unix seconds of predictions and labels), never the wall clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import pandas as pd


class RetrainState(StrEnum):
    """Where a retrain is."""

    RUNNING = "running"  # submitted, not finished (the round polls it next time)
    SUCCEEDED = "succeeded"  # the pipeline finished; whether it promoted is the registry's alias
    FAILED = "failed"  # the pipeline failed or was refused; ``detail["error"]`` says why
    NOT_STARTED = "not_started"  # nothing ran (no data, no runner configured, the API refused the submit)


@dataclass(frozen=True)
class TrainingData:
    """The rows the policy chose for a retrain.

    Attributes:
        train: labelled rows to train on: the logged input features plus ``label_column``.
        gate: the most recent labelled rows, held out from ``train``; the promotion gate scores the
            challenger and the champion on them (same columns).
        label_column: name of the label column the pipeline expects.
        start, end: event-time span the rows were predicted in (``train`` and ``gate`` together).
        selection: how they were chosen, for the decision log (e.g. ``{"mode": "since_change",
            "change_at": ..., "widened": False, "rows_since_change": 1180}``).
    """

    train: pd.DataFrame
    gate: pd.DataFrame
    label_column: str
    start: float
    end: float
    selection: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RetrainRequest:
    """What a retrainer gets.

    Attributes:
        model: served model name (prediction log, metrics).
        registered_model: MLflow registered model name.
        champion_version: the version serving when the retrain was decided.
        decision_id: the decision row this retrain closes.
        reasons: the triggers that fired (``drift``, ``performance``, ``estimated_performance``, ``age``,
            ``settled``).
        data: the rows to train on and to gate with.
        promotion_margin: the gate's margin (the policy's ``promotion_margin``).
        arguments: extra pipeline arguments declared for the model.
    """

    model: str
    registered_model: str
    champion_version: str
    decision_id: int
    reasons: tuple[str, ...]
    data: TrainingData
    promotion_margin: float
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RetrainStatus:
    """A retrain's state; ``run_id`` identifies it to ``poll``; ``detail`` is JSON-able and recorded."""

    state: RetrainState
    run_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


class Retrainer(Protocol):
    """Starts the pipeline and reports on it (``kfp.local`` locally, the KFP API in the cluster)."""

    def start(self, request: RetrainRequest) -> RetrainStatus:
        """Start a run. A synchronous retrainer returns SUCCEEDED or FAILED; a remote one RUNNING."""
        ...

    def poll(self, run_id: str) -> RetrainStatus:
        """The state of a run ``start`` returned as RUNNING."""
        ...


@dataclass(frozen=True)
class Rollout:
    """What ``Deployer.ensure`` did: the version now serving and whether it changed."""

    model: str
    version: str
    changed: bool
    detail: Mapping[str, Any] = field(default_factory=dict)


class Deployer(Protocol):
    """Serves the version an alias resolves to (our MLServer locally, the Seldon ``Model`` in the cluster)."""

    def serving_version(self, model: str) -> str | None:
        """The version served now, or None when the model is not served."""
        ...

    def ensure(self, model: str, registered_model: str, version: str) -> Rollout:
        """Serve ``version`` of ``registered_model`` as ``model``; a no-op when it already serves it."""
        ...
