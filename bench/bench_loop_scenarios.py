"""The scenario matrix: does the loop, with its default policy, recover from each kind of change?

Run on demand (not a test; about 3 minutes a run here)::

    .venv/bin/python bench/bench_loop_scenarios.py [--seeds 3] [--days 30] [--scenarios a,b] [--json]

Per scenario of the example (``examples/credit_default/data.py``) and a no-change control, per seed: a
model of its own on one local platform (MLflow, MLServer, the monitor), its first champion trained by the
example's pipeline on days 0-6, then ``--days`` simulated days of 600 rows from day 7, labels one day late,
the change on day 10 with the example's default ramp. Every day ends with one round of the loop
(``platform_components.loop``) with the default policy. The benchmark reaches the platform only through
its public endpoints (inference, feedback: ``platform_components.simulation``), the registry (to score a
version on the test set) and the round; no scenario name or change day reaches the round.

Definitions (issue 9): the oracle is the example's pipeline trained on five days of full-strength
post-change rows; the test set is five later post-change days from an unused seed; ``final_auc`` and
``oracle_auc`` are ROC AUC on it; the run has recovered on day d when the champion's test-set AUC is at
least ``oracle_auc - 0.03`` and stays so; ``days_to_recover`` is d minus the change day (0 if it never fell
below, null if it never recovered); ``estimated_auc_error`` is the mean |estimated - realised| ROC AUC over
the post-change daily windows. Days are counted from the change day.

Prints a table per run and the goals met; ``--json`` prints one object per run; ``out/bench/loop.html``
plots each run's champion test-set AUC per day against the oracle.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from examples.credit_default import data  # noqa: E402
from platform_components.loop.policy import NOTHING_STARTED  # noqa: E402

CONTROL = "no_change"
SCENARIOS = (CONTROL, *data.SCENARIOS)
CHANGE_DAY = 10
FIRST_DAY = 7
ROWS_PER_DAY = 600
RECOVERY_TOLERANCE = 0.03
GOALS = {
    "control": "no retrain and no promotion",
    "recover": "covariate_shift, concept_shift, market_downturn: days_to_recover <= 5, no harmful promotion",
    "broken_feature": "retrains_on_broken_rows 0, data-quality alert within 1 day",
    "label_prior_shift": "calibration flagged, no harmful promotion",
    "estimate": "covariate_shift: estimated_auc_error <= 0.03",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


class Scorer:
    """Scores registered versions on a test set through the registry (each version loaded once)."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self.cache: dict[tuple[str, str, int], float] = {}

    def __call__(self, model: str, version: str, test: pd.DataFrame, key: int) -> float:
        import mlflow

        cache_key = (model, version, key)
        if cache_key not in self.cache:
            mlflow.set_tracking_uri(self.tracking_uri)
            loaded = mlflow.pyfunc.load_model(f"models:/{model}/{version}")
            scores = np.asarray(loaded.predict(test[list(data.FEATURES)]))
            if scores.ndim == 2:
                scores = scores[:, -1]
            self.cache[cache_key] = auc(test[data.LABEL].to_numpy(), scores.astype(float))
        return self.cache[cache_key]


def scenario_of(name: str) -> str | None:
    return None if name == CONTROL else name


