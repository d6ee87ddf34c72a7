"""Run one task from the ledger: claim it, call it, record the outcome."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import traceback
from typing import TYPE_CHECKING, Any

from .context import TaskContext, activate, deactivate
from .errors import TaskCancelled
from .ledger.base import Update, encode_json, storable_text
from .models import STARTABLE_STATUSES, TaskRecord, TaskStatus
from .registry import APPROVER_PARAMETER, TaskDefinition
from .services import BACKEND_ERRORS

if TYPE_CHECKING:
    from .engine import Engine
    from .pool import WorkerThread

logger = logging.getLogger("chenu.pool")

#: Seconds between the first two tries of a write the backend did not respond
#: to. The wait doubles up to `_MAX_RETRY_DELAY`.
_FIRST_RETRY_DELAY = 0.1
_MAX_RETRY_DELAY = 2.0

RUNNING_ONLY = frozenset({TaskStatus.RUNNING})
#: A worker may finish a task that the lost-worker check marked lost meanwhile.
FINISHABLE = frozenset({TaskStatus.RUNNING, TaskStatus.LOST})


class _WorkerStopped(Exception):
    """The worker stopped while it waited for the backend."""


def _claimed_by(record: TaskRecord | None, worker_id: str) -> bool:
    return (
        record is not None
        and record.status is TaskStatus.RUNNING
        and record.worker == worker_id
    )


def _error_text(exc: BaseException) -> str:
    text = storable_text(str(exc))
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _format_traceback(exc: BaseException) -> str:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return storable_text("".join(lines))


class TaskRunner:
    """Executes tasks for the workers of one engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def run(self, task_id: str, worker: WorkerThread) -> None:
        """Claim a task whose message the worker popped, then run it."""
        self.run_claimed(task_id, self._claim(task_id, worker), worker)

    def run_claimed(
        self, task_id: str, record: TaskRecord | None, worker: WorkerThread
    ) -> None:
        """Run a task the worker claimed; with None, skip the message of `task_id`."""
        engine = self._engine
        if record is None:
            if not worker.stop_event.is_set():
                self._skip(task_id)
            return
        now = engine.clock()
        if record.expires_at is not None and now > record.expires_at:
            self._finish(
                record,
                TaskStatus.EXPIRED,
                error="expired before a worker could start it",
                sync=True,
            )
            logger.info("task %s expired before it started", task_id)
            return
        definition = engine.registry.find(record.task_name)
        if definition is None:
            self._finish(
                record,
                TaskStatus.FAILURE,
                error=(
                    f"unknown task name {record.task_name!r}: no task of that name is "
                    "registered in the worker process; pass its module to "
                    "`chenu-desktop worker --tasks` and retry"
                ),
                sync=True,
            )
            return
        context = TaskContext(
            record.task_id,
            record.task_name,
            record.attempts,
            engine,
            engine.report_progress,
        )
        worker.begin_task(record.task_id, context)
        token = activate(context)
        try:
            self._execute(record, definition, context)
        finally:
            deactivate(token)
            worker.end_task()

    def _claim(self, task_id: str, worker: WorkerThread) -> TaskRecord | None:
        """Claim the task, retrying while the backend is down.

        The popped message exists only in this thread, so giving up would
        leave the record startable with nothing to run it. Returns None if
        the task may not start, or if the worker stops before the backend
        responds, and then the orphan check requeues the task.
        """
        ledger = self._engine.ledger
        delay = _FIRST_RETRY_DELAY
        failures = 0
        while True:
            try:
                if failures:
                    current = ledger.get(task_id)
                    if _claimed_by(current, worker.worker_id):
                        # The claim applied, but its reply was lost.
                        return current
                return ledger.claim(task_id, worker.worker_id, self._engine.clock())
            except BACKEND_ERRORS:
                failures += 1
                if failures == 1:
                    logger.exception(
                        "worker %s: claiming task %s failed; retrying until the "
                        "backend responds",
                        worker.worker_id,
                        task_id,
                    )
            if worker.stop_event.wait(delay):
                logger.error(
                    "worker %s stopped before it could claim task %s; the task "
                    "stays waiting until a pool requeues it",
                    worker.worker_id,
                    task_id,
                )
                return None
            delay = min(_MAX_RETRY_DELAY, delay * 2)

    def _skip(self, task_id: str) -> None:
        """Handle a message whose task may not start: cancelled, finished or missing."""
        ledger = self._engine.ledger
        record = ledger.get(task_id)
        if record is None:
            logger.warning(
                "queue message for task %s has no ledger record; skipped", task_id
            )
            return
        if record.status in STARTABLE_STATUSES and record.cancel_requested:
            ledger.update(
                Update(
                    task_id,
                    TaskStatus.CANCELLED,
                    {"finished_at": self._engine.clock()},
                    expected=STARTABLE_STATUSES,
                ),
                self._engine.clock(),
            )
            logger.info("task %s cancelled before it started", task_id)
            return
        logger.debug(
            "task %s is %s; its queue message is skipped", task_id, record.status
        )

    def _execute(
        self, record: TaskRecord, definition: TaskDefinition, context: TaskContext
    ) -> None:
        kwargs = dict(record.kwargs)
        if definition.requires_governance and definition.takes_approver:
            kwargs[APPROVER_PARAMETER] = record.approved_by
        logger.info(
            "task %s (%s) started, attempt %d",
            record.task_id,
            record.task_name,
            record.attempts,
        )
        try:
            if definition.is_async:
                result = self._run_coroutine(definition, record.args, kwargs, context)
            else:
                result = definition.func(*record.args, **kwargs)
        except (TaskCancelled, asyncio.CancelledError) as exc:
            if context.cancel_requested:
                self._finish(record, TaskStatus.CANCELLED, error="cancelled by request")
                logger.info("task %s cancelled while running", record.task_id)
                return
            self._failed(record, definition, context, exc)
            return
        except Exception as exc:
            self._failed(record, definition, context, exc)
            return
        try:
            encoded = encode_json(result)
        except (TypeError, ValueError) as exc:
            self._finish(
                record,
                TaskStatus.FAILURE,
                error=(
                    f"result of type {type(result).__name__} is not a JSON value ({exc}): "
                    "return str, int, float, bool, None, list or dict"
                ),
            )
            logger.error(
                "task %s returned a result that cannot be stored", record.task_id
            )
            return
        try:
            encoded.encode("utf-8")
        except UnicodeEncodeError as exc:
            self._finish(
                record,
                TaskStatus.FAILURE,
                error=(
                    f"result contains the lone surrogate {encoded[exc.start]!r}, "
                    "which is not valid Unicode text: decode bytes with an explicit "
                    "encoding or errors='replace' before returning them"
                ),
            )
            logger.error(
                "task %s returned text that is not valid Unicode", record.task_id
            )
            return
        if context.cancel_requested:
            # It finished before it saw the request: the outcome is the truth.
            logger.info("task %s finished despite a cancel request", record.task_id)
        self._finish(record, TaskStatus.SUCCESS, result=result)
        logger.info("task %s succeeded", record.task_id)

    def _run_coroutine(
        self,
        definition: TaskDefinition,
        args: list[Any],
        kwargs: dict[str, Any],
        context: TaskContext,
    ) -> Any:
        async def main() -> Any:
            task = asyncio.current_task()
            assert task is not None
            context.attach_async(asyncio.get_running_loop(), task)
            return await definition.func(*args, **kwargs)

        return asyncio.run(main())

    def _failed(
        self,
        record: TaskRecord,
        definition: TaskDefinition,
        context: TaskContext,
        exc: BaseException,
    ) -> None:
        error = _error_text(exc)
        trace = _format_traceback(exc)
        if context.cancel_requested:
            self._finish(record, TaskStatus.CANCELLED, error=error, trace=trace)
            return
        if record.attempts <= record.max_retries:
            self._schedule_retry(record, definition, error, trace)
            return
        logger.warning(
            "task %s failed after %d attempts: %s",
            record.task_id,
            record.attempts,
            error,
        )
        self._finish(record, TaskStatus.FAILURE, error=error, trace=trace)

    def _schedule_retry(
        self, record: TaskRecord, definition: TaskDefinition, error: str, trace: str
    ) -> None:
        engine = self._engine
        now = engine.clock()
        delay = definition.retry_delay_for(record.attempts)
        next_at = now + delay
        update = Update(
            record.task_id,
            TaskStatus.RETRYING,
            {
                "error": error,
                "traceback": trace,
                "finished_at": now,
                "next_attempt_at": next_at,
            },
            expected=FINISHABLE,
        )
        # Written at once, not batched: the next attempt may start right away
        # and must find the record startable.
        try:
            updated = self._apply_retrying(update, next_at)
        except _WorkerStopped:
            # The writer keeps the outcome, and the orphan check requeues the task.
            engine.writer.put(update)
            return
        if updated is None:
            logger.warning(
                "task %s changed while it ran; no retry scheduled", record.task_id
            )
            return
        logger.info(
            "task %s failed (%s); retry %d of %d in %.1f s",
            record.task_id,
            error,
            record.attempts,
            record.max_retries,
            delay,
        )
        eta = dt.datetime.fromtimestamp(next_at, dt.timezone.utc) if delay > 0 else None
        try:
            engine.enqueue_message(record.queue, record.task_id, record.priority, eta)
        except BACKEND_ERRORS:
            # The record is RETRYING without a message: the orphan check that
            # follows the outage requeues it.
            logger.exception(
                "enqueueing the retry of task %s failed; it is requeued once the "
                "backend responds",
                record.task_id,
            )
            engine.pool.orphan_check.set()

    def _apply_retrying(self, update: Update, next_at: float) -> TaskRecord | None:
        """Apply the RETRYING update, retrying while the backend is down.

        Raises:
            _WorkerStopped: The worker stopped before the backend responded.
        """
        engine = self._engine
        # A worker runs its tasks on its own thread, which has a stop event.
        stop = getattr(threading.current_thread(), "stop_event", threading.Event())
        delay = _FIRST_RETRY_DELAY
        failures = 0
        while True:
            try:
                updated = engine.ledger.update(update, engine.clock())
                if updated is None and failures:
                    current = engine.ledger.get(update.task_id)
                    if (
                        current is not None
                        and current.status is TaskStatus.RETRYING
                        and current.next_attempt_at == next_at
                    ):
                        # The update applied, but its reply was lost.
                        return current
                return updated
            except BACKEND_ERRORS:
                failures += 1
                if failures == 1:
                    logger.exception(
                        "recording the retry of task %s failed; retrying until the "
                        "backend responds",
                        update.task_id,
                    )
            if stop.wait(delay):
                raise _WorkerStopped
            delay = min(_MAX_RETRY_DELAY, delay * 2)

    def _finish(
        self,
        record: TaskRecord,
        status: TaskStatus,
        *,
        result: Any = None,
        error: str | None = None,
        trace: str | None = None,
        sync: bool = False,
    ) -> None:
        now = self._engine.clock()
        fields: dict[str, Any] = {
            "finished_at": now,
            "result": result,
            "error": error,
            "traceback": trace,
            "next_attempt_at": None,
        }
        if status is TaskStatus.SUCCESS:
            fields["progress"] = 1.0
        update = Update(record.task_id, status, fields, expected=FINISHABLE)
        if sync:
            try:
                self._engine.ledger.update(update, now)
                return
            except BACKEND_ERRORS:
                logger.exception(
                    "recording task %s as %s failed; the ledger writer retries it",
                    record.task_id,
                    status.value,
                )
        self._engine.writer.put(update)
