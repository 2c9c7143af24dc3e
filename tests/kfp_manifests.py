"""KFP's kustomize targets built offline from ../shared/upstream, once per test session.

KFP 2.17.0 points five kustomizations under ``third-party/argo/`` at remote Argo Workflows bases
(``https://github.com/argoproj/argo-workflows/manifests/<path>?ref=v4.0.5``). Offline, both upstream folders
are copied into one temporary directory, each remote reference is rewritten to the matching
``argo-workflows-v4.0.5/manifests/<path>`` folder by relative path, and ``kubectl kustomize`` builds the
target. The built YAML is cached in a temporary folder for the rest of the session (the build takes ~1 s per
target; several test modules read it).

Not a conftest.py, for the reason given in tests/kubernetes/pulumi_fixtures.py. The engine tier applies the
same localized copy for real (``mlops:kfp.manifests_path``).
"""

from __future__ import annotations

import atexit
import copy
import functools
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from upstream_facts import fact, upstream_path

from platform_components.kubernetes.kfp import localize_argo_refs

KFP_FOLDER = "kubeflow-pipelines-2.17.0"
ARGO_FOLDER = "argo-workflows-v4.0.5"
TARGETS = ("cluster-scoped-resources", "env/platform-agnostic")


@functools.cache
def _build_root() -> Path:
    """Both upstream folders copied into one session temporary directory, Argo refs localized."""
    kfp_source = upstream_path(KFP_FOLDER, "manifests", "kustomize")
    argo_source = upstream_path(ARGO_FOLDER, "manifests")
    if shutil.which("kubectl") is None:
        pytest.skip("needs kubectl (kubectl kustomize) on PATH to build KFP's targets")
    root = Path(tempfile.mkdtemp(prefix="kfp-manifests-"))
    atexit.register(shutil.rmtree, root, True)
    shutil.copytree(kfp_source, root / KFP_FOLDER / "manifests" / "kustomize")
    shutil.copytree(argo_source, root / ARGO_FOLDER / "manifests")
    localize_argo_refs(
        root / KFP_FOLDER / "manifests" / "kustomize",
        root / ARGO_FOLDER / "manifests",
        fact("kfp.argo_version"),
    )
    return root


def kustomize_root() -> Path:
    """The localized copy of KFP's ``manifests/kustomize`` (skips without ../shared/upstream or kubectl)."""
    return _build_root() / KFP_FOLDER / "manifests" / "kustomize"


@functools.cache
def built_yaml(target: str) -> str:
    """``kubectl kustomize`` of one KFP target (``cluster-scoped-resources``, ``env/platform-agnostic``)."""
    directory = kustomize_root() / target
    completed = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, check=False, timeout=120
    )
    if completed.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {target} failed:\n{completed.stderr}")
    cached = _build_root() / "built" / f"{target.replace('/', '_')}.yaml"
    cached.parent.mkdir(exist_ok=True)
    cached.write_text(completed.stdout)
    return completed.stdout


@functools.cache
def _parsed(target: str) -> tuple[dict[str, Any], ...]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are ~1 MB of YAML
    return tuple(document for document in yaml.load_all(built_yaml(target), Loader=loader) if document)


def built_objects(target: str) -> list[dict[str, Any]]:
    """The objects of one built KFP target (a fresh copy each call: tests may modify them)."""
    return copy.deepcopy(list(_parsed(target)))


def all_built_objects() -> list[dict[str, Any]]:
    """Both targets' objects, in apply order."""
    return [obj for target in TARGETS for obj in built_objects(target)]


def identity(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    """(apiVersion group, kind, namespace, name): what makes two objects the same object in the API."""
    metadata = obj.get("metadata") or {}
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    return (group, str(obj.get("kind")), str(metadata.get("namespace") or ""), str(metadata.get("name")))
