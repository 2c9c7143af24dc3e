"""The catalog's models as the loop watches them on the local target (``mlops loop --local --catalog``).

The same resolution as the cluster's ``models.json`` (``kubernetes/model.py: monitor_entry``): the policy
file's defaults, then the project's keys, then the model's; a project's or model's keys set in the catalog
and in the policy file both are refused, as the stack refuses them (``PlatformSettings``).
"""

from __future__ import annotations

from platform_components.errors import ConfigError
from platform_components.loop.models import LoopModel
from platform_components.settings import CatalogSettings, PolicyOverride, PolicySettings


def catalog_policy(catalog: CatalogSettings, policy: PolicySettings) -> PolicySettings:
    """``policy`` with the catalog's project and model keys merged in.

    Raises:
        ConfigError: a project's or model's keys are in both places (named, with the fix).
    """
    projects: dict[str, PolicyOverride] = dict(policy.projects)
    models: dict[str, PolicyOverride] = dict(policy.models)
    for index, project in enumerate(catalog.projects):
        if project.policy is not None:
            if project.name in projects:
                raise ConfigError(
                    f"catalog projects.{index}.policy: project {project.name!r} also has policy-file keys "
                    f"(projects.{project.name}); set them in one place"
                )
            projects[project.name] = project.policy
        for position, model in enumerate(project.models):
            if model.policy is not None:
                if model.name in models:
                    raise ConfigError(
                        f"catalog projects.{index}.models.{position}.policy: model {model.name!r} also has "
                        f"policy-file keys (models.{model.name}); set them in one place"
                    )
                models[model.name] = model.policy
    try:
        return PolicySettings(defaults=policy.defaults, projects=projects, models=models)
    except ValueError as error:
        raise ConfigError(f"catalog policy: {error}") from None


def catalog_loop_models(
    catalog: CatalogSettings, policy: PolicySettings, only: str | None = None
) -> tuple[LoopModel, ...]:
    """One ``LoopModel`` per catalog model (or just ``only``), each with its effective policy.

    Raises:
        ConfigError: ``only`` is not a model of the catalog, or the catalog has none.
    """
    merged = catalog_policy(catalog, policy)
    entries = [
        LoopModel(
            name=model.name,
            registered_model=model.registered_model,
            alias=model.alias,
            project=project.name,
            thresholds=model.thresholds,
            policy=merged.resolve(project.name, model.name),
            label_column=model.label_column,
            pipeline_arguments=dict(model.pipeline_arguments),
        )
        for project in catalog.projects
        for model in project.models
    ]
    names = [entry.name for entry in entries]
    if only is not None:
        entries = [entry for entry in entries if entry.name == only]
        if not entries:
            raise ConfigError(
                f"MODEL {only!r} is not a model of the catalog (its models: {', '.join(names) or 'none'}); "
                f"name one of them, or leave MODEL out to watch them all"
            )
    if not entries:
        raise ConfigError("the catalog declares no models; add models under a project (docs/catalog.md)")
    return tuple(entries)
