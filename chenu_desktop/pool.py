"""The worker pool: thread workers and a scheduler per queue, and heartbeats."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING

import redis
from huey.storage import RedisStorage

from .audit.store import TARGET_QUEUE, AuditAction
from .config import check_worker_count
from .context import TaskContext
from .ledger.base import Update
from .ledger.redis_ledger import RedisLedger, _text
from .models import TaskQueue, TaskRecord, TaskStatus, WorkerInfo
from .reaper import LostTaskReaper
from .requeue import requeue_orphans

if TYPE_CHECKING:
    from huey.api import Huey

    from .engine import Engine

logger = logging.getLogger("chenu.pool")

#: Shortest wait of an idle SQLite worker; it doubles up to the poll interval.
_MIN_POLL = 0.01
#: How often the scheduler moves due tasks from Huey's schedule to its queue,
#: as often as Huey's own consumer does by default.
_SCHEDULE_INTERVAL = 1.0
#: Maximum wait of a Redis worker on an empty queue: `WorkerThread.request_stop`
#: wakes it earlier, so this bounds only how often an idle worker calls Redis.
REDIS_BLOCK_SECONDS = 5
#: Seconds a wake key outlives its last use, should its worker die first.
_WAKE_KEY_TTL = 60
#: Seconds a popped message may wait for its claim before the start check
#: counts its task as pending without a message.
_POP_GRACE = 2.0


class ErrorThrottle:
    """Logs the first failure of a loop with its traceback, then a count per interval.

    A backend outage makes every worker fail on every pass; without this the
    log would fill with identical tracebacks.
    """

    def __init__(
        self,
        description: str,
        interval: float = 60.0,
        log: logging.Logger | None = None,
    ) -> None:
        self.description = description
        self.interval = interval
        self._log = log or logger
        self._failures = 0
        self._since_report = 0
        self._next_report = 0.0

    def failed(self) -> None:
        """Record a failure; call from inside the ``except`` block."""
        self._failures += 1
        self._since_report += 1
        now = time.monotonic()
        if self._failures == 1:
            self._log.exception("%s failed", self.description)
            self._since_report = 0
            self._next_report = now + self.interval
        elif now >= self._next_report:
            self._log.error(
                "%s still failing: %d more failures in the last %.0f s",
                self.description,
                self._since_report,
                self.interval,
            )
            self._since_report = 0
            self._next_report = now + self.interval

    def succeeded(self) -> bool:
        """Record a success; return True if it ends a run of failures."""
        recovered = self._failures > 0
        if recovered:
            self._log.info(
                "%s works again after %d failures", self.description, self._failures
            )
        self._failures = 0
        return recovered


class WakeSignal:
    """Wakes idle workers of one queue when this process enqueues a message.

    Unlike a bare Event, a wake that comes while no worker waits is kept,
    so a worker that is about to sleep goes back to the queue at once.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._tokens = 0

    def notify(self) -> None:
        with self._condition:
            self._tokens += 1
            self._condition.notify()

    def notify_all(self) -> None:
        with self._condition:
            self._tokens += 1
            self._condition.notify_all()

    def wait(self, timeout: float) -> bool:
        with self._condition:
            if self._tokens == 0:
                self._condition.wait(timeout)
            if self._tokens:
                self._tokens -= 1
                return True
            return False


