"""The fleet's rows: every declared model joined with what the store and the registry know about it.

One row per declared model (the catalog's projects' models and the models of no project); a model the store
knows but nobody declares is not a row, it is counted in ``Fleet.undeclared`` (so 1,000 declared models
are 1,000 rows whatever the store holds). Durations are event time, like the loop's: the fleet's clock is
the latest event the store has seen (prediction, label or check) unless ``now`` is given, so a model whose
traffic stopped grows stale against the rest of the fleet instead of freezing its own clock.

A row is **stale** when, for longer than its project's ``staleness`` allows (``settings.Staleness``), it
had no ground truth, no check or no retrain (measured from the last retrain that started a run, else from
the serving version's first prediction), or when its project's owner is neither a person nor a team of the
catalog (someone left and nobody took the model over).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from platform_components.errors import ConfigError
from platform_components.fleet.registry import RegisteredModelFacts
from platform_components.fleet.store_reader import StoreFacts
from platform_components.settings import (
    PERFORMANCE_METRICS,
    CatalogSettings,
    LoopPolicy,
    ModelDeploymentSettings,
    PolicySettings,
    Staleness,
)

NO_PROJECT = "-"
"""The project column of a model that belongs to no project."""

# The policy keys the table shows (every key is in the JSON).
POLICY_SUMMARY_KEYS = ("window", "performance_metric", "max_performance_drop", "cooldown", "max_model_age")


@dataclass(frozen=True)
class DeclaredModel:
    """A model some declaration names: the catalog (a project's), the stack or the monitor's models.json."""

    name: str
    registered_model: str
    alias: str
    project: str | None
    policy: LoopPolicy


@dataclass
class Fleet:
    """The rows and what is not a row."""

    rows: list[dict[str, Any]]
    now: float | None
    undeclared: list[str] = field(default_factory=list)
    alerts_source: str = "store"

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": self.now,
            "models": len(self.rows),
            "stale": sum(1 for row in self.rows if row["stale"]),
            "undeclared": {"count": len(self.undeclared), "models": self.undeclared},
            "alerts_source": self.alerts_source,
            "rows": self.rows,
        }


def declared_models(
    catalog: CatalogSettings,
    policy: PolicySettings | None = None,
    extra: Sequence[ModelDeploymentSettings] = (),
) -> list[DeclaredModel]:
    """The catalog's models (and ``extra``: models declared outside a project) with their effective policy.

    The projects' and models' own policy keys are layered on ``policy`` exactly as
    ``PlatformSettings.effective_policy`` does: defaults, then the project's, then the model's.

    Raises:
        ConfigError: a policy set twice, or a combination that does not validate (named).
    """
    policy = policy or PolicySettings()
    projects = {name: override.values() for name, override in policy.projects.items()}
    models = {name: override.values() for name, override in policy.models.items()}
    entries: list[tuple[ModelDeploymentSettings, str | None]] = [(model, model.project) for model in extra]
    for project in catalog.projects:
        if project.policy is not None:
            projects[project.name] = {**projects.get(project.name, {}), **project.policy.values()}
        entries.extend((model, project.name) for model in project.models)
    for model, _ in entries:
        if model.policy is not None:
            models[model.name] = {**models.get(model.name, {}), **model.policy.values()}
    try:
        merged = PolicySettings.model_validate(
            {"defaults": policy.defaults.values(), "projects": projects, "models": models}
        )
    except ValueError as error:
        raise ConfigError(f"policy: {error}") from None
    cache: dict[tuple[str | None, str], LoopPolicy] = {}
    declared = []
    for model, project in entries:
        # Most models have no keys of their own: resolve once per project.
        key = (project, model.name if model.name in models else "")
        if key not in cache:
            cache[key] = merged.resolve(project, model.name if model.name in models else None)
        declared.append(DeclaredModel(model.name, model.registered_model, model.alias, project, cache[key]))
    return declared


def build_fleet(
    declared: Iterable[DeclaredModel],
    catalog: CatalogSettings,
    store: Mapping[str, StoreFacts],
    registry: Mapping[str, RegisteredModelFacts],
    *,
    alerts: Mapping[str, list[str]] | None = None,
    now: float | None = None,
) -> Fleet:
    """The rows (see the module docstring).

    Args:
        declared: every declared model.
        catalog: people, teams and projects (owners, staleness).
        store: the store's facts per served model name.
        registry: the registry's facts per registered model name.
        alerts: firing alerts per model from Prometheus; None derives them from the store (local target).
        now: the fleet's clock (event time, Unix seconds); None: the latest event in the store.
    """
    declared = list(declared)
    if now is None:
        now = _fleet_clock(store.values())
    people = {person.name for person in catalog.people}
    teams = {team.name for team in catalog.teams}
    projects = {project.name: project for project in catalog.projects}
    rows = []
    for model in declared:
        project = projects.get(model.project) if model.project else None
        facts = store.get(model.name) or StoreFacts()
        rows.append(
            _row(model, project, facts, registry.get(model.registered_model), people, teams, alerts, now)
        )
    names = {model.name for model in declared}
    undeclared = sorted(name for name in store if name not in names)
    return Fleet(rows, now, undeclared, "store" if alerts is None else "prometheus")


def _fleet_clock(facts: Iterable[StoreFacts]) -> float | None:
    times = [
        value
        for item in facts
        for value in (
            item.last_prediction_at,
            item.last_label_at,
            item.latest.checked_at if item.latest else None,
        )
        if value is not None
    ]
    return max(times) if times else None


def _row(
    model: DeclaredModel,
    project: Any,
    facts: StoreFacts,
    registered: RegisteredModelFacts | None,
    people: set[str],
    teams: set[str],
    alerts: Mapping[str, list[str]] | None,
    now: float | None,
) -> dict[str, Any]:
    policy = model.policy
    metric = policy.performance_metric
    version = registered.aliases.get(model.alias) if registered else None
    version_facts = registered.versions.get(version) if registered and version else None
    baseline = version_facts.baselines.get(metric) if version_facts else None
    latest = facts.latest
    realised = _last_value(point.performance.get(metric) for point in facts.history)
    estimated = _last_value(
        (point.estimated.get(metric) or {}).get("value")
        if isinstance(point.estimated.get(metric), dict)
        else None
        for point in facts.history
    )
    realised_drop = _drop(metric, baseline, realised)
    estimated_drop = _drop(metric, baseline, estimated)
    drift = _drift_state(latest, policy)
    performance = "unknown"
    if realised_drop is not None:
        performance = "below" if realised_drop > policy.max_performance_drop else "ok"
    elif estimated_drop is not None:
        performance = "estimated_below" if estimated_drop > policy.max_estimated_drop else "estimated_ok"
    if registered is None:
        serving = "not_registered"
    elif version is None:
        serving = "no_alias"
    else:
        serving = "serving" if version in facts.first_prediction_by_version else "not_serving_yet"
    staleness = project.staleness if project is not None else Staleness()
    owner = project.owner if project is not None else None
    verdicts = _staleness(facts, version, staleness, now)
    if project is None:
        verdicts.append("no project: nobody owns it")
    elif owner not in people and owner not in teams:
        verdicts.append(f"owner {owner!r} is not in the catalog's people or teams")
    if alerts is None:
        open_alerts = _derived_alerts(drift, performance, facts, serving)
    else:
        open_alerts = sorted(alerts.get(model.name, ()))
    retrain = facts.retrain
    return {
        "project": model.project or NO_PROJECT,
        "owner": owner or NO_PROJECT,
        "team": project.team if project is not None else None,
        "model": model.name,
        "registered_model": model.registered_model,
        "alias": model.alias,
        "version": version,
        "serving": serving,
        "traffic": latest.rows if latest else 0,
        "traffic_window_seconds": (latest.window_end - latest.window_start) if latest else policy.window,
        "last_retrain_at": retrain.decided_at if retrain else None,
        "last_retrain_outcome": retrain.outcome if retrain else None,
        "last_label_at": facts.last_label_at,
        "labels": facts.labels,
        "last_check_at": latest.checked_at if latest else None,
        "check_status": latest.status if latest else None,
        "drift": drift,
        "drifted_features": latest.drifted_features if latest else [],
        "metric": metric,
        "baseline": baseline,
        "realised": realised,
        "realised_drop": realised_drop,
        "estimated": estimated,
        "estimated_drop": estimated_drop,
        "performance": performance,
        "alerts": open_alerts,
        "policy": policy.model_dump(mode="json"),
        "staleness": verdicts,
        "stale": bool(verdicts),
        "history": {
            "window_start": [point.window_start for point in facts.history],
            "drift_share": [point.drift_share for point in facts.history],
            "realised": [_finite(point.performance.get(metric)) for point in facts.history],
        },
    }


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _last_value(values: Iterable[Any]) -> float | None:
    found = None
    for value in values:
        number = _finite(value)
        if number is not None:
            found = number
    return found


def _drop(metric: str, baseline: float | None, value: float | None) -> float | None:
    """How much worse than the baseline (positive: worse), in the metric's own direction."""
    if baseline is None or value is None:
        return None
    return (baseline - value) if PERFORMANCE_METRICS[metric] else (value - baseline)


def _drift_state(latest: Any, policy: LoopPolicy) -> str:
    if latest is None:
        return "unchecked"
    if latest.status == "insufficient_data":
        return "insufficient_data"
    critical = set(policy.critical_features) & set(latest.drifted_features)
    share = latest.drift_share or 0.0
    if (
        share >= policy.drift_share
        or critical
        or (policy.prediction_drift_triggers and latest.prediction_drifted)
    ):
        return "alarm"
    if latest.drifted_features or latest.prediction_drifted:
        return "drift"
    return "ok"


def _days(seconds: float) -> str:
    return f"{seconds / 86400:.1f}d"


def _staleness(facts: StoreFacts, version: str | None, allowed: Staleness, now: float | None) -> list[str]:
    verdicts: list[str] = []
    if now is None:  # nothing stored anywhere: no clock to measure against, only "never"
        return ["never checked", "no labels"]
    if facts.last_label_at is None:
        verdicts.append("no labels")
    elif now - facts.last_label_at > allowed.labels:
        verdicts.append(f"no labels for {_days(now - facts.last_label_at)} (allows {_days(allowed.labels)})")
    if facts.latest is None:
        verdicts.append("never checked")
    elif now - facts.latest.checked_at > allowed.check:
        verdicts.append(
            f"no check for {_days(now - facts.latest.checked_at)} (allows {_days(allowed.check)})"
        )
    trained = facts.retrain.started_at if facts.retrain and facts.retrain.started_at is not None else None
    if trained is None and version is not None:
        trained = facts.first_prediction_by_version.get(version)
    if trained is not None and now - trained > allowed.retrain:
        verdicts.append(f"no retrain for {_days(now - trained)} (allows {_days(allowed.retrain)})")
    return verdicts


def _derived_alerts(drift: str, performance: str, facts: StoreFacts, serving: str) -> list[str]:
    """Without Prometheus (local target): the conditions the alert rules and the loop act on."""
    found = []
    if drift == "alarm":
        found.append("drift")
    if performance == "below":
        found.append("performance_drop")
    if performance == "estimated_below":
        found.append("estimated_drop")
    if (
        facts.incident_at is not None
        and facts.latest is not None
        and facts.incident_at >= facts.latest.window_start
    ):
        found.append("data_quality")
    if serving in ("not_registered", "no_alias"):
        found.append(serving)
    return found


# -- sorting and filtering -------------------------------------------------------------------------------

SORTABLE = (
    "project",
    "owner",
    "model",
    "version",
    "serving",
    "traffic",
    "last_retrain_at",
    "last_retrain_outcome",
    "last_label_at",
    "last_check_at",
    "drift",
    "baseline",
    "realised",
    "realised_drop",
    "estimated",
    "estimated_drop",
    "performance",
    "alerts",
    "stale",
)


def sort_rows(rows: list[dict[str, Any]], column: str) -> list[dict[str, Any]]:
    """Rows sorted by ``column`` (``-column``: descending); missing values last either way; ties by
    project and model.

    Raises:
        ConfigError: an unknown column (the message lists the columns).
    """
    descending = column.startswith("-")
    key = column.lstrip("-")
    if key not in SORTABLE:
        raise ConfigError(
            f"--sort {column!r}: unknown column; use one of {', '.join(SORTABLE)} (prefix - to reverse)"
        )
    ordered = sorted(rows, key=lambda row: (row["project"], row["model"]))

    def value(row: dict[str, Any]) -> Any:
        item = row[key]
        if isinstance(item, list):
            return len(item)
        return item

    present = [row for row in ordered if value(row) is not None]
    missing = [row for row in ordered if value(row) is None]
    present.sort(key=value, reverse=descending)
    return present + missing


FILTERABLE = (*SORTABLE, "team", "registered_model", "alias", "metric", "check_status", "staleness")


def parse_filter(expression: str) -> list[tuple[str, str, str]]:
    """``project=credit,drift=alarm`` -> [(key, operator, value)]; ``!=`` negates; all must hold.

    Raises:
        ConfigError: a term without ``=`` or with an unknown key (named, with the keys).
    """
    terms = []
    for term in (part.strip() for part in expression.split(",")):
        if not term:
            continue
        operator = "!=" if "!=" in term else "="
        if "=" not in term:
            raise ConfigError(
                f"--filter term {term!r}: write KEY=VALUE or KEY!=VALUE, e.g. project=credit,drift=alarm"
            )
        key, value = (part.strip() for part in term.split(operator, 1))
        if key not in FILTERABLE:
            raise ConfigError(
                f"--filter term {term!r}: unknown key {key!r}; use one of {', '.join(FILTERABLE)}"
            )
        terms.append((key, operator, value))
    return terms


def filter_rows(rows: list[dict[str, Any]], terms: Sequence[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """The rows every term holds for: a list matches when an item (alerts) or an item's text (staleness)
    contains the value; booleans match true/false; everything else compares as text, case-insensitively."""

    def matches(row: dict[str, Any], key: str, value: str) -> bool:
        item = row[key]
        wanted = value.lower()
        if isinstance(item, list):
            return any(wanted in str(element).lower() for element in item) if wanted else not item
        if isinstance(item, bool):
            return wanted == str(item).lower()
        if item is None:
            return wanted in ("", "none", "-")
        return str(item).lower() == wanted

    return [
        row
        for row in rows
        if all(matches(row, key, value) == (operator == "=") for key, operator, value in terms)
    ]
