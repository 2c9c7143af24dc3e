"""Network exposure: Service types, Namespace PSS labels, default-deny NetworkPolicies, metadata egress.

Sources: CIS Kubernetes Benchmark 1.9 section 5.3.2, checkov CKV2_K8S_6, Seldon Core 2's LoadBalancer default
(``k8s/yaml/components.yaml``); most MLflow/KFP CVEs are SSRF, hence the cloud metadata endpoint rule
(``shared/research/security.md`` K8S-01, K8S-04, K8S-08).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from platform_components.policies._core import (
    Context,
    Hit,
    Rule,
    as_dict,
    as_list,
    join,
    kind_of,
    labels,
    metadata,
    name_of,
    namespace_of,
    object_rule,
    pod_template,
    set_rule,
)

Finding = tuple[str, str]

PSS_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}
PSS_VERSION_LABEL = "pod-security.kubernetes.io/enforce-version"
#: Cloud instance metadata endpoints (AWS/GCP/Azure IPv4, AWS IPv6): SSRF steals credentials there.
METADATA_ADDRESSES = (ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"))


@object_rule("SERVICE-EXPOSURE", "no LoadBalancer Service unless allowed; never NodePort")
def service_exposure(obj: Mapping[str, Any], context: Context) -> Iterator[Finding]:
    if kind_of(obj) != "Service":
        return
    service_type = as_dict(obj.get("spec")).get("type", "ClusterIP")
    if service_type == "NodePort":
        yield (
            "spec.type",
            "Service type NodePort opens a port on every node; use ClusterIP behind the platform's gateway",
        )
    elif service_type == "LoadBalancer" and not context.allow_load_balancer:
        yield (
            "spec.type",
            "Service type LoadBalancer exposes it outside the cluster; use ClusterIP behind the "
            "gateway, or allow load balancers explicitly (allow_load_balancer=True) for the one gateway",
        )


@object_rule("NAMESPACE-PSS-LABELS", "every Namespace enforces, warns and audits Pod Security 'restricted'")
def namespace_labels(obj: Mapping[str, Any], context: Context) -> Iterator[Finding]:
    if kind_of(obj) != "Namespace":
        return
    current = labels(metadata(obj))
    for key, expected in PSS_LABELS.items():
        if current.get(key) != expected:
            yield (
                join(join("metadata", "labels"), key),
                f"label {key} is {current.get(key)!r}; set it to {expected!r}",
            )
    version = current.get(PSS_VERSION_LABEL)
    if not isinstance(version, str) or not (version == "latest" or version.startswith("v1.")):
        yield (
            join(join("metadata", "labels"), PSS_VERSION_LABEL),
            f"label {PSS_VERSION_LABEL} is {version!r}; pin the policy version, e.g. 'v1.31'",
        )


def _is_default_deny(policy: Mapping[str, Any]) -> bool:
    spec = as_dict(policy.get("spec"))
    selector = spec.get("podSelector")
    selects_all = isinstance(selector, Mapping) and not any(
        selector.get(k) for k in ("matchLabels", "matchExpressions")
    )
    types = set(as_list(spec.get("policyTypes")))
    return (
        selects_all and {"Ingress", "Egress"} <= types and not spec.get("ingress") and not spec.get("egress")
    )


def _is_seldon_server(obj: Mapping[str, Any]) -> bool:
    # The Seldon operator turns a Server into a StatefulSet in the Server's namespace: pods we render no
    # template for, but which the namespace's policies must still fence in.
    return kind_of(obj) == "Server" and str(obj.get("apiVersion", "")).startswith("mlops.seldon.io/")


@set_rule(
    "NETWORKPOLICY-DEFAULT-DENY", "every namespace with workloads has a default-deny ingress+egress policy"
)
def default_deny(context: Context) -> Iterator[Hit]:
    workload_namespaces: dict[str, Mapping[str, Any]] = {}
    for obj in context.objects:
        if pod_template(obj) is not None or _is_seldon_server(obj):
            workload_namespaces.setdefault(namespace_of(obj) or "default", obj)
    denied = {
        namespace_of(obj) or "default"
        for obj in context.objects
        if kind_of(obj) == "NetworkPolicy" and _is_default_deny(obj)
    }
    namespaces = {name_of(obj): obj for obj in context.objects if kind_of(obj) == "Namespace"}
    for namespace in sorted(set(workload_namespaces) - denied):
        # Report it on the Namespace when it is among the objects (its annotations hold any exception),
        # otherwise on the first workload found in that namespace.
        anchor = namespaces.get(namespace, workload_namespaces[namespace])
        yield Hit(
            anchor,
            "metadata.namespace" if anchor is not namespaces.get(namespace) else "metadata.name",
            f"namespace {namespace!r} runs workloads but has no default-deny NetworkPolicy; add one with "
            "podSelector: {} and policyTypes: [Ingress, Egress] and no rules, then allow the needed "
            "flows explicitly",
        )


def _peer_allows_metadata(peer: Mapping[str, Any]) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    block = as_dict(peer.get("ipBlock"))
    if not block:
        return None  # pod/namespace selectors select pods, never the node's metadata endpoint
    try:
        network = ipaddress.ip_network(str(block.get("cidr")), strict=False)
    except ValueError:
        return None  # an invalid CIDR is a schema problem, reported by validation
    excepted = []
    for cidr in as_list(block.get("except")):
        try:
            excepted.append(ipaddress.ip_network(str(cidr), strict=False))
        except ValueError:
            continue
    for address in METADATA_ADDRESSES:
        inside = address.version == network.version and address in network
        if inside and not any(address.version == e.version and address in e for e in excepted):
            return address
    return None


@object_rule(
    "NETWORKPOLICY-METADATA-EGRESS", "no egress rule allows the cloud metadata endpoint 169.254.169.254"
)
def metadata_egress(obj: Mapping[str, Any], context: Context) -> Iterator[Finding]:
    if kind_of(obj) != "NetworkPolicy":
        return
    for index, rule in enumerate(as_list(as_dict(obj.get("spec")).get("egress"))):
        rule = as_dict(rule)
        rule_path = join(join("spec", "egress"), index)
        peers = as_list(rule.get("to"))
        if not peers:
            yield (
                join(rule_path, "to"),
                "egress rule has no 'to', so it allows every destination including the cloud metadata "
                "endpoint 169.254.169.254; list destinations (namespace/pod selectors), or use ipBlock "
                "cidr 0.0.0.0/0 with except [169.254.169.254/32]",
            )
            continue
        for peer_index, peer in enumerate(peers):
            address = _peer_allows_metadata(as_dict(peer))
            if address is not None:
                suffix = 32 if address.version == 4 else 128
                yield (
                    join(join(join(rule_path, "to"), peer_index), "ipBlock"),
                    f"ipBlock {as_dict(as_dict(peer).get('ipBlock')).get('cidr')!r} includes the "
                    f"cloud metadata endpoint {address}; add {address}/{suffix} to its except list",
                )


RULES: tuple[Rule, ...] = (service_exposure, namespace_labels, default_deny, metadata_egress)
