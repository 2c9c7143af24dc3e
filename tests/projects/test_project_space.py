"""The project space's pieces without an MLflow server: upstream facts, KFP experiments against the API
fake, the monitor store's archive marks on both backends, the catalog's loop models, the CLI's input errors.

The KFP API has no real server in the tests (a KFP API server needs MySQL, Argo and Kubernetes): our client
runs against ``tests/kfp_api_fake.py``, which serves the 2.17.0 contract recorded in
``tests/upstream_facts/kfp_api.py`` and checks every body against ``kfp_server_api``'s models.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import httpx
import kfp_server_api
import pytest
from click.testing import CliRunner
from kfp_api_fake import KfpApiFake
from upstream_facts import fact

from platform_components.errors import ConfigError
from platform_components.monitoring.store import SCHEMA_VERSION, open_store
from platform_components.projects import mlflow_space
from platform_components.projects.cli import read_users_file, sync_command
from platform_components.projects.kfp_space import ARCHIVED, AVAILABLE, KfpApiError, KfpExperiments
from platform_components.projects.loop_models import catalog_loop_models
from platform_components.projects.sync import ACTIVE_GRANTS, ARCHIVED_GRANTS
from platform_components.settings import CatalogSettings, PolicySettings
from projects.catalogs import catalog_data, write_catalog

# -- upstream facts ----------------------------------------------------------------------------------


def test_the_auth_routes_we_call_are_the_pinned_mlflows() -> None:
    from mlflow.server.auth import routes

    recorded = fact("mlflow.auth.routes")
    assert {name: getattr(routes, name) for name in recorded} == recorded
    source = inspect.getsource(mlflow_space)
    for path in recorded.values():
        prefix, suffix = ("_REST", path[len("/api/2.0/mlflow") :]) if "/2.0/" in path else ("_AUTH", None)
        suffix = suffix or path[len("/api/3.0/mlflow") :]
        assert f'{{{prefix}}}{suffix}"' in source, f"mlflow_space does not call {path} as {prefix}"


def test_workspaces_are_opt_in_and_keep_names_per_workspace() -> None:
    """Why a project's space is an experiment and tagged models, not a workspace (docs/project-space.md)."""
    from mlflow.cli import server
    from mlflow.store.model_registry.dbmodels.models import SqlRegisteredModel
    from mlflow.store.tracking.dbmodels.models import SqlExperiment
    from mlflow.utils.workspace_utils import DEFAULT_WORKSPACE_NAME, WORKSPACE_HEADER_NAME

    recorded = fact("mlflow.workspaces.opt_in")
    option = next(param for param in server.params if param.name == "enable_workspaces")
    assert option.default is recorded["flag_default"]
    assert recorded["header"] == WORKSPACE_HEADER_NAME
    assert DEFAULT_WORKSPACE_NAME == recorded["default_workspace"] == mlflow_space.DEFAULT_WORKSPACE
    assert fact("mlflow.auth.no_groups_but_roles") == mlflow_space.DEFAULT_WORKSPACE
    names = fact("mlflow.workspaces.names_per_workspace")
    experiment_unique = {
        tuple(column.name for column in constraint.columns)
        for constraint in SqlExperiment.__table__.constraints
        if constraint.__class__.__name__ == "UniqueConstraint"
    }
    assert names["experiments"] in experiment_unique
    assert (
        tuple(column.name for column in SqlRegisteredModel.__table__.primary_key.columns)
        == (names["registered_models"])
    )


def test_the_grants_we_set_are_mlflow_permissions_that_read_and_edit() -> None:
    from mlflow.server.auth.permissions import ALL_PERMISSIONS

    for permission in {*ACTIVE_GRANTS.values(), *ARCHIVED_GRANTS.values()}:
        assert permission in ALL_PERMISSIONS
    for name, (can_read, can_update) in fact("mlflow.auth.permission_names").items():
        assert (ALL_PERMISSIONS[name].can_read, ALL_PERMISSIONS[name].can_update) == (can_read, can_update)
    # Archived: everyone still reads, nobody of the project writes.
    assert all(ALL_PERMISSIONS[grant].can_read for grant in ARCHIVED_GRANTS.values())
    assert not any(ALL_PERMISSIONS[grant].can_update for grant in ARCHIVED_GRANTS.values())
    assert ALL_PERMISSIONS[ACTIVE_GRANTS["pipeline"]].can_update
    assert not ALL_PERMISSIONS[ACTIVE_GRANTS["monitor"]].can_update


