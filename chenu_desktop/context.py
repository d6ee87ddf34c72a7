"""The context of a running task: cancel checks and progress reports."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import TYPE_CHECKING, Any, Callable

from .errors import TaskCancelled

if TYPE_CHECKING:
    from .engine import Engine

_current: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar(
    "chenu_task_context", default=None
)


class TaskContext:
    """The context of one task run, returned by `current_task()`.

    Attributes:
        task_id: The ledger id of the running task.
        task_name: The registered name.
        attempt: 1 for the first run, 2 for the first retry, and so on.
        engine: The engine whose worker runs the task.
    """

    def __init__(
        self,
        task_id: str,
        task_name: str,
        attempt: int,
        engine: Engine,
        report_progress: Callable[[str, float | None, str | None], None],
    ) -> None:
        self.task_id = task_id
        self.task_name = task_name
        self.attempt = attempt
        self.engine = engine
        self._report_progress = report_progress
        self._cancel_event = threading.Event()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_task: asyncio.Task[Any] | None = None

    @property
    def cancel_requested(self) -> bool:
        return self._cancel_event.is_set()

    def check_cancelled(self) -> None:
        """Raise `TaskCancelled` if an operator asked to cancel this task."""
        if self._cancel_event.is_set():
            raise TaskCancelled(f"task {self.task_id} was cancelled by request")

    def wait_cancelled(self, timeout: float | None = None) -> bool:
        """Wait up to `timeout` seconds for a cancel request; return whether one came.

        A cancel-aware replacement for ``time.sleep`` inside a task.
        """
        return self._cancel_event.wait(timeout)

    def set_progress(self, fraction: float | None, message: str | None = None) -> None:
        """Report progress: a fraction from 0 to 1 (or None) and a short message."""
        if fraction is not None:
            fraction = min(1.0, max(0.0, float(fraction)))
        self._report_progress(self.task_id, fraction, message)

    def request_cancel(self) -> None:
        """Mark the run cancelled; an async task is cancelled at its next await."""
        with self._lock:
            self._cancel_event.set()
            loop, task = self._loop, self._async_task
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)

    def attach_async(
        self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]
    ) -> None:
        with self._lock:
            self._loop, self._async_task = loop, task
            cancelled = self._cancel_event.is_set()
        if cancelled:
            task.cancel()


def current_task() -> TaskContext:
    """Return the context of the task running in this thread or coroutine.

    Raises:
        RuntimeError: Called outside a task run by a worker.
    """
    context = _current.get()
    if context is None:
        raise RuntimeError("current_task() called outside a running task")
    return context


def check_cancelled() -> None:
    """Raise `TaskCancelled` if the running task has a cancel request."""
    current_task().check_cancelled()


def set_progress(fraction: float | None, message: str | None = None) -> None:
    """Report progress of the running task; see `TaskContext.set_progress`."""
    current_task().set_progress(fraction, message)


def activate(context: TaskContext | None) -> contextvars.Token[TaskContext | None]:
    return _current.set(context)


def deactivate(token: contextvars.Token[TaskContext | None]) -> None:
    _current.reset(token)
