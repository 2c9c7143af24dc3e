"""Fixtures for the Pulumi tests: mocks are installed per test (never at module level).

Not a conftest.py: this folder has no __init__.py (a package here would be named ``kubernetes`` and shadow
the Kubernetes client library), and a second top-level ``conftest`` module would shadow tests/conftest.py.
Test modules import the fixtures they use from here.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from platform_components.render import read_stack_config, run_program

REPO = Path(__file__).resolve().parents[2]
SEED = "test-seed-0123456789abcdef"


def config_for(**keys: Any) -> dict[str, str]:
    """A stack config {"mlops:key": JSON} with a secret seed, plus the given keys."""
    config = {"mlops:secret_seed": SEED}
    for key, value in keys.items():
        config[f"mlops:{key}"] = value if isinstance(value, str) else json.dumps(value)
    return config


def model(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "registered_model": name,
        **extra,
    }


@pytest.fixture
def render_program() -> Callable[..., Any]:
    """Run the platform program under fresh mocks with a config; returns the RenderResult.

    ``run_program`` installs the mocks itself (a new MockMonitor per call) and awaits the Output the
    program's exports resolve to, so a test cannot pass on an empty graph.
    """

    def run(
        config: dict[str, str], secret_keys: tuple[str, ...] = ("mlops:secret_seed",), **kwargs: Any
    ) -> Any:
        return run_program(config, secret_keys, **kwargs)

    return run


@pytest.fixture(scope="module")
def dev_render() -> Any:
    """The dev stack, rendered once for the module's read-only assertions."""
    config, secret_keys = read_stack_config("dev", REPO)
    return run_program(config, secret_keys, stack="dev")


class RecordingMocks:
    """Pulumi mocks that keep every registered resource and raise on any invoke."""

    def __init__(self) -> None:
        import pulumi

        self.resources: list[Any] = []
        recorder = self

        class _Mocks(pulumi.runtime.Mocks):
            def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
                recorder.resources.append(args)
                return f"{args.name}-id", dict(args.inputs)

            def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
                raise NotImplementedError(f"unexpected invoke {args.token}")

        self.mocks = _Mocks()


@pytest.fixture
def pulumi_mocks() -> RecordingMocks:
    """Fresh mocks for one test; it builds components in a ``@pulumi.runtime.test`` returning an Output."""
    import pulumi

    recording = RecordingMocks()
    pulumi.runtime.set_mocks(recording.mocks, project="mlops", stack="test", preview=False)
    return recording


@functools.cache
def _shipped_render(stack: str) -> Any:
    config, secret_keys = read_stack_config(stack, REPO)
    return run_program(config, secret_keys, stack=stack)


def stack_render(stack: str, dev_render: Any) -> Any:
    """A shipped stack's render: the module's dev render, or the other stack rendered once per session."""
    return dev_render if stack == "dev" else _shipped_render(stack)