class WorkerThread(threading.Thread):
    """Takes messages from one queue's Huey storage and runs their tasks."""

    def __init__(self, runtime: QueueRuntime, index: int) -> None:
        self.runtime = runtime
        pool = runtime.pool
        self.worker_id = (
            f"{pool.host}-{pool.pid}-{runtime.queue.value}-{pool.run_id}-{index}"
        )
        super().__init__(name=f"chenu-{runtime.queue.value}-{index}", daemon=True)
        self.stop_event = threading.Event()
        storage = runtime.huey.storage
        #: A sorted set of its own that a Redis worker blocks on beside its
        #: queue, so that `request_stop` ends the wait at once.
        self.wake_key: str | None = None
        if isinstance(storage, RedisStorage):
            self.wake_key = f"{storage.queue_key}.wake.{self.worker_id}"
        self.current_task: str | None = None
        self.current_context: TaskContext | None = None
        self.since = time.time()
        self._lock = threading.Lock()

    def info(self, now: float) -> WorkerInfo:
        with self._lock:
            current = self.current_task
            since = self.since
        pool = self.runtime.pool
        if current:
            state = "busy"
        elif self.runtime.paused:
            state = "paused"
        else:
            state = "idle"
        return WorkerInfo(
            worker_id=self.worker_id,
            host=pool.host,
            pid=pool.pid,
            queue=self.runtime.queue,
            current_task=current,
            since=since,
            last_beat=now,
            state=state,
        )

    def begin_task(self, task_id: str, context: TaskContext) -> None:
        with self._lock:
            self.current_task = task_id
            self.current_context = context
            self.since = time.time()
        self.runtime.pool.engine.local_contexts[task_id] = context

    def request_stop(self) -> None:
        """Ask the worker to stop after its task, waking it from a blocking pop."""
        self.stop_event.set()
        if self.wake_key is None:
            return
        try:
            conn = self.runtime.huey.storage.conn
            conn.zadd(self.wake_key, {b"stop": 0})
            conn.expire(self.wake_key, _WAKE_KEY_TTL)
        except Exception:
            # It stops at the end of its current wait instead.
            logger.debug("waking worker %s failed", self.worker_id, exc_info=True)

    def _blocking_pop(self) -> bytes | None:
        """Wait up to REDIS_BLOCK_SECONDS for a message of the Redis queue.

        Returns the message without Huey's 8-byte prefix (as Huey's own
        dequeue does), or None on a timeout or a wake-up by `request_stop`.
        """
        storage = self.runtime.huey.storage
        try:
            popped = storage.conn.bzpopmin(
                [storage.queue_key, self.wake_key], timeout=REDIS_BLOCK_SECONDS
            )
        except redis.TimeoutError:
            # A socket timeout shorter than the block, set in the URL.
            return None
        if not popped:
            return None
        key, member, _ = popped
        if _text(key) != storage.queue_key:
            return None
        return member[8:]

    def end_task(self) -> None:
        with self._lock:
            task_id = self.current_task
            self.current_task = None
            self.current_context = None
            self.since = time.time()
        if task_id is not None:
            self.runtime.pool.engine.local_contexts.pop(task_id, None)

    def run(self) -> None:
        runtime = self.runtime
        huey = runtime.huey
        engine = runtime.pool.engine
        delay = _MIN_POLL
        throttle = ErrorThrottle(
            f"worker {self.worker_id} reading queue {runtime.queue.value}"
        )
        #: The time of a take whose reply was lost, so it may have claimed a task.
        unconfirmed: float | None = None
        #: True after a blocking pop found the Redis queue empty: the worker
        #: blocks again rather than sending a take that would find it empty too.
        waiting = False
        logger.debug("worker %s started", self.worker_id)
        while not self.stop_event.is_set():
            if runtime.paused:
                runtime.resumed.wait(0.5)
                continue
            now = engine.clock()
            try:
                if unconfirmed is not None:
                    recovered = self._recover_take(unconfirmed)
                    unconfirmed = None
                    if recovered is not None:
                        engine.runner.run_claimed(recovered.task_id, recovered, self)
                        continue
                popped = None
                if not waiting:
                    popped = engine.take(runtime.queue, self.worker_id, now)
            except Exception:
                if unconfirmed is None and isinstance(huey.storage, RedisStorage):
                    unconfirmed = now
                throttle.failed()
                self.stop_event.wait(min(5.0, delay * 10))
                delay = min(runtime.pool.poll_interval, delay * 2)
                continue
            if throttle.succeeded():
                runtime.pool.orphan_check.set()
            if popped is not None:
                delay = _MIN_POLL
                data, record = popped
                if record is not None:
                    self._run_task(record.task_id, record)
                else:
                    # Not claimed: a message that is not ours, one with an
                    # ETA, or a task that may not start. The general path
                    # records, reschedules or skips it.
                    self._handle_message(data)
                continue
            if not huey.storage.blocking:
                if runtime.wake.wait(delay):
                    delay = _MIN_POLL
                else:
                    delay = min(runtime.pool.poll_interval, delay * 2)
                continue
            # An empty Redis queue: block until a message arrives, then take
            # the general path with it.
            try:
                data = self._blocking_pop()
            except Exception:
                throttle.failed()
                self.stop_event.wait(min(5.0, delay * 10))
                delay = min(runtime.pool.poll_interval, delay * 2)
                continue
            waiting = data is None
            if data is not None:
                self._handle_message(data)
        if self.wake_key is not None:
            try:
                huey.storage.conn.delete(self.wake_key)
            except Exception:
                logger.debug("deleting the wake key of %s failed", self.worker_id)
        logger.debug("worker %s stopped", self.worker_id)

    def _recover_take(self, taken_at: float) -> TaskRecord | None:
        """Return the task a take with a lost reply claimed for this worker, if any."""
        ledger = self.runtime.pool.engine.ledger
        if not isinstance(ledger, RedisLedger):
            return None
        task_id = ledger.last_taken(self.worker_id)
        if task_id is None:
            return None
        record = ledger.get(task_id)
        if (
            record is None
            or record.status is not TaskStatus.RUNNING
            or record.worker != self.worker_id
            or record.started_at != taken_at
        ):
            return None
        logger.info(
            "worker %s: the claim of task %s applied though its reply was lost",
            self.worker_id,
            task_id,
        )
        return record

    def _handle_message(self, data: bytes) -> None:
        """Decode a popped message, then run, reschedule or record its task."""
        runtime = self.runtime
        huey = runtime.huey
        try:
            task = huey.deserialize_task(data)
        except Exception as exc:
            try:
                runtime.pool.engine.record_bad_message(runtime.queue, data, exc)
            except Exception:
                logger.exception(
                    "recording an undecodable message of queue %s failed",
                    runtime.queue.value,
                )
            return
        if runtime.paused:
            # A blocking pop that began before the pause: hand the message back.
            huey.enqueue(task)
            return
        if task.eta is not None and task.eta > dt.datetime.now(dt.timezone.utc).replace(
            tzinfo=None
        ):
            huey.add_schedule(task)
            return
        task_id = task.args[0] if task.args else None
        if not isinstance(task_id, str):
            logger.error(
                "worker %s dropped a message without a task id: %r",
                self.worker_id,
                task,
            )
            return
        self._run_task(task_id, None)

    def _run_task(self, task_id: str, record: TaskRecord | None) -> None:
        """Run a claimed task, or claim and run it when `record` is None."""
        runner = self.runtime.pool.engine.runner
        try:
            if record is None:
                runner.run(task_id, self)
            else:
                runner.run_claimed(task_id, record, self)
        except Exception:
            logger.exception("worker %s failed to run task %s", self.worker_id, task_id)


