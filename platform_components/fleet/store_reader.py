"""What the monitor store knows about every model, read in four GROUP BY queries (not four per model).

The fleet view reads the store the monitor writes (``monitoring/store.py``: ``monitor_results``,
``decisions``, ``requests``, ``labels``) without importing it: that module imports pandas and numpy for its
windows, which would cost the command its one-second budget. The SQL is shared by both backends; only the
JSON path syntax differs (SQLite's ``json_extract(result, '$.a.b')`` has no PostgreSQL function of that
name: ``PostgresFleetStoreReader`` writes ``result::json #>> '{a,b}'``). Results are stored as TEXT on
both, so each backend parses the JSON in the database and returns only the few fields the fleet shows.

The cost is one pass over each table's per-model index or rows; ``history`` keeps the last
``HISTORY_WINDOWS`` windows of each model for the sparklines (window functions: SQLite >= 3.25, any
PostgreSQL).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platform_components.errors import ConfigError

logger = logging.getLogger(__name__)

HISTORY_WINDOWS = 20
"""Windows per model kept for the sparklines (the latest is the row's state)."""

# Outcomes of a retrain decision that started nothing (loop/policy.py NOTHING_STARTED; repeated here so this
# path does not import the loop, which imports the monitor and pandas). tests/fleet checks they agree.
NOTHING_STARTED = frozenset(
    {"refused", "not_started", "waiting_for_rows", "no labelled rows", "no pipeline runner configured"}
)

Query = Callable[[str, Sequence[Any]], list[tuple]]

_POSTGRES_SCHEMES = ("postgresql://", "postgresql+psycopg2://", "postgres://")


@dataclass
class WindowPoint:
    """One checked window of a model (a sparkline point)."""

    window_start: float
    drift_share: float | None
    performance: dict[str, Any]
    estimated: dict[str, Any]


@dataclass
class LatestCheck:
    """The model's latest checked window."""

    version: str
    checked_at: float
    window_start: float
    window_end: float
    status: str
    rows: int
    labelled_rows: int
    drift_share: float | None
    drifted_features: list[str]
    max_psi: float | None
    prediction_drifted: bool


@dataclass
class LastRetrain:
    """The model's latest retrain decision (any outcome) and the latest that started a run."""

    decided_at: float
    outcome: str
    version: str | None
    started_at: float | None = None


@dataclass
class StoreFacts:
    """Everything the store says about one model (``None``: nothing of that kind stored)."""

    latest: LatestCheck | None = None
    history: list[WindowPoint] = field(default_factory=list)
    retrain: LastRetrain | None = None
    incident_at: float | None = None
    last_label_at: float | None = None
    labels: int = 0
    last_prediction_at: float | None = None
    first_prediction_by_version: dict[str, float] = field(default_factory=dict)


class FleetStoreReader:
    """The fleet's queries on a SQLite store (the local default); ``query`` runs one statement.

    Args:
        query: runs SQL with ``?`` placeholders and returns the rows (``MonitorStore._query`` in the
            monitor service; a connection of our own in the command).
        location: for messages.
    """

    def __init__(self, query: Query, location: str = "store") -> None:
        self._query = query
        self.location = location

    def read(self) -> dict[str, StoreFacts]:
        """Per model name: what the store knows (models with nothing stored are absent)."""
        facts: dict[str, StoreFacts] = {}

        def of(model: str) -> StoreFacts:
            found = facts.get(model)
            if found is None:
                found = facts[model] = StoreFacts()
            return found

        self._read_results(of)
        self._read_decisions(of)
        for model, last_label, count in self._query(
            "SELECT r.model, MAX(l.received_at), COUNT(*) FROM labels l "
            "JOIN requests r ON r.request_id = l.request_id GROUP BY r.model",
            (),
        ):
            item = of(model)
            item.last_label_at, item.labels = _number(last_label), int(count)
        for model, version, first, last in self._query(
            "SELECT model, version, MIN(timestamp), MAX(timestamp) FROM requests GROUP BY model, version", ()
        ):
            item = of(model)
            item.first_prediction_by_version[str(version)] = float(first)
            item.last_prediction_at = max(float(last), item.last_prediction_at or float("-inf"))
        return facts

    # The fields of a result the fleet reads: the latest window's state, and each window's sparkline values.
    LATEST_PATHS: tuple[tuple[str, ...], ...] = (
        ("status",),
        ("rows",),
        ("labelled_rows",),
        ("drifted_features",),
        ("max_psi",),
        ("prediction", "drifted"),
    )
    HISTORY_PATHS: tuple[tuple[str, ...], ...] = (("drift_share",), ("performance",), ("estimated",))

    def json_fields(self, paths: Sequence[tuple[str, ...]]) -> str:
        """SQL giving a JSON array of ``result``'s values at ``paths``, parsing the document once."""
        return "json_extract(result, " + ", ".join(f"'$.{'.'.join(path)}'" for path in paths) + ")"

    def _results_sql(self) -> str:
        # The latest window's fields only on its row (position 1); the sparkline fields on every row.
        return (
            f"SELECT model, version, checked_at, window_start, window_end, position, "
            f"{self.json_fields(self.HISTORY_PATHS)}, "
            f"CASE WHEN position = 1 THEN {self.json_fields(self.LATEST_PATHS)} END FROM ("
            "SELECT model, version, checked_at, window_start, window_end, result, ROW_NUMBER() OVER "
            "(PARTITION BY model ORDER BY window_start DESC, checked_at DESC, id DESC) AS position "
            "FROM monitor_results) AS ranked WHERE position <= ? ORDER BY model, window_start"
        )

    def _read_results(self, of: Callable[[str], StoreFacts]) -> None:
        for row in self._query(self._results_sql(), (HISTORY_WINDOWS,)):
            model, version, checked_at, start, end, position, history, latest = row
            share, performance, estimated = json.loads(history)
            item = of(model)
            item.history.append(
                WindowPoint(float(start), _number(share), _object(performance), _object(estimated))
            )
            if position != 1:
                continue
            status, rows, labelled, drifted, psi, prediction_drifted = json.loads(latest)
            item.latest = LatestCheck(
                version=str(version),
                checked_at=float(checked_at),
                window_start=float(start),
                window_end=float(end),
                status=str(status) if status is not None else "unknown",
                rows=int(_number(rows) or 0),
                labelled_rows=int(_number(labelled) or 0),
                drift_share=_number(share),
                drifted_features=[str(name) for name in _list(drifted)],
                max_psi=_number(psi),
                prediction_drifted=_truth(prediction_drifted),
            )

    def _read_decisions(self, of: Callable[[str], StoreFacts]) -> None:
        sql = (
            "SELECT model, action, outcome, decided_at, version FROM ("
            "SELECT model, action, outcome, decided_at, version, ROW_NUMBER() OVER (PARTITION BY model, "
            "action, outcome IN ({nothing}) ORDER BY decided_at DESC, id DESC) AS position FROM decisions "
            "WHERE action IN ('retrain', 'incident')) AS ranked WHERE position = 1 ORDER BY model, decided_at"
        ).format(nothing=", ".join("?" * len(NOTHING_STARTED)))
        # Per model: the latest incident, the latest retrain that started nothing and the latest that started
        # a run; rows come oldest first, so the last retrain row seen is the latest decision.
        for model, action, outcome, decided_at, version in self._query(sql, tuple(sorted(NOTHING_STARTED))):
            item = of(model)
            when = float(decided_at)
            if action == "incident":
                item.incident_at = when
                continue
            started_at = item.retrain.started_at if item.retrain is not None else None
            if outcome not in NOTHING_STARTED:
                started_at = when
            item.retrain = LastRetrain(when, str(outcome), version, started_at)


class PostgresFleetStoreReader(FleetStoreReader):
    """The same queries on PostgreSQL: results are TEXT there too, so each is cast to json once (a LATERAL
    subquery) and its paths taken with ``#>``; ``json_build_array`` gives the array SQLite's multi-path
    ``json_extract`` does."""

    def json_fields(self, paths: Sequence[tuple[str, ...]]) -> str:
        return (
            "json_build_array("
            + ", ".join(f"parsed.document #> '{{{','.join(path)}}}'" for path in paths)
            + ")::text"
        )

    def _results_sql(self) -> str:
        return (
            f"SELECT model, version, checked_at, window_start, window_end, position, "
            f"{self.json_fields(self.HISTORY_PATHS)}, "
            f"CASE WHEN position = 1 THEN {self.json_fields(self.LATEST_PATHS)} END FROM ("
            "SELECT model, version, checked_at, window_start, window_end, result, ROW_NUMBER() OVER "
            "(PARTITION BY model ORDER BY window_start DESC, checked_at DESC, id DESC) AS position "
            "FROM monitor_results) AS ranked, LATERAL (SELECT ranked.result::json AS document) AS parsed "
            "WHERE position <= ? ORDER BY model, window_start"
        )


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _truth(value: Any) -> bool:
    # SQLite's json_extract gives 1/0 for JSON booleans; PostgreSQL's #>> gives 'true'/'false'.
    return value in (1, True, "true", "1")


def _object(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    loaded = json.loads(value) if isinstance(value, str) else value
    return loaded if isinstance(loaded, dict) else {}


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    loaded = json.loads(value) if isinstance(value, str) else value
    return loaded if isinstance(loaded, list) else []


def reader_for_store(store: Any) -> FleetStoreReader:
    """The reader over an open ``MonitorStore`` (the monitor service's): its own connections and pool.

    ``MonitorStore._query`` takes ``?`` placeholders on both backends (the PostgreSQL store converts them).
    """
    postgres = type(store).__name__ == "PostgresMonitorStore"
    kind = PostgresFleetStoreReader if postgres else FleetStoreReader
    return kind(store._query, store.location)


class StoreConnection:
    """A read connection of the command's own to the store a URL names; ``close()`` when done.

    Raises:
        ConfigError: a URL of another scheme, or a PostgreSQL database that cannot be reached.
    """

    def __init__(self, location: str | Path) -> None:
        text = str(location)
        self.reader: FleetStoreReader
        self._close: Callable[[], None]
        if text.startswith(_POSTGRES_SCHEMES):
            self._open_postgres(text)
            return
        if text.startswith("sqlite:///"):
            text = text[len("sqlite:///") :]
        elif "://" in text:
            raise ConfigError(
                f"--store-url: {text.split('://', 1)[0]}:// is neither sqlite:///path nor postgresql://...; "
                "use e.g. sqlite:////abs/path/monitor.sqlite"
            )
        path = Path(text)
        if not path.is_file():
            # A platform that has not checked anything yet: every model shows "never checked".
            logger.info("no monitor store at %s: nothing checked yet", path)
            self.reader = FleetStoreReader(lambda sql, parameters: [], str(path))
            self._close = lambda: None
            return
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
        self.reader = FleetStoreReader(
            lambda sql, parameters: connection.execute(sql, tuple(parameters)).fetchall(), str(path)
        )
        self._close = connection.close

    def _open_postgres(self, url: str) -> None:
        import psycopg2

        redacted = _redact(url)
        try:
            connection = psycopg2.connect("postgresql://" + url.split("://", 1)[1], connect_timeout=10)
        except psycopg2.Error as error:
            raise ConfigError(
                f"--store-url {redacted}: cannot connect ({str(error).strip()}); check the URL and that the "
                "database accepts this role"
            ) from error
        connection.autocommit = True

        def query(sql: str, parameters: Sequence[Any]) -> list[tuple]:
            with connection.cursor() as cursor:
                cursor.execute(sql.replace("%", "%%").replace("?", "%s"), tuple(parameters))
                return cursor.fetchall()

        self.reader = PostgresFleetStoreReader(query, redacted)
        self._close = connection.close

    def close(self) -> None:
        self._close()


def _redact(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, host = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{user.split(':', 1)[0]}:***@{host}"))
