"""Persistence: one ``Store`` over SQLite (sqlite-utils).

Times are stored as UTC epoch seconds (REAL) for cheap range queries and converted to and from
timezone-aware UTC datetimes at this boundary; naive datetimes are rejected. Methods are plain
synchronous functions: every query is an indexed lookup, so async callers run them inline.

The schema lives in ``MIGRATIONS``; the applied count is kept in ``meta``. To change the schema,
append a function to ``MIGRATIONS`` — never edit one that has shipped.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlite_utils import Database

from bot.messages import Message, message_from_json, message_to_json
from bot.models import Health, Outcome, ProbeResult, State, Transition
from bot.subscriptions import Subscription

__all__ = [
    "MIGRATIONS",
    "UPTIME_WINDOWS",
    "DetectionLead",
    "HourlyRollup",
    "Job",
    "MaintenanceWindow",
    "OutboxItem",
    "PendingPost",
    "Reservation",
    "Store",
    "stars",
]

HOUR = 3600.0
UPTIME_WINDOWS: dict[str, timedelta] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
_UP = frozenset({State.OPERATIONAL.value, State.DEGRADED.value})
# Retired models are gone, not down: like maintenance and no-data time they are left out.
_NOT_COUNTED = frozenset({State.MAINTENANCE.value, State.UNKNOWN.value, State.RETIRED.value})
_SUCCESS = frozenset(o.value for o in Outcome if o.is_success)
# Rows that count for latency. Literal (not bound) so SQLite can use the partial index built
# with the same text; changing it needs a migration that recreates ``probes_latency``.
_LATENCY_SAMPLE = (
    "passive = 0 AND latency_ms IS NOT NULL AND outcome IN ('ok', 'reachable', 'slow')"
)
_SOURCE = re.compile(r"admin|statuspage:.+")
_ROLLUP_GRACE = HOUR  # the last rolled-up hour is recomputed once more, for late results
_ROLLUP_CHUNK = 24 * HOUR
OUTBOX_KEEP_DAYS = 30
# Attachments (digest charts, videos of up to ``max_video_mb``) are not kept once a post is
# delivered or given up: the row stays for its key and history, not its bytes.
_DROP_ATTACHMENTS = "message = json_set(message, '$.attachments', json('[]'))"


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """Announced (status page) or admin-declared maintenance of one service."""

    id: int
    service: str
    starts_at: datetime
    ends_at: datetime | None  # None: until ended
    reason: str
    source: str  # "admin" or "statuspage:<status page service id>"
    external_id: str | None = None  # the status page's id for it

    def active_at(self, at: datetime) -> bool:
        return self.starts_at <= at and (self.ends_at is None or at < self.ends_at)


@dataclass(frozen=True, slots=True)
class DetectionLead:
    """How long before the status page confirmed an incident our probes saw it."""

    service: str
    incident_id: str
    incident_name: str
    probe_first_bad_at: datetime | None  # None: probes never saw it
    page_confirmed_at: datetime
    lead_seconds: float | None  # positive: probes were first


@dataclass(frozen=True, slots=True)
class HourlyRollup:
    """One service's probe results over one UTC hour (kept for ``rollup_days``)."""

    service: str
    hour: datetime  # start of the hour
    count: int
    successes: int
    failures: int  # neither success nor neutral (not configured, our network, maintenance, 401)
    outcomes: dict[str, int]  # count per Outcome value
    latency_count: int  # successful active probes with a latency
    latency_sum: float
    latency_p50: float | None
    latency_p95: float | None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A post to make. ``key`` is its idempotency key (enqueueing it twice keeps one row);
    ``reply_to_key`` names the post it goes under as a thread reply; ``opens`` lists the services
    whose alert thread it starts in its channel."""

    key: str
    platform: str
    channel: str
    message: Message
    reply_to_key: str | None = None
    opens: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PendingPost:
    """An undelivered outbox row, with the platform id of the post it replies under (if sent)."""

    id: int
    key: str
    platform: str
    channel: str
    payload: str  # the message as stored; decoded only when it is about to be sent
    reply_to_key: str | None
    reply_to_ref: str | None
    created_at: datetime
    attempts: int
    next_attempt_at: datetime

    @property
    def message(self) -> Message:
        return message_from_json(self.payload)


@dataclass(frozen=True, slots=True)
class Job:
    """One ``/sora generate`` request and what became of it.

    ``status``: routing → queued → in_progress → completed, or failed (upstream), refused
    (moderation / validation), uncertain (maybe accepted), unrouted (no route took it),
    expired (never finished). ``reserved`` is what the budget held for it; ``cost`` is set
    when it is settled (the budget then counts ``cost`` instead)."""

    id: int
    platform: str
    workspace: str
    channel: str
    user: str
    day: str
    prompt_hash: str
    preview: str
    model: str
    seconds: int
    size: str
    prefer: str
    status: str
    progress: int | None
    service: str | None
    upstream_id: str | None
    attempts: tuple[dict[str, Any], ...]
    notes: tuple[str, ...]
    reserved: float
    estimate: float | None
    cost: float | None
    error: str | None
    progress_ref: str | None
    result_ref: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


@dataclass(frozen=True, slots=True)
class Reservation:
    """The answer of ``Store.reserve_job``: the new job, or why there is none."""

    job: Job | None
    refused: str | None = None  # "quota" or "budget"
    used: int = 0  # the user's jobs today (before this one)
    spent: float = 0.0  # the workspace's spend today, settled plus reserved (before this one)


JOB_FIELDS = frozenset({"status", "progress", "service", "upstream_id", "attempts", "notes",
                        "estimate", "cost", "error", "progress_ref", "result_ref",
                        "finished_at"})


def stars(uptime_30d: float | None) -> str:
    """Rating from 30-day uptime: ≥99.5 ★★★★★, ≥95 ★★★★, ≥90 ★★★, ≥80 ★★, else ★; None → "—"."""
    if uptime_30d is None:
        return "—"
    n = next((n for limit, n in ((99.5, 5), (95, 4), (90, 3), (80, 2)) if uptime_30d >= limit), 1)
    return "★" * n + "☆" * (5 - n)


# --- time and JSON helpers ------------------------------------------------------------------


def _ts(at: datetime) -> float:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()}: pass a timezone-aware (UTC) datetime")
    return at.timestamp()


def _opt_ts(at: datetime | None) -> float | None:
    return None if at is None else _ts(at)


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _opt_dt(ts: float | None) -> datetime | None:
    return None if ts is None else _dt(ts)


def _json_default(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending, non-empty sequence."""
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def _hour_floor(ts: float) -> float:
    return math.floor(ts / HOUR) * HOUR


