"""The SQLite ledger: the embedded default, in the same file as the Huey queues."""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Iterator, Sequence

from ..models import (
    Change,
    ChangeBatch,
    TaskFilter,
    TaskQueue,
    TaskRecord,
    TaskSort,
    TaskStatus,
    WorkerInfo,
    FINAL_STATUSES,
)
from .base import (
    DURATION_BUCKETS,
    RECORD_FIELDS,
    STATS_RETENTION_MINUTES,
    Ledger,
    RecentStats,
    Update,
    check_sort,
    claim_update,
    duration_bucket,
    encode_json,
    percentile_from_histogram,
)

logger = logging.getLogger("chenu.ledger")

#: Fields stored as JSON text; the others are plain SQLite values.
_JSON_FIELDS = frozenset({"args", "kwargs", "result", "history"})
_BOOL_FIELDS = frozenset({"requires_governance", "requeue_on_loss", "cancel_requested"})
_FINAL_SQL = ", ".join(f"'{status.value}'" for status in FINAL_STATUSES)

#: The SQL expression each sort key orders by, before ``created_at, task_id``.
SORT_EXPRESSIONS = {
    TaskSort.CREATED: None,
    TaskSort.STARTED: "started_at",
    # The index below is on this very text: the planner uses an expression
    # index only for an ORDER BY term written the same way.
    TaskSort.DURATION: "(finished_at - started_at)",
    TaskSort.ATTEMPTS: "attempts",
    TaskSort.PRIORITY: "priority",
    TaskSort.TASK_NAME: "task_name",
    TaskSort.QUEUE: "queue",
    TaskSort.STATUS: "status",
}


#: Records of one status up to which a sorted page with that status filter
#: reads them through the status index and sorts them, rather than walking
#: the sort key's index past the rows of other statuses.
SMALL_STATUS_SET = 10_000

#: Newest records a text-filtered page reads in order before it collects every
#: match through the indexes; see `SqliteLedger._text_scan`.
TEXT_SCAN_ROWS = 20_000


def _sort_indexes() -> str:
    """Return one index per sort key that the base indexes do not serve.

    Each index costs every insert, and every claim or finish that changes
    its column. Status-first indexes per key change on every transition: they
    cut the drain rate by a third (`chenu-desktop bench --sections drain` on
    SQLite, 2-core machine: about 1,040 tasks/s without them, 670/s with
    them). So there are none, and `list_query` picks between the key's index
    and a sort of the status's records by the size of the status.
    """
    statements = []
    # task_name, queue and status orders have base indexes already.
    served = {"task_name", "queue", "status"}
    for key, expression in SORT_EXPRESSIONS.items():
        if expression is None or expression in served:
            continue
        statements.append(
            f"CREATE INDEX IF NOT EXISTS chenu_task_by_{key.value} ON chenu_task "
            f"({expression}, created_at, task_id);"
        )
    return "\n".join(statements)


