"""scikit-learn behaviour the monitoring package relies on (the installed release's source)."""

from __future__ import annotations

from upstream_facts import Fact

FACTS = [
    Fact(
        key="sklearn.isotonic.knots",
        statement=(
            "A fitted IsotonicRegression keeps its de-duplicated knots as X_thresholds_ (increasing) and "
            "y_thresholds_, and with out_of_bounds='clip' predicts by clipping the input to "
            "[X_min_, X_max_] and interpolating linearly between the knots"
        ),
        source="scikit-learn/scikit-learn sklearn/isotonic.py@1.9.1",
        value=("X_thresholds_", "y_thresholds_", "linear"),
    ),
]
