"""The bundled artifact store (SeaweedFS) and the MLflow ServiceMonitor, against upstream facts and CRDs."""

# Fixtures come from pulumi_fixtures (see its docstring); pytest resolves them by parameter name.
# ruff: noqa: F811

from __future__ import annotations

import configparser
import fnmatch
import re
from typing import Any

import pytest
import yaml
from pulumi_fixtures import config_for, dev_render, render_program  # noqa: F401
from upstream_facts import fact, upstream_path

from platform_components.kubernetes.mlflow import basic_auth_ini
from platform_components.render import kubernetes_objects
from platform_components.settings import ArtifactStoreSettings, _parse_quantity, load_platform_settings


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    # The bucket Job's name carries a hash of what it does (naming.keyed_name): match on its prefix.
    matches = [
        o
        for o in objects
        if o["kind"] == kind
        and (
            o["metadata"]["name"] == name or (kind == "Job" and o["metadata"]["name"].startswith(f"{name}-"))
        )
    ]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


@pytest.fixture(scope="module")
def objects(dev_render: Any) -> list[dict[str, Any]]:
    return kubernetes_objects(dev_render.resources, redact=False)


def allowed_ports(policy: dict[str, Any], direction: str, peer_labels: dict[str, str]) -> set[int]:
    """TCP ports a NetworkPolicy opens to (or from) pods carrying ``peer_labels`` in its namespace."""
    ports: set[int] = set()
    for rule in policy["spec"].get(direction, []):
        peers = rule.get("from" if direction == "ingress" else "to", [])
        for peer in peers:
            selector = peer.get("podSelector")
            if "namespaceSelector" in peer or selector is None:
                continue
            wanted = selector.get("matchLabels", {})
            if all(peer_labels.get(k) == v for k, v in wanted.items()):
                ports |= {p["port"] for p in rule.get("ports", [])}
    return ports


def test_bucket_job_reaches_master_and_filer_over_http_and_grpc(objects: list[dict[str, Any]]) -> None:
    job = find(objects, "Job", "seaweedfs-create-bucket")
    script = " ".join(job["spec"]["template"]["spec"]["containers"][0]["args"])
    addresses = dict(re.findall(r"-(master|filer)=seaweedfs:(\d+)", script))
    assert set(addresses) == set(fact("seaweedfs.shell_talks_grpc_to_master_and_filer"))
    offset = fact("seaweedfs.grpc_port_offset")
    needed = {int(port) for port in addresses.values()} | {int(port) + offset for port in addresses.values()}
    service = find(objects, "Service", "seaweedfs")
    assert needed <= {p["port"] for p in service["spec"]["ports"]}
    server_pod = find(objects, "StatefulSet", "seaweedfs")["spec"]["template"]
    container_ports = {p["containerPort"] for p in server_pod["spec"]["containers"][0]["ports"]}
    assert needed <= container_ports
    job_labels = job["spec"]["template"]["metadata"]["labels"]
    ingress = find(objects, "NetworkPolicy", "seaweedfs-allow")
    assert needed <= allowed_ports(ingress, "ingress", job_labels)
    egress = find(objects, "NetworkPolicy", "seaweedfs-bucket-egress")
    assert needed <= allowed_ports(egress, "egress", server_pod["metadata"]["labels"])


def test_seaweedfs_ports_are_the_servers_defaults_or_set(objects: list[dict[str, Any]]) -> None:
    args = find(objects, "StatefulSet", "seaweedfs")["spec"]["template"]["spec"]["containers"][0]["args"]
    defaults = fact("seaweedfs.server.default_ports")
    for server in ("master", "filer"):
        given = [a for a in args if a.startswith(f"-{server}.port=")]
        assert given == [f"-{server}.port={defaults[server]}"] or not given
    assert "-s3" in args and fact("seaweedfs.server.s3_starts_filer")


def test_volume_max_counts_the_pvc(objects: list[dict[str, Any]]) -> None:
    statefulset = find(objects, "StatefulSet", "seaweedfs")
    args = statefulset["spec"]["template"]["spec"]["containers"][0]["args"]
    values = dict(a.lstrip("-").split("=", 1) for a in args if "=" in a)
    size = statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    pvc_bytes = _parse_quantity(size)
    volume_bytes = int(values["master.volumeSizeLimitMB"]) * fact("seaweedfs.volume_size_limit_unit")
    count = int(values["volume.max"])
    assert count != fact("seaweedfs.server.volume_max_default") or pvc_bytes // volume_bytes == 9
    # Fills the PVC but one volume (kept for the filer's metadata), never more than fits.
    assert count * volume_bytes < pvc_bytes < (count + 2) * volume_bytes


def test_a_pvc_too_small_for_two_volumes_is_refused() -> None:
    with pytest.raises(ValueError, match=r"mlops:mlflow\.artifact_store\.storage_size"):
        ArtifactStoreSettings(storage_size="1Gi", volume_size_limit_mb=1024)
    assert ArtifactStoreSettings(storage_size="1Gi", volume_size_limit_mb=256).max_volumes == 3


