"""Typed, validated settings: the one module that knows every config key and environment variable.

Two parts:
- ``LocalSettings``: the local target (``mlops up --local``), read from ``MLOPS_*`` environment variables.
- the platform description read from Pulumi stack config (added by the Kubernetes target).

Nothing here runs at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from platform_components.errors import ConfigError

ENV_PREFIX = "MLOPS_"


def format_validation_error(error: ValidationError, *, prefix: str, source: str) -> str:
    """One message per problem: the key (with its prefix), the value received and the expected form."""
    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"])
        value = problem.get("input")
        shown = "<missing>" if problem["type"] == "missing" else repr(value)
        lines.append(f"{prefix}{key}: {problem['msg']} (got {shown}); fix it in {source}")
    return "\n".join(lines)


class LocalSettings(BaseModel):
    """The local target: processes on one machine, state under ``state_dir``.

    Every field can be set with an environment variable ``MLOPS_<FIELD>`` (upper case), e.g.
    ``MLOPS_MLFLOW_PORT=5001``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    state_dir: Path = Field(Path(".mlops"), description="Folder for the database, artifacts, logs, PIDs.")
    host: str = Field("127.0.0.1", description="Interface every local process binds; loopback by default.")
    mlflow_port: int = Field(5000, ge=1, le=65535, description="MLflow tracking server port.")
    serving_http_port: int = Field(8080, ge=1, le=65535, description="MLServer REST (V2) port.")
    serving_grpc_port: int = Field(8081, ge=1, le=65535, description="MLServer gRPC port.")
    serving_metrics_port: int = Field(8082, ge=1, le=65535, description="MLServer Prometheus metrics port.")
    monitor_port: int = Field(8090, ge=1, le=65535, description="Monitor service: feedback and /metrics.")
    startup_timeout_seconds: float = Field(120.0, gt=0, description="How long `up` waits for health.")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> LocalSettings:
        """Read ``MLOPS_*`` variables, then apply explicit overrides (command-line flags win).

        Raises:
            ConfigError: naming the variable, the value and the expected form.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            variable = f"{ENV_PREFIX}{name.upper()}"
            if variable in environ:
                values[name] = environ[variable]
        values.update({key: value for key, value in overrides.items() if value is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            lines = []
            for problem in error.errors():
                field = str(problem["loc"][0]) if problem["loc"] else "?"
                lines.append(
                    f"{ENV_PREFIX}{field.upper()} (or the matching flag): {problem['msg']} "
                    f"(got {problem.get('input')!r})"
                )
            raise ConfigError("\n".join(lines)) from None

    @property
    def tracking_uri(self) -> str:
        return f"http://{self.host}:{self.mlflow_port}"

    @property
    def inference_url(self) -> str:
        return f"http://{self.host}:{self.serving_http_port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{self.host}:{self.monitor_port}"
