"""MLServer 1.7.1 (the installed wheel): where a runtime comes from when model-settings.json omits it."""

from __future__ import annotations

from upstream_facts import Fact

FACTS = [
    Fact(
        key="mlserver.model_settings.implementation_env",
        statement="ModelSettings reads implementation from the file or, when the file leaves it out, from "
        "the environment variable MLSERVER_MODEL_IMPLEMENTATION (prefix MLSERVER_MODEL_)",
        source="SeldonIO/MLServer mlserver/settings.py@1.7.1",
        value="MLSERVER_MODEL_IMPLEMENTATION",
    ),
]
