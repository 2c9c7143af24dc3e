"""tools/build.py's cache: keyed by the wrapper's pins, reused when they are unchanged."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BUILD_PY = Path(__file__).resolve().parents[2] / "tools" / "build.py"


@pytest.fixture
def build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    spec = importlib.util.spec_from_file_location("mlops_tools_build", BUILD_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    tools = tmp_path / "tools"
    (tools / "demo").mkdir(parents=True)
    gomod = "module example.com/demo\n\ngo 1.26\n\ntool example.com/x/cmd/demo\n"
    (tools / "demo" / "go.mod").write_text(gomod)
    (tools / "demo" / "go.sum").write_text("example.com/x v1.0.0 h1:abc=\n")
    manifest = {"version": "v1.0.0", "builds": [{"package": "example.com/x/cmd/demo", "binary": "demo"}]}
    (tools / "demo" / "tool.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(module, "TOOLS_DIR", tools)
    monkeypatch.setenv("MLOPS_TOOLS_CACHE", str(tmp_path / "cache"))
    yield module
    del sys.modules[spec.name]


def test_cache_folder_is_named_by_version_and_pins(build) -> None:
    tool = build.load_tools()["demo"]
    folder = tool.cache_dir(build.cache_root())
    assert folder.parent == build.cache_root()
    assert folder.name.startswith("demo-v1.0.0-")
    before = tool.digest
    (tool.directory / "go.sum").write_text("example.com/x v1.0.1 h1:def=\n")
    assert tool.digest != before, "a changed go.sum must be a new cache folder"


def test_a_built_tool_is_reused_without_go(build, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    tool = build.load_tools()["demo"]
    folder = tool.cache_dir(build.cache_root())
    folder.mkdir(parents=True)
    (folder / "demo").write_text("")
    (folder / build.STAMP).write_text("{}")
    monkeypatch.setenv("PATH", "/nonexistent")  # no go on PATH: a cached tool must not need it
    assert build.main(["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tools"][0]["status"] == "cached"
    assert build.main(["--print-path", "demo"]) == 0
    assert capsys.readouterr().out.strip() == str(folder / "demo")


def test_unknown_binary_names_the_known_ones(build) -> None:
    with pytest.raises(SystemExit, match="unknown tool or binary 'nope'; known: demo"):
        build.main(["--print-path", "nope"])
