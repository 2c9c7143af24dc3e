"""Each model's current window kept decoded in memory across rounds, so a round reads only what changed.

A round over 1,000 models with 10,000 rows each cannot afford to read and decode every window again: the
store keeps a row's inputs as JSON text, and decoding 10,000 of them costs about as much as the window's
statistics. Between two rounds (minutes) a model gains a few predictions and labels, so the cache asks the
store what the window holds (``MonitorStore.window_counts``: rows, labelled rows, latest times: one query)
and reads only the difference:

- new predictions: the rows at or after the latest prediction time it holds (those already held are
  dropped by their (request id, row)); when the store then holds more than the cache counted, a
  prediction arrived out of time order and the window is read whole again;
- new labels: the labels received after the latest label time it holds, set on their rows; when the
  labelled count still differs (a label's event time may be older than one already seen, or equal to it),
  all the window's labels are read again (labels only, no inputs to decode). Strictly after: the labels
  received at that time are held already, and a fleet's first labels often share one time (thousands a
  window, read again every round with at-or-after).

The store stays the truth: every round checks the counts, and anything unexpected (a new window, a new
version, fewer rows than held, a window larger than the check's ``limit``) reads the window whole, as
``MonitorStore.window`` would. The frames hold the input features and ``__score__``, ``__label__`` and
``__timestamp__`` (what a check reads), not the request ids (rows are matched by a hash of (request id,
row) instead, which keeps the memory per row to the features).

Memory is bounded by ``max_rows`` in total (``mlops:monitoring.monitor.window_cache_rows``): past it the
least recently used windows are dropped and read whole when next checked. A frame the cache returns is
shared with it: callers read it, never modify it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from platform_components.monitoring.errors import InvalidInput
from platform_components.monitoring.store import (
    LABEL_COLUMN,
    REQUEST_COLUMN,
    ROW_COLUMN,
    TIMESTAMP_COLUMN,
    VERSION_COLUMN,
    MonitorStore,
    WindowCounts,
)

logger = logging.getLogger(__name__)

#: Rows held in memory at most by default, equal to ``MonitorSettings.window_cache_rows``'s default: the round
#: benchmark (bench/bench_monitor_round.py) held 1.03 M rows of a dozen features at 652 MB RSS, so 2 M fit the
#: monitor's 2Gi limit; 200 models of 10,000 rows per replica.
DEFAULT_MAX_ROWS = 2_000_000
_DROPPED = (REQUEST_COLUMN, ROW_COLUMN, VERSION_COLUMN)


def _keys(request_ids: object, rows: object) -> np.ndarray:
    # Python's hash of a (str, int) tuple: stable within the process, which is all a cache needs; a
    # collision would only misplace a label inside rows of one window, and the counts check catches it.
    return np.fromiter(
        (hash((str(request), int(row))) for request, row in zip(request_ids, rows, strict=True)),  # type: ignore[call-overload]
        dtype=np.int64,
    )


@dataclass
class _Entry:
    start: float
    end: float
    frame: pd.DataFrame
    keys: np.ndarray
    store_rows: int
    store_labelled: int
    last_timestamp: float | None
    last_received_at: float | None


@dataclass
class CacheStats:
    """What the cache did since it was made (the benchmark and the tests read these)."""

    full_reads: int = 0
    incremental_reads: int = 0
    rows_read: int = 0
    labels_read: int = 0
    evictions: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(vars(self))


@dataclass
class WindowCache:
    """Decoded windows per (model, version), kept in step with the store (see the module docstring).

    Attributes:
        max_rows: rows held at most over all windows (the least recently used are dropped past it).
    """

    max_rows: int = DEFAULT_MAX_ROWS
    stats: CacheStats = field(default_factory=CacheStats)
    _entries: OrderedDict[tuple[str, str], _Entry] = field(default_factory=OrderedDict, repr=False)
    _rows: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.max_rows, bool) or not isinstance(self.max_rows, int) or self.max_rows < 0:
            raise InvalidInput(
                f"window_cache_rows={self.max_rows!r} must be a whole number >= 0 (0 turns the cache off), "
                f"e.g. {DEFAULT_MAX_ROWS}"
            )

    @property
    def rows(self) -> int:
        """Rows held now."""
        return self._rows

    def counts(self, model: str, version: str, *, start: float, end: float) -> WindowCounts | None:
        """The counts the window was last brought in step with (None: not held), for callers that would
        otherwise ask the store again in the same round."""
        entry = self._entries.get((model, version))
        if entry is None or (entry.start, entry.end) != (start, end):
            return None
        return WindowCounts(
            entry.store_rows, entry.store_labelled, entry.last_timestamp, entry.last_received_at
        )

    def window(
        self,
        store: MonitorStore,
        model: str,
        version: str,
        *,
        start: float,
        end: float,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """The rows of ``store.window(model, version, start=start, end=end, limit=limit)``, in the same
        order, with the features, ``__score__``, ``__label__`` and ``__timestamp__``."""
        key = (model, version)
        counts = store.window_counts(model, version, start=start, end=end)
        entry = self._entries.get(key)
        fits = (limit is None or counts.rows <= limit) and counts.rows <= self.max_rows
        if entry is not None and fits and (entry.start, entry.end) == (start, end):
            if self._catch_up(store, model, version, entry, counts):
                self._entries.move_to_end(key)
                self.stats.incremental_reads += 1
                return entry.frame
        return self._read_whole(store, model, version, start, end, limit, counts, fits)

    def forget(self, model: str, version: str | None = None) -> None:
        """Drop a model's windows (one version's, or all)."""
        for key in [key for key in self._entries if key[0] == model and version in (None, key[1])]:
            self._drop(key)

    # -- internals -----------------------------------------------------------------------------------

    def _read_whole(
        self,
        store: MonitorStore,
        model: str,
        version: str,
        start: float,
        end: float,
        limit: int | None,
        counts: WindowCounts,
        fits: bool,
    ) -> pd.DataFrame:
        self.forget(model, version)
        window = store.window(model, version, start=start, end=end, limit=limit)
        self.stats.full_reads += 1
        self.stats.rows_read += len(window)
        keys = _keys(window[REQUEST_COLUMN], window[ROW_COLUMN]) if len(window) else np.empty(0, np.int64)
        frame = window.drop(columns=[name for name in _DROPPED if name in window.columns])
        if not fits or len(frame) != counts.rows:
            # Too large to keep, or the store changed between the two reads: serve it, hold nothing.
            return frame
        entry = _Entry(
            start,
            end,
            frame,
            keys,
            counts.rows,
            counts.labelled,
            counts.last_timestamp,
            counts.last_received_at,
        )
        self._entries[(model, version)] = entry
        self._rows += len(frame)
        self._evict()
        return frame

    def _catch_up(
        self, store: MonitorStore, model: str, version: str, entry: _Entry, counts: WindowCounts
    ) -> bool:
        """Bring ``entry`` in step with ``counts``; False when only a whole read can (nothing is left half
        changed that matters: the caller reads the window whole and replaces the entry)."""
        if counts.rows < entry.store_rows:
            return False
        if counts.rows > entry.store_rows:
            # Read from the latest held time on, the rows held at that time included, and put them in place
            # of those: rows sharing a time are ordered by request id, which the cache does not keep.
            since = entry.last_timestamp if entry.last_timestamp is not None else entry.start
            new = store.window(model, version, start=since, end=entry.end)
            self.stats.rows_read += len(new)
            kept = int(np.searchsorted(entry.frame[TIMESTAMP_COLUMN].to_numpy(), since, side="left"))
            if kept + len(new) != counts.rows:
                return False  # a prediction older than the latest one held arrived: read it whole
            new_keys = _keys(new[REQUEST_COLUMN], new[ROW_COLUMN]) if len(new) else np.empty(0, np.int64)
            new = new.drop(columns=[name for name in _DROPPED if name in new.columns])
            self._rows += kept + len(new) - len(entry.frame)
            entry.frame = pd.concat([entry.frame.iloc[:kept], new], ignore_index=True, sort=False)
            entry.keys = np.concatenate([entry.keys[:kept], new_keys])
            entry.store_rows = counts.rows
            entry.last_timestamp = counts.last_timestamp
        labelled = int(entry.frame[LABEL_COLUMN].notna().sum())
        if labelled != counts.labelled:
            since = entry.last_received_at
            if since is not None:
                labelled = self._apply_labels(store, model, version, entry, since)
            if labelled != counts.labelled:
                labelled = self._apply_labels(store, model, version, entry, None)
            if labelled != counts.labelled:
                return False
        entry.store_labelled = counts.labelled
        entry.last_received_at = counts.last_received_at
        self._evict()
        return True

    def _apply_labels(
        self, store: MonitorStore, model: str, version: str, entry: _Entry, since: float | None
    ) -> int:
        """Set the labels received after ``since`` (None: all, replacing the column); the labelled count."""
        found = store.window_labels(model, version, start=entry.start, end=entry.end, received_after=since)
        self.stats.labels_read += len(found)
        labels = entry.frame[LABEL_COLUMN].to_numpy(dtype=object, copy=True)
        if since is None:
            labels[:] = None
        if found:
            position = {key: index for index, key in enumerate(entry.keys.tolist())}
            for request_id, row, label in found:
                index = position.get(hash((request_id, row)))
                if index is not None:
                    labels[index] = label
        entry.frame[LABEL_COLUMN] = pd.Series(labels, dtype=object, index=entry.frame.index)
        return int(entry.frame[LABEL_COLUMN].notna().sum())

    def _drop(self, key: tuple[str, str]) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._rows -= len(entry.frame)

    def _evict(self) -> None:
        while self._rows > self.max_rows and self._entries:
            key = next(iter(self._entries))
            self._drop(key)
            self.stats.evictions += 1
