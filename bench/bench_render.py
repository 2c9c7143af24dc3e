"""Benchmark: offline render of the dev stack with 0 (baseline), 1,000 and 2,000 model deployments.

Goals (issue 2): 1,000 models render in <= 5 s on a 2-core machine, 2,000 cost <= 2.2x of 1,000, and each
model adds <= 3 Pulumi resources. Each measurement runs in a fresh interpreter (Pulumi's mocks are process
state), interleaved 0 / 1,000 / 2,000 per repetition; the table shows medians and the per-repetition ratio.

    .venv/bin/python bench/bench_render.py [--repetitions 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SIZES = (0, 1000, 2000)


def worker(models: int) -> None:
    """Render the dev stack with ``models`` extra models; print timings as JSON."""
    sys.path.insert(0, str(REPO))
    from platform_components.render import (
        images,
        kubernetes_objects,
        read_stack_config,
        releases,
        run_program,
    )

    config, secret_keys = read_stack_config("dev", REPO)
    entries = [
        {
            "name": f"model-{index:05d}",
            "registered_model": f"model-{index}",
        }
        for index in range(models)
    ]
    config["mlops:models"] = json.dumps(entries)
    # Import cost is not render cost: load the program's modules (pulumi_kubernetes imports lazily) first.
    run_program(read_stack_config("dev", REPO)[0], secret_keys, stack="warm-up")

    started = time.perf_counter()
    result = run_program(config, secret_keys, stack="dev")
    program_seconds = time.perf_counter() - started
    objects = kubernetes_objects(result.resources)
    image_list = images(objects, releases(result.resources))
    total_seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "models": models,
                "resources": len(result.resources),
                "objects": len(objects),
                "images": len(image_list),
                "program": program_seconds,
                "total": total_seconds,
            }
        )
    )


def floor_worker() -> None:
    """The SDK floor: 2,000 bare ConfigMaps under the same mocks (research/performance.md: 4.6 s [M])."""
    sys.path.insert(0, str(REPO))
    import pulumi_kubernetes as k8s

    from platform_components.render import run_program

    def program() -> None:
        for index in range(2000):
            k8s.core.v1.ConfigMap(f"cm-{index}", metadata={"name": f"cm-{index}"}, data={"a": "b"})

    run_program({}, program=lambda: k8s.core.v1.ConfigMap("warm", metadata={"name": "warm"}))
    started = time.perf_counter()
    result = run_program({}, program=program)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "models": -1,
                "resources": len(result.resources),
                "objects": 2000,
                "images": 0,
                "program": seconds,
                "total": seconds,
            }
        )
    )


def measure(models: int) -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, __file__, "--worker", str(models)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        floor_worker() if args.worker < 0 else worker(args.worker)
        return
    runs: dict[int, list[dict[str, float]]] = {size: [] for size in (*SIZES, -1)}
    for repetition in range(args.repetitions):
        for size in (*SIZES, -1):  # interleaved: load from other jobs hits every size alike
            runs[size].append(measure(size))
        print(f"repetition {repetition + 1}/{args.repetitions} done", file=sys.stderr)
    median = {
        size: {key: statistics.median(run[key] for run in runs[size]) for key in runs[size][0]}
        for size in runs
    }
    base = median[0]
    print(
        f"python {platform.python_version()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
        f"{args.repetitions} repetitions (median)"
    )
    print(
        f"{'models':>7} {'resources':>9} {'objects':>7} {'program s':>9} {'total s':>8} {'res/model':>9} "
        f"{'vs 0 models':>11}"
    )
    for size in SIZES:
        row = median[size]
        per_model = (row["resources"] - base["resources"]) / size if size else 0.0
        print(
            f"{size:>7} {row['resources']:>9.0f} {row['objects']:>7.0f} {row['program']:>9.2f} "
            f"{row['total']:>8.2f} {per_model:>9.2f} {row['total'] / base['total']:>10.1f}x"
        )
    floor = median[-1]["total"]
    print(
        f"{'floor':>7} {2000:>9} {2000:>7} {floor:>9.2f} {floor:>8.2f} {'':>9} "
        f"{floor / base['total']:>10.1f}x"
        "   <- 2,000 bare ConfigMaps: the SDK's own cost, for load on this machine"
    )
    ratios = [two["total"] / one["total"] for one, two in zip(runs[1000], runs[2000], strict=True)]
    versus_floor = statistics.median(
        one["total"] / fl["total"] for one, fl in zip(runs[1000], runs[-1], strict=True)
    )
    print(
        f"1,000 models / floor: {versus_floor:.2f}x (per-resource cost of our objects vs bare ConfigMaps "
        "under the same mocks and load)"
    )
    print(
        f"2,000 / 1,000 models: {statistics.median(ratios):.2f}x (goal <= 2.2x); "
        f"1,000 models: {median[1000]['total']:.2f} s (goal <= 5 s); "
        f"resources per model: {(median[1000]['resources'] - base['resources']) / 1000:.2f} (goal <= 3)"
    )


if __name__ == "__main__":
    main()