# --- schema ---------------------------------------------------------------------------------

_V1 = (
    """CREATE TABLE probes (
        id INTEGER PRIMARY KEY,
        service TEXT NOT NULL,
        at REAL NOT NULL,
        outcome TEXT NOT NULL,
        latency_ms REAL,
        http_status INTEGER,
        error TEXT,
        detail TEXT,
        passive INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX probes_service_at ON probes (service, at)",
    # Partial and covering (SQLite 3.40 needs the filtered columns in it to skip the table):
    # the status latency query reads only the rows it uses.
    "CREATE INDEX probes_latency ON probes (service, at, latency_ms, outcome, passive)"
    f" WHERE {_LATENCY_SAMPLE}",
    "CREATE INDEX probes_at ON probes (at)",  # rollup and prune walk all services by time
    """CREATE TABLE rollups (
        service TEXT NOT NULL,
        hour REAL NOT NULL,
        count INTEGER NOT NULL,
        successes INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        outcomes TEXT NOT NULL,
        latency_count INTEGER NOT NULL,
        latency_sum REAL NOT NULL,
        latency_p50 REAL,
        latency_p95 REAL,
        PRIMARY KEY (service, hour)
    )""",
    """CREATE TABLE health (
        service TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        since REAL,
        reason TEXT NOT NULL,
        fail_streak TEXT NOT NULL,
        ok_streak INTEGER NOT NULL,
        slow_streak INTEGER NOT NULL,
        window TEXT NOT NULL,
        last_checked REAL,
        last_outcome TEXT,
        first_bad_at REAL
    )""",
    """CREATE TABLE transitions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        service TEXT NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        at REAL NOT NULL,
        reason TEXT NOT NULL,
        evidence TEXT NOT NULL,
        delivered_at REAL,
        UNIQUE (service, at, to_state)
    )""",
    "CREATE INDEX transitions_pending ON transitions (id) WHERE delivered_at IS NULL",
    """CREATE TABLE maintenance (
        id INTEGER PRIMARY KEY,
        service TEXT NOT NULL,
        starts_at REAL NOT NULL,
        ends_at REAL,
        reason TEXT NOT NULL,
        source TEXT NOT NULL,
        external_id TEXT,
        UNIQUE (service, source, external_id)
    )""",
    "CREATE INDEX maintenance_service_starts ON maintenance (service, starts_at)",
    """CREATE TABLE detection_leads (
        id INTEGER PRIMARY KEY,
        service TEXT NOT NULL,
        incident_id TEXT NOT NULL,
        incident_name TEXT NOT NULL,
        probe_first_bad_at REAL,
        page_confirmed_at REAL NOT NULL,
        lead_seconds REAL,
        UNIQUE (service, incident_id)
    )""",
    "CREATE INDEX detection_leads_confirmed ON detection_leads (page_confirmed_at)",
)


def _migration_1(db: Database) -> None:
    """Initial schema."""
    for statement in _V1:
        db.execute(statement)


_V2 = (
    """CREATE TABLE subscriptions (
        id INTEGER PRIMARY KEY,
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        channel TEXT NOT NULL,
        services TEXT NOT NULL,
        min_state TEXT NOT NULL,
        digest_time TEXT,
        digest_tz TEXT NOT NULL,
        last_digest_on TEXT,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE (platform, workspace, channel)
    )""",
    # The durable outbox: one row per post; ``key`` makes enqueueing idempotent.
    """CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        message TEXT NOT NULL,
        reply_to_key TEXT,
        created_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error TEXT,
        sent_at REAL,
        ref TEXT,
        dead_at REAL
    )""",
    "CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at IS NULL AND dead_at IS NULL",
    # Which outbox post opened the current alert thread of a service in a channel.
    """CREATE TABLE threads (
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        service TEXT NOT NULL,
        item_key TEXT NOT NULL,
        PRIMARY KEY (platform, channel, service)
    )""",
    # When the start and the end of a window were announced to subscribers (once each).
    "ALTER TABLE maintenance ADD COLUMN announced_start REAL",
    "ALTER TABLE maintenance ADD COLUMN announced_end REAL",
    "ALTER TABLE health ADD COLUMN cause TEXT",  # the outcome that caused the current state
)


def _migration_2(db: Database) -> None:
    """Subscriptions, the outbox and alert threads."""
    for statement in _V2:
        db.execute(statement)


_V3 = (
    # ``/sora generate`` jobs. The prompt itself is not kept: its hash identifies it and a short
    # preview (already shown in the chat) labels the progress message.
    """CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        platform TEXT NOT NULL,
        workspace TEXT NOT NULL,
        channel TEXT NOT NULL,
        user TEXT NOT NULL,
        day TEXT NOT NULL,
        prompt_hash TEXT NOT NULL,
        preview TEXT NOT NULL,
        model TEXT NOT NULL,
        seconds INTEGER NOT NULL,
        size TEXT NOT NULL,
        prefer TEXT NOT NULL,
        status TEXT NOT NULL,
        progress INTEGER,
        service TEXT,
        upstream_id TEXT,
        attempts TEXT NOT NULL DEFAULT '[]',
        notes TEXT NOT NULL DEFAULT '[]',
        reserved REAL NOT NULL,
        estimate REAL,
        cost REAL,
        error TEXT,
        progress_ref TEXT,
        result_ref TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        finished_at REAL
    )""",
    "CREATE INDEX jobs_active ON jobs (id) WHERE finished_at IS NULL",
    "CREATE INDEX jobs_day ON jobs (platform, workspace, day, user)",
)


def _migration_3(db: Database) -> None:
    """Generation jobs, their budget reservations and quotas."""
    for statement in _V3:
        db.execute(statement)


Migration = Callable[[Database], None]
MIGRATIONS: tuple[Migration, ...] = (_migration_1, _migration_2, _migration_3)


# --- the store ------------------------------------------------------------------------------


class Store:
    """Every read and write of the bot's SQLite database."""

    def __init__(self, path: str | Path, *, raw_days: int = 14) -> None:
        """Open (creating if needed) and migrate. ``raw_days``: raw probe retention, which also
        decides whether ``latency`` reads raw probes or hourly rollups."""
        self.raw_days = raw_days
        self._db = Database(memory=True) if str(path) == ":memory:" else Database(path)
        try:
            if not self._db.memory:
                self._db.enable_wal()
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=5000")
            self.migrate()
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[Database]:
        """One write transaction; takes the write lock up front (no upgrade deadlocks)."""
        with self._db.conn:
            self._db.conn.execute("BEGIN IMMEDIATE")
            yield self._db

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, params).fetchall()

    def _one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._db.execute(sql, params).fetchone()
        return row

    # --- migrations -------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        row = self._one("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(row[0]) if row else 0

    def migrate(self) -> int:
        """Apply pending ``MIGRATIONS`` in order, each in its own transaction. Idempotent."""
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        if self.schema_version > len(MIGRATIONS):
            raise RuntimeError(f"database schema {self.schema_version} is newer than this bot")
        for number, migration in enumerate(MIGRATIONS, start=1):
            if self.schema_version >= number:
                continue
            with self._tx() as db:
                if self.schema_version < number:  # another process may have just done it
                    migration(db)
                    self._set_meta("schema_version", str(number))
        return self.schema_version

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    # --- probes, health, transitions --------------------------------------------------------

    def record(
        self, result: ProbeResult, health: Health, transition: Transition | None
    ) -> Transition | None:
        """Persist one step atomically. Returns the transition with its id; re-recording one
        (same service, at, to_state) returns the stored row instead of inserting it twice."""
        if health.service != result.service or (
            transition is not None and transition.service != result.service
        ):
            raise ValueError("result, health and transition must be for the same service")
        with self._tx():
            self._insert_probe(result)
            self._upsert_health(health)
            return None if transition is None else self._insert_transition(transition)

    def _insert_probe(self, r: ProbeResult) -> None:
        self._db.execute(
            "INSERT INTO probes (service, at, outcome, latency_ms, http_status, error, detail,"
            " passive) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (r.service, _ts(r.at), r.outcome.value, r.latency_ms, r.http_status, r.error,
             r.detail, int(r.passive)),
        )

    def _insert_transition(self, t: Transition) -> Transition:
        at = _ts(t.at)
        inserted = self._rows(
            "INSERT INTO transitions (service, from_state, to_state, at, reason, evidence)"
            " VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (service, at, to_state) DO NOTHING RETURNING id",
            (t.service, t.from_state.value, t.to_state.value, at, t.reason, _dumps(t.evidence)),
        )
        if inserted:
            return replace(t, id=int(inserted[0][0]))
        existing = self._rows(
            f"SELECT {_T_COLS} FROM transitions WHERE service = ? AND at = ? AND to_state = ?",
            (t.service, at, t.to_state.value),
        )
        return _transition(existing[0])

    def save_health(self, health: Health) -> None:
        with self._tx():
            self._upsert_health(health)

    def _upsert_health(self, h: Health) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO health (service, state, since, reason, fail_streak, ok_streak,"
            " slow_streak, window, last_checked, last_outcome, first_bad_at, cause)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (h.service, h.state.value, _opt_ts(h.since), h.reason, _dumps(list(h.fail_streak)),
             h.ok_streak, h.slow_streak, _dumps(list(h.window)), _opt_ts(h.last_checked),
             None if h.last_outcome is None else h.last_outcome.value, _opt_ts(h.first_bad_at),
             None if h.cause is None else h.cause.value),
        )

    def load_health(self, service: str) -> Health | None:
        row = self._one(f"SELECT {_H_COLS} FROM health WHERE service = ?", (service,))
        return None if row is None else _health(row)

    def all_health(self) -> dict[str, Health]:
        return {r[0]: _health(r) for r in self._rows(f"SELECT {_H_COLS} FROM health ORDER BY 1")}

    def last_result(self, service: str) -> ProbeResult | None:
        row = self._one(
            f"SELECT {_P_COLS} FROM probes WHERE service = ? ORDER BY at DESC, id DESC LIMIT 1",
            (service,),
        )
        return None if row is None else _probe(row)

    def probes(
        self, service: str | None = None, since: datetime | None = None
    ) -> Iterator[ProbeResult]:
        """Raw probe results in time order (export). Streams; rolled-up history is not here."""
        where, params = _where(service=service, since=since)
        cursor = self._db.execute(
            f"SELECT {_P_COLS} FROM probes {where} ORDER BY at, id", params
        )
        while batch := cursor.fetchmany(1000):
            yield from map(_probe, batch)

    def pending_transitions(self) -> list[Transition]:
        """Transitions not yet delivered to chat, oldest first."""
        rows = self._rows(
            f"SELECT {_T_COLS} FROM transitions WHERE delivered_at IS NULL ORDER BY id"
        )
        return [_transition(r) for r in rows]

    def mark_delivered(self, ids: Iterable[int], at: datetime) -> None:
        """Mark transitions handed over (to the outbox) so they are not fanned out again."""
        with self._tx():
            self._mark_delivered(ids, at)

    def _mark_delivered(self, ids: Iterable[int], at: datetime) -> None:
        self._db.conn.executemany(
            "UPDATE transitions SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL",
            [(_ts(at), i) for i in ids],
        )

    def transitions(
        self,
        service: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[Transition]:
        """Transitions, newest last; with ``limit``, the newest ``limit`` of them."""
        where, params = _where(service=service, since=since)
        sql = f"SELECT {_T_COLS} FROM transitions {where} ORDER BY at DESC, id DESC"
        if limit is not None:
            sql, params = sql + " LIMIT ?", [*params, limit]
        return [_transition(r) for r in reversed(self._rows(sql, params))]

    def last_transition(self, service: str) -> Transition | None:
        found = self.transitions(service, limit=1)
        return found[0] if found else None

    def risk_control_episodes(self, service: str, now: datetime, weeks: int = 1) -> int:
        """Transitions into risk_control in the last ``weeks`` weeks."""
        end = _ts(now)
        row = self._one(
            "SELECT COUNT(*) FROM transitions WHERE service = ? AND at > ? AND at <= ?"
            " AND to_state = ?",
            (service, end - weeks * 7 * 86400.0, end, State.RISK_CONTROL.value),
        )
        return int(row[0]) if row else 0

    # --- maintenance ------------------------------------------------------------------------

    def add_maintenance(
        self,
        service: str,
        starts_at: datetime,
        ends_at: datetime | None,
        reason: str,
        source: str,
        external_id: str | None = None,
    ) -> int:
        """Add a window, or update the one with the same (service, source, external_id)."""
        if not _SOURCE.fullmatch(source):
            raise ValueError(f"maintenance source {source!r}: 'admin' or 'statuspage:<id>'")
        with self._tx():
            rows = self._rows(
                "INSERT INTO maintenance (service, starts_at, ends_at, reason, source,"
                " external_id) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (service, source, external_id) DO UPDATE SET"
                " starts_at = excluded.starts_at, ends_at = excluded.ends_at,"
                " reason = excluded.reason RETURNING id",
                (service, _ts(starts_at), _opt_ts(ends_at), reason, source, external_id),
            )
        return int(rows[0][0])

    def end_maintenance(self, service: str, at: datetime, source: str | None = None) -> int:
        """End the windows active at ``at`` (of ``source`` only, if given). Returns how many."""
        ts = _ts(at)
        sql = (
            "UPDATE maintenance SET ends_at = ? WHERE service = ? AND starts_at <= ?"
            " AND (ends_at IS NULL OR ends_at > ?)"
        )
        params: list[Any] = [ts, service, ts, ts]
        if source is not None:
            sql, params = sql + " AND source = ?", [*params, source]
        with self._tx() as db:
            return db.execute(sql, params).rowcount

    def active_maintenance(self, service: str, now: datetime) -> list[MaintenanceWindow]:
        """Windows of ``service`` in force at ``now`` (started, not ended), by start time."""
        ts = _ts(now)
        rows = self._rows(
            f"SELECT {_M_COLS} FROM maintenance WHERE service = ? AND starts_at <= ?"
            " AND (ends_at IS NULL OR ends_at > ?) ORDER BY starts_at, id",
            (service, ts, ts),
        )
        return [_window(r) for r in rows]

    def maintenance_windows(
        self, service: str | None, since: datetime, until: datetime
    ) -> list[MaintenanceWindow]:
        """Windows overlapping [since, until), by start time; ``service=None`` for all."""
        sql = (
            f"SELECT {_M_COLS} FROM maintenance WHERE starts_at < ?"
            " AND (ends_at IS NULL OR ends_at > ?)"
        )
        params: list[Any] = [_ts(until), _ts(since)]
        if service is not None:
            sql, params = sql + " AND service = ?", [*params, service]
        return [_window(r) for r in self._rows(sql + " ORDER BY starts_at, id", params)]

    def unannounced_maintenance(self, now: datetime) -> list[tuple[MaintenanceWindow, bool]]:
        """Windows whose start (False) or end (True) has come and not been announced yet, as
        (window, is_end) pairs, by time."""
        ts = _ts(now)
        rows = self._rows(
            f"SELECT {_M_COLS}, announced_start IS NULL, ends_at IS NOT NULL AND ends_at <= ?"
            " AND announced_end IS NULL FROM maintenance WHERE starts_at <= ? AND"
            " (announced_start IS NULL OR (ends_at <= ? AND announced_end IS NULL))"
            " ORDER BY starts_at, id", (ts, ts, ts))
        out: list[tuple[MaintenanceWindow, bool]] = []
        for r in rows:
            window = _window(r)
            if r[-2]:
                out.append((window, False))
            if r[-1]:
                out.append((window, True))
        return out

    def maintenance_announced(self, ids: Iterable[tuple[int, bool]], now: datetime,
                              items: Sequence[OutboxItem] = ()) -> None:
        """Mark (window id, is_end) announced and enqueue the announcements, atomically."""
        with self._tx() as db:
            self._enqueue(items, now)
            for window_id, is_end in ids:
                column = "announced_end" if is_end else "announced_start"
                db.execute(f"UPDATE maintenance SET {column} = ? WHERE id = ?",
                           (_ts(now), window_id))

    # --- detection leads --------------------------------------------------------------------

    def record_detection_lead(
        self,
        service: str,
        incident_id: str,
        incident_name: str,
        probe_first_bad_at: datetime | None,
        page_confirmed_at: datetime,
    ) -> None:
        """Remember the lead of our probes over a status page. The first record wins."""
        first, confirmed = _opt_ts(probe_first_bad_at), _ts(page_confirmed_at)
        lead = None if first is None else confirmed - first
        with self._tx():
            self._db.execute(
                "INSERT INTO detection_leads (service, incident_id, incident_name,"
                " probe_first_bad_at, page_confirmed_at, lead_seconds) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (service, incident_id) DO NOTHING",
                (service, incident_id, incident_name, first, confirmed, lead),
            )

    def detection_leads(self, since: datetime) -> list[DetectionLead]:
        """Leads whose incident the page confirmed at or after ``since``, oldest first."""
        rows = self._rows(
            "SELECT service, incident_id, incident_name, probe_first_bad_at, page_confirmed_at,"
            " lead_seconds FROM detection_leads WHERE page_confirmed_at >= ?"
            " ORDER BY page_confirmed_at, id",
            (_ts(since),),
        )
        return [
            DetectionLead(r[0], r[1], r[2], _opt_dt(r[3]), _dt(r[4]), r[5]) for r in rows
        ]

    # --- subscriptions ---------------------------------------------------------------------

    def subscribe(
        self, platform: str, workspace: str, channel: str, *, services: Sequence[str],
        min_state: State, by: str, now: datetime,
    ) -> Subscription:
        """Create the channel's subscription or replace its filter and minimum."""
        with self._tx():
            self._db.execute(
                "INSERT INTO subscriptions (platform, workspace, channel, services, min_state,"
                " digest_tz, created_by, created_at) VALUES (?, ?, ?, ?, ?, 'UTC', ?, ?)"
                " ON CONFLICT (platform, workspace, channel) DO UPDATE SET"
                " services = excluded.services, min_state = excluded.min_state",
                (platform, workspace, channel, _dumps(list(services)), min_state.value, by,
                 _ts(now)),
            )
        found = self.subscription(platform, workspace, channel)
        assert found is not None
        return found

    def unsubscribe(self, platform: str, workspace: str, channel: str) -> bool:
        with self._tx() as db:
            return db.execute(
                "DELETE FROM subscriptions WHERE platform = ? AND workspace = ? AND channel = ?",
                (platform, workspace, channel)).rowcount > 0

    def subscription(self, platform: str, workspace: str, channel: str) -> Subscription | None:
        row = self._one(f"SELECT {_S_COLS} FROM subscriptions WHERE platform = ? AND"
                        " workspace = ? AND channel = ?", (platform, workspace, channel))
        return None if row is None else _subscription(row)

    def subscriptions(self, platform: str | None = None, workspace: str | None = None
                      ) -> list[Subscription]:
        sql = f"SELECT {_S_COLS} FROM subscriptions WHERE 1"
        params: list[Any] = []
        for column, value in (("platform", platform), ("workspace", workspace)):
            if value is not None:
                sql, params = sql + f" AND {column} = ?", [*params, value]
        return [_subscription(r) for r in self._rows(sql + " ORDER BY id", params)]

    def set_digest(self, sub_id: int, digest_time: str | None, tz: str,
                   claimed: date | None) -> None:
        """Set (or with None, turn off) the digest time; ``claimed``: the local date whose
        digest counts as done already (a time set after today's has passed starts tomorrow)."""
        with self._tx():
            self._db.execute(
                "UPDATE subscriptions SET digest_time = ?, digest_tz = ?, last_digest_on = ?"
                " WHERE id = ?",
                (digest_time, tz, None if claimed is None else claimed.isoformat(), sub_id))

    def claim_digest(self, sub_id: int, on: date, item: OutboxItem, now: datetime) -> bool:
        """Atomically mark ``on``'s digest done for the subscription and enqueue it; False when
        it was claimed already (another run, or before a restart)."""
        with self._tx():
            claimed = self._db.execute(
                "UPDATE subscriptions SET last_digest_on = ? WHERE id = ? AND"
                " (last_digest_on IS NULL OR last_digest_on < ?)",
                (on.isoformat(), sub_id, on.isoformat())).rowcount
            if claimed:
                self._enqueue([item], now)
        return bool(claimed)

    # --- generation jobs --------------------------------------------------------------------

    def reserve_job(self, *, platform: str, workspace: str, channel: str, user: str,
                    prompt_hash: str, preview: str, model: str, seconds: int, size: str,
                    prefer: str, reserve: float, budget: float | None, quota: int | None,
                    now: datetime) -> Reservation:
        """Check the user's daily quota and the workspace's daily budget and, when both allow,
        create the job holding ``reserve`` — in one write transaction, so concurrent requests
        (in this or another process) can never overspend. Jobs that no route took, and their
        money, do not count."""
        day = now.astimezone(UTC).date().isoformat()
        with self._tx():
            used, spent = self._one(
                f"SELECT COUNT(*) FILTER (WHERE user = ? AND status != 'unrouted'), {_SPENT}"
                f" FROM jobs WHERE {_WORKSPACE_DAY}", (user, platform, workspace, day)) or (0, 0.0)
            if quota is not None and used >= quota:
                return Reservation(None, "quota", used, spent)
            if budget is not None and spent + reserve > budget + 1e-9:
                return Reservation(None, "budget", used, spent)
            row = self._rows(
                "INSERT INTO jobs (platform, workspace, channel, user, day, prompt_hash, preview,"
                " model, seconds, size, prefer, status, reserved, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'routing', ?, ?, ?)"
                f" RETURNING {_J_COLS}",
                (platform, workspace, channel, user, day, prompt_hash, preview, model, seconds,
                 size, prefer, reserve, _ts(now), _ts(now)))
        return Reservation(_job(row[0]), None, used, spent)

    def update_job(self, job_id: int, now: datetime, *, post: OutboxItem | None = None,
                   **fields: Any) -> Job:
        """Change some of a job's ``JOB_FIELDS`` and, in the same transaction, enqueue ``post``
        (its result): a finished job and its post are stored together or not at all."""
        unknown = set(fields) - JOB_FIELDS
        if unknown:
            raise ValueError(f"not job fields: {', '.join(sorted(unknown))}")
        values = {k: _dumps(list(v)) if k in ("attempts", "notes") else
                  _opt_ts(v) if k == "finished_at" else v for k, v in fields.items()}
        sets = "".join(f", {k} = ?" for k in values)
        with self._tx():
            row = self._rows(f"UPDATE jobs SET updated_at = ?{sets} WHERE id = ?"
                             f" RETURNING {_J_COLS}", (_ts(now), *values.values(), job_id))
            if row and post is not None:
                self._enqueue([post], now)
        if not row:
            raise KeyError(f"no job {job_id}")
        return _job(row[0])

    def job(self, job_id: int) -> Job | None:
        row = self._one(f"SELECT {_J_COLS} FROM jobs WHERE id = ?", (job_id,))
        return None if row is None else _job(row)

    def active_jobs(self) -> list[Job]:
        """Jobs not finished yet, oldest first (a restarted bot resumes them)."""
        return [_job(r) for r in self._rows(
            f"SELECT {_J_COLS} FROM jobs WHERE finished_at IS NULL ORDER BY id")]

    def jobs(self, since: datetime | None = None) -> list[Job]:
        sql = f"SELECT {_J_COLS} FROM jobs"
        if since is None:
            return [_job(r) for r in self._rows(sql + " ORDER BY id")]
        return [_job(r) for r in self._rows(sql + " WHERE created_at >= ? ORDER BY id",
                                            (_ts(since),))]

    def spent_today(self, platform: str, workspace: str, now: datetime) -> float:
        """Settled plus reserved spend of a workspace on ``now``'s UTC day."""
        row = self._one(f"SELECT {_SPENT} FROM jobs WHERE {_WORKSPACE_DAY}",
                        (platform, workspace, now.astimezone(UTC).date().isoformat()))
        return float(row[0]) if row else 0.0

    # --- outbox -----------------------------------------------------------------------------

    def enqueue(self, items: Sequence[OutboxItem], now: datetime,
                fanned_out: Iterable[int] = ()) -> int:
        """Add posts (a key already present is skipped) and mark the transitions they were
        made from as handed to the outbox — in one transaction. Returns rows added."""
        with self._tx():
            added = self._enqueue(items, now)
            self._mark_delivered(fanned_out, now)
        return added

    def _enqueue(self, items: Sequence[OutboxItem], now: datetime) -> int:
        added = 0
        for item in items:
            inserted = self._db.execute(
                "INSERT INTO outbox (key, platform, channel, message, reply_to_key, created_at,"
                " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                (item.key, item.platform, item.channel, message_to_json(item.message),
                 item.reply_to_key, _ts(now), _ts(now))).rowcount
            if not inserted:
                continue  # enqueued before: its threads are recorded already
            added += 1
            self._db.conn.executemany(
                "INSERT OR REPLACE INTO threads (platform, channel, service, item_key)"
                " VALUES (?, ?, ?, ?)",
                [(item.platform, item.channel, s, item.key) for s in item.opens])
        return added

    def has_post(self, key: str) -> bool:
        return self._one("SELECT 1 FROM outbox WHERE key = ?", (key,)) is not None

    def thread_opener(self, platform: str, channel: str, service: str) -> str | None:
        """Key of the post that opened ``service``'s current alert thread in the channel."""
        row = self._one("SELECT item_key FROM threads WHERE platform = ? AND channel = ? AND"
                        " service = ?", (platform, channel, service))
        return None if row is None else str(row[0])

    def pending_posts(self) -> list[PendingPost]:
        """Undelivered posts, oldest first (per channel, this is the order they must keep)."""
        rows = self._rows(
            "SELECT o.id, o.key, o.platform, o.channel, o.message, o.reply_to_key, p.ref,"
            " o.created_at, o.attempts, o.next_attempt_at FROM outbox o"
            " LEFT JOIN outbox p ON p.key = o.reply_to_key"
            " WHERE o.sent_at IS NULL AND o.dead_at IS NULL ORDER BY o.id")
        return [PendingPost(r[0], r[1], r[2], r[3], r[4], r[5], r[6], _dt(r[7]), r[8], _dt(r[9]))
                for r in rows]

    def next_post_due(self, platforms: Sequence[str]) -> datetime | None:
        """The earliest time a channel's first pending post (of ``platforms``) is due."""
        marks = ",".join("?" * len(platforms))
        row = self._one(  # only a channel's head can be due: the rest wait behind it
            "SELECT MIN(next_attempt_at) FROM outbox WHERE id IN (SELECT MIN(id) FROM outbox"
            " WHERE sent_at IS NULL AND dead_at IS NULL"
            f" AND platform IN ({marks}) GROUP BY platform, channel)", list(platforms))
        return None if row is None or row[0] is None else _dt(row[0])

    def post_sent(self, post_id: int, ref: str, now: datetime) -> None:
        with self._tx():
            self._db.execute("UPDATE outbox SET sent_at = ?, ref = ?, attempts = attempts + 1,"
                             f" last_error = NULL, {_DROP_ATTACHMENTS} WHERE id = ?",
                             (_ts(now), ref, post_id))

    def post_failed(self, post_id: int, error: str, retry_at: datetime) -> None:
        with self._tx():
            self._db.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ?,"
                             " next_attempt_at = ? WHERE id = ?", (error, _ts(retry_at), post_id))

    def post_dead(self, post_id: int, error: str, now: datetime) -> None:
        """Give up on a post (the platform said never, or it expired)."""
        with self._tx():
            self._db.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ?,"
                             f" dead_at = ?, {_DROP_ATTACHMENTS} WHERE id = ?",
                             (error, _ts(now), post_id))

    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Every outbox row (sent, pending, dead), oldest first: for tests and ``export``."""
        sql = ("SELECT id, key, platform, channel, attempts, last_error, sent_at, ref, dead_at"
               " FROM outbox")
        rows = self._rows(sql + (" WHERE channel = ? ORDER BY id" if channel else " ORDER BY id"),
                          (channel,) if channel else ())
        names = ("id", "key", "platform", "channel", "attempts", "last_error", "sent_at", "ref",
                 "dead_at")
        return [dict(zip(names, r, strict=True)) for r in rows]

    # --- uptime ----------------------------------------------------------------------------

    def uptime(self, service: str, window: timedelta, now: datetime) -> float | None:
        """Time-weighted uptime % over (now - window, now].

        Up = operational or degraded. Time in maintenance or unknown state (including before
        the first transition) and time inside maintenance windows counts in neither numerator
        nor denominator. None when no time is countable.
        """
        end = _ts(now)
        span = window.total_seconds()
        return self._uptimes(service, end, [span])[0]

    def uptimes(
        self, service: str, now: datetime, *, keys: Sequence[str] = tuple(UPTIME_WINDOWS)
    ) -> dict[str, float | None]:
        """``uptime`` for each of ``keys`` (of ``UPTIME_WINDOWS``: 24h, 7d, 30d, 90d) from one
        read of the timeline; ask only for what you show (90d reads three times 30d's rows)."""
        spans = [UPTIME_WINDOWS[key].total_seconds() for key in keys]
        return dict(zip(keys, self._uptimes(service, _ts(now), spans), strict=True))

    def _uptimes(self, service: str, end: float, spans: list[float]) -> list[float | None]:
        if not spans:
            return []
        start = end - max(spans)
        pieces = _countable(self._timeline(service, start, end), self._busy(service, start, end),
                            start, end)
        return _uptime_spans(pieces, end, spans)

    def _timeline(self, service: str, start: float, end: float) -> list[tuple[float, str]]:
        """(at, state entered) in time order: the last change before ``start``, every change in
        [start, end], and the health row's state if it is newer than the last change."""
        before = self._rows(
            "SELECT at, to_state FROM transitions WHERE service = ? AND at < ?"
            " ORDER BY at DESC, id DESC LIMIT 1",
            (service, start),
        )
        during = self._rows(  # index order; ties on ``at`` by id below (SQLite sorts slowly)
            "SELECT at, id, to_state FROM transitions WHERE service = ? AND at >= ? AND at <= ?"
            " ORDER BY at",
            (service, start, end),
        )
        during.sort()
        timeline: list[tuple[float, str]] = before + [(at, state) for at, _, state in during]
        row = self._one("SELECT since, state FROM health WHERE service = ?", (service,))
        if row is not None and row[0] is not None and row[0] <= end:
            since, state = row
            if not timeline or (since >= timeline[-1][0] and state != timeline[-1][1]):
                timeline.append((since, state))
        return timeline

    def _busy(self, service: str, start: float, end: float) -> list[tuple[float, float]]:
        """Maintenance windows overlapping [start, end], clipped, sorted and merged."""
        rows = self._rows(
            "SELECT starts_at, ends_at FROM maintenance WHERE service = ? AND starts_at < ?"
            " AND (ends_at IS NULL OR ends_at > ?) ORDER BY starts_at",
            (service, end, start),
        )
        merged: list[tuple[float, float]] = []
        for s, e in rows:
            s, e = max(s, start), min(end if e is None else e, end)
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        return merged

    # --- latency ---------------------------------------------------------------------------

    def latency(
        self, service: str, window: timedelta, now: datetime
    ) -> tuple[float, float] | tuple[None, None]:
        """(p50, p95) latency in ms of successful active probes over (now - window, now].

        Windows within raw retention use raw rows (exact nearest-rank percentiles). Longer
        windows use hourly rollups, approximated as the count-weighted mean of the hourly p50
        and p95 (not a true percentile over the window; good enough for a stable service, and
        it under-states tails concentrated in a few hours). Passive results (real generations,
        minutes long) are left out. (None, None) when there is no sample.
        """
        end = _ts(now)
        start = end - window.total_seconds()
        if window <= timedelta(days=self.raw_days):
            values = [v for (v,) in self._rows(
                "SELECT latency_ms FROM probes"
                f" WHERE service = ? AND at > ? AND at <= ? AND {_LATENCY_SAMPLE}",
                (service, start, end),
            )]
            values.sort()  # cheaper here than in SQLite's sorter
            return (_percentile(values, 50), _percentile(values, 95)) if values else (None, None)
        row = self._one(
            "SELECT SUM(latency_count), SUM(latency_count * latency_p50),"
            " SUM(latency_count * latency_p95) FROM rollups"
            " WHERE service = ? AND hour >= ? AND hour < ? AND latency_count > 0",
            (service, _hour_floor(start), end),
        )
        if row is None or not row[0]:
            return None, None
        return row[1] / row[0], row[2] / row[0]

    # --- retention -------------------------------------------------------------------------

    def rollup(self, now: datetime) -> int:
        """Aggregate raw probes of completed hours into ``rollups``; returns rows written.

        Idempotent: each (service, hour) is recomputed from raw rows and replaced. Hours since
        the last run are processed, plus the last hour already done (late results).
        """
        end = _hour_floor(_ts(now))
        mark = self._meta("rollup_until")
        if mark is not None:
            start = float(mark) - _ROLLUP_GRACE
        else:
            first = self._one("SELECT MIN(at) FROM probes")
            start = end if first is None or first[0] is None else _hour_floor(first[0])
        written = 0
        while start < end:
            chunk_end = min(start + _ROLLUP_CHUNK, end)
            written += self._rollup_range(start, chunk_end)
            start = chunk_end
        if mark is None or end > float(mark):
            with self._tx():
                self._set_meta("rollup_until", repr(end))
        return written

    def _rollup_range(self, start: float, end: float) -> int:
        rows = self._rows(
            "SELECT service, at, outcome, latency_ms, passive FROM probes"
            " WHERE at >= ? AND at < ?",
            (start, end),
        )
        groups: dict[tuple[str, float], list[tuple[Any, ...]]] = {}
        for row in rows:
            groups.setdefault((row[0], _hour_floor(row[1])), []).append(row)
        with self._tx() as db:
            db.conn.executemany(
                "INSERT OR REPLACE INTO rollups (service, hour, count, successes, failures,"
                " outcomes, latency_count, latency_sum, latency_p50, latency_p95)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*key, *_aggregate(group)) for key, group in groups.items()],
            )
        return len(groups)

    def rollups(
        self, service: str, since: datetime, until: datetime | None = None
    ) -> list[HourlyRollup]:
        """Hourly rollups of ``service`` starting in [since, until), oldest first."""
        rows = self._rows(
            f"SELECT {_R_COLS} FROM rollups WHERE service = ? AND hour >= ? AND hour < ?"
            " ORDER BY hour",
            (service, _ts(since), math.inf if until is None else _ts(until)),
        )
        return [
            HourlyRollup(r[0], _dt(r[1]), r[2], r[3], r[4], json.loads(r[5]), *r[6:]) for r in rows
        ]

    def prune(
        self, now: datetime, raw_days: int | None = None, rollup_days: int = 400
    ) -> tuple[int, int]:
        """Roll up, then delete raw probes older than ``raw_days`` (default: the store's) and
        rollups older than ``rollup_days``. Only rolled-up probes are deleted. Transitions are
        kept. Returns (probes deleted, rollups deleted)."""
        self.rollup(now)
        end = _ts(now)
        days = self.raw_days if raw_days is None else raw_days
        rolled_until = float(self._meta("rollup_until") or "-inf") - _ROLLUP_GRACE
        keep_from = min(_hour_floor(end - days * 86400.0), rolled_until)
        with self._tx() as db:
            probes = db.execute("DELETE FROM probes WHERE at < ?", (keep_from,)).rowcount
            rollups = db.execute(
                "DELETE FROM rollups WHERE hour < ?", (end - rollup_days * 86400.0,)
            ).rowcount
            # Delivered posts are kept long enough that their keys still deduplicate.
            db.execute("DELETE FROM outbox WHERE COALESCE(sent_at, dead_at) < ?",
                       (end - OUTBOX_KEEP_DAYS * 86400.0,))
        return probes, rollups


# --- row mapping ----------------------------------------------------------------------------

_P_COLS = "service, at, outcome, latency_ms, http_status, error, detail, passive"
_T_COLS = "id, service, from_state, to_state, at, reason, evidence"
_H_COLS = (
    "service, state, since, reason, fail_streak, ok_streak, slow_streak, window, last_checked,"
    " last_outcome, first_bad_at, cause"
)
_S_COLS = (
    "id, platform, workspace, channel, services, min_state, digest_time, digest_tz,"
    " last_digest_on, created_by"
)
# A workspace's spend: settled jobs count their cost, unsettled ones what they hold.
_SPENT = "COALESCE(SUM(COALESCE(cost, reserved)), 0)"
_WORKSPACE_DAY = "platform = ? AND workspace = ? AND day = ?"
_J_COLS = (
    "id, platform, workspace, channel, user, day, prompt_hash, preview, model, seconds, size,"
    " prefer, status, progress, service, upstream_id, attempts, notes, reserved, estimate, cost,"
    " error, progress_ref, result_ref, created_at, updated_at, finished_at"
)
_M_COLS = "id, service, starts_at, ends_at, reason, source, external_id"
_R_COLS = (
    "service, hour, count, successes, failures, outcomes, latency_count, latency_sum,"
    " latency_p50, latency_p95"
)


def _job(r: tuple[Any, ...]) -> Job:
    values: list[Any] = [*r[:16], tuple(json.loads(r[16])), tuple(json.loads(r[17])),
                         *r[18:24], _dt(r[24]), _dt(r[25]), _opt_dt(r[26])]
    return Job(*values)


def _where(*, service: str | None, since: datetime | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if service is not None:
        clauses.append("service = ?")
        params.append(service)
    if since is not None:
        clauses.append("at >= ?")
        params.append(_ts(since))
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _probe(r: tuple[Any, ...]) -> ProbeResult:
    return ProbeResult(
        service=r[0], at=_dt(r[1]), outcome=Outcome(r[2]), latency_ms=r[3], http_status=r[4],
        error=r[5], detail=r[6], passive=bool(r[7]),
    )


def _transition(r: tuple[Any, ...]) -> Transition:
    return Transition(
        id=r[0], service=r[1], from_state=State(r[2]), to_state=State(r[3]), at=_dt(r[4]),
        reason=r[5], evidence=json.loads(r[6]),
    )


def _health(r: tuple[Any, ...]) -> Health:
    return Health(
        service=r[0], state=State(r[1]), since=_opt_dt(r[2]), reason=r[3],
        fail_streak=tuple(str(o) for o in json.loads(r[4])), ok_streak=r[5], slow_streak=r[6],
        window=tuple(bool(b) for b in json.loads(r[7])), last_checked=_opt_dt(r[8]),
        last_outcome=None if r[9] is None else Outcome(r[9]), first_bad_at=_opt_dt(r[10]),
        cause=None if r[11] is None else Outcome(r[11]),
    )


def _subscription(r: tuple[Any, ...]) -> Subscription:
    return Subscription(
        id=r[0], platform=r[1], workspace=r[2], channel=r[3], services=tuple(json.loads(r[4])),
        min_state=State(r[5]), digest_time=r[6], digest_tz=r[7],
        last_digest_on=None if r[8] is None else date.fromisoformat(r[8]), created_by=r[9],
    )


def _window(r: tuple[Any, ...]) -> MaintenanceWindow:
    return MaintenanceWindow(
        id=r[0], service=r[1], starts_at=_dt(r[2]), ends_at=_opt_dt(r[3]), reason=r[4],
        source=r[5], external_id=r[6],
    )


def _aggregate(rows: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """One hour of (service, at, outcome, latency_ms, passive) rows → rollup columns."""
    outcomes: dict[str, int] = {}
    latencies: list[float] = []
    for _, _, outcome, latency_ms, passive in rows:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome in _SUCCESS and not passive and latency_ms is not None:
            latencies.append(latency_ms)
    successes = sum(n for o, n in outcomes.items() if o in _SUCCESS)
    failures = sum(n for o, n in outcomes.items() if Outcome(o).is_failure)
    latencies.sort()
    p50 = _percentile(latencies, 50) if latencies else None
    p95 = _percentile(latencies, 95) if latencies else None
    return (len(rows), successes, failures, _dumps(dict(sorted(outcomes.items()))),
            len(latencies), sum(latencies), p50, p95)


# --- uptime arithmetic (pure) ---------------------------------------------------------------

Piece = tuple[float, float, bool]  # (start, end, up) of countable time


def _countable(
    timeline: list[tuple[float, str]], busy: list[tuple[float, float]], start: float, end: float
) -> list[Piece]:
    """Countable pieces of [start, end] from the step function ``timeline`` (unknown before its
    first point): known, non-maintenance states, minus the merged ``busy`` intervals."""
    pieces: list[Piece] = []
    j, n = 0, len(timeline)
    for i, (at, state) in enumerate(timeline):
        if state in _NOT_COUNTED:
            continue
        s = max(at, start)
        e = min(timeline[i + 1][0], end) if i + 1 < n else end
        up = state in _UP
        while j < len(busy) and busy[j][1] <= s:
            j += 1
        k = j
        while s < e:
            if k < len(busy) and busy[k][0] < e:
                if busy[k][0] > s:
                    pieces.append((s, busy[k][0], up))
                s = max(s, busy[k][1])
                k += 1
            else:
                pieces.append((s, e, up))
                break
    return pieces


def _uptime_spans(pieces: list[Piece], end: float, spans: list[float]) -> list[float | None]:
    """Uptime % over (end - span, end] for each span, in one backward pass over ``pieces``."""
    results: dict[float, float | None] = {}
    up = counted = 0.0
    i = len(pieces) - 1
    for span in sorted(spans):
        start = end - span
        while i >= 0 and pieces[i][0] >= start:
            s, e, is_up = pieces[i]
            counted += e - s
            up += (e - s) * is_up
            i -= 1
        part = max(0.0, pieces[i][1] - start) if i >= 0 else 0.0
        part_up = part if i >= 0 and pieces[i][2] else 0.0
        total = counted + part
        results[span] = 100.0 * (up + part_up) / total if total > 0 else None
    return [results[span] for span in spans]
