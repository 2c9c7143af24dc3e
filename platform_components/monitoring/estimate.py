"""Estimated classifier performance before the labels arrive, from the model's own calibrated scores.

Confidence-based performance estimation in the manner of NannyML's CBPE (NannyML/nannyml
docs/how_it_works/performance_estimation.rst@v0.13.1; the method, not the code): once a model's scores are
calibrated probabilities ``p_i = P(y_i = 1 | score_i)``, every label of a window is a Bernoulli(``p_i``)
draw, so the expected confusion matrix at any threshold follows from sums of ``p_i`` and ``1 - p_i``.

Calibration maps score to ``P(y=1)`` and is fitted on the reference holdout, kept as plain floats (so it
travels with the model's reference profile):

- isotonic regression (scikit-learn's ``IsotonicRegression``, what CBPE uses), kept as its knots and
  applied by linear interpolation exactly as scikit-learn predicts. Isotonic rather than histogram binning
  because it is monotone with no bin count to choose and follows the score wherever the holdout has rows
  (fixed bins are coarse in the tails, which is where covariate shift moves the scores);
- Platt scaling on the logit (two parameters) for small references: isotonic overfits a few hundred rows,
  and its bootstrap then under-states its error (``choose_method`` has the numbers).

``method="auto"`` picks isotonic once each class has ``ISOTONIC_MIN_ROWS_PER_CLASS`` rows. A map is always
fitted: keeping raw scores that "look calibrated" is how an over-confident model gets an optimistic
estimate.

For a window of scores without labels, ``PerformanceEstimator.estimate`` returns:

- expected accuracy at the model's threshold: the mean of ``p_i`` where the model says 1 and ``1 - p_i``
  where it says 0;
- expected ROC AUC: the rows ranked by the model's own score (the ranking the realised AUC measures),
  ``E[concordant pairs] / E[positive-negative pairs]`` with ties counted half; this is the area under the
  curve of expected TPR against expected FPR, each cumulated from sums of ``p_i`` and ``1 - p_i`` over the
  rows above each threshold, without the ``i = j`` pairs a single row cannot form;
- a band around each at ``band_level``: the spread of the realised value the window would show, made of
  the labels' sampling spread at the window's own size and score mix (labels drawn from the calibrated
  probabilities) and the calibration's own uncertainty (the spread of the estimate over the bootstrap
  refits on the reference). By default the band is the normal approximation of both parts in closed form
  (``_normal_band``: the accuracy's Bernoulli variance, DeLong's placement variance for the AUC with the
  rows weighted by their probabilities): a 10,000-row window costs a few milliseconds instead of the
  ~70 ms of simulating 200 label draws, which a 1,000-model round cannot pay. ``estimate(draws=N)``
  still simulates (each draw's map a bootstrap refit); the tests show both bands agree;
- ``outside_reference_share``: the window's share of scores outside the reference's central 99 % (about
  0.01 on an unchanged window). The estimate assumes the reference covered the window's inputs; a large
  share says it is extrapolating.

Both estimates are corrected by the bootstrap's estimate of their bias (``_map_estimates``).

The estimate is only as good as its assumption (``ASSUMPTION``): see that constant, print it in reports.
Everything here is pure: no I/O, deterministic for the same inputs (the band's draws are seeded).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, logit, ndtri
from sklearn.isotonic import IsotonicRegression

from platform_components.monitoring.errors import InvalidInput
from platform_components.monitoring.performance import classifier_metrics, roc_auc

ASSUMPTION = (
    "Estimated performance comes from the model's own scores, calibrated on the reference holdout. It is "
    "valid under covariate shift: the inputs P(x) may change as long as the relation P(y|x) stays as it was "
    "on the reference and the inputs stay in regions the reference covered. It is blind to concept shift "
    "(P(y|x) changes) and to label-prior shift (P(y) changes while P(x|y) stays): then the realised "
    "performance moves while the estimate stays where the scores put it, so only labels can show it."
)
SCHEMA_VERSION = 1
CALIBRATION_METHODS: tuple[str, ...] = ("auto", "isotonic", "logistic")
# With fewer rows of either class than this, ``auto`` calibrates with Platt scaling (see choose_method).
ISOTONIC_MIN_ROWS_PER_CLASS = 500
_LOGIT_EPSILON = 1e-9
# Where the estimator travels in the reference profile's metadata (ReferenceProfile.metadata[...]).
METADATA_KEY = "performance_estimator"
ESTIMATED_METRICS: tuple[str, ...] = ("accuracy", "roc_auc")
DEFAULT_THRESHOLD = 0.5
DEFAULT_BAND_LEVEL = 0.90
DEFAULT_BOOTSTRAP_MAPS = 20
DEFAULT_BAND_DRAWS = 200
# Fewer rows of a class than this and the isotonic map is a handful of steps (and a bootstrap resample
# may miss the class altogether).
MIN_ROWS_PER_CLASS = 10
# Draws are made in batches of about this many cells so a 100k-row window needs tens of MB, not GB.
_DRAW_BATCH_CELLS = 2_000_000


def _score_array(values: Any, field: str, fix: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput(f"{field}: not numbers; {fix}") from None
    if array.ndim != 1:
        raise InvalidInput(f"{field}: shape {array.shape}, expected one score per row; {fix}")
    if len(array) == 0:
        raise InvalidInput(f"{field}: empty (0 rows); {fix}")
    outside = ~np.isfinite(array) | (array < 0.0) | (array > 1.0)
    if outside.any():
        examples = array[outside][:3].tolist()
        raise InvalidInput(
            f"{field}: {int(outside.sum())} values are not probabilities in [0, 1] (e.g. {examples}); {fix}"
        )
    return array


_SCORES_FIX = "pass the positive-class probability (predict_proba[:, 1]) per row"


@dataclass(frozen=True)
class IsotonicMap:
    """A monotone map from the model's score to P(y=1), as isotonic regression's knots.

    Attributes:
        scores: knot positions, strictly increasing model scores.
        probabilities: P(y=1) at each knot, non-decreasing, in [0, 1].
    """

    scores: np.ndarray
    probabilities: np.ndarray
    kind = "isotonic"

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities: linear between knots, the end values beyond them.

        This is what ``IsotonicRegression(out_of_bounds="clip").predict`` computes from the same knots
        (scikit-learn/scikit-learn sklearn/isotonic.py@1.9.1: clip to the fitted range, then ``interp1d``).
        """
        return np.interp(scores, self.scores, self.probabilities)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "scores": self.scores.tolist(),
            "probabilities": self.probabilities.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IsotonicMap:
        scores = np.asarray(data["scores"], dtype=np.float64)
        probabilities = np.asarray(data["probabilities"], dtype=np.float64)
        if scores.ndim != 1 or scores.shape != probabilities.shape or len(scores) == 0:
            raise InvalidInput(
                "performance estimator: calibration needs as many probabilities as scores (at least one); "
                "refit it with fit_estimator"
            )
        if (np.diff(scores) <= 0).any() or (np.diff(probabilities) < 0).any():
            raise InvalidInput(
                "performance estimator: calibration knots are not increasing; refit it with fit_estimator"
            )
        return cls(scores=scores, probabilities=probabilities)


