"""The fleet's rows: one per declared model, staleness, drift and performance states, sort, filter."""

from __future__ import annotations

import pytest

from platform_components.errors import ConfigError
from platform_components.fleet.registry import RegisteredModelFacts, VersionFacts
from platform_components.fleet.rows import (
    build_fleet,
    declared_models,
    filter_rows,
    parse_filter,
    sort_rows,
)
from platform_components.fleet.store_reader import LastRetrain, LatestCheck, StoreFacts, WindowPoint
from platform_components.settings import CatalogSettings, PlatformSettings, PolicySettings

DAY = 86400.0
NOW = 1_700_000_000.0

CATALOG = {
    "people": [{"name": "alice"}],
    "teams": [{"name": "risk", "group": "oidc:risk"}],
    "projects": [
        {
            "name": "credit",
            "team": "risk",
            "owner": "alice",
            "staleness": {"labels": "7d", "check": "2d", "retrain": "30d"},
            "policy": {"max_performance_drop": 0.02},
            "models": [
                {"name": "credit-default", "registered_model": "credit-default"},
                {
                    "name": "credit-limit",
                    "registered_model": "credit-limit",
                    "policy": {"performance_metric": "accuracy"},
                },
            ],
        },
        # Bob left: he is in no people or team list any more, his project stays.
        {
            "name": "churn",
            "team": "risk",
            "owner": "bob",
            "models": [{"name": "churn", "registered_model": "churn"}],
        },
    ],
}


def check(start: float, *, drifted: list[str] | None = None, share: float = 0.0) -> LatestCheck:
    return LatestCheck(
        "3", start + DAY - 1, start, start + DAY, "ok", 300, 50, share, drifted or [], 0.1, False
    )


def healthy(now: float = NOW) -> StoreFacts:
    start = now - DAY
    return StoreFacts(
        latest=check(start),
        history=[
            WindowPoint(start - DAY, 0.0, {"roc_auc": 0.85}, {}),
            WindowPoint(start, 0.0, {"roc_auc": 0.845}, {}),
        ],
        retrain=LastRetrain(now - 5 * DAY, "promoted", "2", now - 5 * DAY),
        last_label_at=now - DAY,
        labels=100,
        last_prediction_at=now,
        first_prediction_by_version={"3": now - 4 * DAY},
    )


def registry(*names: str, baseline: float = 0.86) -> dict[str, RegisteredModelFacts]:
    return {
        name: RegisteredModelFacts(
            name,
            {"champion": "3"},
            {"3": VersionFacts("3", None, "run", {"roc_auc": baseline, "accuracy": 0.9})},
        )
        for name in names
    }


@pytest.fixture
def catalog() -> CatalogSettings:
    return CatalogSettings.model_validate(CATALOG)


def rows_by_model(fleet) -> dict[str, dict]:
    return {row["model"]: row for row in fleet.rows}


def test_one_row_per_declared_model_and_store_only_models_are_counted_not_shown(catalog) -> None:
    store = {"credit-default": healthy(), "churn": healthy(), "ghost": healthy(), "ghost-2": StoreFacts()}
    fleet = build_fleet(
        declared_models(catalog), catalog, store, registry("credit-default", "churn"), now=NOW
    )
    assert [row["model"] for row in fleet.rows] == ["credit-default", "credit-limit", "churn"]
    assert fleet.undeclared == ["ghost", "ghost-2"]
    assert fleet.to_dict()["undeclared"]["count"] == 2


def test_the_effective_policy_is_the_platforms_layering(catalog) -> None:
    policy = PolicySettings.model_validate({"defaults": {"cooldown": "3d"}})
    declared = {model.name: model for model in declared_models(catalog, policy)}
    settings = PlatformSettings.model_validate(
        {"catalog": CATALOG, "policy": {"defaults": {"cooldown": "3d"}}, "secrets": {"secret_seed": "x" * 16}}
    )
    for model in settings.models:
        assert declared[model.name].policy == settings.effective_policy(model), model.name
    assert declared["credit-limit"].policy.performance_metric == "accuracy"
    assert declared["credit-default"].policy.max_performance_drop == 0.02
    assert declared["churn"].policy.max_performance_drop == 0.05


