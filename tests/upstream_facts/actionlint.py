"""Upstream facts about actionlint (tools/actionlint), as the scaffold's workflow tests read its output."""

from __future__ import annotations

from upstream_facts import Fact

FACTS = [
    Fact(
        key="actionlint.message.runs_on_missing",
        statement='A job without runs-on is reported as `"runs-on" section is missing in job "<id>"`',
        source="rhysd/actionlint parse.go@v1.7.12",
        value='"runs-on" section is missing',
    ),
    Fact(
        key="actionlint.message.undefined_variable",
        statement='An unknown context in an expression is reported as `undefined variable "<name>"`',
        source="rhysd/actionlint expr_sema.go@v1.7.12",
        value='undefined variable "variables"',
    ),
]
