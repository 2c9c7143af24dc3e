"""Offline schema validation of rendered Kubernetes objects: every error reported, unknown fields rejected.

Built-in kinds are checked against kubernetes-validate's bundled *strict* OpenAPI schemas (unknown fields are
errors) for one Kubernetes minor version, iterated with jsonschema so that every error is reported, not only
the first one as the ``kubernetes-validate`` CLI does. Custom resources (Seldon Core 2 ``Model`` and
``Server``, prometheus-operator ``ServiceMonitor``, ``PodMonitor``, ``PrometheusRule``) are checked against
our own schemas in ``platform_components/schemas/``. kubernetes-validate skips custom resources with exit
code 0; here an unknown custom kind is a Problem, never a silent pass.

Integers are strict: ``1.0`` is not an integer (Pulumi mocks turn every number into a float; the renderer must
convert integral floats back before writing, and this catches the places it missed).
"""

from __future__ import annotations

import difflib
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from platform_components.errors import ValidationFailed
from platform_components.policies._core import ContainerRef, as_dict, as_list, containers, pod_template
from platform_components.versions import KUBERNETES_MINOR

__all__ = ["CUSTOM_SCHEMAS", "Problem", "available_kubernetes_versions", "validate_objects"]

logger = logging.getLogger(__name__)

DEFAULT_KUBERNETES_VERSION = KUBERNETES_MINOR
_DEFINITIONS_URI = "https://kubernetes.io/api/_definitions.json"

#: (group, version, kind) -> our schema file for that custom resource.
CUSTOM_SCHEMAS: dict[tuple[str, str, str], str] = {
    ("mlops.seldon.io", "v1alpha1", "Model"): "seldon-model-v1alpha1.json",
    ("mlops.seldon.io", "v1alpha1", "Server"): "seldon-server-v1alpha1.json",
    ("monitoring.coreos.com", "v1", "ServiceMonitor"): "monitoring-servicemonitor-v1.json",
    ("monitoring.coreos.com", "v1", "PodMonitor"): "monitoring-podmonitor-v1.json",
    ("monitoring.coreos.com", "v1", "PrometheusRule"): "monitoring-prometheusrule-v1.json",
}
#: Kubernetes quantity grammar (as in controller-gen CRDs): 500m, 1.5, 512Mi, 1Gi, 1e3.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_QUANTITY_DEF = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_DURATION_PATTERN = (
    "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
#: Patterns users meet in our schemas -> what a valid value looks like (jsonschema would print the regex).
_PATTERN_FORMS = {
    QUANTITY_PATTERN: "a Kubernetes quantity such as 500m, 2, 512Mi or 1Gi",
    _DURATION_PATTERN: "a Prometheus duration such as 30s, 5m or 1h30m",
}
#: Groups served by the API server itself: validated with the bundled schemas.
_BUILTIN_GROUPS = frozenset({"", "apps", "batch", "autoscaling", "policy"})


@dataclass(frozen=True)
class Problem:
    """One schema error in one object.

    Attributes:
        object_ref: ``Kind/namespace/name`` (same format as policy violations).
        path: Path of the offending field, e.g. ``spec.template.spec.containers[0].imagePullPolicy``.
        message: What is wrong and the fix.
    """

    object_ref: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.object_ref} {self.path}: {self.message}"


def _strict_integer(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


_TYPE_CHECKER = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer)
_Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_TYPE_CHECKER)


def _schema_root() -> Any:
    return resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")


@lru_cache(maxsize=1)
def available_kubernetes_versions() -> tuple[str, ...]:
    """Kubernetes minor versions with bundled strict schemas, e.g. ``('1.25', ..., '1.37')``."""
    found = []
    for entry in _schema_root().iterdir():
        match = re.fullmatch(r"v(\d+)\.(\d+)\.\d+-local-strict", entry.name)
        if match:
            found.append((int(match.group(1)), int(match.group(2))))
    return tuple(f"{major}.{minor}" for major, minor in sorted(found))


def _normalise_version(kubernetes_version: str) -> str:
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", str(kubernetes_version).strip())
    available = available_kubernetes_versions()
    if match is None or f"{match.group(1)}.{match.group(2)}" not in available:
        raise ValidationFailed(
            f"kubernetes_version {kubernetes_version!r} has no bundled schemas; use one of "
            f"{', '.join(available)} (kubernetes-validate ships these)"
        )
    return f"{match.group(1)}.{match.group(2)}"