def test_the_kfp_archive_calls_are_the_generated_clients() -> None:
    recorded = fact("kfp_api.archive_experiment")
    api = inspect.getsource(kfp_server_api.ExperimentServiceApi)
    for suffix in (recorded["archive"], recorded["unarchive"]):
        assert f"'/apis/v2beta1/experiments/{{experiment_id}}{suffix}', 'POST'" in api
    assert set(recorded["states"]) <= set(kfp_server_api.V2beta1ExperimentStorageState.allowable_values)
    assert recorded["states"] == (AVAILABLE, ARCHIVED)


# -- KFP experiments against the API fake ------------------------------------------------------------


def test_a_project_experiment_is_created_found_archived_and_restored(kfp_api: KfpApiFake) -> None:
    with KfpExperiments(kfp_api.host) as kfp:
        assert kfp.find("credit") is None
        created = kfp.create("credit", "mlops project credit")
        kfp.create("credit-other", "a name that contains the first")
        found = kfp.find("credit")
        assert found is not None and found.experiment_id == created.experiment_id
        assert found.storage_state == AVAILABLE
        kfp.archive(created.experiment_id)
        archived = kfp.find("credit")
        assert archived is not None and archived.storage_state == ARCHIVED
        # Archived, not deleted: the fake still has it, with its description.
        assert kfp_api.state.experiments[created.experiment_id].description == "mlops project credit"
        kfp.unarchive(created.experiment_id)
        restored = kfp.find("credit")
        assert restored is not None and restored.storage_state == AVAILABLE
    assert not any(r.method == "DELETE" for r in kfp_api.requests)


def test_kfp_errors_name_the_server_and_status(kfp_api: KfpApiFake) -> None:
    with KfpExperiments(kfp_api.host) as kfp:
        with pytest.raises(KfpApiError, match="404") as raised:
            kfp.archive("no-such-experiment")
        assert raised.value.status == 404
        kfp.create("credit", "")
        with pytest.raises(KfpApiError, match="409"):
            kfp.create("credit", "")
    unreachable = KfpExperiments("http://127.0.0.1:9", timeout=2)
    with pytest.raises(KfpApiError, match="cannot be reached.*--kfp-url"):
        unreachable.find("credit")
    unreachable.close()


# -- the monitor store's archive marks ---------------------------------------------------------------


def test_archiving_marks_models_and_keeps_their_history(store_url: str) -> None:
    with open_store(store_url) as store:
        assert store.schema_version() == SCHEMA_VERSION
        store.save_result(
            "churn", "1", checked_at=10.0, window_start=0.0, window_end=10.0, result={"rows": 3}
        )
        store.record_decision(
            "churn", "1", action="retrain", reasons=["drift"], evidence={"psi": 0.3}, outcome="started"
        )
        assert store.archive_models(["churn", "churn-v2"], project="churn", reason="removed", now=100.0) == [
            "churn",
            "churn-v2",
        ]
        # Again: a no-op that keeps the first mark.
        assert store.archive_models(["churn"], project="churn", reason="again", now=200.0) == []
    with open_store(store_url) as reopened:
        marks = reopened.archived_models()
        assert marks["churn"] == {"project": "churn", "archived_at": 100.0, "reason": "removed"}
        # Marked, not deleted: the model's results and decisions are all still there.
        assert reopened.latest_result("churn") is not None
        assert len(reopened.decisions("churn")) == 1
        assert reopened.restore_models(["churn", "unknown"]) == ["churn"]
        assert set(reopened.archived_models()) == {"churn-v2"}


