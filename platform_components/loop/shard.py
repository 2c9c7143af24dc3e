"""Which monitor replica checks which model: a stable hash of the model's name modulo the replica count.

The cluster's monitor is a StatefulSet of ``mlops:monitoring.monitor.replicas`` pods sharing one PostgreSQL
store. Each pod checks, decides and retrains for its share of the models only, so a round over 1,000
models on two replicas costs each about what 500 cost one. The share is ``SHA-256(name) mod replicas``:

- stable across processes, restarts and machines (Python's ``hash()`` of a string is salted per process
  and would move every model at each restart);
- about even for any set of names (a model's share depends on its name alone, not on the others, so adding
  a model moves none of the rest);
- changing the replica count moves models between pods; the store's leases keep a retrain from running
  twice while a moved model's old and new owner overlap, and results, positions and decisions are in the
  shared store, so the new owner carries on where the old one stopped.

A pod learns its index from its hostname: a StatefulSet pod is named ``<statefulset>-<ordinal>`` with
ordinals ``0 .. replicas - 1``, and its hostname is its name (``shard_from_hostname``). Outside a
StatefulSet ``--shard i/n`` says it by hand.
"""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from platform_components.errors import ConfigError

T = TypeVar("T")
_ORDINAL = re.compile(r"^(?P<name>.+)-(?P<ordinal>0|[1-9][0-9]*)$")


def shard_of(model: str, replicas: int) -> int:
    """The replica index (``0 .. replicas - 1``) that checks ``model``."""
    if replicas < 1:
        raise ConfigError(f"replicas={replicas} must be >= 1 (mlops:monitoring.monitor.replicas)")
    digest = hashlib.sha256(model.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % replicas


@dataclass(frozen=True)
class Shard:
    """One replica's share: replica ``index`` of ``count``.

    Attributes:
        index: this replica's index, ``0 .. count - 1`` (a StatefulSet pod's ordinal).
        count: how many replicas share the models.
    """

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ConfigError(
                f"shard {self.index}/{self.count}: the index must be in 0..{max(self.count, 1) - 1} and the "
                "count >= 1; write it as INDEX/COUNT, e.g. --shard 0/2"
            )

    def owns(self, model: str) -> bool:
        """Whether this replica checks ``model``."""
        return self.count == 1 or shard_of(model, self.count) == self.index

    def select(self, items: Iterable[T], name: Callable[[T], str] = str) -> list[T]:
        """The items whose ``name(item)`` (default: the item itself, a model name) this replica owns."""
        return [item for item in items if self.owns(name(item))]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``INDEX/COUNT`` (``--shard 1/4``).

    Raises:
        ConfigError: not two whole numbers, or the index outside ``0 .. COUNT - 1``.
    """
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None:
        raise ConfigError(
            f"--shard: {text!r} is not INDEX/COUNT; write e.g. 0/2 for the first of two replicas"
        )
    return Shard(int(match.group(1)), int(match.group(2)))


def shard_from_hostname(replicas: int, hostname: str | None = None) -> Shard:
    """This pod's share from its StatefulSet hostname ``<name>-<ordinal>`` (``replicas`` pods in all).

    Raises:
        ConfigError: ``replicas > 1`` and the hostname carries no ordinal (not a StatefulSet pod: pass
            ``--shard INDEX/COUNT``), or the ordinal is not below ``replicas``.
    """
    if replicas == 1:
        return Shard(0, 1)
    hostname = socket.gethostname() if hostname is None else hostname
    match = _ORDINAL.match(hostname.split(".", 1)[0])
    if match is None:
        raise ConfigError(
            f"--replicas {replicas}: hostname {hostname!r} is not a StatefulSet pod's <name>-<ordinal>, so "
            "this replica cannot tell its share; run it in the monitor's StatefulSet or pass "
            "--shard INDEX/COUNT"
        )
    ordinal = int(match.group("ordinal"))
    if ordinal >= replicas:
        raise ConfigError(
            f"--replicas {replicas}: pod {hostname!r} has ordinal {ordinal}, outside 0..{replicas - 1}; the "
            "StatefulSet's replicas and mlops:monitoring.monitor.replicas must be the same number"
        )
    return Shard(ordinal, replicas)
