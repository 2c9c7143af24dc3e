"""One monitoring check: drift, prediction drift, data quality and performance for a model version's window.

``check_frame`` is the pure computation on a DataFrame (used by ``run_check``, the tests and the drift
benchmark). ``run_check`` reads the window from the store, adds performance once enough labels exist and
saves the result. ``log_to_mlflow`` writes the metrics with one ``log_batch`` call and the HTML drift
report to a monitoring run tagged with the model and version.

Windows are aligned in event time: the window holding ``now`` is ``[k * W, (k + 1) * W)`` with
``k = floor(now / W)`` (``window_bounds``), and the store keeps one result per (model, version, window
start), replaced by a later check of the same window. ``now`` defaults to the model's event clock (the
latest prediction or label time the store has seen), never the wall clock.

Estimated performance: when the reference profile carries a ``PerformanceEstimator``
(``estimate.METADATA_KEY`` in its metadata) and the task is classification, each check records
``estimated`` from the window's scores alone, so it exists before any label of the window does. A later
check of the window with the same rows keeps that estimate as it was; labels never change it.
``refresh_realised`` adds the realised metrics and their comparison with the estimate to windows that
gained labels after they were checked.

Drift per feature: KS (numeric) or chi-square (categorical) p-values corrected across the features of the
check (Benjamini-Hochberg by default); a feature drifts when its adjusted p-value is below ``alpha``. PSI is
computed for every feature and reported (``max_psi``); it flags a feature as well only when
``psi_threshold`` is set, because PSI has no sampling model and its noise floor depends on the window size.

The chi-square statistic is divided by ``1 + m / n`` (window rows over reference rows): the reference
proportions are themselves estimates from ``n`` rows, and without this factor a window of a tenth of the
training size would raise false alarms about 10 % too often. For ``n >> m`` it is scipy's ``chisquare``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import special

from platform_components.monitoring import stats
from platform_components.monitoring.errors import InvalidInput
from platform_components.monitoring.estimate import (
    METADATA_KEY,
    PerformanceEstimate,
    PerformanceEstimator,
    compare_with_realised,
)
from platform_components.monitoring.performance import classifier_metrics, regressor_metrics
from platform_components.monitoring.profile import ReferenceProfile, category_strings
from platform_components.monitoring.quality import check_quality
from platform_components.monitoring.store import (
    LABEL_COLUMN,
    SCORE_COLUMN,
    TIMESTAMP_COLUMN,
    MonitorStore,
)

if TYPE_CHECKING:
    from platform_components.monitoring.window_cache import WindowCache

logger = logging.getLogger(__name__)

DEFAULT_WINDOW_SECONDS = 24 * 3600.0


def window_bounds(now: float, window_seconds: float) -> tuple[float, float]:
    """The aligned window holding ``now``: ``(k * W, (k + 1) * W)`` with ``k = floor(now / W)``.

    Aligned (not ending at ``now``) so that every check of the same stretch of event time lands on the
    same window and a window's result can be found, replaced and compared with its labels later.

    Raises:
        InvalidInput: ``window_seconds`` is not positive or ``now`` is not a finite time.
    """
    if not (isinstance(window_seconds, int | float) and math.isfinite(window_seconds) and window_seconds > 0):
        raise InvalidInput(f"window_seconds={window_seconds} must be > 0, e.g. 86400 for a day")
    if not (isinstance(now, int | float) and math.isfinite(now)):
        raise InvalidInput(f"now={now!r} is not a finite time in Unix seconds")
    start = math.floor(now / window_seconds) * window_seconds
    if start + window_seconds <= now:  # float rounding at large multiples: keep now inside [start, end)
        start += window_seconds
    return float(start), float(start + window_seconds)


@dataclass(frozen=True)
class MonitorConfig:
    """How a check decides.

    Attributes:
        alpha: level for the corrected per-feature tests and the prediction-drift test.
        correction: multiple-testing correction across features (``bh``, ``holm``, ``bonferroni``, ``none``).
        psi_threshold: also flag a feature whose PSI exceeds this (None: PSI is reported only).
        min_rows: fewer rows in the window than this and no drift verdict is given (status
            ``insufficient_data``).
        min_labels: performance is computed once the window has at least this many labelled rows.
        max_rows: at most this many most recent rows are checked.
        task: ``classification`` (scores are positive-class probabilities) or ``regression``.
    """

    alpha: float = 0.05
    correction: stats.Correction = stats.Correction.BENJAMINI_HOCHBERG
    psi_threshold: float | None = None
    min_rows: int = 50
    min_labels: int = 50
    max_rows: int | None = 200_000
    task: str = "classification"

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise InvalidInput(f"alpha={self.alpha} must be in (0, 1), e.g. 0.05")
        object.__setattr__(self, "correction", _correction(self.correction))
        if self.task not in ("classification", "regression"):
            raise InvalidInput(f"task={self.task!r} is not known; use 'classification' or 'regression'")
        if self.min_rows < 1 or self.min_labels < 1:
            raise InvalidInput(f"min_rows={self.min_rows} and min_labels={self.min_labels} must be >= 1")


def _correction(value: Any) -> stats.Correction:
    try:
        return stats.Correction(value)
    except ValueError:
        allowed = ", ".join(item.value for item in stats.Correction)
        raise InvalidInput(f"correction={value!r} is not known; use one of {allowed}") from None


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one feature (or of the prediction score) in a window."""

    feature: str
    kind: str
    test: str
    rows: int
    statistic: float | None
    pvalue: float | None
    adjusted_pvalue: float | None
    psi: float | None
    drifted: bool


