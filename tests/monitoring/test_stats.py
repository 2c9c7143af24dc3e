"""Our statistics agree with scipy's on the same arrays; corrections match known values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from platform_components.monitoring.errors import InvalidInput
from platform_components.monitoring.stats import (
    Correction,
    adjust_pvalues,
    bin_counts,
    bin_counts_sorted,
    chi_square,
    ks_many,
    ks_presorted,
    psi,
    right_ranks_sorted,
    smooth_proportions,
)


def samples(kind: str, n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "continuous":
        return rng.normal(0, 1, n), rng.normal(0.05, 1.1, m)
    if kind == "ties":
        return rng.normal(0, 1, n).round(1), rng.normal(0.1, 1, m).round(1)
    if kind == "discrete":
        return rng.poisson(3, n).astype(float), rng.poisson(3.2, m).astype(float)
    return np.full(n, 2.0), np.concatenate([np.full(m - 1, 2.0), [3.0]])  # one value differs


@pytest.mark.parametrize("kind", ["continuous", "ties", "discrete", "constant"])
@pytest.mark.parametrize(("n", "m"), [(7, 5), (100, 100), (1_000, 250), (10_000, 1_000), (20_000, 50_000)])
def test_ks_agrees_with_scipy_asymp(kind: str, n: int, m: int) -> None:
    reference, current = samples(kind, n, m, seed=n + m)
    ours = ks_presorted(np.sort(reference), current)
    theirs = scipy_stats.ks_2samp(reference, current, method="asymp")
    assert ours.statistic == pytest.approx(theirs.statistic, abs=1e-9)
    assert ours.pvalue == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(("n", "m"), [(2_000, 1_000), (10_000, 1_000)])
def test_ks_close_to_scipy_auto_where_scipy_is_exact(n: int, m: int) -> None:
    reference, current = samples("continuous", n, m, seed=1)
    ours = ks_presorted(np.sort(reference), current)
    theirs = scipy_stats.ks_2samp(reference, current)  # method="auto" is exact at these sizes
    assert ours.statistic == pytest.approx(theirs.statistic, abs=1e-9)
    assert ours.pvalue == pytest.approx(theirs.pvalue, rel=0.05, abs=1e-3)


def test_ks_many_matches_one_by_one_and_ignores_missing() -> None:
    rng = np.random.default_rng(5)
    references = [np.sort(rng.normal(0, 1, 3_000)) for _ in range(4)]
    current = rng.normal(0.1, 1, (4, 800))
    current[2, :100] = np.nan
    current[3, :] = np.nan
    statistics, pvalues = ks_many(references, current)
    for index in range(3):
        column = current[index][~np.isnan(current[index])]
        expected = scipy_stats.ks_2samp(references[index], column, method="asymp")
        assert statistics[index] == pytest.approx(expected.statistic, abs=1e-12)
        assert pvalues[index] == pytest.approx(expected.pvalue, rel=1e-9)
    assert np.isnan(statistics[3]) and np.isnan(pvalues[3])


def test_ks_refuses_empty_samples() -> None:
    with pytest.raises(InvalidInput, match=r"current has 0\)"):
        ks_presorted(np.arange(3.0), np.array([]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chi_square_agrees_with_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    proportions = rng.dirichlet(np.ones(6))
    observed = rng.multinomial(500, rng.dirichlet(np.ones(6)))
    ours = chi_square(observed, proportions)
    theirs = scipy_stats.chisquare(observed, proportions * observed.sum())
    assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-12)
    assert ours.pvalue == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-300)


def test_chi_square_errors_name_the_problem() -> None:
    with pytest.raises(InvalidInput, match="equal-length"):
        chi_square(np.array([1, 2, 3]), np.array([0.5, 0.5]))
    with pytest.raises(InvalidInput, match="no observations"):
        chi_square(np.array([0, 0]), np.array([0.5, 0.5]))


def test_psi_known_values_and_binning() -> None:
    assert psi(np.full(4, 0.25), np.full(4, 0.25)) == 0.0
    expected, actual = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    manual = (0.9 - 0.5) * np.log(0.9 / 0.5) + (0.1 - 0.5) * np.log(0.1 / 0.5)
    assert psi(expected, actual) == pytest.approx(manual)
    assert bin_counts(np.array([0.0, 1.0, 1.5, 2.0, 9.0, np.nan]), np.array([1.0, 2.0])).tolist() == [2, 2, 1]
    assert smooth_proportions(np.array([1.0, 0.0])).min() > 0


def test_corrections_match_reference_implementations() -> None:
    pvalues = np.array([0.01, 0.04, 0.03, 0.005, 0.5])
    bh = adjust_pvalues(pvalues, Correction.BENJAMINI_HOCHBERG)
    np.testing.assert_allclose(bh, scipy_stats.false_discovery_control(pvalues, method="bh"))
    # Holm by hand: sorted 0.005*5, 0.01*4, 0.03*3, 0.04*2, 0.5*1 then running max.
    np.testing.assert_allclose(adjust_pvalues(pvalues, "holm"), [0.04, 0.09, 0.09, 0.025, 0.5])
    np.testing.assert_allclose(adjust_pvalues(pvalues, "bonferroni"), [0.05, 0.2, 0.15, 0.025, 1.0])
    with_missing = adjust_pvalues(np.array([0.01, np.nan, 0.02]), "bonferroni")
    assert with_missing[0] == pytest.approx(0.02) and np.isnan(with_missing[1])
    with pytest.raises(InvalidInput, match="correction='fdr' is not known"):
        adjust_pvalues(pvalues, "fdr")


def test_sorted_shortcuts_equal_their_binary_search_definitions() -> None:
    rng = np.random.default_rng(9)
    values = np.sort(rng.integers(0, 50, 5_000).astype(float))  # many ties
    np.testing.assert_array_equal(right_ranks_sorted(values), np.searchsorted(values, values, side="right"))
    edges = np.array([3.0, 10.5, 20.0, 49.0])
    np.testing.assert_array_equal(bin_counts_sorted(values, edges), bin_counts(values, edges))
    assert right_ranks_sorted(np.array([])).size == 0
