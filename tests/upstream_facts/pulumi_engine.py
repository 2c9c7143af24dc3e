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
    Fact(
        key="pulumi.cli.bundled_plugins_beside_executable",
        statement="The CLI looks for a bundled language plugin (python) next to its own symlink-resolved "
        "executable, and on PATH only when ambient plugins are not ignored: the engine tier links the "
        "CLI and the host into one folder",
        source="pulumi/pulumi sdk/go/common/workspace/plugins.go@v3.260.0",
        value="GetPluginPath",
    ),
    Fact(
        key="pulumi.python_host.virtualenv_flag",
        statement="The 3.79.0 Python host takes the virtualenv from its -virtualenv command-line flag "
        "(which CLI 3.260.0 no longer passes) and the interpreter from PULUMI_PYTHON_CMD",
        source="pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go@v3.79.0",
        value="PULUMI_PYTHON_CMD",
    ),
    Fact(
        key="pulumi_kubernetes.sdk.directory_resources_type",
        statement="The 4.25.0 Python SDK types kustomize.v2.Directory's resources output as a string while "
        "the provider returns a list, so deserializing it fails (pulumi/pulumi-kubernetes#3389, fixed by "
        "#4295); read in the 4.25.0 wheel",
        source="pulumi/pulumi-kubernetes sdk/python/pulumi_kubernetes/kustomize/v2/Directory.py@v4.25.0",
        value="pulumi.Output[Optional[_builtins.str]]",
    ),
    Fact(
        key="pulumi_kubernetes.provider.discards_warnings",
        statement="The provider sets the client's WarningHandler to rest.NoWarnings, so the API server's "
        "warnings never reach Pulumi's output; the engine tier reads the audit log instead",
        source="pulumi/pulumi-kubernetes provider/pkg/provider/provider.go@v4.25.0",
        value="rest.NoWarnings{}",
    ),
    Fact(
        key="pulumi_kubernetes.provider.field_validation",
        statement="Server-side apply requests use fieldValidation Warn: an unknown field is dropped with a "
        "warning (which the provider discards), not refused",
        source="pulumi/pulumi-kubernetes provider/pkg/await/await.go@v4.25.0",
        value="Warn",
    ),
    Fact(
        key="pulumi_kubernetes.provider.mutable_options",
        statement="The provider options enableConfigMapMutable and enableSecretMutable exist at 4.25.0; off, "
        "a data change replaces the ConfigMap or Secret",
        source="pulumi/pulumi-kubernetes provider/pkg/provider/provider.go@v4.25.0",
        value=["enableConfigMapMutable", "enableSecretMutable"],
    ),
]