def _schema_directory(version: str) -> Any:
    return next(
        entry
        for entry in _schema_root().iterdir()
        if re.fullmatch(rf"v{re.escape(version)}\.\d+-local-strict", entry.name)
    )


@lru_cache(maxsize=4)
def _registry(version: str) -> Registry:
    """The bundled definitions of one version plus our custom-resource schemas, resolvable by $id."""
    definitions = json.loads(_schema_directory(version).joinpath("_definitions.json").read_text())
    # The bundled Quantity accepts any string, but the API server rejects "1GB" or "one": give it the
    # quantity grammar the CRDs use (k8s.io/apimachinery/pkg/api/resource), so a bad size fails offline.
    definitions["$defs"][_QUANTITY_DEF] = {
        "oneOf": [{"type": ["string", "null"], "pattern": QUANTITY_PATTERN}, {"type": ["number", "null"]}]
    }
    registry = Registry().with_resource(_DEFINITIONS_URI, Resource.from_contents(definitions, DRAFT202012))
    for filename in CUSTOM_SCHEMAS.values():
        schema = _custom_schema(filename)
        registry = registry.with_resource(schema["$id"], Resource.from_contents(schema, DRAFT202012))
    return registry.crawl()


@cache
def _custom_schema(filename: str) -> dict[str, Any]:
    return json.loads(resources.files("platform_components.schemas").joinpath(filename).read_text())


def _builtin_filename(group: str, version: str, kind: str) -> str:
    # kubernetes-validate's naming: <kind>-<first label of group>-<version>.json, e.g.
    # networkpolicy-networking-v1.
    prefix = f"{group.split('.', 1)[0]}-" if group else ""
    return f"{kind.lower()}-{prefix}{version}.json"


@lru_cache(maxsize=512)
def _validator(kubernetes_version: str, group: str, version: str, kind: str) -> Any:
    """A cached validator for (Kubernetes version, group, version, kind), or None without a schema."""
    custom = CUSTOM_SCHEMAS.get((group, version, kind))
    if custom is not None:
        schema: dict[str, Any] = _custom_schema(custom)
    else:
        if group not in _BUILTIN_GROUPS and not group.endswith(".k8s.io"):
            return None
        entry = _schema_directory(kubernetes_version).joinpath(_builtin_filename(group, version, kind))
        if not entry.is_file():
            return None
        schema = json.loads(entry.read_text())
        # Each bundled file has an $id under https://kubernetes.io/api/, against which its $refs
        # ("/api/_definitions.json#/$defs/...") resolve to the definitions in the registry; keep that base.
        schema.setdefault("$id", f"https://kubernetes.io/api/{kind.lower()}/{group or 'core'}/{version}")
    return _Validator(schema, registry=_registry(kubernetes_version))


def _format_path(parts: Iterable[Any]) -> str:
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(part)):
            path += f".{part}" if path else str(part)
        else:
            path += f'["{part}"]'
    return path


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_names(schema_type: Any) -> list[str]:
    names = schema_type if isinstance(schema_type, list) else [schema_type]
    return [name for name in names if name != "null"]


