"""The Grafana fleet dashboard (``mlops-fleet.json``): every model in one table, whatever the fleet's size.

The table's rows are ``mlops_model_info{model, project, owner, route}`` (one series per declared model,
``monitoring/model_info.py``); each per-model metric is an instant query aggregated ``by (model)`` and
joined to it on the ``model`` column (Grafana's ``joinByField`` transformation, outer join), then
``organize`` hides the time columns and names the value columns. So the dashboard has a fixed number of
panels and queries: 1,000 models are 1,000 table rows, not 1,000 panels (the per-model dashboards stay for
drilling into one model). A ``project`` variable (from the info series' label values) narrows the table.

The Grafana transformation ids are recorded in tests/upstream_facts/grafana_transformations.py (read from
Grafana's source, not at the pinned tag: see that module).
"""

from __future__ import annotations

from typing import Any

from platform_components.kubernetes import seldon_metrics

INFO_METRIC = "mlops_model_info"  # monitoring/model_info.py INFO_METRIC (not imported: kubernetes/ is apart)
FLEET_DASHBOARD_UID = "mlops-fleet"
FLEET_DASHBOARD_FILE = "mlops-fleet.json"
PROJECT_FILTER = 'project=~"$project"'
LAST_CHECK = "mlops_monitor_last_check_timestamp_seconds"

# (refId, column title, PromQL by model, unit). The info query is A: the join's left side.
COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("B", "Requests/s", f"sum by (model) (rate({seldon_metrics.INFER_COUNT}[5m]))", "reqps"),
    ("C", "Max PSI", "max by (model) (mlops_monitor_max_psi)", "none"),
    ("D", "Drifted features", "max by (model) (mlops_monitor_drifted_features)", "none"),
    ("E", "ROC AUC (labelled)", "min by (model) (mlops_monitor_roc_auc)", "none"),
    ("F", "ROC AUC (estimated)", "min by (model) (mlops_monitor_estimated_roc_auc)", "none"),
    ("G", "Accuracy (labelled)", "min by (model) (mlops_monitor_accuracy)", "none"),
    (
        "H",
        "Last check",
        "max by (model) (mlops_monitor_last_check_timestamp_seconds) * 1000",
        "dateTimeAsIso",
    ),
    ("I", "Retrains", "max by (model) (mlops_monitor_retrains_total)", "none"),
    ("J", "Labels", "max by (model) (mlops_monitor_feedback_labels_total)", "none"),
    ("K", "Firing alerts", 'count by (model) (ALERTS{alertstate="firing",model!=""})', "none"),
)
INFO_QUERY = f"max by (model, project, owner, route) ({INFO_METRIC}{{{PROJECT_FILTER}}})"
# Transformation ids (Grafana's DataTransformerID values).
JOIN_BY_FIELD = "joinByField"
ORGANIZE = "organize"


def _target(ref_id: str, expr: str) -> dict[str, Any]:
    return {"refId": ref_id, "expr": expr, "instant": True, "range": False, "format": "table"}


def _stat(panel_id: int, title: str, expr: str, x: int) -> dict[str, Any]:
    return {
        "id": panel_id,
        "type": "stat",
        "title": title,
        "gridPos": {"h": 4, "w": 8, "x": x, "y": 0},
        "targets": [{"refId": "A", "expr": expr, "instant": True}],
    }


def fleet_dashboard() -> dict[str, Any]:
    """The dashboard (see the module docstring); the same for 1 model or 2,000."""
    renames = {"model": "Model", "project": "Project", "owner": "Owner", "route": "Route"}
    renames.update({f"Value #{ref_id}": title for ref_id, title, _, _ in COLUMNS})
    hidden = {
        "Time": True,
        "Value #A": True,
        **{f"Time {index}": True for index in range(1, len(COLUMNS) + 2)},
    }
    overrides = [
        {
            "matcher": {"id": "byName", "options": title},
            "properties": [{"id": "unit", "value": unit}],
        }
        for _, title, _, unit in COLUMNS
    ]
    table = {
        "id": 4,
        "type": "table",
        "title": "Fleet: every declared model",
        "description": "One row per mlops_model_info series; per-model metrics joined on model.",
        "gridPos": {"h": 24, "w": 24, "x": 0, "y": 4},
        "targets": [_target("A", INFO_QUERY), *(_target(ref_id, expr) for ref_id, _, expr, _ in COLUMNS)],
        "transformations": [
            {"id": JOIN_BY_FIELD, "options": {"byField": "model", "mode": "outer"}},
            {"id": ORGANIZE, "options": {"excludeByName": hidden, "renameByName": renames}},
        ],
        "fieldConfig": {"defaults": {}, "overrides": overrides},
        "options": {"showHeader": True, "sortBy": [{"displayName": "Project", "desc": False}]},
    }
    on_model = f"on (model) group_left () {INFO_METRIC}{{{PROJECT_FILTER}}}"
    return {
        "uid": FLEET_DASHBOARD_UID,
        "title": "MLOps fleet",
        "tags": ["mlops-platform", "fleet"],
        "schemaVersion": 39,
        "time": {"from": "now-24h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "project",
                    "type": "query",
                    "query": f"label_values({INFO_METRIC}, project)",
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {"text": "All", "value": "$__all"},
                }
            ]
        },
        "panels": [
            _stat(1, "Declared models", f"count({INFO_METRIC}{{{PROJECT_FILTER}}})", 0),
            _stat(
                2,
                "Models with firing alerts",
                f'count(count by (model) (ALERTS{{alertstate="firing",model!=""}}) * {on_model})',
                8,
            ),
            _stat(
                3,
                "Models not checked for 2 days (or never)",
                f"count(((time() - max by (model) ({LAST_CHECK})) > 172800) * {on_model} or on (model) "
                f"({INFO_METRIC}{{{PROJECT_FILTER}}} unless on (model) {LAST_CHECK})) or vector(0)",
                16,
            ),
            table,
        ],
    }
