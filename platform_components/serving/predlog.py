"""The prediction log: a durable, append-only, idempotent write-ahead log of served predictions.

Every prediction the serving runtime answers is appended here *before* the response leaves the server
(``PredictionLog.append`` returns only after ``fdatasync``), keyed by the request id so a replayed request
is stored once.

It lives in ``serving/`` because it runs inside the serving process. Its public reader, the one part the
monitor (``monitoring/store.py``, ``monitoring/service.py``) may import, is :class:`PredictionRecord`,
:func:`read_records` and :func:`read_records_from`; everything else here is the writer's internals
(``monitoring/`` and ``serving/`` never import each other's internals).

Layout: ``<directory>/segment-<sequence>.jsonl``, one JSON object per line, segments rotated by size and
deleted oldest-first once the total exceeds the retention budget. A crash can leave at most one torn
(newline-less) last line; readers skip it and the next writer truncates it away before appending.

One writer per directory: an exclusive ``flock`` on ``<directory>/.lock`` makes a second writing
process fail loudly instead of interleaving lines.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platform_components.errors import ConfigError, PlatformError

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
DEFAULT_SEGMENT_BYTES = 16 * MIB
DEFAULT_RETENTION_BYTES = 1024 * MIB

_SEGMENT_PATTERN = re.compile(r"^segment-(\d{12})\.jsonl$")
_LOCK_NAME = ".lock"


class PredictionLogError(PlatformError):
    """The prediction log could not be opened or written."""


@dataclass(frozen=True)
class PredictionRecord:
    """One served request (possibly several rows).

    Attributes:
        request_id: The V2 request id; the idempotency key. Rows are addressed as (request_id, row index).
        model: Served model name (e.g. ``credit-default``).
        version: Registered model version that answered.
        timestamp: Unix seconds when the prediction was made.
        inputs: Column name -> values, one per row.
        outputs: Output name -> per-row values; a ``predict_proba`` classifier gives one output whose
            per-row value is the list of class probabilities.
    """

    request_id: str
    model: str
    version: str
    timestamp: float
    inputs: dict[str, list] = field(default_factory=dict)
    outputs: dict[str, list] = field(default_factory=dict)

    def to_json(self) -> str:
        """One compact JSON line (without the newline)."""
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"), default=_json_default)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PredictionRecord:
        return cls(
            request_id=str(data["request_id"]),
            model=str(data["model"]),
            version=str(data["version"]),
            timestamp=float(data["timestamp"]),
            inputs=dict(data.get("inputs") or {}),
            outputs=dict(data.get("outputs") or {}),
        )

    @property
    def row_count(self) -> int:
        """Number of rows in this request (length of the first input column)."""
        for values in self.inputs.values():
            return len(values)
        return 0


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays reach us from model outputs; keep the log free of numpy types.
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"cannot store a value of type {type(value).__name__} in the prediction log")


def _segment_name(sequence: int) -> str:
    return f"segment-{sequence:012d}.jsonl"


def _list_segments(directory: Path) -> list[tuple[int, Path]]:
    segments = []
    for path in directory.iterdir():
        match = _SEGMENT_PATTERN.match(path.name)
        if match:
            segments.append((int(match.group(1)), path))
    segments.sort()
    return segments


def _fsync_directory(directory: Path) -> None:
    # A new or deleted file is durable only once its directory entry is.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _iter_lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """Yield (line number, line bytes without newline, complete?) for a segment file."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            complete = line.endswith(b"\n")
            yield number, line.rstrip(b"\n"), complete