def _messages(error: jsonschema.ValidationError) -> list[tuple[list[Any], str]]:
    """(path parts, message) for one jsonschema error, phrased as what is wrong and the fix."""
    path = list(error.absolute_path)
    instance = error.instance
    if error.validator == "additionalProperties" and isinstance(instance, Mapping):
        allowed = set(error.schema.get("properties", {}))
        patterns = list(error.schema.get("patternProperties", {}))
        extras = [
            key for key in instance if key not in allowed and not any(re.search(p, key) for p in patterns)
        ]
        out = []
        for key in sorted(extras):
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else "; remove it"
            out.append((path + [key], f"unknown field {key!r}{hint}"))
        return out or [(path, error.message)]
    if error.validator == "required":
        missing = [
            name for name in error.validator_value if isinstance(instance, Mapping) and name not in instance
        ]
        return [(path + [name], f"required field {name!r} is missing; set it") for name in missing] or [
            (path, error.message)
        ]
    if error.validator == "type":
        expected = " or ".join(_type_names(error.validator_value))
        if isinstance(instance, float) and instance.is_integer() and "integer" in expected:
            return [
                (
                    path,
                    f"{instance!r} is a float where an integer is required; write {int(instance)} "
                    "(Pulumi mocks turn numbers into floats: convert integral floats back to int before "
                    "writing)",
                )
            ]
        return [(path, f"{_short(instance)} is a {type(instance).__name__}; expected {expected}")]
    if error.validator == "pattern":
        form = _PATTERN_FORMS.get(error.validator_value, f"a value matching {error.validator_value}")
        return [(path, f"{_short(instance)} is not {form}")]
    if error.validator == "enum":
        return [
            (
                path,
                f"{_short(instance)} is not allowed; use one of {', '.join(map(str, error.validator_value))}",
            )
        ]
    if error.validator == "not" and set(error.validator_value) == {"required"}:
        names = ", ".join(error.validator_value["required"])
        return [(path, f"{names} cannot all be set together; keep only one")]
    alternatives = error.validator_value if error.validator == "oneOf" else None
    if isinstance(alternatives, list) and all(set(sub) == {"required"} for sub in alternatives):
        names = [name for sub in alternatives for name in sub["required"]]
        present = [name for name in names if isinstance(instance, Mapping) and name in instance]
        return [(path, f"set exactly one of {', '.join(names)}; found {', '.join(present) or 'none'}")]
    if error.validator in ("oneOf", "anyOf") and error.context:
        types = sorted({name for sub in error.context for name in _type_names(sub.schema.get("type", []))})
        if types and all(sub.validator == "type" for sub in error.context):
            return [
                (path, f"{_short(instance)} is a {type(instance).__name__}; expected {' or '.join(types)}")
            ]
        patterns = [sub for sub in error.context if sub.validator == "pattern"]
        if patterns:
            return _messages(patterns[0])
        best = jsonschema.exceptions.best_match(error.context)
        if best is not None:
            return _messages(best)
    return [(path, error.message if len(error.message) < 200 else error.message[:197] + "...")]


