"""Seldon Core 2 facts at v2.10.2 (charts, CRDs and operator source of SeldonIO/seldon-core)."""

from __future__ import annotations

from upstream_facts import Fact

_REPO = "SeldonIO/seldon-core"
_CHARTS = "k8s/helm-charts"
_TPL = f"{_REPO} {_CHARTS}/seldon-core-v2-setup/templates/_components-statefulsets.tpl@v2.10.2"
_SETUP_VALUES = f"{_REPO} {_CHARTS}/seldon-core-v2-setup/values.yaml@v2.10.2"

FACTS = [
    Fact(
        key="seldon.version",
        statement="The Seldon Core 2 release whose charts, CRDs and operator were read for this program",
        source="SeldonIO/seldon-core k8s/helm-charts/seldon-core-v2-setup/Chart.yaml@v2.10.2",
        value="2.10.2",
    ),
    Fact(
        key="seldon.setup.component_pods",
        statement="The setup chart's SeldonConfig 'default' defines these components, each by the name the "
        "SeldonRuntime overrides use, with the containers of its pod spec; none of those containers sets a "
        "securityContext, and each pod's securityContext is the <values key>.securityContext value",
        source=_TPL,
        value={
            "seldon-scheduler": {"values_key": "scheduler", "containers": ["scheduler"]},
            "seldon-envoy": {"values_key": "envoy", "containers": ["envoy"]},
            "seldon-modelgateway": {"values_key": "modelgateway", "containers": ["modelgateway"]},
            "seldon-pipelinegateway": {"values_key": "pipelinegateway", "containers": ["pipelinegateway"]},
            "seldon-dataflow-engine": {"values_key": "dataflow", "containers": ["dataflow-engine"]},
            "hodometer": {"values_key": "hodometer", "containers": ["hodometer"]},
        },
    ),
    Fact(
        key="seldon.runtime.override_value_keys",
        statement="The runtime chart writes overrides for these SeldonConfig components from these values "
        "keys; podSpec of each is read by the template (toJson .Values.<key>.podSpec) although values.yaml "
        "does not declare it",
        source=f"{_REPO} {_CHARTS}/seldon-core-v2-runtime/templates/seldon-runtime.yaml@v2.10.2",
        value={
            "hodometer": "hodometer",
            "seldon-scheduler": "scheduler",
            "seldon-envoy": "envoy",
            "seldon-dataflow-engine": "dataflow",
            "seldon-modelgateway": "modelgateway",
            "seldon-pipelinegateway": "pipelinegateway",
        },
    ),
    Fact(
        key="seldon.setup.controller_container_security",
        statement="The operator Deployment's one container (manager) sets only allowPrivilegeEscalation: "
        "false; no value reaches its container securityContext (only the pod's, controller.securityContext)",
        source=_TPL,
        value={"allowPrivilegeEscalation": False},
    ),
    Fact(
        key="seldon.setup.default_pod_security",
        statement="Every component's pod securityContext defaults to user, group and fsGroup 1000 and "
        "runAsNonRoot, without a seccomp profile",
        source=_SETUP_VALUES,
        value={"fsGroup": 1000, "runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": True},
    ),
    Fact(
        key="seldon.serverconfig.mlserver_containers",
        statement="The mlserver ServerConfig's pod has the containers rclone, agent and mlserver, "
        "none with a securityContext; its pod securityContext is serverConfig.securityContext",
        source=_TPL,
        value=["rclone", "agent", "mlserver"],
    ),
    Fact(
        key="seldon.serverconfig.models_mount",
        statement="The ServerConfig mounts the models volume mlserver-models at /mnt/agent read-only in the "
        "mlserver container (read-write in rclone and agent)",
        source=_TPL,
        value={"container": "mlserver", "mountPath": "/mnt/agent", "readOnly": True},
    ),
    Fact(
        key="seldon.serverconfig.mlserver_parallel_workers",
        statement="The ServerConfig sets MLSERVER_PARALLEL_WORKERS from "
        "serverConfig.mlserver.parallel_workers, 1 by default: models load in a worker process, "
        "not in MLServer's main process",
        source=_SETUP_VALUES,
        value=1,
    ),
    Fact(
        key="seldon.serverconfig.metrics_ports",
        statement="Server pods expose the agent's metrics on container port 'metrics' (9006) and MLServer's "
        "on 'server-metrics' (8082)",
        source=_TPL,
        value={"metrics": 9006, "server-metrics": 8082},
    ),
    Fact(
        key="seldon.agent.grpc_port",
        statement="The Seldon agent serves V2 gRPC inference on 9501 and HTTP on 9001 (its reverse proxy)",
        source=_TPL,
        value={"grpc": 9501, "http": 9001},
    ),
    Fact(
        key="seldon.scheduler.control_ports",
        statement="The scheduler's control plane for the operator listens on 9004 (plaintext) and "
        "9044 (mTLS)",
        source=_TPL,
        value=[9004, 9044],
    ),
    Fact(
        key="seldon.operator.config_namespace",
        statement="The operator reads SeldonConfigs and ServerConfigs from its own namespace "
        "(POD_NAMESPACE), whatever the namespace of the SeldonRuntime or Server",
        source="SeldonIO/seldon-core operator/apis/mlops/v1alpha1/serverconfig_types.go@v2.10.2",
        value="POD_NAMESPACE",
    ),
    Fact(
        key="seldon.operator.watch",
        statement="Without --clusterwide the operator watches only its own namespace; with it, the "
        "comma-separated --watch-namespaces plus its own (setup values controller.clusterwide and "
        "controller.watchNamespaces, the latter read by the template but not declared in values.yaml)",
        source="SeldonIO/seldon-core operator/main.go@v2.10.2",
        value={"clusterwide": True},
    ),
    Fact(
        key="seldon.operator.podspec_merge",
        statement="Override podSpecs (SeldonRuntime overrides, Server podSpec) are merged into the base pod "
        "spec with mergo WithOverride and WithAppendSlice; containers are matched by name, fields "
        "of a matched container overridden, slices such as env, volumeMounts and volumes appended",
        source="SeldonIO/seldon-core operator/controllers/reconcilers/common/patch_utils.go@v2.10.2",
    ),
    Fact(
        key="seldon.setup.template_only_values",
        statement="Setup values read by the templates but absent from values.yaml",
        source=_TPL,
        value=["controller.watchNamespaces"],
    ),
    Fact(
        key="seldon.servers.always_two",
        statement="The servers chart always creates Servers mlserver and triton, with minReplicas 1 and no "
        "switch to leave either out",
        source=f"{_REPO} {_CHARTS}/seldon-core-v2-servers/templates/_servers-statefulsets.tpl@v2.10.2",
        value=["mlserver", "triton"],
    ),
    Fact(
        key="seldon.setup.no_hodometer_enabled",
        statement="Hodometer and tracing are switched by hodometer.disable (runtime chart) and "
        "opentelemetry.disable (setup chart); hodometer.enabled and opentelemetry.enable do not exist",
        source=_SETUP_VALUES,
        value={"setup": "opentelemetry.disable", "runtime": "hodometer.disable"},
    ),
    Fact(
        key="seldon.operator.service_type",
        statement="The operator gives the seldon-mesh and scheduler Services the override's serviceType, "
        "else "
        "the SeldonConfig's serviceConfig.serviceType (setup value services.defaultServiceType), else "
        "LoadBalancer",
        source=f"{_REPO} operator/controllers/reconcilers/seldon/service_reconciler.go@v2.10.2",
        value={"default": "LoadBalancer", "overridden_by": ["seldon-scheduler", "seldon-envoy"]},
    ),
]
