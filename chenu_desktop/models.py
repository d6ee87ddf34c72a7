"""Queues, priorities, statuses and the records the ledger stores."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Any


class TaskQueue(str, enum.Enum):
    """The five queues. Each one is a Huey instance with its own workers."""

    GOVERNANCE = "governance"
    HIGH = "high"
    DEFAULT = "default"
    LOW = "low"
    SCHEDULED = "scheduled"

    def __str__(self) -> str:
        return self.value


class TaskPriority(enum.IntEnum):
    """Priority inside a queue: a lower number runs first (0 to 9)."""

    CRITICAL = 0
    HIGH = 3
    NORMAL = 6
    LOW = 9


MIN_PRIORITY = 0
MAX_PRIORITY = 9


class TaskStatus(str, enum.Enum):
    """The stage of a task's life. The last six statuses are final."""

    PENDING = "pending"
    SCHEDULED = "scheduled"
    AWAITING_APPROVAL = "awaiting_approval"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    LOST = "lost"

    def __str__(self) -> str:
        return self.value

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        TaskStatus.SUCCESS,
        TaskStatus.FAILURE,
        TaskStatus.CANCELLED,
        TaskStatus.REJECTED,
        TaskStatus.EXPIRED,
        TaskStatus.LOST,
    }
)
#: Statuses a worker may start a task from.
STARTABLE_STATUSES = frozenset(
    {TaskStatus.PENDING, TaskStatus.SCHEDULED, TaskStatus.RETRYING}
)
#: Statuses an operator may cancel at once, before any worker runs the task.
WAITING_STATUSES = STARTABLE_STATUSES | {TaskStatus.AWAITING_APPROVAL}
#: Statuses from which `retry` creates a new task.
RETRYABLE_STATUSES = frozenset(
    {
        TaskStatus.FAILURE,
        TaskStatus.CANCELLED,
        TaskStatus.EXPIRED,
        TaskStatus.LOST,
        TaskStatus.REJECTED,
    }
)


class TaskSort(str, enum.Enum):
    """A key `list_tasks` orders records by.

    Records with equal keys are ordered by ``created_at``, then by
    ``task_id``, in the same direction as the key. A missing value (a task
    not started, or one without a stored duration) sorts below every value.
    Text keys (name, queue, status) compare their stored values by code point.
    """

    CREATED = "created"
    STARTED = "started"
    #: ``finished_at - started_at``; None while a task runs or before it starts.
    DURATION = "duration"
    ATTEMPTS = "attempts"
    PRIORITY = "priority"
    TASK_NAME = "task_name"
    QUEUE = "queue"
    STATUS = "status"

    def __str__(self) -> str:
        return self.value


def to_datetime(timestamp: float | None) -> dt.datetime | None:
    """Convert a stored POSIX timestamp to an aware UTC datetime."""
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc)


@dataclasses.dataclass
class TaskRecord:
    """One task in the ledger. Times are POSIX timestamps in seconds (UTC).

    The ``*_time`` properties give the same times as aware datetimes.
    """

    task_id: str
    task_name: str
    queue: TaskQueue
    priority: int
    status: TaskStatus
    args: list[Any] = dataclasses.field(default_factory=list)
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    result: Any = None
    error: str | None = None
    traceback: str | None = None
    attempts: int = 0
    max_retries: int = 0
    created_at: float = 0.0
    eta: float | None = None
    expires_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    next_attempt_at: float | None = None
    worker: str | None = None
    retry_of: str | None = None
    retried_as: str | None = None
    requires_governance: bool = False
    requeue_on_loss: bool = False
    approved_by: str | None = None
    approved_at: float | None = None
    approval_reason: str | None = None
    cancel_requested: bool = False
    progress: float | None = None
    progress_message: str | None = None
    updated_at: float = 0.0
    #: Each status the task entered, with its time: ``[[status, at], ...]``.
    history: list[list[Any]] = dataclasses.field(default_factory=list)

    @property
    def duration_seconds(self) -> float | None:
        """Run time of the last attempt, or so far while it runs."""
        if self.started_at is None:
            return None
        if self.finished_at is None:
            if self.status is TaskStatus.RUNNING:
                return max(0.0, dt.datetime.now().timestamp() - self.started_at)
            return None
        return max(0.0, self.finished_at - self.started_at)

    @property
    def created_time(self) -> dt.datetime | None:
        return to_datetime(self.created_at)

    @property
    def started_time(self) -> dt.datetime | None:
        return to_datetime(self.started_at)

    @property
    def finished_time(self) -> dt.datetime | None:
        return to_datetime(self.finished_at)

    @property
    def eta_time(self) -> dt.datetime | None:
        return to_datetime(self.eta)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict, with enums as their string values."""
        data = dataclasses.asdict(self)
        data["queue"] = self.queue.value
        data["status"] = self.status.value
        data["duration_seconds"] = self.duration_seconds
        return data


@dataclasses.dataclass(frozen=True)
class TaskFilter:
    """Criteria for `list_tasks`; every field left as None matches all.

    ``text`` matches a task id by prefix (case-sensitive), and a task name or
    an error message by case-insensitive substring. Error messages are
    searched only for texts of three or more characters (a trigram index),
    and on Redis only in their first 500 characters. ``created_after`` and
    ``created_before`` bound the creation time (POSIX seconds, inclusive).
    """

    status: TaskStatus | None = None
    queue: TaskQueue | None = None
    task_name: str | None = None
    text: str | None = None
    created_after: float | None = None
    created_before: float | None = None


@dataclasses.dataclass(frozen=True)
class Change:
    """One entry of the change feed: the task and the status it moved to."""

    seq: int
    task_id: str
    queue: TaskQueue
    status: TaskStatus
    at: float
    deleted: bool = False


@dataclasses.dataclass(frozen=True)
class ChangeBatch:
    """The changes after a sequence number.

    ``reset`` is true when the feed no longer contains every change after the
    requested number, so a follower must reload what it shows.
    """

    changes: list[Change]
    last_seq: int
    reset: bool = False


@dataclasses.dataclass
class WorkerInfo:
    """A worker's heartbeat as stored in the ledger."""

    worker_id: str
    host: str
    pid: int
    queue: TaskQueue
    current_task: str | None
    since: float
    last_beat: float
    state: str = "idle"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["queue"] = self.queue.value
        return data


@dataclasses.dataclass
class QueueStats:
    """Figures for one queue: status counts, recent rates and the pool."""

    queue: TaskQueue
    counts: dict[TaskStatus, int]
    succeeded_last_hour: int
    failed_last_hour: int
    throughput_per_minute: list[int]
    mean_duration: float | None
    p95_duration: float | None
    oldest_waiting_age: float | None
    workers_busy: int
    workers_total: int
    paused: bool

    def count(self, status: TaskStatus) -> int:
        return self.counts.get(status, 0)

    @property
    def pending(self) -> int:
        return self.count(TaskStatus.PENDING)

    @property
    def scheduled(self) -> int:
        return self.count(TaskStatus.SCHEDULED)

    @property
    def running(self) -> int:
        return self.count(TaskStatus.RUNNING)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["queue"] = self.queue.value
        data["counts"] = {s.value: n for s, n in self.counts.items()}
        return data
