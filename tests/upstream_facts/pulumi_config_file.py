"""Upstream facts about the Pulumi CLI flags a scaffolded project's `make preview` relies on."""

from __future__ import annotations

from upstream_facts import Fact

FACTS = [
    Fact(
        key="pulumi.cli.config_file",
        statement="`pulumi preview --config-file PATH` loads the stack's settings (config and the "
        "passphrase provider's encryptionsalt) from PATH instead of detecting Pulumi.<stack>.yaml, so a "
        "staged copy of the stack file previews without touching the checkout; the CLI built here "
        "(3.260.0) lists the flag in `pulumi preview --help`",
        source="pulumi/pulumi pkg/cmd/pulumi/stack/io.go@v3.259.0",
        value="--config-file",
    ),
    Fact(
        key="pulumi.cli.cwd",
        statement="`-C/--cwd DIR` runs the CLI as if started in DIR (where Pulumi.yaml is)",
        source="pulumi/pulumi pkg/cmd/pulumi/pulumi.go@v3.259.0",
        value="--cwd",
    ),
]
