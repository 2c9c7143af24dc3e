"""The local target's state folder (default ``.mlops/``): one place that knows its layout.

Layout (shared/interfaces): ``mlflow/mlflow.db``, ``mlflow/artifacts/``, ``logs/<process>.log``,
``processes.json``, ``serving/repo/``, ``serving/admin.token`` (mode 0600), ``predictions/<model>/``,
``monitoring/``, ``reports/``, ``deployments.json``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from platform_components.errors import LocalTargetError


@dataclass(frozen=True)
class StateDir:
    """Paths inside one state folder. Creating the object touches nothing; :meth:`create` does."""

    root: Path

    @classmethod
    def at(cls, root: Path) -> StateDir:
        # Absolute, because processes run with the state dir as their working directory.
        return cls(Path(root).expanduser().resolve())

    @property
    def mlflow_dir(self) -> Path:
        return self.root / "mlflow"

    @property
    def mlflow_db(self) -> Path:
        return self.mlflow_dir / "mlflow.db"

    @property
    def artifacts_dir(self) -> Path:
        return self.mlflow_dir / "artifacts"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def processes_file(self) -> Path:
        return self.root / "processes.json"

    @property
    def settings_file(self) -> Path:
        return self.root / "settings.json"

    @property
    def deployments_file(self) -> Path:
        return self.root / "deployments.json"

    @property
    def serving_repo(self) -> Path:
        return self.root / "serving" / "repo"

    @property
    def serving_admin_token_file(self) -> Path:
        """The token that opens the serving process's model-repository API (its deployer's channel)."""
        return self.root / "serving" / "admin.token"

    @property
    def monitoring_dir(self) -> Path:
        return self.root / "monitoring"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    def predictions_dir(self, model_name: str) -> Path:
        return self.root / "predictions" / model_name

    def create(self) -> None:
        """Create the folders (idempotent).

        Raises:
            LocalTargetError: the state dir cannot be created (names the path and the fix).
        """
        try:
            for folder in (
                self.artifacts_dir,
                self.logs_dir,
                self.serving_repo,
                self.monitoring_dir,
                self.reports_dir,
                self.root / "predictions",
            ):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise LocalTargetError(
                f"cannot create the state dir {self.root}: {error.strerror}; set MLOPS_STATE_DIR or "
                f"--state-dir to a writable folder"
            ) from None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise `up`, `down` and `deploy` on one state dir (two shells, one platform)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LocalTargetError(
                    f"another mlops command is working on {self.root}; wait for it to finish"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def read_deployments(self) -> dict[str, dict]:
        """``deployments.json`` as ``{model name: record}``; absent means nothing deployed."""
        path = self.deployments_file
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8") or "{}")
            return dict(data.get("deployments", {}))
        except ValueError as error:
            raise LocalTargetError(
                f"{path} is not valid JSON ({error}); fix or delete it and deploy again"
            ) from None

    def write_deployments(self, deployments: dict[str, dict]) -> None:
        """Write ``deployments.json`` atomically."""
        path = self.deployments_file
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(
            json.dumps({"deployments": deployments}, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        os.replace(temporary, path)

    def read_settings(self) -> dict | None:
        """The settings the running platform was started with (written by ``up``), if any."""
        path = self.settings_file
        if not path.exists():
            return None
        try:
            return dict(json.loads(path.read_text(encoding="utf-8")))
        except ValueError as error:
            raise LocalTargetError(
                f"{path} is not valid JSON ({error}); delete it and run up again"
            ) from None

    def write_settings(self, values: dict) -> None:
        """Record the settings ``up`` used, so later commands reach the same ports."""
        path = self.settings_file
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(temporary, path)
