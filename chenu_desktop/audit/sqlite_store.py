"""The audit trail as a table in the SQLite file of the embedded backend."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from ..ledger.sqlite_ledger import ThreadConnections
from .store import AuditEntry, AuditFilter, AuditStore

# The triggers reject UPDATE and DELETE from any connection, this package's
# record cleanup included. They do not stop DROP TABLE or DROP TRIGGER: the
# table is append-only against mistakes, not against a writer who owns the file.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS chenu_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    operator TEXT NOT NULL,
    action TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    reason TEXT,
    details TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chenu_audit_action ON chenu_audit (action, id);
CREATE INDEX IF NOT EXISTS chenu_audit_target ON chenu_audit (target, id);
CREATE INDEX IF NOT EXISTS chenu_audit_operator ON chenu_audit (operator, id);
CREATE INDEX IF NOT EXISTS chenu_audit_at ON chenu_audit (at);
CREATE TRIGGER IF NOT EXISTS chenu_audit_no_update BEFORE UPDATE ON chenu_audit
BEGIN
    SELECT RAISE(ABORT, 'chenu_audit is append-only: entries cannot be changed');
END;
CREATE TRIGGER IF NOT EXISTS chenu_audit_no_delete BEFORE DELETE ON chenu_audit
BEGIN
    SELECT RAISE(ABORT, 'chenu_audit is append-only: entries cannot be deleted');
END;
"""

_COLUMNS = "id, at, operator, action, target_kind, target, reason, details"


def _where(entry_filter: AuditFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    values: list[Any] = []
    for column in ("action", "target", "operator"):
        value = getattr(entry_filter, column)
        if value is not None:
            clauses.append(f"{column} = ?")
            values.append(value)
    if entry_filter.since is not None:
        clauses.append("at >= ?")
        values.append(entry_filter.since)
    if not clauses:
        return "", values
    return " WHERE " + " AND ".join(clauses), values


def _entry(row: tuple[Any, ...]) -> AuditEntry:
    entry_id, at, operator, action, target_kind, target, reason, details = row
    return AuditEntry(
        entry_id=entry_id,
        at=at,
        operator=operator,
        action=action,
        target_kind=target_kind,
        target=target,
        reason=reason,
        details=json.loads(details),
    )


class SqliteAuditStore(AuditStore):
    """Audit entries as rows of ``chenu_audit``, one connection per thread."""

    def __init__(self, path: Path | str, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._connections = ThreadConnections(self.path, busy_timeout)
        self._connection().executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        return self._connections.get()

    def append(self, entry: AuditEntry) -> AuditEntry:
        cursor = self._connection().execute(
            "INSERT INTO chenu_audit (at, operator, action, target_kind, target, "
            "reason, details) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                entry.at,
                entry.operator,
                entry.action,
                entry.target_kind,
                entry.target,
                entry.reason,
                json.dumps(entry.details, ensure_ascii=False),
            ),
        )
        assert cursor.lastrowid is not None
        return AuditEntry(**{**entry.to_dict(), "entry_id": cursor.lastrowid})

    def list_entries(
        self, entry_filter: AuditFilter, limit: int, offset: int = 0
    ) -> list[AuditEntry]:
        where, values = _where(entry_filter)
        rows = self._connection().execute(
            f"SELECT {_COLUMNS} FROM chenu_audit{where} "
            "ORDER BY id DESC LIMIT ? OFFSET ?",
            (*values, limit, offset),
        )
        return [_entry(row) for row in rows]

    def count_entries(self, entry_filter: AuditFilter) -> int:
        where, values = _where(entry_filter)
        row = (
            self._connection()
            .execute(f"SELECT COUNT(*) FROM chenu_audit{where}", values)
            .fetchone()
        )
        return int(row[0])

    def last_id(self) -> int:
        row = self._connection().execute("SELECT MAX(id) FROM chenu_audit").fetchone()
        return int(row[0] or 0)

    def close(self) -> None:
        self._connections.close()
