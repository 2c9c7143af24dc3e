"""What MLflow's model registry knows about the fleet, over its REST API (no ``import mlflow``).

Importing mlflow costs about 2.5 s, more than the fleet command's whole budget, so this module speaks the
registry's REST API with the standard library's HTTP client (``urllib.request``: httpx costs another
0.15 s to import and nothing here needs it). Two searches, paged:

- ``GET /api/2.0/mlflow/registered-models/search`` (``max_results`` at most 1000 per page,
  ``next_page_token``): every registered model with its aliases (alias -> version);
- ``GET /api/2.0/mlflow/model-versions/search`` with ``filter=name IN ('a', 'b', ...)`` (the names are
  batched so a request line stays short): every version of the declared models with its tags and creation
  time. The served version's baseline is its ``mlops.holdout.<metric>`` tag, which
  ``pipelines.platform_model.log_model_for_platform`` copies from the run's ``holdout_<metric>`` at
  registration, so no run is read per model.

The endpoint shapes are recorded in tests/upstream_facts/mlflow_registry_rest.py and exercised against a real
``mlflow server`` in tests/fleet.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from platform_components.errors import PlatformError

REGISTERED_MODELS_SEARCH = "/api/2.0/mlflow/registered-models/search"
MODEL_VERSIONS_SEARCH = "/api/2.0/mlflow/model-versions/search"
REGISTERED_MODELS_PAGE = 1000  # the server refuses more (handlers.py: _search_registered_models)
MODEL_VERSIONS_PAGE = 10_000  # the server's default page; it accepts up to 200,000
HOLDOUT_TAG_PREFIX = "mlops.holdout."
"""Tag prefix of a version's training-holdout metrics (``mlops.holdout.roc_auc``), set at registration."""
# Keep each search URL well under the 8 KiB request line common servers accept.
_MAX_FILTER_CHARACTERS = 3_000


class RegistryError(PlatformError):
    """The registry could not be read (unreachable, refused, or an answer of an unexpected shape)."""


@dataclass
class VersionFacts:
    """One registered version: when it was created, its run, and its holdout baselines."""

    version: str
    created_at: float | None
    run_id: str | None
    baselines: dict[str, float] = field(default_factory=dict)


@dataclass
class RegisteredModelFacts:
    """One registered model: its aliases and the versions read."""

    name: str
    aliases: dict[str, str] = field(default_factory=dict)
    versions: dict[str, VersionFacts] = field(default_factory=dict)


class RegistryReader:
    """Reads the registry at ``tracking_uri`` (``http(s)://host:port``).

    Credentials come from MLflow's own variables, ``MLFLOW_TRACKING_USERNAME`` and
    ``MLFLOW_TRACKING_PASSWORD`` (basic auth, as the cluster's MLflow runs), or ``MLFLOW_TRACKING_TOKEN``.

    Args:
        tracking_uri: the MLflow server.
        timeout: seconds per request.
        models_page: registered models per page (at most 1000, the server's limit).
        versions_page: versions per page.
        filter_characters: the longest ``name IN (...)`` filter of one versions search.
    """

    def __init__(
        self,
        tracking_uri: str,
        *,
        timeout: float = 30.0,
        models_page: int = REGISTERED_MODELS_PAGE,
        versions_page: int = MODEL_VERSIONS_PAGE,
        filter_characters: int = _MAX_FILTER_CHARACTERS,
    ) -> None:
        if not tracking_uri.startswith(("http://", "https://")):
            raise RegistryError(
                f"tracking URI {tracking_uri!r} is not an http(s) URL; the fleet reads the registry over "
                "REST: pass --tracking-uri http://host:5000"
            )
        self.tracking_uri = tracking_uri.rstrip("/")
        self.timeout = timeout
        self.models_page, self.versions_page = models_page, versions_page
        self.filter_characters = filter_characters
        self._headers = {"Accept": "application/json"}
        user, password = (
            os.environ.get("MLFLOW_TRACKING_USERNAME"),
            os.environ.get("MLFLOW_TRACKING_PASSWORD"),
        )
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        if user and password:
            encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {encoded}"
        elif token:
            self._headers["Authorization"] = f"Bearer {token}"

    def read(self, names: Iterable[str]) -> dict[str, RegisteredModelFacts]:
        """The registered models among ``names`` (absent: not registered), with every version of each."""
        wanted = set(names)
        found: dict[str, RegisteredModelFacts] = {}
        for item in self._pages(
            REGISTERED_MODELS_SEARCH, {"max_results": self.models_page}, "registered_models"
        ):
            name = item.get("name")
            if name not in wanted:
                continue
            aliases = {entry["alias"]: str(entry["version"]) for entry in item.get("aliases", ())}
            found[name] = RegisteredModelFacts(name, aliases)
        for batch in _filters(sorted(found), self.filter_characters):
            parameters = {"filter": batch, "max_results": self.versions_page}
            for item in self._pages(MODEL_VERSIONS_SEARCH, parameters, "model_versions"):
                model = found.get(item.get("name"))
                if model is None:
                    continue
                version = str(item["version"])
                tags = {entry["key"]: entry.get("value", "") for entry in item.get("tags", ())}
                created = item.get("creation_timestamp")
                model.versions[version] = VersionFacts(
                    version,
                    None if created is None else int(created) / 1000.0,
                    item.get("run_id") or None,
                    _baselines(tags),
                )
        return found

    def _pages(self, path: str, parameters: dict[str, Any], key: str) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            query = dict(parameters, **({"page_token": token} if token else {}))
            answer = self._get(path, query)
            items = answer.get(key, [])
            if not isinstance(items, list):
                raise RegistryError(
                    f"{self.tracking_uri}{path}: {key!r} is not a list in the answer; is this an MLflow "
                    "server of the pinned version?"
                )
            yield from items
            token = answer.get("next_page_token")
            if not token:
                return

    def _get(self, path: str, query: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.tracking_uri}{path}?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(url, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            body = error.read()[:500].decode(errors="replace")
            hint = (
                "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
                if error.code in (401, 403)
                else "check the tracking URI"
            )
            raise RegistryError(
                f"{self.tracking_uri}{path}: HTTP {error.code} ({body.strip()}); {hint}"
            ) from error
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise RegistryError(
                f"{self.tracking_uri}: cannot read the registry ({error}); is MLflow running there? "
                "(local: `mlops up`; or pass --tracking-uri)"
            ) from error


def _quote(name: str) -> str:
    # MLflow's filter grammar takes single- or double-quoted strings; a name holding one kind uses the other.
    return f'"{name}"' if "'" in name else f"'{name}'"


def _filters(names: list[str], limit: int) -> Iterator[str]:
    """``name IN (...)`` filters, each short enough for one request line."""
    batch: list[str] = []
    size = 0
    for name in names:
        quoted = _quote(name)
        if batch and size + len(quoted) + 2 > limit:
            yield f"name IN ({', '.join(batch)})"
            batch, size = [], 0
        batch.append(quoted)
        size += len(quoted) + 2
    if batch:
        yield f"name IN ({', '.join(batch)})"


def _baselines(tags: dict[str, str]) -> dict[str, float]:
    values = {}
    for key, value in tags.items():
        if key.startswith(HOLDOUT_TAG_PREFIX):
            try:
                values[key[len(HOLDOUT_TAG_PREFIX) :]] = float(value)
            except ValueError:
                continue  # a hand-set tag that is not a number is not a baseline
    return values
