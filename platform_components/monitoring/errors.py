"""Errors raised by the monitoring package; each maps to one HTTP status in the monitor service."""

from __future__ import annotations

from platform_components.errors import PlatformError


class MonitoringError(PlatformError):
    """Root of monitoring errors."""


class InvalidInput(MonitoringError):
    """Input (a label, a frame, a profile) is malformed; the message names field, value and fix."""

    status_code = 422


class UnknownRequest(MonitoringError):
    """A label refers to a request id that has not been ingested from the prediction log."""

    status_code = 404


class LabelConflict(MonitoringError):
    """A label differs from the one already stored for the same (request id, row)."""

    status_code = 409


class ProfileMismatch(MonitoringError):
    """The window's columns do not match the reference profile."""

    status_code = 422
