"""The engine tier's local cluster is a real one: admission, controllers, scheduler and fake kubelets at work.

Everything the lead's Pulumi engine tests rely on is exercised here through the system kubectl: the pinned
API server version, Pod Security (enforce and warn), Deployments, Jobs, claims binding to the pre-made
volumes, namespace deletion and garbage collection, service account tokens, the decoy context and a clean
stop. The tests skip, naming the tool, where etcd, kubernetes or kwok are not built; those on real
processes are marked ``engine`` (make test-engine) and ``slow``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import cluster as cluster_module
import psutil
import pytest
from cluster import KWOK_STAGES, ClusterStartError, LocalCluster, cluster_tools, wait_for
from upstream_facts import fact

REPO = Path(__file__).resolve().parents[2]

# A container Pod Security's restricted level admits (non-root, no privilege escalation, no capabilities,
# RuntimeDefault seccomp), with requests and limits as every workload of the platform has.
RESTRICTED_POD_SPEC: dict[str, Any] = {
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "containers": [
        {
            "name": "app",
            "image": "registry.k8s.io/pause:3.10",
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            "resources": {
                "requests": {"cpu": "10m", "memory": "16Mi"},
                "limits": {"cpu": "100m", "memory": "32Mi"},
            },
        }
    ],
}


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper has stopped, whoever its parent now is)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _namespace(cluster: LocalCluster, prefix: str, labels: dict[str, str] | None = None) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    _apply(
        cluster, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}
    )
    # The serviceaccount controller creates `default` asynchronously; Pods are refused until it exists.
    wait_for(
        f"the default ServiceAccount in {name}",
        lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
        timeout=30,
        interval=0.2,
    )
    return name


def _apply(cluster: LocalCluster, *objects: dict[str, Any], check: bool = True) -> Any:
    manifest = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    return cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest), check=check)


def _get(cluster: LocalCluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def _pod(name: str, namespace: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec or RESTRICTED_POD_SPEC,
    }


def _template(app: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": app}}, "spec": spec or RESTRICTED_POD_SPEC}


# An ordinary container with no securityContext: fine under baseline, refused under restricted.
UNRESTRICTED_POD_SPEC: dict[str, Any] = {
    "containers": [
        {
            "name": "app",
            "image": "registry.k8s.io/pause:3.10",
            "resources": {"limits": {"cpu": "100m", "memory": "32Mi"}},
        }
    ]
}


def test_the_kwok_wrapper_ships_kwokctls_default_stages() -> None:
    manifest = json.loads((REPO / "tools" / "kwok" / "tool.json").read_text())
    copied = {c["path"]: c["dest"] for c in manifest["copies"] if c["module"] == "sigs.k8s.io/kwok"}
    stages = fact("kwok.default_stages")
    assert sorted(copied) == sorted(stages["node"] + stages["pod"])
    assert sorted(copied.values()) == sorted(KWOK_STAGES), "cluster.py passes other stage files to kwok"


@pytest.mark.engine
def test_the_built_api_server_enables_the_default_admission_plugins_of_the_facts() -> None:
    binary = cluster_tools().kubernetes / "kube-apiserver"
    help_text = subprocess.run([str(binary), "--help"], capture_output=True, text=True, check=False).stdout
    line = next(
        line for line in help_text.splitlines() if line.strip().startswith("--enable-admission-plugins")
    )
    defaults = line.split("in addition to default enabled ones (", 1)[1].split(")", 1)[0].split(", ")
    assert sorted(defaults) == sorted(fact("kube_apiserver.default_admission_plugins"))
    assert "PodSecurity" in defaults


@pytest.mark.engine
def test_the_built_controller_manager_disables_only_the_controllers_of_the_facts() -> None:
    """'--controllers=*' then runs the garbage collector, namespace, job, ... controllers used here."""
    binary = cluster_tools().kubernetes / "kube-controller-manager"
    help_text = subprocess.run([str(binary), "--help"], capture_output=True, text=True, check=False).stdout
    controllers = fact("kube_controller_manager.controllers_default")
    disabled = help_text.split("Disabled-by-default controllers: ", 1)[1].split(" (default", 1)
    assert disabled[0].split(", ") == controllers["disabled_by_default"]
    assert disabled[1].startswith(f" [{controllers['default']}])")
    for needed in ("garbage-collector-controller", "namespace-controller", "job-controller"):
        assert needed in help_text and needed not in controllers["disabled_by_default"]


# The tests with a cluster of their own come before those on the session's: in this file's order they run
# before the session cluster is started, so two clusters do not share the cores.


@pytest.mark.engine
@pytest.mark.slow
def test_a_start_failure_names_the_component_and_shows_its_log(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    cluster = LocalCluster(
        folder, cluster_tools(), extra_args={"kube-apiserver": ["--no-such-flag"]}, timeout=60
    )
    with pytest.raises(ClusterStartError, match=r"kube-apiserver exited with \d+") as raised:
        cluster.start()
    assert "unknown flag: --no-such-flag" in str(raised.value)
    # etcd had started: the failed start stopped it.
    assert cluster.pids and not any(psutil.pid_exists(pid) for pid in cluster.pids.values())


@pytest.mark.engine
@pytest.mark.slow
def test_a_cluster_starts_quickly_its_decoy_counts_and_stop_leaves_nothing_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cluster of its own (the session's must outlive this test): start time, the decoy, a complete stop.

    Its first etcd port is taken by someone else (as another engineer's process may between the probe and
    the bind): start() must retry with new ports.
    """
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    squatter.bind(("127.0.0.1", 0))
    squatter.listen(1)
    probes = iter([True])
    real_free_ports = cluster_module._free_ports

    def free_ports(count: int) -> list[int]:
        ports = real_free_ports(count)
        if next(probes, False):
            ports[0] = squatter.getsockname()[1]  # the etcd client port
        return ports

    monkeypatch.setattr(cluster_module, "_free_ports", free_ports)
    cluster = LocalCluster(tmp_path / "cluster", cluster_tools())
    cluster.folder.mkdir()
    try:
        cluster.start()
        squatter.close()
        assert cluster.start_attempts == 2, "the taken port was not retried"
        assert "address already in use" in cluster.log_path("etcd").read_text()
        assert cluster.start_seconds is not None and cluster.start_seconds < 60, cluster.start_seconds
        # The current context is the decoy: kubectl without --context fails there, and the decoy saw it.
        assert cluster.decoy_connections == 0
        missed = cluster.kubectl_current_context("get", "namespaces", "--request-timeout=5s")
        assert missed.returncode != 0
        assert cluster.decoy_connections >= 1
        pids = cluster.pids
        assert sorted(pids) == sorted(
            ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
        )
        # Each component leads its own process group (start_new_session): its pid is the group's id.
        groups = {os.getpgid(pid) for pid in pids.values()}
        assert groups == set(pids.values())
    finally:
        cluster.stop()
    alive = {name: pid for name, pid in pids.items() if psutil.pid_exists(pid)}
    assert not alive, f"still running after stop(): {alive}"
    # Nothing a component forked survives either: no process is left in the components' process groups.
    leftovers = []
    for process in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(process.pid) in groups:
                leftovers.append(process.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    assert not leftovers, f"processes left in the components' process groups: {leftovers}"


@pytest.mark.engine
@pytest.mark.slow
def test_a_test_process_killed_outright_leaves_no_component_running(tmp_path: Path) -> None:
    """SIGKILL skips every teardown: the kernel must stop the components (PR_SET_PDEATHSIG)."""
    tools = cluster_tools()
    program = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "from cluster import LocalCluster, ToolFolders\n"
        "tools = ToolFolders(*(Path(p) for p in sys.argv[2:5]))\n"
        "cluster = LocalCluster(Path(sys.argv[1]), tools)\n"
        "cluster.start()\n"
        "print(json.dumps(cluster.pids), flush=True)\n"
        "time.sleep(600)\n"
    )
    folder = tmp_path / "orphan"
    folder.mkdir()
    argv = [
        sys.executable,
        "-c",
        program,
        str(folder),
        str(tools.etcd),
        str(tools.kubernetes),
        str(tools.kwok),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(REPO / "tests")])}
    runner = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = runner.stdout.readline() if runner.stdout else ""
        assert line, (
            f"the cluster did not start in the child: {runner.stderr.read() if runner.stderr else ''}"
        )
        pids: dict[str, int] = json.loads(line)
        assert len(pids) == 5
    finally:
        runner.kill()
        runner.wait(timeout=30)
    wait_for(
        "every component to die with the killed test process",
        lambda: not [pid for pid in pids.values() if _alive(pid)],
        timeout=15,
        interval=0.2,
    )


