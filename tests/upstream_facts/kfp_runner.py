"""Upstream facts about the account Kubeflow Pipelines 2.17.0 runs pipeline steps as (``pipeline-runner``).

Read in kubeflow/pipelines manifests/kustomize/base/pipeline/ at 2.17.0 (../shared/upstream has the files;
tests/kubernetes/test_project.py compares them with these facts). platform_components/kubernetes/project.py
gives each catalog project its own ``<project>-pipeline-runner`` bound to the same Role.
"""

from __future__ import annotations

from upstream_facts import Fact

BASE = "kubeflow/pipelines manifests/kustomize/base/pipeline"

FACTS = [
    Fact(
        key="kfp.pipeline_runner.binding",
        statement="KFP binds its run account with the RoleBinding pipeline-runner-binding: roleRef the Role "
        "pipeline-runner (apiGroup rbac.authorization.k8s.io), one subject, the ServiceAccount "
        "pipeline-runner; no namespaces in the files (the kustomization puts all three in kubeflow)",
        source=f"{BASE}/pipeline-runner-rolebinding.yaml@2.17.0",
        value={
            "name": "pipeline-runner-binding",
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pipeline-runner"},
            "subjects": [{"kind": "ServiceAccount", "name": "pipeline-runner"}],
        },
    ),
    Fact(
        key="kfp.pipeline_runner.secret_rule",
        statement="The Role pipeline-runner lets its holder get any Secret of the namespace and do anything "
        "with its pods (pods/exec included): whoever runs as it in kubeflow can read every Secret there, "
        "so projects sharing the namespace are not isolated from each other",
        source=f"{BASE}/pipeline-runner-role.yaml@2.17.0",
        value={"secrets": ["get"], "pods/exec": ["*"]},
    ),
    Fact(
        key="kfp.pipeline_runner.account_automount",
        statement="The ServiceAccount pipeline-runner sets no automountServiceAccountToken (the token is "
        "mounted): the run's pods call the API server (the Role grants workflowtaskresults create/patch)",
        source=f"{BASE}/pipeline-runner-sa.yaml@2.17.0",
        value=None,
    ),
]
