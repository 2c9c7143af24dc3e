"""Client for the monitor service's ground-truth endpoint (``POST /v2/feedback``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from platform_components.monitoring.errors import InvalidInput, LabelConflict, MonitoringError, UnknownRequest


class FeedbackClient:
    """Submit labels by request id.

    Args:
        base_url: the monitor service, e.g. ``http://127.0.0.1:8090``.
        timeout: seconds per request.
    """

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def submit(self, request_id: str, labels: Sequence[Any] | Any, event_time: float | None = None) -> int:
        """Send one label per row of the request (a scalar for a one-row request); returns rows accepted.

        Re-sending the same labels is harmless (accepted again, nothing changes).

        Args:
            request_id: the id the inference call returned.
            labels: one label per row, or a scalar for a one-row request.
            event_time: when the labels became known, Unix seconds (default: the service's clock); the
                service refuses a time more than 300 s ahead of its clock.

        Raises:
            UnknownRequest: 404, the id was never logged.
            LabelConflict: 409, a row already has a different label.
            InvalidInput: 4xx, malformed labels (the message names the field).
            MonitoringError: the service failed or could not be reached.
        """
        if isinstance(labels, Sequence) and not isinstance(labels, str | bytes):
            body: dict[str, Any] = {"request_id": request_id, "labels": list(labels)}
        else:
            body = {"request_id": request_id, "label": labels}
        if event_time is not None:
            body["event_time"] = event_time
        try:
            response = self._http.post("/v2/feedback", json=body)
        except httpx.HTTPError as error:
            raise MonitoringError(
                f"monitor service at {self.base_url} unreachable ({error}); is it running?"
            ) from None
        if response.status_code == 200:
            return int(response.json()["accepted"])
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        if response.status_code == 404:
            raise UnknownRequest(str(detail))
        if response.status_code == 409:
            raise LabelConflict(str(detail))
        if 400 <= response.status_code < 500:
            raise InvalidInput(str(detail))
        raise MonitoringError(f"monitor service answered {response.status_code}: {detail}")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FeedbackClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
