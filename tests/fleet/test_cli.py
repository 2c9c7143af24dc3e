"""``mlops fleet`` on the local target, as a user runs it: a fresh process over a state dir, a real MLflow."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from platform_components.monitoring.store import MonitorStore

REPO = Path(__file__).resolve().parents[2]
DAY = 86400.0
NOW = 1_750_000_000.0
HEAVY = ("mlflow", "pandas", "numpy", "sklearn", "matplotlib", "scipy", "pulumi")
CATALOG = {
    "people": [{"name": "alice"}],
    "teams": [{"name": "risk", "group": "oidc:risk", "members": ["alice"]}],
    "projects": [
        {
            "name": "credit",
            "team": "risk",
            "owner": "alice",
            "models": [
                {"name": "cli-credit", "registered_model": "cli-credit"},
                {"name": "cli-limit", "registered_model": "cli-limit"},
            ],
        },
        {
            "name": "churn",
            "team": "risk",
            "owner": "carol",
            "models": [{"name": "cli-churn", "registered_model": "cli-churn"}],
        },
    ],
}


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory, register) -> Path:
    root = tmp_path_factory.mktemp("fleet-state")
    (root / "catalog.yaml").write_text(yaml.safe_dump(CATALOG))
    for name, auc in (("cli-credit", "0.9"), ("cli-limit", "0.8"), ("cli-churn", "0.85")):
        register(name, {"1": {"mlops.holdout.roc_auc": auc}}, {"champion": "1"})
    store = MonitorStore(root / "monitoring" / "monitor.sqlite")
    for model, auc, drifted in (
        ("cli-credit", 0.7, ["a", "b"]),
        ("cli-limit", 0.75, []),
        ("cli-churn", 0.84, []),
    ):
        for window in range(3):
            start = NOW - (3 - window) * DAY
            store.save_result(
                model,
                "1",
                checked_at=start + DAY - 1,
                window_start=start,
                window_end=start + DAY,
                result={
                    "status": "ok",
                    "rows": 100,
                    "drift_share": len(drifted) / 4,
                    "drifted_features": drifted,
                    "performance": {"roc_auc": auc + 0.01 * window},
                },
            )
    store.save_result(
        "not-in-catalog", "1", checked_at=NOW, window_start=NOW - DAY, window_end=NOW, result={"status": "ok"}
    )
    store.close()
    return root


def fleet(
    state: Path, tracking_uri: str, *arguments: str, importtime: bool = False
) -> subprocess.CompletedProcess:
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "platform_components.cli"]
    command += ["fleet", "--state-dir", str(state), "--tracking-uri", tracking_uri, *arguments]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        cwd=REPO,
        check=False,
    )


def test_json_has_one_row_per_declared_model_and_counts_the_undeclared(state: Path, mlflow_rest) -> None:
    done = fleet(state, mlflow_rest.tracking_uri, "--json", "--sort", "-realised_drop")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert [row["model"] for row in document["rows"]] == ["cli-credit", "cli-limit", "cli-churn"]
    assert document["undeclared"] == {"count": 1, "models": ["not-in-catalog"]}
    credit = document["rows"][0]
    assert (credit["version"], credit["baseline"], credit["realised"]) == ("1", 0.9, pytest.approx(0.72))
    assert credit["drift"] == "alarm" and "drift" in credit["alerts"]
    churn = document["rows"][-1]
    assert "owner 'carol' is not in the catalog's people or teams" in churn["staleness"]


def test_the_command_imports_nothing_heavy(state: Path, mlflow_rest) -> None:
    done = fleet(state, mlflow_rest.tracking_uri, "--json", importtime=True)
    assert done.returncode == 0, done.stderr
    imported = {
        match.group(1).split(".")[0] for match in re.finditer(r"\|\s+([\w.]+)\s*$", done.stderr, re.M)
    }
    assert "platform_components" in imported  # the import list was read
    assert not imported & set(HEAVY), imported & set(HEAVY)


def test_the_table_filters_and_says_what_is_not_shown(state: Path, mlflow_rest) -> None:
    done = fleet(state, mlflow_rest.tracking_uri, "--filter", "project=credit,drift=alarm")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["PROJECT", "OWNER", "MODEL"]
    assert [line.split()[2] for line in lines[1:-1]] == ["cli-credit"]
    assert lines[-1].startswith("1 of 3 declared models shown; 3 stale; 1 undeclared in the store")


def test_the_html_page_has_the_rows_sparklines_and_nothing_from_elsewhere(
    state: Path, mlflow_rest, tmp_path: Path
) -> None:
    page = tmp_path / "fleet.html"
    done = fleet(state, mlflow_rest.tracking_uri, "--html", str(page))
    assert done.returncode == 0, done.stderr
    text = page.read_text()
    assert text.count("<tr") == 4  # the header and three models
    assert text.count("<svg") >= 6  # drift and realised sparklines of each model
    assert "<polyline" in text and "addEventListener('click'" in text
    assert not re.search(r"(src|href)=\"https?://", text)
    assert 'class="stale"' in text


def test_bad_options_name_the_option_and_exit_2(state: Path, mlflow_rest) -> None:
    done = fleet(state, mlflow_rest.tracking_uri, "--sort", "colour")
    assert done.returncode == 2 and "--sort 'colour': unknown column" in done.stderr
    done = fleet(state, "http://127.0.0.1:9", "--json")
    assert done.returncode == 2 and "cannot read the registry" in done.stderr
    assert "Traceback" not in done.stderr