def test_a_healthy_model_is_not_stale_and_shows_its_serving_version_and_baseline(catalog) -> None:
    fleet = build_fleet(
        declared_models(catalog), catalog, {"credit-default": healthy()}, registry("credit-default"), now=NOW
    )
    row = rows_by_model(fleet)["credit-default"]
    assert row["staleness"] == [] and row["stale"] is False
    assert (row["project"], row["owner"], row["team"]) == ("credit", "alice", "risk")
    assert (row["alias"], row["version"], row["serving"]) == ("champion", "3", "serving")
    assert (row["baseline"], row["realised"]) == (0.86, 0.845)
    assert row["realised_drop"] == pytest.approx(0.015)
    assert row["performance"] == "ok"  # within the project's allowed drop of 0.02
    assert row["drift"] == "ok" and row["alerts"] == []
    assert row["history"]["realised"] == [0.85, 0.845]
    assert row["policy"]["max_performance_drop"] == 0.02


def test_no_labels_no_check_and_no_retrain_for_longer_than_the_project_allows_make_it_stale(catalog) -> None:
    facts = healthy()
    facts.last_label_at = NOW - 8 * DAY
    facts.latest = check(NOW - 4 * DAY)
    facts.retrain = LastRetrain(NOW - 31 * DAY, "promoted", "2", NOW - 31 * DAY)
    fleet = build_fleet(
        declared_models(catalog), catalog, {"credit-default": facts}, registry("credit-default"), now=NOW
    )
    verdicts = rows_by_model(fleet)["credit-default"]["staleness"]
    assert verdicts == [
        "no labels for 8.0d (allows 7.0d)",
        "no check for 3.0d (allows 2.0d)",
        "no retrain for 31.0d (allows 30.0d)",
    ]


def test_retrain_age_counts_from_the_last_run_that_started_else_the_versions_first_prediction(
    catalog,
) -> None:
    facts = healthy()
    # The latest decision started nothing; the last started run is 40 days old.
    facts.retrain = LastRetrain(NOW - DAY, "waiting_for_rows", "3", NOW - 40 * DAY)
    fleet = build_fleet(
        declared_models(catalog), catalog, {"credit-default": facts}, registry("credit-default"), now=NOW
    )
    row = rows_by_model(fleet)["credit-default"]
    assert row["last_retrain_outcome"] == "waiting_for_rows"
    assert "no retrain for 40.0d (allows 30.0d)" in row["staleness"]
    never = healthy()
    never.retrain = None
    never.first_prediction_by_version = {"3": NOW - 35 * DAY}
    fleet = build_fleet(
        declared_models(catalog), catalog, {"credit-default": never}, registry("credit-default"), now=NOW
    )
    assert "no retrain for 35.0d (allows 30.0d)" in rows_by_model(fleet)["credit-default"]["staleness"]


def test_an_owner_absent_from_the_catalog_makes_every_model_of_the_project_stale(catalog) -> None:
    fleet = build_fleet(declared_models(catalog), catalog, {"churn": healthy()}, registry("churn"), now=NOW)
    row = rows_by_model(fleet)["churn"]
    assert row["staleness"] == ["owner 'bob' is not in the catalog's people or teams"]


def test_the_fleets_clock_is_its_latest_event_so_a_silent_model_grows_stale() -> None:
    catalog = CatalogSettings.model_validate(CATALOG)
    busy, silent = healthy(), healthy(NOW - 10 * DAY)
    fleet = build_fleet(
        declared_models(catalog),
        catalog,
        {"credit-default": busy, "credit-limit": silent},
        registry("credit-default", "credit-limit"),
    )
    assert fleet.now == NOW
    rows = rows_by_model(fleet)
    assert not rows["credit-default"]["stale"]
    assert "no labels for 11.0d (allows 7.0d)" in rows["credit-limit"]["staleness"]


def test_drift_alarm_and_a_performance_drop_are_open_alerts_without_prometheus(catalog) -> None:
    facts = healthy()
    facts.latest = check(NOW - DAY, drifted=["income", "age"], share=0.5)
    facts.history[-1] = WindowPoint(NOW - DAY, 0.5, {"roc_auc": 0.80}, {})
    fleet = build_fleet(
        declared_models(catalog), catalog, {"credit-default": facts}, registry("credit-default"), now=NOW
    )
    row = rows_by_model(fleet)["credit-default"]
    assert row["drift"] == "alarm"
    assert row["performance"] == "below"
    assert row["alerts"] == ["drift", "performance_drop"]
    with_prometheus = build_fleet(
        declared_models(catalog),
        catalog,
        {"credit-default": facts},
        registry("credit-default"),
        alerts={"credit-default": ["ModelFeatureDrift"]},
        now=NOW,
    )
    assert rows_by_model(with_prometheus)["credit-default"]["alerts"] == ["ModelFeatureDrift"]
    assert with_prometheus.alerts_source == "prometheus"


