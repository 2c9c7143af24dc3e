"""Upstream facts about the GitHub Actions a scaffolded project's workflow uses (pinned by commit)."""

from __future__ import annotations

from upstream_facts import Fact

FACTS = [
    Fact(
        key="actions.checkout.pin",
        statement="actions/checkout's tag v7.0.1 is commit 3d3c42e5; it takes repository, ref, path and "
        "persist-credentials (default true: the token stays in the clone's git config unless set false)",
        source="actions/checkout action.yml@v7.0.1",
        value={
            "tag": "v7.0.1",
            "commit": "3d3c42e5aac5ba805825da76410c181273ba90b1",
            "inputs": ["repository", "ref", "path", "persist-credentials"],
        },
    ),
    Fact(
        key="actions.setup_python.pin",
        statement="actions/setup-python's tag v7.0.0 is commit 5fda3b95; it takes python-version",
        source="actions/setup-python action.yml@v7.0.0",
        value={
            "tag": "v7.0.0",
            "commit": "5fda3b95a4ea91299a34e894583c3862153e4b97",
            "inputs": ["python-version"],
        },
    ),
    Fact(
        key="pulumi.actions.pin",
        statement="pulumi/actions' tag v7.0.0 is commit 8e5e406f; without `command` it installs the CLI "
        "(at `pulumi-version`) and does nothing else",
        source="pulumi/actions README.md@v7.0.0",
        value={
            "tag": "v7.0.0",
            "commit": "8e5e406f4007fca908480587cb9893c07090f58d",
            "inputs": ["pulumi-version"],
        },
    ),
]
