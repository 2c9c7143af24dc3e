"""The rendered alert rules query metrics that exist and fire when their target is gone."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi_fixtures
import pytest
import yaml
from upstream_facts import REPO, fact

from platform_components.kubernetes import seldon_metrics
from platform_components.monitoring import service
from platform_components.render import kubernetes_objects

dev_render = pulumi_fixtures.dev_render
render_program = pulumi_fixtures.render_program


@pytest.fixture(scope="session")
def promtool() -> Path:
    """promtool from tools/build.py (built from the Go module proxy), or the binary ``MLOPS_PROMTOOL`` names.

    Skips, saying why, when neither is there or the build fails (no Go toolchain, no module proxy).
    """
    override = os.environ.get("MLOPS_PROMTOOL")
    if override:
        return Path(override)
    build = REPO / "tools" / "build.py"
    if not build.exists():
        pytest.skip("promtool is built by tools/build.py, which this checkout does not have")
    if shutil.which("go") is None:
        pytest.skip("promtool is built from the Go module proxy and there is no `go` on PATH")
    result = subprocess.run(
        [sys.executable, str(build), "--print-path", "promtool"], capture_output=True, text=True, timeout=1800
    )
    if result.returncode != 0:
        pytest.skip(f"tools/build.py could not build promtool: {result.stderr.strip()[-500:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def rules_of(render: Any) -> dict[str, str]:
    rules = {}
    for obj in kubernetes_objects(render.resources):
        if obj["kind"] == "PrometheusRule":
            for group in obj["spec"]["groups"]:
                for rule in group["rules"]:
                    rules[rule["alert"]] = rule["expr"]
    return rules


def test_monitor_alerts_read_gauges_the_monitor_exports(dev_render: Any) -> None:
    exported = {service.PREFIX + suffix for suffix, _, _ in service.GAUGES}
    queried = {
        name for expr in rules_of(dev_render).values() for name in re.findall(r"mlops_monitor_[a-z_]+", expr)
    }
    assert queried and queried <= exported, queried - exported


def exported_metric_names() -> set[str]:
    """Every series name our exporters can produce: the monitor's, the serving runtime's, the shipper's."""
    from prometheus_client import Counter, Gauge, Histogram

    from platform_components.serving.process_state import serving_metrics
    from platform_components.serving.shipper import shipper_metrics

    names = {service.PREFIX + suffix for suffix, _, _ in service.GAUGES}
    names |= {f"{service.PREFIX}{suffix}_total" for suffix, _, _ in service.COUNTERS}
    for metric in [*serving_metrics().values(), *shipper_metrics().values()]:
        base = metric._name
        if isinstance(metric, Counter):
            names.add(f"{base}_total")
        elif isinstance(metric, Histogram):
            names |= {f"{base}_bucket", f"{base}_count", f"{base}_sum"}
        elif isinstance(metric, Gauge):
            names.add(base)
    return names


def test_dashboards_and_rules_read_only_metrics_we_export(dev_render: Any) -> None:
    """A removed or renamed metric (the cardinality budget removed several) must leave no panel or rule."""
    text = json.dumps(kubernetes_objects(dev_render.resources))
    queried = set(re.findall(r"\b(mlops_(?:monitor|serving|prediction_log)_[a-z_]+)", text))
    assert queried, "no panel or rule reads our metrics"
    assert queried <= exported_metric_names(), queried - exported_metric_names()


def test_mlflow_alerts_use_the_prefixed_metric_names_mlflow_exports(dev_render: Any) -> None:
    # `mlflow server --expose-prometheus` creates its exporter with defaults_prefix="mlflow".
    expr = rules_of(dev_render)["MlflowServerErrors"]
    assert "mlflow_http_request_total" in expr and "(http_request_total" not in expr


