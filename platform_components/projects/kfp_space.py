"""A project's Kubeflow Pipelines experiment, through KFP's v2beta1 REST API (standalone, single-user).

The calls (kubeflow/pipelines 2.17.0, ``backend/api/v2beta1/experiment.proto``; the generated client
``kfp_server_api`` 2.17.3 has the same paths): list with a ``display_name`` EQUALS filter, create
(``POST /apis/v2beta1/experiments`` with the Experiment as the body), archive and unarchive
(``POST /apis/v2beta1/experiments/{id}:archive`` / ``:unarchive``, empty body). An experiment is never
deleted: deleting it would delete its runs. Standalone KFP is single-user, so no namespace is sent.

The experiment is named after the project, and its description says whose it is. ``httpx`` only: the
``kfp`` SDK costs seconds of imports for four calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from platform_components.errors import PlatformError

API = "/apis/v2beta1"
AVAILABLE = "AVAILABLE"
ARCHIVED = "ARCHIVED"


class KfpApiError(PlatformError):
    """KFP answered an error or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class KfpExperiment:
    experiment_id: str
    display_name: str
    description: str
    storage_state: str


class KfpExperiments:
    """The KFP experiments of projects.

    Args:
        url: the API server, e.g. ``http://ml-pipeline.kubeflow.svc.cluster.local:8888`` (no path: every
            route starts with ``/apis/v2beta1``).
    """

    def __init__(self, url: str, *, timeout: float = 30.0, client: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        self._client = client or httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> KfpExperiments:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(
        self, method: str, path: str, *, params: dict[str, str] | None = None, body: Any = None
    ) -> dict[str, Any]:
        try:
            response = self._client.request(method, f"{API}{path}", params=params, json=body)
        except httpx.HTTPError as error:
            raise KfpApiError(f"KFP at {self.url} cannot be reached ({error}); check --kfp-url") from error
        if response.status_code >= 300:
            try:
                message = response.json().get("message") or response.text
            except ValueError:
                message = response.text
            raise KfpApiError(
                f"KFP at {self.url}: {method} {API}{path} answered {response.status_code}: {message[:300]}",
                status=response.status_code,
            )
        return response.json() if response.content else {}

    def find(self, name: str) -> KfpExperiment | None:
        """The experiment whose display name is ``name`` (names are unique in single-user KFP)."""
        predicate = {"key": "display_name", "operation": "EQUALS", "string_value": name}
        found = self._call(
            "GET",
            "/experiments",
            params={"filter": json.dumps({"predicates": [predicate]}), "page_size": "10"},
        )
        for item in found.get("experiments") or ():
            if item.get("display_name") == name:
                return _experiment(item)
        return None

    def create(self, name: str, description: str) -> KfpExperiment:
        return _experiment(
            self._call("POST", "/experiments", body={"display_name": name, "description": description})
        )

    def archive(self, experiment_id: str) -> None:
        self._call("POST", f"/experiments/{experiment_id}:archive")

    def unarchive(self, experiment_id: str) -> None:
        self._call("POST", f"/experiments/{experiment_id}:unarchive")


def _experiment(item: dict[str, Any]) -> KfpExperiment:
    return KfpExperiment(
        experiment_id=item["experiment_id"],
        display_name=item.get("display_name", ""),
        description=item.get("description", ""),
        # The gateway omits unset fields; the server stores every new experiment AVAILABLE.
        storage_state=item.get("storage_state") or AVAILABLE,
    )
