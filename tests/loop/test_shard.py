"""Sharding the fleet across monitor replicas: stable, balanced, from the StatefulSet pod's hostname."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from upstream_facts import fact

from platform_components.errors import ConfigError
from platform_components.loop.shard import Shard, parse_shard, shard_from_hostname, shard_of

NAMES = [f"project-{index % 50}-model-{index}" for index in range(1_000)]


def test_a_models_replica_is_the_same_in_another_process() -> None:
    """SHA-256, not Python's hash(): a fresh interpreter (its own hash seed) gives the same shards."""
    code = (
        "from platform_components.loop.shard import shard_of; "
        f"print([shard_of(name, 3) for name in {NAMES[:50]!r}])"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    assert other.stdout.strip() == str([shard_of(name, 3) for name in NAMES[:50]])


@pytest.mark.parametrize("replicas", [2, 3, 8])
def test_every_model_has_exactly_one_replica_and_the_shares_are_even(replicas: int) -> None:
    shards = [Shard(index, replicas) for index in range(replicas)]
    owners = [[shard.owns(name) for shard in shards].count(True) for name in NAMES]
    assert set(owners) == {1}
    sizes = [len(shard.select(NAMES)) for shard in shards]
    assert sum(sizes) == len(NAMES)
    expected = len(NAMES) / replicas
    # A binomial share's standard deviation is sqrt(n p (1 - p)): under 16 models here; 4 of them is wide.
    assert max(abs(size - expected) for size in sizes) < 4 * (expected * (1 - 1 / replicas)) ** 0.5, sizes


def test_adding_a_model_moves_no_other_and_one_replica_owns_all() -> None:
    before = {name: shard_of(name, 4) for name in NAMES}
    after = {name: shard_of(name, 4) for name in [*NAMES, "a-new-model"]}
    assert all(after[name] == shard for name, shard in before.items())
    assert Shard().select(NAMES) == NAMES


def test_the_replica_index_is_the_statefulset_pods_ordinal() -> None:
    identity = fact("kubernetes.statefulset.pod_identity")
    assert identity["hostname"] == "pod name" and identity["first_ordinal"] == 0
    pod = identity["pod_name"].format(name="model-monitor", ordinal=2)
    assert shard_from_hostname(3, pod) == Shard(2, 3)
    assert shard_from_hostname(3, f"{pod}.model-monitor.monitoring.svc.cluster.local") == Shard(2, 3)
    assert shard_from_hostname(1, "my-laptop") == Shard(0, 1)  # one replica needs no ordinal
    with pytest.raises(
        ConfigError, match=r"hostname 'my-laptop' is not a StatefulSet pod.*--shard INDEX/COUNT"
    ):
        shard_from_hostname(2, "my-laptop")
    with pytest.raises(ConfigError, match=r"ordinal 3, outside 0..2.*must be the same number"):
        shard_from_hostname(3, "model-monitor-3")


def test_shard_flags_are_index_over_count_and_bad_ones_say_how_to_write_them() -> None:
    assert parse_shard("1/4") == Shard(1, 4) and str(Shard(1, 4)) == "1/4"
    with pytest.raises(ConfigError, match=r"'one of two' is not INDEX/COUNT; write e.g. 0/2"):
        parse_shard("one of two")
    with pytest.raises(ConfigError, match=r"shard 2/2: the index must be in 0..1"):
        parse_shard("2/2")
    with pytest.raises(ConfigError, match=r"replicas=0 must be >= 1"):
        shard_of("m", 0)


def test_more_than_one_replica_needs_the_shared_postgresql_store() -> None:
    from pydantic import ValidationError

    from platform_components.monitoring.window_cache import DEFAULT_MAX_ROWS
    from platform_components.settings import MonitorSettings

    assert MonitorSettings(replicas=3).replicas == 3  # store: postgresql is the default
    with pytest.raises(ValidationError, match=r"replicas=2 needs store: postgresql \(got store: sqlite\)"):
        MonitorSettings(replicas=2, store="sqlite")
    with pytest.raises(ValidationError, match=r"replicas\n.*greater than or equal to 1"):
        MonitorSettings(replicas=0)
    # The setting's default is the cache's (the service's flag default comes from the cache).
    assert MonitorSettings().window_cache_rows == DEFAULT_MAX_ROWS
    with pytest.raises(ValidationError, match=r"window_cache_rows\n.*greater than or equal to 0"):
        MonitorSettings(window_cache_rows=-1)