class SchedulerThread(threading.Thread):
    """Moves due messages from one queue's Huey schedule onto its queue."""

    def __init__(self, runtime: QueueRuntime) -> None:
        super().__init__(name=f"chenu-{runtime.queue.value}-scheduler", daemon=True)
        self.runtime = runtime
        self.stop_event = threading.Event()

    def run(self) -> None:
        runtime = self.runtime
        engine = runtime.pool.engine
        throttle = ErrorThrottle(f"reading the schedule of queue {runtime.queue.value}")
        while not self.stop_event.wait(_SCHEDULE_INTERVAL):
            try:
                due = runtime.huey.read_schedule(
                    dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
                )
            except Exception:
                throttle.failed()
                continue
            throttle.succeeded()
            for task in due:
                try:
                    runtime.huey.enqueue(task)
                except Exception:
                    logger.exception("enqueueing scheduled task %s failed", task.id)
                    continue
                task_id = task.args[0] if task.args else None
                if isinstance(task_id, str):
                    engine.writer.put(
                        Update(
                            task_id,
                            TaskStatus.PENDING,
                            expected=frozenset({TaskStatus.SCHEDULED}),
                        )
                    )
            if due:
                runtime.wake.notify_all()


class QueueRuntime:
    """The Huey instance of one queue, its workers and its scheduler."""

    def __init__(
        self, pool: WorkerPool, queue: TaskQueue, huey: Huey, size: int
    ) -> None:
        self.pool = pool
        self.queue = queue
        self.huey = huey
        self.size = size
        self.workers: list[WorkerThread] = []
        self.scheduler: SchedulerThread | None = None
        self.wake = WakeSignal()
        self.resumed = threading.Event()
        self.resumed.set()
        self._next_index = 0

    @property
    def paused(self) -> bool:
        return not self.resumed.is_set()

    def set_paused(self, paused: bool) -> None:
        if paused:
            self.resumed.clear()
        else:
            self.resumed.set()
            self.wake.notify_all()

    def start(self) -> None:
        if self.scheduler is None or not self.scheduler.is_alive():
            self.scheduler = SchedulerThread(self)
            self.scheduler.start()
        self.adjust()

    def adjust(self) -> list[WorkerThread]:
        """Start or stop workers to match `size`; return the ones asked to stop."""
        alive = [w for w in self.workers if w.is_alive() and not w.stop_event.is_set()]
        stopping: list[WorkerThread] = []
        while len(alive) < self.size:
            worker = WorkerThread(self, self._next_index)
            self._next_index += 1
            worker.start()
            alive.append(worker)
        while len(alive) > self.size:
            # Idle workers go first, so a shrink does not wait on running tasks.
            alive.sort(key=lambda w: w.current_task is not None)
            worker = alive.pop(0)
            worker.request_stop()
            stopping.append(worker)
        self.workers = alive + stopping
        self.wake.notify_all()
        return stopping

    def request_stop(self) -> None:
        for worker in self.workers:
            worker.request_stop()
        if self.scheduler is not None:
            self.scheduler.stop_event.set()
        self.wake.notify_all()
        self.resumed.set()

    def prune(self) -> list[WorkerThread]:
        """Forget stopped workers; return them so their heartbeats can be removed."""
        gone = [w for w in self.workers if not w.is_alive()]
        self.workers = [w for w in self.workers if w.is_alive()]
        return gone