@pytest.mark.engine
@pytest.mark.slow
def test_the_api_server_reports_the_pinned_version(local_cluster: LocalCluster) -> None:
    version = json.loads(local_cluster.kubectl("get", "--raw", "/version").stdout)
    assert version["gitVersion"] == fact("kubernetes.version")
    manifest = json.loads((REPO / "tools" / "kubernetes" / "tool.json").read_text())
    assert manifest["version"] == fact("kubernetes.version"), "tools/kubernetes builds another version"


@pytest.mark.engine
@pytest.mark.slow
def test_pod_security_refuses_a_pod_that_is_not_restricted_where_enforced(
    local_cluster: LocalCluster,
) -> None:
    labels = fact("pod_security.labels")
    namespace = _namespace(local_cluster, "psa-enforce", {labels["enforce"]: "restricted"})
    refused = _apply(local_cluster, _pod("unrestricted", namespace, UNRESTRICTED_POD_SPEC), check=False)
    assert refused.returncode != 0
    assert fact("pod_security.messages")["refused"] in refused.stderr, refused.stderr
    # The same namespace admits a compliant Pod: the refusal is Pod Security's, not a broken API server.
    _apply(local_cluster, _pod("restricted", namespace))
    assert _get(local_cluster, "pod", "restricted", "-n", namespace)["metadata"]["name"] == "restricted"


