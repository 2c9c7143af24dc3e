"""The monitor's store: SQLite locally (``<state>/monitoring/monitor.sqlite``, WAL mode), PostgreSQL in the
cluster (``open_store("postgresql://...")``: the monitor's replicas share leases, positions and results).

One interface, ``MonitorStore``, and the same semantics on both backends (the store's tests run on both).
The schema is versioned (``store_schema``, ``SCHEMA_VERSION``): opening a store creates it or applies the
migrations it lacks, in one transaction, and refuses a store written by a newer version of this module.

Tables: ``requests`` and ``predictions`` (ingested from the prediction log, one row per (request id, row
index)), ``labels`` (ground truth per (request id, row)), ``monitor_results`` (one per (model, version,
window start): a later check of the same aligned window replaces it), ``decisions`` (retrain decisions with
evidence and outcome) and ``leases`` (at most one retrain per model at a time).

Times are event time: a prediction's ``timestamp`` is when it was made (the client may give it, see
``serving/validation.py``), a label's ``received_at`` when it became known (the feedback body's
``event_time``, default the monitor's clock). ``event_clock(model)`` is the latest of both: the model's "now".

Label rules (the contract of ``POST /v2/feedback``):

- Labels are accepted only for requests already ingested from the prediction log. The prediction log is
  durable before the client sees the prediction, so the service ingests the log again before answering
  404; a label can therefore never precede its prediction in a way that matters, and an id that is still
  unknown after that is a client error, not something to park.
- One label per row of the request; a request is labelled all at once or not at all (one transaction).
- Late and out-of-order labels are fine: the join is by (request id, row), never by arrival order.
- A duplicate with the same value is a no-op; a different value for an already labelled row is a conflict
  (409) and nothing of that submission is stored.
"""

from __future__ import annotations

import io
import json
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from platform_components.errors import ConfigError
from platform_components.monitoring.errors import InvalidInput, LabelConflict, UnknownRequest

# The prediction log's public reader (serving/ owns the log: it runs in the serving process).
from platform_components.serving.predlog import PredictionRecord, read_records_from

logger = logging.getLogger(__name__)

STORE_RELATIVE_PATH = Path("monitoring") / "monitor.sqlite"
SCORE_COLUMN = "__score__"
LABEL_COLUMN = "__label__"
TIMESTAMP_COLUMN = "__timestamp__"
REQUEST_COLUMN = "__request_id__"
ROW_COLUMN = "__row__"
VERSION_COLUMN = "__version__"

