"""The whole loop on the local target, on real processes: what `make demo` shows, asserted."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from platform_components.demo import DemoOptions, run_demo
from platform_components.local.cli import loop_command
from platform_components.local.platform import LocalPlatform

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_loop_closes_by_itself_drift_then_accuracy_drop_then_retrain_then_recovery(
    tmp_path: Path, free_ports: None
) -> None:
    options = DemoOptions(
        state_dir=tmp_path / "state",
        project_dir=REPOSITORY / "examples" / "credit_default",
        days=9,
        drift_day=9,
        keep=True,  # left running for `mlops loop` below; stopped at the end
    )
    children_before = {child.pid for child in psutil.Process().children(recursive=True)}
    lines: list[str] = []

    try:
        result = run_demo(options, say=lines.append)
        # After the demo, `mlops loop` watches the same model by itself: one round on the new champion.
        looped = CliRunner().invoke(
            loop_command,
            ["credit-default", "--local", "--rounds", "1", "--json", "--state-dir", str(options.state_dir)],
        )
    finally:
        LocalPlatform.attach(options.state_dir).down()
    assert looped.exit_code == 0, looped.output
    round_ = json.loads(looped.output.strip().splitlines()[-1])
    assert round_["version"] == result.champion_version and round_["status"] == "ok"

    kinds = [event.kind for event in result.events]
    first = {kind: next(event.day for event in result.events if event.kind == kind) for kind in set(kinds)}
    assert {"drift", "accuracy", "retrain", "promotion", "recovered"} <= set(kinds), "\n".join(lines)
    # The story in order: drift is seen before labels show the damage; the retrain follows; then recovery.
    assert first["drift"] <= first["accuracy"] <= first["retrain"] <= first["promotion"] < first["recovered"]
    assert first["drift"] >= options.drift_day, "no drift may be reported before the scenario starts"

    # A new champion serves at the end, and it does better on the drifted world than the old one did.
    assert result.champion_version != result.days[0].version
    old = [day.roc_auc for day in result.days if day.version == result.days[0].version and day.roc_auc]
    new = [day.roc_auc for day in result.days if day.version == result.champion_version and day.roc_auc]
    assert new and max(new) > min(old) + 0.1
    # Every promotion was decided on the same holdout and by the margin.
    promoted = [version for version in result.versions if version["promoted"] and version["champion_roc_auc"]]
    assert promoted and all(v["challenger_roc_auc"] > v["champion_roc_auc"] for v in promoted)

    report = Path(result.report_path)
    assert report.is_file() and report.read_text().count("data:image/png;base64,") == 2
    # `down` ran: nothing the demo started is still alive.
    leftovers = [
        child for child in psutil.Process().children(recursive=True) if child.pid not in children_before
    ]
    assert not [child for child in leftovers if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]
