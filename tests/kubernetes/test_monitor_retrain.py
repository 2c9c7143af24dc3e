"""The cluster path closed: the monitor is given the KFP host, the project's compiled pipeline and the
experiment from settings, and what it is given is what its own flag parser and the KFP retrainer take.

The default host is read against KFP's own manifests (the Service the platform installs); the pipeline is
rendered into the monitor's ConfigMap and mounted read-only; the rendered argv, parsed by the service,
builds a ``KfpRetrainer`` that submits the mounted IR to the KFP API fake.
"""

# ruff: noqa: F811

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from kfp_api_fake import KfpApiFake
from pulumi_fixtures import REPO, config_for, render_program  # noqa: F401
from upstream_facts import fact, upstream_path

from platform_components.errors import ConfigError
from platform_components.kubernetes.monitoring import (
    MONITOR_CONFIG_DIR,
    PIPELINE_CHECKSUM_ANNOTATION,
)
from platform_components.pipelines.runner import submit_run
from platform_components.render import kubernetes_objects, run_program
from platform_components.settings import MonitorSettings, load_platform_settings

GOLDEN_IR = REPO / "tests" / "examples" / "golden" / "credit_default_pipeline.yaml"
KFP_MANIFESTS = ("kubeflow-pipelines-2.17.0", "manifests", "kustomize")


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"no {kind} {name} in the render")


def monitor_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    statefulset = find(objects, "StatefulSet", "model-monitor")
    [container] = statefulset["spec"]["template"]["spec"]["containers"]
    return container


@pytest.fixture(scope="module")
def pipeline_ir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("project") / "credit_default_pipeline.yaml"
    shutil.copyfile(GOLDEN_IR, path)
    return path


@pytest.fixture(scope="module")
def with_pipeline(pipeline_ir: Path) -> list[dict[str, Any]]:
    """The default stack with the project's compiled pipeline set, rendered once for the module."""
    config = config_for(
        monitoring={"monitor": {"pipeline": str(pipeline_ir), "experiment": "credit-retrain"}}
    )
    return kubernetes_objects(run_program(config, ["mlops:secret_seed"]).resources)


def test_the_default_kfp_host_is_the_api_service_of_the_kfp_we_install() -> None:
    manifests = upstream_path(*KFP_MANIFESTS)
    service = yaml.safe_load((manifests / "base/pipeline/ml-pipeline-apiserver-service.yaml").read_text())
    [http] = [
        port
        for port in service["spec"]["ports"]
        if port["name"] == fact("kfp_retrain.api_service")["port_name"]
    ]
    assert (service["metadata"]["name"], http["port"]) == (
        fact("kfp_retrain.api_service")["name"],
        fact("kfp_retrain.api_service")["port"],
    )
    overlay = yaml.safe_load((manifests / "env/platform-agnostic/kustomization.yaml").read_text())
    assert overlay["namespace"] == fact("kfp_retrain.namespace")
    expected = f"http://{service['metadata']['name']}.{overlay['namespace']}.svc.cluster.local:{http['port']}"
    assert MonitorSettings().kfp_host == expected
    assert (MonitorSettings().pipeline, MonitorSettings().experiment) == (None, "mlops-retrain")