def read_records(directory: Path) -> Iterator[PredictionRecord]:
    """Every record in append order.

    Tolerates a torn last line (a crash mid-append): a line without its newline is skipped, since its
    append never returned. Safe to call while a writer appends (the same rule covers a line being written).

    Args:
        directory: The log directory (``<state_dir>/predictions/<model_name>``).

    Raises:
        PredictionLogError: a complete line is not a valid record (corruption), naming file and line.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return
    for _, path in _list_segments(directory):
        try:
            lines = list(_iter_lines(path))
        except FileNotFoundError:
            # Retention deleted this segment between listing and opening: its records are gone on purpose.
            continue
        for number, line, complete in lines:
            if not complete:
                logger.warning(
                    "skipping torn last line %d of %s (a crash interrupted that append)", number, path
                )
                continue
            if not line.strip():
                continue
            try:
                yield PredictionRecord.from_dict(json.loads(line))
            except (ValueError, KeyError, TypeError) as error:
                raise PredictionLogError(
                    f"{path}:{number}: not a prediction record ({error}); the log is corrupt, move that "
                    "segment aside to continue"
                ) from error


def read_records_from(
    directory: Path, sequence: int = 0, offset: int = 0
) -> Iterator[tuple[PredictionRecord, int, int]]:
    """Records after the position ``(segment sequence, byte offset)``, each with the position just past it.

    A reader that saves the last position it handled resumes there instead of re-reading the whole log.
    Reading stops at a line without its newline (being written, or torn by a crash: the next writer cuts it
    off), so a saved position is always at a line boundary.

    Raises:
        PredictionLogError: a complete line is not a valid record (corruption), naming file and offset.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return
    for current, path in _list_segments(directory):
        if current < sequence:
            continue
        position = offset if current == sequence else 0
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            continue  # retention deleted it after listing: its records are gone on purpose
        with handle:
            handle.seek(position)
            for line in handle:
                if not line.endswith(b"\n"):
                    return
                start, position = position, position + len(line)
                if not line.strip():
                    continue
                try:
                    record = PredictionRecord.from_dict(json.loads(line))
                except (ValueError, KeyError, TypeError) as error:
                    raise PredictionLogError(
                        f"{path} at byte {start}: not a prediction record ({error}); the log is corrupt, "
                        "move that segment aside to continue"
                    ) from error
                yield record, current, position


