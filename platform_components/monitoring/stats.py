"""Drift statistics on numpy/scipy: KS against a pre-sorted reference, chi-square, PSI, p-value correction.

Why our own: the reference is sorted (KS) or binned (PSI, chi-square) once when the model is trained, so a
check costs a sort of the current window plus a merge, not a full ``ks_2samp`` per feature (see
``research/performance.md`` "Drift detection"). Every function is checked against scipy in the tests:

- ``ks_presorted`` gives the same D as ``scipy.stats.ks_2samp`` bit for bit (same ECDF evaluation with
  ``searchsorted(side="right")`` at every pooled point) and the p-value of its ``method="asymp"`` branch
  (``kstwo.sf(D, round(m*n/(m+n)))``). For samples of at most 10,000 ``ks_2samp(method="auto")`` uses the
  exact distribution instead; the two agree closely there and the asymptotic one is what scales.
- ``chi_square`` equals ``scipy.stats.chisquare(observed, expected)`` with expected counts from proportions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import special
from scipy.stats import kstwo

from platform_components.monitoring.errors import InvalidInput

PSI_EPSILON = 1e-4


class Correction(StrEnum):
    """Multiple-testing correction across the features of one check."""

    BENJAMINI_HOCHBERG = "bh"
    HOLM = "holm"
    BONFERRONI = "bonferroni"
    NONE = "none"


@dataclass(frozen=True)
class TestResult:
    """One two-sample test: statistic and p-value."""

    statistic: float
    pvalue: float


def right_ranks_sorted(values_sorted: np.ndarray) -> np.ndarray:
    """``searchsorted(values, values, side="right")`` for sorted values, in O(n) instead of O(n log n).

    Each position gets one past the last index of its tie group (the ECDF numerator at that value).
    """
    count = len(values_sorted)
    if count == 0:
        return np.empty(0, dtype=np.int64)
    group_ends = np.empty(count, dtype=bool)
    group_ends[-1] = True
    np.not_equal(values_sorted[1:], values_sorted[:-1], out=group_ends[:-1])
    ends = np.flatnonzero(group_ends) + 1
    group_of = np.empty(count, dtype=np.int64)
    group_of[0] = 0
    np.cumsum(group_ends[:-1], out=group_of[1:])
    return ends[group_of]


def reference_ecdf_at_self(reference_sorted: np.ndarray) -> np.ndarray:
    """Reference ECDF numerators at its own points (``searchsorted(right)``); cacheable per profile."""
    return right_ranks_sorted(reference_sorted)


def ks_statistic_presorted(
    reference_sorted: np.ndarray,
    current: np.ndarray,
    *,
    reference_ranks: np.ndarray | None = None,
    current_is_sorted: bool = False,
) -> float:
    """Exact two-sided KS statistic D between a sorted reference and a current sample.

    D is the largest gap between the two ECDFs over every pooled point, both ECDFs right-continuous, so
    ties (within or across samples) count exactly as in ``scipy.stats.ks_2samp``.

    Args:
        reference_sorted: reference values, ascending, no NaN.
        current: current values, no NaN.
        reference_ranks: ``reference_ecdf_at_self(reference_sorted)`` if already computed.
        current_is_sorted: skip sorting ``current``.

    Raises:
        InvalidInput: either sample is empty.
    """
    n = len(reference_sorted)
    m = len(current)
    if n == 0 or m == 0:
        raise InvalidInput(f"KS needs two non-empty samples (reference has {n} values, current has {m})")
    current_sorted = current if current_is_sorted else np.sort(current)
    if reference_ranks is None:
        reference_ranks = reference_ecdf_at_self(reference_sorted)
    # ECDF gap at the current points, then at the reference points; the same arithmetic as scipy
    # (ranks divided by sizes, reference minus current) so D is bit-identical.
    at_current = (
        np.searchsorted(reference_sorted, current_sorted, side="right") / n
        - right_ranks_sorted(current_sorted) / m
    )
    at_reference = reference_ranks / n - np.searchsorted(current_sorted, reference_sorted, side="right") / m
    largest = max(float(at_current.max()), float(at_reference.max()))
    smallest = min(float(at_current.min()), float(at_reference.min()))
    return max(largest, min(max(-smallest, 0.0), 1.0))


def ks_pvalue(statistic: float | np.ndarray, n_reference: int | np.ndarray, n_current: int | np.ndarray):
    """Two-sided asymptotic KS p-value exactly as ``ks_2samp(method="asymp")`` computes it."""
    n_reference = np.asarray(n_reference, dtype=np.float64)
    n_current = np.asarray(n_current, dtype=np.float64)
    larger = np.maximum(n_reference, n_current)
    smaller = np.minimum(n_reference, n_current)
    effective = larger * smaller / (larger + smaller)
    return np.clip(kstwo.sf(statistic, np.round(effective)), 0.0, 1.0)


def ks_presorted(
    reference_sorted: np.ndarray, current: np.ndarray, *, reference_ranks: np.ndarray | None = None
) -> TestResult:
    """Two-sample KS test of ``current`` against a pre-sorted reference (see the module docstring)."""
    statistic = ks_statistic_presorted(reference_sorted, current, reference_ranks=reference_ranks)
    return TestResult(statistic, float(ks_pvalue(statistic, len(reference_sorted), len(current))))


def ks_many(
    references_sorted: Sequence[np.ndarray],
    current_columns: np.ndarray,
    *,
    references_ranks: Sequence[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """KS for several features at once: ``current_columns`` is (features, rows), NaN allowed (dropped).

    The current window is sorted in one ``np.sort(axis=1)`` call (NaN sort last, so each column's valid
    prefix is a slice) and the p-values are computed in one vectorised ``kstwo.sf`` call.

    Returns:
        (statistics, pvalues), one per feature; NaN for a feature whose current column is all missing.
    """
    columns = np.asarray(current_columns, dtype=np.float64)
    if columns.ndim != 2 or columns.shape[0] != len(references_sorted):
        raise InvalidInput(
            f"current_columns has shape {columns.shape}; expected ({len(references_sorted)}, rows)"
        )
    ordered = np.sort(columns, axis=1)
    valid_counts = columns.shape[1] - np.isnan(columns).sum(axis=1)
    statistics = np.full(len(references_sorted), np.nan)
    for index, reference in enumerate(references_sorted):
        count = int(valid_counts[index])
        if count == 0:
            continue
        ranks = None if references_ranks is None else references_ranks[index]
        statistics[index] = ks_statistic_presorted(
            reference, ordered[index, :count], reference_ranks=ranks, current_is_sorted=True
        )
    pvalues = np.full(len(references_sorted), np.nan)
    usable = ~np.isnan(statistics)
    if usable.any():
        sizes = np.array([len(reference) for reference in references_sorted], dtype=np.float64)
        pvalues[usable] = ks_pvalue(statistics[usable], sizes[usable], valid_counts[usable])
    return statistics, pvalues


def chi_square(observed_counts: np.ndarray, expected_proportions: np.ndarray) -> TestResult:
    """Pearson chi-square goodness of fit of counts against reference proportions.

    Equal to ``scipy.stats.chisquare(observed, expected_proportions / sum * observed.sum())``. Buckets with
    zero expected share must be smoothed by the caller (``smooth_proportions``); otherwise the statistic
    is infinite when such a bucket is observed, which is what scipy returns too.

    Raises:
        InvalidInput: lengths differ, fewer than two buckets, negative values, or no observations.
    """
    observed = np.asarray(observed_counts, dtype=np.float64)
    proportions = np.asarray(expected_proportions, dtype=np.float64)
    if observed.shape != proportions.shape or observed.ndim != 1 or len(observed) < 2:
        raise InvalidInput(
            f"chi-square needs two equal-length 1-D inputs with >= 2 buckets "
            f"(observed {observed.shape}, expected {proportions.shape})"
        )
    if (observed < 0).any() or (proportions < 0).any():
        raise InvalidInput("chi-square: counts and proportions must be >= 0")
    total = observed.sum()
    if total <= 0:
        raise InvalidInput("chi-square: no observations in the current window")
    expected = proportions / proportions.sum() * total
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = (observed - expected) ** 2 / expected
    statistic = float(terms.sum())
    return TestResult(statistic, float(special.chdtrc(len(observed) - 1, statistic)))


def smooth_proportions(proportions: np.ndarray, epsilon: float = PSI_EPSILON) -> np.ndarray:
    """Floor every share at ``epsilon`` and renormalise, so empty reference buckets stay finite."""
    floored = np.maximum(np.asarray(proportions, dtype=np.float64), epsilon)
    return floored / floored.sum()


def bin_counts_sorted(values_sorted: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``bin_counts`` for sorted values without NaN: one binary search per edge, O(bins log n)."""
    upper = np.searchsorted(values_sorted, edges, side="right")
    return np.diff(np.concatenate(([0], upper, [len(values_sorted)])))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin ``(-inf, e0], (e0, e1], ..., (ek, inf)`` of the non-missing values."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)


