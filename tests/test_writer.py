"""The ledger writer: batches, outages, and updates the ledger cannot take."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import pytest
import redis

from chenu_desktop.ledger.base import Ledger, Update
from chenu_desktop.models import TaskQueue, TaskRecord, TaskStatus
from chenu_desktop.writer import LedgerWriter

T0 = 1_800_000_000.0


@pytest.fixture(params=["sqlite", "redis"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "sqlite":
        from chenu_desktop.ledger.sqlite_ledger import SqliteLedger

        opened: Ledger = SqliteLedger(tmp_path / "writer.db")
    else:
        from chenu_desktop.ledger.redis_ledger import RedisLedger

        url = request.getfixturevalue("redis_url")
        opened = RedisLedger(redis.Redis.from_url(url), "writer")
    try:
        yield opened
    finally:
        opened.close()


def pending(task_id: str) -> TaskRecord:
    return TaskRecord(
        task_id=task_id,
        task_name="reports.build",
        queue=TaskQueue.DEFAULT,
        priority=6,
        status=TaskStatus.PENDING,
        created_at=T0,
        updated_at=T0,
    )


def test_rejected_update_skipped_rest_written(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    for task_id in ("a", "b", "c"):
        ledger.insert(pending(task_id))
    writer = LedgerWriter(ledger, interval=0.2)
    try:
        writer.put(Update("a", TaskStatus.RUNNING, {"started_at": T0 + 1}))
        # A result that is not JSON: no retry can ever store it.
        writer.put(Update("b", TaskStatus.SUCCESS, {"result": object()}))
        writer.put(
            Update("c", TaskStatus.SUCCESS, {"result": 7, "finished_at": T0 + 2})
        )
        assert writer.flush(10.0)
        assert ledger.get("a").status is TaskStatus.RUNNING
        assert ledger.get("b").status is TaskStatus.PENDING
        assert ledger.get("c").result == 7
        assert writer.rejected == 1
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert any(
            m.startswith("task b: the ledger rejected an update") for m in errors
        )
        # Later updates are not stuck behind the rejected one.
        writer.put(Update("a", TaskStatus.SUCCESS, {"finished_at": T0 + 3}))
        assert writer.flush(10.0)
        assert ledger.get("a").status is TaskStatus.SUCCESS
    finally:
        assert writer.stop(10.0)
