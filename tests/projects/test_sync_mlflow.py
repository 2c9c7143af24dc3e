"""``mlops project sync`` against real MLflow servers: one with the basic-auth app (as the cluster runs it:
NO_PERMISSIONS default, fail-closed) and one without (as the local target runs it), both started once for
the module, side by side. KFP is the API fake (``test_project_space.py`` says why); the monitor store is a
real SQLite file.

Permissions are checked the way a user meets them: requests made as ``credit-pipeline``, ``mlops-monitor``
and the team member ``alice``, answered 200 or 403 by the server's own authorisation.

The tests run in order and share the servers' state: create, no-op, dry run, archive, restore.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from kfp_api_fake import KfpApiFake
from processes import find_free_port, stop_process_tree

from platform_components.monitoring.store import open_store
from platform_components.projects import cli
from platform_components.projects.kfp_space import KfpExperiments
from platform_components.projects.mlflow_space import MlflowApiError, MlflowSpaces
from platform_components.projects.sync import ProjectSync
from platform_components.settings import load_catalog_file
from projects.catalogs import write_catalog

pytestmark = pytest.mark.slow

ADMIN = ("admin", "admin-password-for-the-sync-test")
PASSWORDS = {
    "mlops-monitor": "monitor-password-1234",
    "credit-pipeline": "credit-pipeline-password-1234",
    "churn-pipeline": "churn-pipeline-password-1234",
}
ALICE = ("alice", "alice-password-1234")
START_SECONDS = 120


@dataclass
class Servers:
    auth_url: str
    plain_url: str


def _start(state: Path, port: int, *, auth: bool) -> subprocess.Popen:
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{state / 'mlflow.db'}",
        "--serve-artifacts",
        "--artifacts-destination",
        str(state / "artifacts"),
    ]
    environment = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    if auth:
        ini = state / "basic_auth.ini"
        ini.write_text(
            "[mlflow]\n"
            "default_permission = NO_PERMISSIONS\n"
            f"database_uri = sqlite:///{state / 'auth.db'}\n"
            f"admin_username = {ADMIN[0]}\n"
            f"admin_password = {ADMIN[1]}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            # Every request otherwise pays a PBKDF2 password check (~0.3 s of CPU, seconds on a loaded
            # machine); the cache is the pinned MLflow's own option (its shipped basic_auth.ini).
            "auth_cache_ttl_seconds = 600\n"
        )
        command += ["--app-name", "basic-auth"]
        environment.update(
            MLFLOW_AUTH_CONFIG_PATH=str(ini),
            MLFLOW_BASIC_AUTH_FAIL_CLOSED="true",
            MLFLOW_FLASK_SERVER_SECRET_KEY="a-secret-key-for-the-test-server",
        )
    log = open(state / "server.log", "wb")  # noqa: SIM115 - the server writes to it until it stops
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Both servers, started at once (each start costs ~20 s of imports; in parallel they overlap)."""
    started = {}
    for name, auth in (("auth", True), ("plain", False)):
        state = tmp_path_factory.mktemp(f"mlflow-{name}")
        port = find_free_port()
        started[name] = (_start(state, port, auth=auth), f"http://127.0.0.1:{port}", state)
    try:
        deadline = time.monotonic() + START_SECONDS
        for process, url, state in started.values():
            while True:
                log = (state / "server.log").read_text(errors="replace")
                assert process.poll() is None, f"mlflow server exited:\n{log[-3000:]}"
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"mlflow server not healthy:\n{log[-3000:]}"
                time.sleep(0.3)
        # alice exists as an MLflow user (an administrator made her); bob does not.
        httpx.post(
            f"{started['auth'][1]}/api/2.0/mlflow/users/create",
            json={"username": ALICE[0], "password": ALICE[1]},
            auth=ADMIN,
            timeout=30,
        ).raise_for_status()
        yield Servers(auth_url=started["auth"][1], plain_url=started["plain"][1])
    finally:
        for process, _, _ in started.values():
            stop_process_tree(process)


@pytest.fixture(scope="module")
def kfp() -> Iterator[KfpApiFake]:
    with KfpApiFake() as fake:
        yield fake


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sync")


def _sync(servers: Servers, kfp: KfpApiFake, workdir: Path, *projects: str, dry_run: bool = False):
    catalog = load_catalog_file(write_catalog(workdir / "catalog.yaml", *projects))
    with (
        MlflowSpaces(servers.auth_url, *ADMIN) as mlflow,
        KfpExperiments(kfp.host) as experiments,
        open_store(workdir / "monitor.sqlite") as store,
    ):
        return ProjectSync(mlflow, kfp=experiments, store=store, passwords=PASSWORDS, dry_run=dry_run).run(
            catalog
        )


def _as(user: tuple[str, str], servers: Servers) -> httpx.Client:
    return httpx.Client(base_url=servers.auth_url, auth=user, timeout=30)


