"""`mlops demo`: the whole loop on the local target, from nothing to a retrained champion.

The demo starts the local platform, trains the example project's first champion with its Kubeflow pipeline
(``kfp.local``), serves it on MLServer, then simulates days of production traffic with a drift scenario:
predictions flow through the V2 inference endpoint, ground-truth labels arrive a day late through the
feedback endpoint, and every simulated day ends with one round of the loop (``platform_components.loop``):
check, decide, retrain on the rows the policy chooses, gate on the newest labelled rows, roll out.

Everything runs on real processes with the product's default policy (or ``<state-dir>/policy.yaml``, as
``mlops loop --local`` reads it). The only simulated thing is the calendar: predictions and labels carry
event times (``platform_components.simulation``), so a simulated day is a day to the policy's window,
cool-down and look-back however fast the demo runs.
"""

from __future__ import annotations

import base64
import contextlib
import html
import importlib.util
import io
import json
import logging
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import click

from platform_components.errors import PlatformError
from platform_components.settings import LocalSettings

logger = logging.getLogger(__name__)

MODEL_NAME = "credit-default"
DEFAULT_PROJECT = Path("examples/credit_default")
DEMO_MARKER = ".mlops-demo"
EVENT_ORDER = (
    "deploy",
    "drift",
    "accuracy",
    "incident",
    "waiting",
    "retrain",
    "no-promotion",
    "promotion",
    "recovered",
)


@dataclass
class DemoOptions:
    """What the demo simulates (the scenario and its calendar; the loop's policy is the product's).

    Attributes:
        state_dir: the local target's state folder (the demo uses its own, wiped at start unless ``resume``).
        project_dir: the example project (``data.py`` and ``pipeline.py``).
        scenario: drift scenario of the example's data generator.
        first_day: first simulated production day (the first champion trains on days before it).
        days: simulated production days.
        drift_day: the day the scenario starts.
        ramp_days: days the scenario takes to reach full strength (a downturn arrives fast).
        rows_per_day: production rows per day.
        batch_rows: rows per inference request.
        label_delay_days: labels of day d arrive on day d + delay.
        seed: seed of the data generator and of the first training.
        keep: leave the platform running at the end.
        resume: keep the state folder from an earlier run instead of starting clean.
    """

    state_dir: Path = Path(".mlops/demo")
    project_dir: Path = DEFAULT_PROJECT
    scenario: str = "market_downturn"
    first_day: int = 7
    days: int = 12
    drift_day: int = 10
    ramp_days: int = 1
    rows_per_day: int = 600
    batch_rows: int = 10
    label_delay_days: int = 1
    seed: int = 0
    keep: bool = False
    resume: bool = False


@dataclass
class DayRecord:
    """What happened on one simulated day.

    ``drift_*`` and ``estimated_roc_auc`` are of the day's own window; ``accuracy`` and ``roc_auc`` are
    realised on the window whose labels arrived that day (the day before, with labels a day late).
    """

    day: int
    version: str
    requests: int
    rows: int
    labels_submitted: int
    drift_share: float | None = None
    drifted_features: list[str] = field(default_factory=list)
    feature_psi: dict[str, float] = field(default_factory=dict)
    estimated_roc_auc: float | None = None
    accuracy: float | None = None
    roc_auc: float | None = None
    labelled_rows: int = 0
    decision: str = "none"
    reasons: list[str] = field(default_factory=list)
    outcome: str | None = None
    seconds: float = 0.0


@dataclass
class Event:
    """One line of the timeline."""

    day: int
    kind: str
    text: str


