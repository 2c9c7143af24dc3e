"""Drift-check benchmark: our check vs scipy's ks_2samp, column scaling, and evidently's DataDriftPreset.

Run on demand (not a test): ``.venv/bin/python bench/bench_drift.py [--rows 100000] [--repeats 5]``.

Rows of the table (median of ``--repeats`` interleaved runs, A B A B ...):
1. our full check (KS + chi-square + PSI + correction + quality) of ``rows`` x 20 features against the
   reference profile (sorted 10k sample, the default) vs ``scipy.stats.ks_2samp`` per feature on the raw
   reference and current arrays: goal ratio <= 3.
2. the same with the profile keeping the whole reference (no subsampling), to show the ratio is not only
   the smaller reference.
3. our check at 100 vs 50 features: goal ratio <= 2.2.
4. evidently's DataDriftPreset on the same data, timed in its own interpreter (``bench/.venv-evidently``,
   created on first use with ``pip install "evidently>=0.7,<0.8" "pandas<3"``; evidently forces other
   versions than the platform's, so it never enters ``.venv``): goal ours >= 10x faster.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy
from scipy.stats import ks_2samp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from platform_components.monitoring.monitor import check_frame  # noqa: E402
from platform_components.monitoring.profile import build_reference_profile  # noqa: E402

EVIDENTLY_VENV = ROOT / "bench" / ".venv-evidently"
# evidently 0.7.23 imports pandas.core internals that pandas 3 removed (ImportError on
# infer_dtype_from_object), so its venv keeps pandas 2.
EVIDENTLY_REQUIREMENTS = ("evidently>=0.7,<0.8", "pandas>=2.2,<3")

# Runs inside the evidently interpreter: load the arrays, time Report.run only (not import or loading).
EVIDENTLY_SCRIPT = r"""
import sys, time, json
import numpy as np, pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
reference = np.load(sys.argv[1]); current = np.load(sys.argv[2])
columns = [f"f{i}" for i in range(reference.shape[1])]
reference = pd.DataFrame(reference, columns=columns); current = pd.DataFrame(current, columns=columns)
Report([DataDriftPreset()]).run(current.head(1000), reference.head(1000))  # warm-up (imports, caches)
started = time.perf_counter()
snapshot = Report([DataDriftPreset()]).run(current, reference)
elapsed = time.perf_counter() - started
import evidently
print(json.dumps({"seconds": elapsed, "version": evidently.__version__}))
"""


def make_data(rows: int, features: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    reference = rng.normal(0.0, 1.0, (rows, features))
    current = rng.normal(0.0, 1.0, (rows, features))
    current[:, :2] += 0.5  # two drifted features, as in the tests
    return reference, current


def frame(array: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(array, columns=[f"f{i}" for i in range(array.shape[1])])


def time_call(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def ensure_evidently() -> tuple[Path | None, str]:
    """The evidently interpreter, creating its venv on first use; (None, reason) when impossible."""
    python = EVIDENTLY_VENV / "bin" / "python"
    if python.exists():
        probe = subprocess.run(
            [str(python), "-c", "import evidently.presets, pandas; assert pandas.__version__ < '3'"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0:
            return python, ""
    try:
        subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True, capture_output=True)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *EVIDENTLY_REQUIREMENTS],
            capture_output=True,
            text=True,
            timeout=1800,
        )
    except (subprocess.SubprocessError, OSError) as error:
        return None, f"could not create {EVIDENTLY_VENV}: {error}"
    # Like uv's venvs: a `*` .gitignore inside keeps the environment out of `git add bench/`.
    (EVIDENTLY_VENV / ".gitignore").write_text("*\n")
    if install.returncode != 0:
        return None, f"pip install {' '.join(EVIDENTLY_REQUIREMENTS)} failed: {install.stderr.strip()[-300:]}"
    return python, ""


def run_evidently(python: Path, reference_path: Path, current_path: Path) -> tuple[float, str]:
    completed = subprocess.run(
        [str(python), "-c", EVIDENTLY_SCRIPT, str(reference_path), str(current_path)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr.strip()[-500:])
    import json

    data = json.loads(completed.stdout.strip().splitlines()[-1])
    return float(data["seconds"]), str(data["version"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-evidently", action="store_true")
    arguments = parser.parse_args()
    rows, repeats = arguments.rows, max(5, arguments.repeats)

    reference, current = make_data(rows, 100)
    reference20, current20 = reference[:, :20].copy(), current[:, :20].copy()
    names = [f"f{i}" for i in range(100)]
    profiles = {
        "sample": build_reference_profile(frame(reference20), numeric=names[:20], categorical=[]),
        "full": build_reference_profile(
            frame(reference20), numeric=names[:20], categorical=[], sample_size=rows
        ),
        50: build_reference_profile(frame(reference[:, :50]), numeric=names[:50], categorical=[]),
        100: build_reference_profile(frame(reference), numeric=names, categorical=[]),
    }
    current_frames = {20: frame(current20), 50: frame(current[:, :50]), 100: frame(current)}

    def scipy_ks() -> None:
        for column in range(20):
            ks_2samp(reference20[:, column], current20[:, column])

    # Sanity: ours flags the two shifted features, as scipy does.
    report = check_frame(current_frames[20], profiles["sample"])
    assert report.drifted_features == ["f0", "f1"], report.drifted_features

    timings: dict[str, list[float]] = {key: [] for key in ("ours", "ours_full", "scipy", "ours50", "ours100")}
    for _ in range(repeats):  # interleaved: A B A B ...
        timings["ours"].append(time_call(lambda: check_frame(current_frames[20], profiles["sample"])))
        timings["scipy"].append(time_call(scipy_ks))
        timings["ours_full"].append(time_call(lambda: check_frame(current_frames[20], profiles["full"])))
        timings["ours50"].append(time_call(lambda: check_frame(current_frames[50], profiles[50])))
        timings["ours100"].append(time_call(lambda: check_frame(current_frames[100], profiles[100])))

    evidently_seconds: list[float] = []
    ours_next_to_evidently: list[float] = []
    evidently_note = ""
    if arguments.skip_evidently:
        evidently_note = "not measured: --skip-evidently"
    else:
        python, reason = ensure_evidently()
        if python is None:
            evidently_note = f"not measured: {reason}"
        else:
            with tempfile.TemporaryDirectory() as folder:
                reference_path, current_path = Path(folder) / "reference.npy", Path(folder) / "current.npy"
                np.save(reference_path, reference20)
                np.save(current_path, current20)
                try:
                    for _ in range(repeats):
                        ours_next_to_evidently.append(
                            time_call(lambda: check_frame(current_frames[20], profiles["sample"]))
                        )
                        seconds, version = run_evidently(python, reference_path, current_path)
                        evidently_seconds.append(seconds)
                    evidently_note = f"evidently {version}"
                except (RuntimeError, subprocess.SubprocessError) as error:
                    evidently_note = f"not measured: evidently failed: {error}"

    median = {key: statistics.median(values) for key, values in timings.items()}
    print(
        f"# drift check benchmark: {rows:,} rows, median of {repeats} interleaved runs; python "
        f"{platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"pandas {pd.__version__}, {os.cpu_count()} cores"
    )
    print(f"{'comparison':58} {'candidate':>11} {'baseline':>11} {'ratio':>7} {'goal':>8} ok")
    rows_out = [
        (
            "20 features: our check (10k ref sample) / scipy ks_2samp",
            median["ours"],
            median["scipy"],
            3.0,
            "<=",
        ),
        (
            "20 features: our check (full 100k ref) / scipy ks_2samp",
            median["ours_full"],
            median["scipy"],
            3.0,
            "<=",
        ),
        ("our check: 100 features / 50 features", median["ours100"], median["ours50"], 2.2, "<="),
    ]
    for label, candidate, baseline, goal, sense in rows_out:
        ratio = candidate / baseline
        print(
            f"{label:58} {candidate * 1e3:9.1f}ms {baseline * 1e3:9.1f}ms {ratio:7.2f} {sense}{goal:<6} "
            f"{'yes' if ratio <= goal else 'NO'}"
        )
    if evidently_seconds:
        ours = statistics.median(ours_next_to_evidently)
        theirs = statistics.median(evidently_seconds)
        speedup = theirs / ours
        print(
            f"{'20 features: evidently DataDriftPreset / our check':58} {theirs * 1e3:9.1f}ms "
            f"{ours * 1e3:9.1f}ms {speedup:7.1f} >=10     {'yes' if speedup >= 10 else 'NO'}"
            f"   ({evidently_note})"
        )
    else:
        print(f"{'20 features: evidently DataDriftPreset / our check':58} {evidently_note}")
    per_feature = median["ours"] / 20, median["scipy"] / 20
    print(f"per feature: ours {per_feature[0] * 1e3:.2f} ms, scipy ks_2samp {per_feature[1] * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