def test_down_alerts_fire_when_no_target_is_left(dev_render: Any) -> None:
    rules = rules_of(dev_render)
    for alert in ("MlflowDown", "ModelMonitorDown"):
        # sum() over no series is empty, never 0: without `or vector(0)` the alert cannot fire.
        assert "or vector(0)" in rules[alert], rules[alert]
    assert "min by (model)" in rules["ModelMonitorStale"]


# --- Seldon's metrics: names, labels and codes as the agent exports them (upstream_facts) ---


def seldon_selectors(expr: str) -> list[tuple[str, set[str]]]:
    """Every Seldon metric an expression reads, with the label names its selector and grouping use."""
    found = []
    for match in re.finditer(r"(seldon_[a-z_]+)(\{([^}]*)\})?", expr):
        labels = {pair.split("=")[0].strip("!~ ") for pair in (match.group(3) or "").split(",") if pair}
        found.append((match.group(1), labels))
    return found


def all_queries(render: Any) -> list[str]:
    queries = list(rules_of(render).values())
    for obj in kubernetes_objects(render.resources):
        if obj["kind"] == "ConfigMap" and obj["metadata"].get("labels", {}).get("grafana_dashboard") == "1":
            for body in obj["data"].values():
                queries += [
                    target["expr"] for panel in json.loads(body)["panels"] for target in panel["targets"]
                ]
    return queries


def test_rules_and_dashboards_read_seldon_metrics_by_the_labels_they_carry(dev_render: Any) -> None:
    counters = {fact("seldon.metrics.infer_count"), fact("seldon.metrics.infer_seconds")}
    histogram = fact("seldon.metrics.histogram") + "_bucket"
    read = [item for query in all_queries(dev_render) for item in seldon_selectors(query)]
    assert read, "no rule or dashboard reads Seldon's metrics"
    for name, used in read:
        if name in counters:
            assert used <= set(fact("seldon.metrics.infer_counter_labels")), (name, used)
        else:
            # No `model` label on the histogram in 2.10: a per-model selector on it matches nothing.
            assert name == histogram and used <= set(fact("seldon.metrics.histogram_labels")), (name, used)


def test_model_latency_is_the_ratio_of_seldons_per_model_counters(dev_render: Any) -> None:
    rules = [rule for rule in model_rules(dev_render) if rule["alert"] == "ModelLatencyHigh"]
    assert rules
    for rule in rules:
        assert fact("seldon.metrics.infer_seconds") in rule["expr"], rule["expr"]
        assert fact("seldon.metrics.histogram") not in rule["expr"], rule["expr"]


def test_server_error_codes_are_5xx_and_the_grpc_codes_that_map_to_5xx() -> None:
    pattern = re.compile(seldon_metrics.SERVER_ERROR_CODE_PATTERN)
    grpc_names = fact("grpc.codes.names")
    assert set(seldon_metrics.GRPC_SERVER_ERROR_CODES) == set(fact("grpc.codes.server_errors"))
    assert set(seldon_metrics.GRPC_SERVER_ERROR_CODES) <= set(grpc_names)
    # PromQL's =~ is anchored: fullmatch is what the query does.
    counted = {code for code in (*grpc_names, *fact("seldon.metrics.rest_code")) if pattern.fullmatch(code)}
    assert counted == {"500", "503", *fact("grpc.codes.server_errors")}


# --- promtool test rules: every alert fires on its series and stays quiet otherwise ---


def rendered_rule_groups(render: Any) -> list[dict[str, Any]]:
    return [
        group
        for obj in kubernetes_objects(render.resources)
        if obj["kind"] == "PrometheusRule"
        for group in obj["spec"]["groups"]
    ]


def model_rules(render: Any) -> list[dict[str, Any]]:
    return [
        rule
        for group in rendered_rule_groups(render)
        if group["name"].startswith("model-")
        for rule in group["rules"]
    ]


def threshold(expr: str) -> float:
    match = re.search(r"[<>] ([0-9.e+-]+)$", expr)
    assert match, f"no threshold at the end of {expr!r}"
    return float(match.group(1))