@dataclass
class DemoResult:
    """What the demo did and where its time went."""

    days: list[DayRecord]
    events: list[Event]
    versions: list[dict[str, Any]]
    endpoints: dict[str, str]
    timings: dict[str, float]
    report_path: str
    champion_version: str
    policy: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Stopwatch:
    """Accumulates wall time per stage, for "where time goes"."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


def _load_module(path: Path, name: str) -> ModuleType:
    """Import a project file by path: the example is a folder a team copies, not a package of ours."""
    if not path.is_file():
        raise PlatformError(
            f"project file {path} not found; pass --project pointing at examples/credit_default"
        )
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PlatformError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_demo(options: DemoOptions, *, say: Callable[[str], None] = print) -> DemoResult:
    """Run the loop; see the module docstring. Returns what happened; writes the HTML report."""
    from platform_components.local.platform import LocalPlatform
    from platform_components.loop.local_deployer import LocalDeployer
    from platform_components.loop.models import local_model, local_policy
    from platform_components.loop.retrain import LocalRetrainer
    from platform_components.loop.round import Loop
    from platform_components.monitoring.feedback import FeedbackClient
    from platform_components.monitoring.store import MonitorStore
    from platform_components.monitoring.tracking import resolve_version
    from platform_components.pipelines.runner import load_pipeline
    from platform_components.serving.client import InferenceClient
    from platform_components.simulation import Calendar, Traffic

    watch = _Stopwatch()
    project = options.project_dir.resolve()
    data = _load_module(project / "data.py", "credit_default_demo_data")
    pipeline = load_pipeline(f"{project / 'pipeline.py'}:credit_default_pipeline")
    state_dir = options.state_dir.resolve()

    settings = LocalSettings.from_env(state_dir=state_dir)
    platform = LocalPlatform(settings, progress=lambda line: say(f"  {line}"))
    if not options.resume and state_dir.exists():
        _check_wipeable(state_dir)
        with watch.stage("clean state"):
            say(f"starting clean: stopping anything running in {state_dir} and removing it")
            platform.down()
            shutil.rmtree(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / DEMO_MARKER).write_text("made by `mlops demo`; the next demo run may wipe this folder\n")
    entry = local_model(MODEL_NAME, local_policy(state_dir))
    policy = entry.policy
    last_day = options.first_day + options.days - 1
    calendar = Calendar.ending_before_now(last_day)

    say(f"[1/5] starting the local platform in {state_dir}")
    with watch.stage("platform up"):
        platform.up()
    endpoints = platform.endpoints()
    tracking_uri = platform.settings.tracking_uri
    days: list[DayRecord] = []
    events: list[Event] = []
    retrainer = LocalRetrainer(pipeline, tracking_uri=tracking_uri, pipeline_root=state_dir / "pipelines")
    deployer = LocalDeployer(platform)
    versions: list[dict[str, Any]] = []

    try:
        say(
            "[2/5] training the first champion with the Kubeflow pipeline "
            f"(kfp.local, days 0-{options.first_day - 1})"
        )
        with watch.stage("pipeline runs"):
            first = first_champion(
                pipeline,
                {
                    "tracking_uri": tracking_uri,
                    "model_name": MODEL_NAME,
                    "train_start_day": 0,
                    "train_end_day": options.first_day,
                    "rows_per_day": options.rows_per_day,
                    "seed": options.seed,
                },
                pipeline_root=state_dir / "pipelines",
            )
        versions.append(first)
        say(
            f"  registered version {first['challenger_version']}; "
            f"champion is now version {first['champion_version']}"
        )

        say(f"[3/5] deploying {MODEL_NAME}@champion on MLServer")
        with watch.stage("deploys"):
            rollout = deployer.ensure(
                MODEL_NAME, MODEL_NAME, resolve_version(tracking_uri, MODEL_NAME, "champion")
            )
        current = rollout.version
        events.append(
            Event(
                options.first_day,
                "deploy",
                f"version {current} serving at {endpoints.inference_url}/v2/models/{MODEL_NAME}/infer",
            )
        )
        say(
            f"[4/5] simulating {options.days} days of traffic, scenario '{options.scenario}' from day "
            f"{options.drift_day}; labels arrive {options.label_delay_days} day(s) late; one loop round a "
            f"day with the default policy (window {policy.window / 86400:g} d, cool-down "
            f"{policy.cooldown / 86400:g} d, {policy.drift_windows_required} drifted windows to retrain)"
        )
        store = MonitorStore.for_state_dir(state_dir)
        loop = Loop(
            store,
            tracking_uri,
            retrainer=retrainer,
            deployer=deployer,
            state_dir=state_dir,
            say=lambda line: say(f"  {line}"),
        )
        inference = InferenceClient(endpoints.inference_url)
        feedback = FeedbackClient(endpoints.monitor_url)
        traffic = Traffic(
            inference,
            feedback,
            calendar,
            MODEL_NAME,
            batch_rows=options.batch_rows,
            label_delay_days=options.label_delay_days,
        )
        story = _Story(events, policy.max_performance_drop)
        try:
            for day in range(options.first_day, last_day + 1):
                started = time.perf_counter()
                with watch.stage("labels"):
                    submitted = traffic.deliver_labels(day)
                frame = data.generate_day(
                    day,
                    options.rows_per_day,
                    scenario=options.scenario,
                    drift_start_day=options.drift_day,
                    ramp_days=options.ramp_days,
                    seed=options.seed,
                )
                with watch.stage("traffic"):
                    requests = traffic.send_day(
                        day, frame.drop(columns=[data.LABEL]), frame[data.LABEL].astype(int).tolist()
                    )
                record = DayRecord(
                    day=day, version=current, requests=requests, rows=len(frame), labels_submitted=submitted
                )
                with watch.stage("loop rounds"):
                    outcome = loop.run_round(entry)
                _fill(record, outcome, store, calendar.start(day - options.label_delay_days))
                for finished in [*outcome.finished, *([outcome.retrain] if outcome.retrain else [])]:
                    if finished.get("outcome") in ("promoted", "not_promoted"):
                        reasons = outcome.decision.reasons if outcome.decision else []
                        versions.append(_version_row(finished, why=f"retrain: {'+'.join(reasons)}"))
                story.tell(record, outcome, baseline=_baseline(loop, entry, record.version))
                if outcome.version:
                    current = outcome.version
                record.seconds = round(time.perf_counter() - started, 2)
                days.append(record)
                say(_day_line(record))
        finally:
            inference.close()
            feedback.close()
            store.close()
        story.recovery(days, current, baseline=_baseline(loop, entry, current))
    finally:
        if not options.keep:
            say("[5/5] stopping the local platform (use --keep to leave it running)")
            with watch.stage("platform down"):
                platform.down()
        else:
            say(
                "[5/5] leaving the platform running (--keep); stop it with "
                f"`mlops down --local --state-dir {state_dir}`"
            )

    # Within a day, the story's order: what was seen, then what was done about it.
    events.sort(key=lambda event: (event.day, EVENT_ORDER.index(event.kind)))
    report = state_dir / "reports" / "demo.html"
    write_report(report, days, events, versions)
    return DemoResult(
        days=days,
        events=events,
        versions=[_plain(version) for version in versions],
        endpoints=asdict(endpoints),
        timings={name: round(seconds, 1) for name, seconds in watch.seconds.items()},
        report_path=str(report),
        champion_version=current,
        policy=policy.model_dump(),
    )


def _baseline(loop: Any, entry: Any, version: str) -> float | None:
    from platform_components.loop.round import holdout_baseline

    return holdout_baseline(loop.tracking_uri, entry.registered_model, version, ("roc_auc",)).get("roc_auc")


def first_champion(pipeline: Any, arguments: dict[str, Any], *, pipeline_root: Path) -> dict[str, Any]:
    """Train and register the first version with the project's pipeline (kfp.local): its table row."""
    from platform_components.pipelines.runner import run_local

    run = run_local(pipeline, arguments, pipeline_root=pipeline_root)
    summary = run.outputs["Output"] if set(run.outputs) == {"Output"} else run.outputs
    return _version_row(
        {"summary": summary, "seconds": round(run.duration_seconds, 1)}, why="initial training"
    )


