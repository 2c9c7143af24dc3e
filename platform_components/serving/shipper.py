"""The prediction-log shipper: moves a serving process's prediction log to the monitor service over HTTP.

In the cluster the monitor does not share a disk with the serving pods, so a background thread in the
serving process (or ``python -m platform_components.serving.shipper`` as a sidecar) reads the log from
its last shipped position and posts batches to the monitor's ``POST /v2/predictions``.

Guarantees:

- **At least once, idempotent**: the position is persisted (``<log dir>/.shipped.json``, written with
  fsync + rename) only after the monitor answered 2xx, so a crash between the answer and the write re-sends
  that batch, and the monitor stores a request id once (``MonitorStore.ingest`` keys on it).
- **No loss of acknowledged predictions**: the log stays the source of truth. :class:`ShippedPredictionLog`
  keeps retention from deleting segments the shipper has not passed, unless the log is over its hard byte
  limit; then the oldest unshipped segment goes, its records are counted in
  ``mlops_prediction_log_dropped_records_total`` and an ERROR line says so.
- **Bounded memory**: one batch (``batch_records`` / ``batch_bytes``) in memory at a time.
- **Visible backpressure**: ``mlops_prediction_log_unshipped_records{model}`` (records in the log past the
  shipped position), plus shipped, failed-attempt, rejected and dropped counters for the whole process
  (no label: one model's share is in the ERROR lines), on the process's default Prometheus registry
  (MLServer serves it on its metrics port). One series per served model, for the cardinality budget
  (``tests/monitoring/test_series_per_model.py``).

Failures: connection errors and 5xx/408/429 are retried with exponential backoff (capped); 413 halves the
batch; another 4xx on a batch retries its records one by one, and a single record the monitor rejects is
skipped with an ERROR line naming it (counted in ``..._rejected_records_total``; it stays in the log).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from platform_components.errors import ConfigError
from platform_components.serving.predlog import (
    DEFAULT_RETENTION_BYTES,
    DEFAULT_SEGMENT_BYTES,
    PredictionLog,
    _fsync_directory,
    _list_segments,
)

logger = logging.getLogger(__name__)

POSITION_NAME = ".shipped.json"
MONITOR_URL_ENV = "MLOPS_MONITOR_URL"
INGEST_PATH = "/v2/predictions"
MIB = 1024 * 1024


@dataclass(frozen=True, order=True)
class Position:
    """Everything before byte ``offset`` of segment ``sequence`` (and every earlier segment) is shipped."""

    sequence: int = 0
    offset: int = 0


def read_position(directory: Path) -> Position:
    """The persisted shipped position of a log directory (the start when none was written)."""
    path = Path(directory) / POSITION_NAME
    try:
        data = json.loads(path.read_text())
        return Position(int(data["sequence"]), int(data["offset"]))
    except FileNotFoundError:
        return Position()
    except (ValueError, KeyError, TypeError) as error:
        # Re-shipping from the start is safe (idempotent); silently skipping would not be.
        logger.error("%s is unreadable (%s); shipping this log again from the start", path, error)
        return Position()


def write_position(directory: Path, position: Position) -> None:
    """Persist ``position`` atomically and durably (temp file, fsync, rename, directory fsync)."""
    directory = Path(directory)
    temporary = directory / (POSITION_NAME + ".tmp")
    with temporary.open("w") as handle:
        json.dump({"sequence": position.sequence, "offset": position.offset}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, directory / POSITION_NAME)
    _fsync_directory(directory)


# -- metrics ------------------------------------------------------------------------------------------

_metrics_lock = threading.Lock()
_metrics: dict[str, Any] = {}


def shipper_metrics() -> dict[str, Any]:
    """The shipper's Prometheus metrics on the default registry, created once per process (lazily).

    Only the backlog gauge is per model (``model``: the log directory's name), because a backlog is what an
    operator must trace to one model; the four counters are per process (a serving pod holds many models,
    and a per-model counter would add four series per model to every pod for events that are rare and
    logged with the model's name anyway).
    """
    from prometheus_client import Counter, Gauge

    with _metrics_lock:
        if not _metrics:
            _metrics["unshipped"] = Gauge(
                "mlops_prediction_log_unshipped_records",
                "Records in the prediction log not yet acknowledged by the monitor (backpressure).",
                ["model"],
            )
            _metrics["shipped"] = Counter(
                "mlops_prediction_log_shipped_records_total",
                "Records acknowledged by the monitor, all models of the process.",
            )
            _metrics["failures"] = Counter(
                "mlops_prediction_log_ship_failures_total",
                "Batches the monitor did not acknowledge (retried with backoff), all models of the process.",
            )
            _metrics["rejected"] = Counter(
                "mlops_prediction_log_rejected_records_total",
                "Records the monitor rejected with a 4xx (skipped; they stay in the log), all models.",
            )
            _metrics["dropped"] = Counter(
                "mlops_prediction_log_dropped_records_total",
                "Unshipped records deleted because a log exceeded its hard byte limit, all models.",
            )
        return _metrics


# -- the log with shipping-aware retention ------------------------------------------------------------


class ShippedPredictionLog(PredictionLog):
    """A :class:`PredictionLog` whose retention keeps segments the shipper has not passed.

    Over ``retention_bytes`` the oldest *shipped* segments are deleted, as in the plain log; unshipped ones
    are deleted only while the total is over ``hard_limit_bytes`` (the disk bound), and counted as dropped.

    Args:
        directory / segment_bytes / retention_bytes: as for ``PredictionLog``.
        hard_limit_bytes: the disk bound including unshipped data (default: twice ``retention_bytes``).

    Raises:
        ConfigError: ``hard_limit_bytes`` is below ``retention_bytes``.
    """

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        retention_bytes: int = DEFAULT_RETENTION_BYTES,
        hard_limit_bytes: int | None = None,
    ) -> None:
        hard = 2 * retention_bytes if hard_limit_bytes is None else hard_limit_bytes
        if hard < retention_bytes:
            raise ConfigError(
                f"hard_limit_bytes ({hard!r}) must be >= retention_bytes ({retention_bytes!r}); it bounds "
                "the disk including records the monitor has not received yet"
            )
        self.hard_limit_bytes = hard
        self.dropped_records = 0
        super().__init__(directory, segment_bytes=segment_bytes, retention_bytes=retention_bytes)

    def _apply_retention(self) -> None:
        # Called under the log's lock by _rotate: read where the shipper stands once per pass.
        self._shipped = read_position(self.directory)
        super()._apply_retention()

    def _may_delete(self, sequence: int) -> bool:
        if sequence < self._shipped.sequence:
            return True  # shipped: the monitor has it
        if sum(self._segment_sizes.values()) <= self.hard_limit_bytes:
            return False  # keep it for the shipper; the disk bound is not reached
        lost = len(self._segment_ids.get(sequence, []))
        self.dropped_records += lost
        shipper_metrics()["dropped"].inc(lost)
        logger.error(
            "prediction log %s is over its hard limit of %d bytes: deleting unshipped segment %d "
            "with up to %d records the monitor has not received (is the monitor reachable?)",
            self.directory,
            self.hard_limit_bytes,
            sequence,
            lost,
        )
        return True


# -- the shipper --------------------------------------------------------------------------------------


class ShipRejected(Exception):
    """The monitor answered a 4xx that retrying the same body cannot fix."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class PredictionShipper:
    """Ships one prediction-log directory to the monitor; a daemon thread once :meth:`start` ed.

    Args:
        directory: the log directory (one model's; its name labels the backlog gauge).
        monitor_url: the monitor service's base URL, e.g. ``http://model-monitor.monitoring:8090``.
        batch_records / batch_bytes: the most one request carries (memory bound).
        interval: seconds between polls when the log has nothing new.
        max_backoff: cap of the exponential retry delay, in seconds.
        timeout: HTTP timeout per request, in seconds.

    Raises:
        ConfigError: the URL is not http(s) or a size is not positive.
    """

    def __init__(
        self,
        directory: Path,
        monitor_url: str,
        *,
        batch_records: int = 500,
        batch_bytes: int = 4 * MIB,
        interval: float = 1.0,
        max_backoff: float = 30.0,
        timeout: float = 10.0,
    ) -> None:
        if not monitor_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"monitor_url: {monitor_url!r} is not an http(s) URL; "
                "use e.g. http://model-monitor.monitoring.svc.cluster.local:8090"
            )
        if batch_records <= 0 or batch_bytes <= 0:
            raise ConfigError(
                f"batch_records ({batch_records!r}) and batch_bytes ({batch_bytes!r}) must be > 0"
            )
        self.directory = Path(directory)
        self.url = monitor_url.rstrip("/") + INGEST_PATH
        self.batch_records = batch_records
        self.batch_bytes = batch_bytes
        self.interval = interval
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.position = read_position(self.directory)
        self.shipped_records = 0
        self._limit = batch_records  # lowered by 413 / a 4xx batch until the position passes it
        self._reduced_until: Position | None = None
        self.unshipped_records = 0
        metrics = shipper_metrics()
        self._metrics = {**metrics, "unshipped": metrics["unshipped"].labels(self.directory.name)}
        # sequence -> (start offset, scanned-to offset, complete lines in between): the unshipped count
        # without re-reading the whole backlog each round.
        self._line_counts: dict[int, tuple[int, int, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: Any = None

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"prediction-shipper-{self.directory.name}", daemon=True
        )
        self._thread.start()
        logger.info("shipping prediction log %s to %s from %s", self.directory, self.url, self.position)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread; unshipped records stay in the log for the next start."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None
        if self._client is not None:
            self._client.close()
            self._client = None
        # The model's log is closed (it is no longer served here): its backlog gauge goes with it.
        with contextlib.suppress(KeyError):
            shipper_metrics()["unshipped"].remove(self.directory.name)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                sent = self.ship_once()
                failures = 0
            except Exception as error:  # any failure: back off and retry the same position
                failures += 1
                self._metrics["failures"].inc()
                delay = min(self.max_backoff, 0.5 * 2 ** min(failures - 1, 16)) * random.uniform(0.5, 1.0)
                logger.warning(
                    "shipping %s to %s failed (%s); attempt %d, retrying in %.1f s",
                    self.directory,
                    self.url,
                    error,
                    failures,
                    delay,
                )
                self._stop.wait(delay)
                continue
            if sent == 0:
                self._stop.wait(self.interval)

    # -- one round -----------------------------------------------------------------------------------

    def ship_once(self) -> int:
        """Ship at most one batch from the current position; returns the records acknowledged.

        Raises:
            httpx.HTTPError / ShipRejected / OSError: nothing was acknowledged; the position is unchanged.
        """
        segments = dict(_list_segments(self.directory)) if self.directory.is_dir() else {}
        self._skip_deleted(segments)
        # Before posting, so the gauge shows the backlog growing while the monitor is unreachable.
        self._update_unshipped(segments)
        lines, end = self._read_batch(segments)
        if not lines:
            return 0
        try:
            self._post(lines)
        except ShipRejected as error:
            if len(lines) > 1:
                # Too large (413): halve the batches; another 4xx: find the refused record one at a time.
                # Either way only until the position passes this batch's end.
                self._limit = max(1, len(lines) // 2) if error.status == 413 else 1
                self._reduced_until = end
                raise
            self._metrics["rejected"].inc()
            logger.error(
                "monitor rejected the record at %s of %s (%s); skipping it (it stays in the log)",
                self.position,
                self.directory,
                error,
            )
        else:
            self.shipped_records += len(lines)
            self._metrics["shipped"].inc(len(lines))
        self._advance(end, len(lines))
        if self._reduced_until is not None and self.position >= self._reduced_until:
            self._limit, self._reduced_until = self.batch_records, None
        self._update_unshipped(segments)
        return len(lines)

    def _skip_deleted(self, segments: dict[int, Path]) -> None:
        # Retention (over the hard limit) may have deleted the segment we were in: continue after it.
        if not segments or self.position.sequence in segments:
            return
        later = [sequence for sequence in segments if sequence > self.position.sequence]
        if later:
            self._advance(Position(min(later), 0), 0)

    def _read_batch(self, segments: dict[int, Path]) -> tuple[list[bytes], Position]:
        """Complete lines from the position (one segment at most) and the position after them."""
        position = self.position
        if position.sequence not in segments:
            return [], position
        path = segments[position.sequence]
        is_closed = any(sequence > position.sequence for sequence in segments)  # listed before reading
        lines: list[bytes] = []
        size = 0
        offset = position.offset
        with path.open("rb") as handle:
            end_of_file = os.fstat(handle.fileno()).st_size
            if offset > end_of_file:
                # The writer cut a failed (never acknowledged) append off behind us.
                logger.warning("%s shrank below the shipped offset %d; continuing at its end", path, offset)
                offset = end_of_file
            handle.seek(offset)
            while len(lines) < self._limit and (size < self.batch_bytes or not lines):
                line = handle.readline()
                if not line.endswith(b"\n"):
                    break  # end of file or a line still being written
                size += len(line)
                offset += len(line)
                if line.strip():
                    lines.append(line.rstrip(b"\n"))
        if not lines and is_closed and offset >= end_of_file:
            # A closed segment is finished (rotation happens after its last write): go to the next one.
            following = min(sequence for sequence in segments if sequence > position.sequence)
            self._advance(Position(following, 0), 0)
            return self._read_batch(segments)
        return lines, Position(position.sequence, offset)

    def _post(self, lines: list[bytes]) -> None:
        import httpx

        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout)
        # The log's lines are PredictionRecord JSON already: splice them, no decode/encode round trip.
        body = b'{"records":[' + b",".join(lines) + b"]}"
        response = self._client.post(self.url, content=body, headers={"content-type": "application/json"})
        if response.status_code < 300:
            return
        try:
            detail = str(response.json().get("detail", response.text))
        except ValueError:
            detail = response.text
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            raise ShipRejected(response.status_code, detail)
        raise httpx.HTTPStatusError(
            f"monitor answered {response.status_code}: {detail}", request=response.request, response=response
        )

    def _advance(self, position: Position, lines: int) -> None:
        previous = self.position
        write_position(self.directory, position)
        self.position = position
        cached = self._line_counts.get(position.sequence)
        if cached is not None and previous.sequence == position.sequence and position.offset <= cached[1]:
            self._line_counts[position.sequence] = (position.offset, cached[1], cached[2] - lines)
        for sequence in [sequence for sequence in self._line_counts if sequence < position.sequence]:
            del self._line_counts[sequence]

    def _update_unshipped(self, segments: dict[int, Path]) -> None:
        total = 0
        for sequence, path in segments.items():
            if sequence < self.position.sequence:
                continue
            start = self.position.offset if sequence == self.position.sequence else 0
            total += self._complete_lines(sequence, path, start)
        self.unshipped_records = total
        self._metrics["unshipped"].set(total)

    def _complete_lines(self, sequence: int, path: Path, start: int) -> int:
        cached = self._line_counts.get(sequence)
        if cached is None or cached[0] != start:
            cached = (start, start, 0)
        _, scanned, count = cached
        try:
            with path.open("rb") as handle:
                handle.seek(scanned)
                while True:
                    chunk = handle.read(MIB)
                    if not chunk:
                        break
                    last = chunk.rfind(b"\n")
                    if last < 0:
                        break  # a torn or in-progress last line is not a record yet
                    count += chunk.count(b"\n", 0, last + 1)
                    scanned += last + 1
                    if last + 1 < len(chunk):
                        handle.seek(scanned)
        except FileNotFoundError:
            self._line_counts.pop(sequence, None)
            return 0
        self._line_counts[sequence] = (start, scanned, count)
        return count


def monitor_url_from(extra: dict[str, Any] | None = None) -> str | None:
    """A serving process's monitor URL: model-settings ``extra.monitor_url``, else ``MLOPS_MONITOR_URL``."""
    value = (extra or {}).get("monitor_url") or os.environ.get(MONITOR_URL_ENV) or None
    return str(value) if value else None


def main(argv: list[str] | None = None) -> None:
    """Run a shipper in the foreground (a sidecar, or a serving process's log on another host)."""
    parser = argparse.ArgumentParser(
        prog="python -m platform_components.serving.shipper",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--log-dir", type=Path, required=True, help="one model's prediction log directory")
    parser.add_argument(
        "--monitor-url",
        default=os.environ.get(MONITOR_URL_ENV),
        help=f"monitor base URL (${MONITOR_URL_ENV})",
    )
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls when idle")
    parser.add_argument("--batch-records", type=int, default=500, help="records per request at most")
    parser.add_argument("--max-backoff", type=float, default=30.0, help="retry delay cap, seconds")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not arguments.monitor_url:
        parser.exit(2, f"error: --monitor-url: missing; pass it or set {MONITOR_URL_ENV}\n")
    try:
        shipper = PredictionShipper(
            arguments.log_dir,
            arguments.monitor_url,
            batch_records=arguments.batch_records,
            interval=arguments.interval,
            max_backoff=arguments.max_backoff,
        )
    except ConfigError as error:
        parser.exit(2, f"error: {error}\n")
    import signal

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    shipper.start()
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    shipper.stop()


if __name__ == "__main__":
    main()
