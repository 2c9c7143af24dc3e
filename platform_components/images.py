"""The images the platform builds (ours) and where every image is pulled from (mirror, pull secrets).

Ours are the MLflow server (MLflow's published image is bare: no database driver, S3 client, metrics
exporter or auth extra), the model monitor, the serving runtime and a project's pipeline base. Each has a
Dockerfile (under ``docker/``; the pipeline base lives with the example it serves) that installs exact pins
from a lock under ``docker/requirements/``. ``mlops images build|push`` builds and pushes them;
``mlops images lock`` regenerates the locks.

Upstream images (PostgreSQL, SeaweedFS, the charts' and KFP's) are pulled from ``mlops:images.mirror`` when
set: the registry host of the reference is replaced by the mirror prefix. Pull secrets go on every pod we
render and into each chart's own values.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from platform_components import __version__, versions
from platform_components.errors import ConfigError, PlatformError
from platform_components.settings import ImagesSettings, PlatformSettings

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
LOCKS = Path("docker/requirements")


@dataclass(frozen=True)
class OurImage:
    """One image built from this repository.

    Attributes:
        name: the image name under the registry prefix (``<registry>/<name>:<tag>``).
        dockerfile: path of the Dockerfile, relative to the repository root.
        context: build context, relative to the repository root.
        lock: the requirements lock the Dockerfile installs.
        tag: the image tag.
        rendered: whether the cluster render runs it (the pipeline base is run by KFP, named in the pipeline).
    """

    name: str
    dockerfile: str
    lock: str
    tag: str
    rendered: bool
    context: str = "."


def _mlflow_tag() -> str:
    # MLflow's version first (what the server is), then ours (what we added): a bump of either is a new tag.
    return f"{versions.get('mlflow').version.lstrip('v')}-{__version__}"


OUR_IMAGES: tuple[OurImage, ...] = (
    OurImage("mlflow", "docker/mlflow.Dockerfile", "docker/requirements/mlflow.txt", _mlflow_tag(), True),
    OurImage("monitor", "docker/monitor.Dockerfile", "docker/requirements/platform.txt", __version__, True),
    OurImage("serving", "docker/serving.Dockerfile", "docker/requirements/platform.txt", __version__, True),
    OurImage(
        "credit-default-pipeline",
        "examples/credit_default/Dockerfile",
        "docker/requirements/platform.txt",
        __version__,
        False,
    ),
)

# Each lock: its inputs and how uv compiles them (`mlops images lock` runs exactly this).
LOCK_INPUTS: dict[str, tuple[str, ...]] = {
    "docker/requirements/mlflow.txt": ("docker/requirements/mlflow.in",),
    "docker/requirements/platform.txt": ("pyproject.toml", "--extra", "ml"),
}
LOCK_TARGET = ("--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28")


def our_image(name: str) -> OurImage:
    """The entry called ``name`` (KeyError names the known ones)."""
    for image in OUR_IMAGES:
        if image.name == name:
            return image
    raise KeyError(f"no image of ours called {name!r}; known: {', '.join(i.name for i in OUR_IMAGES)}")


def reference(name: str, settings: ImagesSettings | None = None) -> str:
    """``<registry>/<name>:<tag>``, with ``@sha256:...`` when ``settings.digests`` pins it."""
    settings = settings or ImagesSettings()
    image = our_image(name)
    ref = f"{settings.registry}/{image.name}:{image.tag}"
    digest = settings.digests.get(name)  # type: ignore[call-overload]
    return f"{ref}@{digest}" if digest else ref


def resolve(settings: PlatformSettings) -> PlatformSettings:
    """Fill every unset image of ours from ``images`` (registry prefix, digests); explicit overrides win."""
    images = settings.images
    mlflow = settings.mlflow
    seldon = settings.seldon
    monitor = settings.monitoring.monitor

    def chosen(override: str | None, name: str) -> str:
        return reference(name, images) if override is None else override

    return settings.model_copy(
        update={
            "mlflow": mlflow.model_copy(update={"image": chosen(mlflow.image, "mlflow")}),
            "seldon": seldon.model_copy(update={"serving_image": chosen(seldon.serving_image, "serving")}),
            "monitoring": settings.monitoring.model_copy(
                update={"monitor": monitor.model_copy(update={"image": chosen(monitor.image, "monitor")})}
            ),
        }
    )


def images_of_ours(settings: PlatformSettings) -> frozenset[str]:
    """The references of our images a resolved ``settings`` runs (overrides included)."""
    return frozenset(
        image
        for image in (settings.mlflow.image, settings.seldon.serving_image, settings.monitoring.monitor.image)
        if image is not None
    )


# ---- upstream images: mirror ----


def split_reference(ref: str) -> tuple[str, str]:
    """``(registry, rest)`` of an image reference, with Docker's implicit ``docker.io`` and ``library/``.

    A first path part counts as a registry when it has a ``.`` or ``:`` or is ``localhost`` (the rule the
    Docker and containerd clients apply).
    """
    first, slash, rest = ref.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = "docker.io", ref
    if registry == "docker.io" and "/" not in path.split("@")[0].split(":")[0]:
        path = f"library/{path}"
    return registry, path


def mirrored(ref: str, mirror: str | None) -> str:
    """The reference pulled through ``mirror``: the registry host replaced, the path kept."""
    if not mirror:
        return ref
    _, path = split_reference(ref)
    return f"{mirror}/{path}"


def is_ours(ref: str, settings: ImagesSettings, ours: frozenset[str] = frozenset()) -> bool:
    """Under our registry prefix, or one of our images given by an explicit override (never mirrored)."""
    return ref in ours or ref.startswith(f"{settings.registry}/")


# Seldon Core 2 setup chart: every image is `<key>.image.{registry,repository,tag}`, joined by the templates
# as registry/repository:tag; `imagePullSecrets` is rendered with toYaml into every pod spec
# (SeldonIO/seldon-core k8s/helm-charts/seldon-core-v2-setup/values.yaml, templates/_components-*.tpl
# @v2.10.2).
#: The setup chart's components, each with `<key>.image` and a pod `securityContext` value of its own.
SELDON_SETUP_COMPONENTS: tuple[str, ...] = (
    "controller",
    "scheduler",
    "envoy",
    "modelgateway",
    "pipelinegateway",
    "dataflow",
    "hodometer",
)
SELDON_SETUP_IMAGE_KEYS: tuple[str, ...] = (
    *SELDON_SETUP_COMPONENTS,
    "serverConfig.rclone",
    "serverConfig.agent",
    "serverConfig.mlserver",
    "serverConfig.triton",
)


def chart_values(chart: str, settings: ImagesSettings) -> dict[str, Any]:
    """The values that move ``chart``'s images to the mirror and give its pods the pull secrets.

    Only the charts that pull images have keys; every other chart gets ``{}``.
    """
    secrets = [{"name": name} for name in settings.pull_secrets]
    values: dict[str, Any] = {}
    if chart == "seldon-core-v2-setup":
        if settings.mirror:
            for key in SELDON_SETUP_IMAGE_KEYS:
                # registry + repository: `docker.io` + `seldonio/x` becomes `<mirror>/seldonio/x`.
                _set(values, f"{key}.image.registry", settings.mirror)
        if secrets:
            values["imagePullSecrets"] = secrets
    elif chart == "kube-prometheus-stack":
        # global.imageRegistry and global.imagePullSecrets (prometheus-community/helm-charts
        # charts/kube-prometheus-stack/values.yaml@81.6.2).
        if settings.mirror:
            _set(values, "global.imageRegistry", settings.mirror)
        if secrets:
            _set(values, "global.imagePullSecrets", secrets)
    return values


def kustomize_images(settings: ImagesSettings) -> list[dict[str, str]]:
    """Kustomize ``images:`` entries that pull every KFP 2.17.0 image (versions.py) through the mirror."""
    if not settings.mirror:
        return []
    entries = []
    for ref in versions.CHART_DEFAULT_IMAGES["kfp-platform-agnostic"]:
        name = ref.rsplit(":", 1)[0]
        target = mirrored(name, settings.mirror)
        # kustomize matches `name` as the manifest spells it, and KFP 2.17.0 spells Docker Hub images
        # short (`mysql:8.4`, `docker.io/alpine:3.23`): one entry per spelling of the same image.
        entries += [{"name": spelling, "newName": target} for spelling in _docker_hub_spellings(name)]
    return entries


def _docker_hub_spellings(name: str) -> list[str]:
    """``name`` and the shorter forms Docker resolves to it (docker.io/library/mysql: mysql, ...)."""
    if not name.startswith("docker.io/"):
        return [name]
    path = name.removeprefix("docker.io/")
    spellings = [name, path]
    if path.startswith("library/"):
        short = path.removeprefix("library/")
        spellings += [short, f"docker.io/{short}"]
    return spellings


def _set(values: dict[str, Any], dotted: str, value: Any) -> None:
    node = values
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def merge_values(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in, key by key (extra wins on leaves); neither is changed."""
    merged = copy.deepcopy(dict(base))
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# ---- every pod we render: pull secrets and the mirror ----

