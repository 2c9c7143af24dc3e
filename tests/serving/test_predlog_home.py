"""The prediction log and its shipper live in serving/ (they run in the serving process), and only there."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import platform_components

PACKAGE = Path(platform_components.__file__).resolve().parent
# What the monitor may use of the log: the record and the readers (see predlog.py's docstring).
PUBLIC_READER = {"PredictionRecord", "read_records", "read_records_from"}


@pytest.mark.parametrize(
    "old", ["platform_components.monitoring.predlog", "platform_components.monitoring.shipper"]
)
def test_the_old_module_path_is_gone(old):
    assert not (PACKAGE / "monitoring" / (old.rsplit(".", 1)[1] + ".py")).exists()
    with pytest.raises(ModuleNotFoundError, match=old.replace(".", r"\.")):
        importlib.import_module(old)


def _imports(folder: str) -> list[tuple[Path, str, list[str]]]:
    found = []
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.append((path, node.module, [alias.name for alias in node.names]))
            elif isinstance(node, ast.Import):
                found.extend((path, alias.name, []) for alias in node.names)
    return found


def test_monitoring_uses_only_the_logs_public_reader_from_serving():
    used = {
        (path.name, module, name)
        for path, module, names in _imports("monitoring")
        if module.startswith("platform_components.serving")
        for name in names or ["<module>"]
    }
    assert used, "the monitor's store reads the prediction log: expected an import of its reader"
    outside = {
        item
        for item in used
        if item[1] != "platform_components.serving.predlog" or item[2] not in PUBLIC_READER
    }
    assert not outside, f"monitoring/ imports serving internals: {sorted(outside)}"


def test_serving_imports_nothing_from_monitoring():
    used = [
        (path.name, module)
        for path, module, _ in _imports("serving")
        if module.startswith("platform_components.monitoring")
    ]
    assert not used, f"serving/ imports monitoring/: {used}"
