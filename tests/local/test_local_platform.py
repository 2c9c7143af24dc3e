"""The local target end to end on real processes: one platform shared by the module, tests in order.

up -> healthy -> status -> up again (idempotent) -> deploy errors -> deploy + V2 request -> the repository
API closed to clients -> the loop's deployer -> alias move and back under traffic -> down (no PID left) -> up
again keeps the registry and re-serves the deployment.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
from click.testing import CliRunner
from processes import find_free_port

from platform_components.cli import main as mlops
from platform_components.errors import ServingError
from platform_components.local import COMPONENTS, LocalPlatform
from platform_components.local.supervisor import process_tree, read_records
from platform_components.settings import LocalSettings

MODEL = "credit-default"
RUN = list(COMPONENTS)


def _frame(rows: int, seed: int) -> pd.DataFrame:
    generator = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": generator.normal(50_000, 15_000, rows).round(2),
            "debt_ratio": generator.uniform(0, 1, rows).round(4),
            "age": generator.integers(18, 80, rows).astype("int64"),
        }
    )


def _register_version(tracking_uri: str, seed: int) -> str:
    """Train a small classifier, log it as the example project does, register it; returns the version."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    frame = _frame(300, seed)
    label = ((frame["debt_ratio"] * 2 + (frame["income"] < 40_000)) > 1.2).astype(int)
    model = LogisticRegression(max_iter=500, C=1.0 / (seed + 1)).fit(frame, label)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("local-target-tests")
    with mlflow.start_run():
        mlflow.log_param("seed", seed)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(frame, model.predict_proba(frame)),
            input_example=frame.head(3),
            pyfunc_predict_fn="predict_proba",
            serialization_format="skops",
            pip_requirements=["scikit-learn", "skops"],
        )
    version = mlflow.register_model(info.model_uri, MODEL)
    return str(version.version)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> LocalSettings:
    ports = set()
    while len(ports) < 5:
        ports.add(find_free_port())
    mlflow_port, http_port, grpc_port, metrics_port, monitor_port = sorted(ports)
    return LocalSettings(
        state_dir=tmp_path_factory.mktemp("local-target") / ".mlops",
        mlflow_port=mlflow_port,
        serving_http_port=http_port,
        serving_grpc_port=grpc_port,
        serving_metrics_port=metrics_port,
        monitor_port=monitor_port,
        startup_timeout_seconds=120,
    )


@pytest.fixture(scope="module")
def platform(settings: LocalSettings) -> Iterator[LocalPlatform]:
    local = LocalPlatform(settings)
    try:
        local.up()
        yield local
    finally:
        local.down()


@pytest.fixture(scope="module")
def versions(platform: LocalPlatform) -> list[str]:
    """Two registered versions; ``champion`` -> the first."""
    from mlflow import MlflowClient

    tracking_uri = platform.endpoints().tracking_uri
    registered = [_register_version(tracking_uri, seed) for seed in (0, 1)]
    MlflowClient(tracking_uri).set_registered_model_alias(MODEL, "champion", registered[0])
    return registered


