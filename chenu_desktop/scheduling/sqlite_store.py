"""Schedules in the SQLite file of the embedded backend."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from ..ledger.sqlite_ledger import ThreadConnections, write_transaction
from .store import ScheduleEvent, ScheduleRecord, ScheduleStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chenu_schedule (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chenu_schedule_fire (
    name TEXT NOT NULL,
    fire_at REAL NOT NULL,
    PRIMARY KEY (name, fire_at)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chenu_schedule_event (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chenu_schedule_event_name ON chenu_schedule_event (name, id);
CREATE TABLE IF NOT EXISTS chenu_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""

#: History entries kept per schedule.
HISTORY_LIMIT = 1000


class SqliteScheduleStore(ScheduleStore):
    """Schedules in SQLite; fire claims are unique rows, the lease a meta row."""

    def __init__(self, path: Path | str, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._connections = ThreadConnections(self.path, busy_timeout)
        self._connection().executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        return self._connections.get()

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return write_transaction(self._connection())

    def _bump_version(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO chenu_meta (key, value) VALUES ('schedule_version', '1') "
            "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )

    def add(self, record: ScheduleRecord) -> bool:
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO chenu_schedule (name, data) VALUES (?, ?)",
                    (record.name, record.to_json()),
                )
                self._bump_version(conn)
        except sqlite3.IntegrityError:
            return False
        return True

    def get(self, name: str) -> ScheduleRecord | None:
        row = (
            self._connection()
            .execute("SELECT data FROM chenu_schedule WHERE name = ?", (name,))
            .fetchone()
        )
        return None if row is None else ScheduleRecord.from_json(row[0])

    def list(self) -> list[ScheduleRecord]:
        rows = self._connection().execute(
            "SELECT data FROM chenu_schedule ORDER BY name"
        )
        return [ScheduleRecord.from_json(row[0]) for row in rows]

    def put(self, record: ScheduleRecord) -> bool:
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE chenu_schedule SET data = ? WHERE name = ?",
                (record.to_json(), record.name),
            )
            if cursor.rowcount:
                self._bump_version(conn)
        return cursor.rowcount == 1

    def remove(self, name: str) -> bool:
        with self._write() as conn:
            cursor = conn.execute("DELETE FROM chenu_schedule WHERE name = ?", (name,))
            conn.execute("DELETE FROM chenu_schedule_event WHERE name = ?", (name,))
            conn.execute("DELETE FROM chenu_schedule_fire WHERE name = ?", (name,))
            if cursor.rowcount:
                self._bump_version(conn)
        return cursor.rowcount == 1

    def claim_fire(self, name: str, fire_at: float) -> bool:
        cursor = self._connection().execute(
            "INSERT OR IGNORE INTO chenu_schedule_fire (name, fire_at) VALUES (?, ?)",
            (name, fire_at),
        )
        return cursor.rowcount == 1

    def add_event(self, event: ScheduleEvent) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO chenu_schedule_event (name, data) VALUES (?, ?)",
                (event.schedule, event.to_json()),
            )
            conn.execute(
                "DELETE FROM chenu_schedule_event WHERE name = ? AND id <= "
                "(SELECT id FROM chenu_schedule_event WHERE name = ? "
                "ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (event.schedule, event.schedule, HISTORY_LIMIT),
            )

    def history(self, name: str, limit: int = 100) -> list[ScheduleEvent]:
        rows = self._connection().execute(
            "SELECT data FROM chenu_schedule_event WHERE name = ? ORDER BY id DESC LIMIT ?",
            (name, limit),
        )
        return [ScheduleEvent.from_json(row[0]) for row in rows]

    def acquire_lease(self, holder: str, ttl: float, now: float) -> bool:
        with self._write() as conn:
            row = conn.execute(
                "SELECT value FROM chenu_meta WHERE key = 'scheduler_lease'"
            ).fetchone()
            current_holder, expires = (None, 0.0)
            if row is not None:
                current_holder, _, expires_text = row[0].rpartition("|")
                expires = float(expires_text)
            if row is None or current_holder == holder or expires <= now:
                conn.execute(
                    "INSERT INTO chenu_meta (key, value) VALUES ('scheduler_lease', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (f"{holder}|{now + ttl}",),
                )
                return True
        return False

    def release_lease(self, holder: str) -> None:
        with self._write() as conn:
            row = conn.execute(
                "SELECT value FROM chenu_meta WHERE key = 'scheduler_lease'"
            ).fetchone()
            if row is not None and row[0].rpartition("|")[0] == holder:
                conn.execute("DELETE FROM chenu_meta WHERE key = 'scheduler_lease'")

    def version(self) -> int:
        row = (
            self._connection()
            .execute("SELECT value FROM chenu_meta WHERE key = 'schedule_version'")
            .fetchone()
        )
        return 0 if row is None else int(row[0])

    def mark_seeded(self, key: str) -> bool:
        cursor = self._connection().execute(
            "INSERT OR IGNORE INTO chenu_meta (key, value) VALUES (?, '1')",
            (f"seeded:{key}",),
        )
        return cursor.rowcount == 1

    def close(self) -> None:
        self._connections.close()
