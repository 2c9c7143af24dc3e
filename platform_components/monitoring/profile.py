"""Reference data profile: what the monitor compares every window against.

Built once from the training data when a model version is trained and logged with it as the run artifact
``monitoring/reference_profile.json``. It holds everything the drift checks need so that a check never
touches the training data again:

- numeric features: a sorted, deterministic subsample (for KS against a pre-sorted reference), quantile bin
  edges with the reference proportion per bin (for PSI), min/max (for out-of-range checks), missing rate;
- categorical features: the proportion of each category plus an ``other`` bucket (for chi-square and PSI,
  and for unseen-category checks), missing rate;
- the prediction score distribution (for prediction drift), profiled like a numeric feature.

The JSON carries ``schema_version``; ``from_json`` refuses versions it does not know.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from platform_components.monitoring.errors import InvalidInput

SCHEMA_VERSION = 1
OTHER_CATEGORY = "__other__"
DEFAULT_SAMPLE_SIZE = 10_000
DEFAULT_BINS = 10
DEFAULT_MAX_CATEGORIES = 50
PREDICTION_FEATURE = "__prediction__"


@dataclass(frozen=True)
class NumericProfile:
    """Reference of one numeric column.

    Attributes:
        count: non-missing values seen in the reference.
        missing_rate: share of missing (NaN/None) values.
        minimum: smallest non-missing value.
        maximum: largest non-missing value.
        mean: mean of non-missing values.
        std: standard deviation (ddof=0) of non-missing values.
        sample: sorted values; all of them, or evenly spaced order statistics when there are more than the
            cap (deterministic, and the best approximation of the reference ECDF at that size).
        bin_edges: inner quantile edges, strictly increasing; bins ``(-inf, e0], (e0, e1], ..., (ek, inf)``.
        bin_proportions: reference share of non-missing values per bin (``len(bin_edges) + 1`` values).
    """

    count: int
    missing_rate: float
    minimum: float
    maximum: float
    mean: float
    std: float
    sample: np.ndarray
    bin_edges: np.ndarray
    bin_proportions: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "missing_rate": self.missing_rate,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "mean": self.mean,
            "std": self.std,
            "sample": self.sample.tolist(),
            "bin_edges": self.bin_edges.tolist(),
            "bin_proportions": self.bin_proportions.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericProfile:
        return cls(
            count=int(data["count"]),
            missing_rate=float(data["missing_rate"]),
            minimum=float(data["minimum"]),
            maximum=float(data["maximum"]),
            mean=float(data["mean"]),
            std=float(data["std"]),
            sample=np.asarray(data["sample"], dtype=np.float64),
            bin_edges=np.asarray(data["bin_edges"], dtype=np.float64),
            bin_proportions=np.asarray(data["bin_proportions"], dtype=np.float64),
        )


@dataclass(frozen=True)
class CategoricalProfile:
    """Reference of one categorical column.

    Attributes:
        count: non-missing values seen in the reference.
        missing_rate: share of missing values.
        categories: the kept categories (as strings), most frequent first.
        proportions: reference share per kept category, then one last value for the ``other`` bucket
            (rare categories beyond the cap; categories never seen in training also land there).
    """

    count: int
    missing_rate: float
    categories: tuple[str, ...]
    proportions: np.ndarray

    @property
    def other_proportion(self) -> float:
        return float(self.proportions[-1])

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "missing_rate": self.missing_rate,
            "categories": list(self.categories),
            "proportions": self.proportions.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalProfile:
        categories = tuple(str(value) for value in data["categories"])
        proportions = np.asarray(data["proportions"], dtype=np.float64)
        if len(proportions) != len(categories) + 1:
            raise InvalidInput(
                f"categorical profile: proportions has {len(proportions)} values, expected "
                f"{len(categories) + 1} (one per category plus 'other'); rebuild the profile"
            )
        return cls(
            count=int(data["count"]),
            missing_rate=float(data["missing_rate"]),
            categories=categories,
            proportions=proportions,
        )


@dataclass(frozen=True)
class ReferenceProfile:
    """The reference a model version is monitored against (see the module docstring).

    Attributes:
        row_count: rows in the training frame.
        numeric: numeric feature name -> profile.
        categorical: categorical feature name -> profile.
        prediction: profile of the model's scores on the reference data, when given.
        schema_version: JSON layout version.
    """

    row_count: int
    numeric: dict[str, NumericProfile]
    categorical: dict[str, CategoricalProfile]
    prediction: NumericProfile | None = None
    schema_version: int = SCHEMA_VERSION
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        """Every profiled feature, numeric first, in the order given at build time."""
        return [*self.numeric, *self.categorical]

    def to_json(self) -> str:
        """Serialise; floats round-trip exactly (JSON uses ``repr``)."""
        return json.dumps(
            {
                "schema_version": self.schema_version,
                "row_count": self.row_count,
                "numeric": {name: profile.to_dict() for name, profile in self.numeric.items()},
                "categorical": {name: profile.to_dict() for name, profile in self.categorical.items()},
                "prediction": None if self.prediction is None else self.prediction.to_dict(),
                "metadata": self.metadata,
            },
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ReferenceProfile:
        """Parse what ``to_json`` wrote.

        Raises:
            InvalidInput: the text is not a profile or its schema_version is unknown.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidInput(
                f"reference profile: not JSON ({error}); expected ReferenceProfile.to_json() output"
            ) from None
        if not isinstance(data, dict) or "schema_version" not in data:
            raise InvalidInput(
                "reference profile: missing field 'schema_version'; expected ReferenceProfile JSON"
            )
        version = data["schema_version"]
        if version != SCHEMA_VERSION:
            raise InvalidInput(
                f"reference profile: schema_version={version!r} is not supported (this code reads "
                f"{SCHEMA_VERSION}); rebuild the profile with build_reference_profile"
            )
        try:
            prediction = data.get("prediction")
            return cls(
                row_count=int(data["row_count"]),
                numeric={name: NumericProfile.from_dict(item) for name, item in data["numeric"].items()},
                categorical={
                    name: CategoricalProfile.from_dict(item) for name, item in data["categorical"].items()
                },
                prediction=None if prediction is None else NumericProfile.from_dict(prediction),
                schema_version=version,
                metadata=dict(data.get("metadata") or {}),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidInput(f"reference profile: malformed ({error!r}); rebuild it") from None


def _as_float_array(values: Any, name: str) -> np.ndarray:
    try:
        return pd.to_numeric(pd.Series(values), errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (ValueError, TypeError) as error:
        raise InvalidInput(
            f"numeric feature {name!r}: values are not numbers ({error}); list it under categorical instead"
        ) from None


def sorted_sample(values: np.ndarray, cap: int) -> np.ndarray:
    """Sorted values, or ``cap`` evenly spaced order statistics of them (deterministic)."""
    ordered = np.sort(values)
    if len(ordered) <= cap:
        return ordered
    positions = np.linspace(0, len(ordered) - 1, cap).round().astype(np.int64)
    return ordered[positions]


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Inner quantile edges, de-duplicated (ties or discrete data give fewer, wider bins)."""
    if bins < 2:
        return np.empty(0)
    # Edges are data values (inverted CDF) so discrete data gives edges on its support, not between it.
    quantiles = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1], method="inverted_cdf")
    edges = np.unique(quantiles)
    # An edge equal to the maximum would make an always-empty last bin; drop it.
    return edges[edges < values.max()]


def bin_proportions(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` per bin ``(-inf, e0], (e0, e1], ..., (ek, inf)``."""
    indices = np.searchsorted(edges, values, side="left")
    counts = np.bincount(indices, minlength=len(edges) + 1)
    return counts / max(len(values), 1)


def profile_numeric(
    values: Any, name: str, *, sample_size: int = DEFAULT_SAMPLE_SIZE, bins: int = DEFAULT_BINS
) -> NumericProfile:
    """Profile one numeric column (see ``NumericProfile``).

    Raises:
        InvalidInput: the column is not numeric or has no non-missing value.
    """
    array = _as_float_array(values, name)
    if np.isinf(array).any():
        raise InvalidInput(
            f"numeric feature {name!r}: contains infinite values; replace them before profiling"
        )
    missing = np.isnan(array)
    present = array[~missing]
    if len(present) == 0:
        raise InvalidInput(
            f"numeric feature {name!r}: all {len(array)} values are missing; drop it or fix the data"
        )
    edges = quantile_edges(present, bins)
    return NumericProfile(
        count=len(present),
        missing_rate=float(missing.mean()) if len(array) else 0.0,
        minimum=float(present.min()),
        maximum=float(present.max()),
        mean=float(present.mean()),
        std=float(present.std()),
        sample=sorted_sample(present, sample_size),
        bin_edges=edges,
        bin_proportions=bin_proportions(present, edges),
    )


def category_strings(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """(strings, missing mask): categories compared as strings so 1, "1" and 1.0-from-JSON agree."""
    series = pd.Series(values, dtype=object)
    missing = series.isna().to_numpy()

    def as_text(value: Any) -> str:
        # JSON turns integer categories into floats on some paths; 2.0 and 2 are the same category.
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    strings = np.array([as_text(value) for value in series[~missing]], dtype=object)
    return strings, missing


def profile_categorical(
    values: Any, name: str, *, max_categories: int = DEFAULT_MAX_CATEGORIES
) -> CategoricalProfile:
    """Profile one categorical column (see ``CategoricalProfile``).

    Raises:
        InvalidInput: the column has no non-missing value.
    """
    strings, missing = category_strings(values)
    if len(strings) == 0:
        raise InvalidInput(
            f"categorical feature {name!r}: all {len(missing)} values are missing; drop it or fix the data"
        )
    counts = pd.Series(strings).value_counts(sort=True)
    # Ties in frequency are broken by name so the profile does not depend on row order.
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = ordered[:max_categories]
    total = len(strings)
    kept_share = [count / total for _, count in kept]
    other_share = max(0.0, 1.0 - sum(kept_share)) if len(ordered) > len(kept) else 0.0
    return CategoricalProfile(
        count=total,
        missing_rate=float(missing.mean()),
        categories=tuple(str(category) for category, _ in kept),
        proportions=np.asarray([*kept_share, other_share], dtype=np.float64),
    )


def build_reference_profile(
    frame: pd.DataFrame,
    *,
    numeric: Sequence[str],
    categorical: Sequence[str],
    prediction_scores: Sequence[float] | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    bins: int = DEFAULT_BINS,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    metadata: Mapping[str, Any] | None = None,
) -> ReferenceProfile:
    """Profile the training frame for drift, quality and prediction-drift checks.

    Args:
        frame: training features (the label column may be present; it is ignored unless listed).
        numeric: numeric feature names.
        categorical: categorical feature names.
        prediction_scores: the model's score per reference row (for a binary classifier, the positive-class
            probability), e.g. on the holdout; profiled like a numeric feature.
        sample_size: cap of the sorted KS sample per numeric feature.
        bins: quantile bins per numeric feature for PSI.
        max_categories: categories kept per categorical feature; rarer ones go to ``other``.
        metadata: free-form JSON-able facts to keep with the profile (e.g. the label column).

    Raises:
        InvalidInput: a listed column is missing, listed twice, or unusable; the message names it.
    """
    if sample_size < 10:
        raise InvalidInput(f"sample_size={sample_size} is too small; use at least 10 (default 10000)")
    listed = [*numeric, *categorical]
    duplicates = sorted({name for name in listed if listed.count(name) > 1})
    if duplicates:
        raise InvalidInput(
            f"features {duplicates} are listed more than once; list each as numeric or categorical"
        )
    absent = [name for name in listed if name not in frame.columns]
    if absent:
        raise InvalidInput(
            f"features {absent} are not columns of the frame (columns: {list(frame.columns)}); fix the lists"
        )
    if not listed:
        raise InvalidInput("no features given: pass numeric=[...] and/or categorical=[...]")
    prediction = None
    if prediction_scores is not None:
        scores = np.asarray(prediction_scores, dtype=np.float64)
        if scores.ndim != 1:
            raise InvalidInput(
                f"prediction_scores has shape {scores.shape}; pass one score per row "
                "(for a binary classifier the positive-class probability)"
            )
        prediction = profile_numeric(scores, PREDICTION_FEATURE, sample_size=sample_size, bins=bins)
    return ReferenceProfile(
        row_count=len(frame),
        numeric={
            name: profile_numeric(frame[name], name, sample_size=sample_size, bins=bins) for name in numeric
        },
        categorical={
            name: profile_categorical(frame[name], name, max_categories=max_categories)
            for name in categorical
        },
        prediction=prediction,
        metadata=dict(metadata or {}),
    )


def is_finite_number(value: Any) -> bool:
    """True for an int/float that is not NaN or infinite (bool excluded)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