def _experiment_id(servers: Servers, name: str) -> str:
    response = httpx.get(
        f"{servers.auth_url}/api/2.0/mlflow/experiments/get-by-name",
        params={"experiment_name": name},
        auth=ADMIN,
        timeout=30,
    )
    response.raise_for_status()
    return response.json()["experiment"]["experiment_id"]


def _tag_experiment(client: httpx.Client, experiment_id: str) -> int:
    return client.post(
        "/api/2.0/mlflow/experiments/set-experiment-tag",
        json={"experiment_id": experiment_id, "key": "note", "value": "x"},
    ).status_code


def _tag_model(client: httpx.Client, name: str) -> int:
    return client.post(
        "/api/2.0/mlflow/registered-models/set-tag", json={"name": name, "key": "note", "value": "x"}
    ).status_code


def _read_model(client: httpx.Client, name: str) -> int:
    return client.get("/api/2.0/mlflow/registered-models/get", params={"name": name}).status_code


def _tags(servers: Servers, kind: str, name: str) -> dict[str, str]:
    if kind == "experiment":
        path, params, key = "experiments/get-by-name", {"experiment_name": name}, "experiment"
    else:
        path, params, key = "registered-models/get", {"name": name}, "registered_model"
    body = httpx.get(
        f"{servers.auth_url}/api/2.0/mlflow/{path}", params=params, auth=ADMIN, timeout=30
    ).json()
    return {tag["key"]: tag["value"] for tag in body[key].get("tags", ())}


def test_a_sync_gives_each_project_its_space(servers: Servers, kfp: KfpApiFake, workdir: Path) -> None:
    # Someone registered credit-limit before the catalog declared it: the sync tags it, keeps it.
    httpx.post(
        f"{servers.auth_url}/api/2.0/mlflow/registered-models/create",
        json={"name": "credit-limit", "description": "registered by hand"},
        auth=ADMIN,
        timeout=30,
    ).raise_for_status()
    with open_store(workdir / "monitor.sqlite") as store:
        store.save_result("churn", "1", checked_at=5.0, window_start=0.0, window_end=5.0, result={"rows": 7})

    report = _sync(servers, kfp, workdir, "credit", "churn")

    assert [project.name for project in report.projects] == ["credit", "churn"]
    assert not report.archived
    credit_tags = _tags(servers, "experiment", "credit")
    assert credit_tags | {"mlops.managed": "true"} == credit_tags
    assert {credit_tags[k] for k in ("mlops.project", "mlops.owner", "mlops.team")} == {
        "credit",
        "alice",
        "risk",
    }
    assert _tags(servers, "model", "credit-limit")["mlops.project"] == "credit"
    assert _tags(servers, "model", "churn-model")["mlops.served_as"] == "churn"
    credit, churn = _experiment_id(servers, "credit"), _experiment_id(servers, "churn")

    with _as(("credit-pipeline", PASSWORDS["credit-pipeline"]), servers) as pipeline:
        assert _tag_experiment(pipeline, credit) == 200
        assert _tag_model(pipeline, "credit-default") == 200
        assert _tag_experiment(pipeline, churn) == 403  # another project's space
        assert _tag_model(pipeline, "churn-model") == 403
    with _as(("mlops-monitor", PASSWORDS["mlops-monitor"]), servers) as monitor:
        assert _read_model(monitor, "churn-model") == 200
        assert _read_model(monitor, "credit-limit") == 200
        assert _tag_experiment(monitor, credit) == 403  # READ only
    with _as(ALICE, servers) as alice:  # a member of team risk, through the role team-risk
        assert _tag_experiment(alice, credit) == 200
        assert _tag_model(alice, "credit-limit") == 200
        assert _tag_model(alice, "churn-model") == 403  # team growth's

    credit_result = report.projects[0]
    assert any("'bob' has no MLflow user" in note for note in credit_result.notes)
    states = {e.display_name: e.storage_state for e in kfp.state.experiments.values()}
    assert states == {"credit": "AVAILABLE", "churn": "AVAILABLE"}
    assert credit_result.kfp_experiment_id is not None


def test_a_second_sync_changes_nothing(servers: Servers, kfp: KfpApiFake, workdir: Path) -> None:
    before = len(kfp.requests)
    report = _sync(servers, kfp, workdir, "credit", "churn")
    assert not report.changed, [project.changes for project in report.projects]
    assert not [r for r in kfp.requests[before:] if r.method == "POST"]


def test_a_dry_run_reports_and_changes_nothing(servers: Servers, kfp: KfpApiFake, workdir: Path) -> None:
    report = _sync(servers, kfp, workdir, "credit", "fraud", dry_run=True)
    fraud = next(project for project in report.projects if project.name == "fraud")
    assert "would create MLflow experiment 'fraud'" in fraud.changes
    assert any(
        change.startswith("would archive KFP experiment 'churn'") for change in report.archived[0].changes
    )
    with MlflowSpaces(servers.auth_url, *ADMIN) as mlflow:
        assert mlflow.experiment("fraud") is None
        assert mlflow.registered_model("fraud") is None
    assert "mlops.archived" not in _tags(servers, "experiment", "churn")
    assert {e.storage_state for e in kfp.state.experiments.values()} == {"AVAILABLE"}