def namespace_of(expr: str) -> str:
    match = re.search(r'namespace="([^"]+)"', expr)
    assert match, expr
    return match.group(1)


def counter(per_second: float) -> str:
    """A counter rising by ``per_second`` every second, sampled each minute for 70 minutes."""
    return f"0+{per_second * 60:g}x70"


def gauge(value: float) -> str:
    return f"{value:g}x70"


Series = list[tuple[str, str]]


def scenarios(rule: dict[str, Any]) -> tuple[Series, Series, dict[str, str]]:
    """(series it fires on, series it stays quiet on, labels the fired alert carries from the data)."""
    alert, expr = rule["alert"], rule["expr"]
    model = rule["labels"].get("model", "any")
    infer = f'seldon_model_infer_total{{model="{model}",server="mlserver",method_type='
    if alert in ("ServingErrorRateHigh", "ModelErrorRateHigh"):
        limit = threshold(expr)
        ok, bad = 1.0, 3 * limit / (1 - 3 * limit)  # three times the allowed share fails
        return (
            [
                (f'{infer}"rest",code="200"}}', counter(ok)),
                (f'{infer}"rest",code="500"}}', counter(bad / 2)),
                (f'{infer}"grpc",code="Unavailable"}}', counter(bad / 2)),
            ],
            # gRPC OK is a success; the callers' own mistakes (our 4xx, InvalidArgument, NotFound) are not.
            [
                (f'{infer}"rest",code="200"}}', counter(ok)),
                (f'{infer}"grpc",code="OK"}}', counter(ok)),
                (f'{infer}"rest",code="422"}}', counter(ok)),
                (f'{infer}"rest",code="404"}}', counter(ok)),
                (f'{infer}"grpc",code="InvalidArgument"}}', counter(ok)),
            ],
            {},
        )
    if alert == "ModelLatencyHigh":
        limit = threshold(expr)
        seconds = f'seldon_model_infer_seconds_total{{model="{model}",server="mlserver",method_type="rest",'
        seconds += 'code="200"}'
        count = f'{infer}"rest",code="200"}}'
        return (
            [(count, counter(10)), (seconds, counter(10 * 2 * limit))],
            [(count, counter(10)), (seconds, counter(10 * limit / 2))],
            {},
        )
    if alert == "ServingLatencyHigh":
        bucket = 'seldon_model_infer_api_seconds_bucket{server="mlserver",server_replica="0",method="post",'
        bucket += 'code="200"'
        slow = [(f'{bucket},le="0.5"}}', counter(0)), (f'{bucket},le="1"}}', counter(0))]
        slow += [(f'{bucket},le="2.5"}}', counter(5)), (f'{bucket},le="+Inf"}}', counter(5))]
        fast = [(f'{bucket},le="{le}"}}', counter(5)) for le in ("0.5", "1", "2.5", "+Inf")]
        return slow, fast, {}
    if alert in ("MlflowDown", "ModelMonitorDown"):
        service = re.search(r'service="([^"]+)"', expr).group(1)  # type: ignore[union-attr]
        up = f'up{{namespace="{namespace_of(expr)}",service="{service}",pod="p-0"}}'
        # Down, and gone altogether (no `up` series left) must both fire: the gone case is the quiet set's
        # complement, tested in test_down_alerts_fire_when_no_target_is_left's promtool twin below.
        return [(up, gauge(0))], [(up, gauge(1))], {}
    if alert == "MlflowServerErrors":
        requests = f'mlflow_http_request_total{{namespace="{namespace_of(expr)}",method="POST",status='
        return (
            [(f'{requests}"500"}}', counter(1)), (f'{requests}"200"}}', counter(10))],
            [(f'{requests}"200"}}', counter(10)), (f'{requests}"404"}}', counter(10))],
            {},
        )
    if alert == "PipelinesApiUnavailable":
        labels = {"namespace": namespace_of(expr), "deployment": "ml-pipeline"}
        series = (
            "kube_deployment_status_replicas_available"
            + "{"
            + ",".join(f'{key}="{value}"' for key, value in labels.items())
            + "}"
        )
        return [(series, gauge(0))], [(series, gauge(1))], labels
    if alert == "ModelMonitorStale":
        # promtool's clock starts at 0 s: a timestamp that keeps up with time() is fresh, 0 is stale.
        fresh = ('mlops_monitor_last_check_timestamp_seconds{model="fresh"}', "0+60x70")
        stale = ('mlops_monitor_last_check_timestamp_seconds{model="stale"}', gauge(0))
        return [fresh, stale], [fresh], {"model": "stale"}
    gauges = {
        "ModelFeatureDrift": "mlops_monitor_drifted_features",
        "ModelFeaturePsiHigh": "mlops_monitor_max_psi",
        "ModelAccuracyLow": "mlops_monitor_accuracy",
    }
    if alert in gauges:
        limit = threshold(expr)
        series = f'{gauges[alert]}{{model="{model}",version="3"}}'
        above, below = (2 * limit if limit else 2), limit / 2
        if alert == "ModelAccuracyLow":
            return [(series, gauge(below))], [(series, gauge((1 + limit) / 2))], {}
        return [(series, gauge(above))], [(series, gauge(below))], {}
    raise AssertionError(f"alert {alert} has no promtool scenario: add one to scenarios()")


