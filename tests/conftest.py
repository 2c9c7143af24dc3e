"""Fixtures shared by every test folder."""

from __future__ import annotations

import socket

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-cluster", action="store_true", help="run tests that need a real Kubernetes cluster")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-cluster"):
        return
    skip = pytest.mark.skip(reason="needs a real Kubernetes cluster: pass --run-cluster")
    for item in items:
        if "cluster" in item.keywords:
            item.add_marker(skip)


def find_free_port() -> int:
    """A port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def free_port() -> int:
    return find_free_port()