_SORT_INDEXES = _sort_indexes()

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS chenu_task (
    id INTEGER PRIMARY KEY,
    task_id TEXT NOT NULL UNIQUE,
    task_name TEXT NOT NULL,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL,
    status TEXT NOT NULL,
    args TEXT NOT NULL,
    kwargs TEXT NOT NULL,
    result TEXT,
    error TEXT,
    traceback TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_retries INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    eta REAL,
    expires_at REAL,
    started_at REAL,
    finished_at REAL,
    next_attempt_at REAL,
    worker TEXT,
    retry_of TEXT,
    retried_as TEXT,
    requires_governance INTEGER NOT NULL DEFAULT 0,
    requeue_on_loss INTEGER NOT NULL DEFAULT 0,
    approved_by TEXT,
    approved_at REAL,
    approval_reason TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    progress REAL,
    progress_message TEXT,
    updated_at REAL NOT NULL,
    history TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS chenu_task_created ON chenu_task (created_at, task_id);
CREATE INDEX IF NOT EXISTS chenu_task_status
    ON chenu_task (status, created_at, task_id);
CREATE INDEX IF NOT EXISTS chenu_task_queue
    ON chenu_task (queue, created_at, task_id);
CREATE INDEX IF NOT EXISTS chenu_task_queue_status
    ON chenu_task (queue, status, created_at, task_id);
CREATE INDEX IF NOT EXISTS chenu_task_name
    ON chenu_task (task_name, created_at, task_id);
CREATE INDEX IF NOT EXISTS chenu_task_name_status
    ON chenu_task (task_name, status, created_at, task_id);
CREATE INDEX IF NOT EXISTS chenu_task_finished
    ON chenu_task (finished_at) WHERE status IN ({_FINAL_SQL});
{_SORT_INDEXES}

CREATE TABLE IF NOT EXISTS chenu_counter (
    queue TEXT NOT NULL,
    status TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (queue, status)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS chenu_task_names (name TEXT PRIMARY KEY) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS chenu_change (
    seq INTEGER PRIMARY KEY,
    task_id TEXT NOT NULL,
    queue TEXT NOT NULL,
    status TEXT NOT NULL,
    at REAL NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS chenu_minute (
    queue TEXT NOT NULL,
    minute INTEGER NOT NULL,
    succeeded INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    duration_sum REAL NOT NULL DEFAULT 0,
    duration_count INTEGER NOT NULL DEFAULT 0,
    histogram TEXT NOT NULL,
    PRIMARY KEY (queue, minute)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS chenu_worker (
    worker_id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS chenu_paused (queue TEXT PRIMARY KEY) WITHOUT ROWID;

CREATE VIRTUAL TABLE IF NOT EXISTS chenu_error_fts USING fts5 (
    error, content='chenu_task', content_rowid='id', tokenize='trigram'
);

CREATE TRIGGER IF NOT EXISTS chenu_task_inserted AFTER INSERT ON chenu_task BEGIN
    INSERT INTO chenu_counter (queue, status, n) VALUES (NEW.queue, NEW.status, 1)
        ON CONFLICT (queue, status) DO UPDATE SET n = n + 1;
    INSERT OR IGNORE INTO chenu_task_names (name) VALUES (NEW.task_name);
    INSERT INTO chenu_change (task_id, queue, status, at)
        VALUES (NEW.task_id, NEW.queue, NEW.status, NEW.updated_at);
    INSERT INTO chenu_error_fts (rowid, error)
        SELECT NEW.id, NEW.error WHERE NEW.error IS NOT NULL;
END;

CREATE TRIGGER IF NOT EXISTS chenu_task_status_changed
AFTER UPDATE OF status ON chenu_task WHEN OLD.status <> NEW.status BEGIN
    UPDATE chenu_counter SET n = n - 1
        WHERE queue = OLD.queue AND status = OLD.status;
    INSERT INTO chenu_counter (queue, status, n) VALUES (NEW.queue, NEW.status, 1)
        ON CONFLICT (queue, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER IF NOT EXISTS chenu_task_updated AFTER UPDATE ON chenu_task BEGIN
    INSERT INTO chenu_change (task_id, queue, status, at)
        VALUES (NEW.task_id, NEW.queue, NEW.status, NEW.updated_at);
END;

CREATE TRIGGER IF NOT EXISTS chenu_task_error_changed
AFTER UPDATE OF error ON chenu_task WHEN OLD.error IS NOT NEW.error BEGIN
    INSERT INTO chenu_error_fts (chenu_error_fts, rowid, error)
        SELECT 'delete', OLD.id, OLD.error WHERE OLD.error IS NOT NULL;
    INSERT INTO chenu_error_fts (rowid, error)
        SELECT NEW.id, NEW.error WHERE NEW.error IS NOT NULL;
END;

CREATE TRIGGER IF NOT EXISTS chenu_task_deleted AFTER DELETE ON chenu_task BEGIN
    UPDATE chenu_counter SET n = n - 1
        WHERE queue = OLD.queue AND status = OLD.status;
    INSERT INTO chenu_change (task_id, queue, status, at, deleted)
        VALUES (OLD.task_id, OLD.queue, OLD.status,
                (julianday('now') - 2440587.5) * 86400.0, 1);
    INSERT INTO chenu_error_fts (chenu_error_fts, rowid, error)
        SELECT 'delete', OLD.id, OLD.error WHERE OLD.error IS NOT NULL;
END;
"""

_COLUMNS = ", ".join(RECORD_FIELDS)
_FINISHED = frozenset({TaskStatus.SUCCESS, TaskStatus.FAILURE})
#: Changes to insert between two trims of the change feed.
_TRIM_EVERY = 1000


#: The columns `write` reads back: those of the per-minute figures.
_FIGURE_COLUMNS = "queue, status, started_at, finished_at"


def _to_column(name: str, value: Any) -> Any:
    if name in _JSON_FIELDS:
        return None if value is None and name == "result" else encode_json(value)
    if name in _BOOL_FIELDS:
        return 1 if value else 0
    if isinstance(value, (TaskQueue, TaskStatus)):
        return value.value
    return value


def _to_record(row: sqlite3.Row) -> TaskRecord:
    values = {name: row[name] for name in RECORD_FIELDS}
    for name in _JSON_FIELDS:
        raw = values[name]
        values[name] = None if raw is None else json.loads(raw)
    for name in _BOOL_FIELDS:
        values[name] = bool(values[name])
    values["queue"] = TaskQueue(values["queue"])
    values["status"] = TaskStatus(values["status"])
    return TaskRecord(**values)


#: Page size of a new SQLite file, in bytes. A claim or a finish changes rows
#: in about a dozen tables and indexes, and WAL mode writes every changed page
#: whole at each commit. Smaller pages make those commits cheaper: on a 2-core
#: machine, 2 workers drained 2,900 tasks/s with 2048 against 2,000/s with
#: SQLite's default of 4096 (`chenu-desktop bench --sections drain`). An
#: existing file keeps the page size it was created with.
PAGE_SIZE = 2048


def use_wal(conn: sqlite3.Connection) -> None:
    """Switch a connection to WAL with ``synchronous=NORMAL``.

    On a file that is still empty it first sets `PAGE_SIZE`, which SQLite
    can no longer change once the file is in WAL mode.
    """
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL with WAL cannot corrupt the file; a power cut may lose the
    # last commits, which a worker's claim makes visible as a lost task.
    conn.execute("PRAGMA synchronous=NORMAL")


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the block in a ``BEGIN IMMEDIATE`` transaction, rolled back if it raises.

    A transaction left open would hold the file's write lock, so every other
    connection would wait for it until its busy timeout.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


class ThreadConnections:
    """One WAL connection per thread to a SQLite file, all closed together.

    The stores that share the ledger's file use it: a connection is never
    used by two threads at once, and `close` ends those of every thread.
    """

    def __init__(self, path: Path, busy_timeout: float) -> None:
        self._path = path
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite3.Connection:
        """Return this thread's connection, opening it on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self._path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            use_wal(conn)
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()


def _fts_phrase(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


class SqliteLedger(Ledger):
    """A ledger in a SQLite file, safe to share between threads and processes.

    Each thread gets its own connection. Writes run in ``BEGIN IMMEDIATE``
    transactions; triggers keep the counters, the task-name list, the error
    search index and the change feed in step with the records.
    """

    backend_name = "sqlite"

    def __init__(
        self,
        path: Path | str,
        change_retention: int = 100_000,
        busy_timeout: float = 30.0,
    ) -> None:
        if change_retention < 1:
            # `trim` must keep the newest change: see `last_seq`.
            raise ValueError(
                f"change_retention must be at least 1, not {change_retention}"
            )
        self.path = Path(path)
        self.change_retention = change_retention
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._closed = False
        self._changes_since_trim = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # executescript commits on its own, so it runs outside `_write`.
        self._connection().executescript(_SCHEMA)

    # --- connections -----------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise RuntimeError("the ledger is closed")
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.row_factory = sqlite3.Row
        use_wal(conn)
        conn.execute("PRAGMA foreign_keys=OFF")
        self._local.conn = conn
        with self._connections_lock:
            self._connections.append(conn)
        return conn

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return write_transaction(self._connection())

    def close(self) -> None:
        self._closed = True
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    # --- records ---------------------------------------------------------

    def insert(self, record: TaskRecord) -> None:
        values = [_to_column(name, getattr(record, name)) for name in RECORD_FIELDS]
        placeholders = ", ".join("?" for _ in RECORD_FIELDS)
        try:
            with self._write() as conn:
                conn.execute(
                    f"INSERT INTO chenu_task ({_COLUMNS}) VALUES ({placeholders})",
                    values,
                )
        except sqlite3.IntegrityError:
            raise ValueError(
                f"task id {record.task_id!r} exists already: submit with another id"
            ) from None
        self._note_changes(1)

    def insert_many(self, records: Sequence[TaskRecord]) -> None:
        """Store several new records in one transaction; see `insert`."""
        placeholders = ", ".join("?" for _ in RECORD_FIELDS)
        rows = [
            [_to_column(name, getattr(record, name)) for name in RECORD_FIELDS]
            for record in records
        ]
        try:
            with self._write() as conn:
                conn.executemany(
                    f"INSERT INTO chenu_task ({_COLUMNS}) VALUES ({placeholders})",
                    rows,
                )
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"a task id exists already: {exc}") from None
        self._note_changes(len(rows))

    def get(self, task_id: str) -> TaskRecord | None:
        row = (
            self._connection()
            .execute(f"SELECT {_COLUMNS} FROM chenu_task WHERE task_id = ?", (task_id,))
            .fetchone()
        )
        return None if row is None else _to_record(row)

    def apply(self, updates: Sequence[Update], now: float) -> list[TaskRecord | None]:
        rows = self._apply_rows(updates, now, _COLUMNS)
        return [None if row is None else _to_record(row) for row in rows]

    def write(self, updates: Sequence[Update], now: float) -> None:
        self._apply_rows(updates, now, _FIGURE_COLUMNS)

    def take(
        self,
        queue_name: str,
        worker_id: str,
        now: float,
        task_id_of: Callable[[bytes], str | None],
    ) -> tuple[bytes, TaskRecord | None] | None:
        """Pop the first message of a Huey queue and claim its task, in one transaction.

        The queue is Huey's ``task`` table in this file (the layout of huey
        3.5's SqliteStorage), and `queue_name` its queue column. `task_id_of`
        reads the task id from a message. Returns None if the queue is empty,
        else the message and the claimed record. The record is None when the
        message names no task or the claim does not apply.
        """
        conn = self._connection()
        # A read first, so that idle workers polling take no write lock.
        if (
            conn.execute(
                "SELECT 1 FROM task WHERE queue = ? LIMIT 1", (queue_name,)
            ).fetchone()
            is None
        ):
            return None
        applied = False
        with self._write() as conn:
            row = conn.execute(
                "SELECT id, data FROM task WHERE queue = ? "
                "ORDER BY priority DESC, id LIMIT 1",
                (queue_name,),
            ).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM task WHERE id = ?", (row[0],))
            data = bytes(row[1])
            task_id = task_id_of(data)
            claimed = None
            if task_id is not None:
                claimed, _ = self._apply_one(
                    conn, claim_update(task_id, worker_id, now), now, _COLUMNS
                )
                applied = claimed is not None
        self._note_changes(int(applied))
        return data, None if claimed is None else _to_record(claimed)

    def _apply_rows(
        self, updates: Sequence[Update], now: float, returning: str
    ) -> list[sqlite3.Row | None]:
        """Apply updates in one transaction; return the `returning` columns of each."""
        results: list[sqlite3.Row | None] = []
        finished: dict[tuple[str, int], list[tuple[TaskStatus, float]]] = {}
        with self._write() as conn:
            for update in updates:
                row, ended_run = self._apply_one(conn, update, now, returning)
                results.append(row)
                if row is None or not ended_run:
                    continue
                started, ended = row["started_at"], row["finished_at"]
                if started is None or ended is None:
                    continue
                minute = int(ended // 60)
                duration = max(0.0, ended - started)
                finished.setdefault((row["queue"], minute), []).append(
                    (TaskStatus(row["status"]), duration)
                )
            self._add_minute_figures(conn, finished)
        self._note_changes(sum(1 for r in results if r is not None))
        return results

    def _apply_one(
        self, conn: sqlite3.Connection, update: Update, now: float, returning: str
    ) -> tuple[sqlite3.Row | None, bool]:
        """Apply one update; also return whether it ended a run (RUNNING to done)."""
        row = conn.execute(
            "SELECT status, cancel_requested, history FROM chenu_task WHERE task_id = ?",
            (update.task_id,),
        ).fetchone()
        if row is None:
            return None, False
        status = TaskStatus(row["status"])
        if update.expected is not None and status not in update.expected:
            return None, False
        if update.require_no_cancel and row["cancel_requested"]:
            return None, False
        assignments = ["updated_at = ?"]
        params: list[Any] = [now]
        if update.status is not None:
            assignments.append("status = ?")
            params.append(update.status.value)
        if update.status is not None and update.status is not status:
            history = json.loads(row["history"])
            history.append([update.status.value, now])
            assignments.append("history = ?")
            params.append(encode_json(history))
        for name, value in update.fields.items():
            assignments.append(f"{name} = ?")
            params.append(_to_column(name, value))
        if update.increment_attempts:
            assignments.append("attempts = attempts + 1")
        params.append(update.task_id)
        updated = conn.execute(
            f"UPDATE chenu_task SET {', '.join(assignments)} WHERE task_id = ? "
            f"RETURNING {returning}",
            params,
        ).fetchone()
        ended_run = status is TaskStatus.RUNNING and update.status in _FINISHED
        return updated, ended_run

    def _add_minute_figures(
        self,
        conn: sqlite3.Connection,
        finished: dict[tuple[str, int], list[tuple[TaskStatus, float]]],
    ) -> None:
        for (queue, minute), outcomes in finished.items():
            row = conn.execute(
                "SELECT histogram FROM chenu_minute WHERE queue = ? AND minute = ?",
                (queue, minute),
            ).fetchone()
            histogram = (
                json.loads(row["histogram"])
                if row is not None
                else [0] * (len(DURATION_BUCKETS) + 1)
            )
            succeeded = failed = 0
            total = 0.0
            for status, duration in outcomes:
                histogram[duration_bucket(duration)] += 1
                total += duration
                if status is TaskStatus.SUCCESS:
                    succeeded += 1
                else:
                    failed += 1
            conn.execute(
                "INSERT INTO chenu_minute (queue, minute, succeeded, failed, "
                "duration_sum, duration_count, histogram) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (queue, minute) DO UPDATE SET "
                "succeeded = succeeded + excluded.succeeded, "
                "failed = failed + excluded.failed, "
                "duration_sum = duration_sum + excluded.duration_sum, "
                "duration_count = duration_count + excluded.duration_count, "
                "histogram = excluded.histogram",
                (
                    queue,
                    minute,
                    succeeded,
                    failed,
                    total,
                    len(outcomes),
                    json.dumps(histogram),
                ),
            )

    # --- listing ---------------------------------------------------------

    def _where(
        self,
        task_filter: TaskFilter,
        queue_index: bool = True,
        status_index: bool = True,
        text_by_row: bool = False,
    ) -> tuple[str, list[Any]]:
        """Return the WHERE clause of a filter and its parameters.

        Without `queue_index` or `status_index`, that test is written
        ``+queue`` or ``+status`` so that the planner cannot pick its index.
        With `text_by_row`, the text is tested on each row (see `_text_scan`).
        """
        clauses: list[str] = []
        params: list[Any] = []
        if task_filter.status is not None:
            clauses.append("status = ?" if status_index else "+status = ?")
            params.append(TaskStatus(task_filter.status).value)
        if task_filter.queue is not None:
            clauses.append("queue = ?" if queue_index else "+queue = ?")
            params.append(TaskQueue(task_filter.queue).value)
        if task_filter.task_name is not None:
            clauses.append("task_name = ?")
            params.append(task_filter.task_name)
        if task_filter.created_after is not None:
            clauses.append("created_at >= ?")
            params.append(task_filter.created_after)
        if task_filter.created_before is not None:
            clauses.append("created_at <= ?")
            params.append(task_filter.created_before)
        if task_filter.text:
            text_clause, text_params = self._text_clause(task_filter.text, text_by_row)
            clauses.append(text_clause)
            params.extend(text_params)
        where = " AND ".join(clauses) if clauses else "1"
        return where, params

    def _text_clause(self, text: str, by_row: bool = False) -> tuple[str, list[Any]]:
        """Match an id prefix, a name substring or an error substring.

        The full-text index finds the errors, unless `by_row`: then LIKE tests
        each row's error, which matches the same rows for ASCII text.
        """
        options = ["(task_id >= ? AND task_id < ?)"]
        params: list[Any] = [text, text + "\U0010ffff"]
        needle = text.casefold()
        names = [
            row["name"]
            for row in self._connection().execute("SELECT name FROM chenu_task_names")
            if needle in row["name"].casefold()
        ]
        if names:
            options.append(f"task_name IN ({', '.join('?' for _ in names)})")
            params.extend(names)
        if len(text) >= 3 and by_row:
            options.append("error LIKE ? ESCAPE '\\'")
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params.append(f"%{escaped}%")
        elif len(text) >= 3:
            options.append(
                "id IN (SELECT rowid FROM chenu_error_fts WHERE chenu_error_fts MATCH ?)"
            )
            params.append(_fts_phrase(text))
        return "(" + " OR ".join(options) + ")", params

    def _text_scan(
        self, task_filter: TaskFilter, limit: int, offset: int, ascending: bool
    ) -> list[TaskRecord] | None:
        """Return a text-filtered page from the newest records, or None.

        Collecting every match of a common text and sorting them takes a
        while (about 230 ms for 100,000 matches in the bench), so the newest
        TEXT_SCAN_ROWS records are read in order first, testing each. If
        they contain the whole page, or are all there is, no other record can
        belong to it. Otherwise the caller gets None and collects the matches.
        LIKE folds the case of ASCII letters only, so other text always takes
        the full-text index.
        """
        if not task_filter.text.isascii():
            return None
        first = max(1, TEXT_SCAN_ROWS // 10)
        rows, complete = self._scan_newest(task_filter, limit, offset, ascending, first)
        if len(rows) == limit or complete:
            return [_to_record(row) for row in rows]
        # A rare text (an id prefix, say) would read the whole window in vain:
        # go on only if the first rows' matches promise a page within it.
        found = offset + len(rows) if rows else 0
        if found == 0 or first * (offset + limit) > found * TEXT_SCAN_ROWS:
            return None
        rows, complete = self._scan_newest(
            task_filter, limit, offset, ascending, TEXT_SCAN_ROWS
        )
        if len(rows) == limit or complete:
            return [_to_record(row) for row in rows]
        return None

    def _scan_newest(
        self,
        task_filter: TaskFilter,
        limit: int,
        offset: int,
        ascending: bool,
        window: int,
    ) -> tuple[list[sqlite3.Row], bool]:
        """Return a page of matches among the newest `window` records (oldest
        with `ascending`), and whether those were all the records."""
        conn = self._connection()
        direction = "ASC" if ascending else "DESC"
        order = f"ORDER BY created_at {direction}, task_id {direction}"
        edge = conn.execute(
            f"SELECT created_at FROM chenu_task {order} LIMIT 1 OFFSET ?",
            (window - 1,),
        ).fetchone()
        where, params = self._where(task_filter, text_by_row=True)
        if edge is not None:
            # Ties at the edge may add a few rows, never leave one out.
            where += " AND created_at <= ?" if ascending else " AND created_at >= ?"
            params.append(edge[0])
        # The creation index gives the order, so the scan stops at the page's end.
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM chenu_task INDEXED BY chenu_task_created "
            f"WHERE {where} {order} LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        return rows, edge is None

    def list_tasks(
        self,
        task_filter: TaskFilter,
        limit: int = 50,
        offset: int = 0,
        ascending: bool = False,
        sort: TaskSort = TaskSort.CREATED,
    ) -> list[TaskRecord]:
        if task_filter.text and check_sort(self, sort) is TaskSort.CREATED and limit:
            page = self._text_scan(task_filter, limit, offset, ascending)
            if page is not None:
                return page
        sql, params = self.list_query(task_filter, limit, offset, ascending, sort)
        rows = self._connection().execute(sql, params)
        return [_to_record(row) for row in rows]

    def task_ids(self, status: TaskStatus, limit: int) -> list[str]:
        rows = self._connection().execute(
            "SELECT task_id FROM chenu_task WHERE status = ? "
            "ORDER BY created_at DESC, task_id DESC LIMIT ?",
            (TaskStatus(status).value, max(0, limit)),
        )
        return [row[0] for row in rows]

    def list_query(
        self,
        task_filter: TaskFilter,
        limit: int,
        offset: int,
        ascending: bool = False,
        sort: TaskSort = TaskSort.CREATED,
    ) -> tuple[str, list[Any]]:
        """Return the SQL and parameters of `list_tasks`, for EXPLAIN QUERY PLAN."""
        expression = SORT_EXPRESSIONS[check_sort(self, sort)]
        # A queue index would make the planner sort every row of the queue,
        # where the key's own index reads only the page.
        scored = expression not in (None, "queue", "status")
        status_index = True
        order_expression = expression
        if expression not in (None, "status") and task_filter.status is not None:
            if self._status_size(task_filter.status) <= SMALL_STATUS_SET:
                # Few records: read them by status and sort them. The no-op
                # operator keeps the planner off the key's index for the order.
                no_op = "|| ''" if expression in ("task_name", "queue") else "+ 0"
                order_expression = f"({expression} {no_op})"
            else:
                # Many records: walk the key's index and skip other statuses.
                status_index = False
        where, params = self._where(
            task_filter, queue_index=not scored, status_index=status_index
        )
        direction = "ASC" if ascending else "DESC"
        terms = [f"created_at {direction}", f"task_id {direction}"]
        if order_expression is not None:
            terms.insert(0, f"{order_expression} {direction}")
        sql = (
            f"SELECT {_COLUMNS} FROM chenu_task WHERE {where} "
            f"ORDER BY {', '.join(terms)} LIMIT ? OFFSET ?"
        )
        return sql, [*params, limit, offset]

    def _status_size(self, status: TaskStatus) -> int:
        """Return the number of records in `status`, from the counters."""
        return self._count_from_counters(TaskFilter(status=TaskStatus(status)))

    def count_tasks(self, task_filter: TaskFilter) -> int:
        only_counters = (
            task_filter.task_name is None
            and task_filter.text is None
            and task_filter.created_after is None
            and task_filter.created_before is None
        )
        if only_counters:
            return self._count_from_counters(task_filter)
        where, params = self._where(task_filter)
        row = (
            self._connection()
            .execute(f"SELECT count(*) FROM chenu_task WHERE {where}", params)
            .fetchone()
        )
        return int(row[0])

    def _count_from_counters(self, task_filter: TaskFilter) -> int:
        total = 0
        for queue, by_status in self.status_counts().items():
            if task_filter.queue is not None and queue is not task_filter.queue:
                continue
            for status, n in by_status.items():
                if task_filter.status is None or status is task_filter.status:
                    total += n
        return total

    def delete_finished_before(self, cutoff: float, limit: int = 1000) -> list[str]:
        with self._write() as conn:
            rows = conn.execute(
                f"DELETE FROM chenu_task WHERE id IN (SELECT id FROM chenu_task "
                f"WHERE status IN ({_FINAL_SQL}) AND finished_at < ? "
                f"ORDER BY finished_at LIMIT ?) RETURNING task_id",
                (cutoff, limit),
            ).fetchall()
        self._note_changes(len(rows))
        return [row["task_id"] for row in rows]

    # --- counters and figures --------------------------------------------

    def status_counts(self) -> dict[TaskQueue, dict[TaskStatus, int]]:
        counts: dict[TaskQueue, dict[TaskStatus, int]] = {q: {} for q in TaskQueue}
        for row in self._connection().execute(
            "SELECT queue, status, n FROM chenu_counter WHERE n <> 0"
        ):
            counts[TaskQueue(row["queue"])][TaskStatus(row["status"])] = row["n"]
        return counts

    def oldest_created(self, queue: TaskQueue, status: TaskStatus) -> float | None:
        row = (
            self._connection()
            .execute(
                "SELECT min(created_at) FROM chenu_task WHERE queue = ? AND status = ?",
                (TaskQueue(queue).value, TaskStatus(status).value),
            )
            .fetchone()
        )
        return row[0]

    def recent_stats(
        self, queue: TaskQueue, now: float, minutes: int = 15
    ) -> RecentStats:
        current = int(now // 60)
        rows = self._connection().execute(
            "SELECT minute, succeeded, failed, duration_sum, duration_count, histogram "
            "FROM chenu_minute WHERE queue = ? AND minute > ? AND minute <= ?",
            (TaskQueue(queue).value, current - 60, current),
        )
        per_minute = [0] * minutes
        histogram = [0] * (len(DURATION_BUCKETS) + 1)
        succeeded = failed = count = 0
        total = 0.0
        for row in rows:
            succeeded += row["succeeded"]
            failed += row["failed"]
            total += row["duration_sum"]
            count += row["duration_count"]
            for index, n in enumerate(json.loads(row["histogram"])):
                histogram[index] += n
            age = current - row["minute"]
            if age < minutes:
                per_minute[minutes - 1 - age] = row["succeeded"] + row["failed"]
        return RecentStats(
            succeeded_last_hour=succeeded,
            failed_last_hour=failed,
            throughput_per_minute=per_minute,
            mean_duration=total / count if count else None,
            p95_duration=percentile_from_histogram(histogram, 0.95),
        )

    # --- change feed -----------------------------------------------------

    def changes(self, since: int, limit: int = 1000) -> ChangeBatch:
        conn = self._connection()
        rows = conn.execute(
            "SELECT seq, task_id, queue, status, at, deleted FROM chenu_change "
            "WHERE seq > ? ORDER BY seq LIMIT ?",
            (since, limit),
        ).fetchall()
        changes = [
            Change(
                seq=row["seq"],
                task_id=row["task_id"],
                queue=TaskQueue(row["queue"]),
                status=TaskStatus(row["status"]),
                at=row["at"],
                deleted=bool(row["deleted"]),
            )
            for row in rows
        ]
        oldest = conn.execute("SELECT min(seq) FROM chenu_change").fetchone()[0]
        last = changes[-1].seq if changes else self.last_seq()
        reset = oldest is not None and since < oldest - 1
        if oldest is None and since < last:
            reset = True
        # A number past the end means the feed was wiped or belongs elsewhere.
        if since > last:
            reset = True
        return ChangeBatch(changes=changes, last_seq=last, reset=reset)

    def last_seq(self) -> int:
        # The feed's numbers come from its rowid, not AUTOINCREMENT, which would
        # rewrite sqlite_sequence in every claim and finish (8% of the drain
        # rate in `chenu-desktop bench --sections drain`). A new change takes
        # max(seq) + 1, and `trim` always keeps the newest one, so no number
        # comes back while the feed has rows. A file made when the table had
        # AUTOINCREMENT keeps it, which changes nothing here.
        row = self._connection().execute("SELECT max(seq) FROM chenu_change").fetchone()
        return 0 if row[0] is None else int(row[0])

    def _note_changes(self, count: int) -> None:
        self._changes_since_trim += count
        if self._changes_since_trim < _TRIM_EVERY:
            return
        self._changes_since_trim = 0
        self.trim()

    def trim(self) -> None:
        """Drop changes beyond the retention and per-minute figures past theirs."""
        last = self.last_seq()
        with self._write() as conn:
            conn.execute(
                "DELETE FROM chenu_change WHERE seq <= ?",
                (last - self.change_retention,),
            )
            newest_minute = conn.execute(
                "SELECT max(minute) FROM chenu_minute"
            ).fetchone()[0]
            if newest_minute is not None:
                conn.execute(
                    "DELETE FROM chenu_minute WHERE minute < ?",
                    (newest_minute - STATS_RETENTION_MINUTES,),
                )

    # --- workers and queue control ---------------------------------------

    def put_heartbeats(self, workers: Iterable[WorkerInfo], ttl: float) -> None:
        rows = [
            (w.worker_id, json.dumps(w.to_dict()), w.last_beat + ttl) for w in workers
        ]
        if not rows:
            return
        with self._write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO chenu_worker (worker_id, data, expires_at) "
                "VALUES (?, ?, ?)",
                rows,
            )

    def list_workers(self, now: float) -> list[WorkerInfo]:
        rows = self._connection().execute(
            "SELECT data FROM chenu_worker WHERE expires_at > ? ORDER BY worker_id",
            (now,),
        )
        workers = []
        for row in rows:
            data = json.loads(row["data"])
            data["queue"] = TaskQueue(data["queue"])
            workers.append(WorkerInfo(**data))
        return workers

    def remove_workers(self, worker_ids: Collection[str]) -> None:
        if not worker_ids:
            return
        with self._write() as conn:
            conn.executemany(
                "DELETE FROM chenu_worker WHERE worker_id = ?",
                [(worker_id,) for worker_id in worker_ids],
            )

    def set_paused(self, queue: TaskQueue, paused: bool) -> None:
        with self._write() as conn:
            if paused:
                conn.execute(
                    "INSERT OR IGNORE INTO chenu_paused (queue) VALUES (?)",
                    (TaskQueue(queue).value,),
                )
            else:
                conn.execute(
                    "DELETE FROM chenu_paused WHERE queue = ?",
                    (TaskQueue(queue).value,),
                )

    def paused_queues(self) -> set[TaskQueue]:
        rows = self._connection().execute("SELECT queue FROM chenu_paused")
        return {TaskQueue(row["queue"]) for row in rows}

    # --- maintenance -------------------------------------------------------

    def integrity_check(self) -> str:
        """Run ``PRAGMA integrity_check`` and return its first line ("ok" if sound)."""
        return self._connection().execute("PRAGMA integrity_check").fetchone()[0]