def promtool_tests(render: Any, rule_file: str) -> dict[str, Any]:
    groups = []
    for group in rendered_rule_groups(render):
        for rule in group["rules"]:
            firing, quiet, data_labels = scenarios(rule)
            expected = {
                "exp_labels": {**rule["labels"], **data_labels},
                "exp_annotations": rule["annotations"],
            }
            for name, series, alerts in (("fires", firing, [expected]), ("quiet", quiet, [])):
                groups.append(
                    {
                        "name": f"{group['name']} {rule['alert']} {name}",
                        "interval": "1m",
                        "input_series": [{"series": s, "values": v} for s, v in series],
                        # 60m: past every rule's `for` (at most 30m) after its 5m rate window fills.
                        "alert_rule_test": [
                            {"eval_time": "60m", "alertname": rule["alert"], "exp_alerts": alerts}
                        ],
                    }
                )
    # Gone altogether: with no `up` series left the down alerts still fire (`or vector(0)`).
    for group in rendered_rule_groups(render):
        for rule in group["rules"]:
            if rule["alert"] in ("MlflowDown", "ModelMonitorDown"):
                groups.append(
                    {
                        "name": f"{rule['alert']} with no target left",
                        "interval": "1m",
                        "input_series": [{"series": 'unrelated{job="x"}', "values": gauge(1)}],
                        "alert_rule_test": [
                            {
                                "eval_time": "60m",
                                "alertname": rule["alert"],
                                "exp_alerts": [
                                    {"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}
                                ],
                            }
                        ],
                    }
                )
    return {"rule_files": [rule_file], "evaluation_interval": "1m", "tests": groups}


def test_every_rendered_alert_has_a_scenario(dev_render: Any) -> None:
    rules = [rule for group in rendered_rule_groups(dev_render) for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} >= {
        "ServingErrorRateHigh",
        "ModelErrorRateHigh",
        "ModelLatencyHigh",
    }
    for rule in rules:
        firing, quiet, _ = scenarios(rule)
        assert firing and quiet, rule["alert"]


def test_promtool_every_alert_fires_on_its_series_and_stays_quiet_otherwise(
    dev_render: Any, tmp_path: Path, promtool: Path
) -> None:
    rule_file = tmp_path / "rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": rendered_rule_groups(dev_render)}, sort_keys=False))
    checked = subprocess.run(
        [str(promtool), "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = tmp_path / "tests.yaml"
    tests.write_text(yaml.safe_dump(promtool_tests(dev_render, rule_file.name), sort_keys=False))
    result = subprocess.run(
        [str(promtool), "test", "rules", str(tests)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
