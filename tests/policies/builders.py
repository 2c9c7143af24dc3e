"""Fixture loading and small object builders shared by the policy and validation tests."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml

FIXTURES = Path(__file__).parent / "fixtures"


@cache
def _parsed(name: str) -> tuple[dict[str, Any], ...]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with (FIXTURES / f"{name}.yaml").open() as stream:
        return tuple(document for document in yaml.load_all(stream, Loader=loader) if document)


def load(name: str) -> list[dict[str, Any]]:
    """Objects of ``fixtures/<name>.yaml`` (multi-document YAML); a fresh copy per call, free to mutate."""
    return copy.deepcopy(list(_parsed(name)))


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The object of ``kind`` named ``name``; fails the test loudly when the fixture lacks it."""
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"fixture has no {kind} {name}")


def deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return find(objects, "Deployment", "model-server")


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return deployment(objects)["spec"]["template"]["spec"]


def main_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return pod_spec(objects)["containers"][0]


def annotate_exception(obj: dict[str, Any], rules: str, reason: str | None) -> None:
    """Declare a policy exception on ``obj`` (reason None leaves the reason annotation out)."""
    notes = obj.setdefault("metadata", {}).setdefault("annotations", {})
    notes["mlops.platform/policy-exception"] = rules
    if reason is not None:
        notes["mlops.platform/policy-exception-reason"] = reason


def clone(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return copy.deepcopy(objects)