_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
}
_HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


def apply_to_pod_spec(
    pod_spec: Mapping[str, Any], settings: ImagesSettings, ours: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """A pod spec with the pull secrets added and every upstream container image moved to the mirror."""
    spec = dict(pod_spec)
    for key in ("containers", "initContainers"):
        if isinstance(spec.get(key), list):
            spec[key] = [_mirror_container(container, settings, ours) for container in spec[key]]
    if settings.pull_secrets:
        existing = [entry for entry in spec.get("imagePullSecrets") or [] if isinstance(entry, Mapping)]
        names = {entry.get("name") for entry in existing}
        spec["imagePullSecrets"] = existing + [
            {"name": name} for name in settings.pull_secrets if name not in names
        ]
    return spec


def _mirror_container(container: Any, settings: ImagesSettings, ours: frozenset[str]) -> Any:
    if not isinstance(container, Mapping) or not isinstance(container.get("image"), str):
        return container
    image = container["image"]
    if is_ours(image, settings, ours):
        return container
    return {**container, "image": mirrored(image, settings.mirror)}


def transformation(settings: ImagesSettings, ours: frozenset[str] = frozenset()) -> Callable[[Any], Any]:
    """A Pulumi resource transformation for ``MlopsPlatform``: it reaches every child we register.

    Workloads (Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod) get ``apply_to_pod_spec``; Helm releases
    get ``chart_values`` merged into their values. Provider-side components (kustomize) are not reached: KFP's
    images are moved with ``kustomize_images``.
    """
    import pulumi

    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_ in _POD_SPEC_PATHS:
            path = _POD_SPEC_PATHS[args.type_]
            props = dict(args.props)
            props[path[0]] = _at_path(
                props.get(path[0]), path[1:], lambda spec: apply_to_pod_spec(spec, settings, ours)
            )
            return pulumi.ResourceTransformationResult(props, args.opts)
        if args.type_ == _HELM_RELEASE:
            chart = args.props.get("chart")
            if not isinstance(chart, str):
                return None
            extra = chart_values(chart, settings)
            if not extra:
                return None
            props = dict(args.props)
            values = props.get("values") or {}
            props["values"] = pulumi.Output.from_input(values).apply(lambda v: merge_values(v or {}, extra))
            return pulumi.ResourceTransformationResult(props, args.opts)
        return None

    return transform


def _at_path(value: Any, path: Sequence[str], change: Callable[[Mapping[str, Any]], Any]) -> Any:
    """``value`` with ``change`` applied at ``path`` (Outputs on the way are applied through)."""
    import pulumi

    if isinstance(value, pulumi.Output):
        return value.apply(lambda resolved: _at_path(resolved, path, change))
    if not isinstance(value, Mapping):
        return value
    if not path:
        return change(value)
    head, rest = path[0], path[1:]
    if head not in value:
        return value
    return {**value, head: _at_path(value[head], rest, change)}


# ---- build and push ----

BUILDERS: tuple[str, ...] = ("docker", "podman", "buildah")


@dataclass(frozen=True)
class Plan:
    """What ``build``/``push`` does for one image; ``--dry-run --json`` prints a list of these."""

    name: str
    image: str
    dockerfile: str
    context: str
    lock: str
    tag: str
    push: str
    rendered: bool


def plans(registry: str, digests: Mapping[str, str] | None = None) -> list[Plan]:
    """One plan per image of ours, pushed to ``registry``; the references are the ones the render uses."""
    settings = ImagesSettings(registry=registry, digests=dict(digests or {}))
    result = []
    for image in OUR_IMAGES:
        tagged = f"{settings.registry}/{image.name}:{image.tag}"
        result.append(
            Plan(
                name=image.name,
                image=reference(image.name, settings),
                dockerfile=image.dockerfile,
                context=image.context,
                lock=image.lock,
                tag=image.tag,
                push=tagged,
                rendered=image.rendered,
            )
        )
    return result


def find_builder(preferred: str | None = None) -> str:
    """The first container builder on PATH (``docker``, ``podman``, ``buildah``), or ``preferred``.

    Raises:
        PlatformError: when none is installed, saying what to install.
    """
    candidates = (preferred,) if preferred else BUILDERS
    for candidate in candidates:
        if candidate and shutil.which(candidate):
            return candidate
    wanted = preferred or " / ".join(BUILDERS)
    raise PlatformError(
        f"no container builder found on PATH (looked for {wanted}); install Docker, Podman or Buildah, "
        f"or run `mlops images build --dry-run --json` to see what would be built"
    )


def build_command(builder: str, plan: Plan) -> list[str]:
    """The build command line (``buildah bud`` and ``docker|podman build`` take the same flags here)."""
    verb = ["bud"] if builder == "buildah" else ["build"]
    return [builder, *verb, "--file", plan.dockerfile, "--tag", plan.push, plan.context]


def push_command(builder: str, plan: Plan) -> list[str]:
    return [builder, "push", plan.push]


def lock_commands(uv: str = "uv") -> list[list[str]]:
    """The uv commands that regenerate every lock (run from the repository root)."""
    commands = []
    for lock, inputs in LOCK_INPUTS.items():
        commands.append(
            [
                uv,
                "pip",
                "compile",
                *inputs,
                "--output-file",
                lock,
                *LOCK_TARGET,
                "--annotation-style",
                "line",
                "--custom-compile-command",
                "mlops images lock",
                "--quiet",
            ]
        )
    return commands


def _registry_option(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--registry",
        default=ImagesSettings.model_fields["registry"].default,
        show_default=True,
        help="Registry prefix to tag and push to: the same value as mlops:images.registry.",
    )(function)


def _common(function: Callable[..., Any]) -> Callable[..., Any]:
    for option in (
        click.option(
            "--only", "only", multiple=True, help="Only this image (repeatable): mlflow, monitor, ..."
        ),
        click.option(
            "--builder", type=click.Choice(BUILDERS), default=None, help="Default: the first on PATH."
        ),
        click.option("--dry-run", is_flag=True, help="Print what would run; run nothing."),
        click.option("--json", "as_json", is_flag=True, help="With --dry-run: the plans as JSON on stdout."),
    ):
        function = option(function)
    return _registry_option(function)


@click.group("images")
def images_group() -> None:
    """Build and push the platform's own images, and regenerate their requirement locks."""


def _selected(registry: str, only: Sequence[str]) -> list[Plan]:
    try:
        ImagesSettings(registry=registry)
    except ValidationError as error:
        raise ConfigError(f"--registry: {error.errors()[0]['msg']} (got {registry!r})") from None
    selected = plans(registry)
    unknown = sorted(set(only) - {plan.name for plan in selected})
    if unknown:
        raise ConfigError(
            f"--only {', '.join(unknown)}: not an image of ours; "
            f"use one of {', '.join(plan.name for plan in selected)}"
        )
    return [plan for plan in selected if not only or plan.name in only]


def _run(
    verb: str, registry: str, only: Sequence[str], builder: str | None, dry_run: bool, as_json: bool
) -> None:
    selected = _selected(registry, only)
    tool = builder or next((b for b in BUILDERS if shutil.which(b)), None) or "docker"
    if not dry_run:
        tool = find_builder(builder)
    commands = []
    for plan in selected:
        lines = [build_command(tool, plan)] if verb == "build" else []
        if verb == "push":
            lines.append(push_command(tool, plan))
        commands.append((plan, lines))
    if dry_run:
        if as_json:
            click.echo(
                json.dumps(
                    [{**asdict(plan), "commands": lines} for plan, lines in commands],
                    indent=2,
                    sort_keys=True,
                )
            )
        else:
            for _, lines in commands:
                for line in lines:
                    click.echo(" ".join(line))
        return
    for plan, lines in commands:
        for line in lines:
            click.echo(f"$ {' '.join(line)}", err=True)
            completed = subprocess.run(line, cwd=REPO, check=False)
            if completed.returncode != 0:
                raise PlatformError(
                    f"{verb} of {plan.name} failed (exit {completed.returncode}): {' '.join(line)}"
                )


@images_group.command("build")
@_common
def build_command_cli(
    registry: str, only: tuple[str, ...], builder: str | None, dry_run: bool, as_json: bool
) -> None:
    """Build every image of ours, tagged <registry>/<name>:<tag>."""
    _run("build", registry, only, builder, dry_run, as_json)


@images_group.command("push")
@_common
def push_command_cli(
    registry: str, only: tuple[str, ...], builder: str | None, dry_run: bool, as_json: bool
) -> None:
    """Push every image of ours (built first with `mlops images build`) to <registry>."""
    _run("push", registry, only, builder, dry_run, as_json)


@images_group.command("lock")
@click.option("--dry-run", is_flag=True, help="Print the uv commands; run nothing.")
def lock_command(dry_run: bool) -> None:
    """Regenerate docker/requirements/*.txt with uv (exact pins for Python 3.11 on x86_64 Linux)."""
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    for command in lock_commands(uv):
        click.echo(" ".join(command), err=True)
        if not dry_run:
            if not Path(uv).exists() and not shutil.which(uv):
                raise PlatformError("uv is not installed: `pip install 'uv>=0.5'` (the dev extra has it)")
            subprocess.run(command, cwd=REPO, check=True)


def mirror_plan(image_list: Sequence[str], settings: ImagesSettings) -> list[tuple[str, str]]:
    """(source, target) for every upstream image of a render's ``images.txt``; ours are pushed, not copied."""
    if not settings.mirror:
        raise ConfigError("mlops:images.mirror is not set: give --mirror, e.g. registry.internal/mirror")
    return [
        (image, mirrored(image, settings.mirror))
        for image in image_list
        if image and not is_ours(image, settings)
    ]


@images_group.command("mirror-plan")
@click.argument("images_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mirror", required=True, help="Registry prefix of the mirror (mlops:images.mirror).")
@_registry_option
@click.option("--json", "as_json", is_flag=True, help="A JSON list of {source, target}.")
def mirror_plan_command(images_file: Path, mirror: str, registry: str, as_json: bool) -> None:
    """Print `source target` for every upstream image in IMAGES_FILE (`mlops render`'s images.txt).

    Copy each pair into the mirror with your tool (`crane copy`, `skopeo copy`, `oras cp`) before `pulumi up`
    with mlops:images.mirror set to the same prefix.
    """
    try:
        settings = ImagesSettings(registry=registry, mirror=mirror)
    except ValidationError as error:
        raise ConfigError(f"--mirror/--registry: {error.errors()[0]['msg']}") from None
    pairs = mirror_plan([line.strip() for line in images_file.read_text().splitlines()], settings)
    if as_json:
        click.echo(json.dumps([{"source": s, "target": t} for s, t in pairs], indent=2))
    else:
        for source, target in pairs:
            click.echo(f"{source} {target}")
