"""The platform's exceptions: one root, a few kinds, messages that say what, which value and the fix."""

from __future__ import annotations


class PlatformError(Exception):
    """Root of every error the platform raises on purpose."""


class ConfigError(PlatformError):
    """Settings or stack configuration is invalid; raised before anything is created."""


class LocalTargetError(PlatformError):
    """The local target could not start, stop or reach one of its processes."""


class ServingError(PlatformError):
    """A model could not be deployed or served."""


class ValidationFailed(PlatformError):
    """Rendered objects broke a schema or a policy."""
