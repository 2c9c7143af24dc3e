"""The fleet as a text table, JSON, or one self-contained HTML page.

The page has the table's columns, a sparkline per model for drift share and realised performance over its
last windows (inline SVG: no CDN, no script from elsewhere, it opens from a file or an air-gapped share),
and sorts in the browser by a click on a column header (a few lines of inline JavaScript; each cell
carries its sort key, so times and numbers sort as numbers).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from platform_components.fleet.rows import Fleet


def _age(now: float | None, when: float | None) -> str:
    if when is None:
        return "never"
    if now is None:
        return "-"
    seconds = max(0.0, now - when)
    if seconds < 3600:
        return f"{seconds / 60:.0f}m ago"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h ago"
    return f"{seconds / 86400:.1f}d ago"


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _performance(row: dict[str, Any]) -> str:
    """``0.812/0.850`` (realised/baseline) or ``~0.80/0.850`` (estimated), in the row's metric."""
    baseline = _number(row["baseline"])
    if row["realised"] is not None:
        return f"{row['metric']} {_number(row['realised'])}/{baseline}"
    if row["estimated"] is not None:
        return f"{row['metric']} ~{_number(row['estimated'])}/{baseline}"
    return f"{row['metric']} -/{baseline}"


def _policy(row: dict[str, Any]) -> str:
    policy = row["policy"]
    return (
        f"window={_duration(policy['window'])} drop<={policy['max_performance_drop']:g} "
        f"cooldown={_duration(policy['cooldown'])}"
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _serving(row: dict[str, Any]) -> str:
    if row["version"] is None:
        return f"@{row['alias']}: {row['serving'].replace('_', ' ')}"
    return f"v{row['version']} @{row['alias']}"


def _retrain(row: dict[str, Any], now: float | None) -> str:
    if row["last_retrain_at"] is None:
        return "never"
    return f"{_age(now, row['last_retrain_at'])} {row['last_retrain_outcome']}"


COLUMNS: tuple[tuple[str, str], ...] = (
    ("PROJECT", "project"),
    ("OWNER", "owner"),
    ("MODEL", "model"),
    ("SERVING", "version"),
    ("TRAFFIC", "traffic"),
    ("LAST RETRAIN", "last_retrain_at"),
    ("LAST LABELS", "last_label_at"),
    ("DRIFT", "drift"),
    ("PERFORMANCE", "realised"),
    ("ALERTS", "alerts"),
    ("POLICY", "policy"),
    ("STALE", "stale"),
)


def _cells(row: dict[str, Any], now: float | None) -> list[str]:
    return [
        row["project"],
        row["owner"],
        row["model"],
        _serving(row),
        f"{row['traffic']}/{_duration(row['traffic_window_seconds'])}",
        _retrain(row, now),
        _age(now, row["last_label_at"]),
        row["drift"],
        _performance(row),
        ",".join(row["alerts"]) or "-",
        _policy(row),
        "; ".join(row["staleness"]) or "no",
    ]


def table(fleet: Fleet, rows: Sequence[dict[str, Any]] | None = None) -> str:
    """A plain-text table, one line per row, and a footer with the counts (stale, undeclared)."""
    rows = fleet.rows if rows is None else rows
    lines = [[title for title, _ in COLUMNS]] + [_cells(row, fleet.now) for row in rows]
    # The last column (staleness verdicts) is left unpadded: it is the long one.
    widths = [max(len(line[index]) for line in lines) for index in range(len(COLUMNS) - 1)]
    text = [
        "  ".join(cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)) + "  " + line[-1]
        for line in lines
    ]
    text.append(_footer(fleet, len(rows)))
    return "\n".join(text)


def _footer(fleet: Fleet, shown: int) -> str:
    stale = sum(1 for row in fleet.rows if row["stale"])
    parts = [f"{shown} of {len(fleet.rows)} declared models shown", f"{stale} stale"]
    if fleet.undeclared:
        sample = ", ".join(fleet.undeclared[:5]) + (", ..." if len(fleet.undeclared) > 5 else "")
        parts.append(f"{len(fleet.undeclared)} undeclared in the store (not rows: {sample})")
    parts.append(f"alerts from {fleet.alerts_source}")
    return "; ".join(parts)


