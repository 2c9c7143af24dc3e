"""Synthetic loan applications with a default label, generated day by day, with drift scenarios.

The world: a consumer lender sees ``rows`` applications a day. Each row has numeric features (income, loan
amount, debt-to-income, credit history, late payments, interest rate, age, open accounts) and categorical
ones (home ownership, loan purpose, employment type, region). Whether the borrower defaults comes from a
logistic ground truth with interactions (self-employed x small-business loans, debt-to-income x late
payments, young applicants with a short history).

Determinism: a day's frame depends only on ``(day, rows, scenario, drift_start_day, ramp_days, seed)``. The
undrifted draws of a day come from a random stream seeded by ``(seed, day)`` alone, so before the drift
starts every scenario yields exactly the frame of ``scenario=None``, and after it the scenario changes only
what it claims to change.

Scenarios start at ``drift_start_day`` and ramp linearly to full strength over ``ramp_days`` days:

- ``covariate_shift``: incomes fall, debt-to-income and interest rates rise, applicants get younger; the
  relation between features and default is unchanged (so the default rate rises through the features).
- ``concept_shift``: the relation changes (a regional downturn hits the south, self-employed borrowers and
  car loans, mortgage holders face a rate shock, and the old debt signals weaken), so a model trained
  before the shift loses ranking quality and a model retrained on shifted data recovers it.
- ``label_prior_shift``: the default rate rises from about 15 % to 40 % while the feature distribution
  within each class stays the same (rows are resampled by class).
- ``market_downturn``: both at once, as a real downturn arrives: the covariates move as in
  ``covariate_shift`` and the relation changes as in ``concept_shift``. The features drift (a monitor sees it
  before any label arrives) and the old model's ranking quality falls once labels come in. The demo uses it.
- ``broken_feature``: an upstream system breaks: ``annual_income`` arrives in thousands instead of units
  and ``debt_to_income`` arrives missing (NaN) for a growing share of rows; the true default risk is
  unchanged. This is the only scenario that produces NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

NUMERIC_FEATURES: tuple[str, ...] = (
    "age",
    "annual_income",
    "loan_amount",
    "debt_to_income",
    "credit_history_years",
    "num_late_payments",
    "interest_rate",
    "num_open_accounts",
)
CATEGORICAL_FEATURES: tuple[str, ...] = ("home_ownership", "loan_purpose", "employment_type", "region")
FEATURES: tuple[str, ...] = NUMERIC_FEATURES + CATEGORICAL_FEATURES
LABEL = "default"

SCENARIOS: tuple[str, ...] = (
    "covariate_shift",
    "concept_shift",
    "label_prior_shift",
    "broken_feature",
    "market_downturn",
)
DEFAULT_DRIFT_START_DAY = 7
DEFAULT_RAMP_DAYS = 3

HOME_OWNERSHIP = ("RENT", "MORTGAGE", "OWN")
LOAN_PURPOSES = (
    "debt_consolidation",
    "credit_card",
    "home_improvement",
    "car",
    "small_business",
    "medical",
    "other",
)
EMPLOYMENT_TYPES = ("full_time", "part_time", "self_employed", "unemployed", "retired")
REGIONS = ("north", "south", "east", "west")

# Stream ids keep each scenario's extra randomness apart from the base draws of the day.
_SCENARIO_STREAM = {name: index + 1 for index, name in enumerate(SCENARIOS)}
_PRIOR_SHIFT_TARGET_RATE = 0.40
_PRIOR_SHIFT_POOL_FACTOR = 4


def drift_intensity(day: int, drift_start_day: int, ramp_days: int = DEFAULT_RAMP_DAYS) -> float:
    """Strength of the drift on ``day``: 0 before the start, then a linear ramp to 1 over ``ramp_days`` days.

    A negative ``drift_start_day`` means the drift never starts.
    """
    if drift_start_day < 0 or day < drift_start_day:
        return 0.0
    return float(min(1.0, (day - drift_start_day + 1) / max(ramp_days, 1)))


def generate_day(
    day: int,
    rows: int,
    *,
    scenario: str | None = None,
    seed: int = 0,
    drift_start_day: int = DEFAULT_DRIFT_START_DAY,
    ramp_days: int = DEFAULT_RAMP_DAYS,
) -> pd.DataFrame:
    """One day of labelled loan applications.

    Args:
        day: Day number (0 or more); part of the random seed.
        rows: Number of applications (1 or more).
        scenario: ``None`` (no drift) or one of ``SCENARIOS``.
        seed: Base seed; the same arguments always give the identical frame.
        drift_start_day: First day the scenario has an effect; negative means never.
        ramp_days: Days from the start until the scenario is at full strength.

    Returns:
        A frame with the columns ``FEATURES`` (numeric ones as float64, categorical ones as strings) and
        ``LABEL`` (int64, 1 = defaulted).

    Raises:
        ValueError: naming the argument, the value and what is allowed.
    """
    _check_arguments(day=day, rows=rows, scenario=scenario, seed=seed, ramp_days=ramp_days)
    intensity = drift_intensity(day, drift_start_day, ramp_days) if scenario else 0.0
    base_rng = np.random.default_rng([seed, day, 0])
    frame = _draw_features(base_rng, rows)
    label_uniform = base_rng.random(rows)
    if intensity == 0.0:
        frame[LABEL] = _labels(frame, label_uniform, concept=0.0)
        return frame

    scenario_rng = np.random.default_rng([seed, day, _SCENARIO_STREAM[scenario]])
    if scenario == "covariate_shift":
        frame = _shift_covariates(frame, scenario_rng, intensity)
        frame[LABEL] = _labels(frame, label_uniform, concept=0.0)
    elif scenario == "concept_shift":
        frame[LABEL] = _labels(frame, label_uniform, concept=intensity)
    elif scenario == "market_downturn":
        frame = _shift_covariates(frame, scenario_rng, intensity)
        frame[LABEL] = _labels(frame, label_uniform, concept=intensity)
    elif scenario == "label_prior_shift":
        frame = _shift_label_prior(frame, label_uniform, scenario_rng, intensity, rows)
    else:  # broken_feature: the truth is computed on the real values, then the pipe breaks them
        frame[LABEL] = _labels(frame, label_uniform, concept=0.0)
        frame = _break_features(frame, scenario_rng, intensity)
    return frame


def generate_range(
    start_day: int,
    end_day: int,
    rows_per_day: int,
    *,
    scenario: str | None = None,
    drift_start_day: int = DEFAULT_DRIFT_START_DAY,
    seed: int = 0,
    ramp_days: int = DEFAULT_RAMP_DAYS,
) -> pd.DataFrame:
    """Days ``start_day`` .. ``end_day - 1`` concatenated in day order (end exclusive, like ``range``).

    Raises:
        ValueError: when the range is empty or an argument is out of range.
    """
    if end_day <= start_day:
        raise ValueError(
            f"end_day={end_day} must be greater than start_day={start_day} (the range is end-exclusive); "
            f"e.g. start_day=0, end_day=7 for a week"
        )
    frames = [
        generate_day(
            day,
            rows_per_day,
            scenario=scenario,
            seed=seed,
            drift_start_day=drift_start_day,
            ramp_days=ramp_days,
        )
        for day in range(start_day, end_day)
    ]
    return pd.concat(frames, ignore_index=True)


def _check_arguments(*, day: int, rows: int, scenario: str | None, seed: int, ramp_days: int) -> None:
    if isinstance(day, bool) or not isinstance(day, int | np.integer) or day < 0:
        raise ValueError(f"day={day!r} must be an integer >= 0 (days count from 0)")
    if isinstance(rows, bool) or not isinstance(rows, int | np.integer) or rows < 1:
        raise ValueError(f"rows={rows!r} must be an integer >= 1")
    if scenario is not None and scenario not in SCENARIOS:
        raise ValueError(f"scenario={scenario!r} is unknown; use None or one of {', '.join(SCENARIOS)}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed={seed!r} must be an integer >= 0")
    if ramp_days < 1:
        raise ValueError(f"ramp_days={ramp_days!r} must be >= 1 (1 means full strength on the first day)")


def _draw_features(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    age = np.clip(np.round(rng.normal(42.0, 12.0, rows)), 21, 75)
    employment = rng.choice(EMPLOYMENT_TYPES, size=rows, p=[0.64, 0.12, 0.14, 0.05, 0.05])
    # Most applicants past 62 are retired; a few younger ones report early retirement.
    retire = (age >= 62) & (rng.random(rows) < 0.6)
    employment = np.where(retire, "retired", employment)
    region = rng.choice(REGIONS, size=rows, p=[0.25, 0.30, 0.20, 0.25])
    purpose = rng.choice(LOAN_PURPOSES, size=rows, p=[0.32, 0.20, 0.12, 0.14, 0.07, 0.06, 0.09])
    own_probability = np.clip((age - 21) / 80.0, 0.02, 0.5)
    mortgage_probability = np.clip(0.25 + (age - 21) / 100.0, 0.25, 0.55)
    home_draw = rng.random(rows)
    home = np.where(
        home_draw < own_probability,
        "OWN",
        np.where(home_draw < own_probability + mortgage_probability, "MORTGAGE", "RENT"),
    )

    employment_income = {"full_time": 1.0, "part_time": 0.55, "self_employed": 1.1, "unemployed": 0.35}
    income_factor = np.array([employment_income.get(value, 0.6) for value in employment])
    region_income = {"north": 1.08, "south": 0.92, "east": 1.0, "west": 1.05}
    income_factor *= np.array([region_income[value] for value in region])
    income = np.round(rng.lognormal(np.log(55_000.0), 0.45, rows) * income_factor, -2)
    income = np.clip(income, 8_000, 400_000)

    loan_to_income = rng.lognormal(np.log(0.22), 0.5, rows) * np.where(purpose == "small_business", 1.5, 1.0)
    loan_amount = np.clip(np.round(income * loan_to_income, -2), 1_000, 60_000)
    debt_to_income = np.clip(rng.beta(2.2, 6.5, rows), 0.01, 0.75)
    history = np.clip(np.round((age - 18) * rng.uniform(0.3, 1.0, rows), 1), 0.0, 50.0)
    late_payments = rng.poisson(0.3 + 2.0 * debt_to_income)
    open_accounts = rng.poisson(3.0 + history / 5.0)
    # The lender prices risk it can see, so the rate is informative but noisy.
    interest_rate = 6.0 + 16.0 * debt_to_income + 1.1 * late_payments - 0.06 * history
    interest_rate = np.clip(np.round(interest_rate + rng.normal(0.0, 1.5, rows), 2), 3.5, 29.99)

    return pd.DataFrame(
        {
            "age": age.astype(np.float64),
            "annual_income": income.astype(np.float64),
            "loan_amount": loan_amount.astype(np.float64),
            "debt_to_income": np.round(debt_to_income, 4).astype(np.float64),
            "credit_history_years": history.astype(np.float64),
            "num_late_payments": late_payments.astype(np.float64),
            "interest_rate": interest_rate.astype(np.float64),
            "num_open_accounts": open_accounts.astype(np.float64),
            "home_ownership": home.astype(str),
            "loan_purpose": purpose.astype(str),
            "employment_type": employment.astype(str),
            "region": region.astype(str),
        }
    )


def _lookup(values: np.ndarray, table: dict[str, float]) -> np.ndarray:
    return np.array([table.get(value, 0.0) for value in values], dtype=np.float64)


def _logit_before(frame: pd.DataFrame) -> np.ndarray:
    """The ground truth before any concept shift."""
    dti = frame["debt_to_income"].to_numpy()
    late = frame["num_late_payments"].to_numpy()
    age = frame["age"].to_numpy()
    history = frame["credit_history_years"].to_numpy()
    loan_to_income = frame["loan_amount"].to_numpy() / frame["annual_income"].to_numpy()
    employment = frame["employment_type"].to_numpy()
    purpose = frame["loan_purpose"].to_numpy()
    logit = (
        -2.55
        + 3.2 * (dti - 0.25)
        + 0.5 * late
        + 1.0 * np.log(loan_to_income / 0.22)
        - 0.045 * (history - 10.0)
        + 0.08 * (frame["interest_rate"].to_numpy() - 12.0)
        - 0.015 * (age - 40.0)
        + _lookup(employment, {"unemployed": 1.1, "part_time": 0.35, "self_employed": 0.2})
        + _lookup(frame["home_ownership"].to_numpy(), {"RENT": 0.25, "OWN": -0.25})
        + _lookup(
            purpose,
            {
                "small_business": 0.6,
                "medical": 0.3,
                "credit_card": 0.1,
                "car": -0.2,
                "home_improvement": -0.15,
            },
        )
        # Interactions a linear model on the raw features cannot see.
        + 0.8 * ((employment == "self_employed") & (purpose == "small_business"))
        + 0.6 * (dti - 0.25) * late
        + 0.5 * ((age < 28) & (history < 3.0))
    )
    return logit


def _logit_after(frame: pd.DataFrame) -> np.ndarray:
    """The ground truth once the concept shift is complete: other drivers, the old debt signals weak."""
    dti = frame["debt_to_income"].to_numpy()
    late = frame["num_late_payments"].to_numpy()
    employment = frame["employment_type"].to_numpy()
    purpose = frame["loan_purpose"].to_numpy()
    logit = (
        -2.6
        + 1.2 * (dti - 0.25)
        + 0.2 * late
        + 0.02 * (frame["credit_history_years"].to_numpy() - 10.0)
        - 0.03 * (frame["interest_rate"].to_numpy() - 12.0)
        + _lookup(frame["region"].to_numpy(), {"south": 1.8, "north": -0.6, "west": -0.2})
        + _lookup(employment, {"self_employed": 1.3, "full_time": -0.4, "retired": 0.5})
        + _lookup(purpose, {"car": 1.2, "debt_consolidation": -0.5, "small_business": -0.3})
        + _lookup(frame["home_ownership"].to_numpy(), {"MORTGAGE": 0.9, "RENT": -0.3})
        + 0.9 * ((frame["region"].to_numpy() == "south") & (purpose == "car"))
    )
    return logit


def _labels(frame: pd.DataFrame, uniform: np.ndarray, *, concept: float) -> np.ndarray:
    logit = _logit_before(frame)
    if concept > 0.0:
        logit = (1.0 - concept) * logit + concept * _logit_after(frame)
    probability = 1.0 / (1.0 + np.exp(-logit))
    return (uniform < probability).astype(np.int64)


def _shift_covariates(frame: pd.DataFrame, rng: np.random.Generator, intensity: float) -> pd.DataFrame:
    shifted = frame.copy()
    rows = len(frame)
    shifted["annual_income"] = np.clip(
        np.round(frame["annual_income"].to_numpy() * (1.0 - 0.3 * intensity), -2), 8_000, 400_000
    )
    shifted["debt_to_income"] = np.round(
        np.clip(frame["debt_to_income"].to_numpy() + 0.12 * intensity + rng.normal(0, 0.02, rows), 0.01, 0.9),
        4,
    )
    shifted["interest_rate"] = np.clip(
        np.round(frame["interest_rate"].to_numpy() + 3.0 * intensity, 2), 3.5, 29.99
    )
    shifted["age"] = np.clip(np.round(frame["age"].to_numpy() - 6.0 * intensity), 21, 75)
    return shifted


def _shift_label_prior(
    frame: pd.DataFrame,
    uniform: np.ndarray,
    rng: np.random.Generator,
    intensity: float,
    rows: int,
) -> pd.DataFrame:
    """Resample by class so P(label) moves while P(features | label) stays as it was."""
    labelled = frame.copy()
    labelled[LABEL] = _labels(frame, uniform, concept=0.0)
    pool = _draw_features(rng, rows * _PRIOR_SHIFT_POOL_FACTOR)
    pool[LABEL] = _labels(pool, rng.random(len(pool)), concept=0.0)
    pool = pd.concat([labelled, pool], ignore_index=True)
    base_rate = float(labelled[LABEL].mean())
    target_rate = base_rate + intensity * (_PRIOR_SHIFT_TARGET_RATE - base_rate)
    positives = np.flatnonzero(pool[LABEL].to_numpy() == 1)
    negatives = np.flatnonzero(pool[LABEL].to_numpy() == 0)
    positive_count = min(int(round(target_rate * rows)), len(positives))
    chosen = np.concatenate(
        [
            rng.choice(positives, size=positive_count, replace=False),
            rng.choice(negatives, size=rows - positive_count, replace=False),
        ]
    )
    rng.shuffle(chosen)
    return pool.iloc[chosen].reset_index(drop=True)


def _break_features(frame: pd.DataFrame, rng: np.random.Generator, intensity: float) -> pd.DataFrame:
    broken = frame.copy()
    rows = len(frame)
    in_thousands = rng.random(rows) < intensity
    broken.loc[in_thousands, "annual_income"] = np.round(frame.loc[in_thousands, "annual_income"] / 1000.0, 1)
    missing = rng.random(rows) < intensity
    broken.loc[missing, "debt_to_income"] = np.nan
    return broken
