"""The HTML drift report: one self-contained file (plots inlined as base64 PNG), logged to MLflow.

Plots: drift per feature (PSI bars, drifted features highlighted, with the corrected p-values in the table),
and performance and drift share over time from the model's stored checks.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

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
<h2>Drift per feature</h2>
<img alt="drift per feature" src="data:image/png;base64,{drift_plot(result)}">
<table><tr><th>feature</th><th>kind</th><th>test</th><th>rows</th><th>statistic</th><th>p</th>
<th>adjusted p</th>
<th>PSI</th><th>drifted</th><th>missing</th><th>out of range</th><th>unseen</th></tr>
{"".join(rows)}</table>
<h2>Over time</h2>{history_html}
</body></html>
"""