def test_before_labels_the_estimate_is_compared_with_the_baseline(catalog) -> None:
    facts = healthy()
    facts.history = [
        WindowPoint(NOW - DAY, 0.0, {}, {"roc_auc": {"value": 0.75, "lower": 0.7, "upper": 0.8}})
    ]
    fleet = build_fleet(
        declared_models(catalog), catalog, {"credit-default": facts}, registry("credit-default"), now=NOW
    )
    row = rows_by_model(fleet)["credit-default"]
    assert row["realised"] is None and row["estimated"] == 0.75
    assert row["estimated_drop"] == pytest.approx(0.11)
    assert row["performance"] == "estimated_below" and "estimated_drop" in row["alerts"]


def test_lower_is_better_metrics_drop_upwards() -> None:
    data = {**CATALOG, "projects": [{**CATALOG["projects"][0], "policy": {"performance_metric": "brier"}}]}
    catalog = CatalogSettings.model_validate(data)
    facts = healthy()
    facts.history = [WindowPoint(NOW - DAY, 0.0, {"brier": 0.25}, {})]
    registered = {
        "credit-default": RegisteredModelFacts(
            "credit-default", {"champion": "3"}, {"3": VersionFacts("3", None, None, {"brier": 0.15})}
        )
    }
    fleet = build_fleet(declared_models(catalog), catalog, {"credit-default": facts}, registered, now=NOW)
    row = rows_by_model(fleet)["credit-default"]
    assert row["realised_drop"] == pytest.approx(0.10) and row["performance"] == "below"


def test_a_model_without_its_alias_or_registration_says_so(catalog) -> None:
    registered = {"credit-default": RegisteredModelFacts("credit-default", {"challenger": "1"}, {})}
    fleet = build_fleet(declared_models(catalog), catalog, {}, registered, now=NOW)
    rows = rows_by_model(fleet)
    assert rows["credit-default"]["serving"] == "no_alias" and rows["credit-default"]["version"] is None
    assert rows["churn"]["serving"] == "not_registered"
    assert "not_registered" in rows["churn"]["alerts"]
    assert rows["credit-default"]["staleness"][:2] == ["no labels", "never checked"]


def test_sorting_puts_missing_values_last_either_way_and_refuses_unknown_columns(catalog) -> None:
    low, high = healthy(), healthy()
    high.history[-1] = WindowPoint(NOW - DAY, 0.0, {"roc_auc": 0.95}, {})
    fleet = build_fleet(
        declared_models(catalog),
        catalog,
        {"credit-default": low, "churn": high},
        registry("credit-default", "churn"),
        now=NOW,
    )
    assert [row["model"] for row in sort_rows(fleet.rows, "realised")] == [
        "credit-default",
        "churn",
        "credit-limit",
    ]
    assert [row["model"] for row in sort_rows(fleet.rows, "-realised")] == [
        "churn",
        "credit-default",
        "credit-limit",
    ]
    with pytest.raises(ConfigError, match=r"--sort 'colour': unknown column; use one of project, owner"):
        sort_rows(fleet.rows, "colour")


def test_filters_match_text_lists_and_booleans_and_name_a_bad_term(catalog) -> None:
    facts = healthy()
    facts.latest = check(NOW - DAY, drifted=["income", "age"], share=0.5)
    fleet = build_fleet(
        declared_models(catalog),
        catalog,
        {"credit-default": facts, "churn": healthy()},
        registry("credit-default", "churn"),
        now=NOW,
    )
    models = lambda expression: [row["model"] for row in filter_rows(fleet.rows, parse_filter(expression))]  # noqa: E731
    assert models("project=credit,drift=alarm") == ["credit-default"]
    assert models("project!=credit") == ["churn"]
    assert models("stale=true") == ["credit-limit", "churn"]
    assert models("staleness=owner") == ["churn"]
    assert models("alerts=drift") == ["credit-default"]
    with pytest.raises(ConfigError, match=r"--filter term 'colour=red': unknown key 'colour'; use one of"):
        parse_filter("colour=red")
    with pytest.raises(ConfigError, match=r"--filter term 'credit': write KEY=VALUE"):
        parse_filter("credit")