def _version_row(detail: dict[str, Any], *, why: str = "retrain") -> dict[str, Any]:
    """One row of the versions table from a finished retrain's detail (the pipeline's summary in it)."""
    summary = detail.get("summary") or {}
    return {
        "challenger_version": str(summary.get("challenger_version", "")),
        "champion_version": str(summary.get("champion_version_after", "")),
        "promoted": bool(summary.get("promoted")),
        "challenger_roc_auc": (summary.get("challenger_metrics") or {}).get("roc_auc"),
        "champion_roc_auc": (summary.get("champion_metrics") or {}).get("roc_auc"),
        "reason": summary.get("reason", ""),
        "why": why,
        "train_rows": detail.get("train_rows"),
        "gate_rows": detail.get("gate_rows"),
        "seconds": detail.get("seconds"),
    }


class _Story:
    """Turns rounds into the timeline's events, each the first of its kind (promotions every time)."""

    def __init__(self, events: list[Event], allowed_drop: float) -> None:
        self.events, self.allowed_drop = events, allowed_drop
        self.seen: set[str] = set()

    def _once(self, day: int, kind: str, text: str) -> None:
        if kind not in self.seen:
            self.seen.add(kind)
            self.events.append(Event(day, kind, text))

    def tell(self, record: DayRecord, outcome: Any, *, baseline: float | None) -> None:
        day = record.day
        if record.drifted_features:
            self._once(
                day,
                "drift",
                f"drift detected on version {record.version}: {', '.join(record.drifted_features)}",
            )
        if (
            record.roc_auc is not None
            and baseline is not None
            and record.roc_auc < baseline - self.allowed_drop
        ):
            self._once(
                day,
                "accuracy",
                f"ROC AUC fell to {record.roc_auc:.3f} on {record.labelled_rows} labelled rows "
                f"(training holdout {baseline:.3f})",
            )
        decision = outcome.decision
        if decision is not None and decision.action.value == "incident":
            broken = decision.evidence.get("quality", {}).get("broken_features", {})
            self._once(
                day,
                "incident",
                "data-quality incident, champion kept: "
                + "; ".join(f"{name} {why}" for name, why in broken.items()),
            )
        if outcome.retrain and outcome.retrain.get("state") == "waiting_for_rows":
            self._once(
                day, "waiting", f"retrain waits for rows since the change: {outcome.retrain['reason']}"
            )
        for detail in [*outcome.finished, *([outcome.retrain] if outcome.retrain else [])]:
            if detail.get("outcome") not in ("promoted", "not_promoted"):
                continue
            row = _version_row(detail)
            self.events.append(
                Event(
                    day,
                    "retrain",
                    f"retrain ({', '.join(decision.reasons) if decision else 'running'}) on "
                    f"{detail.get('train_rows')} rows, gated on the newest {detail.get('gate_rows')}; "
                    f"challenger version {row['challenger_version']}",
                )
            )
            if detail["outcome"] == "promoted":
                self.events.append(
                    Event(
                        day,
                        "promotion",
                        f"version {detail.get('champion_version_after')} is the new champion (ROC AUC "
                        f"{_fmt(row['challenger_roc_auc'])} vs {_fmt(row['champion_roc_auc'])} "
                        "on the gate rows); serving rolled over",
                    )
                )
            else:
                self.events.append(
                    Event(
                        day,
                        "no-promotion",
                        f"challenger {row['challenger_version']} kept out, champion kept: "
                        f"{row['reason'] or 'not better on the gate rows'}",
                    )
                )

    def recovery(self, days: list[DayRecord], champion: str, *, baseline: float | None) -> None:
        """The first day the new champion's realised ROC AUC is within the allowed drop of its holdout."""
        if baseline is None or not days or champion == days[0].version:
            return
        for record in days:
            if (
                record.version == champion
                and record.roc_auc is not None
                and record.roc_auc >= baseline - self.allowed_drop
            ):
                self._once(
                    record.day,
                    "recovered",
                    f"ROC AUC {record.roc_auc:.3f} on version {champion} (its holdout: {baseline:.3f})",
                )
                return


