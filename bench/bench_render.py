"""Benchmark: the offline render of 1,000 models in 50 projects against a flat floor of the same objects.

Goals:
- issue 10: rendering 50 projects with 1,000 models costs at most 1.5x a floor that registers the same objects
  (kinds, inputs, count) flat, without our components, under the same mocks in the same run. The floor is
  built from the real render's own resource list: every Kubernetes resource and provider it registered, with
  its type, name, inputs and provider, registered again through the same pulumi-kubernetes classes
  (``apiextensions.CustomResource`` for custom resources) by a program that does nothing else: no component
  resources, no settings, no builders, no ordering (``depends_on``). The floor checks that it registered
  exactly the real render's (type, name, inputs), so it cannot drift from what it claims to be.
- issue 2: 1,000 models render in <= 5 s on a 2-core machine, 2,000 cost <= 2.2x of 1,000, and each model
  adds <= 3 Pulumi resources.

Each measurement runs in a fresh interpreter (Pulumi's mocks are process state), interleaved 0 / 1,000 /
floor / 2,000 per repetition; the tables show medians, and the ratios are medians of per-repetition ratios.

    .venv/bin/python bench/bench_render.py [--repetitions 5] [--json]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MODELS = 1000
PROJECTS = 50
SIZES = (0, MODELS, 2 * MODELS)
FLOOR = -1
FLOOR_GOAL = 1.5
#: What the floor registers again: Kubernetes objects (and provider-side components such as Helm releases)
#: and providers. Everything else (``mlops:platform:*`` components, the stack) is ours or the engine's.
FLOOR_PREFIXES = ("kubernetes:", "pulumi:providers:")


def fleet_catalog(models: int, projects: int) -> dict[str, Any]:
    """A catalog of ``projects`` projects (10 teams) holding ``models`` models evenly, with policy keys on
    every fifth project and every tenth model, as ``mlops:catalog`` takes it inline (docs/catalog.md)."""
    teams = min(10, projects)
    per_project = -(-models // projects) if projects else 0
    catalog: dict[str, Any] = {
        "people": [{"name": f"person-{index:02d}"} for index in range(teams)],
        "teams": [
            {
                "name": f"team-{index:02d}",
                "group": f"oidc:team-{index:02d}",
                "members": [f"person-{index:02d}"],
            }
            for index in range(teams)
        ],
        "projects": [],
    }
    for project in range(projects):
        entry: dict[str, Any] = {
            "name": f"project-{project:02d}",
            "team": f"team-{project % teams:02d}",
            "owner": f"person-{project % teams:02d}",
            "quota": {"max_models": per_project, "serving_memory": f"{per_project}Gi"},
            "models": [],
        }
        if project % 5 == 0:
            entry["policy"] = {"cooldown": "2d"}
        catalog["projects"].append(entry)
    for index in range(models):
        model: dict[str, Any] = {"name": f"model-{index:05d}", "registered_model": f"model-{index}"}
        if index % 10 == 0:
            model["policy"] = {"min_labels": 100}
        catalog["projects"][index % projects]["models"].append(model)
    return catalog


def fleet_config(models: int, projects: int) -> tuple[dict[str, Any], list[str]]:
    """The dev stack plus ``models`` models in ``projects`` more catalog projects (its own stay)."""
    import yaml

    from platform_components.render import read_stack_config

    config, secret_keys = read_stack_config("dev", REPO)
    if models:
        declared = config.get("mlops:catalog")
        if declared is None:
            catalog: dict[str, Any] = {}
        elif declared.lstrip().startswith("{"):
            catalog = json.loads(declared)  # inline: structured config reaches programs as JSON text
        else:
            catalog = yaml.safe_load((REPO / declared).read_text()) or {}
        for key, entries in fleet_catalog(models, projects).items():
            catalog[key] = [*(catalog.get(key) or []), *entries]
        config["mlops:catalog"] = json.dumps(catalog)
    return config, secret_keys


def worker(models: int, projects: int, resource_list: Path | None) -> dict[str, Any]:
    """Render the dev stack with ``models`` more models; optionally write what it registered for the floor."""
    from platform_components.render import (
        images,
        kubernetes_objects,
        read_stack_config,
        releases,
        run_program,
    )

    config, secret_keys = fleet_config(models, projects)
    # Import cost is not render cost: load the program's modules (pulumi_kubernetes imports lazily) first.
    run_program(read_stack_config("dev", REPO)[0], secret_keys, stack="warm-up")
    collect_render_garbage()  # the warm-up's, which a one-shot render has none of

    started, cpu_started = time.perf_counter(), time.process_time()
    result = run_program(config, secret_keys, stack="dev")
    program_seconds = time.perf_counter() - started
    objects = kubernetes_objects(result.resources)
    image_list = images(objects, releases(result.resources))
    total_seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    flat = [
        {
            "type": resource.type,
            "name": resource.name,
            "inputs": resource.inputs,
            "provider": resource.provider.split("::")[3] if resource.provider else None,
        }
        for resource in result.resources
        if resource.type.startswith(FLOOR_PREFIXES)
    ]
    if resource_list is not None:
        resource_list.write_text(json.dumps(flat))
    return {
        "models": models,
        "resources": len(result.resources),
        "registered": len(flat),
        "objects": len(objects),
        "images": len(image_list),
        "program": program_seconds,
        "total": total_seconds,
        "cpu": cpu_seconds,
    }


# ---- the floor ----


def collect_render_garbage() -> None:
    """``render.collect_render_garbage`` where the tree has it (the bench also runs on older checkouts)."""
    from platform_components import render

    getattr(render, "collect_render_garbage", lambda: None)()


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _sdk_class(type_token: str) -> Any:
    """The pulumi-kubernetes class registering ``type_token``; None for a custom resource's kind."""
    _, module, kind = type_token.split(":")
    group, _, version = module.rpartition("/")
    try:
        package = importlib.import_module(f"pulumi_kubernetes.{group.split('.')[0]}.{version}")
    except ImportError:
        return None
    return getattr(package, kind, None)