class WorkerPool:
    """The worker threads of every queue in this process.

    Heartbeats, shared pause flags and cancel requests of running tasks are
    handled by one monitor thread.
    """

    def __init__(self, engine: Engine, sizes: dict[TaskQueue, int]) -> None:
        self.engine = engine
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.run_id = uuid.uuid4().hex[:6]
        self.poll_interval = engine.config.poll_interval
        self.heartbeat_interval = engine.config.heartbeat_interval
        self.heartbeat_timeout = engine.config.heartbeat_timeout
        self.runtimes = {
            queue: QueueRuntime(self, queue, engine.hueys[queue], sizes.get(queue, 0))
            for queue in TaskQueue
        }
        self._running = False
        self._lock = threading.Lock()
        self._monitor: threading.Thread | None = None
        self._monitor_stop = threading.Event()
        self.reaper = LostTaskReaper(engine)
        #: Set when a worker or the monitor reaches the backend again after
        #: failures. The monitor then requeues startable tasks without a message.
        self.orphan_check = threading.Event()

    @property
    def running(self) -> bool:
        return self._running

    def sizes(self) -> dict[TaskQueue, int]:
        return {queue: runtime.size for queue, runtime in self.runtimes.items()}

    def start(self, queues: set[TaskQueue] | None = None) -> None:
        """Start the workers of `queues` (all when None) and the monitor."""
        with self._lock:
            if self._running:
                return
            self._running = True
            self._sync_paused()
            # Tasks a killed earlier run left RUNNING are settled before new work starts.
            self._settle_lost()
            for queue, runtime in self.runtimes.items():
                if queues is not None and queue not in queues:
                    runtime.size = 0
                runtime.start()
            self._monitor_stop.clear()
            self._monitor = threading.Thread(
                target=self._monitor_loop, name="chenu-pool-monitor", daemon=True
            )
            self._monitor.start()
        logger.info(
            "worker pool started: %s",
            ", ".join(f"{q.value}={r.size}" for q, r in self.runtimes.items()),
        )
        self.publish_heartbeats()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop every worker, waiting up to `timeout` seconds for running tasks.

        Returns False if some worker was still running a task at the deadline;
        such threads are daemons and end with the process.
        """
        with self._lock:
            if not self._running:
                return True
            self._running = False
            for runtime in self.runtimes.values():
                runtime.request_stop()
            self._monitor_stop.set()
        deadline = time.monotonic() + timeout
        threads: list[threading.Thread] = []
        for runtime in self.runtimes.values():
            threads.extend(runtime.workers)
            if runtime.scheduler is not None:
                threads.append(runtime.scheduler)
        if self._monitor is not None:
            threads.append(self._monitor)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t for t in threads if t.is_alive()]
        ids = [w.worker_id for r in self.runtimes.values() for w in r.workers]
        try:
            self.engine.ledger.remove_workers(ids)
        except Exception:
            logger.exception("removing the heartbeats of stopped workers failed")
        for runtime in self.runtimes.values():
            runtime.workers = []
            runtime.scheduler = None
        if stuck:
            logger.warning(
                "worker pool stop timed out after %.1f s; still running: %s",
                timeout,
                ", ".join(t.name for t in stuck),
            )
            return False
        logger.info("worker pool stopped")
        return True

    def resize(self, queue: TaskQueue, size: int) -> None:
        """Set the worker count of one queue; running workers finish their task first.

        The count is this process's own; the audit entry names the host and pid.
        """
        queue = TaskQueue(queue)
        size = check_worker_count(queue, size)
        with self._lock:
            runtime = self.runtimes[queue]
            previous = runtime.size
            runtime.size = size
            if self._running:
                runtime.adjust()
        logger.info("queue %s resized to %d workers", queue.value, size)
        self.engine.audit.record(
            AuditAction.POOL_RESIZE,
            TARGET_QUEUE,
            queue.value,
            details={
                "old_workers": previous,
                "new_workers": size,
                "host": self.host,
                "pid": self.pid,
            },
        )

    def pause(self, queue: TaskQueue) -> None:
        """Stop taking work from the queue in every process; submits still go in."""
        queue = TaskQueue(queue)
        self.engine.ledger.set_paused(queue, True)
        self.runtimes[queue].set_paused(True)
        logger.info("queue %s paused", queue.value)
        self.engine.audit.record(AuditAction.QUEUE_PAUSE, TARGET_QUEUE, queue.value)

    def resume(self, queue: TaskQueue) -> None:
        queue = TaskQueue(queue)
        self.engine.ledger.set_paused(queue, False)
        self.runtimes[queue].set_paused(False)
        logger.info("queue %s resumed", queue.value)
        self.engine.audit.record(AuditAction.QUEUE_RESUME, TARGET_QUEUE, queue.value)

    def local_workers(self) -> list[WorkerThread]:
        return [w for r in self.runtimes.values() for w in r.workers if w.is_alive()]

    def publish_heartbeats(self) -> None:
        now = time.time()
        workers = [w.info(now) for w in self.local_workers()]
        self.engine.ledger.put_heartbeats(workers, self.heartbeat_timeout)

    def _sync_paused(self) -> None:
        paused = self.engine.ledger.paused_queues()
        for queue, runtime in self.runtimes.items():
            if (queue in paused) != runtime.paused:
                runtime.set_paused(queue in paused)

    def _check_cancel_requests(self) -> None:
        for task_id, context in list(self.engine.local_contexts.items()):
            if context.cancel_requested:
                continue
            record = self.engine.ledger.get(task_id)
            if record is not None and record.cancel_requested:
                logger.info("task %s: cancel requested, telling the task", task_id)
                context.request_cancel()

    def _settle_lost(self, raise_errors: bool = False) -> None:
        try:
            settled = self.reaper.settle()
        except Exception:
            if raise_errors:
                raise
            logger.exception("settling tasks of dead workers failed")
            return
        if settled:
            logger.warning("settled %d tasks of dead workers", len(settled))

    def _requeue_unqueued(self) -> None:
        try:
            requeued = self.reaper.requeue_unqueued(
                grace=_POP_GRACE, wait=self._monitor_stop.wait
            )
        except Exception:
            logger.exception("requeueing pending tasks without a queue message failed")
            return
        if requeued:
            logger.warning("enqueued %d pending tasks again", len(requeued))

    def _monitor_loop(self) -> None:
        next_beat = time.monotonic() + self.heartbeat_interval
        next_settle = time.monotonic() + self.heartbeat_interval * 2.5
        throttle = ErrorThrottle(
            "the worker pool monitor (heartbeats, pauses, cancels)"
        )
        # Reading every queued message takes a while on a big queue, so this runs
        # here rather than in start(): a second message for a task is harmless,
        # because only one claim of it succeeds.
        self._requeue_unqueued()
        while not self._monitor_stop.wait(min(0.5, self.heartbeat_interval)):
            try:
                self._sync_paused()
                self._check_cancel_requests()
                gone: list[WorkerThread] = []
                with self._lock:
                    for runtime in self.runtimes.values():
                        gone.extend(runtime.prune())
                if gone:
                    self.engine.ledger.remove_workers([w.worker_id for w in gone])
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + self.heartbeat_interval
                    self.publish_heartbeats()
                if time.monotonic() >= next_settle:
                    next_settle = time.monotonic() + self.heartbeat_interval * 2.5
                    self._settle_lost(raise_errors=True)
                if self.orphan_check.is_set():
                    self.orphan_check.clear()
                    self._requeue_orphans()
                if throttle.succeeded():
                    # Heartbeats of other processes may have expired in the
                    # outage: give them a timeout to beat before any settling.
                    next_settle = time.monotonic() + self.heartbeat_timeout
                    self.orphan_check.set()
            except Exception:
                throttle.failed()

    def _requeue_orphans(self) -> None:
        try:
            requeued = requeue_orphans(self.engine)
        except Exception:
            self.orphan_check.set()
            raise
        if requeued:
            logger.warning(
                "requeued %d tasks whose queue message was lost", len(requeued)
            )