def _check_wipeable(state_dir: Path) -> None:
    """Refuse to wipe a folder the demo did not make: `--state-dir .mlops` would delete a user's registry."""
    if (state_dir / DEMO_MARKER).is_file() or not any(state_dir.iterdir()):
        return
    raise PlatformError(
        f"--state-dir {state_dir} exists and was not made by `mlops demo`; the demo starts by wiping its "
        "state folder, so it will not touch this one. Pass a new folder (default .mlops/demo), or --resume "
        "to run on top of it"
    )


def _plain(value: Any) -> Any:
    """JSON-able copy (numpy numbers and paths become plain values)."""
    return json.loads(
        json.dumps(value, default=lambda item: item.item() if hasattr(item, "item") else str(item))
    )


def _fill(record: DayRecord, outcome: Any, store: Any, labelled_window_start: float) -> None:
    """The day's own window (drift, estimate) and the window whose labels arrived today (realised)."""
    if outcome.result is not None:
        result = outcome.result.to_dict()
        record.drift_share = result.get("drift_share")
        record.drifted_features = list(result.get("drifted_features") or [])
        for name, feature in (result.get("features") or {}).items():
            if feature.get("psi") is not None:
                record.feature_psi[name] = float(feature["psi"])
        estimated = (result.get("estimated") or {}).get("roc_auc") or {}
        record.estimated_roc_auc = estimated.get("value")
    labelled = [
        item
        for item in store.results(outcome.model, version=record.version, since=labelled_window_start)
        if abs(float(item.get("window_start", -1)) - labelled_window_start) < 1.0
    ]
    if labelled:
        performance = labelled[-1].get("performance") or {}
        record.accuracy = performance.get("accuracy")
        record.roc_auc = performance.get("roc_auc")
        record.labelled_rows = int(labelled[-1].get("labelled_rows") or 0)
    if outcome.decision is not None:
        record.decision = outcome.decision.action.value
        record.reasons = list(outcome.decision.reasons)
        record.outcome = outcome.decision.blocked_by or (outcome.retrain or {}).get("outcome")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "  -  " if value is None else f"{value:.{digits}f}"