def test_service_monitor_scrapes_with_basic_auth_valid_for_the_crd(objects: list[dict[str, Any]]) -> None:
    monitor = find(objects, "ServiceMonitor", "mlflow")
    (endpoint,) = monitor["spec"]["endpoints"]
    crd_path = upstream_path(
        "kube-prometheus-stack-81.6.2",
        "charts",
        "kube-prometheus-stack",
        "charts",
        "crds",
        "crds",
        "crd-servicemonitors.yaml",
    )
    crd = yaml.safe_load(crd_path.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == monitor["apiVersion"].split("/")[1]]
    schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["endpoints"]["items"]
    import jsonschema

    jsonschema.validate(endpoint, schema)
    basic = schema["properties"]["basicAuth"]["properties"]
    assert set(endpoint["basicAuth"]) <= set(basic)
    secret = find(objects, "Secret", endpoint["basicAuth"]["username"]["name"])
    assert secret["metadata"]["namespace"] == monitor["metadata"]["namespace"]  # the operator reads it there
    data = secret.get("stringData") or secret.get("data")
    assert {endpoint["basicAuth"]["username"]["key"], endpoint["basicAuth"]["password"]["key"]} <= set(data)


def mlflow_args(objects: list[dict[str, Any]]) -> list[str]:
    return find(objects, "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"][0]["args"]


def allowed_hosts_of(objects: list[dict[str, Any]]) -> list[str]:
    args = mlflow_args(objects)
    return args[args.index("--allowed-hosts") + 1].split(",")


def test_allowed_hosts_accept_a_pod_ip_scrape_and_refuse_others(objects: list[dict[str, Any]]) -> None:
    from mlflow.server.security_utils import is_allowed_host_header

    hosts = allowed_hosts_of(objects)
    assert fact("mlflow.allowed_hosts.matching") == "fnmatch"
    for accepted in ("10.244.1.17:5000", "172.20.0.5:5000", "192.168.3.4:5000", "mlflow.mlflow.svc:5000"):
        assert is_allowed_host_header(hosts, accepted), accepted
    for refused in ("10.244.1.17:8080", "evil.example.com:5000", "8.8.8.8:5000", "*"):
        assert not is_allowed_host_header(hosts, refused), refused
    assert "*" not in hosts and not any(fnmatch.fnmatch("evil.example.com:5000", h) for h in hosts)


def test_by_default_mlflow_refuses_writes_from_other_sites_pages(objects: list[dict[str, Any]]) -> None:
    from mlflow.server.security_utils import should_block_cors_request

    assert fact("mlflow.cors.default") == "localhost-only"
    assert "--cors-allowed-origins" not in mlflow_args(objects)  # so MLflow's own default holds
    assert should_block_cors_request("https://evil.example.com", "POST", None)
    assert not should_block_cors_request("http://localhost:3000", "POST", None)


def test_cors_origins_reach_mlflow_and_open_only_those_origins(render_program: Any) -> None:
    from mlflow.server.security_utils import should_block_cors_request

    origin = "https://mlflow.example.com"
    result = render_program(
        config_for(mlflow={"cors_allowed_origins": [origin, "https://ui.example.com:8443"]})
    )
    args = mlflow_args(kubernetes_objects(result.resources, redact=False))
    allowed = args[args.index("--cors-allowed-origins") + 1].split(",")
    assert allowed == [origin, "https://ui.example.com:8443"]
    assert not should_block_cors_request(origin, "DELETE", allowed)
    assert should_block_cors_request("https://evil.example.com", "DELETE", allowed)


@pytest.mark.parametrize(
    "origin", ["*", "https://*.example.com", "https://mlflow.example.com/", "mlflow.example.com"]
)
def test_a_cors_origin_that_is_not_one_origin_is_refused_naming_the_setting(origin: str) -> None:
    from platform_components.errors import ConfigError

    with pytest.raises((ConfigError, ValueError), match=r"cors_allowed_origins entry .* must be one origin"):
        load_platform_settings(config_for(mlflow={"cors_allowed_origins": [origin]}))


def test_a_bare_wildcard_pod_pattern_is_refused() -> None:
    from platform_components.errors import ConfigError

    with pytest.raises((ConfigError, ValueError), match="pod_address_patterns"):
        load_platform_settings(config_for(mlflow={"pod_address_patterns": ["*"]}))


@pytest.mark.parametrize(
    "database_uri", ["postgresql+psycopg2://u:p%25ss%40x@db:5432/mlflow", "sqlite:///a%b"]
)
def test_basic_auth_ini_reads_back_with_mlflows_parser(database_uri: str) -> None:
    assert fact("mlflow.auth.ini_parser") == "BasicInterpolation"
    text = basic_auth_ini(
        default_permission="NO_PERMISSIONS",
        database_uri=database_uri,
        admin_username="admin",
        admin_password="a%b%%c",
    )
    parser = configparser.ConfigParser()  # what mlflow/server/auth/config.py uses
    parser.read_string(text)
    assert parser["mlflow"]["database_uri"] == database_uri
    assert parser["mlflow"]["admin_password"] == "a%b%%c"


def test_external_database_url_with_percent_reaches_mlflow_intact(render_program: Any) -> None:
    url = "postgresql+psycopg2://u:p%25w%40rd@db.example.com:5432/mlflow"
    monitor_url = "postgresql://monitor:pw@db.example.com:5432/monitor"
    config = config_for(
        mlflow={"database": {"mode": "external"}}, mlflow_database_url=url, monitor_database_url=monitor_url
    )
    keys = ("mlops:secret_seed", "mlops:mlflow_database_url", "mlops:monitor_database_url")
    result = render_program(config, keys)
    secret = find(kubernetes_objects(result.resources, redact=False), "Secret", "mlflow-server")
    data = secret.get("stringData") or secret["data"]
    parser = configparser.ConfigParser()
    parser.read_string(data["basic_auth.ini"])
    assert parser["mlflow"]["database_uri"] == url
