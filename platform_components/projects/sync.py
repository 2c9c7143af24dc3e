"""``mlops project sync``: make MLflow, KFP and the monitor store match the catalog; archive what left it.

Desired state, from the catalog (``CatalogSettings``), per project:

- MLflow: the experiment ``<project>`` and each declared registered model exist, tagged ``mlops.managed``,
  ``mlops.project``, ``mlops.owner``, ``mlops.team`` (models also ``mlops.served_as``: the served names the
  monitor keys by) and not ``mlops.archived``; grants (``mlflow_space``): ``mlops-monitor`` READ,
  ``<project>-pipeline`` EDIT, the role ``team-<team>`` EDIT, with the team's existing users assigned to it;
- KFP: the experiment ``<project>``, AVAILABLE;
- the monitor store: none of its models marked archived.

A project that left the catalog is found by its tags (an experiment tagged ``mlops.managed`` whose project
the catalog no longer has) and ARCHIVED, never deleted: tag ``mlops.archived = true`` (and the time) on its
experiment and models, the pipeline user's and the team role's grants lowered to READ (the monitor keeps
READ), its KFP experiment archived (its runs stay), its models marked archived in the monitor store (their
predictions, labels, results and decisions stay). A project that comes back is restored by the same rules.

Every step reads first and writes only what differs, so a second sync changes nothing; ``--dry-run`` reads
and reports what it would change. What cannot be done is said, never skipped silently: no auth app on the
server (the local target: no grants), a user missing and no password for it, no KFP URL, no monitor store.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from platform_components.monitoring.store import MonitorStore
from platform_components.projects.kfp_space import ARCHIVED, KfpExperiments
from platform_components.projects.mlflow_space import (
    ARCHIVED_AT_TAG,
    ARCHIVED_TAG,
    MANAGED_TAG,
    MONITOR_USER,
    OWNER_TAG,
    PROJECT_TAG,
    SERVED_AS_TAG,
    TEAM_TAG,
    Experiment,
    MlflowSpaces,
    pipeline_user,
    team_role,
)
from platform_components.settings import CatalogSettings, ProjectSettings

logger = logging.getLogger(__name__)

#: Who gets what on an active project's experiment and models, and on an archived one's.
ACTIVE_GRANTS = {"monitor": "READ", "pipeline": "EDIT", "team": "EDIT"}
ARCHIVED_GRANTS = {"monitor": "READ", "pipeline": "READ", "team": "READ"}
ARCHIVE_REASON = "project removed from the catalog"


@dataclass(frozen=True)
class ProjectSpace:
    """What one project should have (from the catalog), or had (an archived project, from MLflow's tags)."""

    name: str
    owner: str
    team: str
    description: str
    #: registered model -> the served model names declared on it
    models: dict[str, tuple[str, ...]]
    members: tuple[str, ...] = ()

    @property
    def served(self) -> list[str]:
        return sorted({name for names in self.models.values() for name in names})


def desired_spaces(catalog: CatalogSettings) -> list[ProjectSpace]:
    """One ``ProjectSpace`` per catalog project."""
    teams = {team.name: team for team in catalog.teams}
    return [
        _space(project, teams[project.team].members if project.team in teams else ())
        for project in catalog.projects
    ]


def _space(project: ProjectSettings, members: tuple[str, ...]) -> ProjectSpace:
    models: dict[str, list[str]] = {}
    for model in project.models:
        models.setdefault(model.registered_model, []).append(model.name)
    return ProjectSpace(
        name=project.name,
        owner=project.owner,
        team=project.team,
        description=project.description,
        models={name: tuple(sorted(served)) for name, served in models.items()},
        members=tuple(members),
    )


@dataclass
class ProjectResult:
    """What the sync found and did for one project."""

    name: str
    state: str  # "active" or "archived"
    mlflow_experiment_id: str | None = None
    kfp_experiment_id: str | None = None
    models: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class SyncReport:
    dry_run: bool
    projects: list[ProjectResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def archived(self) -> list[ProjectResult]:
        return [project for project in self.projects if project.state == "archived"]

    @property
    def changed(self) -> bool:
        return any(project.changes for project in self.projects)

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "changed": self.changed,
            "projects": [asdict(project) for project in self.projects],
            "archived": [project.name for project in self.archived],
            "notes": list(self.notes),
        }


class ProjectSync:
    """One sync run (see the module docstring).

    Args:
        mlflow: the tracking server, as an admin where it runs the auth app.
        kfp: the KFP API; None: no KFP experiments (said in the report).
        store: the monitor store; None: monitor history not marked (said in the report).
        passwords: username -> password for the platform's users it may create (``mlops-monitor``,
            ``<project>-pipeline``); a missing user without a password keeps no grants (said).
        dry_run: read everything, write nothing, report what would change.
    """

    def __init__(
        self,
        mlflow: MlflowSpaces,
        *,
        kfp: KfpExperiments | None = None,
        store: MonitorStore | None = None,
        passwords: Mapping[str, str] | None = None,
        dry_run: bool = False,
        now: datetime.datetime | None = None,
    ) -> None:
        self.mlflow = mlflow
        self.kfp = kfp
        self.store = store
        self.passwords = dict(passwords or {})
        self.dry_run = dry_run
        self.now = now or datetime.datetime.now(datetime.UTC)
        self._users: dict[str, str | None] = {}
        # Read once per run (every request pays the server's password check): roles, users, assignments.
        self._roles: dict[str, dict[str, Any]] | None = None
        self._exists: dict[str, bool] = {}
        self._assigned: dict[str, set[str]] = {}

    def run(self, catalog: CatalogSettings) -> SyncReport:
        report = SyncReport(dry_run=self.dry_run)
        auth = self.mlflow.auth_enabled()
        if not auth:
            report.notes.append(
                f"MLflow at {self.mlflow.url} runs without the basic-auth app: experiments, models and tags "
                f"synced, no users, roles or grants"
            )
        if self.kfp is None:
            report.notes.append("no --kfp-url: KFP experiments not synced")
        if self.store is None:
            report.notes.append("no monitor store: archived projects' monitor history not marked")
        wanted = desired_spaces(catalog)
        names = {space.name for space in wanted}
        for space in wanted:
            report.projects.append(self._sync_project(space, archived=False, auth=auth))
        for space in self._departed(names):
            report.projects.append(self._sync_project(space, archived=True, auth=auth))
        return report

    # -- discovery ---------------------------------------------------------------------------------

    def _departed(self, names: set[str]) -> list[ProjectSpace]:
        """Projects a sync made (tagged in MLflow) that the catalog no longer has, rebuilt from their tags."""
        departed = []
        for experiment in self.mlflow.managed_experiments():
            project = experiment.tags.get(PROJECT_TAG)
            if not project or project in names:
                continue
            models = {
                model.name: tuple(
                    sorted(name for name in model.tags.get(SERVED_AS_TAG, model.name).split(",") if name)
                )
                for model in self.mlflow.project_models(project)
            }
            departed.append(
                ProjectSpace(
                    name=project,
                    owner=experiment.tags.get(OWNER_TAG, ""),
                    team=experiment.tags.get(TEAM_TAG, ""),
                    description="",
                    models=models,
                )
            )
        return sorted(departed, key=lambda space: space.name)

    # -- one project -------------------------------------------------------------------------------

    def _sync_project(self, space: ProjectSpace, *, archived: bool, auth: bool) -> ProjectResult:
        result = ProjectResult(name=space.name, state="archived" if archived else "active")
        result.models = sorted(space.models)
        experiment_id = self._experiment(space, archived, result)
        result.mlflow_experiment_id = experiment_id
        for model in sorted(space.models):
            self._model(space, model, archived, result)
        if auth:
            self._grants(space, experiment_id, archived, result)
        self._kfp(space, archived, result)
        self._monitor_store(space, archived, result)
        if archived:
            kept = ["MLflow experiment and models tagged mlops.archived"]
            if auth:
                kept.append("grants READ")
            if self.kfp is not None:
                kept.append("KFP experiment archived")
            if self.store is not None:
                kept.append("monitor history kept and marked")
            result.notes.append(f"archived, nothing deleted: {', '.join(kept)}")
        return result

    def _change(self, result: ProjectResult, what: str) -> None:
        result.changes.append(("would " if self.dry_run else "") + what)

    def _tags(self, space: ProjectSpace) -> dict[str, str]:
        return {MANAGED_TAG: "true", PROJECT_TAG: space.name, OWNER_TAG: space.owner, TEAM_TAG: space.team}

    def _archive_tags(self, archived: bool) -> dict[str, str | None]:
        """The archive tags' wanted values (None: absent)."""
        if archived:
            return {ARCHIVED_TAG: "true", ARCHIVED_AT_TAG: self.now.isoformat(timespec="seconds")}
        return {ARCHIVED_TAG: None, ARCHIVED_AT_TAG: None}

    def _experiment(self, space: ProjectSpace, archived: bool, result: ProjectResult) -> str | None:
        experiment: Experiment | None = self.mlflow.experiment(space.name)
        wanted = self._tags(space) if not archived else {}
        if experiment is None:
            if archived:
                return None
            self._change(result, f"create MLflow experiment {space.name!r}")
            if self.dry_run:
                return None
            return self.mlflow.create_experiment(space.name, wanted)
        if experiment.lifecycle_stage == "deleted" and not archived:
            self._change(result, f"restore deleted MLflow experiment {space.name!r}")
            if not self.dry_run:
                self.mlflow.restore_experiment(experiment.experiment_id)
        for key, value in {**wanted, **self._archive_tags(archived)}.items():
            current = experiment.tags.get(key)
            # The archive time is set once: a later sync of an archived project keeps the first one.
            if key == ARCHIVED_AT_TAG and value is not None and current is not None:
                continue
            if current == value:
                continue
            if value is None:
                self._change(result, f"remove tag {key} from MLflow experiment {space.name!r}")
                if not self.dry_run:
                    self.mlflow.delete_experiment_tag(experiment.experiment_id, key)
            else:
                self._change(result, f"tag MLflow experiment {space.name!r} {key}={value}")
                if not self.dry_run:
                    self.mlflow.set_experiment_tag(experiment.experiment_id, key, value)
        return experiment.experiment_id

    def _model(self, space: ProjectSpace, name: str, archived: bool, result: ProjectResult) -> None:
        model = self.mlflow.registered_model(name)
        wanted: dict[str, str | None] = {}
        if not archived:
            wanted.update(self._tags(space))
            wanted[SERVED_AS_TAG] = ",".join(space.models[name])
        wanted.update(self._archive_tags(archived))
        if model is None:
            if archived:
                return
            self._change(result, f"create registered model {name!r}")
            if not self.dry_run:
                tags = {key: value for key, value in wanted.items() if value is not None}
                if self.mlflow.create_registered_model(
                    name, tags, f"Project {space.name} (owner {space.owner})"
                ):
                    return
                model = self.mlflow.registered_model(name)  # registered meanwhile: tag it below
            if model is None:
                return
        for key, value in wanted.items():
            current = model.tags.get(key)
            if key == ARCHIVED_AT_TAG and value is not None and current is not None:
                continue
            if current == value:
                continue
            if value is None:
                self._change(result, f"remove tag {key} from registered model {name!r}")
                if not self.dry_run:
                    self.mlflow.delete_model_tag(name, key)
            else:
                self._change(result, f"tag registered model {name!r} {key}={value}")
                if not self.dry_run:
                    self.mlflow.set_model_tag(name, key, value)

    # -- grants ------------------------------------------------------------------------------------

    def _user_state(self, username: str, result: ProjectResult) -> str | None:
        """The user's state: exists, new (created now; a dry run: would be) or None (missing, said)."""
        if username not in self._users:
            if self._user_exists(username):
                self._users[username] = "exists"
            elif username in self.passwords:
                self._change(result, f"create MLflow user {username!r}")
                if not self.dry_run:
                    self.mlflow.create_user(username, self.passwords[username])
                self._users[username] = "new"
            else:
                self._users[username] = None
        state = self._users[username]
        if state is None:
            result.notes.append(
                f"MLflow user {username!r} does not exist and --users-file has no password for it: its "
                f"grants are not set (add it to the file, or create the user, and sync again)"
            )
        return state

    def _grants(
        self, space: ProjectSpace, experiment_id: str | None, archived: bool, result: ProjectResult
    ) -> None:
        grants = ARCHIVED_GRANTS if archived else ACTIVE_GRANTS
        resources = [("registered_model", name) for name in sorted(space.models)]
        if experiment_id is not None:
            resources.insert(0, ("experiment", experiment_id))
        elif not archived:  # a dry run that would create it
            resources.insert(0, ("experiment", f"<new experiment {space.name}>"))
        for role, username in (("monitor", MONITOR_USER), ("pipeline", pipeline_user(space.name))):
            state = self._user_state(username, result)
            if state is None:
                continue
            for resource_type, resource_id in resources:
                what = f"grant {username} {grants[role]} on {resource_type} {resource_id}"
                # Nothing to read on what does not exist yet (a dry run's new user or experiment).
                unread = self.dry_run and (state == "new" or resource_id.startswith("<new"))
                if unread or self.mlflow.set_user_permission(
                    username, resource_type, resource_id, grants[role], apply=not self.dry_run
                ):
                    self._change(result, what)
        if space.team:
            self._team(space, resources, grants["team"], archived, result)

    def _team(
        self,
        space: ProjectSpace,
        resources: list[tuple[str, str]],
        permission: str,
        archived: bool,
        result: ProjectResult,
    ) -> None:
        name = team_role(space.team)
        if self._roles is None:
            self._roles = self.mlflow.roles()
        role = self._roles.get(name)
        if role is None:
            if archived:
                return
            self._change(result, f"create MLflow role {name!r} (team {space.team})")
            if self.dry_run:
                role = {"id": None, "name": name, "permissions": []}
            else:
                role = self.mlflow.create_role(
                    name, f"Team {space.team}: its members' access to its projects"
                )
            self._roles[name] = role
        for resource_type, resource_id in resources:
            apply = not self.dry_run and role["id"] is not None and not resource_id.startswith("<new")
            if self.mlflow.set_role_permission(role, resource_type, resource_id, permission, apply=apply):
                self._change(result, f"grant role {name} {permission} on {resource_type} {resource_id}")
        if archived:
            return
        for member in space.members:
            if not self._user_exists(member):
                result.notes.append(
                    f"team member {member!r} has no MLflow user yet: an administrator creates it (users are "
                    f"never created for people), the next sync assigns it role {name}"
                )
                continue
            if member not in self._assigned:
                self._assigned[member] = set(self.mlflow.user_roles(member))
            if name in self._assigned[member]:
                continue
            self._change(result, f"assign MLflow user {member!r} role {name}")
            self._assigned[member].add(name)
            if not self.dry_run and role["id"] is not None:
                self.mlflow.assign_role(member, int(role["id"]))

    def _user_exists(self, username: str) -> bool:
        if username not in self._exists:
            self._exists[username] = self.mlflow.user_exists(username)
        return self._exists[username]

    # -- KFP and the monitor store -----------------------------------------------------------------

    def _kfp(self, space: ProjectSpace, archived: bool, result: ProjectResult) -> None:
        if self.kfp is None:
            return
        experiment = self.kfp.find(space.name)
        if experiment is None:
            if archived:
                return
            self._change(result, f"create KFP experiment {space.name!r}")
            if not self.dry_run:
                created = self.kfp.create(
                    space.name, f"mlops project {space.name} (team {space.team}, owner {space.owner})"
                )
                result.kfp_experiment_id = created.experiment_id
            return
        result.kfp_experiment_id = experiment.experiment_id
        if archived and experiment.storage_state != ARCHIVED:
            self._change(result, f"archive KFP experiment {space.name!r} (its runs are kept)")
            if not self.dry_run:
                self.kfp.archive(experiment.experiment_id)
        elif not archived and experiment.storage_state == ARCHIVED:
            self._change(result, f"unarchive KFP experiment {space.name!r}")
            if not self.dry_run:
                self.kfp.unarchive(experiment.experiment_id)

    def _monitor_store(self, space: ProjectSpace, archived: bool, result: ProjectResult) -> None:
        if self.store is None:
            return
        served = space.served
        marked = self.store.archived_models()
        if archived:
            todo = [model for model in served if model not in marked]
            if todo:
                self._change(result, f"mark monitor history archived (kept) for {', '.join(todo)}")
                if not self.dry_run:
                    self.store.archive_models(todo, project=space.name, reason=ARCHIVE_REASON)
        else:
            todo = [model for model in served if model in marked]
            if todo:
                self._change(result, f"unmark archived monitor history of {', '.join(todo)}")
                if not self.dry_run:
                    self.store.restore_models(todo)
