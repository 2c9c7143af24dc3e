"""The HTML drift report: one self-contained file (plots inlined as base64 PNG), logged to MLflow.

Plots: drift per feature (PSI bars, drifted features highlighted, with the corrected p-values in the table),
performance and drift share over time from the model's stored checks, and per window the estimated ROC AUC
(with its band, recorded before the window's labels) beside the realised one (once they arrived), with the
estimate's assumption printed under it.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from platform_components.monitoring.estimate import ASSUMPTION
from platform_components.monitoring.monitor import MonitorResult


def _figure_to_base64(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _number(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return html.escape(str(value))


def drift_plot(result: MonitorResult) -> str:
    """PSI per feature, drifted ones in red; base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    names = list(result.features)
    values = [result.features[name]["psi"] or 0.0 for name in names]
    colours = ["#c0392b" if result.features[name]["drifted"] else "#2e86c1" for name in names]
    figure, axis = pyplot.subplots(figsize=(8, max(2.5, 0.32 * len(names) + 1)))
    try:
        axis.barh(names[::-1], values[::-1], color=colours[::-1])
        axis.axvline(0.1, color="#999999", linestyle=":", linewidth=1)
        axis.axvline(0.2, color="#666666", linestyle="--", linewidth=1)
        axis.set_xlabel("PSI (red: drifted by the corrected test; dashed: 0.2)")
        axis.set_title(f"Drift per feature: {result.model} v{result.version}")
        return _figure_to_base64(figure)
    finally:
        pyplot.close(figure)


def history_plot(history: Sequence[Mapping[str, Any]]) -> str | None:
    """Accuracy, ROC AUC and drift share per check over time; None when there is no history."""
    points = [item for item in history if item.get("checked_at") is not None]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    times = [dt.datetime.fromtimestamp(item["checked_at"], tz=dt.UTC) for item in points]
    figure, axis = pyplot.subplots(figsize=(8, 3.2))
    try:
        for metric, colour in (("accuracy", "#27ae60"), ("roc_auc", "#8e44ad")):
            series = [
                (when, (item.get("performance") or {}).get(metric))
                for when, item in zip(times, points, strict=True)
            ]
            series = [(when, value) for when, value in series if value is not None]
            if series:
                axis.plot(*zip(*series, strict=True), marker="o", color=colour, label=metric)
        axis.plot(
            times,
            [item.get("drift_share", 0.0) for item in points],
            marker=".",
            color="#c0392b",
            label="drift share",
        )
        axis.set_ylim(0, 1.05)
        axis.legend(loc="lower left")
        axis.set_title("Performance and drift over time")
        figure.autofmt_xdate()
        return _figure_to_base64(figure)
    finally:
        pyplot.close(figure)