def _day_line(record: DayRecord) -> str:
    drifted = ",".join(record.drifted_features[:3]) + ("..." if len(record.drifted_features) > 3 else "")
    decision = record.decision if not record.reasons else f"{record.decision} ({'+'.join(record.reasons)})"
    return (
        f"  day {record.day:>2}  v{record.version:<2} {record.requests:>4} req  "
        f"{record.labels_submitted:>4} labels  "
        f"drift {_fmt(record.drift_share, 2)} [{drifted or '-'}]  acc {_fmt(record.accuracy)}  "
        f"auc {_fmt(record.roc_auc)}  ({record.labelled_rows} labelled)  policy: {decision}"
    )


def _figure_png(draw: Callable[[Any], None], *, width: float = 9, height: float = 3.4) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(width, height))
    draw(axis)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def write_report(
    path: Path, days: list[DayRecord], events: list[Event], versions: list[dict[str, Any]]
) -> Path:
    """A single HTML file with the plots (performance over time, drift per feature) and the timeline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    day_numbers = [record.day for record in days]

    def performance(axis: Any) -> None:
        for name in ("roc_auc", "accuracy"):
            values = [getattr(record, name) for record in days]
            axis.plot(day_numbers, [float("nan") if v is None else v for v in values], marker="o", label=name)
        for event in events:
            if event.kind in {"drift", "promotion"}:
                axis.axvline(event.day, linestyle="--", color="grey" if event.kind == "drift" else "green")
                axis.annotate(event.kind, (event.day, axis.get_ylim()[0]), rotation=90, fontsize=8)
        axis.set_xlabel("day")
        axis.set_ylabel("on labelled rows")
        axis.set_title("Performance over time (labels arrive late)")
        axis.legend(loc="lower left")

    features = sorted({name for record in days for name in record.feature_psi})

    def drift(axis: Any) -> None:
        import numpy as np

        matrix = np.array([[record.feature_psi.get(name, np.nan) for record in days] for name in features])
        image = axis.imshow(matrix if matrix.size else np.zeros((1, 1)), aspect="auto", cmap="magma_r")
        axis.set_yticks(range(len(features)), features, fontsize=8)
        axis.set_xticks(range(len(days)), day_numbers, fontsize=8)
        axis.set_xlabel("day")
        axis.set_title("Drift per feature (PSI against the serving version's reference profile)")
        axis.figure.colorbar(image, ax=axis)

    plots = [_figure_png(performance), _figure_png(drift, height=max(3.0, 0.3 * len(features) + 1.5))]
    rows = "".join(
        f"<tr><td>{r.day}</td><td>{html.escape(r.version)}</td><td>{r.requests}</td><td>{r.labels_submitted}</td>"
        f"<td>{_fmt(r.drift_share, 2)}</td><td>{html.escape(', '.join(r.drifted_features))}</td>"
        f"<td>{_fmt(r.accuracy)}</td><td>{_fmt(r.roc_auc)}</td><td>{r.labelled_rows}</td>"
        f"<td>{html.escape(r.decision)} {html.escape('+'.join(r.reasons))}</td></tr>"
        for r in days
    )
    timeline = "".join(
        f"<li><b>day {e.day}</b> [{html.escape(e.kind)}] {html.escape(e.text)}</li>" for e in events
    )
    version_rows = "".join(
        f"<tr><td>{html.escape(str(v.get('challenger_version')))}</td><td>{html.escape(str(v.get('why')))}</td>"
        f"<td>{_fmt(v.get('challenger_roc_auc'))}</td><td>{_fmt(v.get('champion_roc_auc'))}</td>"
        f"<td>{'yes' if v.get('promoted') else 'no'}</td><td>{v.get('seconds')}</td></tr>"
        for v in versions
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>mlops-platform demo</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px}}</style></head><body>
<h1>mlops-platform demo: the loop on the local target</h1>
<h2>Timeline</h2><ol>{timeline}</ol>
<img src="data:image/png;base64,{plots[0]}" alt="performance over time">
<img src="data:image/png;base64,{plots[1]}" alt="drift per feature">
<h2>Model versions</h2><table><tr><th>version</th><th>why</th><th>challenger ROC AUC</th>
<th>champion ROC AUC (same holdout)</th><th>promoted</th><th>pipeline s</th></tr>{version_rows}</table>
<h2>Days</h2><table><tr><th>day</th><th>version</th><th>requests</th><th>labels</th><th>drift share</th>
<th>drifted features</th><th>accuracy</th><th>ROC AUC</th><th>labelled rows</th><th>policy</th></tr>
{rows}</table>
</body></html>"""
    path.write_text(page, encoding="utf-8")
    return path


