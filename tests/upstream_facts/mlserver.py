"""MLServer (the inference server our runtime extends): what the event-time parameter relies on.

Read in the installed wheel at the pinned version (the package's own source, no code copied).
"""

from __future__ import annotations

from upstream_facts import Fact

DATAPLANE = "SeldonIO/MLServer mlserver/types/dataplane.py@1.7.1"

FACTS = [
    Fact(
        key="mlserver.parameters.extra",
        statement=(
            "The V2 Parameters model of a request keeps keys it does not declare (pydantic extra='allow'), "
            "so a request-level parameter such as mlops_event_time reaches the runtime in "
            "payload.parameters.model_extra; the declared keys are content_type and headers"
        ),
        source=DATAPLANE,
        value={"extra": "allow", "declared": ["content_type", "headers"]},
    ),
]