@dataclass(frozen=True)
class DriftReport:
    """Result of ``check_frame``: feature drift, prediction drift and data quality of one window."""

    rows: int
    features: dict[str, FeatureDrift]
    prediction: FeatureDrift | None
    quality: dict[str, Any]
    correction: str
    alpha: float

    @property
    def drifted_features(self) -> list[str]:
        return [name for name, item in self.features.items() if item.drifted]

    @property
    def drift_share(self) -> float:
        tested = [item for item in self.features.values() if item.pvalue is not None]
        return len([item for item in tested if item.drifted]) / len(tested) if tested else 0.0

    @property
    def max_psi(self) -> float:
        values = [item.psi for item in self.features.values() if item.psi is not None]
        return max(values, default=0.0)


@dataclass(frozen=True)
class MonitorResult:
    """A stored check: the drift report plus window, labels and performance."""

    model: str
    version: str
    checked_at: float
    window_start: float
    window_end: float
    status: str
    rows: int
    labelled_rows: int
    drift_share: float
    drifted_features: list[str]
    max_psi: float
    features: dict[str, dict[str, Any]]
    prediction: dict[str, Any] | None
    quality: dict[str, Any]
    performance: dict[str, Any] | None
    performance_over_time: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    estimated: dict[str, Any] | None = None
    estimated_at: float | None = None
    comparison: dict[str, dict[str, Any]] | None = None

    @property
    def prediction_drifted(self) -> bool:
        return bool(self.prediction and self.prediction.get("drifted"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MonitorResult:
        """Load a stored result; one written before a field existed loads with that field's default, and
        keys this version does not know are ignored (a newer writer)."""
        known = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def metrics(self) -> dict[str, float]:
        """Flat numeric metrics (for MLflow and Prometheus); missing values are left out."""
        values: dict[str, float | None] = {
            "drift_share": self.drift_share,
            "drifted_features": float(len(self.drifted_features)),
            "max_psi": self.max_psi,
            "window_rows": float(self.rows),
            "labelled_rows": float(self.labelled_rows),
            "missing_rate": self.quality.get("missing_rate"),
            "out_of_range_rate": self.quality.get("out_of_range_rate"),
            "unseen_category_rate": self.quality.get("unseen_rate"),
            "prediction_drift_statistic": (self.prediction or {}).get("statistic"),
        }
        for name, value in (self.performance or {}).items():
            if name != "rows":
                values[name] = value
        if self.estimated:
            values.update(PerformanceEstimate.from_dict(self.estimated).to_metrics())
        return {
            name: float(value)
            for name, value in values.items()
            if value is not None and isinstance(value, int | float) and math.isfinite(value)
        }


def _numeric_column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def check_frame(
    frame: pd.DataFrame,
    profile: ReferenceProfile,
    config: MonitorConfig | None = None,
    *,
    scores: Sequence[float] | np.ndarray | None = None,
) -> DriftReport:
    """Feature drift, prediction drift and data quality of one window against the reference profile.

    Args:
        frame: the window's feature columns (extra columns are ignored; absent ones count as missing).
        profile: the model version's reference profile.
        config: decision settings (defaults: BH at 0.05).
        scores: the model's scores per row (positive-class probability), for prediction drift.
    """
    config = config or MonitorConfig()
    numeric_names = list(profile.numeric)
    features: dict[str, FeatureDrift] = {}
    raw: dict[str, tuple[str, str, int, float | None, float | None, float | None]] = {}

    numeric_counts: dict[str, tuple[int, int]] = {}
    if numeric_names:
        # One sort of the window serves KS, PSI bins and the range check (all binary searches on it).
        columns = np.vstack([_numeric_column(frame, name) for name in numeric_names])
        ordered = np.sort(columns, axis=1)  # NaN sorts last: each row's valid prefix is a slice
        valid_counts = columns.shape[1] - np.isnan(columns).sum(axis=1)
        statistics = np.full(len(numeric_names), np.nan)
        psis: list[float | None] = []
        for index, name in enumerate(numeric_names):
            reference = profile.numeric[name]
            values = ordered[index, : int(valid_counts[index])]
            if not len(values):
                psis.append(None)
                numeric_counts[name] = (0, 0)
                continue
            statistics[index] = stats.ks_statistic_presorted(
                reference.sample,
                values,
                reference_ranks=_reference_ranks(profile, name),
                current_is_sorted=True,
            )
            counts = stats.bin_counts_sorted(values, reference.bin_edges)
            psis.append(stats.psi(reference.bin_proportions, counts / len(values)))
            below = int(np.searchsorted(values, reference.minimum, side="left"))
            above = len(values) - int(np.searchsorted(values, reference.maximum, side="right"))
            numeric_counts[name] = (len(values), below + above)
        pvalues = np.full(len(numeric_names), np.nan)
        usable = ~np.isnan(statistics)
        if usable.any():
            sizes = np.array([len(profile.numeric[name].sample) for name in numeric_names], dtype=np.float64)
            pvalues[usable] = stats.ks_pvalue(statistics[usable], sizes[usable], valid_counts[usable])
        for index, name in enumerate(numeric_names):
            statistic = None if np.isnan(statistics[index]) else float(statistics[index])
            pvalue = None if np.isnan(pvalues[index]) else float(pvalues[index])
            raw[name] = ("numeric", "ks", int(valid_counts[index]), statistic, pvalue, psis[index])

    for name, reference in profile.categorical.items():
        if name not in frame.columns:
            raw[name] = ("categorical", "chi2", 0, None, None, None)
            continue
        strings, _ = category_strings(frame[name])
        if len(strings) == 0:
            raw[name] = ("categorical", "chi2", 0, None, None, None)
            continue
        index_of = {category: position for position, category in enumerate(reference.categories)}
        other = len(reference.categories)
        positions = np.fromiter(
            (index_of.get(value, other) for value in strings), dtype=np.int64, count=len(strings)
        )
        counts = np.bincount(positions, minlength=other + 1).astype(np.float64)
        expected = stats.smooth_proportions(reference.proportions)
        result = stats.chi_square(counts, expected)
        # Two-sample variance correction (see the module docstring).
        scaled = result.statistic / (1.0 + len(strings) / max(reference.count, 1))
        pvalue = float(special.chdtrc(len(counts) - 1, scaled))
        psi = stats.psi(reference.proportions, counts / counts.sum())
        raw[name] = ("categorical", "chi2", len(strings), scaled, pvalue, psi)

    names = list(raw)
    pvalues_all = np.array([np.nan if raw[name][4] is None else raw[name][4] for name in names])
    adjusted = stats.adjust_pvalues(pvalues_all, config.correction)
    for position, name in enumerate(names):
        kind, test, rows, statistic, pvalue, psi = raw[name]
        adjusted_value = None if np.isnan(adjusted[position]) else float(adjusted[position])
        enough = rows >= config.min_rows
        drifted = bool(enough and adjusted_value is not None and adjusted_value < config.alpha)
        if enough and config.psi_threshold is not None and psi is not None and psi > config.psi_threshold:
            drifted = True
        features[name] = FeatureDrift(name, kind, test, rows, statistic, pvalue, adjusted_value, psi, drifted)

    prediction = None
    if scores is not None and profile.prediction is not None:
        values = np.asarray(scores, dtype=np.float64)
        values = values[~np.isnan(values)]
        if len(values):
            result = stats.ks_presorted(profile.prediction.sample, values)
            counts = stats.bin_counts(values, profile.prediction.bin_edges)
            psi = stats.psi(profile.prediction.bin_proportions, counts / counts.sum())
            prediction = FeatureDrift(
                "prediction",
                "score",
                "ks",
                len(values),
                result.statistic,
                result.pvalue,
                result.pvalue,
                psi,
                bool(len(values) >= config.min_rows and result.pvalue < config.alpha),
            )

    return DriftReport(
        rows=len(frame),
        features=features,
        prediction=prediction,
        quality=check_quality(frame, profile, numeric_counts=numeric_counts).to_dict(),
        correction=config.correction.value,
        alpha=config.alpha,
    )


_RANKS_CACHE: dict[tuple[int, str], tuple[np.ndarray, np.ndarray]] = {}


def _reference_ranks(profile: ReferenceProfile, name: str) -> np.ndarray:
    # The reference ECDF at its own points is the same for every check of a profile: compute it once.
    sample = profile.numeric[name].sample
    key = (id(profile), name)
    cached = _RANKS_CACHE.get(key)
    if cached is not None and cached[0] is sample:
        return cached[1]
    ranks = stats.reference_ecdf_at_self(sample)
    if len(_RANKS_CACHE) > 4096:
        _RANKS_CACHE.clear()
    _RANKS_CACHE[key] = (sample, ranks)
    return ranks


def _scored_labels(labelled: pd.DataFrame, config: MonitorConfig) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores) of the labelled rows that can be scored (classification: scores clipped to [0, 1])."""
    labels = pd.to_numeric(labelled[LABEL_COLUMN], errors="coerce").to_numpy(dtype=np.float64)
    scores = labelled[SCORE_COLUMN].to_numpy(dtype=np.float64)
    usable = ~np.isnan(labels) & ~np.isnan(scores)
    if config.task != "regression":
        # A label outside {0, 1} cannot be scored; one bad label must not blind the whole window.
        invalid = usable & ~np.isin(labels, (0.0, 1.0))
        if invalid.any():
            logger.warning("ignoring %d labelled rows whose label is not 0 or 1", int(invalid.sum()))
            usable &= ~invalid
        return labels[usable], np.clip(scores[usable], 0.0, 1.0)
    return labels[usable], scores[usable]


def _performance(labelled: pd.DataFrame, config: MonitorConfig) -> dict[str, Any] | None:
    labels, scores = _scored_labels(labelled, config)
    if len(labels) < config.min_labels:
        return None
    if config.task == "regression":
        return regressor_metrics(labels, scores).to_dict()
    return classifier_metrics(labels, scores).to_dict()


_ESTIMATOR_CACHE: dict[int, tuple[Any, PerformanceEstimator]] = {}


def performance_estimator(profile: ReferenceProfile) -> PerformanceEstimator | None:
    """The estimator the profile carries under ``estimate.METADATA_KEY`` (None: it carries none).

    Raises:
        InvalidInput: the metadata holds something that is not an estimator (``from_dict`` names the field).
    """
    data = profile.metadata.get(METADATA_KEY)
    if data is None:
        return None
    if isinstance(data, str):  # a profile may keep it as the estimator's JSON text
        data = json.loads(data)
    cached = _ESTIMATOR_CACHE.get(id(profile))
    if cached is not None and cached[0] is profile.metadata.get(METADATA_KEY):
        return cached[1]
    estimator = PerformanceEstimator.from_dict(data)
    if len(_ESTIMATOR_CACHE) > 1024:
        _ESTIMATOR_CACHE.clear()
    _ESTIMATOR_CACHE[id(profile)] = (profile.metadata.get(METADATA_KEY), estimator)
    return estimator


def _estimate_window(
    window: pd.DataFrame, profile: ReferenceProfile, config: MonitorConfig
) -> dict[str, Any] | None:
    """The window's estimated performance from its scores alone (None when it cannot be estimated)."""
    if config.task != "classification" or not len(window):
        return None
    try:
        estimator = performance_estimator(profile)
    except (InvalidInput, ValueError) as error:
        # A broken estimator must not hide the drift verdict: the check goes on without an estimate.
        logger.error("reference profile's %s is unusable, no estimate: %s", METADATA_KEY, error)
        return None
    if estimator is None:
        return None
    scores = window[SCORE_COLUMN].to_numpy(dtype=np.float64)
    scores = scores[~np.isnan(scores)]
    if len(scores) < config.min_rows:
        return None
    outside = (scores < 0.0) | (scores > 1.0)
    if outside.any():
        logger.warning(
            "%d scores are not probabilities in [0, 1]; no estimate for this window", int(outside.sum())
        )
        return None
    return estimator.estimate(scores).to_dict()


def _comparison(
    estimated: dict[str, Any] | None, labelled: pd.DataFrame, config: MonitorConfig
) -> dict[str, dict[str, Any]] | None:
    """Each estimated metric beside its realised value (metric -> ``MetricComparison.to_dict()``)."""
    if not estimated or config.task != "classification" or not len(labelled):
        return None
    labels, scores = _scored_labels(labelled, config)
    if len(labels) < config.min_labels:
        return None
    estimate = PerformanceEstimate.from_dict(estimated)
    return {
        item.metric: item.to_dict()
        for item in compare_with_realised(estimate, labels, scores, labelled_subset=True)
    }


def run_check(
    store: MonitorStore,
    model: str,
    version: str | None,
    reference_profile: ReferenceProfile,
    *,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
    config: MonitorConfig | None = None,
    now: float | None = None,
    save: bool = True,
    cache: WindowCache | None = None,
) -> MonitorResult:
    """Check the aligned window holding ``now`` of a model version and store its result.

    Args:
        store: the monitor store (ingest the prediction log first).
        model: registered model name.
        version: model version; None means the version with the most recent predictions.
        reference_profile: the version's reference profile (with a ``PerformanceEstimator`` under
            ``estimate.METADATA_KEY`` in its metadata for estimated performance).
        window_seconds: window length in event time; windows are ``[k * W, (k + 1) * W)``.
        config: decision settings.
        now: event time of the check (default: the model's event clock, ``store.event_clock``); the
            result's ``checked_at``.
        save: store the result (replacing the window's earlier result).
        cache: keep the window decoded across checks and read only its new rows and labels (the
            monitor's rounds; ``window_cache.py``); None reads the whole window.

    Raises:
        InvalidInput: no predictions were ever ingested for the model, or the window length is not positive.
    """
    config = config or MonitorConfig(task=str(reference_profile.metadata.get("task", "classification")))
    if now is None:
        now = store.event_clock(model)
    now = time.time() if now is None else now
    start, end = window_bounds(now, window_seconds)
    if version is None:
        versions = store.versions(model)
        if not versions:
            raise InvalidInput(
                f"model {model!r} has no ingested predictions; serve it and ingest the prediction log first"
            )
        version = versions[-1]
    if cache is not None:
        window = cache.window(store, model, str(version), start=start, end=end, limit=config.max_rows)
    else:
        window = store.window(model, version, start=start, end=end, limit=config.max_rows)
    scores = window[SCORE_COLUMN].to_numpy() if SCORE_COLUMN in window.columns else None
    report = check_frame(window, reference_profile, config, scores=scores)
    labelled = window[window[LABEL_COLUMN].notna()] if len(window) else window
    performance = _performance(labelled, config) if len(labelled) else None
    status = "ok" if len(window) >= config.min_rows else "insufficient_data"
    estimated, estimated_at = _kept_or_new_estimate(
        store.result_for(model, str(version), start), window, reference_profile, config, now
    )
    result = MonitorResult(
        model=model,
        version=str(version),
        checked_at=now,
        window_start=start,
        window_end=end,
        status=status,
        rows=len(window),
        labelled_rows=len(labelled),
        drift_share=report.drift_share,
        drifted_features=report.drifted_features,
        max_psi=report.max_psi,
        features={name: asdict(item) for name, item in report.features.items()},
        prediction=None if report.prediction is None else asdict(report.prediction),
        quality=report.quality,
        performance=performance,
        performance_over_time=_performance_over_time(window, config),
        config={
            "alpha": config.alpha,
            "correction": config.correction.value,
            "psi_threshold": config.psi_threshold,
            "min_rows": config.min_rows,
            "min_labels": config.min_labels,
            "max_rows": config.max_rows,
            "task": config.task,
            "window_seconds": window_seconds,
        },
        estimated=estimated,
        estimated_at=estimated_at,
        comparison=_comparison(estimated, labelled, config),
    )
    if save:
        store.save_result(
            model, str(version), checked_at=now, window_start=start, window_end=end, result=result.to_dict()
        )
    logger.info(
        "check %s v%s window %s: %d rows, %d labelled, drift share %.2f (%s)",
        model,
        version,
        start,
        result.rows,
        result.labelled_rows,
        result.drift_share,
        ", ".join(result.drifted_features) or "no drifted feature",
    )
    return result


def _scored_rows(window: pd.DataFrame) -> int:
    if not len(window):
        return 0
    return int(np.count_nonzero(~np.isnan(window[SCORE_COLUMN].to_numpy(dtype=np.float64))))


def _kept_or_new_estimate(
    stored: dict[str, Any] | None,
    window: pd.DataFrame,
    profile: ReferenceProfile,
    config: MonitorConfig,
    now: float,
) -> tuple[dict[str, Any] | None, float | None]:
    """The window's stored estimate when it covered the same rows, else a new one from the scores.

    Labels play no part either way: a window re-checked after its labels arrived keeps the estimate it had
    before them (the same rows give the same estimate; keeping it also spares the band's draws).
    """
    previous = (stored or {}).get("estimated")
    if previous and int(previous.get("rows", -1)) == _scored_rows(window):
        return previous, stored.get("estimated_at") if stored else None
    estimated = _estimate_window(window, profile, config)
    return estimated, (now if estimated is not None else None)


def refresh_realised(
    store: MonitorStore,
    model: str,
    version: str,
    *,
    now: float,
    lookback_seconds: float,
    min_labels: int,
    profile: ReferenceProfile | None = None,
    cache: WindowCache | None = None,
) -> list[MonitorResult]:
    """Realised performance for the stored windows of a version that gained labels since they were checked.

    For each stored window of ``version`` ending after ``now - lookback_seconds`` whose labelled rows changed
    (or that has no realised performance yet and now has enough labels), recompute ``performance`` and
    ``labelled_rows`` from the labels in the store and put ``comparison`` (the estimate beside the realised
    value, ``estimate.compare_with_realised`` on the labelled rows) next to the window's ``estimated``. The
    estimate is not touched, so what was known before the labels stays on record. The drift verdict and
    ``checked_at`` stay those of the window's last check.

    Args:
        store: the monitor store.
        model: the model.
        version: the version whose windows are refreshed.
        now: event time of the refresh (e.g. ``store.event_clock(model)``).
        lookback_seconds: how far back (event time) windows are refreshed.
        min_labels: realised performance needs at least this many labelled rows in the window.
        profile: the version's reference profile; only used when rows arrived after the window's last
            check (its estimate then covered fewer rows than now carry labels): the estimate is remade from
            the window's scores, never its labels. Without it such a window gets no comparison.
        cache: the round's window cache: a window it holds (the one just checked) is counted and read
            from it instead of the store.

    Returns:
        The results that changed, as stored.

    Raises:
        InvalidInput: ``lookback_seconds`` negative or ``min_labels`` below 1.
    """
    if not (math.isfinite(lookback_seconds) and lookback_seconds >= 0):
        raise InvalidInput(f"lookback_seconds={lookback_seconds!r} must be >= 0, e.g. 604800 for a week")
    if min_labels < 1:
        raise InvalidInput(f"min_labels={min_labels} must be >= 1")
    changed: list[MonitorResult] = []
    for stored in store.results(model, version=version, windows_ending_after=now - lookback_seconds):
        result = MonitorResult.from_dict(stored)
        span = {"since": result.window_start, "until": result.window_end}
        bounds = {"start": result.window_start, "end": result.window_end}
        held = None if cache is None else cache.counts(model, version, **bounds)
        labels_now = held.labelled if held is not None else store.label_count(model, version, **span)
        gained = labels_now != result.labelled_rows
        max_rows = result.config.get("max_rows", MonitorConfig.max_rows)
        rows_now = held.rows if held is not None else store.prediction_count(model, version, **span)
        rows_now = rows_now if max_rows is None else min(rows_now, int(max_rows))
        # With the profile, a window whose estimate covers fewer rows than it has now is estimated again.
        covered_rows = result.estimated["rows"] if result.estimated else result.rows
        stale = profile is not None and covered_rows != rows_now
        if not gained and not stale and (result.performance is not None or labels_now < min_labels):
            continue
        task = str(result.config.get("task", "classification"))
        config = MonitorConfig(
            min_labels=min_labels,
            min_rows=int(result.config.get("min_rows", MonitorConfig.min_rows)),
            max_rows=None if max_rows is None else int(max_rows),
            task=task,
        )
        if held is not None:
            window = cache.window(store, model, version, **bounds, limit=config.max_rows)  # type: ignore[union-attr]
        else:
            window = store.window(model, version, **bounds, limit=config.max_rows)
        labelled = window[window[LABEL_COLUMN].notna()] if len(window) else window
        estimated, estimated_at = result.estimated, result.estimated_at
        covered = estimated is not None and int(estimated.get("rows", -1)) == _scored_rows(window)
        if not covered and profile is not None:
            # Rows came in after the window's last check: its estimate (if any) covered part of the window.
            # The new one is made from the scores, as at a check; the labels play no part.
            remade = _estimate_window(window, profile, config)
            if remade is not None:
                estimated, estimated_at, covered = remade, now, True
        updated = replace(
            result,
            labelled_rows=len(labelled),
            performance=_performance(labelled, config) if len(labelled) else None,
            performance_over_time=_performance_over_time(window, config),
            estimated=estimated,
            estimated_at=estimated_at,
            comparison=_comparison(estimated, labelled, config) if covered else None,
        )
        if updated == result:
            continue
        store.save_result(
            model,
            version,
            checked_at=result.checked_at,
            window_start=result.window_start,
            window_end=result.window_end,
            result=updated.to_dict(),
        )
        changed.append(updated)
    return changed


def _performance_over_time(window: pd.DataFrame, config: MonitorConfig, buckets: int = 8) -> list[dict]:
    """Performance per time slice of the window (for the report), skipping slices with too few labels.

    The labels and scores are taken out of the frame once and sliced as arrays: slicing the frame per
    slice copied every feature column eight times a check, which a 1,000-model round paid in full.
    """
    if not len(window) or config.task != "classification":
        return []
    labelled = window[window[LABEL_COLUMN].notna()]
    if len(labelled) < config.min_labels:
        return []
    times = labelled[TIMESTAMP_COLUMN].to_numpy()
    labels = pd.to_numeric(labelled[LABEL_COLUMN], errors="coerce").to_numpy(dtype=np.float64)
    scores = labelled[SCORE_COLUMN].to_numpy(dtype=np.float64)
    known = ~np.isnan(labels) & ~np.isnan(scores)
    usable = known & np.isin(labels, (0.0, 1.0))
    if (known & ~usable).any():
        logger.warning("ignoring %d labelled rows whose label is not 0 or 1", int((known & ~usable).sum()))
    minimum = max(10, config.min_labels // buckets)
    # nextafter, not + 1e-9: at Unix-time magnitudes t + 1e-9 == t, which dropped the newest rows.
    edges = np.linspace(times.min(), np.nextafter(times.max(), np.inf), buckets + 1)
    slices = []
    for left, right in zip(edges[:-1], edges[1:], strict=True):
        inside = usable & (times >= left) & (times < right)
        if int(inside.sum()) < minimum:
            continue
        metrics = classifier_metrics(labels[inside], np.clip(scores[inside], 0.0, 1.0)).to_dict()
        slices.append({"start": float(left), "end": float(right), **metrics})
    return slices
