"""Upstream facts about the Pulumi engine, language host and kubernetes provider the engine tier builds."""

from __future__ import annotations

from upstream_facts import Fact

FACTS = [
    Fact(
        key="pulumi.pkg.replaces_sdk",
        statement="The pkg/v3 module replaces sdk/v3 with the sibling folder, so go install of the CLI fails "
        "and a wrapper module must require pkg/v3 and sdk/v3 at the same release",
        source="pulumi/pulumi pkg/go.mod@v3.260.0",
        value="github.com/pulumi/pulumi/sdk/v3 => ../sdk",
    ),
    Fact(
        key="pulumi.cli.version_variable",
        statement="The CLI reports the version held in the sdk's common/version.Version variable, "
        "set by ldflags",
        source="pulumi/pulumi pkg/cmd/pulumi/pulumi.go@v3.260.0",
        value="github.com/pulumi/pulumi/sdk/v3/go/common/version.Version",
    ),
    Fact(
        key="pulumi.python.exec_shim",
        statement="The Python language host runs the pulumi-language-python-exec script shipped "
        "in the sdk module",
        source="pulumi/pulumi sdk/python/cmd/pulumi-language-python-exec@v3.260.0",
        value="python/cmd/pulumi-language-python-exec",
    ),
    Fact(
        key="pulumi_kubernetes.provider.embedded_schema",
        statement="The provider binary embeds schema-embed.json and terraform-mapping-embed.json, which "
        "generate.go writes from schema.json with the VERSION environment variable",
        source="pulumi/pulumi-kubernetes provider/cmd/pulumi-resource-kubernetes/generate.go@v4.25.0",
        value=["schema-embed.json", "terraform-mapping-embed.json"],
    ),
    Fact(
        key="pulumi_kubernetes.provider.release_commit",
        statement="The provider module has no tags of its own; the release v4.25.0 is the commit "
        "the Go proxy serves as this pseudo-version",
        source="pulumi/pulumi-kubernetes provider/go.mod@v4.25.0",
        value="v4.0.0-20260115033456-f47bc2d6f199",
    ),
    Fact(
        key="prometheus.kube_prometheus_stack.prometheus_tag",
        statement="kube-prometheus-stack 81.6.2 runs Prometheus v3.9.1, whose Go module version is v0.309.1",
        source="prometheus-community/helm-charts charts/kube-prometheus-stack/values.yaml"
        "@kube-prometheus-stack-81.6.2",
        value="v3.9.1",
    ),
]