@dataclass(frozen=True)
class LogisticMap:
    """Platt scaling on the logit: ``P(y=1) = sigmoid(slope * logit(score) + intercept)``.

    Attributes:
        slope: below 1 for an over-confident model, above 1 for an under-confident one.
        intercept: shifts every probability (a wrong base rate).
    """

    slope: float
    intercept: float
    kind = "logistic"

    def apply(self, scores: np.ndarray) -> np.ndarray:
        clipped = np.clip(scores, _LOGIT_EPSILON, 1.0 - _LOGIT_EPSILON)
        return expit(self.slope * logit(clipped) + self.intercept)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "slope": self.slope, "intercept": self.intercept}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogisticMap:
        slope, intercept = float(data["slope"]), float(data["intercept"])
        if not (math.isfinite(slope) and math.isfinite(intercept) and slope >= 0):
            raise InvalidInput(
                f"performance estimator: logistic calibration slope={slope!r}, intercept={intercept!r} "
                "must be finite with slope >= 0; refit it with fit_estimator"
            )
        return cls(slope=slope, intercept=intercept)


CalibrationMap = IsotonicMap | LogisticMap
_MAP_KINDS: dict[str, type[IsotonicMap] | type[LogisticMap]] = {
    IsotonicMap.kind: IsotonicMap,
    LogisticMap.kind: LogisticMap,
}


def calibration_from_dict(data: Mapping[str, Any]) -> CalibrationMap:
    """The map ``to_dict`` described (``kind`` says which)."""
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if kind not in _MAP_KINDS:
        raise InvalidInput(
            f"performance estimator: calibration kind={kind!r} is unknown (use one of "
            f"{', '.join(_MAP_KINDS)}); refit it with fit_estimator"
        )
    return _MAP_KINDS[kind].from_dict(data)


def fit_isotonic(labels: np.ndarray, scores: np.ndarray) -> IsotonicMap:
    """Isotonic regression of the labels on the scores, kept as knots (see ``IsotonicMap``)."""
    regression = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    regression.fit(scores, labels)
    return IsotonicMap(
        scores=np.asarray(regression.X_thresholds_, dtype=np.float64),
        probabilities=np.clip(np.asarray(regression.y_thresholds_, dtype=np.float64), 0.0, 1.0),
    )


def fit_logistic(labels: np.ndarray, scores: np.ndarray) -> LogisticMap:
    """Platt scaling: a logistic regression of the labels on the logit of the scores (see ``LogisticMap``).

    Newton's method on the two parameters rather than scikit-learn's ``LogisticRegression``: the same
    maximum-likelihood fit, but each bootstrap refit costs a few vector operations instead of a solver's
    set-up (20 refits took 0.4 s with the solver). A tiny ridge keeps a separable reference finite.
    """
    features = np.column_stack(
        [np.ones(len(scores)), logit(np.clip(scores, _LOGIT_EPSILON, 1.0 - _LOGIT_EPSILON))]
    )
    ridge = 1e-6 * len(scores) * np.eye(2)

    def objective(candidate: np.ndarray) -> float:
        """Penalised log-likelihood (logaddexp keeps it finite for extreme logits)."""
        linear = features @ candidate
        return float(
            np.sum(labels * linear - np.logaddexp(0.0, linear)) - 0.5 * candidate @ ridge @ candidate
        )

    # From the base rate (slope 0) rather than the identity: an over-confident model's logits reach +-20,
    # where the identity's Hessian is nearly singular and a full Newton step overshoots by orders of
    # magnitude. Step-halving keeps every step an improvement.
    base_rate = float(np.clip(labels.mean(), 1e-6, 1.0 - 1e-6))
    weights = np.array([math.log(base_rate / (1.0 - base_rate)), 0.0])
    current = objective(weights)
    for _ in range(100):
        probabilities = expit(features @ weights)
        gradient = features.T @ (labels - probabilities) - ridge @ weights
        hessian = (features * (probabilities * (1.0 - probabilities))[:, None]).T @ features + ridge
        step = np.linalg.solve(hessian, gradient)
        for _ in range(30):
            candidate = weights + step
            value = objective(candidate)
            if value >= current:
                break
            step = step / 2.0
        else:
            break  # no improving step left: at the optimum to numerical precision
        weights, current = candidate, value
        if np.max(np.abs(step)) < 1e-10:
            break
    return LogisticMap(slope=max(0.0, float(weights[1])), intercept=float(weights[0]))


