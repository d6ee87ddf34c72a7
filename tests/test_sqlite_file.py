"""The settings of the SQLite file the queues, ledger and stores share."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from chenu_desktop import TaskQueue, TaskStatus
from chenu_desktop.audit.sqlite_store import SqliteAuditStore
from chenu_desktop.backend import create_huey, parse_backend
from chenu_desktop.ledger.sqlite_ledger import PAGE_SIZE, SqliteLedger

from engine_helpers import open_test_engine, wait_final
from test_ledger_contract import make_record


def file_settings(path: Path) -> tuple[int, str]:
    """Return the page size and journal mode stored in the file."""
    conn = sqlite3.connect(path)
    try:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        journal_mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()
    return page_size, journal_mode


def run_one_task(path: Path) -> None:
    """Open an engine on the file, run a task to success and close it."""
    engine = open_test_engine(f"sqlite://{path}")
    try:
        engine.start_workers(scheduler=False)
        task_id = engine.task_service.submit("cleanup_old_data", days=30)
        assert wait_final(engine, task_id).status is TaskStatus.SUCCESS
    finally:
        engine.close()


def test_page_size_is_not_the_default() -> None:
    # The point of setting it: a file left to SQLite would get 4096.
    assert PAGE_SIZE != 4096
    assert PAGE_SIZE & (PAGE_SIZE - 1) == 0


def test_engine_creates_file_with_page_size(tmp_path: Path) -> None:
    path = tmp_path / "chenu.db"
    run_one_task(path)
    assert file_settings(path) == (PAGE_SIZE, "wal")


@pytest.mark.parametrize("opener", ["huey", "ledger", "audit"])
def test_first_opener_sets_page_size(tmp_path: Path, opener: str) -> None:
    """Whichever part opens a new file first, the file gets the page size."""
    path = tmp_path / "chenu.db"
    if opener == "huey":
        huey = create_huey(parse_backend(str(path)), "chenu", TaskQueue.DEFAULT)
        huey.storage.enqueue(b"{}", 0)
        huey.storage.close()
    elif opener == "ledger":
        SqliteLedger(path).close()
    else:
        store = SqliteAuditStore(path)
        store.close()
    assert file_settings(path) == (PAGE_SIZE, "wal")


def test_existing_file_keeps_page_size(tmp_path: Path) -> None:
    """A file made with another page size opens and works as it is."""
    path = tmp_path / "chenu.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA page_size=4096")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE unrelated (x)")
    conn.close()
    run_one_task(path)
    assert file_settings(path) == (4096, "wal")


def test_feed_with_autoincrement_keeps_working(tmp_path: Path) -> None:
    """A file whose change feed was made with AUTOINCREMENT numbers on from it."""
    path = tmp_path / "chenu.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE chenu_change (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "task_id TEXT NOT NULL, queue TEXT NOT NULL, status TEXT NOT NULL, "
        "at REAL NOT NULL, deleted INTEGER NOT NULL DEFAULT 0)"
    )
    conn.execute(
        "INSERT INTO chenu_change (seq, task_id, queue, status, at) "
        "VALUES (41, 'old', 'default', 'success', 0)"
    )
    conn.commit()
    conn.close()
    ledger = SqliteLedger(path)
    try:
        assert ledger.last_seq() == 41
        ledger.insert(make_record("new"))
        batch = ledger.changes(41)
    finally:
        ledger.close()
    assert [(c.seq, c.task_id) for c in batch.changes] == [(42, "new")]
