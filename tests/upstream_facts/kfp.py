"""Kubeflow Pipelines 2.17.0 (and the Argo Workflows it bundles): facts the KFP component relies on."""

from __future__ import annotations

from upstream_facts import Fact

_KFP = "kubeflow/pipelines"
_TAG = "2.17.0"

FACTS = [
    Fact(
        key="kfp.argo_version",
        statement="KFP 2.17.0 builds its Argo Workflows from five remote kustomize bases at this ref",
        source=f"{_KFP} manifests/kustomize/third-party/argo/base/kustomization.yaml@{_TAG}",
        value="v4.0.5",
    ),
]
