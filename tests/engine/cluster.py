"""A real Kubernetes control plane on 127.0.0.1 for the engine tier, with kwok's fake nodes.

``LocalCluster`` starts etcd, kube-apiserver (its default admission plugins, Pod Security included),
kube-controller-manager, kube-scheduler and kwok from the tools cache, each in its own process group with
its log in the cluster's folder, on free loopback ports, with certificates made for this run. It then
supplies what a real cluster's operator would: fake Nodes that kwok keeps Ready, a default StorageClass and
a pool of pre-made PersistentVolumes so claims bind. It is a test fixture, not product code: it never
builds the tools (``tools/build.py`` does) and is imported by name (``from cluster import LocalCluster``).

The kubeconfig it writes has two contexts: ``engine`` (this API server, an admin client certificate) and
``decoy``, the current context, pointing at a listener of the fixture that only counts connections. A test
that forgets to name the engine context reaches the decoy, never a cluster of the developer's, and
``decoy_connections`` says it happened.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import datetime
import http.client
import ipaddress
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

logger = logging.getLogger(__name__)

# kubeadm's default Service range (cmd/kubeadm/app/apis/kubeadm/v1beta4 DefaultServicesSubnet); its first
# address is the `kubernetes` Service, which the serving certificate must name.
SERVICE_CIDR = "10.96.0.0/12"
KUBERNETES_SERVICE_IP = "10.96.0.1"
# kwok's pod range for a Node without spec.podCIDR (its default, 10.0.0.0/24, overlaps nothing here either).
POD_CIDR = "10.244.0.0/16"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
# kwok manages only Nodes carrying this annotation, as kwokctl configures it
# (kubernetes-sigs/kwok pkg/kwokctl/components/kwok_controller.go@v0.8.0).
KWOK_NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")
STORAGE_CLASS = "standard"
# prctl(2): the signal a child receives when the thread that forked it exits.
_PR_SET_PDEATHSIG = 1
FRONT_PROXY_CLIENT = "front-proxy-client"
# Node addresses (a range apart from the Service and pod ranges); Node n gets .n and pod range 10.244.n.0/24.
NODE_IP_PREFIX = "10.240.0."
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
# The stage files tools/kwok copies from the kwok module: kwokctl's defaults with node leases
# (pkg/kwokctl/runtime/cluster.go getDefaultNodeStages / getDefaultPodStages@v0.8.0).
KWOK_STAGES = (
    "stage-node-initialize.yaml",
    "stage-node-heartbeat-with-lease.yaml",
    "stage-pod-ready.yaml",
    "stage-pod-complete.yaml",
    "stage-pod-delete.yaml",
)


class ClusterStartError(RuntimeError):
    """The cluster did not become ready; the message carries the failing component's log tail."""


@dataclass(frozen=True)
class ToolFolders:
    """Where the built binaries are: the tools cache folders of etcd, kubernetes and kwok."""

    etcd: Path
    kubernetes: Path
    kwok: Path


def cluster_tools() -> ToolFolders:
    """The built etcd, kubernetes and kwok folders; skips the test, naming the tool, if one is not built."""
    import pytest
    from engine_cli import built_folder

    if shutil.which("kubectl") is None:
        pytest.skip("the engine cluster is driven with kubectl, which is not on PATH")
    return ToolFolders(
        etcd=built_folder("etcd"), kubernetes=built_folder("kubernetes"), kwok=built_folder("kwok")
    )


@dataclass
class _Process:
    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None


@dataclass
class _Pki:
    """A certificate authority of this run and the certificates it issues, as PEM files in ``folder``."""

    folder: Path
    stem: str = "ca"
    ca_key: ec.EllipticCurvePrivateKey = field(init=False)
    ca_cert: x509.Certificate = field(init=False)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"mlops-engine-{self.stem}")])
        now = datetime.datetime.now(datetime.UTC)
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key()), critical=False
            )
            .sign(self.ca_key, hashes.SHA256())
        )
        self._write(self.stem, self.ca_cert, self.ca_key)

    @property
    def ca_file(self) -> Path:
        return self.folder / f"{self.stem}.crt"

    def _write(self, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        (self.folder / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file = self.folder / f"{stem}.key"
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_file.chmod(0o600)

    def issue(
        self,
        stem: str,
        common_name: str,
        *,
        organizations: Sequence[str] = (),
        server: bool = False,
        client: bool = False,
        hosts: Sequence[str] = (),
    ) -> tuple[Path, Path]:
        """Write ``<stem>.crt`` / ``<stem>.key`` signed by the CA; returns their paths."""
        key = ec.generate_private_key(ec.SECP256R1())
        attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
            [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        )
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()), critical=False
            )
        )
        if hosts:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        self._write(stem, builder.sign(self.ca_key, hashes.SHA256()), key)
        return self.folder / f"{stem}.crt", self.folder / f"{stem}.key"


