"""A project's space in MLflow: its experiment, its registered models, their tags and who may do what.

Why not MLflow workspaces: the pinned MLflow (3.17.2) has them, but only behind ``--enable-workspaces``;
a request without the ``X-MLFLOW-WORKSPACE`` header lands in the workspace named ``default``, and names
(experiments, registered models) are unique per workspace only. Every client of ours (the monitor, the
pipelines, the loop, MLServer fetching ``models:/`` artifacts) would have to send the header, and a model
name would no longer name one model across the platform (the serving namespace, the fleet view and the
prediction log key models by name alone). So a project's space is one experiment named after it and its
declared registered models, tagged with the project, with permissions through the basic-auth app
(``docs/project-space.md``, ``tests/upstream_facts/mlflow.py``).

Permissions (the basic-auth app's REST API at 3.17.2; with workspaces disabled every grant lives in the
``default`` workspace):

- the monitor's user ``mlops-monitor``: READ on the experiment and each model (a per-user grant);
- the project's pipeline user ``<project>-pipeline``: EDIT on the same (a per-user grant);
- the team: basic auth has no groups, but it has roles. The team is the role ``team-<team>`` with EDIT on
  its projects' experiments and models; the team's members (``Team.members``) that exist as MLflow users
  are assigned to it. Users are never created for people (no default credentials): an administrator
  creates them, and the next sync assigns them.

This module talks REST with ``httpx`` and never imports ``mlflow`` (2.5 s of imports for a CLI that makes
a few dozen calls).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from platform_components.errors import PlatformError

logger = logging.getLogger(__name__)

MANAGED_TAG = "mlops.managed"
PROJECT_TAG = "mlops.project"
OWNER_TAG = "mlops.owner"
TEAM_TAG = "mlops.team"
#: The served model names (comma-separated) a registered model is declared as: the monitor keys by them.
SERVED_AS_TAG = "mlops.served_as"
#: Set to "true" on a removed project's experiment and models; absent while the project is in the catalog.
ARCHIVED_TAG = "mlops.archived"
ARCHIVED_AT_TAG = "mlops.archived_at"

MONITOR_USER = "mlops-monitor"
#: With workspaces disabled every resource and grant lives here (mlflow/utils/workspace_utils.py).
DEFAULT_WORKSPACE = "default"
PERMISSIONS = ("READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS")

_REST = "/api/2.0/mlflow"
_AUTH = "/api/3.0/mlflow"


def pipeline_user(project: str) -> str:
    """The MLflow user a project's pipeline runs as: ``<project>-pipeline``."""
    return f"{project}-pipeline"


def team_role(team: str) -> str:
    """The MLflow role standing for a team's group: ``team-<team>``."""
    return f"team-{team}"


