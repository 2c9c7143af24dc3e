"""Session fixtures of the engine tier: the local Kubernetes cluster and a PULUMI_HOME with the provider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from cluster import LocalCluster, cluster_tools
from engine_cli import install_provider


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
