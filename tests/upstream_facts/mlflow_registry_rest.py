"""mlflow 3.17.2 (the installed wheel): the model registry's REST searches the fleet view reads."""

from __future__ import annotations

from upstream_facts import Fact

FACTS = [
    Fact(
        key="mlflow.rest.registered_models_search.path",
        statement="Registered models are searched with GET /api/2.0/mlflow/registered-models/search; each "
        "model in the answer carries its aliases as a list of {alias, version}",
        source="mlflow/mlflow mlflow/server/handlers.py@v3.17.2",
        value="/api/2.0/mlflow/registered-models/search",
    ),
    Fact(
        key="mlflow.rest.registered_models_search.max_results",
        statement="The registered-models search refuses max_results above 1000 "
        "(SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD) and pages with next_page_token / page_token",
        source="mlflow/mlflow mlflow/store/model_registry/__init__.py@v3.17.2",
        value=1000,
    ),
    Fact(
        key="mlflow.rest.model_versions_search.path",
        statement="Model versions are searched with GET /api/2.0/mlflow/model-versions/search; every "
        "version comes with its tags (loaded eagerly by the SQL store) but without aliases",
        source="mlflow/mlflow mlflow/server/handlers.py@v3.17.2",
        value="/api/2.0/mlflow/model-versions/search",
    ),
    Fact(
        key="mlflow.rest.model_versions_search.max_results",
        statement="The model-versions search accepts max_results up to 200,000 (default 10,000) and pages "
        "with next_page_token / page_token",
        source="mlflow/mlflow mlflow/store/model_registry/__init__.py@v3.17.2",
        value=200_000,
    ),
    Fact(
        key="mlflow.rest.model_versions_search.name_in",
        statement="The versions search filter takes `name IN ('a', 'b')` (IN and NOT IN only on name and "
        "run_id); tags take only =, !=, LIKE and ILIKE; clauses are joined with AND only",
        source="mlflow/mlflow mlflow/utils/search_utils.py@v3.17.2",
        value=("name", "run_id"),
    ),
]
