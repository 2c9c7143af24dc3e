"""Pod Security Standards "restricted" and "baseline", ported from kubernetes' pod-security-admission checks.

Source: kubernetes ``staging/src/k8s.io/pod-security-admission/policy/check_*.go`` (latest policy version);
the exact fields are in ``shared/research/security.md``. Container checks visit init, regular and ephemeral
containers, like PSA's ``visitor.go``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from platform_components.policies._core import (
    Context,
    PodTemplate,
    Rule,
    annotations,
    as_dict,
    as_list,
    containers,
    join,
    pod_rule,
)

Finding = tuple[str, str]

#: check_restrictedVolumes.go: the only volume sources "restricted" allows.
ALLOWED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
#: check_sysctls.go, newest policy version (1.32 added tcp_rmem/tcp_wmem).
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
    }
)
#: check_seLinuxOptions.go: allowed SELinux types ("" means unset).
ALLOWED_SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
ALLOWED_SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
ALLOWED_ADDED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
_APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
_PROBE_FIELDS = ("livenessProbe", "readinessProbe", "startupProbe")
_LIFECYCLE_FIELDS = ("postStart", "preStop")


def _pod_security_context(template: PodTemplate) -> dict[str, Any]:
    return dict(as_dict(template.spec.get("securityContext")))


def _pod_sc_path(template: PodTemplate) -> str:
    return join(template.spec_path, "securityContext")


# --- restricted --------------------------------------------------------------------------------------------


@pod_rule("PSS-RESTRICTED-VOLUME-TYPES", "volumes use only configMap, csi, downwardAPI, emptyDir, ...")
def volume_types(template: PodTemplate, context: Context) -> Iterator[Finding]:
    for index, volume in enumerate(as_list(template.spec.get("volumes"))):
        volume = as_dict(volume)
        for source in sorted(set(volume) - {"name"} - ALLOWED_VOLUME_TYPES):
            yield (
                join(join(join(template.spec_path, "volumes"), index), source),
                f"volume {volume.get('name', '?')!r} uses {source}, which Pod Security 'restricted' forbids; "
                f"use one of {', '.join(sorted(ALLOWED_VOLUME_TYPES))} (e.g. a persistentVolumeClaim "
                "or emptyDir)",
            )


@pod_rule("PSS-RESTRICTED-ALLOW-PRIVILEGE-ESCALATION", "every container sets allowPrivilegeEscalation: false")
def allow_privilege_escalation(template: PodTemplate, context: Context) -> Iterator[Finding]:
    for ref in containers(template):
        value = ref.security_context.get("allowPrivilegeEscalation")
        if value is not False:
            yield (
                join(join(ref.path, "securityContext"), "allowPrivilegeEscalation"),
                f"container {ref.name!r} has allowPrivilegeEscalation={value!r}; set "
                "securityContext.allowPrivilegeEscalation: false (unset fails Pod Security 'restricted')",
            )


@pod_rule("PSS-RESTRICTED-RUN-AS-NON-ROOT", "pod or every container sets runAsNonRoot: true; none sets false")
def run_as_non_root(template: PodTemplate, context: Context) -> Iterator[Finding]:
    pod_value = _pod_security_context(template).get("runAsNonRoot")
    if pod_value is False:
        yield (
            join(_pod_sc_path(template), "runAsNonRoot"),
            "pod sets securityContext.runAsNonRoot: false; set it to true",
        )
    for ref in containers(template):
        value = ref.security_context.get("runAsNonRoot")
        path = join(join(ref.path, "securityContext"), "runAsNonRoot")
        if value is False:
            yield path, f"container {ref.name!r} sets runAsNonRoot: false; set it to true (or remove it)"
        elif value is None and pod_value is not True:
            yield (
                path,
                f"container {ref.name!r} may run as root: set securityContext.runAsNonRoot: true on the "
                "pod (spec.securityContext) or on the container",
            )


@pod_rule("PSS-RESTRICTED-RUN-AS-USER", "no pod or container sets runAsUser: 0")
def run_as_user(template: PodTemplate, context: Context) -> Iterator[Finding]:
    if _pod_security_context(template).get("runAsUser") == 0:
        yield join(_pod_sc_path(template), "runAsUser"), "pod sets runAsUser: 0 (root); use a non-zero UID"
    for ref in containers(template):
        if ref.security_context.get("runAsUser") == 0:
            yield (
                join(join(ref.path, "securityContext"), "runAsUser"),
                f"container {ref.name!r} sets runAsUser: 0 (root); use a non-zero UID such as 65532",
            )


def _seccomp_type(security_context: dict[str, Any] | Any) -> Any:
    return as_dict(as_dict(security_context).get("seccompProfile")).get("type")


@pod_rule(
    "PSS-RESTRICTED-SECCOMP", "seccompProfile.type is RuntimeDefault or Localhost (pod or every container)"
)
def seccomp(template: PodTemplate, context: Context) -> Iterator[Finding]:
    pod_type = _seccomp_type(_pod_security_context(template))
    pod_path = join(join(_pod_sc_path(template), "seccompProfile"), "type")
    if pod_type is not None and pod_type not in ALLOWED_SECCOMP_TYPES:
        yield pod_path, f"pod seccompProfile.type is {pod_type!r}; use RuntimeDefault or Localhost"
    pod_valid = pod_type in ALLOWED_SECCOMP_TYPES
    for ref in containers(template):
        value = _seccomp_type(ref.security_context)
        path = join(join(join(ref.path, "securityContext"), "seccompProfile"), "type")
        if value is None:
            if not pod_valid:
                yield (
                    path,
                    f"container {ref.name!r} has no seccomp profile; set spec.securityContext.seccompProfile."
                    "type: RuntimeDefault on the pod (or on the container)",
                )
        elif value not in ALLOWED_SECCOMP_TYPES:
            yield (
                path,
                f"container {ref.name!r} seccompProfile.type is {value!r}; use RuntimeDefault or Localhost",
            )


@pod_rule("PSS-RESTRICTED-CAPABILITIES", "every container drops ALL and adds at most NET_BIND_SERVICE")
def capabilities(template: PodTemplate, context: Context) -> Iterator[Finding]:
    for ref in containers(template):
        caps = as_dict(ref.security_context.get("capabilities"))
        caps_path = join(join(ref.path, "securityContext"), "capabilities")
        if "ALL" not in as_list(caps.get("drop")):
            yield (
                join(caps_path, "drop"),
                f"container {ref.name!r} does not drop ALL capabilities; set "
                'securityContext.capabilities.drop: ["ALL"]',
            )
        for index, added in enumerate(as_list(caps.get("add"))):
            if added not in ALLOWED_ADDED_CAPABILITIES:
                yield (
                    join(join(caps_path, "add"), index),
                    f"container {ref.name!r} adds capability {added!r}; only NET_BIND_SERVICE may be added",
                )


# --- baseline ----------------------------------------------------------------------------------------------


@pod_rule("PSS-BASELINE-PRIVILEGED", "no container is privileged")
def privileged(template: PodTemplate, context: Context) -> Iterator[Finding]:
    for ref in containers(template):
        if ref.security_context.get("privileged") is True:
            yield (
                join(join(ref.path, "securityContext"), "privileged"),
                f"container {ref.name!r} is privileged; remove securityContext.privileged or set it to false",
            )


@pod_rule("PSS-BASELINE-HOST-NAMESPACES", "hostNetwork, hostPID and hostIPC are off")
def host_namespaces(template: PodTemplate, context: Context) -> Iterator[Finding]:
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if template.spec.get(field) is True:
            yield (
                join(template.spec_path, field),
                f"pod shares the host's namespace ({field}: true); remove it",
            )


@pod_rule("PSS-BASELINE-HOST-PROCESS", "no Windows HostProcess pod or container")
def host_process(template: PodTemplate, context: Context) -> Iterator[Finding]:
    pod_options = as_dict(_pod_security_context(template).get("windowsOptions"))
    if pod_options.get("hostProcess") is True:
        yield (
            join(join(_pod_sc_path(template), "windowsOptions"), "hostProcess"),
            "pod is a Windows HostProcess pod; remove windowsOptions.hostProcess",
        )
    for ref in containers(template):
        if as_dict(ref.security_context.get("windowsOptions")).get("hostProcess") is True:
            yield (
                join(join(join(ref.path, "securityContext"), "windowsOptions"), "hostProcess"),
                f"container {ref.name!r} is a Windows HostProcess container; remove "
                "windowsOptions.hostProcess",
            )


@pod_rule("PSS-BASELINE-HOST-PATH", "no hostPath volume")
def host_path(template: PodTemplate, context: Context) -> Iterator[Finding]:
    for index, volume in enumerate(as_list(template.spec.get("volumes"))):
        volume = as_dict(volume)
        if "hostPath" in volume:
            yield (
                join(join(join(template.spec_path, "volumes"), index), "hostPath"),
                f"volume {volume.get('name', '?')!r} mounts a host path; use a persistentVolumeClaim "
                "or emptyDir",
            )


@pod_rule("PSS-BASELINE-HOST-PORTS", "no container port sets hostPort")
def host_ports(template: PodTemplate, context: Context) -> Iterator[Finding]:
    for ref in containers(template):
        for index, port in enumerate(as_list(ref.container.get("ports"))):
            host_port = as_dict(port).get("hostPort")
            if host_port not in (None, 0):
                yield (
                    join(join(join(ref.path, "ports"), index), "hostPort"),
                    f"container {ref.name!r} binds hostPort {host_port}; remove hostPort and expose the port "
                    "through a ClusterIP Service",
                )


@pod_rule("PSS-BASELINE-SYSCTLS", "only safe sysctls")
def sysctls(template: PodTemplate, context: Context) -> Iterator[Finding]:
    base = join(_pod_sc_path(template), "sysctls")
    for index, sysctl in enumerate(as_list(_pod_security_context(template).get("sysctls"))):
        name = as_dict(sysctl).get("name")
        if name not in SAFE_SYSCTLS:
            yield (
                join(join(base, index), "name"),
                f"sysctl {name!r} is not in the safe set; remove it "
                f"(allowed: {', '.join(sorted(SAFE_SYSCTLS))})",
            )


@pod_rule("PSS-BASELINE-PROC-MOUNT", "procMount is Default or unset")
def proc_mount(template: PodTemplate, context: Context) -> Iterator[Finding]:
    for ref in containers(template):
        value = ref.security_context.get("procMount")
        if value not in (None, "Default"):
            yield (
                join(join(ref.path, "securityContext"), "procMount"),
                f"container {ref.name!r} sets procMount {value!r}; remove it or set Default",
            )


@pod_rule("PSS-BASELINE-SELINUX", "SELinux type is a container type; user and role unset")
def selinux(template: PodTemplate, context: Context) -> Iterator[Finding]:
    contexts = [(_pod_sc_path(template), _pod_security_context(template), "pod")]
    contexts += [
        (join(ref.path, "securityContext"), ref.security_context, f"container {ref.name!r}")
        for ref in containers(template)
    ]
    for path, security_context, who in contexts:
        options = as_dict(security_context.get("seLinuxOptions"))
        options_path = join(path, "seLinuxOptions")
        if options.get("type", "") not in ALLOWED_SELINUX_TYPES:
            yield (
                join(options_path, "type"),
                f"{who} sets SELinux type {options.get('type')!r}; use one of "
                f"{', '.join(sorted(t for t in ALLOWED_SELINUX_TYPES if t))} or leave it unset",
            )
        for field in ("user", "role"):
            if options.get(field):
                yield join(options_path, field), f"{who} sets SELinux {field}; remove seLinuxOptions.{field}"


@pod_rule("PSS-BASELINE-APPARMOR", "AppArmor profile is not unconfined")
def apparmor(template: PodTemplate, context: Context) -> Iterator[Finding]:
    contexts = [(_pod_sc_path(template), _pod_security_context(template), "pod")]
    contexts += [
        (join(ref.path, "securityContext"), ref.security_context, f"container {ref.name!r}")
        for ref in containers(template)
    ]
    for path, security_context, who in contexts:
        profile_type = as_dict(security_context.get("appArmorProfile")).get("type")
        if profile_type is not None and profile_type not in ("RuntimeDefault", "Localhost"):
            yield (
                join(join(path, "appArmorProfile"), "type"),
                f"{who} sets AppArmor profile {profile_type!r}; use RuntimeDefault or Localhost",
            )
    meta_path = (
        "metadata" if template.spec_path == "spec" else template.spec_path[: -len(".spec")] + ".metadata"
    )
    for key, value in annotations(template.metadata).items():
        if key.startswith(_APPARMOR_ANNOTATION_PREFIX) and not (
            value == "runtime/default" or (isinstance(value, str) and value.startswith("localhost/"))
        ):
            yield (
                join(join(meta_path, "annotations"), key),
                f"AppArmor annotation sets {value!r}; use runtime/default or localhost/<profile>",
            )


@pod_rule("PSS-BASELINE-PROBE-HOST", "probes and lifecycle handlers do not target another host")
def probe_host(template: PodTemplate, context: Context) -> Iterator[Finding]:
    for ref in containers(template):
        handlers = [(join(ref.path, field), ref.container.get(field)) for field in _PROBE_FIELDS]
        lifecycle = as_dict(ref.container.get("lifecycle"))
        handlers += [
            (join(join(ref.path, "lifecycle"), field), lifecycle.get(field)) for field in _LIFECYCLE_FIELDS
        ]
        for path, handler in handlers:
            for action in ("httpGet", "tcpSocket"):
                host = as_dict(as_dict(handler).get(action)).get("host")
                if host:
                    yield (
                        join(join(path, action), "host"),
                        f"container {ref.name!r} sends a probe or hook to host {host!r}; remove host "
                        "(the pod IP is used), a foreign host turns the kubelet into a proxy",
                    )


RULES: tuple[Rule, ...] = (
    volume_types,
    allow_privilege_escalation,
    run_as_non_root,
    run_as_user,
    seccomp,
    capabilities,
    privileged,
    host_namespaces,
    host_process,
    host_path,
    host_ports,
    sysctls,
    proc_mount,
    selinux,
    apparmor,
    probe_host,
)