def run_one(platform: Any, pipeline: Any, scenario: str, seed: int, days: int, say) -> dict[str, Any]:
    """One scenario and seed on the running platform (see the module docstring)."""
    from platform_components.loop.local_deployer import LocalDeployer
    from platform_components.loop.models import local_model, local_policy
    from platform_components.loop.retrain import LocalRetrainer
    from platform_components.loop.round import Loop
    from platform_components.monitoring.feedback import FeedbackClient
    from platform_components.monitoring.store import MonitorStore
    from platform_components.monitoring.tracking import resolve_version
    from platform_components.pipelines.runner import run_local
    from platform_components.serving.client import InferenceClient
    from platform_components.simulation import Calendar, Traffic

    name = f"bench-{scenario.replace('_', '-')}-s{seed}"
    state_dir = platform.state.root
    tracking_uri = platform.settings.tracking_uri
    root = state_dir / "pipelines" / name
    change = scenario_of(scenario)
    ramp = data.DEFAULT_RAMP_DAYS
    last_day = FIRST_DAY + days - 1
    calendar = Calendar.ending_before_now(last_day)
    scorer = Scorer(tracking_uri)

    # The test set and the oracle (never seen by the loop).
    test = pd.concat(
        [
            data.generate_day(
                day, ROWS_PER_DAY, scenario=change, drift_start_day=CHANGE_DAY, seed=seed + 1000
            )
            for day in range(last_day + 10, last_day + 15)
        ],
        ignore_index=True,
    )
    full = CHANGE_DAY + ramp
    oracle_rows = pd.concat(
        [
            data.generate_day(
                day, ROWS_PER_DAY, scenario=change, drift_start_day=CHANGE_DAY, seed=seed + 2000
            )
            for day in range(full, full + 5)
        ],
        ignore_index=True,
    )
    oracle_path = root / "oracle.csv"
    oracle_path.parent.mkdir(parents=True, exist_ok=True)
    oracle_rows.to_csv(oracle_path, index=False)
    oracle_auc = None
    if (
        scenario != "broken_feature"
    ):  # no model should learn the broken pipe (the example's cannot: NaN column)
        say(f"  {name}: oracle")
        run_local(
            pipeline,
            {
                "tracking_uri": tracking_uri,
                "model_name": f"oracle-{name}",
                "training_data_path": str(oracle_path),
            },
            pipeline_root=root / "oracle",
        )
        oracle_version = resolve_version(tracking_uri, f"oracle-{name}", "champion")
        oracle_auc = scorer(f"oracle-{name}", oracle_version, test, 0)

    say(f"  {name}: first champion")
    run_local(
        pipeline,
        {
            "tracking_uri": tracking_uri,
            "model_name": name,
            "train_start_day": 0,
            "train_end_day": FIRST_DAY,
            "rows_per_day": ROWS_PER_DAY,
            "seed": seed,
        },
        pipeline_root=root / "first",
    )
    deployer = LocalDeployer(platform)
    deployer.ensure(name, name, resolve_version(tracking_uri, name, "champion"))
    entry = local_model(name, local_policy(state_dir))
    store = MonitorStore.for_state_dir(state_dir)
    loop = Loop(
        store,
        tracking_uri,
        retrainer=LocalRetrainer(pipeline, tracking_uri=tracking_uri, pipeline_root=root),
        deployer=deployer,
        state_dir=state_dir,
        log_to_mlflow=False,
    )
    inference = InferenceClient(platform.settings.inference_url)
    feedback = FeedbackClient(platform.settings.monitor_url)
    traffic = Traffic(inference, feedback, calendar, name, batch_rows=10, label_delay_days=1)
    daily: list[dict[str, Any]] = []
    started = time.perf_counter()
    try:
        for day in range(FIRST_DAY, last_day + 1):
            traffic.deliver_labels(day)
            frame = data.generate_day(
                day, ROWS_PER_DAY, scenario=change, drift_start_day=CHANGE_DAY, seed=seed
            )
            traffic.send_day(day, frame.drop(columns=[data.LABEL]), frame[data.LABEL].astype(int).tolist())
            outcome = loop.run_round(entry)
            decision = outcome.decision
            daily.append(
                {
                    "day": day,
                    "version": outcome.version,
                    "action": None if decision is None else decision.action.value,
                    "reasons": [] if decision is None else decision.reasons,
                    "calibration_flagged": bool(
                        decision is not None and (decision.evidence.get("calibration") or {}).get("flagged")
                    ),
                    "test_auc": scorer(name, str(outcome.version), test, 0),
                }
            )
        decisions = store.decisions(name)
        windows = store.results(name)
    finally:
        inference.close()
        feedback.close()
        store.close()
    return summarise(
        scenario, seed, name, daily, decisions, windows, calendar, oracle_auc, time.perf_counter() - started
    )


