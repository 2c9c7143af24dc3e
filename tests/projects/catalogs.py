"""Catalogs for the project-space tests (imported by name: ``from projects.catalogs import ...``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def catalog_data(*projects: str) -> dict[str, Any]:
    """A valid catalog mapping with the named projects (of ``credit``, ``churn``, ``fraud``)."""
    known: dict[str, dict[str, Any]] = {
        "credit": {
            "name": "credit",
            "team": "risk",
            "owner": "alice",
            "description": "Credit default scoring.",
            "policy": {"cooldown": "2d"},
            "models": [
                {"name": "credit-default", "registered_model": "credit-default"},
                {
                    "name": "credit-limit",
                    "registered_model": "credit-limit",
                    "label_column": "defaulted",
                    "policy": {"min_labels": 50},
                },
            ],
        },
        "churn": {
            "name": "churn",
            "team": "growth",
            "owner": "growth",
            "models": [{"name": "churn", "registered_model": "churn-model"}],
        },
        "fraud": {
            "name": "fraud",
            "team": "risk",
            "owner": "alice",
            "models": [{"name": "fraud", "registered_model": "fraud"}],
        },
    }
    return {
        "people": [{"name": "alice"}, {"name": "bob"}, {"name": "carol"}],
        "teams": [
            {"name": "risk", "group": "oidc:risk", "members": ["alice", "bob"]},
            {"name": "growth", "group": "oidc:growth", "members": ["carol"]},
        ],
        "projects": [known[name] for name in projects],
    }


def write_catalog(path: Path, *projects: str) -> Path:
    path.write_text(yaml.safe_dump(catalog_data(*projects)), encoding="utf-8")
    return path