class PredictionLog:
    """Durable, idempotent, size-bounded append-only log; thread-safe; one writer process per directory.

    Args:
        directory: Folder of the segment files; created if missing.
        segment_bytes: A segment is closed and a new one started once the next line would exceed this size.
        retention_bytes: Oldest whole segments are deleted while the total exceeds this (the active
            segment is never deleted).

    Raises:
        ConfigError: a size is not positive or retention is smaller than one segment.
        PredictionLogError: another process holds the writer lock on ``directory``.
    """

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        retention_bytes: int = DEFAULT_RETENTION_BYTES,
    ) -> None:
        if segment_bytes <= 0:
            raise ConfigError(f"PredictionLog segment_bytes must be > 0 (got {segment_bytes!r})")
        if retention_bytes < segment_bytes:
            raise ConfigError(
                f"PredictionLog retention_bytes ({retention_bytes!r}) must be >= segment_bytes "
                f"({segment_bytes!r}): retention deletes whole segments"
            )
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.retention_bytes = retention_bytes
        self._lock = threading.Lock()  # guards the index, the pending queue and segment bookkeeping
        self._flush_lock = threading.Lock()  # one thread writes and syncs at a time
        self._pending: list[tuple[str, bytes, int]] = []  # (request id, line, ticket) not yet written
        self._pending_ids: dict[str, int] = {}
        self._enqueued = 0  # last ticket handed out
        self._durable = 0  # every ticket up to this one is on disk (or failed)
        self._failed: dict[int, OSError] = {}
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_descriptor = self._acquire_writer_lock()
        # request id -> segment sequence, and the ids per segment, so retention can forget them.
        self._index: dict[str, int] = {}
        self._segment_ids: dict[int, list[str]] = {}
        self._segment_sizes: dict[int, int] = {}
        self._descriptor: int | None = None
        self._sequence = 0
        self._size = 0
        try:
            self._recover()
        except BaseException:
            self._release_writer_lock()
            raise

    # -- opening -------------------------------------------------------------------------------------

    def _acquire_writer_lock(self) -> int:
        descriptor = os.open(self.directory / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise PredictionLogError(
                f"prediction log {self.directory} is already open for writing by another process; "
                "run one serving process per log directory (parallel_workers: 0)"
            ) from None
        return descriptor

    def _release_writer_lock(self) -> None:
        if self._lock_descriptor is not None:
            os.close(self._lock_descriptor)  # closing releases the flock
            self._lock_descriptor = None

    def _recover(self) -> None:
        segments = _list_segments(self.directory)
        for sequence, path in segments:
            ids: list[str] = []
            for number, line, complete in _iter_lines(path):
                if not complete or not line.strip():
                    continue
                try:
                    request_id = str(json.loads(line)["request_id"])
                except (ValueError, KeyError, TypeError) as error:
                    raise PredictionLogError(
                        f"{path}:{number}: not a prediction record ({error}); move that segment aside"
                    ) from error
                self._index[request_id] = sequence
                ids.append(request_id)
            self._segment_ids[sequence] = ids
            self._segment_sizes[sequence] = path.stat().st_size
        if segments:
            last_sequence, last_path = segments[-1]
            self._truncate_torn_tail(last_sequence, last_path)
            self._open_segment(last_sequence)
        else:
            self._open_segment(1)
        logger.info(
            "prediction log %s open: %d records in %d segments",
            self.directory,
            len(self._index),
            len(self._segment_sizes),
        )

    def _truncate_torn_tail(self, sequence: int, path: Path) -> None:
        # A torn last line would otherwise be glued to the next record and corrupt it.
        data_size = path.stat().st_size
        if data_size == 0:
            return
        with path.open("rb+") as handle:
            handle.seek(max(0, data_size - 1))
            if handle.read(1) == b"\n":
                return
            chunk_start = data_size
            keep = 0
            while chunk_start > 0:
                chunk_start = max(0, chunk_start - 65536)
                handle.seek(chunk_start)
                chunk = handle.read(data_size - chunk_start)
                position = chunk.rfind(b"\n")
                if position >= 0:
                    keep = chunk_start + position + 1
                    break
            logger.warning("truncating torn last line of %s (%d bytes)", path, data_size - keep)
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
        self._segment_sizes[sequence] = keep

    def _open_segment(self, sequence: int) -> None:
        path = self.directory / _segment_name(sequence)
        is_new = not path.exists()
        self._descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._sequence = sequence
        self._size = os.fstat(self._descriptor).st_size
        self._segment_sizes[sequence] = self._size
        self._segment_ids.setdefault(sequence, [])
        if is_new:
            _fsync_directory(self.directory)

    # -- writing -------------------------------------------------------------------------------------

    def __contains__(self, request_id: str) -> bool:
        with self._lock:
            return request_id in self._index

    def __len__(self) -> int:
        with self._lock:
            return len(self._index)

    def append(self, record: PredictionRecord) -> bool:
        """Append one record durably (written and ``fdatasync``'d before returning).

        Concurrent callers share one ``fdatasync`` (group commit): a caller's line is written by whichever
        thread flushes next, and every caller returns only once its own line is on disk. A concurrent
        duplicate of a request id still waits until the first copy is durable.

        Returns:
            True when written; False (nothing written) when ``record.request_id`` is already in the log.

        Raises:
            PredictionLogError: the log is closed or the write failed (the caller must fail the request).
        """
        line = (record.to_json() + "\n").encode("utf-8")
        request_id = record.request_id
        with self._lock:
            if self._descriptor is None:
                raise PredictionLogError(f"prediction log {self.directory} is closed")
            if request_id in self._index:
                return False
            duplicate = request_id in self._pending_ids
            if duplicate:
                ticket = self._pending_ids[request_id]
            else:
                self._enqueued += 1
                ticket = self._enqueued
                self._pending.append((request_id, line, ticket))
                self._pending_ids[request_id] = ticket
        self._wait_until_durable(ticket)
        return not duplicate

    def _wait_until_durable(self, ticket: int) -> None:
        with self._flush_lock:
            if self._durable < ticket:
                self._flush()
            with self._lock:
                error = self._failed.pop(ticket, None)
        if error is not None:
            raise PredictionLogError(
                f"could not append to prediction log {self.directory}: {error}; the prediction is not "
                "acknowledged"
            ) from error

    def _flush(self) -> None:
        """Write every pending line and ``fdatasync`` once (caller holds ``_flush_lock``)."""
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        placed: list[tuple[str, int]] = []
        chunk = bytearray()
        start_size = self._size
        try:
            for request_id, line, _ in batch:
                if self._size + len(chunk) > 0 and self._size + len(chunk) + len(line) > self.segment_bytes:
                    self._write_all(chunk)
                    chunk = bytearray()
                    with self._lock:
                        self._rotate()  # syncs the closed segment
                    start_size = 0
                chunk += line
                placed.append((request_id, self._sequence))
            self._write_all(chunk)
            assert self._descriptor is not None
            os.fdatasync(self._descriptor)
        except OSError as error:
            # Cut a partial batch off so the next append starts on a line boundary.
            if self._descriptor is not None:
                try:
                    os.ftruncate(self._descriptor, start_size)
                    self._size = start_size
                except OSError:
                    logger.exception("could not truncate %s after a failed append", self.directory)
            with self._lock:
                for request_id, _, ticket in batch:
                    self._pending_ids.pop(request_id, None)
                    self._failed[ticket] = error
                self._durable = batch[-1][2]
            return
        with self._lock:
            for request_id, sequence in placed:
                self._index[request_id] = sequence
                self._segment_ids.setdefault(sequence, []).append(request_id)
            for request_id, _, _ in batch:
                self._pending_ids.pop(request_id, None)
            self._segment_sizes[self._sequence] = self._size
            self._durable = batch[-1][2]

    def _write_all(self, data: bytearray | bytes) -> None:
        assert self._descriptor is not None
        view = memoryview(data)
        while view:
            written = os.write(self._descriptor, view)
            view = view[written:]
            self._size += written
        self._segment_sizes[self._sequence] = self._size

    def _rotate(self) -> None:
        assert self._descriptor is not None
        os.fdatasync(self._descriptor)
        os.close(self._descriptor)
        self._descriptor = None
        self._open_segment(self._sequence + 1)
        self._apply_retention()

    def _apply_retention(self) -> None:
        deleted = False
        while sum(self._segment_sizes.values()) > self.retention_bytes and len(self._segment_sizes) > 1:
            oldest = min(self._segment_sizes)
            if oldest == self._sequence or not self._may_delete(oldest):
                break
            self._delete_segment(oldest)
            deleted = True
        if deleted:
            _fsync_directory(self.directory)

    def _may_delete(self, sequence: int) -> bool:
        """May retention delete this (oldest, closed) segment? Subclasses keep what they still need."""
        return True

    def _delete_segment(self, sequence: int) -> None:
        path = self.directory / _segment_name(sequence)
        path.unlink(missing_ok=True)
        for request_id in self._segment_ids.pop(sequence, []):
            if self._index.get(request_id) == sequence:
                del self._index[request_id]
        del self._segment_sizes[sequence]
        logger.info("prediction log retention: deleted %s", path)

    @property
    def total_bytes(self) -> int:
        """Bytes currently on disk across all segments."""
        with self._lock:
            return sum(self._segment_sizes.values())

    def close(self) -> None:
        """Close the active segment and release the writer lock (idempotent)."""
        with self._flush_lock, self._lock:
            if self._descriptor is not None:
                os.close(self._descriptor)
                self._descriptor = None
            self._release_writer_lock()

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
