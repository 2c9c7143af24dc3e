"""Event time: when a prediction was made or a label became known, as a client states it (Unix seconds).

The serving process (``parameters.mlops_event_time``) and the monitor (the feedback body's ``event_time``)
accept the same values with the same rule, here; each answers a bad one with its own 422.
"""

from __future__ import annotations

import math
import time
from typing import Any

MAX_AHEAD_SECONDS = 300.0
"""How far ahead of the receiving process's clock an event time may be (clock skew; no future events)."""


def check_event_time(value: Any, *, field: str, clock: str, now: float | None = None) -> float:
    """``value`` as event-time seconds.

    Args:
        value: what the client sent.
        field: the field's name in the request, for the message.
        clock: whose clock is the default, for the message (``the server's``).
        now: that clock (default: ``time.time()``).

    Raises:
        ValueError: not a finite number (a boolean or a string is not), or more than ``MAX_AHEAD_SECONDS``
            ahead of ``now``; the message names the field and the fix.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(
            f"{field}: {value!r} is not a finite number of Unix seconds; send e.g. 1735689600.5 or leave it "
            f"out ({clock} clock is used)"
        )
    now = time.time() if now is None else now
    if value > now + MAX_AHEAD_SECONDS:
        raise ValueError(
            f"{field}: {value!r} is {value - now:.0f} s ahead of {clock} clock (at most "
            f"{MAX_AHEAD_SECONDS:.0f} s allowed); send Unix seconds, not milliseconds, of a time that has "
            "happened"
        )
    return float(value)