@pytest.mark.engine
@pytest.mark.slow
def test_pod_security_warns_where_only_warn_is_set(local_cluster: LocalCluster) -> None:
    labels = fact("pod_security.labels")
    namespace = _namespace(local_cluster, "psa-warn", {labels["warn"]: "restricted"})
    admitted = _apply(local_cluster, _pod("unrestricted", namespace, UNRESTRICTED_POD_SPEC))
    assert "Warning: " + fact("pod_security.messages")["warning"] in admitted.stderr, admitted.stderr
    # A namespace without labels neither refuses nor warns (the default level is privileged).
    plain = _namespace(local_cluster, "psa-none")
    quiet = _apply(local_cluster, _pod("unrestricted", plain, UNRESTRICTED_POD_SPEC))
    assert "PodSecurity" not in quiet.stderr, quiet.stderr


@pytest.mark.engine
@pytest.mark.slow
def test_a_deployment_becomes_available_and_its_service_gets_endpoints(local_cluster: LocalCluster) -> None:
    namespace = _namespace(local_cluster, "deploy")
    _apply(
        local_cluster,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": _template("web"),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    local_cluster.kubectl(
        "wait", "--for=condition=Available", "deployment/web", "-n", namespace, "--timeout=60s"
    )
    pods = _get(local_cluster, "pods", "-n", namespace, "-l", "app=web")["items"]
    assert [p["status"]["phase"] for p in pods] == ["Running", "Running"]
    # Spread by the scheduler over kwok's Nodes, each Pod with an IP from its Node's range.
    assert all(p["spec"]["nodeName"].startswith("engine-node-") for p in pods)
    assert all(p["status"]["podIP"].startswith("10.244.") for p in pods)

    def ready_endpoints() -> list[str]:
        slices = _get(
            local_cluster, "endpointslices", "-n", namespace, "-l", "kubernetes.io/service-name=web"
        )
        return [
            address
            for item in slices["items"]
            for endpoint in item.get("endpoints") or []
            if endpoint.get("conditions", {}).get("ready")
            for address in endpoint["addresses"]
        ]

    addresses = wait_for(
        "two ready endpoints of Service web", lambda: len(ready_endpoints()) == 2, timeout=30
    )
    assert addresses
    assert sorted(ready_endpoints()) == sorted(p["status"]["podIP"] for p in pods)


@pytest.mark.engine
@pytest.mark.slow
def test_a_job_completes(local_cluster: LocalCluster) -> None:
    namespace = _namespace(local_cluster, "job")
    spec = {**RESTRICTED_POD_SPEC, "restartPolicy": "Never"}
    _apply(
        local_cluster,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "once", "namespace": namespace},
            "spec": {"backoffLimit": 0, "template": {"spec": spec}},
        },
    )
    local_cluster.kubectl("wait", "--for=condition=Complete", "job/once", "-n", namespace, "--timeout=60s")
    job = _get(local_cluster, "job", "once", "-n", namespace)
    assert job["status"]["succeeded"] == 1
    pods = _get(local_cluster, "pods", "-n", namespace, "-l", "job-name=once")["items"]
    assert [p["status"]["phase"] for p in pods] == ["Succeeded"]


