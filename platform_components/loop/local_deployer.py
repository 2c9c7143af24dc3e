"""The local target's deployer: our MLServer, switched through the platform's admin channel.

``LocalDeployer`` implements ``interfaces.Deployer`` over ``LocalPlatform``: what is served is what
``deployments.json`` records (the file ``mlops up`` re-serves after a restart), and a rollout is
``LocalPlatform.deploy_version``, which loads the new version completely before it takes traffic (no request
fails during the switch) and authenticates with the serving process's admin token, a channel inference
clients do not have (``platform_components.serving.server``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from platform_components.loop.interfaces import Rollout

if TYPE_CHECKING:
    from platform_components.local.platform import LocalPlatform

logger = logging.getLogger(__name__)


class LocalDeployer:
    """Serves a registered model version on the local platform's MLServer.

    Args:
        platform: The running local platform (``LocalPlatform.attach(state_dir)``).
    """

    def __init__(self, platform: LocalPlatform) -> None:
        self._platform = platform

    def serving_version(self, model: str) -> str | None:
        """The version ``deployments.json`` records for ``model``, or None when it is not deployed."""
        recorded = self._platform.state.read_deployments().get(model)
        return None if recorded is None else str(recorded["version"])

    def ensure(self, model: str, registered_model: str, version: str) -> Rollout:
        """Serve ``version`` of ``registered_model`` as ``model``.

        A no-op when that version is recorded and the server answers ready for it; otherwise it is
        deployed (also when it is recorded but not ready, e.g. after a failed load at start-up).

        Raises:
            ServingError: the version does not exist or did not load; the previous version keeps serving
                and ``deployments.json`` still names it.
            LocalTargetError: the platform is not running.
        """
        version = str(version).strip()
        recorded = self._platform.state.read_deployments().get(model)
        previous = None if recorded is None else str(recorded["version"])
        wanted_uri = f"models:/{registered_model}/{version}"
        recorded_here = recorded is not None and recorded.get("model_uri") == wanted_uri
        if recorded_here and self._platform.is_serving(model, version):
            return Rollout(model=model, version=version, changed=False, detail={"action": "none"})
        deployment = self._platform.deploy_version(model, version, registered_model=registered_model)
        action = "reloaded" if recorded_here else "switched"
        logger.info("%s %s: %s -> %s (%s)", action, model, previous, deployment.version, deployment.model_uri)
        return Rollout(
            model=model,
            version=deployment.version,
            changed=not recorded_here,
            detail={"action": action, "previous_version": previous, "model_uri": deployment.model_uri},
        )
