"""Upstream facts about how the Pulumi CLI runs a Python policy pack (pulumi-policy, CLI, language hosts).

Read in the sources at the pinned versions: pulumi-policy v1.21.0 (the newest release PyPI serves), the CLI's
pkg/v3 and sdk/v3 modules at v3.260.0 (tools/pulumi), the Python language host of sdk/v3@v3.79.0
(tools/pulumi-language-python), the current host at v3.259.0 for comparison (its own module from v3.80.0 on,
which the Go proxy refuses), and pulumi-kubernetes at its v4.25.0 commit (tools/pulumi-kubernetes).
"""

from __future__ import annotations

from upstream_facts import Fact

FACTS = [
    # pulumi-policy itself.
    Fact(
        key="pulumi_policy.newest_release",
        statement="pulumi-policy 1.21.0 is the newest release: its last tag and changelog entry, and the "
        "newest version PyPI lists (pip index versions, 2026-12-02)",
        source="pulumi/pulumi-policy CHANGELOG.md@v1.21.0",
        value="1.21.0",
    ),
    Fact(
        key="pulumi_policy.protobuf_requirement",
        statement="pulumi-policy 1.21.0 requires protobuf~=5.29.5 (so below 5.30, and below 6: kfp 2.17 "
        "needs protobuf>=6.31, hence the pack's own virtualenv)",
        source="pulumi/pulumi-policy sdk/python/lib/setup.py@v1.21.0",
        value="~=5.29.5",
    ),
    Fact(
        key="pulumi_policy.pulumi_requirement",
        statement="pulumi-policy 1.21.0 requires the pulumi SDK >=3.204.0,<4.0.0 and grpcio~=1.71",
        source="pulumi/pulumi-policy sdk/python/lib/setup.py@v1.21.0",
        value=">=3.204.0,<4.0.0",
    ),
    Fact(
        key="pulumi_policy.protobuf6_unreleased",
        statement="protobuf 6 support (protobuf>=5.29.5,<7.0.0) is on pulumi-policy's main branch after "
        "v1.21.0 (#454) and in no release",
        source="pulumi/pulumi-policy sdk/python/lib/setup.py@805bcbcd3a6d826eab5574bd8976301161008acf",
        value=">=5.29.5,<7.0.0",
    ),
    Fact(
        key="pulumi_policy.property_proxies",
        statement="A policy's props are read-only proxies: dicts become a collections.abc.Mapping and lists "
        "a collections.abc.Sequence that is not a list; reading an unknown value raises UnknownValueError",
        source="pulumi/pulumi-policy sdk/python/lib/pulumi_policy/proxy.py@v1.21.0",
        value=("Mapping", "Sequence"),
    ),
    Fact(
        key="pulumi_policy.unknown_is_advisory",
        statement="An UnknownValueError from a policy becomes an advisory diagnostic \"can't run policy ... "
        'during preview" for that policy, resource or stack, not a violation',
        source="pulumi/pulumi-policy sdk/python/lib/pulumi_policy/policy.py@v1.21.0",
        value="can't run policy",
    ),
    Fact(
        key="pulumi_policy.serves_on_stdout_port",
        statement="PolicyPack(...) serves the Analyzer gRPC service on 127.0.0.1 with a kernel-chosen port, "
        "prints the port on stdout and blocks; it does not read its command line",
        source="pulumi/pulumi-policy sdk/python/lib/pulumi_policy/policy.py@v1.21.0",
        value="127.0.0.1:0",
    ),
    # How the CLI starts a pack.
    Fact(
        key="pulumi.cli.policy_pack_folder",
        statement="For a --policy-pack folder, the CLI reads PulumiPolicy.yaml and, when a language plugin "
        "for its runtime is found, starts the pack through that host's RunPlugin; only without one does it "
        "fall back to a plugin named pulumi-analyzer-policy-<runtime>",
        source="pulumi/pulumi pkg/resource/plugin/analyzer_plugin.go@v3.260.0",
        value="pulumi-analyzer-policy-python",
    ),
    Fact(
        key="pulumi.cli.policy_pack_executable",
        statement="A --policy-pack path that is an executable file is started directly, like a provider "
        "binary, with the engine address as its one argument, in the program's working directory; a "
        "PulumiPolicy.yaml beside it is read for the pack's description and version",
        source="pulumi/pulumi pkg/resource/plugin/analyzer_plugin.go@v3.260.0",
        value=1,
    ),
    Fact(
        key="pulumi.cli.run_plugin_program_info",
        statement="CLI 3.260.0 sends RunPlugin the plugin folder only as ProgramInfo (info); the deprecated "
        "program field is left empty",
        source="pulumi/pulumi sdk/go/common/resource/plugin/langruntime_plugin.go@v3.260.0",
        value="info",
    ),
    Fact(
        key="pulumi.cli.language_host_args",
        statement="CLI 3.260.0 starts a language host with the engine address as its only argument: no "
        "-virtualenv or -root flags (runtime options travel in ProgramInfo)",
        source="pulumi/pulumi sdk/go/common/resource/plugin/langruntime_plugin.go@v3.260.0",
        value=1,
    ),
    Fact(
        key="pulumi.engine.program_pwd",
        statement="With main: infra/ in Pulumi.yaml, the plugin context's working directory is infra/ (the "
        "main folder), which is also the directory plugins are started in",
        source="pulumi/pulumi pkg/engine/project.go@v3.260.0",
        value="infra",
    ),
    Fact(
        key="pulumi.host79.run_plugin",
        statement="The v3.79.0 Python host's RunPlugin runs <python> <req.program> <args> in req.pwd, with "
        "the -virtualenv flag's venv, else PULUMI_PYTHON_CMD or python3 on PATH; under CLI 3.260.0 program "
        "is empty, so it runs `python ''`, which executes __main__.py of the program's folder",
        source="pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go@v3.79.0",
        value="",
    ),
    Fact(
        key="pulumi.host.run_policy_pack",
        statement="A current Python host runs a policy pack as <venv python> -u -m pulumi.policy <args> "
        "<pack folder> from the pack's folder, with the venv of the pack's runtime options",
        source="pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go@v3.259.0",
        value=("-u", "-m", "pulumi.policy"),
    ),
    Fact(
        key="pulumi.sdk.policy_module",
        statement="python -m pulumi.policy takes the engine address and the pack folder and runs the "
        "folder's __main__.py with runpy (also in the pulumi 3.260.0 wheel)",
        source="pulumi/pulumi sdk/python/lib/pulumi/policy/__main__.py@v3.259.0",
        value="pulumi.policy",
    ),
    Fact(
        key="pulumi.host.install_uses_pack_folder",
        statement="A current host installs a pack's requirements.txt with pip run in the pack's folder, so "
        "relative paths in it resolve from there",
        source="pulumi/pulumi sdk/python/toolchain/pip.go@v3.259.0",
        value="requirements.txt",
    ),
    # The provider without a cluster.
    Fact(
        key="pulumi_kubernetes.unreachable.preview_create",
        statement="With the cluster unreachable the provider marks it so instead of failing; Create refuses "
        "only outside preview, so plain resources preview client-side",
        source="pulumi/pulumi-kubernetes provider/pkg/provider/provider.go@v4.25.0",
        value="configured Kubernetes cluster is unreachable",
    ),
    Fact(
        key="pulumi_kubernetes.unreachable.construct",
        statement="Construct (yaml/v2 ConfigFile and ConfigGroup, helm.sh/v4 Chart, kustomize/v2 Directory) "
        "refuses an unreachable cluster even in preview, outside yaml render mode",
        source="pulumi/pulumi-kubernetes provider/pkg/provider/provider_construct.go@v4.25.0",
        value="kubernetes:kustomize/v2:Directory",
    ),
]
