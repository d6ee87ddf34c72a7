"""Settle running tasks whose worker died: mark them lost, requeue the safe ones."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from typing import TYPE_CHECKING, Callable

from .ledger.base import Update
from .models import TaskRecord, TaskStatus

if TYPE_CHECKING:
    from .engine import Engine

logger = logging.getLogger("chenu.pool")

#: Running records examined per pass at most.
MAX_EXAMINED = 10_000
_PAGE = 500
_RUNNING = frozenset({TaskStatus.RUNNING})
_LOST = frozenset({TaskStatus.LOST})


@dataclasses.dataclass(frozen=True)
class WorkerAddress:
    """The parts of a worker id: ``HOST-PID-QUEUE-RUN-INDEX``."""

    host: str
    pid: int
    run_id: str


def parse_worker_id(worker_id: str | None) -> WorkerAddress | None:
    """Return host, pid and run of a worker id, or None if it has another form."""
    if not worker_id:
        return None
    parts = worker_id.rsplit("-", 4)
    if len(parts) != 5 or not parts[1].isdigit():
        return None
    return WorkerAddress(host=parts[0], pid=int(parts[1]), run_id=parts[3])


def process_exists(pid: int) -> bool:
    """Return whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LostTaskReaper:
    """Finds RUNNING records whose worker no longer sends heartbeats.

    A record counts as lost when its worker's process is gone from this very
    machine, even while that worker's last heartbeat has not expired yet, so a
    restart right after a crash settles the crashed run's tasks at once. A
    record of a worker elsewhere counts as lost when the worker has no live
    heartbeat and the task started more than the heartbeat timeout ago.
    Records of live workers are never touched, whichever process or machine
    runs them.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._host = socket.gethostname()

    def settle(self, now: float | None = None) -> list[str]:
        """Mark lost tasks and requeue those declared safe to repeat; return their ids."""
        engine = self._engine
        now = engine.clock() if now is None else now
        alive = {w.worker_id for w in engine.ledger.list_workers(now)}
        alive.update(w.worker_id for w in engine.pool.local_workers())
        settled = []
        for record in self._records_in():
            if not self._is_lost(record, now, alive):
                continue
            if self._mark_lost(record, now):
                settled.append(record.task_id)
        return settled

    def requeue_unqueued(
        self, grace: float = 0.0, wait: Callable[[float], bool] | None = None
    ) -> list[str]:
        """Enqueue PENDING tasks again whose queue message is gone; return their ids.

        A process killed after it took a message off the queue and before it
        claimed the task leaves the record PENDING with no message. While
        workers run, a task also looks that way for the moment between a pop
        and its claim, so with `grace` the check waits that long (through
        `wait`, which returns True to give up) and requeues only the tasks
        that still look so. A message enqueued twice is harmless: claims are
        atomic, so the later copy finds the task started or finished and is
        skipped. NOTE: only the newest MAX_EXAMINED pending records are checked.
        """
        engine = self._engine
        unqueued = self._unqueued_pending()
        if unqueued and grace > 0:
            if wait is not None and wait(grace):
                return []
            unqueued &= self._unqueued_pending()
        requeued = []
        for task_id in sorted(unqueued):
            record = engine.ledger.get(task_id)
            if record is None or record.status is not TaskStatus.PENDING:
                continue
            engine.enqueue_message(record.queue, record.task_id, record.priority)
            requeued.append(record.task_id)
            logger.warning(
                "task %s was pending without a queue message (a worker died after "
                "taking it); enqueued it again",
                record.task_id,
            )
        return requeued

    def _unqueued_pending(self) -> set[str]:
        """Return the ids of PENDING records that no queue message names.

        The messages are read first, so a task submitted in between shows up
        here too; the check after the grace leaves it out.
        """
        from .engine import _task_id_in

        engine = self._engine
        queued: set[str] = set()
        for huey in engine.hueys.values():
            for data in huey.storage.enqueued_items():
                task_id = _task_id_in(bytes(data).decode("utf-8", errors="replace"))
                if task_id is not None:
                    queued.add(task_id)
        pending = engine.ledger.task_ids(TaskStatus.PENDING, MAX_EXAMINED)
        return {task_id for task_id in pending if task_id not in queued}

    def _records_in(self, status: TaskStatus = TaskStatus.RUNNING) -> list[TaskRecord]:
        service = self._engine.task_service
        records: list[TaskRecord] = []
        while len(records) < MAX_EXAMINED:
            page = service.list_tasks(status=status, limit=_PAGE, offset=len(records))
            records.extend(page)
            if len(page) < _PAGE:
                break
        return records

    def _is_lost(self, record: TaskRecord, now: float, alive: set[str]) -> bool:
        address = parse_worker_id(record.worker)
        if address is not None and address.host == self._host:
            same_run = address.run_id == self._engine.pool.run_id
            if not same_run and not process_exists(address.pid):
                return True
        if record.worker in alive:
            return False
        started = record.started_at or record.updated_at
        return now - started > self._engine.config.heartbeat_timeout

    def _mark_lost(self, record: TaskRecord, now: float) -> bool:
        ledger = self._engine.ledger
        error = (
            f"worker {record.worker} stopped sending heartbeats while running this "
            "task (its process died or hung), so the outcome is unknown"
        )
        lost = ledger.update(
            Update(
                record.task_id,
                TaskStatus.LOST,
                {"finished_at": now, "error": error},
                expected=_RUNNING,
            ),
            now,
        )
        if lost is None:
            return False
        # A task safe to repeat gets at least one more run, and at most its retries.
        allowed = max(lost.max_retries, 1)
        if not lost.requeue_on_loss or lost.attempts > allowed:
            logger.warning(
                "task %s lost with worker %s; retry it by hand",
                lost.task_id,
                record.worker,
            )
            return True
        requeued = ledger.update(
            Update(
                lost.task_id,
                TaskStatus.RETRYING,
                {"next_attempt_at": now},
                expected=_LOST,
            ),
            now,
        )
        if requeued is not None:
            self._engine.enqueue_message(lost.queue, lost.task_id, lost.priority)
            logger.warning(
                "task %s lost with worker %s; requeued (attempt %d of %d)",
                lost.task_id,
                record.worker,
                lost.attempts + 1,
                allowed + 1,
            )
        return True