def _per_window(history: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One result per (version, window start), the last given winning, ordered by window start."""
    latest: dict[tuple[str, float], Mapping[str, Any]] = {}
    for item in history:
        if item.get("window_start") is not None:
            latest[(str(item.get("version")), float(item["window_start"]))] = item
    return sorted(latest.values(), key=lambda item: float(item["window_start"]))


def estimate_series(
    history: Sequence[Mapping[str, Any]], metric: str = "roc_auc"
) -> list[dict[str, float | None]]:
    """Per window: start, estimated value and band, realised value (None where missing).

    What ``estimate_plot`` draws; a window appears once it has an estimate or a realised value.
    """
    series = []
    for item in _per_window(history):
        estimated = (item.get("estimated") or {}).get(metric) or {}
        realised = (item.get("performance") or {}).get(metric)
        if not estimated and realised is None:
            continue
        series.append(
            {
                "window_start": float(item["window_start"]),
                "estimated": estimated.get("value"),
                "lower": estimated.get("lower"),
                "upper": estimated.get("upper"),
                "realised": realised,
            }
        )
    return series


def estimate_plot(history: Sequence[Mapping[str, Any]], metric: str = "roc_auc") -> str | None:
    """Estimated (line and band) and realised (points) ``metric`` per window; None without data."""
    series = estimate_series(history, metric)
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axis = pyplot.subplots(figsize=(8, 3.2))
    try:
        estimated = [
            (dt.datetime.fromtimestamp(item["window_start"], tz=dt.UTC), item)
            for item in series
            if item["estimated"] is not None
        ]
        if estimated:
            times = [when for when, _ in estimated]
            axis.plot(
                times,
                [item["estimated"] for _, item in estimated],
                marker=".",
                color="#2e86c1",
                label=f"estimated {metric} (before labels)",
            )
            banded = [(when, item) for when, item in estimated if item["lower"] is not None]
            if banded:
                axis.fill_between(
                    [when for when, _ in banded],
                    [item["lower"] for _, item in banded],
                    [item["upper"] for _, item in banded],
                    color="#2e86c1",
                    alpha=0.2,
                    label="estimate's band",
                )
        realised = [
            (dt.datetime.fromtimestamp(item["window_start"], tz=dt.UTC), item["realised"])
            for item in series
            if item["realised"] is not None
        ]
        if realised:
            axis.plot(
                *zip(*realised, strict=True),
                marker="o",
                linestyle="--",
                color="#8e44ad",
                label=f"realised {metric} (labels)",
            )
        axis.set_ylim(0, 1.05)
        axis.set_xlabel("window start (event time, UTC)")
        axis.legend(loc="lower left")
        axis.set_title(f"Estimated and realised {metric} per window")
        figure.autofmt_xdate()
        return _figure_to_base64(figure)
    finally:
        pyplot.close(figure)


def _estimate_summary(result: MonitorResult) -> str:
    if not result.estimated:
        return (
            "<p>No estimate for this window (the reference profile carries no estimator, the task is "
            "not classification, or the window has too few rows).</p>"
        )
    items = []
    for metric in ("roc_auc", "accuracy"):
        value = result.estimated.get(metric) or {}
        compared = (result.comparison or {}).get(metric) or {}
        realised = compared.get("realised")
        text = (
            f"<li>{metric}: estimated {_number(value.get('value'))} "
            f"(band {_number(value.get('lower'))} to {_number(value.get('upper'))} at "
            f"{_number(result.estimated.get('band_level'))})"
        )
        if realised is not None:
            inside = compared.get("inside_band")
            text += f"; realised {_number(realised)}, {'inside' if inside else 'outside'} the band"
        items.append(text + "</li>")
    items.append(
        f"<li>scores outside the reference's central 99 %: "
        f"{_number(result.estimated.get('outside_reference_share'))}</li>"
    )
    return f"<ul>{''.join(items)}</ul>"


def render_report(result: MonitorResult, history: Sequence[Mapping[str, Any]] = ()) -> str:
    """A self-contained HTML report of one check (with the model's earlier checks for the time plot)."""
    rows = []
    for name, item in result.features.items():
        quality = result.quality.get("features", {}).get(name, {})
        style = ' style="background:#fdecea"' if item["drifted"] else ""
        rows.append(
            f"<tr{style}><td>{html.escape(name)}</td><td>{item['kind']}</td><td>{item['test']}</td>"
            f"<td>{item['rows']}</td><td>{_number(item['statistic'])}</td><td>{_number(item['pvalue'])}</td>"
            f"<td>{_number(item['adjusted_pvalue'])}</td><td>{_number(item['psi'])}</td>"
            f"<td>{'yes' if item['drifted'] else 'no'}</td><td>{_number(quality.get('missing_rate'))}</td>"
            f"<td>{_number(quality.get('out_of_range_rate'))}</td><td>{_number(quality.get('unseen_rate'))}</td></tr>"
        )
    performance = (
        "".join(
            f"<li>{html.escape(name)}: {_number(value)}</li>"
            for name, value in (result.performance or {}).items()
        )
        or "<li>not enough labels yet</li>"
    )
    prediction = result.prediction or {}
    history_image = history_plot([*history, result.to_dict()])
    history_html = (
        f'<img alt="performance over time" src="data:image/png;base64,{history_image}">'
        if history_image
        else ""
    )
    estimate_image = estimate_plot([*history, result.to_dict()])
    estimate_html = (
        f'<img alt="estimated and realised ROC AUC per window" src="data:image/png;base64,{estimate_image}">'
        if estimate_image
        else ""
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8">
<title>Drift report {html.escape(result.model)} v{html.escape(result.version)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 6px;font-size:13px}}</style></head><body>
<h1>Drift report: {html.escape(result.model)} version {html.escape(result.version)}</h1>
<p>Checked {_when(result.checked_at)}; window {_when(result.window_start)} to {_when(result.window_end)};
{result.rows} rows, {result.labelled_rows} labelled; status <b>{html.escape(result.status)}</b>.</p>
<p>Drift share <b>{result.drift_share:.2f}</b> ({len(result.drifted_features)} drifted:
{html.escape(", ".join(result.drifted_features) or "none")}); max PSI {_number(result.max_psi)};
correction {html.escape(str(result.config.get("correction")))} at alpha {result.config.get("alpha")}.
Prediction drift: {"yes" if prediction.get("drifted") else "no"} (KS {_number(prediction.get("statistic"))},
p {_number(prediction.get("pvalue"))}).</p>
<h2>Performance</h2><ul>{performance}</ul>
<h2>Estimated performance (before the labels)</h2>{_estimate_summary(result)}
{estimate_html}
<p class="assumption"><b>Assumption.</b> {html.escape(ASSUMPTION)}</p>
<h2>Drift per feature</h2>
<img alt="drift per feature" src="data:image/png;base64,{drift_plot(result)}">
<table><tr><th>feature</th><th>kind</th><th>test</th><th>rows</th><th>statistic</th><th>p</th>
<th>adjusted p</th>
<th>PSI</th><th>drifted</th><th>missing</th><th>out of range</th><th>unseen</th></tr>
{"".join(rows)}</table>
<h2>Over time</h2>{history_html}
</body></html>
"""
