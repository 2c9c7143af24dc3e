"""Counting the Prometheus series of our exporters per model: the cardinality budget of issue 10 (item 5).

Per model, (series at 20 models - series at 1 model) / 19 must stay at or under 25 over every exporter of
ours: the serving process's ``/metrics`` (our runtime's counters, the shipper's gauge, MLServer's own
data-plane series) and the monitor's. Series that do not grow with the models (process, GC, REST and gRPC
server metrics, the process-wide latency histogram) cancel in the difference.

Shared by the fast in-process test (``test_series_per_model.py``) and the real-process one
(``test_cardinality.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from upstream_facts import fact

BUDGET_PER_MODEL = 25
FEW, MANY = 1, 20
SCORER_FILE = Path(__file__).with_name("flaky_scorer.py")
NUMERIC, CATEGORICAL = ("income", "age", "debt_ratio"), ("purpose",)


def features(rows: int, seed: int, *, shift: float = 0.0, negative_income: bool = False) -> pd.DataFrame:
    """Loan-like inputs; ``shift`` moves ``debt_ratio`` (drift), ``negative_income`` makes the model fail."""
    generator = np.random.default_rng(seed)
    income = generator.lognormal(10.5, 0.4, rows)
    return pd.DataFrame(
        {
            "income": -income if negative_income else income,
            "age": generator.integers(21, 70, rows).astype("int64"),
            "debt_ratio": np.clip(generator.beta(2, 5, rows) + shift, 0.0, 1.0),
            "purpose": generator.choice(["car", "home", "education", "business"], rows),
        }
    )


def scores_of(frame: pd.DataFrame) -> np.ndarray:
    """What ``flaky_scorer.FlakyScorer`` answers (the reference's scores are the model's own)."""
    return 1.0 / (1.0 + np.exp(-(6.0 * frame["debt_ratio"].to_numpy() - 2.0)))


def labels_for(frame: pd.DataFrame, seed: int) -> list[int]:
    """Ground truth drawn from the model's own scores (a calibrated model)."""
    scores = scores_of(frame)
    return (np.random.default_rng(seed).random(len(scores)) < scores).astype(int).tolist()


def reference_profile() -> Any:
    """The scorer's reference profile, with an estimator so the checks estimate performance too."""
    from platform_components.monitoring.estimate import METADATA_KEY, fit_estimator
    from platform_components.monitoring.profile import build_reference_profile

    reference = features(2_000, seed=1)
    scores = scores_of(reference)
    labels = (np.random.default_rng(2).random(len(scores)) < scores).astype(int)
    return build_reference_profile(
        reference,
        numeric=list(NUMERIC),
        categorical=list(CATEGORICAL),
        prediction_scores=scores,
        metadata={METADATA_KEY: fit_estimator(labels, scores).to_dict(), "task": "classification"},
    )


#: Exporter -> metric-name prefixes (the table's rows).
EXPORTERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("serving runtime", ("mlops_serving_",)),
    ("shipper", ("mlops_prediction_log_",)),
    ("MLServer data plane", ("model_infer_request_",)),
    ("monitor", ("mlops_monitor_",)),
)
OTHER = "per process (REST, gRPC, Python)"


@dataclass(frozen=True)
class Sample:
    """One series: its sample name and label names/values (``le``/``quantile`` included)."""

    name: str
    labels: tuple[tuple[str, str], ...]

    @property
    def model(self) -> str | None:
        return dict(self.labels).get("model")


def parse(text: str) -> list[Sample]:
    """The series of one ``/metrics`` answer, without ``_created`` (our processes switch those off)."""
    from prometheus_client.parser import text_string_to_metric_families

    return [
        Sample(sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.endswith("_created")
    ]


def exporter_of(name: str) -> str:
    for exporter, prefixes in EXPORTERS:
        if name.startswith(prefixes):
            return exporter
    return OTHER


def by_exporter(samples: Iterable[Sample]) -> Counter[str]:
    return Counter(exporter_of(sample.name) for sample in samples)


def per_model(
    few: Counter[str], many: Counter[str], *, models_few: int = FEW, models_many: int = MANY
) -> dict:
    """Series per added model, per exporter and in total: (many - few) / (models_many - models_few)."""
    added = models_many - models_few
    rows = {name: (few[name], many[name], (many[name] - few[name]) / added) for name in set(few) | set(many)}
    total_few, total_many = sum(few.values()), sum(many.values())
    rows["total"] = (total_few, total_many, (total_many - total_few) / added)
    return rows


def table(rows: Mapping[str, tuple[int, int, float]]) -> str:
    """The per-exporter table the tests print (``pytest -s`` shows it)."""
    order = [name for name, _ in EXPORTERS] + [OTHER, "total"]
    lines = [f"{'exporter':<36}{'N=' + str(FEW):>8}{'N=' + str(MANY):>8}{'per model':>11}{'budget':>8}"]
    for name in order:
        if name not in rows:
            continue
        few, many, each = rows[name]
        budget = f"{BUDGET_PER_MODEL}" if name == "total" else ""
        lines.append(f"{name:<36}{few:>8}{many:>8}{each:>11.2f}{budget:>8}")
    return "\n".join(lines)


def allowed_labels(name: str) -> frozenset[str] | None:
    """The label names a series of ours may carry (``le``/``quantile`` aside); None: not ours.

    Our counters carry ``model`` only, the monitor's gauges ``model`` and ``version`` (the version of the
    latest checked window: one series per model at a time), the process-wide latency histogram and the
    shipper's counters nothing. MLServer's own carry what its data plane gives them (an upstream fact).
    """
    upstream = fact("mlserver.dataplane.metrics")
    for family, (_, labels) in upstream.items():
        if name.startswith(family):
            return frozenset(labels)
    if name.startswith("mlops_serving_request_duration_seconds"):
        return frozenset()
    if name.startswith("mlops_serving_"):
        return frozenset({"model"})
    if name.startswith("mlops_prediction_log_unshipped_records"):
        return frozenset({"model"})
    if name.startswith("mlops_prediction_log_"):
        return frozenset()
    if name.startswith("mlops_monitor_"):
        return frozenset({"model"}) if name.endswith("_total") else frozenset({"model", "version"})
    return None


def unexpected_labels(samples: Iterable[Sample]) -> list[Sample]:
    """Series of ours that carry a label beyond :func:`allowed_labels` (a version, a status, a route)."""
    wrong = []
    for sample in samples:
        allowed = allowed_labels(sample.name)
        if allowed is None:
            continue
        names = {key for key, _ in sample.labels} - {"le", "quantile"}
        if names != allowed:
            wrong.append(sample)
    return wrong
