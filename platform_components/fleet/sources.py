"""Where the fleet's declarations and alerts come from, on each target.

- Local: the catalog file (``<state>/catalog.yaml`` or ``--catalog``), the local policy file
  (``<state>/policy.yaml``) and, as models of no project, what ``mlops deploy`` serves
  (``deployments.json``) that the catalog does not declare.
- Cluster (the monitor's ``GET /v2/fleet``): ``models.json`` (every declared model with its resolved policy)
  and ``catalog.json`` (people, teams, projects), both from the monitor's ConfigMap.
- Alerts: Prometheus' ``GET /api/v1/alerts`` when a Prometheus URL is given (firing alerts carry the
  ``model`` label our rules set); otherwise derived from the store (``rows._derived_alerts``).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from platform_components.errors import ConfigError
from platform_components.fleet.registry import RegistryReader
from platform_components.fleet.rows import DeclaredModel, Fleet, build_fleet, declared_models
from platform_components.fleet.store_reader import FleetStoreReader
from platform_components.settings import (
    CatalogSettings,
    ModelDeploymentSettings,
    PolicySettings,
    format_validation_error,
)

PROMETHEUS_ALERTS = "/api/v1/alerts"
CATALOG_FILE = "catalog.json"
"""The catalog's key in the monitor's ConfigMap (``kubernetes/monitoring.py``), beside ``models.json``."""


def load_catalog(path: Path) -> CatalogSettings:
    """The catalog file, validated field by field (an empty catalog when the file is absent).

    Unlike ``settings.load_catalog_file`` this does not refuse a catalog whose cross-entry rules fail: an
    owner who left the people list is exactly what the fleet must show (as a staleness verdict), not hide.
    libyaml's C loader is used where present: the pure-Python one costs ~0.3 s for 1,000 models.

    Raises:
        ConfigError: unreadable, not YAML or JSON, or a field is wrong (named, with the fix).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        return CatalogSettings()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}  # noqa: S506 (a safe loader)
    except OSError as error:
        raise ConfigError(f"catalog file {path}: cannot read it ({error.strerror or error})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"catalog file {path}: not valid YAML ({error})") from None
    try:
        return CatalogSettings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, prefix="", source=f"catalog file {path}")) from None


def local_declarations(
    state_dir: Path, catalog_path: Path | None = None
) -> tuple[CatalogSettings, list[DeclaredModel]]:
    """The local target's catalog and declared models (see the module docstring).

    Raises:
        ConfigError: the catalog or the policy file is wrong (named).
    """
    from platform_components.local.state import StateDir
    from platform_components.settings import load_policy_file

    state_dir = Path(state_dir)
    catalog = load_catalog(catalog_path or state_dir / "catalog.yaml")
    policy_path = state_dir / "policy.yaml"
    policy = load_policy_file(policy_path) if policy_path.is_file() else PolicySettings()
    in_catalog = {model.name for project in catalog.projects for model in project.models}
    served = StateDir(state_dir).read_deployments() if state_dir.is_dir() else {}
    extra = [
        ModelDeploymentSettings(
            name=name, registered_model=record.get("name", name), alias=record.get("alias") or "champion"
        )
        for name, record in sorted(served.items())
        if name not in in_catalog
    ]
    return catalog, declared_models(catalog, policy, extra)


def cluster_declarations(models: Iterable[Any]) -> list[DeclaredModel]:
    """The monitor's ``models.json`` entries (``loop.models.LoopModel``, policy already resolved)."""
    return [
        DeclaredModel(model.name, model.registered_model, model.alias, model.project, model.policy)
        for model in models
    ]


def parse_catalog_json(text: str, source: str = CATALOG_FILE) -> CatalogSettings:
    """``catalog.json`` from the monitor's ConfigMap.

    Raises:
        ConfigError: not JSON, or a field is wrong (named).
    """
    try:
        return CatalogSettings.model_validate_json(text)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error, prefix="", source=source)) from None


def prometheus_alerts(url: str, *, timeout: float = 10.0) -> dict[str, list[str]]:
    """Firing alerts per ``model`` label from Prometheus' ``/api/v1/alerts`` (pending ones are not open).

    Raises:
        ConfigError: Prometheus cannot be reached or answers something else (the URL named).
    """
    endpoint = url.rstrip("/") + PROMETHEUS_ALERTS
    try:
        with urllib.request.urlopen(endpoint, timeout=timeout) as response:
            document = json.loads(response.read())
        alerts = document["data"]["alerts"]
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigError(
            f"--prometheus-url {url!r}: cannot read {PROMETHEUS_ALERTS} ({error}); pass Prometheus' base "
            "URL, e.g. http://prometheus-operated.monitoring.svc:9090, or leave it out to derive alerts from "
            "the store"
        ) from None
    found: dict[str, set[str]] = {}
    for alert in alerts:
        labels = alert.get("labels") or {}
        if alert.get("state") == "firing" and "model" in labels:
            found.setdefault(labels["model"], set()).add(str(labels.get("alertname", "alert")))
    return {model: sorted(names) for model, names in found.items()}


def collect(
    declared: list[DeclaredModel],
    catalog: CatalogSettings,
    reader: FleetStoreReader,
    tracking_uri: str,
    *,
    prometheus_url: str | None = None,
    now: float | None = None,
) -> Fleet:
    """Read the store, the registry (and Prometheus) and build the rows."""
    store = reader.read()
    registry = RegistryReader(tracking_uri).read({model.registered_model for model in declared})
    alerts: Mapping[str, list[str]] | None = prometheus_alerts(prometheus_url) if prometheus_url else None
    return build_fleet(declared, catalog, store, registry, alerts=alerts, now=now)
