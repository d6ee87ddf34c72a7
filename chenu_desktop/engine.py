"""The engine: five Huey queues, the ledger, the worker pool and the services."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from huey.api import Huey, Task, TaskWrapper

from .backend import (
    BackendSpec,
    create_audit_store,
    create_huey,
    create_ledger,
    create_schedule_store,
    is_future,
    parse_backend,
    redis_queue_entry,
)
from .config import Config, load_config, user_data_dir
from .context import TaskContext
from .ledger.base import Ledger, Update, storable_text
from .ledger.redis_ledger import RedisLedger
from .ledger.sqlite_ledger import SqliteLedger
from .models import (
    MAX_PRIORITY,
    STARTABLE_STATUSES,
    ChangeBatch,
    TaskQueue,
    TaskRecord,
    TaskStatus,
    WorkerInfo,
)
from .pool import WorkerPool
from .registry import TaskRegistry, default_registry
from .runner import TaskRunner
from .writer import LedgerWriter

logger = logging.getLogger("chenu.engine")

#: The one Huey task of every queue; its only argument is the ledger task id.
HUEY_TASK_NAME = "chenu_run"


#: Characters of an undecodable message kept in its failure record.
BAD_MESSAGE_KEPT = 2000


def _task_id_in(text: str) -> str | None:
    """Return the ledger id a JSON queue message names, if it can be read."""
    try:
        payload = json.loads(text)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    args = payload.get("args")
    if isinstance(args, list) and args and isinstance(args[0], str):
        return args[0]
    return None


def _huey_task_body(task_id: str) -> None:  # pragma: no cover - never called
    raise RuntimeError("queue messages are run by chenu_desktop.runner, not by Huey")


class Engine:
    """Everything one process needs to submit, run and follow tasks.

    Attributes:
        config: The configuration in force.
        spec: The parsed backend URL.
        ledger: Task records, counters, heartbeats and the change feed.
        hueys: The Huey instance of each queue.
        pool: The worker threads of this process (started by `start_workers`).
        task_service: The synchronous task API.
        async_task_service: The same API as coroutines.
        scheduler_service: Cron schedules (add, edit, run now, history).
        async_scheduler_service: The same API as coroutines.
        audit: The append-only trail of operator actions, in the ledger's storage.
    """

    def __init__(
        self,
        config: Config,
        registry: TaskRegistry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from . import builtin_tasks  # noqa: F401  (registers the built-in tasks)
        from .audit.service import AuditService
        from .scheduling.service import SchedulerService
        from .services import AsyncService, TaskService

        self.config = config
        self.spec: BackendSpec = parse_backend(config.backend_url)
        self.registry = registry or default_registry
        self.clock = clock
        self.data_dir = (
            self.spec.path.parent if self.spec.path is not None else user_data_dir()
        )
        self.ledger: Ledger = create_ledger(
            self.spec, config.namespace, config.change_retention
        )
        self.audit_store = create_audit_store(self.spec, config.namespace)
        self.audit = AuditService(self, self.audit_store)
        self.hueys: dict[TaskQueue, Huey] = {}
        self._huey_tasks: dict[TaskQueue, TaskWrapper] = {}
        for queue in TaskQueue:
            huey = create_huey(self.spec, config.namespace, queue)
            self.hueys[queue] = huey
            self._huey_tasks[queue] = huey.task(name=HUEY_TASK_NAME)(_huey_task_body)
        #: The Huey task name in every queue message of ours.
        sample = self._huey_message(TaskQueue.DEFAULT, "", 0, None)
        self._message_name: str = json.loads(
            self.hueys[TaskQueue.DEFAULT].serialize_task(sample)
        )["name"]
        self.writer = LedgerWriter(self.ledger, clock=clock)
        self.runner = TaskRunner(self)
        #: Contexts of the tasks running in this process, by task id.
        self.local_contexts: dict[str, TaskContext] = {}
        self.pool = WorkerPool(self, dict(config.workers))
        self.task_service = TaskService(self)
        self.async_task_service = AsyncService(self.task_service)
        self.schedule_store = create_schedule_store(self.spec, config.namespace)
        self.scheduler_service = SchedulerService(self, self.schedule_store)
        self.async_scheduler_service = AsyncService(self.scheduler_service)
        self._closed = False
        self._close_lock = threading.Lock()
        logger.info("engine opened on %s", self.spec.display)

    # --- workers ---------------------------------------------------------

    def start_workers(
        self, queues: set[TaskQueue] | None = None, scheduler: bool = True
    ) -> None:
        """Start the worker pool of this process (all queues when None).

        With `scheduler`, this process also competes for the scheduler lease
        and fires cron schedules while it holds it.
        """
        self.pool.start(queues)
        if scheduler:
            self.scheduler_service.start()

    def stop_workers(self, timeout: float = 10.0) -> bool:
        """Stop the workers, waiting up to `timeout` s; False if some still ran."""
        self.scheduler_service.stop(timeout)
        stopped = self.pool.stop(timeout)
        self.writer.flush(timeout)
        return stopped

    def workers(self) -> list[WorkerInfo]:
        """Return the workers of every process on this backend, by heartbeat."""
        return self.ledger.list_workers(self.clock())

    # --- change feed -----------------------------------------------------

    def changes(self, since: int = 0, limit: int = 1000) -> ChangeBatch:
        """Return the ledger changes after sequence number `since`."""
        return self.ledger.changes(since, limit)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the batched worker updates are in the ledger."""
        return self.writer.flush(timeout)

    # --- used by the services and the workers ------------------------------

    def _huey_message(
        self, queue: TaskQueue, task_id: str, priority: int, eta: dt.datetime | None
    ) -> Task:
        """Build the Huey message of a task; `eta` must be aware.

        Huey runs the higher number first, our priorities the lower, so the
        number is flipped.
        """
        naive_eta = None
        if eta is not None:
            naive_eta = eta.astimezone(dt.timezone.utc).replace(tzinfo=None)
        wrapper = self._huey_tasks[queue]
        return wrapper.task_class(
            (task_id,), {}, id=task_id, eta=naive_eta, priority=MAX_PRIORITY - priority
        )

    def enqueue_message(
        self,
        queue: TaskQueue,
        task_id: str,
        priority: int,
        eta: dt.datetime | None = None,
    ) -> None:
        """Put a task's message on its queue, or on the schedule when `eta` is later."""
        huey = self.hueys[queue]
        message = self._huey_message(queue, task_id, priority, eta)
        if is_future(message.eta):
            huey.add_schedule(message)
        else:
            huey.enqueue(message)
            self.pool.runtimes[queue].wake.notify()

    def insert_queued(self, record: TaskRecord, eta: dt.datetime | None) -> None:
        """Store a new record and its queue message in one step (Redis only).

        `eta` must be aware; a later one puts the message on the schedule.

        Raises:
            ValueError: A record with this id exists already.
        """
        assert isinstance(self.ledger, RedisLedger)
        queue = record.queue
        message = self._huey_message(queue, record.task_id, record.priority, eta)
        self.ledger.insert(record, redis_queue_entry(self.hueys[queue], message))
        if not is_future(message.eta):
            self.pool.runtimes[queue].wake.notify()

    def take(
        self, queue: TaskQueue, worker_id: str, now: float
    ) -> tuple[bytes, TaskRecord | None] | None:
        """Pop the next message of a queue and claim its task in one step.

        One transaction on SQLite and one script on Redis, where a pop and a
        separate claim would cost two. Only a message of our Huey task with
        no ETA is claimed this way. Returns None if the queue is empty, else
        the raw message and the claimed record. The record is None when the
        message is not one of those or its task may not start (see
        `Ledger.claim`).
        """
        huey = self.hueys[queue]
        ledger = self.ledger
        if isinstance(ledger, RedisLedger):
            return ledger.take(
                huey.storage.queue_key, self._message_name, worker_id, now
            )
        assert isinstance(ledger, SqliteLedger)
        return ledger.take(huey.storage.name, worker_id, now, self._claimable_id)

    def _claimable_id(self, data: bytes) -> str | None:
        """Return the task id of a message `take` may claim: ours, with no ETA."""
        try:
            payload = json.loads(data)
        except ValueError:
            return None
        if (
            not isinstance(payload, dict)
            or payload.get("name") != self._message_name
            or payload.get("eta") is not None
        ):
            return None
        args = payload.get("args")
        if isinstance(args, list) and args and isinstance(args[0], str):
            return args[0]
        return None

    def record_bad_message(self, queue: TaskQueue, data: bytes, exc: Exception) -> None:
        """Record a queue message no worker can decode as a failed task, never drop it.

        If the message names a known task, that record fails with the reason;
        otherwise a new failed record keeps the start of the raw message.
        """
        now = self.clock()
        text = bytes(data).decode("utf-8", errors="replace")
        error = (
            f"queue message on {queue.value} could not be decoded "
            f"({type(exc).__name__}: {exc}); it was not run"
        )
        logger.error("%s: %.200r", error, text)
        task_id = _task_id_in(text)
        if task_id is not None:
            failed = self.ledger.update(
                Update(
                    task_id,
                    TaskStatus.FAILURE,
                    {"error": error, "finished_at": now},
                    expected=STARTABLE_STATUSES,
                ),
                now,
            )
            if failed is not None:
                return
        record = TaskRecord(
            task_id=uuid.uuid4().hex,
            task_name="(undecodable message)",
            queue=queue,
            priority=MAX_PRIORITY,
            status=TaskStatus.FAILURE,
            args=[text[:BAD_MESSAGE_KEPT]],
            error=error,
            created_at=now,
            finished_at=now,
            updated_at=now,
            history=[[TaskStatus.FAILURE.value, now]],
        )
        self.ledger.insert(record)

    def report_progress(
        self, task_id: str, fraction: float | None, message: str | None
    ) -> None:
        if message is not None:
            message = storable_text(str(message))
        self.writer.put(
            Update(
                task_id,
                None,
                {"progress": fraction, "progress_message": message},
                expected=frozenset({TaskStatus.RUNNING}),
            )
        )

    # --- lifetime --------------------------------------------------------

    def close(self, timeout: float = 10.0) -> bool:
        """Stop the workers, write what is pending and release the backend.

        Returns False if a worker or the ledger writer did not finish within
        `timeout` seconds (each); True when everything stopped cleanly.
        """
        with self._close_lock:
            if self._closed:
                return True
            self._closed = True
        self.scheduler_service.stop(timeout)
        stopped = self.pool.stop(timeout)
        written = self.writer.stop(timeout)
        for huey in self.hueys.values():
            storage: Any = huey.storage
            try:
                if hasattr(storage, "close"):
                    storage.close()
                pool = getattr(storage, "pool", None)
                if pool is not None:
                    pool.disconnect()
            except Exception:
                logger.exception("closing the storage of queue %s failed", huey.name)
        self.ledger.close()
        self.audit_store.close()
        self.schedule_store.close()
        logger.info("engine closed")
        return stopped and written

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_engine(
    backend: str | None = None,
    *,
    config: Config | None = None,
    config_path: Path | str | None = None,
    registry: TaskRegistry | None = None,
) -> Engine:
    """Open the engine on a backend URL, or on the configured one.

    Args:
        backend: ``sqlite:///PATH``, ``redis://HOST:PORT/DB`` or None for the
            configured backend (``$CHENU_BACKEND``, then the configuration
            file, then SQLite in the user data dir).
        config: Settings to use instead of loading the configuration file.
        config_path: Another configuration file to load.
        registry: Tasks to run instead of those of `background_task`.
    """
    settings = config if config is not None else load_config(config_path)
    if backend:
        settings = settings.with_backend(backend)
    return Engine(settings, registry)
