"""Seldon Core 2.10.2: its agent and the model-settings.json of an artifact (log_model_for_platform)."""

from __future__ import annotations

from upstream_facts import Fact

_REPOSITORY = "SeldonIO/seldon-core scheduler/pkg/agent/repository/mlserver/mlserver.go@v2.10.2"

FACTS = [
    Fact(
        key="seldon.agent.model_settings_file",
        statement="The agent looks for one model-settings.json at the top of the downloaded artifact folder "
        "and edits that file in the MLServer repository copy",
        source=_REPOSITORY,
        value="model-settings.json",
    ),
    Fact(
        key="seldon.agent.model_settings_default_mlflow",
        statement="When the artifact folder has no model-settings.json the agent writes one from the Model's "
        "requirements; for 'mlflow' it names the stock MLflow runtime with uri ./",
        source="SeldonIO/seldon-core scheduler/pkg/agent/repository/mlserver/settings.go@v2.10.2",
        value={"implementation": "mlserver_mlflow.MLflowRuntime", "parameters": {"uri": "./"}},
    ),
    Fact(
        key="seldon.agent.model_settings_overwrites",
        statement="The agent overwrites the file's name with the Model's name and parameters.version with "
        "its own version counter, so neither can carry the registry version",
        source=_REPOSITORY,
        value=("name", "parameters.version"),
    ),
]
