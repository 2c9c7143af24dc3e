"""Model performance once labels have arrived: classifier and regressor metrics on numpy/scipy.

Implemented here (not via scikit-learn) so the monitor's metric definitions are explicit and stable; the
tests check them against scikit-learn on the same arrays.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import rankdata

from platform_components.monitoring.errors import InvalidInput

DEFAULT_CALIBRATION_BINS = 10


@dataclass(frozen=True)
class ClassifierMetrics:
    """Binary classifier quality on labelled rows.

    Attributes:
        rows: labelled rows used.
        accuracy: share of rows where ``score >= threshold`` equals the label.
        roc_auc: area under the ROC curve; None when only one class is present.
        brier: mean squared error of the positive-class probability.
        ece: expected calibration error over equal-width probability bins.
        positive_rate: share of positive labels.
    """

    rows: int
    accuracy: float
    roc_auc: float | None
    brier: float
    ece: float
    positive_rate: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RegressorMetrics:
    """Regressor quality on labelled rows."""

    rows: int
    mae: float
    rmse: float

    def to_dict(self) -> dict:
        return asdict(self)


def _binary_inputs(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(scores, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise InvalidInput(f"labels {y.shape} and scores {p.shape} must be 1-D and the same length")
    if len(y) == 0:
        raise InvalidInput("no labelled rows: performance needs at least one (label, score) pair")
    if not np.isin(y, (0.0, 1.0)).all():
        bad = y[~np.isin(y, (0.0, 1.0))][:3].tolist()
        raise InvalidInput(f"labels must be 0 or 1 for a binary classifier (got e.g. {bad})")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise InvalidInput(
            "scores must be probabilities in [0, 1] (the positive-class column of predict_proba)"
        )
    return y, p


def roc_auc(labels, scores) -> float | None:
    """ROC AUC as the Mann-Whitney U statistic with mid-ranks for ties; None with a single class."""
    y, p = _binary_inputs(labels, scores)
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    ranks = rankdata(p)
    rank_sum = ranks[y == 1].sum()
    return float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))


def expected_calibration_error(labels, scores, bins: int = DEFAULT_CALIBRATION_BINS) -> float:
    """Weighted mean gap between observed positive rate and mean predicted probability per bin.

    Bins are equal-width on [0, 1]; a score of exactly 1.0 falls in the last bin.
    """
    y, p = _binary_inputs(labels, scores)
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    label_sums = np.bincount(index, weights=y, minlength=bins)
    score_sums = np.bincount(index, weights=p, minlength=bins)
    used = counts > 0
    gaps = np.abs(label_sums[used] - score_sums[used])  # = count * |rate - confidence|
    return float(gaps.sum() / len(y))


def classifier_metrics(
    labels, scores, *, threshold: float = 0.5, calibration_bins: int = DEFAULT_CALIBRATION_BINS
) -> ClassifierMetrics:
    """Accuracy, ROC AUC, Brier score and ECE from labels and positive-class probabilities."""
    y, p = _binary_inputs(labels, scores)
    return ClassifierMetrics(
        rows=len(y),
        accuracy=float(((p >= threshold).astype(np.float64) == y).mean()),
        roc_auc=roc_auc(y, p),
        brier=float(np.mean((p - y) ** 2)),
        ece=expected_calibration_error(y, p, calibration_bins),
        positive_rate=float(y.mean()),
    )


def regressor_metrics(targets, predictions) -> RegressorMetrics:
    """Mean absolute error and root mean squared error."""
    y = np.asarray(targets, dtype=np.float64)
    yhat = np.asarray(predictions, dtype=np.float64)
    if y.shape != yhat.shape or y.ndim != 1 or len(y) == 0:
        raise InvalidInput(
            f"targets {y.shape} and predictions {yhat.shape} must be 1-D, non-empty, same length"
        )
    errors = yhat - y
    return RegressorMetrics(
        rows=len(y), mae=float(np.abs(errors).mean()), rmse=float(np.sqrt(np.mean(errors**2)))
    )