def to_json(fleet: Fleet, rows: Sequence[dict[str, Any]] | None = None) -> str:
    """The ``--json`` document (``Fleet.to_dict`` with the shown rows)."""
    document = fleet.to_dict()
    if rows is not None:
        document["rows"] = list(rows)
        document["shown"] = len(rows)
    return json.dumps(document, sort_keys=True, default=str)


def sparkline(values: Sequence[float | None], *, width: int = 80, height: int = 18, label: str = "") -> str:
    """An inline SVG polyline of ``values`` (gaps skipped); empty when fewer than one value."""
    points = [(index, value) for index, value in enumerate(values) if value is not None]
    if not points:
        return '<span class="none">-</span>'
    low = min(value for _, value in points)
    high = max(value for _, value in points)
    span = (high - low) or 1.0
    steps = max(len(values) - 1, 1)
    coordinates = " ".join(
        f"{index / steps * (width - 2) + 1:.1f},{height - 1 - (value - low) / span * (height - 2):.1f}"
        for index, value in points
    )
    title = html.escape(f"{label}: {points[-1][1]:.3f} (range {low:.3f}-{high:.3f})")
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
        f"<title>{title}</title>"
        f'<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{coordinates}"/></svg>'
    )


_SCRIPT = """
document.querySelectorAll('th').forEach(function (header, column) {
  header.addEventListener('click', function () {
    var body = document.querySelector('tbody');
    var rows = Array.prototype.slice.call(body.rows);
    var ascending = header.dataset.order !== 'asc';
    header.dataset.order = ascending ? 'asc' : 'desc';
    rows.sort(function (a, b) {
      var x = a.cells[column].dataset.key, y = b.cells[column].dataset.key;
      var nx = parseFloat(x), ny = parseFloat(y);
      var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; }
table { border-collapse: collapse; font-size: 13px; }
th { cursor: pointer; text-align: left; background: #eee; position: sticky; top: 0; }
th, td { padding: 3px 6px; border-bottom: 1px solid #ddd; vertical-align: middle; }
tr.stale td { background: #fff4e5; }
.alarm, .below { color: #b00020; font-weight: bold; }
.none { color: #999; }
"""


def _sort_key(row: dict[str, Any], key: str) -> str:
    value = row[key]
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""
    if isinstance(value, dict):
        return ""
    return str(value)


def page(fleet: Fleet, rows: Sequence[dict[str, Any]] | None = None, *, title: str = "mlops fleet") -> str:
    """The self-contained HTML page (see the module docstring)."""
    rows = fleet.rows if rows is None else rows
    headers = [*(title_ for title_, _ in COLUMNS), "DRIFT SHARE", "REALISED"]
    body = []
    for row in rows:
        cells = []
        for (_, key), text in zip(COLUMNS, _cells(row, fleet.now), strict=True):
            css = ""
            if (
                key == "drift"
                and row["drift"] == "alarm"
                or key == "realised"
                and row["performance"] == "below"
            ):
                css = ' class="alarm"'
            cells.append(f'<td data-key="{html.escape(_sort_key(row, key))}"{css}>{html.escape(text)}</td>')
        history = row["history"]
        last_drift = history["drift_share"][-1] if history["drift_share"] else None
        last_realised = history["realised"][-1] if history["realised"] else None
        cells.append(
            f'<td data-key="{"" if last_drift is None else last_drift}">'
            f"{sparkline(history['drift_share'], label='drift share')}</td>"
        )
        cells.append(
            f'<td data-key="{"" if last_realised is None else last_realised}">'
            f"{sparkline(history['realised'], label=row['metric'])}</td>"
        )
        css = ' class="stale"' if row["stale"] else ""
        body.append(f"<tr{css}>{''.join(cells)}</tr>")
    header_html = "".join(f"<th>{html.escape(name)}</th>" for name in headers)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(_footer(fleet, len(rows)))}</p>"
        f"<table><thead><tr>{header_html}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
