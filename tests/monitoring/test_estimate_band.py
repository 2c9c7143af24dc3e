"""The closed-form band (the default) against the simulated one it replaced, on the same windows.

The monitor's round estimates every model's window; simulating 200 label draws cost ~70 ms a 10,000-row
window, the closed form a few. Both describe the same spread (labels' noise plus calibration), so their ends
must agree to a fraction of the band's width; ``test_estimate.py`` checks the default band's coverage.
"""

from __future__ import annotations

import numpy as np
import pytest

from platform_components.monitoring.estimate import fit_estimator
from tests.monitoring.test_estimate import window


@pytest.mark.parametrize(
    ("reference_rows", "window_rows", "shift"), [(500, 1_000, 0.0), (5_000, 10_000, 0.6)]
)
def test_closed_form_band_matches_the_simulated_band(
    reference_rows: int, window_rows: int, shift: float
) -> None:
    rng = np.random.default_rng(reference_rows)
    estimator = fit_estimator(*window(rng, reference_rows), band_level=0.9, seed=3)
    _, scores = window(rng, window_rows, mean=shift)
    closed = estimator.estimate(scores)
    simulated = estimator.estimate(scores, draws=4_000)
    for name in ("accuracy", "roc_auc"):
        analytic, drawn = closed.metric(name), simulated.metric(name)
        assert analytic is not None and drawn is not None
        assert analytic.value == drawn.value  # the point estimate does not depend on the band
        assert None not in (analytic.lower, analytic.upper, drawn.lower, drawn.upper)
        width = drawn.upper - drawn.lower
        # Quantiles of 4,000 draws move by ~3 % of the width; the normal shape by a few more in the tails.
        assert abs(analytic.lower - drawn.lower) < 0.12 * width, (name, analytic, drawn)
        assert abs(analytic.upper - drawn.upper) < 0.12 * width, (name, analytic, drawn)


def test_without_refits_the_band_is_the_labels_noise_alone() -> None:
    """With no bootstrap maps the calibration adds nothing: the band narrows, the estimate stays."""
    import dataclasses

    rng = np.random.default_rng(9)
    estimator = fit_estimator(*window(rng, 500), seed=1)
    _, scores = window(rng, 2_000)
    with_maps = estimator.estimate(scores).accuracy
    alone = dataclasses.replace(estimator, bootstrap=()).estimate(scores).accuracy
    assert alone.upper - alone.lower < with_maps.upper - with_maps.lower