# The schema, versioned: ``store_schema`` holds one row per applied migration, and opening a store applies
# the ones it lacks, in order, in one transaction (replicas starting together wait for each other: SQLite's
# write lock, PostgreSQL's advisory lock). Migration 1 uses IF NOT EXISTS so that a SQLite file made before
# the schema was versioned (tables, no store_schema) passes through it unchanged.
_SQLITE_TABLES = (
    """CREATE TABLE IF NOT EXISTS requests (
        request_id TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        timestamp REAL NOT NULL,
        row_count INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS predictions (
        request_id TEXT NOT NULL,
        row INTEGER NOT NULL,
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        timestamp REAL NOT NULL,
        inputs TEXT NOT NULL,
        output TEXT,
        score REAL,
        PRIMARY KEY (request_id, row)
    )""",
    "CREATE INDEX IF NOT EXISTS predictions_by_model_time ON predictions (model, version, timestamp)",
    """CREATE TABLE IF NOT EXISTS labels (
        request_id TEXT NOT NULL,
        row INTEGER NOT NULL,
        label TEXT NOT NULL,
        received_at REAL NOT NULL,
        PRIMARY KEY (request_id, row)
    )""",
    """CREATE TABLE IF NOT EXISTS monitor_results (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        checked_at REAL NOT NULL,
        window_start REAL NOT NULL,
        window_end REAL NOT NULL,
        result TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS monitor_results_by_model ON monitor_results (model, checked_at)",
    "CREATE INDEX IF NOT EXISTS monitor_results_by_model_window ON monitor_results (model, window_start)",
    """CREATE TABLE IF NOT EXISTS decisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        model TEXT NOT NULL,
        version TEXT,
        decided_at REAL NOT NULL,
        action TEXT NOT NULL,
        reasons TEXT NOT NULL,
        evidence TEXT NOT NULL,
        outcome TEXT NOT NULL,
        outcome_detail TEXT,
        finished_at REAL
    )""",
    "CREATE INDEX IF NOT EXISTS decisions_by_model ON decisions (model, decided_at)",
    """CREATE TABLE IF NOT EXISTS ingest_positions (
        directory TEXT PRIMARY KEY,
        sequence INTEGER NOT NULL,
        "offset" INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS leases (
        model TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        acquired_at REAL NOT NULL,
        expires_at REAL NOT NULL
    )""",
)
# The same tables in PostgreSQL's types: times are DOUBLE PRECISION (REAL is 4 bytes there: a Unix time
# would lose its seconds), ids are identities, log positions BIGINT; JSON stays TEXT (written and read
# whole, never queried inside: jsonb would only cost a parse on every ingested row).
_POSTGRES_TABLES = tuple(
    statement.replace(
        "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    )
    .replace(" REAL", " DOUBLE PRECISION")
    .replace("sequence INTEGER", "sequence BIGINT")
    .replace('"offset" INTEGER', '"offset" BIGINT')
    for statement in _SQLITE_TABLES
)


# A prediction row's label (or its received_at) as a correlated lookup on the labels' primary key, not a join:
# PostgreSQL's planner joins a model's window to the labels table by hashing every label of every model
# (200 ms a window at a million rows, seconds at ten), where a lookup per window row is a few milliseconds;
# SQLite runs both the same way.
_LABEL_OF_ROW = "(SELECT l.{column} FROM labels l WHERE l.request_id = p.request_id AND l.row = p.row)"

_WINDOW_INDEX = "monitor_results_by_window"
#: The schema version this module writes (the last of ``MonitorStore._migrations``).
SCHEMA_VERSION = 4
# Migration 4: each label carries its prediction's model, indexed with its received_at. A model's latest label
# and the labels it received since a time are then an index range over that model's labels, not a lookup in
# ``labels`` for every prediction row of the model (10,000 lookups a window on every round: 26-40 ms each on
# PostgreSQL, most of a warm round's store time over a 1,000-model fleet; bench/bench_monitor_round.py).
_LABELS_BY_MODEL = "labels_by_model_received"
# Migration 3: models of projects removed from the catalog. A mark, never a deletion: their predictions,
# labels, results and decisions stay; the mark says since when and why (``mlops project sync``).
_ARCHIVED_MODELS = """CREATE TABLE IF NOT EXISTS archived_models (
        model TEXT PRIMARY KEY,
        project TEXT NOT NULL,
        archived_at REAL NOT NULL,
        reason TEXT NOT NULL
    )"""


@dataclass(frozen=True)
class WindowCounts:
    """What ``MonitorStore.window_counts`` found in a window (times are None when it holds no row/label)."""

    rows: int
    labelled: int
    last_timestamp: float | None
    last_received_at: float | None


@dataclass(frozen=True)
class LabelReceipt:
    """What a label submission did: rows accepted (all of the request) and how many were new."""

    request_id: str
    accepted: int
    new: int


@dataclass(frozen=True)
class DecisionRow:
    """One stored retrain decision."""

    id: int
    model: str
    version: str | None
    decided_at: float
    action: str
    reasons: list[str]
    evidence: dict[str, Any]
    outcome: str
    outcome_detail: dict[str, Any] | None
    finished_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def score_of(value: Any) -> float | None:
    """The monitored score of one row's output value.

    A ``predict_proba`` row (list of class probabilities) gives the positive-class probability for two
    classes and the top probability otherwise; a scalar output (regressor, label) is used as is.
    """
    if isinstance(value, list | tuple):
        if len(value) == 0:
            return None
        if len(value) == 1:
            return score_of(value[0])
        if len(value) == 2:
            return score_of(value[1])
        numbers = [score_of(item) for item in value]
        return max((item for item in numbers if item is not None), default=None)
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    return None


def canonical_label(value: Any, field: str) -> str:
    """Labels stored as canonical JSON so that 1, 1.0 and a replayed 1 compare equal.

    Raises:
        InvalidInput: the label is null, NaN/infinite, a container, or another non-scalar.
    """
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{field}: {value!r} is not a valid label; send a finite number or a string")
        if value.is_integer():
            value = int(value)
    if not isinstance(value, int | float | str) or (isinstance(value, str) and value == ""):
        raise InvalidInput(
            f"{field}: {value!r} is not a valid label; send a number (e.g. 0 or 1) or a non-empty string"
        )
    return json.dumps(value)


class MonitorStore:
    """Thread-safe access to the monitor's SQLite file; several processes may open it (WAL, busy timeout).

    ``open_store(url)`` picks the backend from a URL: this class for ``sqlite:///path`` (or a bare path),
    :class:`PostgresMonitorStore` for ``postgresql://`` (the cluster's monitor replicas share one database).
    Both have this interface and these semantics; only connections, transactions and DDL differ.

    Args:
        path: the database file; its folder is created.
    """

    #: Appended to the SELECT that locks a request's row while its labels are checked and written.
    _lock_row = ""

    def __init__(self, path: Path) -> None:
        self.path: Path | None = Path(path)
        self.location = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._connection = sqlite3.connect(
            self.path, timeout=30.0, check_same_thread=False, isolation_level=None
        )
        self._connection.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across process crashes in WAL mode; labels are also re-submittable.
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.execute("PRAGMA busy_timeout=30000")
        self._migrate()

    # -- schema ------------------------------------------------------------------------------------

    def _tables(self) -> tuple[str, ...]:
        return _SQLITE_TABLES

    def _start_migration(self, connection: Any) -> None:
        """Serialise concurrent starts (SQLite: BEGIN IMMEDIATE already holds the write lock)."""

    def _migrate(self) -> None:
        """Create the schema or bring an older one up to ``SCHEMA_VERSION``, in one transaction.

        Raises:
            ConfigError: the store was written by a newer version of this module (its schema is ahead).
        """
        with self._transaction() as connection:
            self._start_migration(connection)
            connection.execute(
                "CREATE TABLE IF NOT EXISTS store_schema (version INTEGER PRIMARY KEY, "
                "description TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            found = connection.execute("SELECT MAX(version) FROM store_schema").fetchone()[0]
            current = 0 if found is None else int(found)
            if current > SCHEMA_VERSION:
                raise ConfigError(
                    f"monitor store {self.location}: its schema is version {current}, newer than this "
                    f"monitor's {SCHEMA_VERSION}; run the monitor image that wrote it (or a later one)"
                )
            for version, description, apply in self._migrations():
                if version <= current:
                    continue
                apply(connection)
                connection.execute(
                    "INSERT INTO store_schema (version, description, applied_at) VALUES (?, ?, ?)",
                    (version, description, time.time()),
                )
                logger.info(
                    "store %s: schema migrated to version %d (%s)", self.location, version, description
                )

    def _migrations(self) -> list[tuple[int, str, Any]]:
        def create_tables(connection: Any) -> None:
            for statement in self._tables():
                connection.execute(statement)

        def one_result_per_window(connection: Any) -> None:
            # Results written before windows were aligned may repeat a window start: keep the most recent
            # of each (what a re-check would have left), then let the index refuse duplicates.
            removed = connection.execute(
                "DELETE FROM monitor_results WHERE id NOT IN "
                "(SELECT MAX(id) FROM monitor_results GROUP BY model, version, window_start)"
            ).rowcount
            connection.execute(
                f"CREATE UNIQUE INDEX IF NOT EXISTS {_WINDOW_INDEX} "
                "ON monitor_results (model, version, window_start)"
            )
            if removed:
                logger.info(
                    "store %s: kept the latest result of each window, dropped %d", self.location, removed
                )

        def archived_models(connection: Any) -> None:
            statement = _ARCHIVED_MODELS
            if isinstance(self, PostgresMonitorStore):
                statement = statement.replace(" REAL", " DOUBLE PRECISION")
            connection.execute(statement)

        def labels_by_model(connection: Any) -> None:
            connection.execute("ALTER TABLE labels ADD COLUMN model TEXT")
            connection.execute(
                "UPDATE labels SET model = "
                "(SELECT r.model FROM requests r WHERE r.request_id = labels.request_id)"
            )
            connection.execute(
                f"CREATE INDEX IF NOT EXISTS {_LABELS_BY_MODEL} ON labels (model, received_at)"
            )

        return [
            (1, "tables and indexes", create_tables),
            (2, "one stored result per (model, version, window start)", one_result_per_window),
            (3, "archived models (projects removed from the catalog)", archived_models),
            (4, "labels carry their model, indexed by model and received time", labels_by_model),
        ]

    def schema_version(self) -> int:
        """The schema version this store is at (``SCHEMA_VERSION`` once opened)."""
        return int(self._query("SELECT MAX(version) FROM store_schema")[0][0])

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> MonitorStore:
        """The store at ``<state_dir>/monitoring/monitor.sqlite``."""
        return cls(Path(state_dir) / STORE_RELATIVE_PATH)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __enter__(self) -> MonitorStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        # BEGIN IMMEDIATE takes the write lock up front, so check-then-write sequences (labels, leases)
        # cannot interleave with another process doing the same.
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def _query(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._connection.execute(sql, parameters).fetchall()

    # -- ingestion ---------------------------------------------------------------------------------

    def ingest(self, records: Iterable[PredictionRecord], *, batch_size: int = 500) -> int:
        """Store records not seen before (idempotent on request id); returns the rows added."""
        added = 0
        batch: list[PredictionRecord] = []
        for record in records:
            batch.append(record)
            if len(batch) >= batch_size:
                added += self._ingest_batch(batch)
                batch = []
        if batch:
            added += self._ingest_batch(batch)
        return added

    def _ingest_batch(self, records: list[PredictionRecord]) -> int:
        with self._transaction() as connection:
            ids = [record.request_id for record in records]
            known: set[str] = set()
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                placeholders = ",".join("?" * len(chunk))
                rows = connection.execute(
                    f"SELECT request_id FROM requests WHERE request_id IN ({placeholders})", chunk
                ).fetchall()
                known.update(row[0] for row in rows)
            request_rows = []
            prediction_rows: list[tuple] = []
            for record in records:
                if record.request_id in known:
                    continue
                known.add(record.request_id)
                request_rows.append(_request_row(record))
                prediction_rows.extend(_prediction_rows(record))
            connection.executemany("INSERT OR IGNORE INTO requests VALUES (?, ?, ?, ?, ?)", request_rows)
            connection.executemany(
                "INSERT OR IGNORE INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", prediction_rows
            )
        return len(prediction_rows)

    def ingest_directory(self, directory: Path, *, batch_size: int = 500) -> int:
        """Ingest one prediction-log directory (``<state>/predictions/<model>``); returns rows added.

        Resumes from the position saved by the previous call, so a periodic check reads only what was
        appended since (not the whole log, up to its retention size, every time). The position is saved
        after each batch is stored; a crash in between re-reads that batch, which ingestion ignores.
        """
        key = str(Path(directory).resolve())
        saved = self._query('SELECT sequence, "offset" FROM ingest_positions WHERE directory = ?', (key,))
        start = (int(saved[0][0]), int(saved[0][1])) if saved else (0, 0)
        added = 0
        batch: list[PredictionRecord] = []
        position = start
        for record, sequence, offset in read_records_from(Path(directory), *start):
            batch.append(record)
            position = (sequence, offset)
            if len(batch) >= batch_size:
                added += self._ingest_batch(batch)
                self._save_position(key, position)
                batch = []
        if batch:
            added += self._ingest_batch(batch)
        if position != start or not saved:
            self._save_position(key, position)
        return added

    def _save_position(self, directory: str, position: tuple[int, int]) -> None:
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO ingest_positions VALUES (?, ?, ?) ON CONFLICT(directory) DO UPDATE SET "
                'sequence = excluded.sequence, "offset" = excluded."offset"',
                (directory, *position),
            )

    def ingest_state_dir(self, state_dir: Path, model: str | None = None) -> int:
        """Ingest every model's prediction log under ``<state_dir>/predictions`` (or one model's)."""
        root = Path(state_dir) / "predictions"
        if not root.is_dir():
            return 0
        directories = [root / model] if model is not None else sorted(p for p in root.iterdir() if p.is_dir())
        return sum(self.ingest_directory(directory) for directory in directories if directory.is_dir())

    def request_rows(self, request_id: str) -> int | None:
        """Rows of an ingested request, or None when the id is unknown."""
        rows = self._query("SELECT row_count FROM requests WHERE request_id = ?", (request_id,))
        return int(rows[0][0]) if rows else None

    # -- labels ------------------------------------------------------------------------------------

    def add_labels(
        self, request_id: str, labels: Sequence[Any], *, received_at: float | None = None
    ) -> LabelReceipt:
        """Store one label per row of an ingested request (all or nothing; see the module docstring).

        Args:
            request_id: the prediction's request id.
            labels: one label per row of the request.
            received_at: when the labels became known, event time (the feedback body's ``event_time``);
                default the clock. A time given here may not precede the prediction's own.

        Raises:
            InvalidInput: request_id empty, labels not a list or of the wrong length, a label malformed,
                ``received_at`` before the prediction's time.
            UnknownRequest: the request id was never ingested.
            LabelConflict: a row already has a different label.
        """
        if not isinstance(request_id, str) or not request_id:
            raise InvalidInput(
                f"request_id: {request_id!r} is not a request id; send the id of the prediction"
            )
        if isinstance(labels, str | bytes) or not isinstance(labels, Sequence):
            raise InvalidInput(f"labels: expected a list with one label per row, got {type(labels).__name__}")
        canonical = [canonical_label(value, f"labels[{index}]") for index, value in enumerate(labels)]
        given = received_at is not None
        received_at = time.time() if received_at is None else received_at
        with self._transaction() as connection:
            found = connection.execute(
                "SELECT row_count, timestamp, model FROM requests WHERE request_id = ?" + self._lock_row,
                (request_id,),
            ).fetchone()
            if found is None:
                raise UnknownRequest(
                    f"request_id: {request_id!r} is not a logged prediction; send labels for ids returned by "
                    "the inference endpoint"
                )
            rows = int(found[0])
            # Only a time the client gave: the clocks of the serving process and the monitor may differ.
            if given and received_at < float(found[1]):
                raise InvalidInput(
                    f"event_time: {received_at!r} is before the time of prediction {request_id!r} "
                    f"({float(found[1])!r}); a label becomes known after its prediction, send a later time"
                )
            if len(canonical) != rows:
                raise InvalidInput(
                    f"labels: request {request_id!r} has {rows} row(s) but {len(canonical)} label(s) were "
                    "sent; send exactly one label per row, in row order"
                )
            existing = dict(
                connection.execute(
                    "SELECT row, label FROM labels WHERE request_id = ?", (request_id,)
                ).fetchall()
            )
            new_rows = []
            for row, label in enumerate(canonical):
                if row in existing:
                    if existing[row] != label:
                        raise LabelConflict(
                            f"labels[{row}]: request {request_id!r} row {row} already has label "
                            f"{existing[row]}, got {label}; labels are immutable, nothing was stored"
                        )
                    continue
                new_rows.append((request_id, row, label, received_at, found[2]))
            connection.executemany(
                "INSERT INTO labels (request_id, row, label, received_at, model) VALUES (?, ?, ?, ?, ?)",
                new_rows,
            )
        return LabelReceipt(request_id=request_id, accepted=rows, new=len(new_rows))

    def label_count(
        self,
        model: str,
        version: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> int:
        """Labelled rows of a model (optionally one version, predictions in ``[since, until)``)."""
        return self._count(
            "SELECT COUNT(*) FROM predictions p WHERE EXISTS (SELECT 1 FROM labels l "
            "WHERE l.request_id = p.request_id AND l.row = p.row) AND p.model = ?",
            model,
            version,
            since,
            until,
        )

    def _count(
        self, sql: str, model: str, version: str | None, since: float | None, until: float | None = None
    ) -> int:
        """``sql`` (a COUNT over predictions ``p``, filtered by model) narrowed to a version and a span."""
        parameters: list[Any] = [model]
        if version is not None:
            sql += " AND p.version = ?"
            parameters.append(version)
        if since is not None:
            sql += " AND p.timestamp >= ?"
            parameters.append(since)
        if until is not None:
            sql += " AND p.timestamp < ?"
            parameters.append(until)
        return int(self._query(sql, parameters)[0][0])

    def event_clock(self, model: str) -> float | None:
        """The model's event clock: its latest prediction timestamp or label ``received_at`` (None: no data).

        Durations of the loop (windows, look-back, cool-down) are measured on this clock, never the wall
        clock, so a simulated calendar driven through the public endpoints behaves as a real one.
        """
        # Each the top of an index (predictions_by_model_time, labels_by_model_received): one query, two
        # index probes, whatever the model's rows.
        predicted, labelled = self._query(
            "SELECT (SELECT MAX(timestamp) FROM predictions WHERE model = ?), "
            "(SELECT MAX(received_at) FROM labels WHERE model = ?)",
            (model, model),
        )[0]
        known = [float(value) for value in (predicted, labelled) if value is not None]
        return max(known) if known else None

    # -- windows -----------------------------------------------------------------------------------

    def window(
        self,
        model: str,
        version: str | None = None,
        *,
        start: float | None = None,
        end: float | None = None,
        labelled_only: bool = False,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Rows of a model (version) predicted in ``[start, end)``, exactly joined to their labels.

        Columns: the input features, then ``__score__``, ``__label__`` (NaN/None when not labelled yet),
        ``__timestamp__``, ``__request_id__``, ``__row__``, ``__version__``; ordered by time. ``limit`` keeps
        the most recent rows.
        """
        sql = (
            "SELECT p.request_id, p.row, p.version, p.timestamp, p.inputs, p.score, "
            f"{_LABEL_OF_ROW.format(column='label')} AS label FROM predictions p WHERE p.model = ?"
        )
        parameters: list[Any] = [model]
        if version is not None:
            sql += " AND p.version = ?"
            parameters.append(version)
        if start is not None:
            sql += " AND p.timestamp >= ?"
            parameters.append(start)
        if end is not None:
            sql += " AND p.timestamp < ?"
            parameters.append(end)
        if labelled_only:
            sql += f" AND {_LABEL_OF_ROW.format(column='label')} IS NOT NULL"
        sql += " ORDER BY p.timestamp DESC, p.request_id DESC, p.row DESC"
        if limit is not None:
            sql += " LIMIT ?"
            parameters.append(int(limit))
        rows = self._query(sql, parameters)
        rows.reverse()
        features = pd.DataFrame.from_records([json.loads(row[4]) for row in rows]) if rows else pd.DataFrame()
        features.index = pd.RangeIndex(len(rows))
        features[SCORE_COLUMN] = np.array([np.nan if row[5] is None else row[5] for row in rows], dtype=float)
        features[LABEL_COLUMN] = pd.Series(
            [None if row[6] is None else json.loads(row[6]) for row in rows], dtype=object
        )
        features[TIMESTAMP_COLUMN] = np.array([row[3] for row in rows], dtype=float)
        features[REQUEST_COLUMN] = [row[0] for row in rows]
        features[ROW_COLUMN] = np.array([row[1] for row in rows], dtype=np.int64)
        features[VERSION_COLUMN] = [row[2] for row in rows]
        return features

    def window_counts(self, model: str, version: str, *, start: float, end: float) -> WindowCounts:
        """What a window holds now, in one query: its rows, labelled rows, latest prediction and label times.

        The window cache (``window_cache.py``) compares these with what it holds to read only what changed.
        """
        # The rows from predictions_by_model_time; the labels from the model's own (labels_by_model_received),
        # each looked up in predictions by its key to see whether its row is in the window: as many lookups as
        # the model has labels, not one per window row.
        rows = self._query(
            "SELECT r.count, r.last_timestamp, w.labelled, w.last_received_at "
            "FROM (SELECT COUNT(*) AS count, MAX(p.timestamp) AS last_timestamp FROM predictions p "
            "WHERE p.model = ? AND p.version = ? AND p.timestamp >= ? AND p.timestamp < ?) r, "
            "(SELECT COUNT(*) AS labelled, MAX(l.received_at) AS last_received_at FROM labels l "
            "JOIN predictions p ON p.request_id = l.request_id AND p.row = l.row WHERE l.model = ? "
            "AND p.version = ? AND p.timestamp >= ? AND p.timestamp < ?) w",
            (model, version, start, end) * 2,
        )
        count, last_timestamp, labelled, last_received_at = rows[0]
        return WindowCounts(
            rows=int(count),
            labelled=int(labelled),
            last_timestamp=None if last_timestamp is None else float(last_timestamp),
            last_received_at=None if last_received_at is None else float(last_received_at),
        )

    def window_labels(
        self,
        model: str,
        version: str,
        *,
        start: float,
        end: float,
        received_after: float | None = None,
    ) -> list[tuple[str, int, Any]]:
        """(request id, row, label) of the window's labelled rows (labels received after ``received_after``
        when given); labels decoded as ``window`` decodes them."""
        # Driven by the model's labels (labels_by_model_received), each looked up in predictions by its key.
        sql = (
            "SELECT l.request_id, l.row, l.label FROM labels l "
            "JOIN predictions p ON p.request_id = l.request_id AND p.row = l.row "
            "WHERE l.model = ? AND p.version = ? AND p.timestamp >= ? AND p.timestamp < ?"
        )
        parameters: list[Any] = [model, version, start, end]
        if received_after is not None:
            sql += " AND l.received_at > ?"
            parameters.append(received_after)
        return [(row[0], int(row[1]), json.loads(row[2])) for row in self._query(sql, parameters)]

    def versions(self, model: str) -> list[str]:
        """Versions of a model with ingested predictions, most recent prediction last."""
        rows = self._query(
            "SELECT version, MAX(timestamp) FROM predictions WHERE model = ? GROUP BY version ORDER BY 2",
            (model,),
        )
        return [row[0] for row in rows]

    def first_prediction_at(self, model: str, version: str) -> float | None:
        """Event time of the version's first logged prediction (when it began to serve), or None."""
        rows = self._query(
            "SELECT MIN(timestamp) FROM predictions WHERE model = ? AND version = ?", (model, version)
        )
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    def models(self) -> list[str]:
        return [row[0] for row in self._query("SELECT DISTINCT model FROM requests ORDER BY model")]

    def prediction_count(
        self,
        model: str,
        version: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> int:
        """Predicted rows of a model (optionally one version, predicted in ``[since, until)``)."""
        return self._count(
            "SELECT COUNT(*) FROM predictions p WHERE p.model = ?", model, version, since, until
        )

    # -- monitor results ---------------------------------------------------------------------------

    def save_result(
        self,
        model: str,
        version: str,
        *,
        checked_at: float,
        window_start: float,
        window_end: float,
        result: dict,
    ) -> int:
        """Store the result of one window; a result already stored for the same (model, version,
        window_start) is replaced (a later check of a window supersedes the earlier). Returns the row id."""
        with self._transaction() as connection:
            # RETURNING gives the row's id whether it was inserted or updated (lastrowid is not, on update).
            found = connection.execute(
                "INSERT INTO monitor_results (model, version, checked_at, window_start, window_end, result) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (model, version, window_start) DO UPDATE SET "
                "checked_at = excluded.checked_at, window_end = excluded.window_end, "
                "result = excluded.result RETURNING id",
                (
                    model,
                    version,
                    checked_at,
                    window_start,
                    window_end,
                    json.dumps(result, default=_json_default),
                ),
            ).fetchone()
            return int(found[0])

    def result_for(self, model: str, version: str, window_start: float) -> dict | None:
        """The stored result of one window, or None."""
        rows = self._query(
            "SELECT result FROM monitor_results WHERE model = ? AND version = ? AND window_start = ?",
            (model, version, window_start),
        )
        return json.loads(rows[0][0]) if rows else None

    def results(
        self,
        model: str,
        *,
        version: str | None = None,
        since: float | None = None,
        windows_ending_after: float | None = None,
    ) -> list[dict]:
        """Stored monitor results, oldest window first, each the dict ``MonitorResult.to_dict`` wrote.

        Args:
            model: the model.
            version: only this version.
            since: only results checked at or after this time.
            windows_ending_after: only windows whose end is after this time (a look-back over windows).
        """
        sql = "SELECT result FROM monitor_results WHERE model = ?"
        parameters: list[Any] = [model]
        if version is not None:
            sql += " AND version = ?"
            parameters.append(version)
        if since is not None:
            sql += " AND checked_at >= ?"
            parameters.append(since)
        if windows_ending_after is not None:
            sql += " AND window_end > ?"
            parameters.append(windows_ending_after)
        sql += " ORDER BY window_start, checked_at, id"
        return [json.loads(row[0]) for row in self._query(sql, parameters)]

    def latest_result(self, model: str) -> dict | None:
        """The result of the model's latest window (the most recently checked version of it on a tie)."""
        rows = self._query(
            "SELECT result FROM monitor_results WHERE model = ? "
            "ORDER BY window_start DESC, checked_at DESC, id DESC LIMIT 1",
            (model,),
        )
        return json.loads(rows[0][0]) if rows else None

    def latest_results(self) -> dict[str, dict]:
        """The result of each model's latest window (model -> result dict), as ``latest_result``."""
        # Find each model's latest window on the (model, window_start) index first, then read only those
        # results: a scrape must not read every stored result's JSON.
        rows = self._query(
            "SELECT model, result FROM monitor_results WHERE id IN (SELECT "
            "(SELECT x.id FROM monitor_results x "
            "WHERE x.model = latest.model AND x.window_start = latest.start "
            "ORDER BY x.checked_at DESC, x.id DESC LIMIT 1) FROM "
            "(SELECT model, MAX(window_start) AS start FROM monitor_results GROUP BY model) AS latest) "
            "ORDER BY model"
        )
        return {row[0]: json.loads(row[1]) for row in rows}

    def counts_by_model(self) -> dict[str, dict[str, int]]:
        """Per model: checks run, retrains started, labels stored, predictions ingested (for counters)."""
        counts: dict[str, dict[str, int]] = {}
        queries = {
            "checks": "SELECT model, COUNT(*) FROM monitor_results GROUP BY model",
            "retrains": "SELECT model, COUNT(*) FROM decisions WHERE action = 'retrain' GROUP BY model",
            "labels": "SELECT p.model, COUNT(*) FROM labels l JOIN predictions p "
            "ON p.request_id = l.request_id AND p.row = l.row GROUP BY p.model",
            "predictions": "SELECT model, COUNT(*) FROM predictions GROUP BY model",
        }
        for key, sql in queries.items():
            for model, count in self._query(sql):
                counts.setdefault(model, {})[key] = int(count)
        return counts

    # -- decisions and leases ----------------------------------------------------------------------

    def record_decision(
        self,
        model: str,
        version: str | None,
        *,
        action: str,
        reasons: Sequence[str],
        evidence: dict[str, Any],
        outcome: str,
        decided_at: float | None = None,
    ) -> int:
        """Store a decision; returns its id (outcome can be updated later with ``finish_decision``)."""
        decided_at = time.time() if decided_at is None else decided_at
        with self._transaction() as connection:
            found = connection.execute(
                "INSERT INTO decisions (model, version, decided_at, action, reasons, evidence, outcome) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    model,
                    version,
                    decided_at,
                    action,
                    json.dumps(list(reasons)),
                    json.dumps(evidence, default=_json_default),
                    outcome,
                ),
            ).fetchone()
            return int(found[0])

    def finish_decision(
        self,
        decision_id: int,
        outcome: str,
        detail: dict[str, Any] | None = None,
        *,
        finished_at: float | None = None,
    ) -> None:
        finished_at = time.time() if finished_at is None else finished_at
        with self._transaction() as connection:
            connection.execute(
                "UPDATE decisions SET outcome = ?, outcome_detail = ?, finished_at = ? WHERE id = ?",
                (outcome, json.dumps(detail or {}, default=_json_default), finished_at, decision_id),
            )

    def decisions(
        self,
        model: str | None = None,
        *,
        limit: int | None = None,
        action: str | None = None,
        excluding_outcomes: Sequence[str] = (),
    ) -> list[DecisionRow]:
        """Decisions, oldest first (the most recent ``limit`` when given), optionally of one ``action`` and
        without the ``excluding_outcomes`` (filtered in SQL: the decision log only grows)."""
        sql = "SELECT * FROM decisions WHERE 1 = 1"
        parameters: list[Any] = []
        if model is not None:
            sql += " AND model = ?"
            parameters.append(model)
        if action is not None:
            sql += " AND action = ?"
            parameters.append(action)
        if excluding_outcomes:
            sql += f" AND outcome NOT IN ({', '.join('?' * len(excluding_outcomes))})"
            parameters.extend(excluding_outcomes)
        sql += " ORDER BY decided_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            parameters.append(limit)
        rows = self._query(sql, parameters)
        rows.reverse()
        return [
            DecisionRow(
                id=row[0],
                model=row[1],
                version=row[2],
                decided_at=row[3],
                action=row[4],
                reasons=json.loads(row[5]),
                evidence=json.loads(row[6]),
                outcome=row[7],
                outcome_detail=None if row[8] is None else json.loads(row[8]),
                finished_at=row[9],
            )
            for row in rows
        ]

    def acquire_lease(self, model: str, holder: str, *, ttl_seconds: float, now: float | None = None) -> bool:
        """Take the model's retrain lease unless someone else holds an unexpired one.

        The lease expires so that a crashed retrain cannot block the model forever.
        """
        now = time.time() if now is None else now
        with self._transaction() as connection:
            # One statement takes a free or expired lease. On PostgreSQL the upsert locks the model's row (or
            # waits on its key until a concurrent taker commits), so the holder read next is the one that
            # stands: two replicas never both see their own name. SQLite's write lock serialises it anyway.
            connection.execute(
                "INSERT INTO leases VALUES (?, ?, ?, ?) ON CONFLICT (model) DO UPDATE SET "
                "holder = excluded.holder, acquired_at = excluded.acquired_at, "
                "expires_at = excluded.expires_at WHERE leases.expires_at <= ?",
                (model, holder, now, now + ttl_seconds, now),
            )
            current = connection.execute("SELECT holder FROM leases WHERE model = ?", (model,)).fetchone()
            return current is not None and current[0] == holder

    def release_lease(self, model: str, holder: str) -> None:
        with self._transaction() as connection:
            connection.execute("DELETE FROM leases WHERE model = ? AND holder = ?", (model, holder))

    def lease_holder(self, model: str, *, now: float | None = None) -> str | None:
        now = time.time() if now is None else now
        rows = self._query("SELECT holder FROM leases WHERE model = ? AND expires_at > ?", (model, now))
        return rows[0][0] if rows else None

    # -- archive (projects removed from the catalog) -----------------------------------------------

    def archive_models(
        self, models: Iterable[str], *, project: str, reason: str, now: float | None = None
    ) -> list[str]:
        """Mark ``models`` archived (their history is kept, never deleted); the newly marked ones.

        A model already marked keeps its first mark: archiving again is a no-op.
        """
        now = time.time() if now is None else now
        marked = []
        with self._transaction() as connection:
            for model in sorted(set(models)):
                inserted = connection.execute(
                    "INSERT INTO archived_models (model, project, archived_at, reason) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (model) DO NOTHING",
                    (model, project, now, reason),
                ).rowcount
                if inserted:
                    marked.append(model)
        return marked

    def restore_models(self, models: Iterable[str]) -> list[str]:
        """Remove the archive mark of ``models`` (their project is back in the catalog); the ones unmarked."""
        restored = []
        with self._transaction() as connection:
            for model in sorted(set(models)):
                if connection.execute("DELETE FROM archived_models WHERE model = ?", (model,)).rowcount:
                    restored.append(model)
        return restored

    def archived_models(self) -> dict[str, dict[str, Any]]:
        """model -> {project, archived_at, reason} for every archived model."""
        rows = self._query("SELECT model, project, archived_at, reason FROM archived_models ORDER BY model")
        return {row[0]: {"project": row[1], "archived_at": float(row[2]), "reason": row[3]} for row in rows}


STORE_URL_ENV = "MLOPS_MONITOR_STORE_URL"
_POSTGRES_SCHEMES = ("postgresql://", "postgresql+psycopg2://", "postgres://")
# Any constant: the key of the advisory lock that serialises schema migrations of replicas starting at once.
_MIGRATION_LOCK_KEY = 0x6D6F6E69746F72  # "monitor"


def open_store(location: str | Path) -> MonitorStore:
    """The store a URL (or a bare path) names.

    Args:
        location: ``sqlite:///relative/file.sqlite`` or ``sqlite:////absolute/file.sqlite`` (SQLAlchemy's
            spelling) or a bare path: SQLite; ``postgresql://user:password@host:5432/monitor`` (also
            ``postgresql+psycopg2://``, the MLflow database URL's spelling, and libpq query parameters such
            as ``?sslmode=require``): PostgreSQL.

    Raises:
        ConfigError: any other scheme, or a ``sqlite://`` URL without a path.
    """
    text = str(location)
    if text.startswith(_POSTGRES_SCHEMES):
        return PostgresMonitorStore(text)
    if text.startswith("sqlite:///"):
        path = text[len("sqlite:///") :]
        if not path:
            raise ConfigError(
                f"store URL {text!r} has no file; use sqlite:///relative/path.sqlite or "
                "sqlite:////absolute/path.sqlite"
            )
        return MonitorStore(Path(path))
    if "://" in text:
        raise ConfigError(
            f"store URL {redact_url(text)!r} is neither sqlite:///path nor postgresql://...; use e.g. "
            f"sqlite:////var/lib/mlops/monitoring/monitor.sqlite or "
            f"postgresql://monitor:PASSWORD@postgres.mlflow.svc.cluster.local:5432/monitor (${STORE_URL_ENV})"
        )
    return MonitorStore(Path(text))


def store_for(state_dir: Path, url: str | None) -> MonitorStore:
    """The store ``url`` names, or the state dir's SQLite file when there is none (the local default)."""
    return MonitorStore.for_state_dir(state_dir) if not url else open_store(url)


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and logs)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def _postgres_sql(sql: str) -> str:
    """The shared SQL (``?`` placeholders) in psycopg2's paramstyle; a literal ``%`` is doubled."""
    converted = _POSTGRES_SQL.get(sql)
    if converted is None:
        converted = _POSTGRES_SQL[sql] = sql.replace("%", "%%").replace("?", "%s")
    return converted


