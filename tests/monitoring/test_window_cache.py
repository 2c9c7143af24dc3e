"""The window cache serves what ``MonitorStore.window`` reads, on both backends, while reading only changes.

Each step changes the store the way a round sees it change (new predictions, late labels, a prediction
older than the latest, a new window, a new version) and compares the cached frame with a fresh read of the
whole window, column by column, and the statistics of a check on both.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from platform_components.monitoring.errors import InvalidInput
from platform_components.monitoring.store import (
    LABEL_COLUMN,
    SCORE_COLUMN,
    TIMESTAMP_COLUMN,
    MonitorStore,
    open_store,
)
from platform_components.monitoring.window_cache import WindowCache
from platform_components.serving.predlog import PredictionRecord

MODEL = "m0"
DAY = 86400.0
START = 20_000 * DAY
COLUMNS = ["income", "purpose", SCORE_COLUMN, LABEL_COLUMN, TIMESTAMP_COLUMN]


def records(
    first: int, count: int, *, at: float, rows: int = 2, version: str = "1"
) -> list[PredictionRecord]:
    """``count`` requests of ``rows`` rows each from ``at`` on, one a second (two share each time)."""
    rng = np.random.default_rng(first)
    return [
        PredictionRecord(
            f"r{first + index}",
            MODEL,
            version,
            at + (index // 2),
            {
                "income": rng.normal(50, 10, rows).tolist(),
                "purpose": rng.choice(["car", "house"], rows).tolist(),
            },
            {"predict_proba": [[1 - p, p] for p in rng.random(rows)]},
        )
        for index in range(count)
    ]


def same_as_store(
    cache: WindowCache, store: MonitorStore, *, start: float = START, version: str = "1"
) -> pd.DataFrame:
    cached = cache.window(store, MODEL, version, start=start, end=start + DAY)
    fresh = store.window(MODEL, version, start=start, end=start + DAY)
    assert list(cached.columns) == [name for name in fresh.columns if name in cached.columns]
    pd.testing.assert_frame_equal(
        cached[COLUMNS].reset_index(drop=True), fresh[COLUMNS].reset_index(drop=True), check_dtype=False
    )
    return cached


def test_the_cache_follows_predictions_and_labels_reading_only_what_changed(store_url: str) -> None:
    cache = WindowCache()
    with open_store(store_url) as store:
        store.ingest(records(0, 100, at=START))
        same_as_store(cache, store)
        assert (cache.stats.full_reads, cache.stats.rows_read) == (1, 200)
        # New predictions: only rows at or after the latest held time are read (two held share it).
        store.ingest(records(100, 10, at=START + 49))
        same_as_store(cache, store)
        assert cache.stats.full_reads == 1 and cache.stats.rows_read == 200 + 2 * 2 + 20  # 2 held at 49 s
        # Labels on old and new rows: only those received after the latest label time held are read.
        for index in (3, 50, 105):
            store.add_labels(f"r{index}", [1, 0], received_at=START + 60)
        same_as_store(cache, store)
        store.add_labels("r7", [True, False], received_at=START + 70)
        before = cache.stats.labels_read
        frame = same_as_store(cache, store)
        assert cache.stats.labels_read - before == 2  # r7 alone: the six received at START + 60 are held
        assert int(frame[LABEL_COLUMN].notna().sum()) == 8
        # A label received at the latest time held, not after it: the count differs, all are read again.
        store.add_labels("r8", [1, 1], received_at=START + 70)
        before = cache.stats.labels_read
        frame = same_as_store(cache, store)
        assert cache.stats.labels_read - before == 10
        assert int(frame[LABEL_COLUMN].notna().sum()) == 10
        # A label whose event time is older than one seen: the count differs, all labels are read again.
        store.add_labels("r9", [0, 1], received_at=START + 65)
        same_as_store(cache, store)
        # A prediction older than the latest held one: the counts do not add up, the window is read whole.
        store.ingest(records(500, 1, at=START + 10))
        same_as_store(cache, store)
        assert cache.stats.full_reads == 2
        # Nothing changed: nothing is read.
        reads = (cache.stats.rows_read, cache.stats.labels_read, cache.stats.full_reads)
        same_as_store(cache, store)
        assert (cache.stats.rows_read, cache.stats.labels_read, cache.stats.full_reads) == reads
        # The next window, and another version, are windows of their own.
        store.ingest(records(600, 5, at=START + DAY))
        same_as_store(cache, store, start=START + DAY)
        store.ingest(records(700, 5, at=START + DAY, version="2"))
        same_as_store(cache, store, start=START + DAY, version="2")
        assert cache.rows == 10 + 10  # version 1's next window took the place of its old one


def test_checks_on_the_cached_window_give_the_statistics_of_the_whole_read(tmp_path) -> None:
    from platform_components.monitoring.monitor import MonitorConfig, check_frame
    from platform_components.monitoring.profile import build_reference_profile

    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {"income": rng.normal(50, 10, 2000), "purpose": rng.choice(["car", "house"], 2000)}
    )
    profile = build_reference_profile(
        reference, numeric=["income"], categorical=["purpose"], prediction_scores=rng.random(2000)
    )
    cache = WindowCache()
    with MonitorStore(tmp_path / "monitor.sqlite") as store:
        for step in range(4):
            store.ingest(records(step * 100, 100, at=START + step * 50))
            cached = cache.window(store, MODEL, "1", start=START, end=START + DAY)
            fresh = store.window(MODEL, "1", start=START, end=START + DAY)
            config = MonitorConfig(min_rows=10)
            assert check_frame(cached, profile, config, scores=cached[SCORE_COLUMN]) == check_frame(
                fresh, profile, config, scores=fresh[SCORE_COLUMN]
            )
    assert cache.stats.full_reads == 1 and cache.stats.incremental_reads == 3


def test_the_cache_holds_at_most_its_rows_and_reads_evicted_windows_whole(tmp_path) -> None:
    cache = WindowCache(max_rows=300)
    with MonitorStore(tmp_path / "monitor.sqlite") as store:
        store.ingest(records(0, 100, at=START))  # 200 rows in version 1
        store.ingest(records(1000, 100, at=START, version="2"))  # 200 rows in version 2
        cache.window(store, MODEL, "1", start=START, end=START + DAY)
        cache.window(store, MODEL, "2", start=START, end=START + DAY)
        assert cache.rows <= 300 and cache.stats.evictions == 1
        same_as_store(cache, store)  # version 1 was dropped: read whole again, and right
        assert cache.stats.full_reads == 3
        # A window larger than the check's limit is served from the store and not held.
        frame = cache.window(store, MODEL, "2", start=START, end=START + DAY, limit=50)
        assert len(frame) == 50 and cache.counts(MODEL, "2", start=START, end=START + DAY) is None


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_a_bad_cache_size_is_refused_naming_the_setting(bad: object) -> None:
    with pytest.raises(InvalidInput, match=r"window_cache_rows=.* must be a whole number >= 0"):
        WindowCache(max_rows=bad)  # type: ignore[arg-type]