def _with_secrets(value: Any) -> Any:
    """Inputs as the engine saw them -> inputs to register: Pulumi's secret wire format back to secrets."""
    import pulumi
    from pulumi.runtime import rpc

    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:  # noqa: SLF001 - the SDK's wire format
            return pulumi.Output.secret(value.get("value"))
        return {key: _with_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_secrets(item) for item in value]
    return value


def _floor_plan(flat: list[dict[str, Any]]) -> list[tuple[Any, dict[str, Any]]]:
    """(how to register, what) per resource, providers first: decided before the clock starts."""
    plan: list[tuple[Any, dict[str, Any]]] = []
    for entry in sorted(flat, key=lambda item: not item["type"].startswith("pulumi:providers:")):
        if entry["type"].startswith("pulumi:providers:"):
            plan.append(("provider", entry))
            continue
        cls = _sdk_class(entry["type"])
        plan.append((cls if cls is not None else "custom", entry))
    return plan


def _register_floor(plan: list[tuple[Any, dict[str, Any]]]) -> None:
    """The floor program: each resource registered directly, flat, with its inputs and provider."""
    import pulumi
    import pulumi_kubernetes as k8s

    providers: dict[str, pulumi.ProviderResource] = {}
    for how, entry in plan:
        inputs = _with_secrets(entry["inputs"])
        provider = providers.get(entry["provider"]) if entry["provider"] else None
        opts = pulumi.ResourceOptions(provider=provider)
        if how == "provider":
            package = entry["type"].removeprefix("pulumi:providers:")
            providers[entry["name"]] = pulumi.ProviderResource(package, entry["name"], inputs, opts)
        elif how == "custom":
            api_version, kind = inputs.pop("apiVersion"), inputs.pop("kind")
            k8s.apiextensions.CustomResource(
                entry["name"], api_version=api_version, kind=kind, opts=opts, **inputs
            )
        else:
            inputs.pop("apiVersion", None)
            inputs.pop("kind", None)
            how(entry["name"], opts=opts, **{_snake(key): value for key, value in inputs.items()})


def _registered_key(type_: str, name: str, inputs: Any) -> tuple[str, str, str]:
    from platform_components.render import clean

    return type_, name, json.dumps(clean(inputs, redact=False), sort_keys=True)


def floor_worker(resource_list: Path) -> dict[str, Any]:
    """Register the real render's resources flat under the same mocks; check they are the same ones."""
    from platform_components.render import run_program

    flat = json.loads(resource_list.read_text())
    plan = _floor_plan(flat)
    # The same warm-up as the real worker's: every class the floor uses imported and registered once.
    seen: dict[str, tuple[Any, dict[str, Any]]] = {}
    for how, entry in plan:
        seen.setdefault(entry["type"], (how, entry))
    run_program({}, program=lambda: _register_floor(list(seen.values())), stack="warm-up")
    collect_render_garbage()

    started, cpu_started = time.perf_counter(), time.process_time()
    result = run_program({}, program=lambda: _register_floor(plan), stack="dev")
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started

    expected = sorted(_registered_key(e["type"], e["name"], e["inputs"]) for e in flat)
    got = sorted(_registered_key(r.type, r.name, r.inputs) for r in result.resources)
    if got != expected:
        missing = sorted(set(expected) - set(got))[:3]
        extra = sorted(set(got) - set(expected))[:3]
        raise SystemExit(f"the floor registered other resources than the render: {missing=} {extra=}")
    return {
        "models": FLOOR,
        "resources": len(result.resources),
        "registered": len(result.resources),
        "objects": len(result.resources),
        "images": 0,
        "program": seconds,
        "total": seconds,
        "cpu": cpu_seconds,
    }