def _cli(platform: LocalPlatform, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(mlops, [*args, "--state-dir", str(platform.state.root)])
    return result.exit_code, result.output


def test_up_starts_every_process_healthy_on_its_port(
    platform: LocalPlatform, settings: LocalSettings
) -> None:
    status = platform.status()
    assert status.healthy, status
    by_name = {process.name: process for process in status.processes}
    assert list(by_name) == RUN
    assert by_name["mlflow"].ports == [settings.mlflow_port]
    for process in status.processes:
        assert psutil.pid_exists(process.pid)
        assert Path(process.log_path).is_file() and Path(process.log_path).parent.name == "logs"
    assert (platform.state.mlflow_db).is_file()


def test_status_json_shows_pid_port_health_uptime_and_log(platform: LocalPlatform) -> None:
    code, output = _cli(platform, "status", "--local", "--json")
    assert code == 0, output
    status = json.loads(output)
    assert status["healthy"] is True
    assert all(process["healthy"] and process["pid"] for process in status["processes"])
    mlflow = next(process for process in status["processes"] if process["name"] == "mlflow")
    assert mlflow["pid"] == read_records(platform.state.processes_file)["mlflow"].pid
    assert mlflow["uptime_seconds"] > 0
    assert mlflow["log_path"].endswith("logs/mlflow.log")
    assert status["endpoints"]["tracking_uri"] == platform.settings.tracking_uri


def test_up_again_says_already_running_and_keeps_the_same_pids(
    platform: LocalPlatform, settings: LocalSettings
) -> None:
    before = {name: record.pid for name, record in read_records(platform.state.processes_file).items()}
    flags = [
        "--mlflow-port",
        str(settings.mlflow_port),
        "--serving-http-port",
        str(settings.serving_http_port),
    ]
    flags += [
        "--serving-grpc-port",
        str(settings.serving_grpc_port),
        "--monitor-port",
        str(settings.monitor_port),
    ]
    flags += ["--serving-metrics-port", str(settings.serving_metrics_port)]
    code, output = _cli(platform, "up", "--local", *flags)
    assert code == 0, output
    assert "the local platform is already running" in output
    after = {name: record.pid for name, record in read_records(platform.state.processes_file).items()}
    assert after == before


def test_up_restarts_only_a_crashed_process_on_the_ports_the_platform_runs_on(
    platform: LocalPlatform, settings: LocalSettings
) -> None:
    before = read_records(platform.state.processes_file)
    crashed = psutil.Process(before["monitor"].pid)
    crashed.kill()
    crashed.wait(10)
    status = platform.status()
    assert [process.name for process in status.processes if not process.running] == ["monitor"]
    # A second shell with other ports in its environment: the missing process joins the running ones.
    elsewhere = LocalSettings(state_dir=settings.state_dir, monitor_port=find_free_port())
    status = LocalPlatform(elsewhere).up()
    assert status.healthy and status.already_running == ["mlflow", "serving"]
    after = read_records(platform.state.processes_file)
    assert after["mlflow"].pid == before["mlflow"].pid and after["serving"].pid == before["serving"].pid
    assert after["monitor"].pid != before["monitor"].pid
    assert after["monitor"].ports == [settings.monitor_port]


def test_deploying_an_unknown_model_lists_the_registered_ones(
    platform: LocalPlatform, versions: list[str]
) -> None:
    expected = r"registered model 'no-such-model' does not exist.*credit-default"
    with pytest.raises(ServingError, match=expected):
        _deploy(platform, "no-such-model", "champion")


def test_deploying_an_unknown_alias_lists_the_aliases(platform: LocalPlatform, versions: list[str]) -> None:
    expected = rf"no alias 'production'; its aliases: champion -> v{versions[0]}"
    with pytest.raises(ServingError, match=expected):
        _deploy(platform, MODEL, "production")


def _deploy(platform: LocalPlatform, name: str, alias: str) -> object:
    return platform.deploy(name, alias)


def test_deploy_serves_the_alias_version_and_answers_a_v2_request(
    platform: LocalPlatform, versions: list[str]
) -> None:
    from platform_components.serving.client import InferenceClient

    code, output = _cli(platform, "deploy", MODEL, "--alias", "champion", "--json")
    assert code == 0, output
    deployment = json.loads(output)
    assert deployment["version"] == versions[0]
    assert deployment["model_uri"] == f"models:/{MODEL}/{versions[0]}"
    with InferenceClient(platform.endpoints().inference_url) as client:
        result = client.infer(MODEL, _frame(4, seed=7), request_id="local-target-1")
    assert result.request_id == "local-target-1"
    assert result.model_version == versions[0]
    (probabilities,) = result.outputs.values()
    assert len(probabilities) == 4 and all(abs(sum(row) - 1) < 1e-6 for row in probabilities)
    recorded = json.loads(platform.state.deployments_file.read_text())["deployments"][MODEL]
    assert recorded["version"] == versions[0] and recorded["alias"] == "champion"


def test_clients_of_the_inference_port_cannot_load_or_unload_and_the_token_is_the_owners_only(
    platform: LocalPlatform, versions: list[str]
) -> None:
    import stat

    import httpx

    from platform_components.serving.client import InferenceClient

    token_file = platform.state.serving_admin_token_file
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    url = platform.endpoints().inference_url
    for path in ("/v2/repository/index", f"/v2/repository/models/{MODEL}/unload"):
        refused = httpx.post(f"{url}{path}", json={}, timeout=10)
        assert refused.status_code == 403 and "mlops deploy" in refused.json()["error"], refused.text
    with InferenceClient(url) as client:
        assert client.infer(MODEL, _frame(1, seed=2)).model_version == versions[0]


def test_the_loop_deployer_reports_what_is_served_and_switches_versions(
    platform: LocalPlatform, versions: list[str]
) -> None:
    from platform_components.loop.local_deployer import LocalDeployer
    from platform_components.serving.client import InferenceClient

    deployer = LocalDeployer(platform)
    assert deployer.serving_version(MODEL) == versions[0]
    assert deployer.serving_version("not-deployed") is None
    recorded_before = platform.state.read_deployments()[MODEL]

    unchanged = deployer.ensure(MODEL, MODEL, versions[0])
    assert (unchanged.version, unchanged.changed) == (versions[0], False)
    assert platform.state.read_deployments()[MODEL] == recorded_before  # nothing was redeployed

    switched = deployer.ensure(MODEL, MODEL, versions[1])
    assert (switched.version, switched.changed) == (versions[1], True)
    assert switched.detail["previous_version"] == versions[0]
    assert deployer.serving_version(MODEL) == versions[1]
    with InferenceClient(platform.endpoints().inference_url) as client:
        assert client.infer(MODEL, _frame(1, seed=2)).model_version == versions[1]
    recorded = platform.state.read_deployments()[MODEL]
    assert recorded["model_uri"] == f"models:/{MODEL}/{versions[1]}" and recorded["alias"] == ""
    code, output = _cli(platform, "status", "--local")
    assert code == 0 and f"deployed:  {MODEL} v{versions[1]} (by version)" in output, output

    listed = ", ".join(f"'{version}'" for version in versions)
    expected = rf"version '99' of registered model '{MODEL}' does not exist.*its versions: \[{listed}\]"
    with pytest.raises(ServingError, match=expected):
        deployer.ensure(MODEL, MODEL, "99")
    assert deployer.serving_version(MODEL) == versions[1]

    back = deployer.ensure(MODEL, MODEL, versions[0])
    assert (back.version, back.changed) == (versions[0], True)
    assert platform.is_serving(MODEL, versions[0]) and not platform.is_serving(MODEL, versions[1])


@pytest.mark.slow
def test_moving_the_alias_and_deploying_again_drops_no_request(
    platform: LocalPlatform, versions: list[str]
) -> None:
    from mlflow import MlflowClient

    from platform_components.loop.local_deployer import LocalDeployer
    from platform_components.serving.client import InferenceClient

    failures: list[str] = []
    answered: list[str | None] = []
    stop = threading.Event()
    rows = _frame(5, seed=11)

    def traffic() -> None:
        with InferenceClient(platform.endpoints().inference_url, timeout=30) as client:
            while not stop.is_set():
                try:
                    answered.append(client.infer(MODEL, rows).model_version)
                except Exception as error:  # every failure counts, whatever its kind
                    failures.append(repr(error))

    # Version 1 is served before the traffic starts: the slow tier runs this test without the fast ones that
    # deploy first.
    registry = MlflowClient(platform.endpoints().tracking_uri)
    registry.set_registered_model_alias(MODEL, "champion", versions[0])
    platform.deploy(MODEL, "champion")
    senders = [threading.Thread(target=traffic) for _ in range(2)]
    for sender in senders:
        sender.start()
    try:
        time.sleep(1.0)
        registry.set_registered_model_alias(MODEL, "champion", versions[1])
        deployment = platform.deploy(MODEL, "champion")
        switched_at = len(answered)
        time.sleep(1.0)
        # And back, as the loop's deployer rolls out: the same switch, through ensure.
        back_from = len(answered)
        rollout = LocalDeployer(platform).ensure(MODEL, MODEL, versions[0])
        back_at = len(answered)
        time.sleep(1.0)
    finally:
        stop.set()
        for sender in senders:
            sender.join(timeout=30)
    assert failures == []
    assert deployment.version == versions[1]
    assert (rollout.version, rollout.changed) == (versions[0], True)
    assert versions[0] in answered[:switched_at]
    # Each sender may have had one request in flight when a switch returned; every later one is the new
    # version.
    assert set(answered[switched_at + len(senders) : back_from]) == {versions[1]}
    assert set(answered[back_at + len(senders) :]) == {versions[0]}
    assert back_from - switched_at > 5 and len(answered) - back_at > 5
    # Leave the platform as the alias says, for the tests after this one.
    platform.deploy(MODEL, "champion")


def test_a_deploy_that_cannot_load_keeps_serving_the_previous_version(
    platform: LocalPlatform, versions: list[str]
) -> None:
    from mlflow import MlflowClient

    from platform_components.serving.client import InferenceClient

    registry = MlflowClient(platform.endpoints().tracking_uri)
    # A version whose artifacts are not there: what a half-finished upload leaves.
    experiment = registry.get_experiment_by_name("local-target-tests")
    run = registry.create_run(experiment.experiment_id)
    registry.set_terminated(run.info.run_id, status="FAILED")
    source = f"{run.info.artifact_uri}/model"
    broken = registry.create_model_version(MODEL, source=source, run_id=run.info.run_id)
    registry.set_registered_model_alias(MODEL, "broken", broken.version)
    before = json.loads(platform.state.deployments_file.read_text())
    settings_file = platform.state.serving_repo / MODEL / "model-settings.json"
    settings_before = settings_file.read_text()
    expected = rf"(?s)could not serve models:/{MODEL}/{broken.version}.*serving\.log"
    with pytest.raises(ServingError, match=expected):
        platform.deploy(MODEL, "broken")
    assert json.loads(platform.state.deployments_file.read_text()) == before
    assert settings_file.read_text() == settings_before  # a restart serves what was deployed
    with InferenceClient(platform.endpoints().inference_url) as client:
        answered = client.infer(MODEL, _frame(2, seed=5)).model_version
    assert answered == before["deployments"][MODEL]["version"]
    registry.delete_registered_model_alias(MODEL, "broken")
    registry.delete_model_version(MODEL, broken.version)
    registry.delete_run(run.info.run_id)


# What the registry and the deployments said just before `down`, for the restart test.
_BEFORE_DOWN: dict[str, object] = {}


def test_down_leaves_no_process_of_the_tree(platform: LocalPlatform, versions: list[str]) -> None:
    from mlflow import MlflowClient

    registry = MlflowClient(platform.endpoints().tracking_uri)
    _BEFORE_DOWN["champion"] = registry.get_model_version_by_alias(MODEL, "champion").version
    _BEFORE_DOWN["deployments"] = {item.name: item.version for item in platform.status().deployments}
    records = read_records(platform.state.processes_file)
    pids = {process.pid for record in records.values() for process in process_tree(record)}
    assert {record.pid for record in records.values()} <= pids
    result = platform.down()
    assert set(result.stopped) == set(RUN)
    survivors = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                survivors.append(pid)
        except psutil.NoSuchProcess:
            pass
    assert survivors == []
    assert not platform.state.processes_file.exists()
    assert all(not process.running for process in platform.status().processes)


def test_up_after_down_keeps_runs_models_aliases_and_serves_the_deployment(
    platform: LocalPlatform, versions: list[str]
) -> None:
    from mlflow import MlflowClient

    assert _BEFORE_DOWN, "runs after test_down_leaves_no_process_of_the_tree"
    status = platform.up()
    assert status.healthy and status.already_running == []
    client = MlflowClient(platform.endpoints().tracking_uri)
    assert client.get_model_version_by_alias(MODEL, "champion").version == _BEFORE_DOWN["champion"]
    assert sorted(v.version for v in client.search_model_versions(f"name='{MODEL}'")) == sorted(versions)
    experiment = client.get_experiment_by_name("local-target-tests")
    assert len(client.search_runs([experiment.experiment_id])) == 2
    served = {deployment.name: deployment.version for deployment in status.deployments}
    assert served == _BEFORE_DOWN["deployments"]
    assert MODEL in served, "runs after the deploy tests"
    from platform_components.serving.client import InferenceClient

    with InferenceClient(platform.endpoints().inference_url) as inference:
        assert inference.infer(MODEL, _frame(2, seed=3)).model_version == served[MODEL]
