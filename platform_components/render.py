"""Offline render: run the Pulumi program under mocks and write every Kubernetes object it creates.

``mlops render --stack dev --out DIR`` reads ``infra/stacks/Pulumi.dev.yaml``, runs the same program as
``infra/__main__.py`` (``platform_components.kubernetes.program``) under Pulumi mocks, and writes:

- ``objects/<namespace>/<kind>-<name>.yaml``: one file per object, sorted, byte-for-byte deterministic
  (numbers back to ints, Pulumi secrets unwrapped and then redacted);
- ``releases.yaml``: every Helm release and remote kustomize ref with its pinned version and values;
- ``images.txt``: every container image (ours, plus the upstream charts' and manifests' from versions.py).

It then validates the objects (``validation.validate_objects``: kubernetes-validate's strict schemas for
built-in kinds, our schemas for custom resources) and checks the policies (``policies.check_objects``), and
exits non-zero listing every problem. The mocks raise on any invoke they do not handle, so an empty graph
cannot pass.
"""

from __future__ import annotations

import gc
import hashlib
import importlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import yaml

from platform_components import versions
from platform_components.errors import ConfigError, ValidationFailed

logger = logging.getLogger(__name__)

REDACTED = "<redacted>"
PROJECT = "mlops"
CONFIG_NAMESPACE = "mlops"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
KUSTOMIZE_DIRECTORY = "kubernetes:kustomize/v2:Directory"
# Provider-side components (no children under mocks) and providers: recorded, never written as objects.
NOT_OBJECTS = (
    "pulumi:providers:",
    "mlops:platform:",
    HELM_RELEASE,
    KUSTOMIZE_DIRECTORY,
    "pulumi:pulumi:Stack",
)


# ---- stack config ----


def stack_file(stack: str, root: Path) -> Path:
    return root / "infra" / "stacks" / f"Pulumi.{stack}.yaml"


def placeholder_secret(key: str) -> str:
    """The render's stand-in for an encrypted value (it cannot decrypt): valid, stable, not a secret."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    if key.endswith("database_url"):
        return f"postgresql+psycopg2://mlflow:render-{digest}@database.invalid:5432/mlflow"
    return f"render-placeholder-{digest}"


def read_stack_config(stack: str, root: Path) -> tuple[dict[str, Any], list[str]]:
    """``mlops:*`` config of a stack file, with ``secure:`` values replaced by placeholders.

    Returns:
        (config as ``{"mlops:key": JSON text or string}``, the keys that were secrets).

    Raises:
        ConfigError: the stack file is missing or not a mapping.
    """
    path = stack_file(stack, root)
    if not path.is_file():
        known = sorted(
            p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in path.parent.glob("Pulumi.*.yaml")
        )
        raise ConfigError(
            f"--stack {stack!r}: no stack file {path}; known stacks: {', '.join(known) or 'none'}"
        )
    document = yaml.safe_load(path.read_text()) or {}
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError(
            f"{path}: 'config' must be a mapping of mlops:<key> to values, got {type(config).__name__}"
        )
    values: dict[str, Any] = {}
    secret_keys: list[str] = []
    for key, value in config.items():
        full_key = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[full_key] = placeholder_secret(full_key)
            secret_keys.append(full_key)
        elif isinstance(value, str):
            values[full_key] = value
        else:
            values[full_key] = json.dumps(value)  # Pulumi hands structured config to programs as JSON text
    return values, secret_keys


# ---- running the program under mocks
# -------------------------------------------------------------------------


@dataclass
class Registered:
    """One resource the program registered: its type token, name, URN and inputs (as the engine saw them)."""

    type: str
    name: str
    urn: str
    inputs: dict[str, Any]
    dependencies: tuple[str, ...] = ()
    provider: str = ""
    """The provider reference the SDK sent (``<provider urn>::<id>``); empty when none was."""
    aliases: tuple[str, ...] = ()
    """The URNs the SDK sent as this resource's aliases (state of an earlier layout it takes over)."""

    @property
    def parent_type(self) -> str | None:
        qualified = self.urn.split("::")[2]
        return qualified.split("$")[-2] if "$" in qualified else None


