"""Data quality of a window against the reference profile: missing, out of range, unseen categories."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from platform_components.monitoring.profile import ReferenceProfile, category_strings


@dataclass(frozen=True)
class FeatureQuality:
    """Quality of one feature in a window.

    Attributes:
        feature: column name.
        kind: ``numeric`` or ``categorical``.
        rows: rows in the window.
        missing_rate: share of rows with the value missing (1.0 when the column is absent).
        reference_missing_rate: the same share in the training data.
        out_of_range_rate: numeric: share of present values below the training minimum or above its maximum.
        unseen_rate: categorical: share of present values that are not among the profiled categories.
        unseen_examples: up to five such values, to help find the cause.
        column_present: False when the window has no such column at all.
    """

    feature: str
    kind: str
    rows: int
    missing_rate: float
    reference_missing_rate: float
    out_of_range_rate: float = 0.0
    unseen_rate: float = 0.0
    unseen_examples: tuple[str, ...] = ()
    column_present: bool = True


@dataclass(frozen=True)
class QualityReport:
    """Quality of every profiled feature in one window."""

    rows: int
    features: dict[str, FeatureQuality]

    @property
    def missing_rate(self) -> float:
        """Mean missing rate over features (0 for an empty window)."""
        if not self.features:
            return 0.0
        return float(np.mean([item.missing_rate for item in self.features.values()]))

    @property
    def out_of_range_rate(self) -> float:
        """Largest out-of-range share over numeric features."""
        return max((item.out_of_range_rate for item in self.features.values()), default=0.0)

    @property
    def unseen_rate(self) -> float:
        """Largest unseen-category share over categorical features."""
        return max((item.unseen_rate for item in self.features.values()), default=0.0)

    @property
    def absent_columns(self) -> list[str]:
        return [name for name, item in self.features.items() if not item.column_present]

    def to_dict(self) -> dict:
        return {
            "rows": self.rows,
            "missing_rate": self.missing_rate,
            "out_of_range_rate": self.out_of_range_rate,
            "unseen_rate": self.unseen_rate,
            "absent_columns": self.absent_columns,
            "features": {name: asdict(item) for name, item in self.features.items()},
        }


def check_quality(
    frame: pd.DataFrame,
    profile: ReferenceProfile,
    *,
    numeric_counts: dict[str, tuple[int, int]] | None = None,
) -> QualityReport:
    """Compare one window's features with the profile.

    A column the profile knows but the window lacks counts as fully missing (a broken upstream feature
    should be loud, not skipped). Values that are not numbers in a numeric column count as missing.

    Args:
        frame: the window.
        profile: the reference profile.
        numeric_counts: per numeric feature (present values, values out of range) when the caller has
            them already (the drift check computes them on its sorted columns).
    """
    rows = len(frame)
    features: dict[str, FeatureQuality] = {}
    for name, numeric in profile.numeric.items():
        if numeric_counts is not None and name in numeric_counts and name in frame.columns:
            present_count, outside_count = numeric_counts[name]
            features[name] = FeatureQuality(
                feature=name,
                kind="numeric",
                rows=rows,
                missing_rate=(rows - present_count) / rows if rows else 0.0,
                reference_missing_rate=numeric.missing_rate,
                out_of_range_rate=outside_count / present_count if present_count else 0.0,
            )
            continue
        if name not in frame.columns:
            features[name] = FeatureQuality(
                name, "numeric", rows, 1.0, numeric.missing_rate, column_present=False
            )
            continue
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(values)
        present = values[~missing]
        outside = ((present < numeric.minimum) | (present > numeric.maximum)).sum() if len(present) else 0
        features[name] = FeatureQuality(
            feature=name,
            kind="numeric",
            rows=rows,
            missing_rate=float(missing.mean()) if rows else 0.0,
            reference_missing_rate=numeric.missing_rate,
            out_of_range_rate=float(outside / len(present)) if len(present) else 0.0,
        )
    for name, categorical in profile.categorical.items():
        if name not in frame.columns:
            features[name] = FeatureQuality(
                name, "categorical", rows, 1.0, categorical.missing_rate, column_present=False
            )
            continue
        strings, missing = category_strings(frame[name])
        known = set(categorical.categories)
        unseen_mask = np.array([value not in known for value in strings], dtype=bool)
        unseen_values = pd.unique(strings[unseen_mask])[:5] if unseen_mask.any() else []
        features[name] = FeatureQuality(
            feature=name,
            kind="categorical",
            rows=rows,
            missing_rate=float(missing.mean()) if rows else 0.0,
            reference_missing_rate=categorical.missing_rate,
            unseen_rate=float(unseen_mask.mean()) if len(strings) else 0.0,
            unseen_examples=tuple(str(value) for value in unseen_values),
        )
    return QualityReport(rows=rows, features=features)