_POSTGRES_SQL: dict[str, str] = {}


class _PostgresSession:
    """A transaction's cursor with the interface the shared code uses on a ``sqlite3.Connection``."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> Any:
        self.cursor.execute(_postgres_sql(sql), tuple(parameters))
        return self.cursor

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        from psycopg2.extras import execute_batch

        if rows:
            execute_batch(self.cursor, _postgres_sql(sql), rows, page_size=1000)
        return self.cursor


class PostgresMonitorStore(MonitorStore):
    """The store in a PostgreSQL database, shared by every monitor replica (the cluster's backend).

    Leases, labels and results are safe across processes: a lease is taken by one upsert that locks the
    model's row, a request's labels are checked and written under a lock on its row, and ingestion inserts
    request ids in sorted order with ON CONFLICT DO NOTHING (concurrent replicas wait on the same keys in the
    same order: no duplicates, no deadlock). Each call takes a connection from a small pool, so the service's
    threads do not wait on one another's reads.

    Args:
        url: ``postgresql://`` or ``postgresql+psycopg2://`` URL (libpq's URI syntax; a password with
            reserved characters is percent-encoded).
        pool_size: connections at most (one per concurrent call; more calls wait for one).
    """

    _lock_row = " FOR UPDATE"

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        import psycopg2
        import psycopg2.errors
        import psycopg2.extensions
        import psycopg2.pool

        _register_numpy_adapters(psycopg2.extensions)
        self.path = None
        self.location = redact_url(url)
        self._psycopg2 = psycopg2
        dsn = "postgresql://" + url.split("://", 1)[1]
        self._slots = threading.BoundedSemaphore(pool_size)
        # After a server restart every pooled connection may be dead: one more try than the pool holds.
        self._attempts = pool_size + 1
        try:
            # A libpq URI: connect_timeout bounds a start against an unreachable database.
            self._pool = psycopg2.pool.ThreadedConnectionPool(1, pool_size, dsn, connect_timeout=10)
        except psycopg2.Error as error:
            raise ConfigError(
                f"monitor store {self.location}: cannot connect ({str(error).strip()}); check the URL "
                f"(${STORE_URL_ENV}, the monitor's Secret) and that the database accepts this role"
            ) from error
        self._closed = False
        self._migrate()

    def _tables(self) -> tuple[str, ...]:
        return _POSTGRES_TABLES

    def _start_migration(self, connection: Any) -> None:
        connection.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK_KEY,))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.closeall()

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        """A pooled connection in autocommit mode (reads need no BEGIN); a broken one is discarded."""
        with self._slots:
            connection = self._pool.getconn()
            broken = False
            try:
                if connection.closed:
                    self._pool.putconn(connection, close=True)
                    connection = self._pool.getconn()
                connection.autocommit = True
                yield connection
            except (self._psycopg2.OperationalError, self._psycopg2.InterfaceError):
                broken = True  # the server went away: the next call opens a fresh connection
                raise
            finally:
                self._pool.putconn(connection, close=broken or bool(connection.closed))

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        for attempt in range(self._attempts):
            with self._connection() as connection, connection.cursor() as cursor:
                try:
                    cursor.execute("BEGIN")
                except (self._psycopg2.OperationalError, self._psycopg2.InterfaceError):
                    # An idle connection the server closed (a restart, a failover): nothing ran yet, so
                    # another connection may start the transaction over.
                    if attempt == self._attempts - 1:
                        raise
                    continue
                try:
                    yield _PostgresSession(cursor)
                except BaseException:
                    if not connection.closed:
                        cursor.execute("ROLLBACK")
                    raise
                cursor.execute("COMMIT")
                return

    def _query(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple]:
        for attempt in range(self._attempts):
            try:
                with self._connection() as connection, connection.cursor() as cursor:
                    cursor.execute(_postgres_sql(sql), tuple(parameters))
                    return cursor.fetchall()
            except (self._psycopg2.OperationalError, self._psycopg2.InterfaceError):
                if attempt == self._attempts - 1:  # a read is safe to repeat on a fresh connection
                    raise
        raise AssertionError("unreachable")

    def _ingest_batch(self, records: list[PredictionRecord]) -> int:

        unique: dict[str, PredictionRecord] = {}
        for record in records:
            unique.setdefault(record.request_id, record)
        ordered = [unique[key] for key in sorted(unique)]  # one lock order for every replica
        with self._transaction() as session:
            cursor = session.cursor
            # The requests a replica inserts are the ones it stores rows for: a replayed id (or one another
            # replica stored first) returns nothing and adds no prediction row. The batch is COPYed into a
            # temporary table first (emptied at commit): no SQL text built and parsed per row.
            cursor.execute(
                "CREATE TEMPORARY TABLE IF NOT EXISTS incoming_requests (LIKE requests) ON COMMIT DELETE ROWS"
            )
            cursor.copy_expert(
                "COPY incoming_requests FROM STDIN", io.StringIO(_copy_text(map(_request_row, ordered)))
            )
            cursor.execute(
                "INSERT INTO requests SELECT * FROM incoming_requests ORDER BY request_id "
                "ON CONFLICT (request_id) DO NOTHING RETURNING request_id"
            )
            new = cursor.fetchall()
            fresh = {row[0] for row in new}
            prediction_rows = [
                row for record in ordered if record.request_id in fresh for row in _prediction_rows(record)
            ]
            if prediction_rows:
                self._insert_predictions(cursor, prediction_rows)
        return len(prediction_rows)

    def _insert_predictions(self, cursor: Any, rows: list[tuple]) -> None:
        """COPY the rows of requests this transaction inserted (a few times faster than INSERT: no SQL text
        to build and parse per row); INSERT ... ON CONFLICT DO NOTHING should some row exist after all (a
        request's rows are only ever written with its request row, so only a store edited by hand has one).
        """
        from psycopg2.extras import execute_values

        cursor.execute("SAVEPOINT copy_predictions")
        try:
            cursor.copy_expert("COPY predictions FROM STDIN", io.StringIO(_copy_text(rows)))
        except self._psycopg2.errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT copy_predictions")
            logger.warning(
                "store %s: predictions of new requests already stored; inserting the rest", self.location
            )
            execute_values(
                cursor,
                "INSERT INTO predictions VALUES %s ON CONFLICT (request_id, row) DO NOTHING",
                rows,
                page_size=len(rows),
            )
        else:
            cursor.execute("RELEASE SAVEPOINT copy_predictions")


# COPY's text format: a tab between fields, a newline after each row, backslash escapes, \N for NULL.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(rows: Iterable[Sequence[Any]]) -> str:
    return "".join("\t".join(map(_copy_field, row)) + "\n" for row in rows)


def _copy_field(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, float):
        return repr(value)  # round-trips exactly; a score is None when not finite
    return str(value)


def _register_numpy_adapters(extensions: Any) -> None:
    """numpy scalars as SQL numbers (the monitor's values come from numpy; psycopg2 knows only Python's)."""
    extensions.register_adapter(np.integer, lambda value: extensions.AsIs(int(value)))
    extensions.register_adapter(np.floating, lambda value: extensions.adapt(float(value)))
    extensions.register_adapter(np.bool_, lambda value: extensions.AsIs(bool(value)))


# One encoder for every row: json.dumps with separators builds a new JSONEncoder on each call.
_compact_json = json.JSONEncoder(separators=(",", ":")).encode


def _request_row(record: PredictionRecord) -> tuple:
    return (record.request_id, record.model, record.version, record.timestamp, record.row_count)


def _prediction_rows(record: PredictionRecord) -> list[tuple]:
    """The ``predictions`` rows of one record: one per row, inputs and output as compact JSON."""
    output_name = next(iter(record.outputs), None)
    outputs = record.outputs.get(output_name, []) if output_name is not None else []
    columns = list(record.inputs)
    rows = []
    for row in range(record.row_count):
        inputs = {column: record.inputs[column][row] for column in columns}
        output = outputs[row] if row < len(outputs) else None
        rows.append(
            (
                record.request_id,
                row,
                record.model,
                record.version,
                record.timestamp,
                _compact_json(inputs),
                _compact_json(output),
                score_of(output),
            )
        )
    return rows


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store a value of type {type(value).__name__} as JSON")
