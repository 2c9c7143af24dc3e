"""Session fixtures of the engine tier: the local Kubernetes cluster and a PULUMI_HOME with the provider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from cluster import LocalCluster, cluster_tools
from engine_cli import install_provider
from kfp_manifests import kustomize_root
from upstream_facts import upstream_path


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A started ``LocalCluster``; stopped after the session, which fails if a component outlives it.

    Tests reach it through ``local_cluster.kubectl(...)`` (the ``engine`` context) or its
    ``kubeconfig_path()`` with an explicit ``engine`` context. The kubeconfig's current context is a decoy:
    any connection to it fails the session at teardown, since some client ignored the context it was given.
    """
    cluster = LocalCluster(tmp_path_factory.mktemp("local-cluster"), cluster_tools())
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
    alive = {name: pid for name, pid in cluster.pids.items() if psutil.pid_exists(pid)}
    assert not alive, f"cluster components still running after stop(): {alive}"
    assert cluster.decoy_connections == 0, (
        f"{cluster.decoy_connections} connection(s) reached the decoy context: a client used the "
        "kubeconfig's current context instead of `engine`"
    )


@pytest.fixture(scope="session")
def pulumi_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PULUMI_HOME with ``pulumi-resource-kubernetes`` (tools/pulumi-kubernetes) installed as a plugin."""
    home = tmp_path_factory.mktemp("pulumi-home")
    install_provider(home)
    return home


# What upstream's charts would have installed: their CRDs, applied from ../shared/upstream. Every engine
# stack runs with mlops:upstream.helm_charts false (charts cannot be fetched here), as a platform team
# installing the charts itself would.
CRD_FOLDERS = (
    ("seldon-core-v2.10.2", "operator", "config", "crd", "bases"),
    ("kube-prometheus-stack-81.6.2", "charts", "kube-prometheus-stack", "charts", "crds", "crds"),
)


@pytest.fixture(scope="session")
def engine_cluster(local_cluster: LocalCluster) -> LocalCluster:
    """The local cluster with the CRDs of the charts the engine stacks switch off."""
    for parts in CRD_FOLDERS:
        local_cluster.kubectl("apply", "--server-side", "-f", str(upstream_path(*parts)))
    local_cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    return local_cluster


@pytest.fixture(scope="session")
def kfp_manifests() -> Path:
    """KFP 2.17.0's manifests/kustomize made local (the README's air-gap recipe): mlops:kfp.manifests_path."""
    return kustomize_root()