def print_summary(result: DemoResult, say: Callable[[str], None] = print) -> None:
    say("")
    say("Timeline")
    for event in result.events:
        say(f"  day {event.day:>2}  {event.kind:<13} {event.text}")
    say("")
    say("Model versions")
    for version in result.versions:
        say(
            f"  v{version.get('challenger_version')}: {version.get('why')}; challenger ROC AUC "
            f"{_fmt(version.get('challenger_roc_auc'))}, champion {_fmt(version.get('champion_roc_auc'))}, "
            f"promoted: {'yes' if version.get('promoted') else 'no'}"
        )
    say(f"  champion now: version {result.champion_version}")
    say("")
    say("Endpoints")
    say(f"  MLflow UI        {result.endpoints['mlflow_ui_url']}")
    say(f"  V2 inference     {result.endpoints['inference_url']}/v2/models/{MODEL_NAME}/infer")
    say(f"  feedback         {result.endpoints['monitor_url']}/v2/feedback")
    say(f"  metrics          {result.endpoints['monitor_url']}/metrics")
    say("")
    say("Where time went (s): " + ", ".join(f"{name} {seconds}" for name, seconds in result.timings.items()))
    say(f"Report: {result.report_path}")


@click.command("demo")
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=DemoOptions.state_dir,
    show_default=True,
    help="State folder for the demo's platform (wiped at start unless --resume).",
)
@click.option(
    "--project",
    "project_dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=DEFAULT_PROJECT,
    show_default=True,
    help="The example project folder.",
)
@click.option(
    "--scenario", default=DemoOptions.scenario, show_default=True, help="Drift scenario of the data."
)
@click.option(
    "--days",
    type=click.IntRange(3, 60),
    default=DemoOptions.days,
    show_default=True,
    help="Simulated production days.",
)
@click.option(
    "--drift-day",
    type=int,
    default=DemoOptions.drift_day,
    show_default=True,
    help="Day the drift scenario starts.",
)
@click.option(
    "--rows-per-day",
    type=click.IntRange(50, 100_000),
    default=DemoOptions.rows_per_day,
    show_default=True,
    help="Production rows per simulated day.",
)
@click.option(
    "--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed of data and training."
)
@click.option("--keep", is_flag=True, help="Leave the platform running at the end, for exploring.")
@click.option("--resume", is_flag=True, help="Keep the state folder from an earlier run.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (progress goes to stderr).")
def demo_command(
    state_dir: Path,
    project_dir: Path,
    scenario: str,
    days: int,
    drift_day: int,
    rows_per_day: int,
    seed: int,
    keep: bool,
    resume: bool,
    as_json: bool,
) -> None:
    """Run the whole loop on the local target: train, register, deploy, monitor, retrain, promote."""
    options = DemoOptions(
        state_dir=state_dir,
        project_dir=project_dir,
        scenario=scenario,
        days=days,
        drift_day=drift_day,
        rows_per_day=rows_per_day,
        seed=seed,
        keep=keep,
        resume=resume,
    )
    say = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    started = time.perf_counter()
    result = run_demo(options, say=say)
    result.timings["total"] = round(time.perf_counter() - started, 1)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        print_summary(result, say)
