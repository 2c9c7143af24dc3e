"""The models a loop watches: one ``LoopModel`` per served model, with its effective policy.

In the cluster the Pulumi program writes them as ``models.json`` (a ConfigMap the monitor mounts at
``/etc/mlops/models.json``, path in ``MLOPS_MONITOR_MODELS``) from the stack's ``models`` and ``policy``
(``platform_components/kubernetes/model.py: monitor_entry``); locally ``mlops loop --local`` builds them from
the model name and ``policy.yaml``. One JSON list of entries::

    [{"name": "credit-default",              # served model name: the prediction log's and metrics' `model`
      "registered_model": "credit-default",  # MLflow registered model
      "alias": "champion",                   # the version served and checked is resolved from it each round
      "project": "risk",                     # optional
      "thresholds": {"drift_p_value": 0.01, "psi": 0.2, ...},   # settings.Thresholds (alerts and checks)
      "policy": {"window": 86400.0, "cooldown": 86400.0, ...},  # settings.LoopPolicy, already resolved
      "label_column": "label",
      "pipeline_arguments": {}}]

``thresholds.drift_p_value`` is the check's level for the corrected per-feature tests and ``thresholds.psi``
flags a feature whose PSI is above it, on both targets: the monitor's drift verdict and the alert rules
agree. ``min_accuracy``, latency and error rate are alerts only; the loop's performance trigger is the
policy's (``performance_metric`` against the version's training holdout).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from platform_components.errors import ConfigError
from platform_components.settings import LoopPolicy, PolicySettings, Thresholds, load_policy_file

MODELS_ENV = "MLOPS_MONITOR_MODELS"
POLICY_FILE = "policy.yaml"


class LoopModel(BaseModel):
    """One watched model (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Served model name (prediction log and metric label).")
    registered_model: str = Field(min_length=1, description="MLflow registered model name.")
    alias: str = Field("champion", min_length=1, description="Alias whose version is served and checked.")
    project: str | None = Field(None, description="Project the model belongs to.")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    policy: LoopPolicy = Field(default_factory=LoopPolicy)
    label_column: str = Field("label", min_length=1, description="Label column in the retrain data.")
    pipeline_arguments: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Extra pipeline arguments of this model's retrain runs."
    )


def parse_models(text: str, *, source: str = "models.json") -> tuple[LoopModel, ...]:
    """Parse the models file's text.

    Raises:
        ConfigError: not JSON, or an entry is invalid; the message names the entry, field, value and fix.
    """
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"{source}: not valid JSON ({error}); write a JSON list of models") from None
    if not isinstance(data, list):
        raise ConfigError(
            f"{source}: expected a JSON list of models, got {type(data).__name__}; "
            'write [{"name": ..., "registered_model": ..., "alias": "champion", "policy": {...}}]'
        )
    try:
        models = TypeAdapter(list[LoopModel]).validate_python(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            location = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"])
            shown = "" if item["type"] == "missing" else f" (got {item.get('input')!r})"
            problems.append(f"{source}{location}: {item['msg']}{shown}")
        raise ConfigError("; ".join(problems) + f"; fix the entry (schema: {__name__}.LoopModel)") from None
    seen: dict[str, int] = {}
    for index, entry in enumerate(models):
        if entry.name in seen:
            raise ConfigError(
                f"{source}[{index}].name: {entry.name!r} is also entry [{seen[entry.name]}]; "
                "list each served model once"
            )
        seen[entry.name] = index
    return tuple(models)


def load_models(path: str | os.PathLike[str]) -> tuple[LoopModel, ...]:
    """Read and validate the models file at ``path``.

    Raises:
        ConfigError: the file is missing or unreadable, or its content is invalid (see ``parse_models``).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(
            f"{MODELS_ENV}={str(path)!r}: cannot read it ({error.strerror or error}); "
            "point it at the models.json the platform mounts (/etc/mlops/models.json)"
        ) from None
    return parse_models(text, source=str(path))


def local_policy(state_dir: Path, path: Path | None = None) -> PolicySettings:
    """The local target's policy: ``path``, else ``<state_dir>/policy.yaml`` when it exists, else the
    platform's defaults (the same keys as the stack's ``mlops:policy``).

    Raises:
        ConfigError: the file is unreadable or a key or value is wrong (named, with the fix).
    """
    chosen = path if path is not None else Path(state_dir) / POLICY_FILE
    if path is None and not chosen.is_file():
        return PolicySettings()
    return load_policy_file(chosen)


def local_model(
    name: str,
    policy: PolicySettings,
    *,
    registered_model: str | None = None,
    alias: str = "champion",
    project: str | None = None,
) -> LoopModel:
    """A watched model on the local target, with its effective policy."""
    return LoopModel(
        name=name,
        registered_model=registered_model or name,
        alias=alias,
        project=project,
        policy=policy.resolve(project, name),
    )
