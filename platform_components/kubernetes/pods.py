"""Secure pod templates and NetworkPolicies as plain dicts: PSS "restricted" by construction.

Every container built here drops all capabilities, forbids privilege escalation, runs as non-root with a
RuntimeDefault seccomp profile and a read-only root filesystem; writable paths are emptyDir volumes. Every
container has requests, limits and probes (the builders refuse to build one without).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from platform_components.settings import Resources

METADATA_ADDRESS = "169.254.169.254/32"  # cloud metadata: most MLflow/KFP CVEs are SSRF


def http_probe(
    path: str, port: int | str, *, host_header: str | None = None, **timing: int
) -> dict[str, Any]:
    """An httpGet probe; ``host_header`` for servers that check Host (MLflow ``--allowed-hosts``)."""
    get: dict[str, Any] = {"path": path, "port": port}
    if host_header:
        get["httpHeaders"] = [{"name": "Host", "value": host_header}]
    return {"httpGet": get, **_timing(timing)}


def tcp_probe(port: int | str, **timing: int) -> dict[str, Any]:
    return {"tcpSocket": {"port": port}, **_timing(timing)}


def exec_probe(command: Sequence[str], **timing: int) -> dict[str, Any]:
    return {"exec": {"command": list(command)}, **_timing(timing)}


def _timing(timing: Mapping[str, int]) -> dict[str, int]:
    defaults = {"periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3}
    keys = {
        "period": "periodSeconds",
        "timeout": "timeoutSeconds",
        "failures": "failureThreshold",
        "initial_delay": "initialDelaySeconds",
    }
    return defaults | {keys[key]: value for key, value in timing.items()}


def container(
    name: str,
    image: str,
    *,
    resources: Resources,
    readiness: dict[str, Any],
    liveness: dict[str, Any],
    startup: dict[str, Any] | None = None,
    command: Sequence[str] | None = None,
    args: Sequence[str] | None = None,
    ports: Mapping[str, int] | None = None,
    env: Mapping[str, str] | None = None,
    secret_env: Mapping[str, tuple[str, str]] | None = None,
    mounts: Mapping[str, str] | None = None,
    read_only_mounts: Mapping[str, str] | None = None,
    run_as_user: int = 10001,
) -> dict[str, Any]:
    """One hardened container.

    Args:
        ports: port name -> container port.
        env: plain variables (never credentials).
        secret_env: variable -> (Secret name, key): credentials only ever come from Secrets.
        mounts: volume name -> path, writable (emptyDir or PVC).
        read_only_mounts: volume name -> path (Secrets, ConfigMaps).
    """
    spec: dict[str, Any] = {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "resources": resources.to_kubernetes(),
        "readinessProbe": readiness,
        "livenessProbe": liveness,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": run_as_user,
            "runAsGroup": run_as_user,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if startup is not None:
        spec["startupProbe"] = startup
    if command:
        spec["command"] = list(command)
    if args:
        spec["args"] = list(args)
    if ports:
        spec["ports"] = [
            {"name": port_name, "containerPort": port, "protocol": "TCP"} for port_name, port in ports.items()
        ]
    variables = [{"name": key, "value": value} for key, value in (env or {}).items()]
    variables += [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": secret_key}}}
        for key, (secret, secret_key) in (secret_env or {}).items()
    ]
    if variables:
        spec["env"] = variables
    volume_mounts = [{"name": volume, "mountPath": path} for volume, path in (mounts or {}).items()]
    volume_mounts += [
        {"name": volume, "mountPath": path, "readOnly": True}
        for volume, path in (read_only_mounts or {}).items()
    ]
    if volume_mounts:
        spec["volumeMounts"] = volume_mounts
    return spec


def init_container(
    name: str,
    image: str,
    *,
    command: Sequence[str],
    resources: Resources,
    run_as_user: int = 10001,
    mounts: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An init container: same hardening, no probes (Kubernetes forbids them on init containers)."""
    spec = container(
        name,
        image,
        resources=resources,
        readiness={},
        liveness={},
        command=command,
        mounts=mounts,
        env=env,
        run_as_user=run_as_user,
    )
    del spec["readinessProbe"], spec["livenessProbe"]
    return spec


