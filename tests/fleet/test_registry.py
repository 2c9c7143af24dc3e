"""The registry reader against a real ``mlflow server``: aliases, version tags, paging, batched filters."""

from __future__ import annotations

import pytest
from upstream_facts import fact

from platform_components.fleet import registry as registry_module
from platform_components.fleet.registry import HOLDOUT_TAG_PREFIX, RegistryError, RegistryReader


@pytest.fixture(scope="module")
def registered(register) -> list[str]:
    names = [f"registry-test-{index}" for index in range(5)]
    for index, name in enumerate(names):
        register(
            name,
            {
                "1": {f"{HOLDOUT_TAG_PREFIX}roc_auc": "0.8"},
                "2": {
                    f"{HOLDOUT_TAG_PREFIX}roc_auc": f"0.9{index}",
                    "note": "x",
                    f"{HOLDOUT_TAG_PREFIX}bad": "n/a",
                },
            },
            {"champion": "2", "challenger": "1"},
        )
    register("registry-test-unaliased", {"1": {}}, {})
    return names


def test_aliases_versions_and_baselines_of_the_declared_models(mlflow_rest, registered) -> None:
    found = RegistryReader(mlflow_rest.tracking_uri).read(
        [*registered, "registry-test-unaliased", "never-registered"]
    )
    assert set(found) == {*registered, "registry-test-unaliased"}
    first = found["registry-test-1"]
    assert first.aliases == {"champion": "2", "challenger": "1"}
    assert set(first.versions) == {"1", "2"}
    # Only numeric holdout tags are baselines.
    assert first.versions["2"].baselines == {"roc_auc": 0.91}
    assert first.versions["2"].created_at > 1e9
    assert found["registry-test-unaliased"].aliases == {}


def test_every_page_and_every_filter_batch_is_read(mlflow_rest, registered) -> None:
    # Pages of 2 models and 2 versions, filters of about two names: the same answer as one page each.
    small = RegistryReader(mlflow_rest.tracking_uri, models_page=2, versions_page=2, filter_characters=40)
    whole = RegistryReader(mlflow_rest.tracking_uri)
    assert small.read(registered) == whole.read(registered)
    assert len(list(registry_module._filters(registered, 40))) >= 3


def test_the_page_sizes_are_what_the_pinned_server_accepts() -> None:
    assert fact("mlflow.rest.registered_models_search.max_results") == registry_module.REGISTERED_MODELS_PAGE
    assert fact("mlflow.rest.model_versions_search.max_results") >= registry_module.MODEL_VERSIONS_PAGE
    assert fact("mlflow.rest.registered_models_search.path") == registry_module.REGISTERED_MODELS_SEARCH
    assert fact("mlflow.rest.model_versions_search.path") == registry_module.MODEL_VERSIONS_SEARCH


def test_an_unreachable_registry_names_the_uri_and_the_fix() -> None:
    with pytest.raises(RegistryError, match=r"http://127.0.0.1:9: cannot read the registry .*mlops up"):
        RegistryReader("http://127.0.0.1:9").read(["a"])
    with pytest.raises(RegistryError, match=r"tracking URI 'sqlite:///x.db' is not an http\(s\) URL"):
        RegistryReader("sqlite:///x.db")


def test_the_facts_hold_for_the_installed_mlflow() -> None:
    from mlflow.store.model_registry import (
        SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD,
        SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD,
    )
    from mlflow.utils.search_utils import SearchModelVersionUtils

    assert (
        fact("mlflow.rest.registered_models_search.max_results")
        == SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD
    )
    assert fact("mlflow.rest.model_versions_search.max_results") == SEARCH_MODEL_VERSION_MAX_RESULTS_THRESHOLD
    assert "IN" in SearchModelVersionUtils.VALID_STRING_ATTRIBUTE_COMPARATORS
    assert (
        set(fact("mlflow.rest.model_versions_search.name_in")) == SearchModelVersionUtils.LIST_SUPPORTED_KEYS
    )
    assert next(registry_module._filters(["a", "b'c"], 100)) == "name IN ('a', \"b'c\")"