def _ref(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    kind = obj.get("kind") if isinstance(obj.get("kind"), str) else "?"
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else ""
    name = meta.get("name") if isinstance(meta.get("name"), str) else ""
    return f"{kind}/{namespace}/{name}"


# --- what the API server checks beyond the OpenAPI schema (k8s.io/kubernetes pkg/apis/*/validation) ---------

_IANA_SVC_NAME = re.compile(r"^(?=.*[a-z])(?!.*--)[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")
_SELECTOR_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"})
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")


def _selector_matches(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """Whether a LabelSelector (matchLabels + matchExpressions) selects ``labels``."""
    for key, value in as_dict(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for expression in as_list(selector.get("matchExpressions")):
        key, operator = as_dict(expression).get("key"), as_dict(expression).get("operator")
        values = as_list(as_dict(expression).get("values"))
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _api_server_checks(obj: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(path, message) for errors the API server reports that no OpenAPI schema expresses."""
    template = pod_template(obj)
    if template is None:
        return
    kind = obj.get("kind")
    spec = as_dict(obj.get("spec"))
    if kind in _SELECTOR_KINDS and isinstance(spec.get("selector"), Mapping):
        selector = spec["selector"]
        if not (selector.get("matchLabels") or selector.get("matchExpressions")):
            yield "spec.selector", "selector is empty; select the pod template's labels (matchLabels)"
        elif not _selector_matches(selector, as_dict(template.metadata.get("labels"))):
            yield (
                "spec.selector",
                "selector does not match the pod template's labels (the API server rejects it); make "
                "every matchLabels pair a label in the template's metadata.labels",
            )
    restart_policy = template.spec.get("restartPolicy")
    if kind in ("Job", "CronJob") and restart_policy not in ("Never", "OnFailure"):
        yield (
            f"{template.spec_path}.restartPolicy",
            f"a Job's pods need restartPolicy Never or OnFailure, got {restart_policy!r}",
        )
    elif kind in _SELECTOR_KINDS and restart_policy not in (None, "Always"):
        yield f"{template.spec_path}.restartPolicy", f"{kind} pods must use restartPolicy Always"
    volume_names = {as_dict(volume).get("name") for volume in as_list(template.spec.get("volumes"))}
    if kind == "StatefulSet":
        for claim in as_list(spec.get("volumeClaimTemplates")):
            volume_names.add(as_dict(as_dict(claim).get("metadata")).get("name"))
    seen_names: set[Any] = set()
    for ref in containers(template):
        if ref.container.get("name") in seen_names:
            yield f"{ref.path}.name", f"container name {ref.name!r} repeats; names must be unique in a pod"
        seen_names.add(ref.container.get("name"))
        yield from _container_checks(ref, volume_names)


def _container_checks(ref: ContainerRef, volume_names: set[Any]) -> Iterator[tuple[str, str]]:
    port_names = set()
    for index, port in enumerate(as_list(ref.container.get("ports"))):
        name = as_dict(port).get("name")
        if name is None:
            continue
        port_names.add(name)
        if not isinstance(name, str) or not _IANA_SVC_NAME.match(name):
            yield (
                f"{ref.path}.ports[{index}].name",
                f"port name {name!r} must be at most 15 lowercase letters, digits and '-', with a "
                "letter (IANA service name)",
            )
    for index, mount in enumerate(as_list(ref.container.get("volumeMounts"))):
        name = as_dict(mount).get("name")
        if name not in volume_names:
            yield (
                f"{ref.path}.volumeMounts[{index}].name",
                f"container {ref.name!r} mounts volume {name!r}, which the pod does not define in volumes",
            )
    for probe_field in _PROBES:
        for action in ("httpGet", "tcpSocket", "grpc"):
            port = as_dict(as_dict(ref.container.get(probe_field)).get(action)).get("port")
            if isinstance(port, str) and port not in port_names:
                yield (
                    f"{ref.path}.{probe_field}.{action}.port",
                    f"{probe_field} uses port name {port!r}, which container {ref.name!r} does not "
                    "declare in ports (the probe would never succeed)",
                )


def _validate_one(obj: Any, index: int, kubernetes_version: str) -> list[Problem]:
    if not isinstance(obj, Mapping):
        return [Problem(f"?/?/objects[{index}]", "", f"is a {type(obj).__name__}, not an object mapping")]
    ref = _ref(obj)
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not api_version or not isinstance(kind, str) or not kind:
        return [
            Problem(ref, "apiVersion" if not api_version else "kind", "apiVersion and kind must both be set")
        ]
    group, _, version = api_version.rpartition("/")
    problems: list[Problem] = []
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping) or not (meta.get("name") or meta.get("generateName")):
        problems.append(
            Problem(ref, "metadata.name", "metadata.name is missing; every applied object needs a name")
        )
    validator = _validator(kubernetes_version, group, version, kind)
    if validator is None:
        add_schema = "add a JSON schema to platform_components/schemas/ and CUSTOM_SCHEMAS in validation.py"
        if group in _BUILTIN_GROUPS:
            where = (
                f"Kubernetes {kubernetes_version} has no {api_version} {kind} (check the kind and apiVersion)"
            )
        elif group.endswith(".k8s.io"):
            # Built-in groups end in .k8s.io, but so do CRD-based APIs such as gateway.networking.k8s.io.
            where = (
                f"Kubernetes {kubernetes_version} has no built-in {api_version} {kind}; "
                f"if it is a CRD, {add_schema}"
            )
        else:
            where = add_schema
        problems.append(Problem(ref, "kind", f"no schema for kind {kind} ({api_version}); {where}"))
        return problems
    for error in validator.iter_errors(obj):
        for parts, message in _messages(error):
            problems.append(Problem(ref, _format_path(parts), message))
    problems.extend(Problem(ref, path, message) for path, message in _api_server_checks(obj))
    return problems


def validate_objects(
    objects: Sequence[Mapping[str, Any]], *, kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
) -> list[Problem]:
    """Validate rendered objects against strict schemas; report every error of every object.

    Args:
        objects: Plain object dicts as they would be applied.
        kubernetes_version: Kubernetes minor version whose bundled schemas apply, e.g. ``"1.31"``.

    Returns:
        Problems in object order, then in the order jsonschema finds them; empty when all objects are valid.

    Raises:
        ValidationFailed: ``kubernetes_version`` has no bundled schemas (the message lists those available).
    """
    version = _normalise_version(kubernetes_version)
    problems: list[Problem] = []
    for index, obj in enumerate(objects):
        problems.extend(_validate_one(obj, index, version))
    logger.debug(
        "validated %d objects against Kubernetes %s: %d problems", len(objects), version, len(problems)
    )
    return problems