class _Decoy:
    """A TCP listener on 127.0.0.1 that accepts, counts and closes every connection."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self.port: int = self._socket.getsockname()[1]
        self._lock = threading.Lock()
        self._count = 0
        self._thread = threading.Thread(target=self._serve, name="engine-decoy", daemon=True)
        self._thread.start()

    @property
    def connections(self) -> int:
        with self._lock:
            return self._count

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return  # closed by close()
            with self._lock:
                self._count += 1
            connection.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        self._thread.join(timeout=5)


def _free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 right now (held open together so they differ)."""
    probes = []
    try:
        for _ in range(count):
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            probe.bind(("127.0.0.1", 0))
            probes.append(probe)
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


def _die_with_parent() -> None:
    """Child pre-exec hook: SIGKILL the component when the test process dies without stopping it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class LocalCluster:
    """etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on 127.0.0.1.

    One instance starts once: ``start()``, the tests, ``stop()`` (or a ``with`` block). Its counters and
    pids stay readable after ``stop()`` for leak checks. Start it from the thread that will outlive it:
    components are killed by the kernel when that thread exits (prctl PR_SET_PDEATHSIG), so a test run
    killed outright leaves nothing behind.

    Args:
        folder: An empty folder for this cluster's certificates, data, kubeconfigs and logs.
        tools: Where the built binaries are (the tools cache folders).
        node_count: Fake Nodes to create, each with ``node_allocatable``.
        volume_count: Pre-made PersistentVolumes of ``volume_size`` in the default StorageClass.
        volume_binding_mode: The StorageClass's ``volumeBindingMode``: ``Immediate`` (claims bind when
            created, what Pulumi's await logic for a claim expects) or ``WaitForFirstConsumer`` (the
            scheduler binds when a Pod uses the claim, as many clouds' default classes do).
        extra_args: Extra flags per component name (``COMPONENTS``), appended last.
        timeout: Seconds ``start()`` waits for the cluster to be ready.
    """

    def __init__(
        self,
        folder: Path,
        tools: ToolFolders,
        *,
        node_count: int = 3,
        node_allocatable: dict[str, str] | None = None,
        volume_count: int = 40,
        volume_size: str = "1Ti",
        volume_binding_mode: str = "Immediate",
        extra_args: dict[str, list[str]] | None = None,
        timeout: float = 120.0,
    ) -> None:
        unknown = set(extra_args or {}) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"extra_args names unknown components {sorted(unknown)}; known: {COMPONENTS}")
        self.folder = folder
        self.tools = tools
        self.node_count = node_count
        self.node_allocatable = node_allocatable or {
            "cpu": "32",
            "memory": "128Gi",
            "pods": "110",
            "ephemeral-storage": "1Ti",
        }
        self.volume_count = volume_count
        self.volume_size = volume_size
        if volume_binding_mode not in ("Immediate", "WaitForFirstConsumer"):
            raise ValueError(
                f"volume_binding_mode={volume_binding_mode!r}: use Immediate or WaitForFirstConsumer"
            )
        self.volume_binding_mode = volume_binding_mode
        self.extra_args = extra_args or {}
        self.timeout = timeout
        self.start_seconds: float | None = None
        # Seconds from the start of the last attempt to each readiness step, for the start-time report.
        self.start_steps: dict[str, float] = {}
        self.start_attempts = 0
        self._processes: list[_Process] = []
        self._decoy: _Decoy | None = None
        self._ports: dict[str, int] = {}
        self._ssl: ssl.SSLContext | None = None
        self._attempt_started = 0.0

    # ----------------------------------------------------------------------------------------------- public

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def server(self) -> str:
        """The API server's URL."""
        return f"https://127.0.0.1:{self._ports['kube-apiserver']}"

    @property
    def decoy_connections(self) -> int:
        """Connections the decoy (the kubeconfig's current context) has received so far."""
        return self._decoy.connections if self._decoy else 0

    @property
    def pids(self) -> dict[str, int]:
        """The process id of each component started (also after ``stop()``, for checks)."""
        return {p.name: p.popen.pid for p in self._processes if p.popen is not None}

    def kubeconfig_path(self) -> Path:
        """The kubeconfig with contexts ``engine`` and ``decoy`` (current)."""
        return self.folder / "kubeconfig"

    admin_user = "mlops-engine-admin"  # the CN of the ``engine`` context's client certificate

    @property
    def audit_log_path(self) -> Path:
        """The API server's audit log (JSON lines, one event per write request; reads are not logged)."""
        return self.folder / "logs" / "audit.log"

    def audit_events(self) -> list[dict[str, Any]]:
        """Every audit event logged so far (one ``audit.k8s.io/v1`` Event a line)."""
        if not self.audit_log_path.exists():
            return []
        return [json.loads(line) for line in self.audit_log_path.read_text().splitlines() if line.strip()]

    def _write_audit_policy(self) -> Path:
        policy = self.folder / "audit-policy.yaml"
        policy.write_text(
            json.dumps(
                {
                    "apiVersion": "audit.k8s.io/v1",
                    "kind": "Policy",
                    "omitStages": ["RequestReceived"],
                    "rules": [
                        {"level": "None", "verbs": ["get", "list", "watch"]},
                        {"level": "None", "resources": [{"group": "coordination.k8s.io"}]},
                        {"level": "None", "resources": [{"group": "", "resources": ["events"]}]},
                        {"level": "Metadata"},
                    ],
                }
            )
        )
        return policy

    def log_path(self, component: str) -> Path:
        """The log file of ``component``."""
        return self.folder / "logs" / f"{component}.log"

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the system ``kubectl`` against the ``engine`` context; raises with its output if it fails."""
        return self._kubectl("engine", *args, check=check, input=input, timeout=timeout)

    def start(self) -> None:
        """Start every component and return when the cluster is ready for workloads.

        Ready means: the API server's /readyz is ok, the controller manager and scheduler answer /healthz,
        the ``default`` ServiceAccount exists in ``default``, every Node is Ready and untainted, and the
        StorageClass and PersistentVolumes exist. A free port taken by someone else between the probe and
        the bind is retried with new ports.
        """
        started = time.monotonic()
        for attempt in range(3):
            self.start_attempts = attempt + 1
            try:
                self._start_once()
                break
            except ClusterStartError as error:
                # Nothing of a failed start is worth a graceful shutdown.
                self._kill_processes(grace=0.0)
                if "address already in use" in str(error) and attempt < 2:
                    logger.warning("a port was taken during start, retrying with new ports: %s", error)
                    continue
                self._close_decoy()
                raise
        self.start_seconds = time.monotonic() - started
        logger.info(
            "local cluster ready at %s in %.1f s %s", self.server, self.start_seconds, self.start_steps
        )

    def stop(self) -> None:
        """Stop every component (SIGTERM to each process group, SIGKILL after a grace period)."""
        self._kill_processes()
        self._close_decoy()

    def recycle_released_volumes(self) -> int:
        """Make Released volumes Available again (clear their claimRef); returns how many.

        The pool's volumes are ``Retain`` (nothing can scrub a fake node's disk), so a deleted claim leaves
        its volume Released; an administrator clears the claim reference to hand it out again, as this does.
        """
        volumes = self._request("GET", "/api/v1/persistentvolumes")["items"]
        released = [v["metadata"]["name"] for v in volumes if v.get("status", {}).get("phase") == "Released"]
        for name in released:
            self._request(
                "PATCH",
                f"/api/v1/persistentvolumes/{name}",
                [{"op": "remove", "path": "/spec/claimRef"}],
                content_type="application/json-patch+json",
            )
        return len(released)

    # ----------------------------------------------------------------------------------------------- start

    def _start_once(self) -> None:
        for sub in ("logs", "etcd-data", "kwok-home", "kubectl-cache"):
            path = self.folder / sub
            if path.exists() and sub != "logs":
                shutil.rmtree(path)
            path.mkdir(parents=True, exist_ok=True)
        self._processes = []
        names = ("etcd", "etcd-peer", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
        self._ports = dict(zip(names, _free_ports(len(names)), strict=True))
        if self._decoy is None:
            self._decoy = _Decoy()
        pki = self._make_pki()
        self._write_kubeconfigs(pki)
        self._ssl = ssl.create_default_context(cafile=str(pki.ca_file))
        self._ssl.load_cert_chain(pki.folder / "admin.crt", pki.folder / "admin.key")
        self._attempt_started = time.monotonic()
        self.start_steps = {}
        deadline = self._attempt_started + self.timeout

        self._launch("etcd", self._etcd_argv(pki))
        self._launch("kube-apiserver", self._apiserver_argv(pki))
        self._wait("kube-apiserver /readyz", deadline, self._apiserver_ready)
        # The rest only need the API server; they start together to keep start-up short.
        self._launch("kube-controller-manager", self._controller_manager_argv(pki))
        self._launch("kube-scheduler", self._scheduler_argv())
        self._launch("kwok", self._kwok_argv(), env={"KWOK_WORKDIR": str(self.folder / "kwok-home")})
        self._create_fixture_objects()
        self._wait("kube-controller-manager /healthz", deadline, self._healthz("kube-controller-manager"))
        self._wait("kube-scheduler /healthz", deadline, self._healthz("kube-scheduler"))
        self._wait("the default ServiceAccount in default", deadline, self._default_service_account)
        self._wait(f"{self.node_count} Ready, untainted Nodes", deadline, self._nodes_ready)

    def _make_pki(self) -> _Pki:
        pki = _Pki(self.folder / "pki")
        loopback = ("127.0.0.1", "localhost")
        pki.issue("etcd", "etcd", server=True, client=True, hosts=loopback)
        pki.issue("apiserver-etcd-client", "kube-apiserver-etcd-client", client=True)
        pki.issue(
            "apiserver",
            "kube-apiserver",
            server=True,
            hosts=(
                *loopback,
                KUBERNETES_SERVICE_IP,
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
        )
        pki.issue("admin", self.admin_user, organizations=("system:masters",), client=True)
        # The users the bootstrap RBAC policy binds (system:kube-controller-manager, system:kube-scheduler).
        pki.issue("controller-manager", "system:kube-controller-manager", client=True)
        pki.issue("scheduler", "system:kube-scheduler", client=True)
        # kwok writes the status of every Pod and Node it fakes; kwokctl hands it the admin certificate
        # (pkg/kwokctl/components/kwok_controller.go@v0.8.0). Its own name keeps its requests apart in audit.
        pki.issue("kwok", "kwok-controller", organizations=("system:masters",), client=True)
        key = ec.generate_private_key(ec.SECP256R1())
        (pki.folder / "sa.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (pki.folder / "sa.key").chmod(0o600)
        (pki.folder / "sa.pub").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        # The aggregation layer's own CA, as kubeadm makes it (front-proxy-ca, front-proxy-client): the API
        # server publishes it in kube-system/extension-apiserver-authentication, where the controller
        # manager's and scheduler's delegated authentication look for it.
        front_proxy = _Pki(pki.folder, stem="front-proxy-ca")
        front_proxy.issue("front-proxy-client", FRONT_PROXY_CLIENT, client=True)
        return pki

    def _write_kubeconfigs(self, pki: _Pki) -> None:
        def data(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        ca = data(pki.ca_file)
        for stem in ("controller-manager", "scheduler", "kwok"):
            config = {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "engine",
                        "cluster": {"server": self.server, "certificate-authority": str(pki.ca_file)},
                    }
                ],
                "users": [
                    {
                        "name": stem,
                        "user": {
                            "client-certificate": str(pki.folder / f"{stem}.crt"),
                            "client-key": str(pki.folder / f"{stem}.key"),
                        },
                    }
                ],
                "contexts": [{"name": stem, "context": {"cluster": "engine", "user": stem}}],
                "current-context": stem,
            }
            self._write_private(self.folder / f"{stem}.kubeconfig", json.dumps(config, indent=2))
        decoy_server = f"https://127.0.0.1:{self._decoy.port if self._decoy else 0}"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "engine", "cluster": {"server": self.server, "certificate-authority-data": ca}},
                {"name": "decoy", "cluster": {"server": decoy_server, "certificate-authority-data": ca}},
            ],
            "users": [
                {
                    "name": "engine-admin",
                    "user": {
                        "client-certificate-data": data(pki.folder / "admin.crt"),
                        "client-key-data": data(pki.folder / "admin.key"),
                    },
                },
                {"name": "decoy", "user": {}},
            ],
            "contexts": [
                {"name": "engine", "context": {"cluster": "engine", "user": "engine-admin"}},
                {"name": "decoy", "context": {"cluster": "decoy", "user": "decoy"}},
            ],
            # A client that does not name the engine context must not reach any cluster: it reaches the decoy.
            "current-context": "decoy",
        }
        self._write_private(self.kubeconfig_path(), json.dumps(config, indent=2))

    @staticmethod
    def _write_private(path: Path, text: str) -> None:
        path.write_text(text)
        path.chmod(0o600)

    def _etcd_argv(self, pki: _Pki) -> list[str]:
        client = f"https://127.0.0.1:{self._ports['etcd']}"
        peer = f"https://127.0.0.1:{self._ports['etcd-peer']}"
        tls = {"cert-file": "etcd.crt", "key-file": "etcd.key", "trusted-ca-file": "ca.crt"}
        return [
            str(self.tools.etcd / "etcd"),
            "--name=engine",
            f"--data-dir={self.folder / 'etcd-data'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=engine={peer}",
            "--initial-cluster-state=new",
            # Clients and the (single) peer must present a certificate of this run's CA: another user's
            # process on the machine cannot write to the store behind the API server's back.
            "--client-cert-auth",
            "--peer-client-cert-auth",
            *[f"--{flag}={pki.folder / name}" for flag, name in tls.items()],
            *[f"--peer-{flag}={pki.folder / name}" for flag, name in tls.items()],
            # A throw-away store: fsync buys nothing here and costs seconds on a shared disk.
            "--unsafe-no-fsync",
            *self.extra_args.get("etcd", []),
        ]

    def _apiserver_argv(self, pki: _Pki) -> list[str]:
        folder = pki.folder
        return [
            str(self.tools.kubernetes / "kube-apiserver"),
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self._ports['kube-apiserver']}",
            f"--etcd-servers=https://127.0.0.1:{self._ports['etcd']}",
            f"--etcd-cafile={folder / 'ca.crt'}",
            f"--etcd-certfile={folder / 'apiserver-etcd-client.crt'}",
            f"--etcd-keyfile={folder / 'apiserver-etcd-client.key'}",
            f"--tls-cert-file={folder / 'apiserver.crt'}",
            f"--tls-private-key-file={folder / 'apiserver.key'}",
            # x509 client certificates of this CA authenticate (CN = user, O = groups).
            f"--client-ca-file={folder / 'ca.crt'}",
            # The default is AlwaysAllow: without this every authenticated request would pass.
            "--authorization-mode=Node,RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={folder / 'sa.pub'}",
            f"--service-account-signing-key-file={folder / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # As kubeadm runs it: the API server allows privileged Pods and Pod Security restricts them.
            "--allow-privileged=true",
            "--profiling=false",
            # The aggregation layer as kubeadm configures it (its front-proxy flags).
            f"--requestheader-client-ca-file={folder / 'front-proxy-ca.crt'}",
            f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={folder / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={folder / 'front-proxy-client.key'}",
            # No --enable-admission-plugins / --disable-admission-plugins: the default set, PodSecurity in it.
            # An audit log of writes: the pulumi-kubernetes provider discards the API server's warnings
            # (rest.NoWarnings), but what Pod Security's audit mode and the deprecated-API check find is
            # also written into each request's audit annotations, which the engine tests read.
            f"--audit-policy-file={self._write_audit_policy()}",
            f"--audit-log-path={self.audit_log_path}",
            "--audit-log-format=json",
            *self.extra_args.get("kube-apiserver", []),
        ]

    def _controller_manager_argv(self, pki: _Pki) -> list[str]:
        kubeconfig = self.folder / "controller-manager.kubeconfig"
        return [
            str(self.tools.kubernetes / "kube-controller-manager"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self._ports['kube-controller-manager']}",
            # '*' is every on-by-default controller (garbage collector, namespace, job, deployment,
            # replicaset, statefulset, persistentvolume-binder, ephemeral-volume, serviceaccount(-token),
            # node-lifecycle, ...).
            "--controllers=*",
            # Each controller acts as its own ServiceAccount, so RBAC sees what a real cluster's would.
            "--use-service-account-credentials=true",
            f"--root-ca-file={pki.folder / 'ca.crt'}",
            # Without the key the serviceaccount-token controller is not started.
            f"--service-account-private-key-file={pki.folder / 'sa.key'}",
            f"--cluster-signing-cert-file={pki.folder / 'ca.crt'}",
            f"--cluster-signing-key-file={pki.folder / 'ca.key'}",
            # One instance: taking a lease first only delays the controllers.
            "--leader-elect=false",
            *self.extra_args.get("kube-controller-manager", []),
        ]

    def _scheduler_argv(self) -> list[str]:
        kubeconfig = self.folder / "scheduler.kubeconfig"
        return [
            str(self.tools.kubernetes / "kube-scheduler"),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={self._ports['kube-scheduler']}",
            "--leader-elect=false",
            *self.extra_args.get("kube-scheduler", []),
        ]

    def _kwok_argv(self) -> list[str]:
        key, value = KWOK_NODE_ANNOTATION
        return [
            str(self.tools.kwok / "kwok"),
            f"--kubeconfig={self.folder / 'kwok.kubeconfig'}",
            *[f"--config={self.tools.kwok / stage}" for stage in KWOK_STAGES],
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={key}={value}",
            # 0 (the flag's default) turns node leases off; kwokctl's default is 40.
            "--node-lease-duration-seconds=40",
            f"--cidr={POD_CIDR}",
            *self.extra_args.get("kwok", []),
        ]

    def _launch(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = self.log_path(name)
        process = _Process(name=name, argv=argv, log=log)
        self._processes.append(process)
        with log.open("ab") as out:
            out.write(f"$ {' '.join(argv)}\n".encode())
            out.flush()
            process.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                env={**os.environ, **(env or {})},
                # Its own process group, so stop() reaches anything it forks.
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def _wait(self, what: str, deadline: float, ready: Any) -> None:
        last_error = ""
        while True:
            for process in self._processes:
                code = process.popen.poll() if process.popen else None
                if code is not None:
                    raise ClusterStartError(
                        f"{process.name} exited with {code} while waiting for {what}; "
                        f"log {process.log}:\n{_tail(process.log)}"
                    )
            try:
                if ready():
                    self.start_steps[what] = round(time.monotonic() - self._attempt_started, 2)
                    return
            except (OSError, http.client.HTTPException, ValueError, KeyError) as error:
                last_error = f"{type(error).__name__}: {error}"
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {p.name} ({p.log}):\n{_tail(p.log, 15)}" for p in self._processes)
                raise ClusterStartError(
                    f"timed out after {self.timeout:.0f} s waiting for {what} "
                    f"(last error: {last_error or 'none'})\n{tails}"
                )
            time.sleep(0.2)

    # ------------------------------------------------------------------------------------------ readiness

    def _request(
        self, method: str, path: str, body: Any = None, *, content_type: str = "application/json"
    ) -> Any:
        """One request to the API server as the admin; returns the decoded JSON (raises on status >= 400)."""
        assert self._ssl is not None
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self._ports["kube-apiserver"], context=self._ssl, timeout=10
        )
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Accept": "application/json"}
            if payload is not None:
                headers["Content-Type"] = content_type
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            text = response.read().decode()
        finally:
            connection.close()
        if response.status >= 400:
            raise ValueError(f"{method} {path}: HTTP {response.status}: {text[:500]}")
        return json.loads(text) if text.startswith(("{", "[")) else text

    def _apiserver_ready(self) -> bool:
        return self._request("GET", "/readyz") == "ok"

    def _healthz(self, component: str) -> Any:
        port = self._ports[component]
        # The components serve a self-signed certificate; /healthz is always allowed, anonymously.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE

        def ready() -> bool:
            connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
            try:
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                return response.status == 200 and response.read() == b"ok"
            finally:
                connection.close()

        return ready

    def _default_service_account(self) -> bool:
        self._request("GET", "/api/v1/namespaces/default/serviceaccounts/default")
        return True

    def _nodes_ready(self) -> bool:
        nodes = self._request("GET", "/api/v1/nodes")["items"]
        ready = [
            node
            for node in nodes
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in node.get("status", {}).get("conditions", [])
            )
            # TaintNodesByCondition puts node.kubernetes.io/not-ready on a new Node; the node lifecycle
            # controller lifts it once the Node is Ready. Until then nothing schedules there.
            and not node["spec"].get("taints")
        ]
        return len(ready) >= self.node_count

    # ---------------------------------------------------------------------------------- fixture objects

    def _create_fixture_objects(self) -> None:
        """The Nodes, default StorageClass and PersistentVolumes a real cluster's operator would provide."""
        key, value = KWOK_NODE_ANNOTATION
        for index in range(1, self.node_count + 1):
            name = f"engine-node-{index}"
            # Status may be set on create (pkg/registry/core/node/strategy.go PrepareForCreate keeps it);
            # kwok's node-initialize stage keeps the allocatable and addresses given here.
            self._request(
                "POST",
                "/api/v1/nodes",
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "annotations": {key: value, "node.alpha.kubernetes.io/ttl": "0"},
                        "labels": {
                            "kubernetes.io/arch": "amd64",
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/hostname": name,
                            "type": "kwok",
                        },
                    },
                    # kwok gives pods IPs from the Node's range and their hostIP from its InternalIP
                    # (pkg/kwok/controllers/pod_controller.go funcPodIPsWith / funcNodeIPsWith@v0.8.0).
                    "spec": {"podCIDR": f"10.244.{index}.0/24", "podCIDRs": [f"10.244.{index}.0/24"]},
                    "status": {
                        "addresses": [
                            {"type": "InternalIP", "address": f"{NODE_IP_PREFIX}{index}"},
                            {"type": "Hostname", "address": name},
                        ],
                        "allocatable": self.node_allocatable,
                        "capacity": self.node_allocatable,
                        "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux"},
                    },
                },
            )
        self._request(
            "POST",
            "/apis/storage.k8s.io/v1/storageclasses",
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": STORAGE_CLASS,
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                },
                # Nothing provisions: claims bind to the pre-made pool below.
                "provisioner": "kubernetes.io/no-provisioner",
                "volumeBindingMode": self.volume_binding_mode,
            },
        )
        for index in range(1, self.volume_count + 1):
            name = f"engine-pv-{index:02d}"
            self._request(
                "POST",
                "/api/v1/persistentvolumes",
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": name, "labels": {"mlops-engine/pool": "true"}},
                    "spec": {
                        "capacity": {"storage": self.volume_size},
                        "accessModes": ["ReadWriteOnce"],
                        "persistentVolumeReclaimPolicy": "Retain",
                        "storageClassName": STORAGE_CLASS,
                        # Never mounted: kwok runs no kubelet.
                        "hostPath": {"path": f"/nonexistent/mlops-engine/{name}"},
                    },
                },
            )

    # ------------------------------------------------------------------------------------------------ stop

    def _kill_processes(self, grace: float = 10.0) -> None:
        # Clients first, then the API server, then its store: an API server whose etcd is gone hangs in
        # its shutdown retrying the store until SIGKILL.
        waves = (("kwok", "kube-scheduler", "kube-controller-manager"), ("kube-apiserver",), ("etcd",))
        for wave in waves:
            group = [p for p in self._processes if p.name in wave and p.popen is not None]
            if grace > 0:
                for process in group:
                    if process.popen.poll() is None:
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(process.popen.pid, signal.SIGTERM)
                deadline = time.monotonic() + grace
            for process in group:
                if grace > 0:
                    try:
                        process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        logger.warning("%s did not stop on SIGTERM in %.0f s: SIGKILL", process.name, grace)
                # Whatever is left in its group (the leader or anything it forked) is killed.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.popen.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.popen.wait(timeout=5)

    def _close_decoy(self) -> None:
        if self._decoy is not None:
            self._decoy.close()

    def _kubectl(
        self, context: str | None, *args: str, check: bool, input: str | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        argv = [
            "kubectl",
            f"--kubeconfig={self.kubeconfig_path()}",
            # Discovery cached per run, not in the developer's ~/.kube/cache.
            f"--cache-dir={self.folder / 'kubectl-cache'}",
            *([f"--context={context}"] if context else []),
            *args,
        ]
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        completed = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
        if check and completed.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({completed.returncode}):\n"
                f"{completed.stdout}\n{completed.stderr}"
            )
        return completed

    def kubectl_current_context(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run kubectl with the kubeconfig's current context (the decoy); never raises on failure."""
        return self._kubectl(None, *args, check=False, input=None, timeout=timeout)


def wait_for(what: str, condition: Any, timeout: float = 60.0, interval: float = 0.5) -> Any:
    """Poll ``condition()`` until it returns a truthy value; raise naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