def fit_calibration(labels: np.ndarray, scores: np.ndarray, method: str) -> CalibrationMap:
    """Fit the map of ``method`` (``isotonic`` or ``logistic``; ``auto`` is resolved by the caller)."""
    return fit_isotonic(labels, scores) if method == IsotonicMap.kind else fit_logistic(labels, scores)


def choose_method(positives: int, negatives: int) -> str:
    """``auto``: isotonic once each class has ``ISOTONIC_MIN_ROWS_PER_CLASS`` rows, Platt scaling below.

    Isotonic regression needs rows: on small calibration sets it overfits and Platt scaling calibrates
    better (Niculescu-Mizil and Caruana, "Predicting good probabilities with supervised learning", ICML
    2005). For this estimator the cost shows in the band too: the bootstrap under-states an isotonic map's
    error where a covariate shift moves the window into the sparser part of a small reference (0.73
    coverage of a 0.9 band at 500 reference rows, tests' logistic world), while a two-parameter logistic
    map's bootstrap is regular. Above the threshold isotonic's freedom from a sigmoid shape wins.
    """
    return IsotonicMap.kind if min(positives, negatives) >= ISOTONIC_MIN_ROWS_PER_CLASS else LogisticMap.kind


@dataclass(frozen=True)
class _Ranking:
    """A window sorted by the model's score, with the groups of tied scores (for AUC with mid-ranks)."""

    order: np.ndarray
    group_starts: np.ndarray
    group_sizes: np.ndarray

    @classmethod
    def of(cls, scores: np.ndarray) -> _Ranking:
        order = np.argsort(scores, kind="stable")
        ordered = scores[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        sizes = np.diff(np.r_[starts, len(ordered)])
        return cls(order=order, group_starts=starts, group_sizes=sizes)


def _pair_auc(positives: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """Concordant pair mass from per-group positive and negative mass (groups ascending, last axis).

    A pair (positive above negative) counts 1, a tie counts one half: divided by positives x negatives,
    the Mann-Whitney statistic with mid-ranks, and for expected masses the area under expected TPR
    against expected FPR.
    """
    negatives_below = np.cumsum(negatives, axis=-1) - negatives
    return np.sum(positives * (negatives_below + 0.5 * negatives), axis=-1)


def _expected_auc(probabilities_sorted: np.ndarray, ranking: _Ranking) -> float | None:
    positives = np.add.reduceat(probabilities_sorted, ranking.group_starts)
    negatives = ranking.group_sizes - positives
    # The i = j terms: a row is never both the positive and the negative of a pair, so its own
    # p_i (1 - p_i) leaves the expected pair count and (as a tie) half of it leaves the concordant count.
    self_pairs = float(np.sum(probabilities_sorted * (1.0 - probabilities_sorted)))
    pairs = float(positives.sum() * negatives.sum()) - self_pairs
    if pairs <= 1e-12:
        return None
    concordant = float(_pair_auc(positives, negatives)) - 0.5 * self_pairs
    return min(1.0, max(0.0, concordant / pairs))


def _expected_accuracy(probabilities: np.ndarray, says_positive: np.ndarray) -> float:
    return float(np.mean(np.where(says_positive, probabilities, 1.0 - probabilities)))


def _clip_unit(value: float) -> float:
    return min(1.0, max(0.0, value))


@dataclass(frozen=True)
class MetricEstimate:
    """One estimated metric with its band.

    Attributes:
        value: the expected value under the calibrated probabilities.
        lower: lower end of the band at ``band_level`` (None when the draws could not compute it).
        upper: upper end of the band.
    """

    value: float
    lower: float | None
    upper: float | None

    def to_dict(self) -> dict[str, float | None]:
        return {"value": self.value, "lower": self.lower, "upper": self.upper}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricEstimate:
        def number(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        return cls(float(data["value"]), number("lower"), number("upper"))


def _corrected(value: float, bias: float, band: tuple[float, float] | None) -> MetricEstimate:
    """The estimate less its bootstrap bias; the band (centred on the bootstrap draws, so on
    ``value + bias``) moves by twice the bias so that it stays centred on the corrected estimate."""
    if band is None:
        return MetricEstimate(_clip_unit(value - bias), None, None)
    return MetricEstimate(
        _clip_unit(value - bias), _clip_unit(band[0] - 2.0 * bias), _clip_unit(band[1] - 2.0 * bias)
    )


@dataclass(frozen=True)
class PerformanceEstimate:
    """Estimated performance of one window of unlabelled scores.

    Attributes:
        rows: scores in the window.
        threshold: the model's decision threshold (``score >= threshold`` means 1) used for accuracy.
        accuracy: expected accuracy at ``threshold``.
        roc_auc: expected ROC AUC; None when the calibrated probabilities are all 0 or all 1 (one class
            expected) or the window has one row.
        positive_rate: expected share of positive labels (mean calibrated probability).
        outside_reference_share: share of the window's scores outside the reference's central 99 %; far
            above 0.01 means the window is where the reference had few rows and the estimate extrapolates.
        band_level: coverage the bands are built for (e.g. 0.9).
        assumption: when the estimate is valid (``ASSUMPTION``).
    """

    rows: int
    threshold: float
    accuracy: MetricEstimate
    roc_auc: MetricEstimate | None
    positive_rate: float
    outside_reference_share: float
    band_level: float
    assumption: str = ASSUMPTION

    def metric(self, name: str) -> MetricEstimate | None:
        """The estimate of ``name`` (one of ``ESTIMATED_METRICS``)."""
        if name not in ESTIMATED_METRICS:
            raise InvalidInput(f"metric={name!r} is not estimated; use one of {', '.join(ESTIMATED_METRICS)}")
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "threshold": self.threshold,
            "accuracy": self.accuracy.to_dict(),
            "roc_auc": None if self.roc_auc is None else self.roc_auc.to_dict(),
            "positive_rate": self.positive_rate,
            "outside_reference_share": self.outside_reference_share,
            "band_level": self.band_level,
            "assumption": self.assumption,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PerformanceEstimate:
        """Load what ``to_dict`` wrote (e.g. the estimate a monitor result stored for its window).

        Raises:
            InvalidInput: a field is missing or malformed.
        """
        try:
            roc = data.get("roc_auc")
            return cls(
                rows=int(data["rows"]),
                threshold=float(data["threshold"]),
                accuracy=MetricEstimate.from_dict(data["accuracy"]),
                roc_auc=None if roc is None else MetricEstimate.from_dict(roc),
                positive_rate=float(data["positive_rate"]),
                outside_reference_share=float(data["outside_reference_share"]),
                band_level=float(data["band_level"]),
                assumption=str(data.get("assumption", ASSUMPTION)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidInput(
                f"performance estimate: malformed ({error!r}); expected PerformanceEstimate.to_dict() output"
            ) from None

    def to_metrics(self) -> dict[str, float]:
        """Flat numeric values for export (Prometheus gauges, MLflow metrics); absent values are left out."""
        values: dict[str, float] = {
            "estimated_positive_rate": self.positive_rate,
            "estimated_rows": float(self.rows),
            "estimated_outside_reference_share": self.outside_reference_share,
        }
        for name in ESTIMATED_METRICS:
            estimate = self.metric(name)
            if estimate is None:
                continue
            values[f"estimated_{name}"] = estimate.value
            if estimate.lower is not None and estimate.upper is not None:
                values[f"estimated_{name}_lower"] = estimate.lower
                values[f"estimated_{name}_upper"] = estimate.upper
        return values


@dataclass(frozen=True)
class ReferenceSummary:
    """What the estimator saw on the reference holdout (for reports and the estimated-drop baseline).

    Attributes:
        rows: reference rows.
        positive_rate: share of positive labels.
        accuracy: realised accuracy at the threshold.
        roc_auc: realised ROC AUC.
        raw_ece: expected calibration error of the raw scores (how far from calibrated the model was).
        estimated_accuracy: the estimate on the reference scores (the like-for-like baseline).
        estimated_roc_auc: the estimate of ROC AUC on the reference scores.
        score_low: the reference scores' 0.5th percentile.
        score_high: their 99.5th percentile.
    """

    rows: int
    positive_rate: float
    accuracy: float
    roc_auc: float
    raw_ece: float
    estimated_accuracy: float
    estimated_roc_auc: float
    score_low: float
    score_high: float

    def to_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceSummary:
        return cls(
            rows=int(data["rows"]),
            positive_rate=float(data["positive_rate"]),
            accuracy=float(data["accuracy"]),
            roc_auc=float(data["roc_auc"]),
            raw_ece=float(data["raw_ece"]),
            estimated_accuracy=float(data["estimated_accuracy"]),
            estimated_roc_auc=float(data["estimated_roc_auc"]),
            score_low=float(data["score_low"]),
            score_high=float(data["score_high"]),
        )


@dataclass(frozen=True)
class PerformanceEstimator:
    """The fitted estimator: a calibration map, its bootstrap refits, and what the reference showed.

    Build with ``fit_estimator``; store with ``to_dict`` (JSON-able, e.g. under ``METADATA_KEY`` in the
    reference profile's metadata) and load with ``from_dict``.

    Attributes:
        calibration: the map fitted on the whole reference holdout.
        bootstrap: maps refitted on bootstrap resamples of the reference (the calibration's uncertainty).
        threshold: the model's decision threshold for accuracy.
        band_level: coverage of the bands (0 < level < 1).
        seed: seed of the band's draws (the same window always gets the same band).
        reference: what the reference holdout showed.
    """

    calibration: CalibrationMap
    bootstrap: tuple[CalibrationMap, ...]
    threshold: float
    band_level: float
    seed: int
    reference: ReferenceSummary

    def calibrate(self, scores: Sequence[float] | np.ndarray) -> np.ndarray:
        """Calibrated P(y=1) for each score."""
        return self.calibration.apply(_score_array(scores, "scores", _SCORES_FIX))

    def estimate(
        self, scores: Sequence[float] | np.ndarray, *, draws: int | None = None
    ) -> PerformanceEstimate:
        """Estimated accuracy and ROC AUC of a window of positive-class scores, with bands.

        Args:
            scores: the model's positive-class probability per row of the window (no labels needed).
            draws: None (default): the band in closed form (``_normal_band``); 0: no band, only the point
                estimates; N > 0: the band from N simulated label draws (e.g. ``DEFAULT_BAND_DRAWS``).

        Raises:
            InvalidInput: the window is empty, or a score is not a probability in [0, 1].
        """
        window = _score_array(scores, "scores", _SCORES_FIX + " for at least one row of the window")
        if draws is not None and draws < 0:
            raise InvalidInput(f"draws={draws} must be >= 0 (0 means no band, None the closed-form band)")
        probabilities = self.calibration.apply(window)
        ranking = _Ranking.of(window)
        ordered_scores = window[ranking.order]
        says_positive = ordered_scores >= self.threshold
        ordered = probabilities[ranking.order]
        auc = _expected_auc(ordered, ranking)
        accuracy = _expected_accuracy(ordered, says_positive)
        # One row of calibrated probabilities per bootstrap map (the full map alone when there are none).
        mapped = np.stack([item.apply(ordered_scores) for item in self.bootstrap or (self.calibration,)])
        map_accuracies, map_aucs = self._map_estimates(mapped, ranking, says_positive, auc)
        accuracy_bias = float(map_accuracies.mean()) - accuracy if self.bootstrap else 0.0
        auc_bias = (
            float(map_aucs.mean()) - auc if self.bootstrap and auc is not None and len(map_aucs) else 0.0
        )
        if draws is None:
            accuracy_band, auc_band = self._normal_band(
                ordered,
                ranking,
                says_positive,
                accuracy + accuracy_bias,
                map_accuracies,
                None if auc is None else auc + auc_bias,
                map_aucs,
            )
        else:
            accuracy_band, auc_band = self._bands(mapped, ranking, says_positive, draws)
        return PerformanceEstimate(
            rows=len(window),
            threshold=self.threshold,
            accuracy=_corrected(accuracy, accuracy_bias, accuracy_band),
            roc_auc=None if auc is None else _corrected(auc, auc_bias, auc_band),
            positive_rate=float(probabilities.mean()),
            outside_reference_share=float(
                np.mean((window < self.reference.score_low) | (window > self.reference.score_high))
            ),
            band_level=self.band_level,
        )

    def _map_estimates(
        self, mapped: np.ndarray, ranking: _Ranking, says_positive: np.ndarray, auc: float | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Expected accuracy and AUC under each bootstrap map (rows of ``mapped``; AUCs that exist).

        Their mean less the full map's estimate is Efron's bootstrap estimate of the bias. Isotonic
        regression on a finite holdout spreads its probabilities wider than the truth (its steps carry the
        holdout's label noise), so the expected AUC comes out high: in the tests' logistic world by +0.012
        at 800 reference rows and +0.005 at 4,000, about 0.7 of its sampling spread. Refits on bootstrap
        resamples overshoot the full fit by about as much again, so subtracting that overshoot halves the
        bias without widening the spread. Their spread is the calibration's part of the band.
        """
        accuracies = np.mean(np.where(says_positive, mapped, 1.0 - mapped), axis=1)
        if auc is None:
            return accuracies, np.empty(0)
        aucs = [value for row in mapped if (value := _expected_auc(row, ranking)) is not None]
        return accuracies, np.asarray(aucs, dtype=np.float64)

    def _normal_band(
        self,
        probabilities: np.ndarray,
        ranking: _Ranking,
        says_positive: np.ndarray,
        accuracy_centre: float,
        map_accuracies: np.ndarray,
        auc_centre: float | None,
        map_aucs: np.ndarray,
    ) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
        """The band in closed form: centre +- z sqrt(labels' variance + calibration's variance).

        ``probabilities`` are the full map's, in ``ranking`` order. The centres are the bootstrap maps'
        mean estimates, as the simulated band's draws are centred (``_corrected`` moves both the same way).

        - Accuracy: each row is right with probability ``q_i`` (``p_i`` where the model says 1, else
          ``1 - p_i``), independently, so the realised accuracy's variance is ``sum q_i (1 - q_i) / n^2``.
        - AUC: DeLong's variance ``S10 / P + S01 / N`` (DeLong, DeLong and Clarke-Pearson 1988) with each
          row a positive of weight ``p_i`` and a negative of weight ``1 - p_i``: a positive's placement is
          the expected share of negatives ranked below it (ties half), a negative's the expected share of
          positives above it, and ``S10``, ``S01`` their weighted variances about the AUC.
        - Calibration: the variance of the estimate over the bootstrap refits (none without refits).
        """
        z = float(ndtri(0.5 + self.band_level / 2.0))
        rows = len(probabilities)
        right = np.where(says_positive, probabilities, 1.0 - probabilities)
        accuracy_variance = float(np.sum(right * (1.0 - right))) / rows**2
        if len(map_accuracies) > 1:
            accuracy_variance += float(np.var(map_accuracies, ddof=1))
        spread = z * math.sqrt(accuracy_variance)
        accuracy_band = (accuracy_centre - spread, accuracy_centre + spread)
        if auc_centre is None:
            return accuracy_band, None
        positives_in = np.add.reduceat(probabilities, ranking.group_starts)
        negatives_in = ranking.group_sizes - positives_in
        positive_mass, negative_mass = float(positives_in.sum()), float(negatives_in.sum())
        if positive_mass <= 1.0 or negative_mass <= 1.0:
            return accuracy_band, None  # fewer than one expected row of a class: the AUC has no spread
        group_of_row = np.repeat(np.arange(len(ranking.group_starts)), ranking.group_sizes)
        negatives_below = (np.cumsum(negatives_in) - negatives_in)[group_of_row]
        positives_above = (positive_mass - np.cumsum(positives_in))[group_of_row]
        # A row is never its own pair: its own mass leaves the tied half.
        tied_negatives = negatives_in[group_of_row] - (1.0 - probabilities)
        tied_positives = positives_in[group_of_row] - probabilities
        placement_positive = (negatives_below + 0.5 * tied_negatives) / negative_mass
        placement_negative = (positives_above + 0.5 * tied_positives) / positive_mass
        auc = float(np.sum(probabilities * placement_positive)) / positive_mass
        s10 = float(np.sum(probabilities * (placement_positive - auc) ** 2)) / (positive_mass - 1.0)
        s01 = float(np.sum((1.0 - probabilities) * (placement_negative - auc) ** 2)) / (negative_mass - 1.0)
        auc_variance = s10 / positive_mass + s01 / negative_mass
        if len(map_aucs) > 1:
            auc_variance += float(np.var(map_aucs, ddof=1))
        spread = z * math.sqrt(auc_variance)
        return accuracy_band, (auc_centre - spread, auc_centre + spread)

    def _bands(
        self, mapped: np.ndarray, ranking: _Ranking, says_positive: np.ndarray, draws: int
    ) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
        """Quantiles of accuracy and AUC over label draws, draw i from bootstrap map i (mod their count).

        Each draw is what the window's realised value could be: labels drawn from probabilities that are
        themselves one plausible calibration, so the band holds both the labels' noise at the window's
        size and the calibration's uncertainty. Centred on the uncorrected estimate (``_corrected`` moves
        it with the point estimate).
        """
        if draws == 0:
            return None, None
        rng = np.random.default_rng(self.seed)
        accuracies: list[np.ndarray] = []
        aucs: list[np.ndarray] = []
        batch = max(1, _DRAW_BATCH_CELLS // mapped.shape[1])
        for first in range(0, draws, batch):
            probabilities = mapped[np.arange(first, min(draws, first + batch)) % len(mapped)]
            labels = rng.random(probabilities.shape) < probabilities
            accuracies.append(np.mean(labels == says_positive, axis=1))
            positives = np.add.reduceat(labels.astype(np.float64), ranking.group_starts, axis=1)
            negatives = ranking.group_sizes - positives
            pairs = positives.sum(axis=1) * negatives.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                aucs.append(np.where(pairs > 0, _pair_auc(positives, negatives) / pairs, np.nan))
        tail = (1.0 - self.band_level) / 2.0
        low, high = np.quantile(np.concatenate(accuracies), [tail, 1.0 - tail])
        accuracy_band = (float(low), float(high))
        auc_draws = np.concatenate(aucs)
        auc_draws = auc_draws[np.isfinite(auc_draws)]
        # A draw with one class has no AUC; when most draws are like that the window is too small to say.
        if len(auc_draws) < draws / 2:
            return accuracy_band, None
        low, high = np.quantile(auc_draws, [tail, 1.0 - tail])
        return accuracy_band, (float(low), float(high))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (floats round-trip exactly through ``json``)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "method": self.calibration.kind,
            "threshold": self.threshold,
            "band_level": self.band_level,
            "seed": self.seed,
            "calibration": self.calibration.to_dict(),
            "bootstrap": [item.to_dict() for item in self.bootstrap],
            "reference": self.reference.to_dict(),
            "assumption": ASSUMPTION,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PerformanceEstimator:
        """Load what ``to_dict`` wrote.

        Raises:
            InvalidInput: not an estimator, an unknown schema_version or method, or malformed fields.
        """
        if not isinstance(data, Mapping) or "schema_version" not in data:
            raise InvalidInput(
                "performance estimator: missing field 'schema_version'; expected "
                "PerformanceEstimator.to_dict() output"
            )
        if data["schema_version"] != SCHEMA_VERSION or data.get("method") not in _MAP_KINDS:
            raise InvalidInput(
                f"performance estimator: schema_version={data['schema_version']!r}, "
                f"method={data.get('method')!r} is not supported (this code reads {SCHEMA_VERSION}, "
                f"{' or '.join(_MAP_KINDS)}); refit it with fit_estimator"
            )
        try:
            calibration = calibration_from_dict(data["calibration"])
            bootstrap = tuple(calibration_from_dict(item) for item in data["bootstrap"])
            if any(item.kind != data["method"] for item in (calibration, *bootstrap)):
                raise InvalidInput(
                    f"performance estimator: method={data['method']!r} but a calibration map is of "
                    "another kind; refit it with fit_estimator"
                )
            return cls(
                calibration=calibration,
                bootstrap=bootstrap,
                threshold=_check_threshold(float(data["threshold"])),
                band_level=_check_band_level(float(data["band_level"])),
                seed=int(data["seed"]),
                reference=ReferenceSummary.from_dict(data["reference"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidInput(
                f"performance estimator: malformed ({error!r}); refit it with fit_estimator"
            ) from None

    @classmethod
    def from_json(cls, text: str | bytes) -> PerformanceEstimator:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidInput(
                f"performance estimator: not JSON ({error}); expected PerformanceEstimator.to_json() output"
            ) from None
        return cls.from_dict(data)


def _check_threshold(threshold: float) -> float:
    if not (math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
        raise InvalidInput(
            f"threshold={threshold!r} must be in [0, 1] (the score at or above which the model says 1)"
        )
    return threshold


def _check_band_level(band_level: float) -> float:
    if not (math.isfinite(band_level) and 0.0 < band_level < 1.0):
        raise InvalidInput(f"band_level={band_level!r} must be between 0 and 1, e.g. 0.9")
    return band_level


def fit_estimator(
    labels: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    band_level: float = DEFAULT_BAND_LEVEL,
    bootstrap_maps: int = DEFAULT_BOOTSTRAP_MAPS,
    method: str = "auto",
    seed: int = 0,
) -> PerformanceEstimator:
    """Fit the estimator on the reference holdout: labels and the model's positive-class scores.

    The holdout must not be the model's training rows: calibrating on rows the model has fitted learns
    its over-confidence there, not the calibration it has on new rows.

    Args:
        labels: 0/1 label per reference row.
        scores: the model's positive-class probability per reference row.
        threshold: the model's decision threshold (``score >= threshold`` means 1).
        band_level: coverage of the bands, e.g. 0.9.
        bootstrap_maps: calibration refits on bootstrap resamples, for the band (0: label noise only).
        method: ``isotonic``, ``logistic`` (Platt scaling) or ``auto`` (by the reference's size, see
            ``choose_method``).
        seed: seed of the resamples and of the band's draws.

    Raises:
        InvalidInput: naming the field: scores outside [0, 1], labels other than 0/1, lengths that differ,
            or fewer than ``MIN_ROWS_PER_CLASS`` rows of either class.
    """
    reference_scores = _score_array(scores, "reference scores", _SCORES_FIX + " on the reference holdout")
    reference_labels = np.asarray(labels)
    if reference_labels.shape != reference_scores.shape:
        raise InvalidInput(
            f"reference labels: shape {reference_labels.shape} differs from reference scores "
            f"{reference_scores.shape}; pass one 0/1 label per scored reference row"
        )
    valid_label = np.isin(reference_labels, (0, 1))
    if not valid_label.all():
        raise InvalidInput(
            f"reference labels: must be 0 or 1 (got e.g. {reference_labels[~valid_label][:3].tolist()}); "
            "pass the binary label with 1 for the positive class"
        )
    reference_labels = reference_labels.astype(np.float64)
    positives = int(reference_labels.sum())
    negatives = len(reference_labels) - positives
    if min(positives, negatives) < MIN_ROWS_PER_CLASS:
        raise InvalidInput(
            f"reference labels: {positives} positive and {negatives} negative rows; calibration needs at "
            f"least {MIN_ROWS_PER_CLASS} of each class: use a larger (stratified) reference holdout"
        )
    _check_threshold(float(threshold))
    _check_band_level(float(band_level))
    if bootstrap_maps < 0:
        raise InvalidInput(f"bootstrap_maps={bootstrap_maps} must be >= 0 (0: no calibration spread)")
    if method not in CALIBRATION_METHODS:
        raise InvalidInput(f"method={method!r} is not known; use one of {', '.join(CALIBRATION_METHODS)}")
    if method == "auto":
        method = choose_method(positives, negatives)

    # Always calibrated, never "raw when it looks good enough": choosing identity when the raw scores won
    # on held-out Brier (CBPE's check, with ECE) kept the example's over-confident boosted model raw and
    # put its estimated AUC 0.05 above the realised one; a map was within 0.02 (bench_estimate.py).
    calibration = fit_calibration(reference_labels, reference_scores, method)
    rng = np.random.default_rng([seed, 1])
    bootstrap: list[CalibrationMap] = []
    while len(bootstrap) < bootstrap_maps:
        sample = rng.integers(0, len(reference_scores), len(reference_scores))
        sample_labels = reference_labels[sample]
        if 0 < sample_labels.sum() < len(sample):  # a resample with one class has no calibration
            bootstrap.append(fit_calibration(sample_labels, reference_scores[sample], method))
    partial = PerformanceEstimator(
        calibration=calibration,
        bootstrap=tuple(bootstrap),
        threshold=float(threshold),
        band_level=float(band_level),
        seed=seed,
        reference=ReferenceSummary(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0),
    )
    on_reference = partial.estimate(reference_scores, draws=0)
    realised = classifier_metrics(reference_labels, reference_scores, threshold=float(threshold))
    realised_auc = roc_auc(reference_labels, reference_scores)
    assert realised_auc is not None and on_reference.roc_auc is not None  # both classes are present
    reference = ReferenceSummary(
        rows=len(reference_scores),
        positive_rate=realised.positive_rate,
        accuracy=realised.accuracy,
        roc_auc=realised_auc,
        raw_ece=realised.ece,
        estimated_accuracy=on_reference.accuracy.value,
        estimated_roc_auc=on_reference.roc_auc.value,
        score_low=float(np.quantile(reference_scores, 0.005)),
        score_high=float(np.quantile(reference_scores, 0.995)),
    )
    return PerformanceEstimator(
        calibration=calibration,
        bootstrap=tuple(bootstrap),
        threshold=float(threshold),
        band_level=float(band_level),
        seed=seed,
        reference=reference,
    )


@dataclass(frozen=True)
class MetricComparison:
    """An estimate beside the realised value once the window's labels have arrived.

    Attributes:
        metric: ``accuracy`` or ``roc_auc``.
        estimated: the estimate made before the labels.
        lower: the band's lower end (None without a band).
        upper: the band's upper end.
        realised: the value on the labels (None when the labels have one class, for ROC AUC).
        error: ``estimated - realised`` (None when either is missing).
        inside_band: whether the realised value fell inside the band (None when either is missing).
    """

    metric: str
    estimated: float | None
    lower: float | None
    upper: float | None
    realised: float | None
    error: float | None
    inside_band: bool | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def compare_with_realised(
    estimate: PerformanceEstimate,
    labels: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    *,
    labelled_subset: bool = False,
) -> list[MetricComparison]:
    """Each estimated metric beside its realised value on the same window's labels and scores.

    Args:
        estimate: the window's estimate, made before its labels.
        labels: 0/1 labels of the window's rows.
        scores: the model's scores of the same rows.
        labelled_subset: the rows are the labelled part of the window the estimate covered (fewer rows
            allowed, never more): the realised value is then a sample of the window's, with more spread.

    Raises:
        InvalidInput: labels and scores do not pair up, or their row count differs from the estimate's
            (is larger than it, with ``labelled_subset``).
    """
    realised_metrics = classifier_metrics(labels, scores, threshold=estimate.threshold)
    if realised_metrics.rows > estimate.rows or (
        realised_metrics.rows != estimate.rows and not labelled_subset
    ):
        raise InvalidInput(
            f"labels: {realised_metrics.rows} labelled rows but the estimate covered {estimate.rows}; "
            "compare the estimate with the labels of the same window"
        )
    comparisons = []
    for name in ESTIMATED_METRICS:
        estimated = estimate.metric(name)
        realised = getattr(realised_metrics, name)
        value = None if estimated is None else estimated.value
        lower = None if estimated is None else estimated.lower
        upper = None if estimated is None else estimated.upper
        comparisons.append(
            MetricComparison(
                metric=name,
                estimated=value,
                lower=lower,
                upper=upper,
                realised=realised,
                error=None if value is None or realised is None else value - realised,
                inside_band=(
                    None
                    if realised is None or lower is None or upper is None
                    else bool(lower <= realised <= upper)
                ),
            )
        )
    return comparisons


@dataclass(frozen=True)
class EstimatedDrop:
    """Whether the estimate fell too far below the reference (the optional estimated-drop trigger).

    Attributes:
        metric: ``accuracy`` or ``roc_auc``.
        baseline: the estimate on the reference holdout (like for like with the window's estimate).
        estimated: the window's estimate (None when it could not be estimated).
        compared: the value compared: the estimate, or the band's upper end with ``require_band``.
        drop: ``baseline - compared`` (None without a value).
        allowed_drop: the configured maximum drop.
        triggered: ``drop > allowed_drop``.
        assumption: when the estimate is valid (``ASSUMPTION``).
    """

    metric: str
    baseline: float
    estimated: float | None
    compared: float | None
    drop: float | None
    allowed_drop: float
    triggered: bool
    assumption: str = ASSUMPTION

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def estimated_drop(
    estimate: PerformanceEstimate,
    estimator: PerformanceEstimator,
    *,
    metric: str = "roc_auc",
    max_drop: float = 0.05,
    require_band: bool = False,
) -> EstimatedDrop:
    """Compare a window's estimate with the reference's; triggered when it dropped more than allowed.

    Args:
        estimate: the window's estimate.
        estimator: the estimator that made it (its reference summary is the baseline).
        metric: ``accuracy`` or ``roc_auc``.
        max_drop: allowed drop, absolute in the metric's units.
        require_band: compare the band's upper end instead of the estimate, so only a drop the band
            excludes triggers (fewer false alarms on small windows, later alarms).

    Raises:
        InvalidInput: an unknown metric, a negative max_drop, or ``require_band`` on an estimate
            without a band.
    """
    found = estimate.metric(metric)
    if not (math.isfinite(max_drop) and max_drop >= 0):
        raise InvalidInput(f"max_drop={max_drop!r} must be >= 0 (absolute, in {metric} units)")
    baseline = (
        estimator.reference.estimated_roc_auc
        if metric == "roc_auc"
        else estimator.reference.estimated_accuracy
    )
    compared: float | None
    if found is None:
        compared = None
    elif require_band:
        if found.upper is None:
            raise InvalidInput(
                f"require_band=True but the {metric} estimate has no band; estimate with draws > 0"
            )
        compared = found.upper
    else:
        compared = found.value
    drop = None if compared is None else baseline - compared
    return EstimatedDrop(
        metric=metric,
        baseline=baseline,
        estimated=None if found is None else found.value,
        compared=compared,
        drop=drop,
        allowed_drop=max_drop,
        triggered=drop is not None and drop > max_drop,
    )
