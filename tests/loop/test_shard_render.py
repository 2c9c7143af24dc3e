"""The monitor's replicas in the render: the StatefulSet's count is the setting, each pod gets the flag.

Rendered under the Pulumi mocks (tests/kubernetes/pulumi_fixtures.py); the shard each pod takes from its
ordinal is tests/loop/test_shard.py's.
"""

# ruff: noqa: F811

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kubernetes"))
from pulumi_fixtures import config_for, render_program  # noqa: E402, F401

from platform_components.loop.service import parser, shard_config  # noqa: E402
from platform_components.render import kubernetes_objects  # noqa: E402


def monitor_of(result: Any) -> tuple[dict[str, Any], list[str]]:
    objects = kubernetes_objects(result.resources, redact=False)
    [monitor] = [
        o for o in objects if o["kind"] == "StatefulSet" and o["metadata"]["name"] == "model-monitor"
    ]
    [container] = monitor["spec"]["template"]["spec"]["containers"]
    return monitor, container["args"]


def test_replicas_set_the_statefulset_and_each_pods_flags(
    render_program: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monitor, args = monitor_of(
        render_program(config_for(monitoring={"monitor": {"replicas": 3, "window_cache_rows": 1_000_000}}))
    )
    assert monitor["spec"]["replicas"] == 3
    assert args[args.index("--replicas") + 1] == "3"
    assert args[args.index("--window-cache-rows") + 1] == "1000000"
    # What the pod does with them: its ordinal from its hostname picks its share.
    monkeypatch.setattr("socket.gethostname", lambda: "model-monitor-2")
    assert str(shard_config(parser().parse_args(args))) == "2/3"


def test_one_replica_renders_no_sharding_flag(render_program: Any) -> None:
    monitor, args = monitor_of(render_program(config_for()))
    assert monitor["spec"]["replicas"] == 1
    assert "--replicas" not in args and "--window-cache-rows" not in args


def test_replicas_on_sqlite_are_refused_naming_the_setting(render_program: Any) -> None:
    with pytest.raises(Exception, match=r"replicas=2 needs store: postgresql \(got store: sqlite\)"):
        render_program(config_for(monitoring={"monitor": {"replicas": 2, "store": "sqlite"}}))
