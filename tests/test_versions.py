"""The version table: floors, licences, no Bitnami or MinIO, every entry explained."""

from __future__ import annotations

import pytest

from platform_components import versions
from platform_components.versions import FLOORS, UPSTREAMS, Kind, get, version_tuple


def test_every_entry_has_version_licence_and_reason() -> None:
    names = [upstream.name for upstream in UPSTREAMS]
    assert len(names) == len(set(names))
    for upstream in UPSTREAMS:
        assert upstream.version and upstream.repository and upstream.licence, upstream.name
        assert len(upstream.why) >= 40, upstream.name
        if upstream.kind is Kind.CHART:
            assert upstream.chart and upstream.repository.startswith("https://"), upstream.name
        if upstream.kind is Kind.MANIFEST:
            assert upstream.path and upstream.remote_ref.endswith(f"?ref={upstream.version}"), upstream.name


@pytest.mark.parametrize(("name", "floor"), sorted(FLOORS.items()))
def test_pinned_versions_meet_the_cve_floors(name: str, floor: tuple[int, ...]) -> None:
    assert version_tuple(get(name).version) >= floor


def test_floors_cover_mlflow_and_kfp() -> None:
    assert FLOORS["mlflow"] == (3, 17, 0) and FLOORS["kfp-platform-agnostic"] == (2, 17, 0)
    assert get("kfp-platform-agnostic").version == "2.17.0"
    assert get("kfp-platform-agnostic").path == "manifests/kustomize/env/platform-agnostic"
    assert get("mlserver").image == "seldonio/mlserver:1.7.1"
    assert get("mlflow").kind is Kind.PACKAGE and get("mlflow").version.startswith("3.17.")


def test_seldon_core_2_is_pinned_and_declared_bsl() -> None:
    charts = [u for u in UPSTREAMS if u.name.startswith("seldon-core-v2-")]
    assert {u.chart for u in charts} == {
        "seldon-core-v2-crds",
        "seldon-core-v2-setup",
        "seldon-core-v2-runtime",
    }
    assert {u.version for u in charts} == {versions.SELDON_VERSION}
    assert version_tuple(versions.SELDON_VERSION) >= (2, 7, 0)
    assert all(u.licence == "BSL-1.1" and "licence" in u.why for u in charts)


def test_no_bitnami_no_minio_and_no_latest_tags() -> None:
    images = [u.image for u in UPSTREAMS if u.kind is Kind.IMAGE]
    images += [image for group in versions.CHART_DEFAULT_IMAGES.values() for image in group]
    assert not any("bitnami" in image or "minio" in image.lower() for image in images)
    assert not any(image.endswith(":latest") for image in images)
    assert get("postgres").repository == "docker.io/library/postgres"
    assert get("seaweedfs").licence == "Apache-2.0" and "AGPL" in get("seaweedfs").why


def test_unknown_entries_and_wrong_kinds_are_named() -> None:
    with pytest.raises(KeyError, match=r"no upstream called 'minio'; known: .*seaweedfs"):
        get("minio")
    with pytest.raises(ValueError, match=r"kube-prometheus-stack is a chart, not an image"):
        _ = get("kube-prometheus-stack").image


def test_version_tuple_reads_tags() -> None:
    assert version_tuple("v3.17.2") == (3, 17, 2)
    assert version_tuple("16.10-bookworm") == (16, 10)