def psi(
    expected_proportions: np.ndarray, actual_proportions: np.ndarray, epsilon: float = PSI_EPSILON
) -> float:
    """Population stability index ``sum((a - e) * ln(a / e))`` with both shares floored at ``epsilon``.

    Common reading: < 0.1 stable, 0.1-0.2 moderate shift, > 0.2 significant shift.
    """
    expected = np.maximum(np.asarray(expected_proportions, dtype=np.float64), epsilon)
    actual = np.maximum(np.asarray(actual_proportions, dtype=np.float64), epsilon)
    if expected.shape != actual.shape:
        raise InvalidInput(f"PSI: expected has {expected.shape} buckets, actual {actual.shape}")
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def adjust_pvalues(pvalues: Sequence[float] | np.ndarray, method: Correction | str) -> np.ndarray:
    """Adjusted p-values for one family of tests; NaN entries are left out of the family and stay NaN.

    Compare each adjusted value with the level (e.g. 0.05): BH controls the false discovery rate, Holm and
    Bonferroni the family-wise error rate (Holm is uniformly more powerful).

    Raises:
        InvalidInput: unknown method.
    """
    try:
        method = Correction(method)
    except ValueError:
        allowed = ", ".join(item.value for item in Correction)
        raise InvalidInput(f"correction={method!r} is not known; use one of {allowed}") from None
    raw = np.asarray(pvalues, dtype=np.float64)
    adjusted = np.full(raw.shape, np.nan)
    present = ~np.isnan(raw)
    values = raw[present]
    count = len(values)
    if count == 0 or method is Correction.NONE:
        adjusted[present] = values
        return adjusted
    if method is Correction.BONFERRONI:
        adjusted[present] = np.minimum(values * count, 1.0)
        return adjusted
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    if method is Correction.HOLM:
        scaled = ordered * (count - np.arange(count))
        stepped = np.minimum(np.maximum.accumulate(scaled), 1.0)
    else:
        scaled = ordered * count / np.arange(1, count + 1)
        stepped = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    result = np.empty(count)
    result[order] = stepped
    adjusted[present] = result
    return adjusted


def is_finite(value: float) -> bool:
    """True for a finite float (NaN and infinities excluded)."""
    return math.isfinite(value)
