"""Workload hygiene beyond Pod Security: resources, probes, read-only root FS, pinned images, SA tokens.

Sources: NSA/CISA Kubernetes Hardening Guide v1.2 (read-only root filesystem, resources), checkov
CKV_K8S_8-14, 22, 38, 43, kube-linter ``latest-tag`` (``shared/research/security.md``, K8S-02/03/05/07).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from typing import Any

from platform_components.policies._core import (
    Context,
    PodTemplate,
    Rule,
    as_dict,
    containers,
    join,
    namespace_of,
    pod_rule,
)

Finding = tuple[str, str]

# Ephemeral containers may not set resources or probes (the API rejects them), so they are exempt here.
_INIT_AND_REGULAR = ("initContainers", "containers")
_RESOURCE_NAMES = ("cpu", "memory")
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


@pod_rule("RESOURCES-REQUESTS-LIMITS", "every init and regular container requests and limits cpu and memory")
def requests_and_limits(template: PodTemplate, context: Context) -> Iterator[Finding]:
    for ref in containers(template, _INIT_AND_REGULAR):
        resources = as_dict(ref.container.get("resources"))
        for section in ("requests", "limits"):
            values = as_dict(resources.get(section))
            for resource in _RESOURCE_NAMES:
                if values.get(resource) in (None, ""):
                    yield (
                        join(join(join(ref.path, "resources"), section), resource),
                        f"container {ref.name!r} has no {resource} {section[:-1]}; set "
                        f"resources.{section}.{resource} (e.g. {'250m' if resource == 'cpu' else '256Mi'})",
                    )


def _probe_rule(field: str, rule_id: str) -> Rule:
    def check(template: PodTemplate, context: Context) -> Iterator[Finding]:
        if not template.long_running:
            return
        for ref in containers(template, ("containers",)):
            if not isinstance(ref.container.get(field), Mapping):
                yield (
                    join(ref.path, field),
                    f"container {ref.name!r} of a long-running workload has no {field}; add one "
                    "(httpGet on a health endpoint, or tcpSocket on the serving port)",
                )

    check.__name__ = field
    return pod_rule(rule_id, f"every regular container of a long-running workload has a {field}")(check)


liveness_probe = _probe_rule("livenessProbe", "PROBES-LIVENESS")
readiness_probe = _probe_rule("readinessProbe", "PROBES-READINESS")


@pod_rule("READ-ONLY-ROOT-FILESYSTEM", "every container sets readOnlyRootFilesystem: true")
def read_only_root_filesystem(template: PodTemplate, context: Context) -> Iterator[Finding]:
    for ref in containers(template):
        if ref.security_context.get("readOnlyRootFilesystem") is not True:
            yield (
                join(join(ref.path, "securityContext"), "readOnlyRootFilesystem"),
                f"container {ref.name!r} can write its root filesystem; set "
                "securityContext.readOnlyRootFilesystem: true and mount an emptyDir where it must write",
            )


def image_problem(image: Any) -> str | None:
    """Why ``image`` is not pinned, or None when it names a tag other than ``latest`` or a digest."""
    if not isinstance(image, str) or not image.strip():
        return "has no image"
    if _DIGEST.search(image):
        return None
    # The tag is after the last ':' that follows the last '/' (a registry port has a '/' after it).
    last_segment = image.rsplit("/", 1)[-1]
    if ":" not in last_segment:
        return f"uses image {image!r} without a tag (it means latest)"
    tag = last_segment.rsplit(":", 1)[1]
    if tag == "latest" or not tag:
        return f"uses image {image!r} with the mutable tag latest"
    return None


@pod_rule("IMAGE-PINNED", "every image has a tag other than latest, or a digest")
def image_pinned(template: PodTemplate, context: Context) -> Iterator[Finding]:
    for ref in containers(template):
        problem = image_problem(ref.container.get("image"))
        if problem:
            yield (
                join(ref.path, "image"),
                f"container {ref.name!r} {problem}; pin a version tag from versions.py, best with its digest "
                "(name:tag@sha256:...)",
            )


def _service_account_automount(context: Context, namespace: str, account: str) -> Any:
    """automountServiceAccountToken of the named ServiceAccount among the objects, None if absent or unset."""
    account_obj = context.by_identity.get(("ServiceAccount", namespace, account))
    return None if account_obj is None else account_obj.get("automountServiceAccountToken")


@pod_rule("SERVICE-ACCOUNT-TOKEN", "pods do not mount a service account token unless they say why")
def _service_account_token(template: PodTemplate, context: Context) -> Iterator[Finding]:
    value = template.spec.get("automountServiceAccountToken")
    if value is False:
        return
    path = join(template.spec_path, "automountServiceAccountToken")
    if value is None:
        # The pod inherits its ServiceAccount's setting; accept it when that account, among the same objects,
        # turns the token off.
        account = template.spec.get("serviceAccountName") or "default"
        if _service_account_automount(context, namespace_of(template.obj), account) is False:
            return
    yield (
        path,
        f"pod mounts a service account token (automountServiceAccountToken={value!r}); set it to "
        "false, or if the pod calls the Kubernetes API annotate it with mlops.platform/policy-exception: "
        "SERVICE-ACCOUNT-TOKEN and a mlops.platform/policy-exception-reason",
    )


# Cross-object: a pod that leaves the field unset inherits it from its ServiceAccount.
service_account_token = dataclasses.replace(_service_account_token, cross_object=True)

RULES: tuple[Rule, ...] = (
    requests_and_limits,
    liveness_probe,
    readiness_probe,
    read_only_root_filesystem,
    image_pinned,
    service_account_token,
)
