"""The upstream facts the platform relies on: one table, read by the tests.

Every chart value, CRD field, metric label, port, mount, image content and CLI rule the code depends on is a
``Fact``: a key, the fact in our own words, the value the tests compare against, and where it was read
(``owner/repo path@tag``). The table is split into one module per upstream project so that each area's facts
sit together; ``FACTS`` joins them and ``fact(key)`` is how a test reads one. A version bump re-reads the
sources cited here; a test that compares the render with a fact fails when either side moves.

Where upstream's own data files are needed (CRDs, chart values, KFP manifests), tests read them from
``../shared/upstream`` beside the repository (``UPSTREAM``) and skip, saying why, where it is absent.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = (REPO.parent / "shared" / "upstream").resolve()
# owner/repo path@ref: the ref is a tag (v2.10.2, 2.17.0, 81.6.2) or a commit.
SOURCE_PATTERN = re.compile(r"^[\w.-]+/[\w.-]+ \S+@[\w.+-]+$")


@dataclass(frozen=True)
class Fact:
    """One upstream fact: ``statement`` in our words, ``value`` for the tests, ``source`` as repo path@tag."""

    key: str
    statement: str
    source: str
    value: Any = None


def _collect() -> dict[str, Fact]:
    facts: dict[str, Fact] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for item in getattr(module, "FACTS", ()):
            if item.key in facts:
                raise ValueError(f"upstream fact {item.key!r} is declared twice")
            facts[item.key] = item
    return facts


FACTS: dict[str, Fact] = _collect()


def fact(key: str) -> Any:
    """The value of the fact ``key`` (KeyError names the key when it is not in the table)."""
    try:
        return FACTS[key].value
    except KeyError:
        raise KeyError(f"no upstream fact {key!r}: add it to tests/upstream_facts/") from None


def upstream_path(*parts: str) -> Path:
    """A path under ../shared/upstream; skips the calling test, saying why, when the folder is absent."""
    path = UPSTREAM.joinpath(*parts)
    if not UPSTREAM.is_dir():
        pytest.skip(f"needs upstream's data files in {UPSTREAM} (../shared/upstream beside the repository)")
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from ../shared/upstream: the pinned version moved?")
    return path
