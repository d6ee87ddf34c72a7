"""Requeue startable tasks whose Huey message is gone, as after a Redis outage.

Huey deletes a message when a worker pops it. If the reply to that pop is
lost (the server stops in between), or a worker cannot claim the task before
the backend goes away, the record stays startable with no message left to
run it. Such a record is an orphan, and this module puts a new message on
its queue. A second message is harmless, because a worker runs a task only
after it claims the record atomically, and a claim fails unless the record
is startable.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from .models import STARTABLE_STATUSES, TaskRecord

if TYPE_CHECKING:
    from .engine import Engine

logger = logging.getLogger("chenu.pool")

#: Startable records examined per pass at most.
MAX_EXAMINED = 10_000
_PAGE = 500


def queued_task_ids(engine: Engine) -> set[str]:
    """Return the ids of the tasks that have a message on a queue or a schedule."""
    from .engine import _task_id_in

    task_ids: set[str] = set()
    for huey in engine.hueys.values():
        storage = huey.storage
        for data in [*storage.enqueued_items(), *storage.scheduled_items()]:
            task_id = _task_id_in(bytes(data).decode("utf-8", errors="replace"))
            if task_id is not None:
                task_ids.add(task_id)
    return task_ids


def _startable_records(engine: Engine) -> list[TaskRecord]:
    records: list[TaskRecord] = []
    for status in sorted(STARTABLE_STATUSES):
        offset = 0
        while len(records) < MAX_EXAMINED:
            page = engine.task_service.list_tasks(
                status=status, limit=_PAGE, offset=offset
            )
            records.extend(page)
            offset += len(page)
            if len(page) < _PAGE:
                break
    return records[:MAX_EXAMINED]


def requeue_orphans(engine: Engine) -> list[str]:
    """Give each startable record without a message a new one; return their ids.

    The messages are read before the records, so a task submitted in
    between may get a second message, which its worker skips.

    NOTE: a task that fails and turns RETRYING between the two reads may
    get a message due now, so its retry starts before its retry delay.
    """
    queued = queued_task_ids(engine)
    requeued = []
    for record in _startable_records(engine):
        if record.task_id in queued:
            continue
        due = record.next_attempt_at if record.next_attempt_at else record.eta
        eta = None
        if due is not None and due > engine.clock():
            eta = dt.datetime.fromtimestamp(due, dt.timezone.utc)
        engine.enqueue_message(record.queue, record.task_id, record.priority, eta)
        requeued.append(record.task_id)
        logger.warning(
            "task %s was %s without a queue message; requeued",
            record.task_id,
            record.status.value,
        )
    return requeued