@pytest.mark.engine
@pytest.mark.slow
def test_claims_bind_to_the_premade_volumes(local_cluster: LocalCluster) -> None:
    """A plain claim, a StatefulSet's claim template and a generic ephemeral volume all bind."""
    namespace = _namespace(local_cluster, "claims")
    claim_spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}
    ephemeral = {
        **RESTRICTED_POD_SPEC,
        "volumes": [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": claim_spec}}}],
    }
    _apply(
        local_cluster,
        # No storageClassName: the DefaultStorageClass admission plugin fills in the fixture's class.
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": namespace},
            "spec": claim_spec,
        },
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "store", "namespace": namespace},
            "spec": {
                "replicas": 1,
                "serviceName": "store",
                "selector": {"matchLabels": {"app": "store"}},
                "template": _template("store"),
                "volumeClaimTemplates": [{"metadata": {"name": "state"}, "spec": claim_spec}],
            },
        },
        _pod("scratch", namespace, ephemeral),
    )
    claims = ("data", "state-store-0", "scratch-scratch")
    for claim in claims:
        local_cluster.kubectl(
            "wait", "--for=jsonpath={.status.phase}=Bound", f"pvc/{claim}", "-n", namespace, "--timeout=60s"
        )
    default_class = _get(local_cluster, "storageclass")["items"]
    assert [c["metadata"]["name"] for c in default_class] == ["standard"]
    for claim in claims:
        bound = _get(local_cluster, "pvc", claim, "-n", namespace)
        assert bound["spec"]["storageClassName"] == "standard"
        assert bound["spec"]["volumeName"].startswith("engine-pv-")
    local_cluster.kubectl("wait", "--for=condition=Ready", "pod/store-0", "pod/scratch", "-n", namespace)

    # The pool is Retain: a deleted claim leaves its volume Released until the fixture hands it out again.
    volume = _get(local_cluster, "pvc", "data", "-n", namespace)["spec"]["volumeName"]
    local_cluster.kubectl("delete", "pvc", "data", "-n", namespace)
    local_cluster.kubectl("wait", "--for=jsonpath={.status.phase}=Released", f"pv/{volume}", "--timeout=60s")
    assert local_cluster.recycle_released_volumes() >= 1
    local_cluster.kubectl("wait", "--for=jsonpath={.status.phase}=Available", f"pv/{volume}", "--timeout=60s")


@pytest.mark.engine
@pytest.mark.slow
def test_namespace_deletion_finishes_and_garbage_collection_removes_a_replicasets_pods(
    local_cluster: LocalCluster,
) -> None:
    namespace = _namespace(local_cluster, "gc")
    _apply(
        local_cluster,
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "pair", "namespace": namespace},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "pair"}},
                "template": _template("pair"),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": namespace},
            "data": {"k": "v"},
        },
    )
    wait_for(
        "two running pods of ReplicaSet pair",
        lambda: (
            [p["status"].get("phase") for p in _get(local_cluster, "pods", "-n", namespace)["items"]]
            == ["Running", "Running"]
        ),
        timeout=60,
    )
    # Orphan-free background deletion: the garbage collector deletes the dependents, kwok finishes them.
    local_cluster.kubectl(
        "delete", "replicaset", "pair", "-n", namespace, "--cascade=background", "--wait=false"
    )
    wait_for(
        "the garbage collector to remove pair's pods",
        lambda: not _get(local_cluster, "pods", "-n", namespace)["items"],
        timeout=60,
    )
    started = time.monotonic()
    local_cluster.kubectl("delete", "namespace", namespace, "--timeout=90s")
    gone = local_cluster.kubectl("get", "namespace", namespace, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr, gone.stderr
    assert time.monotonic() - started < 90


@pytest.mark.engine
@pytest.mark.slow
def test_service_account_tokens_and_the_root_ca_are_issued(local_cluster: LocalCluster) -> None:
    """serviceaccount-token fills a legacy token Secret; root-ca-cert-publisher shares the cluster CA."""
    namespace = _namespace(local_cluster, "tokens")
    _apply(
        local_cluster,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": "default-token",
                "namespace": namespace,
                "annotations": {"kubernetes.io/service-account.name": "default"},
            },
        },
    )
    wait_for(
        "the token controller to fill default-token",
        lambda: (
            "token" in (_get(local_cluster, "secret", "default-token", "-n", namespace).get("data") or {})
        ),
        timeout=30,
    )
    root_ca = wait_for(
        "kube-root-ca.crt in the new namespace",
        lambda: (
            local_cluster.kubectl(
                "get", "configmap", "kube-root-ca.crt", "-n", namespace, check=False
            ).returncode
            == 0
        ),
        timeout=30,
    )
    assert root_ca
    published = _get(local_cluster, "configmap", "kube-root-ca.crt", "-n", namespace)["data"]["ca.crt"]
    assert published == (local_cluster.folder / "pki" / "ca.crt").read_text()


@pytest.mark.engine
@pytest.mark.slow
def test_kubectl_on_the_engine_context_never_reaches_the_decoy(local_cluster: LocalCluster) -> None:
    before = local_cluster.decoy_connections
    local_cluster.kubectl("get", "namespaces")
    local_cluster.kubectl("api-resources")
    assert local_cluster.decoy_connections == before == 0
    kubeconfig = json.loads(local_cluster.kubeconfig_path().read_text())
    assert kubeconfig["current-context"] == "decoy"
    assert {c["name"] for c in kubeconfig["contexts"]} == {"engine", "decoy"}
