"""`mlops demo` wipes its state folder at start: it must never wipe one it did not make."""

from __future__ import annotations

from pathlib import Path

import pytest

from platform_components.demo import DEMO_MARKER, _check_wipeable
from platform_components.errors import PlatformError


def test_the_demo_refuses_to_wipe_a_folder_it_did_not_make(tmp_path: Path) -> None:
    registry = tmp_path / ".mlops"
    (registry / "mlflow").mkdir(parents=True)
    (registry / "mlflow" / "mlflow.db").write_bytes(b"a user's registry")
    with pytest.raises(PlatformError, match=r"--state-dir .*was not made by `mlops demo`.*--resume"):
        _check_wipeable(registry)
    assert (registry / "mlflow" / "mlflow.db").read_bytes() == b"a user's registry"


def test_the_demo_may_wipe_its_own_folder_or_an_empty_one(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    _check_wipeable(empty)
    own = tmp_path / "demo"
    own.mkdir()
    (own / DEMO_MARKER).write_text("made by the demo")
    (own / "logs").mkdir()
    _check_wipeable(own)
