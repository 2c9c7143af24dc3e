"""Generated subscribers of a telecom plan: who cancels (``churned``) in the month after the row.

Deterministic per ``(day, rows, seed, change_day)``. From ``change_day`` on, a price rise reaches the
subscribers and a competitor courts the long-standing ones: monthly charges go up by ``PRICE_RISE``
(feature drift), price sensitivity grows and tenure no longer protects (the relation changes), so the old
model's ROC AUC falls (about 0.77 to 0.68; the churn rate goes from about 31 % to 55 %) and a model
retrained on rows after the change recovers (about 0.82).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NUMERIC_FEATURES: tuple[str, ...] = ("tenure_months", "monthly_charges", "support_calls")
CATEGORICAL_FEATURES: tuple[str, ...] = ("contract", "payment_method")
FEATURES: tuple[str, ...] = (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES)
LABEL = "churned"
CONTRACTS: tuple[str, ...] = ("month-to-month", "one-year", "two-year")
PAYMENT_METHODS: tuple[str, ...] = ("card", "bank-transfer", "invoice")
PRICE_RISE = 25.0


def generate_day(day: int, rows: int, *, seed: int = 0, change_day: int | None = None) -> pd.DataFrame:
    """``rows`` labelled subscribers of ``day``; the price rise applies from ``change_day`` (None: never).

    Raises:
        ValueError: ``rows`` or ``day`` is negative.
    """
    if rows < 0 or day < 0:
        raise ValueError(f"day={day} and rows={rows} must be >= 0")
    rng = np.random.default_rng([seed, day, 7])
    changed = change_day is not None and day >= change_day
    contract = rng.choice(CONTRACTS, rows, p=[0.55, 0.25, 0.20])
    monthly_contract = contract == "month-to-month"
    frame = pd.DataFrame(
        {
            "tenure_months": np.round(rng.gamma(2.0, 14.0, rows), 1),
            "monthly_charges": np.round(rng.normal(65.0, 18.0, rows) + (PRICE_RISE if changed else 0.0), 2),
            "support_calls": rng.poisson(1.2, rows).astype("float64"),
            "contract": contract,
            "payment_method": rng.choice(PAYMENT_METHODS, rows, p=[0.5, 0.3, 0.2]),
        }
    )
    # After the change a competitor courts long-standing subscribers: tenure stops protecting them.
    price_weight, tenure_weight, intercept = (0.06, 0.02, -2.6) if changed else (0.02, -0.045, -1.3)
    logit = (
        intercept
        + tenure_weight * frame["tenure_months"]
        + price_weight * (frame["monthly_charges"] - 65.0) * np.where(monthly_contract, 1.0, 0.4)
        + 0.45 * frame["support_calls"]
        + np.where(monthly_contract, 1.4, 0.0)
        + np.where(frame["payment_method"] == "invoice", 0.5, 0.0)
    )
    frame[LABEL] = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype("int64")
    return frame


def generate_range(
    start_day: int, end_day: int, rows_per_day: int, *, seed: int = 0, change_day: int | None = None
) -> pd.DataFrame:
    """Days ``start_day .. end_day - 1`` concatenated, with a ``day`` column."""
    frames = [
        generate_day(day, rows_per_day, seed=seed, change_day=change_day).assign(day=day)
        for day in range(start_day, end_day)
    ]
    return pd.concat(frames, ignore_index=True)