def summarise(scenario, seed, name, daily, decisions, windows, calendar, oracle_auc, seconds) -> dict:
    """The run's row of the matrix (see the module docstring for each definition)."""
    changed = scenario != CONTROL

    def after_change(day: int | None) -> int | None:
        return None if day is None or not changed else day - CHANGE_DAY

    alarm_day = next((item["day"] for item in daily if item["day"] >= CHANGE_DAY and item["reasons"]), None)
    quality_day = next(
        (item["day"] for item in daily if item["day"] >= CHANGE_DAY and item["action"] == "incident"), None
    )
    calibration_day = next(
        (item["day"] for item in daily if item["day"] >= CHANGE_DAY and item["calibration_flagged"]), None
    )
    started = [row for row in decisions if row.action == "retrain" and row.outcome not in NOTHING_STARTED]
    broken_start = calendar.start(CHANGE_DAY) if scenario == "broken_feature" else math.inf
    on_broken = 0
    for row in started:
        span = (row.evidence.get("selection") or {}).get("train_span") or [0, 0]
        gate = (row.evidence.get("selection") or {}).get("gate_span") or [0, 0]
        if max(span[1], gate[1]) >= broken_start:
            on_broken += 1
    promotions = [row for row in started if row.outcome == "promoted"]
    by_version = {str(item["version"]): item["test_auc"] for item in daily}
    harmful = 0
    for row in promotions:
        detail = row.outcome_detail or {}
        before, after = str(detail.get("champion_version_before")), str(detail.get("champion_version_after"))
        if before in by_version and after in by_version and by_version[after] < by_version[before] - 1e-9:
            harmful += 1
    target = None if oracle_auc is None else oracle_auc - RECOVERY_TOLERANCE
    post = [item for item in daily if item["day"] >= CHANGE_DAY]
    days_to_recover: int | None = None
    if changed and post and target is not None:
        if all(item["test_auc"] >= target for item in post):
            days_to_recover = 0
        else:
            for index, item in enumerate(post):
                if all(later["test_auc"] >= target for later in post[index:]):
                    days_to_recover = item["day"] - CHANGE_DAY
                    break
    errors = []
    change_start = calendar.start(CHANGE_DAY)
    for window in windows:
        estimated = ((window.get("estimated") or {}).get("roc_auc") or {}).get("value")
        realised = (window.get("performance") or {}).get("roc_auc")
        if estimated is not None and realised is not None and float(window["window_start"]) >= change_start:
            errors.append(abs(float(estimated) - float(realised)))
    return {
        "scenario": scenario,
        "seed": seed,
        "model": name,
        "days_to_first_alarm": after_change(alarm_day),
        "days_to_quality_alert": after_change(quality_day),
        "calibration_flagged_day": after_change(calibration_day),
        "retrains_started": len(started),
        "retrains_on_broken_rows": on_broken,
        "promotions": len(promotions),
        "harmful_promotions": harmful,
        "final_auc": round(daily[-1]["test_auc"], 4) if daily else None,
        "oracle_auc": None if oracle_auc is None else round(oracle_auc, 4),
        "days_to_recover": days_to_recover,
        "estimated_auc_error": round(float(np.mean(errors)), 4) if errors and changed else None,
        "daily_test_auc": [round(item["test_auc"], 4) for item in daily],
        "seconds": round(seconds, 1),
    }


def goals(rows: list[dict[str, Any]]) -> list[tuple[str, bool, str]]:
    """Each goal of issue 9 with whether every run meets it and the figures behind it."""
    by = lambda name: [row for row in rows if row["scenario"] == name]  # noqa: E731
    checks = []
    control = by(CONTROL)
    if control:
        ok = all(row["retrains_started"] == 0 and row["promotions"] == 0 for row in control)
        checks.append(("control", ok, f"retrains {[row['retrains_started'] for row in control]}"))
    recover = [
        row for row in rows if row["scenario"] in ("covariate_shift", "concept_shift", "market_downturn")
    ]
    if recover:
        ok = all(
            row["days_to_recover"] is not None
            and row["days_to_recover"] <= 5
            and row["harmful_promotions"] == 0
            for row in recover
        )
        checks.append(
            (
                "recover",
                ok,
                ", ".join(f"{r['scenario']}/{r['seed']}: {r['days_to_recover']}" for r in recover),
            )
        )
    broken = by("broken_feature")
    if broken:
        ok = all(
            row["retrains_on_broken_rows"] == 0
            and row["days_to_quality_alert"] is not None
            and row["days_to_quality_alert"] <= 1
            for row in broken
        )
        checks.append(
            ("broken_feature", ok, f"alert days {[row['days_to_quality_alert'] for row in broken]}")
        )
    prior = by("label_prior_shift")
    if prior:
        ok = all(
            row["calibration_flagged_day"] is not None and row["harmful_promotions"] == 0 for row in prior
        )
        checks.append(
            ("label_prior_shift", ok, f"flagged days {[row['calibration_flagged_day'] for row in prior]}")
        )
    covariate = by("covariate_shift")
    if covariate:
        values = [row["estimated_auc_error"] for row in covariate if row["estimated_auc_error"] is not None]
        ok = bool(values) and float(np.mean(values)) <= 0.03
        checks.append(("estimate", ok, f"mean error {np.mean(values) if values else float('nan'):.4f}"))
    return checks