@dataclass
class RenderResult:
    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _make_mocks() -> Any:
    import pulumi

    class RenderMocks(pulumi.runtime.Mocks):
        """Outputs = inputs (plus an id); any invoke raises, so an unexpected provider call fails loudly."""

        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            return f"{args.name}-id", dict(args.inputs)

        def call(
            self, args: pulumi.runtime.MockCallArgs
        ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
            raise NotImplementedError(f"the offline render does not handle the invoke {args.token!r}")

    return RenderMocks()


#: Whether ``run_program`` froze a render's objects (``gc.freeze``) that no collection has seen since.
_frozen_by_render = False


def collect_render_garbage() -> None:
    """Collect the garbage of earlier renders of this process, which ``run_program`` froze.

    ``run_program`` calls it first; a caller that renders again may call it sooner (bench/bench_render.py
    does, so that a timed render does not pay for the warm-up's).
    """
    global _frozen_by_render  # noqa: PLW0603
    if _frozen_by_render:
        gc.unfreeze()
        gc.collect()
        _frozen_by_render = False


def run_program(
    config: Mapping[str, Any],
    secret_keys: Iterable[str] = (),
    *,
    program: Callable[[], Any] | None = None,
    stack: str = "render",
) -> RenderResult:
    """Run a Pulumi program under mocks with ``config`` and return what it registered.

    Garbage collection is paused while the program runs: with thousands of live resources, the SDK's
    allocation churn made CPython's cyclic collector the dominant, super-linear cost (bench/bench_render.py).
    At the end the render's objects are frozen (``gc.freeze``) rather than collected: every one of them sat
    in the youngest generation, and the first collection after the pause scanned them all (0.75 s of a
    4.8 s render of 1,000 models). A one-shot ``mlops render`` exits without that scan; a process that
    renders again (the tests) collects the previous render's garbage when the next one starts.
    """
    import pulumi
    from pulumi.runtime import settings as runtime_settings

    if program is None:
        from platform_components.kubernetes import program as platform_program

        program = platform_program
    pulumi.runtime.set_mocks(_make_mocks(), project=PROJECT, stack=stack, preview=False)
    dependencies, providers, aliases = _record_dependencies(runtime_settings.get_monitor())
    pulumi.runtime.set_all_config(dict(config), list(secret_keys))
    exports: dict[str, Any] = {}
    original_export = pulumi.export

    def capture(name: str, value: Any) -> None:
        exports[name] = value

    global _frozen_by_render  # noqa: PLW0603 - one flag for the process's gc state, as gc's own
    collect_render_garbage()
    started = time.perf_counter()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    runtime_resource = importlib.import_module("pulumi.runtime.resource")
    stack_trace = getattr(runtime_resource, "_get_stack_trace", None)
    try:
        pulumi.export = capture  # type: ignore[assignment]
        if stack_trace is not None:
            # Source positions only feed the engine's diagnostics; the mock monitor drops them. Capturing
            # them walked ~15 frames per resource: ~16 % of a 1,000-model render.
            runtime_resource._get_stack_trace = _no_stack_trace  # type: ignore[attr-defined]

        resolved: dict[str, Any] = {}

        @pulumi.runtime.test
        def run() -> Any:
            program()
            # The decorator awaits only the Output returned: resolve every export into `resolved`.
            names = list(exports)
            return pulumi.Output.all(*exports.values()).apply(
                lambda values: resolved.update(zip(names, values, strict=True))
            )

        run()
    finally:
        pulumi.export = original_export  # type: ignore[assignment]
        if stack_trace is not None:
            runtime_resource._get_stack_trace = stack_trace  # type: ignore[attr-defined]
        if gc_was_enabled:
            gc.freeze()
            _frozen_by_render = True
            gc.enable()
    monitor = runtime_settings.get_monitor()
    result = RenderResult(seconds=time.perf_counter() - started)
    result.outputs = resolved
    for urn, registration in monitor.resources.items():
        qualified, name = urn.split("::")[2], urn.split("::")[3]
        result.resources.append(
            Registered(
                qualified.split("$")[-1],
                name,
                urn,
                dict(registration.state or {}),
                dependencies.get(urn, ()),
                providers.get(urn, ""),
                aliases.get(urn, ()),
            )
        )
    result.resources.sort(key=lambda item: item.urn)
    return result


def _no_stack_trace() -> Any:
    from pulumi.runtime.proto import source_pb2

    return source_pb2.StackTrace()


def _record_dependencies(
    monitor: Any,
) -> tuple[dict[str, tuple[str, ...]], dict[str, str], dict[str, tuple[str, ...]]]:
    """Wrap the mock monitor so each resource's explicit dependencies (``depends_on``), provider reference
    and alias URNs are kept by URN (the engine, not the mocks, would act on them)."""
    recorded: dict[str, tuple[str, ...]] = {}
    providers: dict[str, str] = {}
    aliases: dict[str, tuple[str, ...]] = {}
    register = monitor.RegisterResource

    def register_resource(request: Any) -> Any:
        response = register(request)
        recorded[response.urn] = tuple(sorted(request.dependencies))
        providers[response.urn] = request.provider
        if request.aliases:
            aliases[response.urn] = tuple(alias.urn for alias in request.aliases if alias.urn)
        return response

    monitor.RegisterResource = register_resource
    return recorded, providers, aliases


# ---- turning inputs into objects
# -----------------------------------------------------------------------------


def clean(value: Any, *, redact: bool = True) -> Any:
    """Engine inputs -> plain data: integral floats back to ints, Pulumi secrets unwrapped (and redacted)."""
    from pulumi.runtime import rpc

    # The SDK's wire format, read once: the walk visits every value of every object (1,000+ models).
    return _clean(value, redact, rpc._special_sig_key, rpc._special_secret_sig)  # noqa: SLF001


def _clean(value: Any, redact: bool, signature_key: str, secret_signature: str) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if value.get(signature_key) == secret_signature:
            inner = _clean(value.get("value"), redact, signature_key, secret_signature)
            return _redacted(inner) if redact else inner
        return {key: _clean(item, redact, signature_key, secret_signature) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean(item, redact, signature_key, secret_signature) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _redacted(value: Any) -> Any:
    """Keep the shape (Secret keys stay visible), hide every value."""
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return REDACTED


def kubernetes_objects(resources: Iterable[Registered], *, redact: bool = True) -> list[dict[str, Any]]:
    """The Kubernetes objects among the resources, sorted by (apiVersion, kind, namespace, name)."""
    objects = []
    for resource in resources:
        if not resource.type.startswith("kubernetes:") or resource.type.startswith(NOT_OBJECTS):
            continue
        if is_patch(resource):
            continue  # a patch of an object upstream creates, not an object: listed in releases.yaml
        inputs = clean(resource.inputs, redact=redact)
        if "apiVersion" not in inputs or "kind" not in inputs:
            continue
        ordered = {"apiVersion": inputs.pop("apiVersion"), "kind": inputs.pop("kind")}
        ordered["metadata"] = inputs.pop("metadata", {})
        ordered.update(inputs)
        objects.append(ordered)
    objects.sort(key=object_key)
    return objects


def is_patch(resource: Registered) -> bool:
    """A pulumi-kubernetes ``<Kind>Patch`` (server-side apply of some fields of an existing object)."""
    return resource.type.startswith("kubernetes:") and resource.type.endswith("Patch")


def object_key(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    metadata = obj.get("metadata") or {}
    return (
        str(obj.get("apiVersion")),
        str(obj.get("kind")),
        str(metadata.get("namespace") or ""),
        str(metadata.get("name") or ""),
    )


def releases(resources: Iterable[Registered]) -> list[dict[str, Any]]:
    """Helm releases, kustomize refs (remote or local) and patches of upstream's objects."""
    entries = []
    for resource in resources:
        if not (is_patch(resource) or resource.type in (HELM_RELEASE, KUSTOMIZE_DIRECTORY)):
            continue  # cleaning every object's inputs (1,000+ owners) only to drop them cost the render
        inputs = clean(resource.inputs)
        if is_patch(resource):
            metadata = inputs.get("metadata") or {}
            fields = {key: value for key, value in inputs.items() if key not in ("apiVersion", "kind")}
            entries.append(
                {
                    "kind": "patch",
                    "resource": resource.name,
                    "target": f"{resource.type.rpartition(':')[2].removesuffix('Patch')}/"
                    f"{metadata.get('namespace', '')}/{metadata.get('name')}",
                    "fields": fields,
                }
            )
            continue
        if resource.type == HELM_RELEASE:
            entries.append(
                {
                    "kind": "helm",
                    "resource": resource.name,
                    "release": inputs.get("name", resource.name),
                    "chart": inputs.get("chart"),
                    "version": inputs.get("version"),
                    "repository": (inputs.get("repositoryOpts") or {}).get("repo"),
                    "namespace": inputs.get("namespace"),
                    "values": inputs.get("values") or {},
                }
            )
        elif resource.type == KUSTOMIZE_DIRECTORY:
            directory = str(inputs.get("directory"))
            entries.append(
                {
                    "kind": "kustomize",
                    "resource": resource.name,
                    "directory": directory,
                    "version": directory.rpartition("?ref=")[2] if "?ref=" in directory else None,
                }
            )
    return sorted(entries, key=lambda entry: (entry["kind"], entry["resource"]))


def images(objects: Iterable[Mapping[str, Any]], release_entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every image an install pulls: from our pod specs, and the upstream charts'/manifests' known images."""
    from platform_components import versions

    found: set[str] = set()
    for obj in objects:
        _collect_images(obj, found)
    for entry in release_entries:
        if entry.get("kind") == "patch":
            fields = entry.get("fields") or {}
            _collect_images(fields, found)
            # KFP's pipeline-install-config: the image its cache webhook puts in place of a cached step.
            cache_image = (fields.get("data") or {}).get("cacheImage")
            if cache_image:
                found.add(str(cache_image))
    names = {str(entry.get("chart") or "") for entry in release_entries}
    for entry in release_entries:
        for upstream in versions.UPSTREAMS:
            # A remote ref names the repository path; mlops:kfp.manifests_path ends in the target's folder.
            target = upstream.kustomize_target
            directory = str(entry.get("directory")).partition("?")[0].rstrip("/")
            if upstream.kind is versions.Kind.MANIFEST and upstream.path and directory.endswith(target):
                names.add(upstream.name)
    for name in sorted(names):
        found.update(versions.CHART_DEFAULT_IMAGES.get(name, ()))
    return sorted(found)


def _collect_images(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("containers", "initContainers") and isinstance(item, list):
                found.update(str(c["image"]) for c in item if isinstance(c, dict) and "image" in c)
            else:
                _collect_images(item, found)
    elif isinstance(value, list):
        for item in value:
            _collect_images(item, found)


def dump_yaml(data: Any) -> str:
    """Deterministic YAML: sorted keys, block style, the C dumper when available."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(
        data, Dumper=dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=120
    )


def object_path(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace") or "_cluster"
    return f"objects/{namespace}/{str(obj['kind']).lower()}-{metadata.get('name')}.yaml"


def write_render(
    out: Path, objects: list[dict[str, Any]], release_entries: list[dict[str, Any]], image_list: list[str]
) -> list[Path]:
    """Write the render folder (replacing a previous render's objects). Returns the files written."""
    written: list[Path] = []
    objects_dir = out / "objects"
    if objects_dir.exists():
        for old in sorted(objects_dir.rglob("*.yaml")):
            old.unlink()
    seen: set[str] = set()
    for obj in objects:
        relative = object_path(obj)
        if relative in seen:
            raise ValidationFailed(
                f"two objects render to {relative}: (apiVersion, kind, namespace, name) repeats"
            )
        seen.add(relative)
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_yaml(obj))
        written.append(path)
    (out / "releases.yaml").write_text(dump_yaml({"releases": release_entries}))
    (out / "images.txt").write_text("".join(f"{image}\n" for image in image_list))
    written += [out / "releases.yaml", out / "images.txt"]
    return written


# ---- checks ----


def check(objects: list[dict[str, Any]], *, kubernetes_version: str, allow_load_balancer: bool) -> list[str]:
    """Schema problems and policy violations, one line each (empty: clean)."""
    from platform_components.policies import check_objects
    from platform_components.validation import validate_objects

    lines = [
        f"schema {p.object_ref} {p.path}: {p.message}"
        for p in validate_objects(objects, kubernetes_version=kubernetes_version)
    ]
    lines += [
        f"policy {v.rule} {v.object_ref} {v.path}: {v.message}"
        for v in check_objects(objects, allow_load_balancer=allow_load_balancer)
    ]
    return lines


@dataclass
class Render:
    objects: list[dict[str, Any]]
    releases: list[dict[str, Any]]
    images: list[str]
    result: RenderResult
    allow_load_balancer: bool


def render_stack(stack: str, root: Path) -> Render:
    """Read a stack file, run the program under mocks, and collect objects, releases and images."""
    config, secret_keys = read_stack_config(stack, root)
    result = run_program(config, secret_keys, stack=stack)
    objects = kubernetes_objects(result.resources)
    release_entries = releases(result.resources)
    allow_lb = str(config.get(f"{CONFIG_NAMESPACE}:allow_load_balancer", "false")).lower() == "true"
    return Render(objects, release_entries, images(objects, release_entries), result, allow_lb)


@click.command("render")
@click.option("--stack", "stack", required=True, help="Stack name: reads infra/stacks/Pulumi.<stack>.yaml.")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for objects/, releases.yaml and images.txt.",
)
@click.option(
    "--kubernetes-version",
    default=versions.KUBERNETES_MINOR,
    show_default=True,
    help="Schemas to validate against (the platform's target: versions.KUBERNETES_VERSION).",
)
@click.option(
    "--root",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Repository root holding infra/stacks/.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def render_command(stack: str, out: Path, kubernetes_version: str, root: Path, as_json: bool) -> None:
    """Render a stack's Kubernetes objects offline, validate them and check the policies.

    Exits 1 and lists every problem when an object breaks a schema or a policy.
    """
    click.echo(f"rendering stack {stack} under Pulumi mocks ...", err=True)
    rendered = render_stack(stack, root)
    click.echo(
        f"{len(rendered.result.resources)} Pulumi resources, {len(rendered.objects)} Kubernetes objects, "
        f"{len(rendered.releases)} releases/refs, {len(rendered.images)} images in "
        f"{rendered.result.seconds:.2f}s",
        err=True,
    )
    out.mkdir(parents=True, exist_ok=True)
    write_render(out, rendered.objects, rendered.releases, rendered.images)
    click.echo(
        f"wrote {out}; validating against Kubernetes {kubernetes_version} and checking policies ...", err=True
    )
    problems = check(
        rendered.objects,
        kubernetes_version=kubernetes_version,
        allow_load_balancer=rendered.allow_load_balancer,
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "stack": stack,
                    "out": str(out),
                    "resources": len(rendered.result.resources),
                    "objects": len(rendered.objects),
                    "releases": len(rendered.releases),
                    "images": len(rendered.images),
                    "problems": problems,
                    "seconds": round(rendered.result.seconds, 3),
                },
                indent=2,
            )
        )
    for line in problems:
        click.echo(line, err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s): the render is not valid", err=True)
        sys.exit(1)
    click.echo("valid: every object passed its schema and every policy", err=True)