def test_the_monitor_gets_the_host_the_mounted_pipeline_and_the_experiment(
    with_pipeline: list[dict[str, Any]], pipeline_ir: Path
) -> None:
    container = monitor_container(with_pipeline)
    args = container["args"]
    flags = {args[index]: args[index + 1] for index in range(len(args) - 1) if args[index].startswith("--")}
    assert flags["--kfp-host"] == MonitorSettings().kfp_host
    assert flags["--pipeline"] == f"{MONITOR_CONFIG_DIR}/pipeline.yaml"
    assert flags["--experiment"] == "credit-retrain"

    # The IR is the ConfigMap's, byte for byte, under the folder the ConfigMap is mounted read-only at.
    config_map = find(with_pipeline, "ConfigMap", "model-monitor")
    assert config_map["data"]["pipeline.yaml"] == pipeline_ir.read_text()
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == MONITOR_CONFIG_DIR]
    assert mount["readOnly"] is True
    statefulset = find(with_pipeline, "StatefulSet", "model-monitor")
    [volume] = [v for v in statefulset["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == "model-monitor"
    annotations = statefulset["spec"]["template"]["metadata"]["annotations"]
    assert (
        annotations[PIPELINE_CHECKSUM_ANNOTATION] == hashlib.sha256(pipeline_ir.read_bytes()).hexdigest()[:16]
    )


def test_the_monitor_may_reach_the_kfp_api_port(with_pipeline: list[dict[str, Any]]) -> None:
    policy = find(with_pipeline, "NetworkPolicy", "model-monitor-allow")
    to_kfp = [
        port["port"]
        for rule in policy["spec"]["egress"]
        if {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kubeflow"}}} in rule["to"]
        for port in rule["ports"]
    ]
    assert fact("kfp_retrain.api_service")["port"] in to_kfp


def test_the_rendered_flags_build_a_retrainer_that_submits_the_mounted_ir(
    with_pipeline: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The monitor's argv as rendered, parsed by the service itself, with the ConfigMap written where it
    would be mounted: the KFP retrainer it yields uploads exactly the rendered IR to the KFP API."""
    from platform_components.loop.retrain import KfpRetrainer
    from platform_components.loop.service import parser, startup_config

    for name in (
        "KF_PIPELINES_ENDPOINT",
        "KF_PIPELINES_UI_ENDPOINT",
        "KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME",
    ):
        monkeypatch.delenv(name, raising=False)
    config_map = find(with_pipeline, "ConfigMap", "model-monitor")
    for key, text in config_map["data"].items():
        (tmp_path / key).write_text(text)
    container = monitor_container(with_pipeline)
    args = [arg.replace(MONITOR_CONFIG_DIR, str(tmp_path)) for arg in container["args"]]
    with KfpApiFake() as fake:
        args[args.index("--kfp-host") + 1] = fake.host
        arguments = parser().parse_args(args)
        monkeypatch.setenv("MLOPS_MONITOR_MODELS", str(tmp_path / "models.json"))  # as the pod's env says
        _, retrain = startup_config(arguments)
        assert retrain is not None
        assert (retrain.pipeline, retrain.experiment) == (str(tmp_path / "pipeline.yaml"), "credit-retrain")
        retrainer = KfpRetrainer(
            retrain.host, retrain.pipeline, tracking_uri=arguments.tracking_uri, experiment=retrain.experiment
        )
        submitted = submit_run(
            retrainer.host, retrainer.pipeline, {"tracking_uri": "t"}, experiment=retrainer.experiment
        )
        [version] = fake.state.versions.values()
        assert version.pipeline_version_id == submitted.pipeline_version_id
        # The server stores the rendered IR's two documents (kfp_api.stored_spec_with_platform).
        pipeline_spec, platform_spec = yaml.safe_load_all(config_map["data"]["pipeline.yaml"])
        assert version.pipeline_spec == {"pipeline_spec": pipeline_spec, "platform_spec": platform_spec}
        assert retrainer.inputs["training_data_path"] is True


def test_without_a_pipeline_the_monitor_gets_no_retrain_flags(render_program: Any) -> None:
    objects = kubernetes_objects(render_program(config_for()).resources)
    args = monitor_container(objects)["args"]
    assert not {"--kfp-host", "--pipeline", "--experiment"} & set(args)
    assert "pipeline.yaml" not in find(objects, "ConfigMap", "model-monitor")["data"]


@pytest.mark.parametrize(
    ("monitor", "message"),
    [
        ({"kfp_host": "ml-pipeline:8888"}, r"mlops:monitoring\.monitor\.kfp_host: .*http\(s\)://host"),
        (
            {"kfp_host": "http://ml-pipeline:8888/apis"},
            r"mlops:monitoring\.monitor\.kfp_host: .*without a path",
        ),
        ({"pipeline": "pipeline.py:train"}, r"mlops:monitoring\.monitor\.pipeline: .*compiled pipeline"),
        ({"experiment": ""}, r"mlops:monitoring\.monitor\.experiment: .*at least 1 character"),
        ({"experiment": " padded"}, r"mlops:monitoring\.monitor\.experiment: .*pattern"),
    ],
)
def test_bad_retrain_settings_are_named(monitor: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_platform_settings(config_for(monitoring={"monitor": monitor}))


def test_a_missing_pipeline_file_is_named_at_render(render_program: Any, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(
        ConfigError, match=r"mlops:monitoring\.monitor\.pipeline: cannot read .*nowhere\.yaml"
    ):
        render_program(config_for(monitoring={"monitor": {"pipeline": str(missing)}}))


def test_a_pipeline_that_cannot_take_the_rows_is_named_at_render(render_program: Any, tmp_path: Path) -> None:
    documents = list(yaml.safe_load_all(GOLDEN_IR.read_text()))
    del documents[0]["root"]["inputDefinitions"]["parameters"]["training_data_path"]
    ir = tmp_path / "no-data.yaml"
    ir.write_text(yaml.safe_dump_all(documents))
    with pytest.raises(
        ConfigError,
        match=r"mlops:monitoring\.monitor\.pipeline: the pipeline in .* has no input 'training_data_path'",
    ):
        render_program(config_for(monitoring={"monitor": {"pipeline": str(ir)}}))
    foreign = tmp_path / "configmap.yaml"
    foreign.write_text("kind: ConfigMap\n")
    with pytest.raises(
        ConfigError, match=r"mlops:monitoring\.monitor\.pipeline: .*has no pipelineInfo\.name"
    ):
        render_program(config_for(monitoring={"monitor": {"pipeline": str(foreign)}}))


def test_a_relative_pipeline_path_is_taken_from_the_project_root(
    render_program: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine runs the program in infra/ (pulumi.engine.program_pwd); the path means the same there."""
    monkeypatch.chdir(REPO / "infra")
    relative = str(GOLDEN_IR.relative_to(REPO))
    objects = kubernetes_objects(
        render_program(config_for(monitoring={"monitor": {"pipeline": relative}})).resources
    )
    assert find(objects, "ConfigMap", "model-monitor")["data"]["pipeline.yaml"] == GOLDEN_IR.read_text()
