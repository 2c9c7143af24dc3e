"""The loop on the local target: check a served model, apply the retrain policy, retrain, roll over.

``LocalRetrain`` is the retrain step of the local target: it runs the project's Kubeflow pipeline with
``kfp.local`` on the recent labelled production rows, and when the pipeline's gate moved ``champion`` it
deploys the new version, so serving rolls over. ``run_round`` is one turn of the loop (ingest the prediction
log, check the serving version, decide, maybe retrain); ``mlops loop --local`` runs it on an interval, and
``mlops demo`` runs it once per simulated day.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platform_components.local.platform import LocalPlatform
from platform_components.monitoring.policy import RetrainController, RetrainRequest
from platform_components.monitoring.runner import CheckOutcome, check_model
from platform_components.monitoring.store import MonitorStore

logger = logging.getLogger(__name__)


def pipeline_summary(output: Mapping[str, Any]) -> dict[str, Any]:
    """What callers report of a champion/challenger pipeline's result (see the example's promote step)."""
    return {
        "challenger_version": str(output["challenger_version"]),
        "champion_version": str(output["champion_version_after"]),
        "promoted": bool(output["promoted"]),
        "challenger_roc_auc": (output.get("challenger_metrics") or {}).get("roc_auc"),
        "champion_roc_auc": (output.get("champion_metrics") or {}).get("roc_auc"),
        "reason": output.get("reason", ""),
    }


@dataclass
class LocalRetrain:
    """The retrain callable of the local target (see the module docstring).

    Attributes:
        platform: the running local platform (its MLflow and serving).
        pipeline: the project's ``@dsl.pipeline``; it takes ``training_data_path`` (a CSV of labelled
            rows) and returns the champion/challenger decision (see ``pipeline_summary``).
        model_name: registered model name, also the served name.
        pipeline_root: folder for the runs' artifacts and the exported rows.
        arguments: extra pipeline arguments (e.g. ``seed``).
        since: optional: only rows predicted at or after this Unix time train the challenger (e.g. the first
            drift signal: older rows describe a world that is gone).
        runs: the summaries of every pipeline run made, oldest first.
    """

    platform: LocalPlatform
    pipeline: Any
    model_name: str
    pipeline_root: Path
    arguments: dict[str, Any] = field(default_factory=dict)
    since: Callable[[], float | None] = lambda: None
    runs: list[dict[str, Any]] = field(default_factory=list)

    def run_pipeline(self, arguments: Mapping[str, Any], why: str) -> dict[str, Any]:
        """Run the pipeline locally with the platform's tracking URI; record and return its summary."""
        from platform_components.pipelines.runner import run_local

        inputs = self.pipeline.component_spec.inputs or {}
        given = {"tracking_uri": self.platform.settings.tracking_uri, "model_name": self.model_name}
        given.update(self.arguments)
        given.update(arguments)
        run = run_local(
            self.pipeline,
            {name: value for name, value in given.items() if name in inputs},
            pipeline_root=self.pipeline_root,
        )
        summary = pipeline_summary(run.output)
        summary["why"] = why
        summary["seconds"] = round(run.duration_seconds, 1)
        self.runs.append(summary)
        return summary

    def __call__(self, request: RetrainRequest) -> Mapping[str, Any]:
        rows = request.labelled_rows
        since = self.since()
        if since is not None and "timestamp" in rows:
            rows = rows[rows["timestamp"] >= since]
        if rows.empty:
            return {"outcome": "no labelled rows"}
        path = self.pipeline_root / f"retrain-{request.decision_id}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows.drop(columns=["timestamp"], errors="ignore").to_csv(path, index=False)
        logger.info("retraining %s on %d labelled rows (%s)", self.model_name, len(rows), request.reasons)
        summary = self.run_pipeline(
            {"training_data_path": str(path)}, why=f"retrain: {', '.join(request.reasons)}"
        )
        summary["training_rows"] = len(rows)
        if summary["promoted"]:
            deployment = self.platform.deploy(self.model_name, "champion")
            summary["deployed_version"] = deployment.version
            return {"outcome": "promoted", **summary}
        return {"outcome": "not_promoted", **summary}


def run_round(
    platform: LocalPlatform,
    store: MonitorStore,
    controller: RetrainController,
    model_name: str,
    *,
    window_seconds: float,
    now: float | None = None,
) -> CheckOutcome:
    """One turn of the loop for the version the platform serves now."""
    deployments = platform.state.read_deployments()
    if model_name not in deployments:
        from platform_components.errors import LocalTargetError

        raise LocalTargetError(
            f"model {model_name!r} is not deployed in {platform.state.root}; "
            f"deploy it first: `mlops deploy {model_name} --alias champion`"
        )
    return check_model(
        store,
        model_name,
        state_dir=platform.state.root,
        tracking_uri=platform.settings.tracking_uri,
        version=str(deployments[model_name]["version"]),
        window_seconds=window_seconds,
        controller=controller,
        now=now,
    )
