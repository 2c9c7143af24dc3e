"""``mlops_model_info{model, project, owner, route} 1``: one info series per declared model.

The Grafana fleet dashboard (``kubernetes/fleet_dashboard.py``) shows every model in one table without a
panel per model: its rows are this series, and the per-model gauges and counters (``mlops_monitor_*``,
Seldon's ``seldon_model_infer_total``, ``ALERTS``) are joined to it on ``model``. Carrying project, owner
and route here, once per model, keeps them off every other series (the cardinality budget counts series
per model: this adds exactly one).

The cluster's monitor exports it from its models file and catalog (``loop/service.py``); a model of no
project has ``project="-"``, ``owner="-"`` and ``route=""``. The owner and route come from the catalog the
monitor re-reads, so a new owner shows without a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

INFO_METRIC = "mlops_model_info"
INFO_LABELS = ("model", "project", "owner", "route")
NO_PROJECT = "-"


def info_labels(models: Iterable[Any], catalog: Any) -> list[tuple[str, str, str, str]]:
    """(model, project, owner, route) of each declared model (``LoopModel``-like: name, project)."""
    projects = {project.name: project for project in catalog.projects}
    labels = []
    for model in models:
        project = projects.get(model.project) if model.project else None
        if project is None:
            labels.append((model.name, model.project or NO_PROJECT, NO_PROJECT, ""))
        else:
            labels.append((model.name, project.name, project.owner, project.route))
    return labels


class ModelInfoCollector:
    """A Prometheus collector of ``mlops_model_info`` (``catalog`` is called at each scrape)."""

    def __init__(self, models: Iterable[Any], catalog: Callable[[], Any]) -> None:
        self.models = tuple(models)
        self.catalog = catalog

    def describe(self) -> Iterator[Any]:
        return iter(())

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(
            INFO_METRIC,
            "One series per declared model: its project, owner and alert route (value 1).",
            labels=list(INFO_LABELS),
        )
        for values in info_labels(self.models, self.catalog()):
            family.add_metric(list(values), 1.0)
        yield family