def write_html(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = sorted({row["scenario"] for row in rows}, key=SCENARIOS.index)
    figure, axes = plt.subplots(len(scenarios), 1, figsize=(9, 2.6 * len(scenarios)), squeeze=False)
    for axis, scenario in zip(axes[:, 0], scenarios, strict=True):
        for row in (row for row in rows if row["scenario"] == scenario):
            days = range(FIRST_DAY, FIRST_DAY + len(row["daily_test_auc"]))
            line = axis.plot(list(days), row["daily_test_auc"], marker=".", label=f"seed {row['seed']}")[0]
            if row["oracle_auc"] is not None:
                axis.axhline(row["oracle_auc"] - RECOVERY_TOLERANCE, color=line.get_color(), linestyle=":")
        axis.axvline(CHANGE_DAY, color="grey", linestyle="--")
        axis.set_title(f"{scenario}: champion's test-set ROC AUC (dotted: oracle - {RECOVERY_TOLERANCE})")
        axis.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    columns = [key for key in rows[0] if key not in ("daily_test_auc", "model")]
    table = "".join("<tr>" + "".join(f"<td>{row[key]}</td>" for key in columns) + "</tr>" for row in rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "<!doctype html><meta charset='utf-8'><title>loop scenarios</title>"
        "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:2px 5px;font-size:12px}"
        "table{border-collapse:collapse}</style><h1>The loop's scenario matrix</h1>"
        f"<img src='data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}'>"
        f"<table><tr>{''.join(f'<th>{key}</th>' for key in columns)}</tr>{table}</table>",
        encoding="utf-8",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds per scenario (default 3)")
    parser.add_argument("--days", type=int, default=30, help="simulated days from day 7 (default 30)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset")
    parser.add_argument("--json", action="store_true", help="print one JSON object per run")
    parser.add_argument("--html", type=Path, default=ROOT / "out" / "bench" / "loop.html")
    arguments = parser.parse_args(argv)
    chosen = [name.strip() for name in arguments.scenarios.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        parser.error(f"--scenarios: unknown {unknown}; use some of {', '.join(SCENARIOS)}")

    from platform_components.local.platform import LocalPlatform
    from platform_components.pipelines.runner import load_pipeline
    from platform_components.settings import LocalSettings

    say = (lambda line: print(line, file=sys.stderr)) if arguments.json else print
    # SIGTERM (a timeout, Ctrl-C from a supervisor) must still stop the platform this run started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    pipeline = load_pipeline(f"{ROOT / 'examples/credit_default/pipeline.py'}:credit_default_pipeline")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mlops-bench-loop-") as folder:
        ports = {name: free_port() for name in LocalSettings.model_fields if name.endswith("_port")}
        platform = LocalPlatform(LocalSettings(state_dir=Path(folder) / "state", **ports))
        say(f"starting a local platform in {folder}")
        platform.up()
        try:
            total = len(chosen) * arguments.seeds
            for index, (scenario, seed) in enumerate(
                (scenario, seed) for scenario in chosen for seed in range(arguments.seeds)
            ):
                say(f"[{index + 1}/{total}] {scenario}, seed {seed}")
                row = run_one(platform, pipeline, scenario, seed, arguments.days, say)
                rows.append(row)
                if arguments.json:
                    print(json.dumps({k: v for k, v in row.items() if k != "daily_test_auc"}), flush=True)
                else:
                    say(
                        "  "
                        + ", ".join(
                            f"{k} {v}" for k, v in row.items() if k not in ("daily_test_auc", "model")
                        )
                    )
        finally:
            platform.down()
    checks = goals(rows)
    write_html(rows, arguments.html)
    say("")
    say("goal                 met   figures")
    for goal, ok, figures in checks:
        say(f"{goal:<20} {'yes' if ok else 'NO ':<5} {figures}   ({GOALS[goal]})")
    say(f"plots: {arguments.html}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