# ---- the driver ----


def measure(size: int, resource_list: Path, projects: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", str(size), "--projects", str(projects)]
    if size in (MODELS, FLOOR):
        command += ["--resource-list", str(resource_list)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO)
    if completed.returncode != 0:
        raise SystemExit(f"worker {size} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--projects", type=int, default=PROJECTS, help="projects the models spread over")
    parser.add_argument("--json", dest="as_json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--resource-list", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        sys.path.insert(0, str(REPO))
        if args.worker == FLOOR:
            figures = floor_worker(args.resource_list)
        else:
            figures = worker(args.worker, args.projects, args.resource_list)
        print(json.dumps(figures))
        return

    order = (0, MODELS, FLOOR, 2 * MODELS)  # the floor reads the list the 1,000-model run just wrote
    runs: dict[int, list[dict[str, Any]]] = {size: [] for size in order}
    with tempfile.TemporaryDirectory(prefix="bench-render-") as scratch:
        resource_list = Path(scratch) / "resources.json"
        for repetition in range(args.repetitions):
            for size in order:  # interleaved: load from other jobs hits every size alike
                runs[size].append(measure(size, resource_list, args.projects))
            print(f"repetition {repetition + 1}/{args.repetitions} done", file=sys.stderr)
    median = {
        size: {key: statistics.median(run[key] for run in runs[size]) for key in runs[size][0]}
        for size in runs
    }
    base = median[0]
    versus_floor = statistics.median(
        real["total"] / flat["total"] for real, flat in zip(runs[MODELS], runs[FLOOR], strict=True)
    )
    # CPU seconds of the process (every thread): the same ratio, less sensitive to other jobs' load.
    versus_floor_cpu = statistics.median(
        real["cpu"] / flat["cpu"] for real, flat in zip(runs[MODELS], runs[FLOOR], strict=True)
    )
    doubling = statistics.median(
        two["total"] / one["total"] for one, two in zip(runs[MODELS], runs[2 * MODELS], strict=True)
    )
    per_model = (median[MODELS]["resources"] - base["resources"]) / MODELS
    summary = {
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "load": round(os.getloadavg()[0], 1),
        "repetitions": args.repetitions,
        "projects": args.projects,
        "median": {str(size): median[size] for size in order},
        "render_seconds": median[MODELS]["total"],
        "floor_seconds": median[FLOOR]["total"],
        "render_vs_floor": versus_floor,
        "render_vs_floor_cpu": versus_floor_cpu,
        "render_vs_floor_goal": FLOOR_GOAL,
        "doubling": doubling,
        "doubling_goal": 2.2,
        "render_goal_seconds": 5.0,
        "resources_per_model": per_model,
        "resources_per_model_goal": 3,
    }
    if args.as_json:
        print(json.dumps(summary, indent=2))
        return
    print(
        f"python {summary['python']}, {summary['cores']} cores, load {summary['load']:.1f}, "
        f"{args.repetitions} repetitions (median), models spread over {args.projects} projects"
    )
    print(
        f"{'models':>7} {'resources':>9} {'objects':>7} {'program s':>9} {'total s':>8} {'res/model':>9} "
        f"{'vs 0 models':>11}"
    )
    for size in SIZES:
        row = median[size]
        added = (row["resources"] - base["resources"]) / size if size else 0.0
        print(
            f"{size:>7} {row['resources']:>9.0f} {row['objects']:>7.0f} {row['program']:>9.2f} "
            f"{row['total']:>8.2f} {added:>9.2f} {row['total'] / base['total']:>10.1f}x"
        )
    floor = median[FLOOR]
    print(
        f"{'floor':>7} {floor['resources']:>9.0f} {floor['objects']:>7.0f} {floor['program']:>9.2f} "
        f"{floor['total']:>8.2f} {'':>9} {floor['total'] / base['total']:>10.1f}x"
        f"   <- the {MODELS:,}-model render's {floor['resources']:.0f} objects and providers registered flat"
    )
    verdict = "met" if versus_floor <= FLOOR_GOAL else "missed"
    print(
        f"{MODELS:,} models in {args.projects} projects / floor: {versus_floor:.2f}x "
        f"(goal <= {FLOOR_GOAL}x: {verdict}); render {median[MODELS]['total']:.2f} s, "
        f"floor {floor['total']:.2f} s; in CPU seconds {versus_floor_cpu:.2f}x "
        f"({median[MODELS]['cpu']:.2f} s / {floor['cpu']:.2f} s)"
    )
    print(
        f"2,000 / 1,000 models: {doubling:.2f}x (goal <= 2.2x); "
        f"1,000 models: {median[MODELS]['total']:.2f} s (goal <= 5 s); "
        f"resources per model: {per_model:.2f} (goal <= 3)"
    )


if __name__ == "__main__":
    main()
