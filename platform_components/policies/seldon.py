"""Seldon Core 2 ``Server`` overrides: they must not weaken the pods the operator builds.

A ``Server``'s ``spec.podSpec`` and ``spec.imageOverrides`` are merged by the Seldon operator into the
StatefulSet it derives from the ``ServerConfig`` (installed by the Helm chart), so the rendered object holds
only a partial pod: the "must be set" rules of Pod Security cannot judge it, but any value it does set is
applied as is. This rule refuses the explicitly insecure ones (source: SeldonIO/seldon-core
``operator/apis/mlops/v1alpha1/server_types.go``, ``podspec.go``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from platform_components.policies._core import Context, Rule, as_dict, as_list, join, kind_of, object_rule
from platform_components.policies.pod_security import ALLOWED_ADDED_CAPABILITIES, ALLOWED_VOLUME_TYPES
from platform_components.policies.workloads import image_problem

Finding = tuple[str, str]

_FORBIDDEN_TRUE = ("privileged", "allowPrivilegeEscalation")
_REQUIRED_TRUE_IF_SET = ("runAsNonRoot", "readOnlyRootFilesystem")


def _security_context_findings(security_context: Mapping[str, Any], path: str, who: str) -> Iterator[Finding]:
    for field in _FORBIDDEN_TRUE:
        if security_context.get(field) is True:
            yield join(path, field), f"{who} sets {field}: true; remove it or set false"
    for field in _REQUIRED_TRUE_IF_SET:
        if security_context.get(field) is False:
            yield join(path, field), f"{who} sets {field}: false; remove it or set true"
    if security_context.get("runAsUser") == 0:
        yield join(path, "runAsUser"), f"{who} sets runAsUser: 0 (root); use a non-zero UID"
    seccomp = as_dict(security_context.get("seccompProfile")).get("type")
    if seccomp is not None and seccomp not in ("RuntimeDefault", "Localhost"):
        yield (
            join(join(path, "seccompProfile"), "type"),
            f"{who} sets seccomp {seccomp!r}; use RuntimeDefault",
        )
    added = as_list(as_dict(security_context.get("capabilities")).get("add"))
    for index, capability in enumerate(added):
        if capability not in ALLOWED_ADDED_CAPABILITIES:
            yield (
                join(join(join(path, "capabilities"), "add"), index),
                f"{who} adds capability {capability!r}; only NET_BIND_SERVICE may be added",
            )


def _container_findings(container: Mapping[str, Any], path: str) -> Iterator[Finding]:
    who = f"override of container {container.get('name', '?')!r}"
    yield from _security_context_findings(
        as_dict(container.get("securityContext")), join(path, "securityContext"), who
    )
    if "image" in container:
        problem = image_problem(container.get("image"))
        if problem:
            yield join(path, "image"), f"{who} {problem}; pin a version tag"
    for index, port in enumerate(as_list(container.get("ports"))):
        if as_dict(port).get("hostPort") not in (None, 0):
            yield join(join(join(path, "ports"), index), "hostPort"), f"{who} binds a hostPort; remove it"


@object_rule("SELDON-SERVER-OVERRIDES", "a Seldon Server's podSpec and image overrides set no insecure value")
def server_overrides(obj: Mapping[str, Any], context: Context) -> Iterator[Finding]:
    if kind_of(obj) != "Server" or not str(obj.get("apiVersion", "")).startswith("mlops.seldon.io/"):
        return
    spec = as_dict(obj.get("spec"))
    pod = as_dict(spec.get("podSpec"))
    pod_path = "spec.podSpec"
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field) is True:
            yield join(pod_path, field), f"podSpec shares the host's namespace ({field}: true); remove it"
    yield from _security_context_findings(
        as_dict(pod.get("securityContext")), join(pod_path, "securityContext"), "podSpec"
    )
    for index, volume in enumerate(as_list(pod.get("volumes"))):
        for source in sorted(set(as_dict(volume)) - {"name"} - ALLOWED_VOLUME_TYPES):
            yield (
                join(join(join(pod_path, "volumes"), index), source),
                f"podSpec volume uses {source}, which Pod Security 'restricted' forbids; use a "
                "persistentVolumeClaim, emptyDir, configMap or secret",
            )
    for field in ("initContainers", "containers"):
        for index, container in enumerate(as_list(pod.get(field))):
            yield from _container_findings(as_dict(container), join(join(pod_path, field), index))
    overrides = as_dict(spec.get("imageOverrides"))
    for name in sorted(overrides):
        yield from _container_findings(as_dict(overrides[name]), join(join("spec", "imageOverrides"), name))


RULES: tuple[Rule, ...] = (server_overrides,)
