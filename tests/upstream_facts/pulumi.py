"""Pulumi CLI rules the project files rely on (pulumi/pulumi).

The CLI's config merge lives in ``pkg/workspace/config.go``; the Go proxy does not serve ``pkg/v3@v3.272.0``
(403) and the stored snapshot of pulumi/pulumi ends at v3.259.0, so the merge is cited at v3.259.0. The type
rules are in the ``sdk/v3`` module, read at v3.272.0 (the SDK version the project pins).
"""

from upstream_facts import Fact

FACTS = [
    Fact(
        key="pulumi.config.required_without_default",
        statement="A project-namespaced config key declared in Pulumi.yaml with neither `default` nor "
        "`value` that the stack does not set is reported as missing and the operation stops "
        "(one error listing all such keys: Stack '<stack>' is missing configuration value(s) ...)",
        source="pulumi/pulumi pkg/workspace/config.go@v3.259.0",
        value="Stack '{stack}' is missing configuration",
    ),
    Fact(
        key="pulumi.config.secret_default_is_plaintext",
        statement="A declared default is written into the stack config as a plain value; a key "
        "declared `secret: true` whose stack value is not `secure` fails validation (must be encrypted)",
        source="pulumi/pulumi pkg/workspace/config.go@v3.259.0",
        value=True,
    ),
    Fact(
        key="pulumi.config.types",
        statement="A declared config type is one of string, integer, boolean, array (needs `items`) or "
        "object; `object` was added in v3.186.0 (#20129), older CLIs reject the project schema",
        source="pulumi/pulumi sdk/go/common/workspace/project.json@v3.272.0",
        value=("string", "integer", "boolean", "array", "object"),
    ),
    Fact(
        key="pulumi.config.default_matches_type",
        statement="A declared default must match its type (booleans: true/false or "
        "the strings 'true'/'false'; integers: whole numbers or digit strings), "
        "and a key may not have both `default` and `value`",
        source="pulumi/pulumi sdk/go/common/workspace/project.go@v3.272.0",
        value=True,
    ),
]
