"""A simulated calendar driven through the platform's public endpoints (``mlops demo``, the scenario bench).

Nothing here reaches inside the platform: predictions go to the V2 inference endpoint with their event time
(the request parameter ``mlops_event_time``), labels to the monitor's feedback endpoint with theirs
(``event_time``), and the loop measures every duration on those times. So a simulated day is a day to the
policy (its window, cool-down, look-back, label delay) with the policy's defaults unchanged, however fast
the simulation runs.

Day ``d`` is ``[origin + d * DAY, origin + (d + 1) * DAY)``; the origin is a whole UTC day far enough in
the past that the whole run ends before the clock (the serving process refuses event times from the
future). Requests of a day are spread evenly over it; the labels of day ``d`` arrive at the start of day
``d + label_delay_days``, before that day's traffic.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from platform_components.serving.client import InferenceFailed

DAY = 86400.0


@dataclass(frozen=True)
class Calendar:
    """Event times of simulated days (see the module docstring)."""

    origin: float

    @classmethod
    def ending_before_now(cls, last_day: int, *, now: float | None = None) -> Calendar:
        """A calendar whose day ``last_day`` ends at least a day before ``now`` (default: the clock)."""
        now = time.time() if now is None else now
        today = math.floor(now / DAY) * DAY
        return cls(origin=today - (last_day + 2) * DAY)

    def start(self, day: int) -> float:
        return self.origin + day * DAY

    def day_of(self, event_time: float) -> int:
        return int(math.floor((event_time - self.origin) / DAY))


@dataclass
class Traffic:
    """Sends a day's rows for inference and delivers their labels late, through the public endpoints.

    Attributes:
        inference: a ``serving.client.InferenceClient`` on the platform's inference URL.
        feedback: a ``monitoring.feedback.FeedbackClient`` on the monitor's URL.
        calendar: the simulated calendar.
        model: served model name.
        batch_rows: rows per inference request.
        label_delay_days: the labels of day ``d`` arrive on day ``d + label_delay_days``.
        refused: requests the serving process answered with a 4xx (counted, not retried).
    """

    inference: Any
    feedback: Any
    calendar: Calendar
    model: str
    batch_rows: int = 10
    label_delay_days: int = 1
    refused: int = 0
    _due: dict[int, list[tuple[str, list[int]]]] = field(default_factory=dict)

    def deliver_labels(self, day: int) -> int:
        """Submit every label due by ``day``, stamped at the start of ``day``; returns labels accepted."""
        accepted = 0
        stamp = self.calendar.start(day) + 1.0
        for due in sorted(d for d in self._due if d <= day):
            for request_id, labels in self._due.pop(due):
                accepted += self.feedback.submit(request_id, labels, event_time=stamp)
        return accepted

    def send_day(
        self,
        day: int,
        features: pd.DataFrame,
        labels: list[int],
        *,
        progress: Callable[[], None] | None = None,
    ) -> int:
        """Send the day's rows in batches spread over the day; queue their labels. Returns requests sent."""
        batches = max(1, math.ceil(len(features) / self.batch_rows))
        start = self.calendar.start(day)
        sent: list[tuple[str, list[int]]] = []
        for index in range(batches):
            rows = slice(index * self.batch_rows, (index + 1) * self.batch_rows)
            stamp = start + (index + 0.5) * DAY / batches
            try:
                result = self.inference.infer(self.model, features.iloc[rows], event_time=stamp)
            except InferenceFailed as error:
                if not 400 <= error.status_code < 500:
                    raise
                # Refused at the door (e.g. a missing value in a required input): a client's error, counted;
                # the platform never saw the rows, so they get no label either.
                self.refused += 1
                continue
            sent.append((result.request_id, labels[rows]))
            if progress is not None:
                progress()
        self._due.setdefault(day + self.label_delay_days, []).extend(sent)
        return len(sent)