# -- the catalog's models for `mlops loop --local --catalog` -----------------------------------------


def test_the_catalogs_models_get_their_project_and_own_policy_keys() -> None:
    catalog = CatalogSettings.model_validate(catalog_data("credit", "churn"))
    policy = PolicySettings.model_validate({"defaults": {"cooldown": "1d", "min_labels": 10}})
    entries = {entry.name: entry for entry in catalog_loop_models(catalog, policy)}
    assert set(entries) == {"credit-default", "credit-limit", "churn"}
    assert entries["credit-default"].policy.cooldown == 2 * 86400  # the project's key wins the default
    assert entries["credit-default"].policy.min_labels == 10
    assert entries["credit-limit"].policy.min_labels == 50  # the model's own key wins the project's
    assert entries["credit-limit"].label_column == "defaulted"
    assert entries["churn"].policy.cooldown == 86400 and entries["churn"].registered_model == "churn-model"
    assert [entry.name for entry in catalog_loop_models(catalog, policy, only="churn")] == ["churn"]


def test_a_model_outside_the_catalog_or_keys_set_twice_are_refused() -> None:
    catalog = CatalogSettings.model_validate(catalog_data("credit"))
    with pytest.raises(ConfigError, match="'nope' is not a model of the catalog.*credit-default"):
        catalog_loop_models(catalog, PolicySettings(), only="nope")
    twice = PolicySettings.model_validate({"projects": {"credit": {"cooldown": "3d"}}})
    with pytest.raises(ConfigError, match=r"projects\.0\.policy.*set them in one place"):
        catalog_loop_models(catalog, twice)


# -- the command's input errors ----------------------------------------------------------------------


def test_a_users_file_must_map_usernames_to_passwords(tmp_path: Path) -> None:
    good = tmp_path / "users.json"
    good.write_text(json.dumps({"mlops-monitor": "secret-1"}))
    assert read_users_file(good) == {"mlops-monitor": "secret-1"}
    for bad in ("[]", '{"mlops-monitor": ""}', "not json"):
        good.write_text(bad)
        with pytest.raises(ConfigError, match="--users-file"):
            read_users_file(good)


def test_sync_without_a_catalog_says_where_it_looked(tmp_path: Path) -> None:
    result = CliRunner().invoke(sync_command, ["--state-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{tmp_path / 'catalog.yaml'} does not exist" in result.output


def test_sync_against_an_unreachable_mlflow_says_so(tmp_path: Path) -> None:
    catalog = write_catalog(tmp_path / "catalog.yaml", "credit")
    result = CliRunner().invoke(
        sync_command,
        ["--catalog", str(catalog), "--mlflow-url", "http://127.0.0.1:9", "--state-dir", str(tmp_path)],
    )
    assert isinstance(result.exception, mlflow_space.MlflowApiError)
    assert "cannot be reached" in str(result.exception) and "--mlflow-url" in str(result.exception)


def test_a_bad_catalog_is_refused_with_its_key(tmp_path: Path) -> None:
    data = catalog_data("credit")
    data["projects"][0]["team"] = "nobody"
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(json.dumps(data))
    result = CliRunner().invoke(
        sync_command,
        ["--catalog", str(catalog), "--mlflow-url", "http://127.0.0.1:9", "--state-dir", str(tmp_path)],
    )
    assert isinstance(result.exception, ConfigError)
    assert "projects.0.team" in str(result.exception) and "'nobody'" in str(result.exception)


def test_every_http_error_becomes_a_platform_error_naming_the_call() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"error_code": "INTERNAL_ERROR", "message": "database is down"})

    client = httpx.Client(base_url="http://mlflow.test", transport=httpx.MockTransport(answer))
    with (
        mlflow_space.MlflowSpaces("http://mlflow.test", client=client) as spaces,
        pytest.raises(mlflow_space.MlflowApiError, match="experiments/get-by-name answered 500 INTERNAL"),
    ):
        spaces.experiment("credit")