class MlflowApiError(PlatformError):
    """MLflow answered an error (or could not be reached); ``status`` and ``error_code`` as it said."""

    def __init__(self, message: str, *, status: int | None = None, error_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    tags: dict[str, str]
    lifecycle_stage: str = "active"


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    tags: dict[str, str]


def _tags(items: Any) -> dict[str, str]:
    return {item["key"]: item.get("value", "") for item in items or ()}


class MlflowSpaces:
    """The REST calls a project's space needs, against one tracking server.

    Args:
        url: the tracking server, e.g. ``http://mlflow.mlflow.svc.cluster.local:5000``.
        username / password: an MLflow admin (basic auth); None for a server without the auth app (the
            local target), where only the experiment, models and tags are managed.
        client: an ``httpx.Client`` to use instead of a new one (tests pass one with a short timeout).
    """

    def __init__(
        self,
        url: str,
        username: str | None = None,
        password: str | None = None,
        *,
        timeout: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        auth = (username, password) if username and password else None
        self._client = client or httpx.Client(base_url=self.url, auth=auth, timeout=timeout)
        self._auth_enabled: bool | None = None

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> MlflowSpaces:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        missing_ok: bool = False,
        exists_ok: bool = False,
    ) -> dict[str, Any] | None:
        """One request; None when the resource is absent (``missing_ok``) or already there (``exists_ok``).

        Raises:
            MlflowApiError: unreachable, refused (401/403: the fix is the admin credentials), or any other
                error MLflow answered, with its error code and message.
        """
        try:
            response = self._client.request(method, path, params=params, json=body)
        except httpx.HTTPError as error:
            raise MlflowApiError(
                f"MLflow at {self.url} cannot be reached ({error}); check --mlflow-url"
            ) from error
        if response.status_code < 300:
            return response.json() if response.content else {}
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        code = payload.get("error_code") if isinstance(payload, dict) else None
        if missing_ok and code == "RESOURCE_DOES_NOT_EXIST":
            return None
        if exists_ok and code == "RESOURCE_ALREADY_EXISTS":
            return None
        if response.status_code in (401, 403):
            raise MlflowApiError(
                f"MLflow at {self.url} refused {method} {path} ({response.status_code}); the sync needs an "
                f"MLflow admin: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD",
                status=response.status_code,
                error_code=code,
            )
        message = payload.get("message") if isinstance(payload, dict) else None
        raise MlflowApiError(
            f"MLflow at {self.url}: {method} {path} answered {response.status_code} "
            f"{code or ''} {message or response.text[:200]}".rstrip(),
            status=response.status_code,
            error_code=code,
        )

    def auth_enabled(self) -> bool:
        """Whether the server runs the basic-auth app (its user API exists); cached."""
        if self._auth_enabled is None:
            try:
                response = self._client.get(f"{_REST}/users/current")
            except httpx.HTTPError as error:
                raise MlflowApiError(
                    f"MLflow at {self.url} cannot be reached ({error}); check --mlflow-url"
                ) from error
            if response.status_code in (401, 403):
                raise MlflowApiError(
                    f"MLflow at {self.url} runs basic auth and refused the sync's credentials "
                    f"({response.status_code}); set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to "
                    f"an admin",
                    status=response.status_code,
                )
            self._auth_enabled = response.status_code == 200
        return self._auth_enabled

    # -- experiments -------------------------------------------------------------------------------

    def experiment(self, name: str) -> Experiment | None:
        found = self._call(
            "GET", f"{_REST}/experiments/get-by-name", params={"experiment_name": name}, missing_ok=True
        )
        return None if found is None else _experiment(found["experiment"])

    def create_experiment(self, name: str, tags: Mapping[str, str]) -> str:
        created = self._call(
            "POST",
            f"{_REST}/experiments/create",
            body={"name": name, "tags": [{"key": k, "value": v} for k, v in tags.items()]},
        )
        assert created is not None
        return str(created["experiment_id"])

    def restore_experiment(self, experiment_id: str) -> None:
        self._call("POST", f"{_REST}/experiments/restore", body={"experiment_id": experiment_id})

    def set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self._call(
            "POST",
            f"{_REST}/experiments/set-experiment-tag",
            body={"experiment_id": experiment_id, "key": key, "value": value},
        )

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self._call(
            "POST",
            f"{_REST}/experiments/delete-experiment-tag",
            body={"experiment_id": experiment_id, "key": key},
            missing_ok=True,
        )

    def managed_experiments(self) -> Iterator[Experiment]:
        """Every experiment a sync made (tag ``mlops.managed = 'true'``), deleted ones included."""
        token: str | None = None
        while True:
            body: dict[str, Any] = {
                "max_results": 1000,
                "filter": f"tags.`{MANAGED_TAG}` = 'true'",
                # ALL: an experiment someone deleted is still the project's, and still archived.
                "view_type": "ALL",
            }
            if token:
                body["page_token"] = token
            page = self._call("POST", f"{_REST}/experiments/search", body=body) or {}
            for item in page.get("experiments", ()):
                yield _experiment(item)
            token = page.get("next_page_token")
            if not token:
                return

    # -- registered models -------------------------------------------------------------------------

    def registered_model(self, name: str) -> RegisteredModel | None:
        found = self._call("GET", f"{_REST}/registered-models/get", params={"name": name}, missing_ok=True)
        if found is None:
            return None
        model = found["registered_model"]
        return RegisteredModel(model["name"], _tags(model.get("tags")))

    def create_registered_model(self, name: str, tags: Mapping[str, str], description: str) -> bool:
        """Create it; False when it already exists (someone registered it first: it is then tagged)."""
        created = self._call(
            "POST",
            f"{_REST}/registered-models/create",
            body={
                "name": name,
                "tags": [{"key": k, "value": v} for k, v in tags.items()],
                "description": description,
            },
            exists_ok=True,
        )
        return created is not None

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        self._call(
            "POST", f"{_REST}/registered-models/set-tag", body={"name": name, "key": key, "value": value}
        )

    def delete_model_tag(self, name: str, key: str) -> None:
        self._call(
            "DELETE",
            f"{_REST}/registered-models/delete-tag",
            body={"name": name, "key": key},
            missing_ok=True,
        )

    def project_models(self, project: str) -> list[RegisteredModel]:
        """The registered models tagged with ``project`` (what a sync declared for it)."""
        models: list[RegisteredModel] = []
        token: str | None = None
        while True:
            params = {"filter": f"tags.`{PROJECT_TAG}` = '{project}'", "max_results": "1000"}
            if token:
                params["page_token"] = token
            page = self._call("GET", f"{_REST}/registered-models/search", params=params) or {}
            models += [
                RegisteredModel(item["name"], _tags(item.get("tags")))
                for item in page.get("registered_models", ())
            ]
            token = page.get("next_page_token")
            if not token:
                return models

    # -- users, grants and roles (the basic-auth app) ----------------------------------------------

    def user_exists(self, username: str) -> bool:
        return (
            self._call("GET", f"{_REST}/users/get", params={"username": username}, missing_ok=True)
            is not None
        )

    def create_user(self, username: str, password: str) -> None:
        self._call("POST", f"{_REST}/users/create", body={"username": username, "password": password})

    def user_permission(self, username: str, resource_type: str, resource_id: str) -> str:
        """The user's effective permission (its grants, its roles, else the default) on one resource."""
        found = self._call(
            "GET",
            f"{_AUTH}/users/permissions/get",
            params={"username": username, "resource_type": resource_type, "resource_id": resource_id},
        )
        assert found is not None
        return str(found["permission"])

    def set_user_permission(
        self, username: str, resource_type: str, resource_id: str, permission: str, *, apply: bool = True
    ) -> bool:
        """Make the user's own grant ``permission``; True when that changed anything.

        A grant that exists cannot be granted again (RESOURCE_ALREADY_EXISTS), so a different one is revoked
        first; a missing one is fine to revoke.
        """
        if self.user_permission(username, resource_type, resource_id) == permission:
            return False
        if apply:
            target = {"username": username, "resource_type": resource_type, "resource_id": resource_id}
            self._call("POST", f"{_AUTH}/users/permissions/revoke", body=target, missing_ok=True)
            self._call("POST", f"{_AUTH}/users/permissions/grant", body={**target, "permission": permission})
        return True

    def roles(self) -> dict[str, dict[str, Any]]:
        """The roles of the default workspace by name, each with its permissions."""
        found = self._call("GET", f"{_AUTH}/roles/list", params={"workspace": DEFAULT_WORKSPACE}) or {}
        return {role["name"]: role for role in found.get("roles", ())}

    def create_role(self, name: str, description: str) -> dict[str, Any]:
        created = self._call(
            "POST",
            f"{_AUTH}/roles/create",
            body={"name": name, "workspace": DEFAULT_WORKSPACE, "description": description},
        )
        assert created is not None
        return created["role"]

    def set_role_permission(
        self,
        role: dict[str, Any],
        resource_type: str,
        pattern: str,
        permission: str,
        *,
        apply: bool = True,
    ) -> bool:
        """Make the role's permission on one resource ``permission``; True when that changed anything.

        ``role`` (as ``roles()`` returned it) is kept up to date with the change, so one listing serves a run.
        """
        permissions = role.setdefault("permissions", [])
        for granted in permissions:
            if granted["resource_type"] == resource_type and granted["resource_pattern"] == pattern:
                if granted["permission"] == permission:
                    return False
                if apply:
                    self._call(
                        "PATCH",
                        f"{_AUTH}/roles/permissions/update",
                        body={"role_permission_id": granted["id"], "permission": permission},
                    )
                granted["permission"] = permission
                return True
        added: dict[str, Any] = {
            "id": None,
            "resource_type": resource_type,
            "resource_pattern": pattern,
            "permission": permission,
        }
        if apply:
            answer = self._call(
                "POST",
                f"{_AUTH}/roles/permissions/add",
                body={"role_id": role["id"], **{k: v for k, v in added.items() if k != "id"}},
            )
            assert answer is not None
            added = answer["role_permission"]
        permissions.append(added)
        return True

    def user_roles(self, username: str) -> list[str]:
        found = self._call("GET", f"{_AUTH}/users/roles/list", params={"username": username}) or {}
        return [role["name"] for role in found.get("roles", ())]

    def assign_role(self, username: str, role_id: int) -> None:
        self._call(
            "POST", f"{_AUTH}/roles/assign", body={"username": username, "role_id": role_id}, exists_ok=True
        )


def _experiment(item: Mapping[str, Any]) -> Experiment:
    return Experiment(
        experiment_id=str(item["experiment_id"]),
        name=item["name"],
        tags=_tags(item.get("tags")),
        lifecycle_stage=item.get("lifecycle_stage", "active"),
    )