def empty_dir(name: str, *, size_limit: str = "256Mi") -> dict[str, Any]:
    return {"name": name, "emptyDir": {"sizeLimit": size_limit}}


def secret_volume(name: str, secret_name: str) -> dict[str, Any]:
    return {"name": name, "secret": {"secretName": secret_name, "defaultMode": 0o440}}


def pod_template(
    pod_labels: Mapping[str, str],
    containers: Sequence[dict[str, Any]],
    *,
    service_account: str,
    volumes: Sequence[dict[str, Any]] = (),
    init_containers: Sequence[dict[str, Any]] = (),
    fs_group: int = 10001,
    termination_grace_seconds: int = 30,
    restart_policy: str | None = None,
) -> dict[str, Any]:
    """A pod template meeting PSS restricted, with its own ServiceAccount and no API token mounted."""
    spec: dict[str, Any] = {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": termination_grace_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "fsGroup": fs_group,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": list(containers),
    }
    if init_containers:
        spec["initContainers"] = list(init_containers)
    if volumes:
        spec["volumes"] = list(volumes)
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    return {"metadata": {"labels": dict(pod_labels)}, "spec": spec}


# ---- NetworkPolicies
# ------------------------------------------------------------------------------------------


def namespace_selector(namespace: str) -> dict[str, Any]:
    """Select a namespace by the label Kubernetes sets on every namespace (1.22+)."""
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}


def default_deny(namespace: str) -> dict[str, Any]:
    """Deny all ingress and egress for every pod of the namespace; allows are added per workload."""
    return {
        "metadata": {"name": "default-deny", "namespace": namespace},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def allow_dns(namespace: str) -> dict[str, Any]:
    """Every pod may resolve names through kube-dns."""
    return {
        "metadata": {"name": "allow-dns", "namespace": namespace},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {
                            **namespace_selector("kube-system"),
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                }
            ],
        },
    }


def allow_policy(
    name: str,
    namespace: str,
    pod_selector: Mapping[str, str],
    *,
    ingress: Sequence[tuple[Sequence[dict[str, Any]], Sequence[int]]] = (),
    egress: Sequence[tuple[Sequence[dict[str, Any]], Sequence[int]]] = (),
) -> dict[str, Any]:
    """An explicit allow: each rule is (peers, TCP ports); an empty peer list means any destination."""
    spec: dict[str, Any] = {"podSelector": {"matchLabels": dict(pod_selector)}, "policyTypes": []}
    if ingress:
        spec["policyTypes"].append("Ingress")
        spec["ingress"] = [_rule("from", peers, ports) for peers, ports in ingress]
    if egress:
        spec["policyTypes"].append("Egress")
        spec["egress"] = [_rule("to", peers, ports) for peers, ports in egress]
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


def _rule(direction: str, peers: Sequence[dict[str, Any]], ports: Sequence[int]) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if ports:  # no ports: every port
        rule["ports"] = [{"protocol": "TCP", "port": port} for port in ports]
    if peers:
        rule[direction] = list(peers)
    return rule


def outside_cluster() -> dict[str, Any]:
    """Any address except cloud metadata (external databases, object stores, the API server)."""
    return {"ipBlock": {"cidr": "0.0.0.0/0", "except": [METADATA_ADDRESS]}}


def volume_claim(name: str, size: str, storage_class: str | None = None) -> dict[str, Any]:
    """A StatefulSet volume claim template: one ReadWriteOnce volume of ``size``."""
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"metadata": {"name": name}, "spec": spec}


def cluster_ip_service_spec(pod_selector: Mapping[str, str], ports: Mapping[str, int]) -> dict[str, Any]:
    """A ClusterIP Service spec (never exposed outside the cluster) with one TCP port per named pod port."""
    return {
        "type": "ClusterIP",
        "selector": dict(pod_selector),
        "ports": [
            {"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"}
            for port_name, port in ports.items()
        ],
    }