def test_removing_a_project_archives_and_never_deletes(
    servers: Servers, kfp: KfpApiFake, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = write_catalog(workdir / "catalog.yaml", "credit")  # churn removed
    monkeypatch.setenv(cli.USERNAME_ENV, ADMIN[0])
    monkeypatch.setenv(cli.PASSWORD_ENV, ADMIN[1])
    users = workdir / "users.json"
    users.write_text(json.dumps(PASSWORDS))
    arguments = ["--catalog", str(catalog), "--mlflow-url", servers.auth_url, "--kfp-url", kfp.host]
    arguments += ["--monitor-store", f"sqlite:///{workdir / 'monitor.sqlite'}", "--users-file", str(users)]
    result = CliRunner().invoke(cli.sync_command, arguments, catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert "churn: ARCHIVED" in result.output
    assert "archived (never deleted): churn" in result.output
    experiment = _tags(servers, "experiment", "churn")
    assert experiment["mlops.archived"] == "true" and "mlops.archived_at" in experiment
    assert _tags(servers, "model", "churn-model")["mlops.archived"] == "true"
    churn = _experiment_id(servers, "churn")
    with _as(("churn-pipeline", PASSWORDS["churn-pipeline"]), servers) as pipeline:
        assert _read_model(pipeline, "churn-model") == 200  # READ: its history stays visible
        assert _tag_model(pipeline, "churn-model") == 403  # but nothing is written any more
        assert _tag_experiment(pipeline, churn) == 403
    with _as(("mlops-monitor", PASSWORDS["mlops-monitor"]), servers) as monitor:
        assert _read_model(monitor, "churn-model") == 200
    archived = next(e for e in kfp.state.experiments.values() if e.display_name == "churn")
    assert archived.storage_state == "ARCHIVED"
    with open_store(workdir / "monitor.sqlite") as store:
        assert store.archived_models()["churn"]["project"] == "churn"
        assert store.latest_result("churn") == {"rows": 7}  # the history is kept
    # The still-declared project is untouched, and a second run is a no-op.
    again = CliRunner().invoke(cli.sync_command, [*arguments, "--json"], catch_exceptions=False)
    report = json.loads(again.output)
    assert report["archived"] == ["churn"] and report["changed"] is False


def test_a_project_back_in_the_catalog_is_restored(servers: Servers, kfp: KfpApiFake, workdir: Path) -> None:
    report = _sync(servers, kfp, workdir, "credit", "churn")
    assert not report.archived
    assert "mlops.archived" not in _tags(servers, "experiment", "churn")
    assert "mlops.archived" not in _tags(servers, "model", "churn-model")
    with _as(("churn-pipeline", PASSWORDS["churn-pipeline"]), servers) as pipeline:
        assert _tag_model(pipeline, "churn-model") == 200
    assert {e.storage_state for e in kfp.state.experiments.values()} == {"AVAILABLE"}
    with open_store(workdir / "monitor.sqlite") as store:
        assert "churn" not in store.archived_models()


def test_wrong_admin_credentials_name_the_variables(servers: Servers) -> None:
    mlflow = MlflowSpaces(servers.auth_url, "admin", "not-the-password")
    with pytest.raises(MlflowApiError, match="MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"):
        mlflow.auth_enabled()
    mlflow.close()


def test_the_local_target_syncs_without_grants(servers: Servers, tmp_path: Path) -> None:
    """`mlops up --local` runs this on <state>/catalog.yaml: experiments, models, tags; no auth app there."""
    write_catalog(tmp_path / "catalog.yaml", "credit", "churn")
    said: list[str] = []
    cli.sync_local_catalog(tmp_path, servers.plain_url, said.append)
    assert any("without the basic-auth app" in line for line in said)
    with MlflowSpaces(servers.plain_url) as mlflow:
        experiment = mlflow.experiment("churn")
        assert experiment is not None and experiment.tags["mlops.project"] == "churn"
        model = mlflow.registered_model("credit-default")
        assert model is not None and model.tags["mlops.owner"] == "alice"
    # Removing a project locally archives it too, its monitor history included.
    write_catalog(tmp_path / "catalog.yaml", "credit")
    cli.sync_local_catalog(tmp_path, servers.plain_url, said.append)
    with MlflowSpaces(servers.plain_url) as mlflow:
        experiment = mlflow.experiment("churn")
        assert experiment is not None and experiment.tags["mlops.archived"] == "true"
    with open_store(tmp_path / "monitoring" / "monitor.sqlite") as store:
        assert set(store.archived_models()) == {"churn"}
