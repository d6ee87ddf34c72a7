"""The ledger interface: task records, counters, the change feed and heartbeats.

Huey keeps only queues and results, so every record of what a task did lives
here. Two implementations share this interface: `SqliteLedger` (the embedded
default) and `RedisLedger` (shared by processes on several machines).

Every mutation is atomic: a record's status, the per-queue status counters,
the secondary indexes and the change feed move together, so counters always
match the records.
"""

from __future__ import annotations

import abc
import bisect
import dataclasses
import json
import math
from typing import Any, Collection, Iterable, Sequence

from ..models import (
    ChangeBatch,
    QueueStats,
    TaskFilter,
    TaskQueue,
    TaskRecord,
    TaskSort,
    TaskStatus,
    WorkerInfo,
)

#: Upper bounds in seconds of the duration histogram kept per queue and minute.
#: The last bucket (index len(DURATION_BUCKETS)) counts everything longer.
DURATION_BUCKETS: tuple[float, ...] = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5,
    1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip

#: Minutes of per-minute figures `recent_stats` reports and ledgers keep (2 days).
STATS_RETENTION_MINUTES = 2 * 24 * 60

#: Record fields an update may set: all but the id, the name, the queue, the
#: status and the status history, which the ledger appends to itself.
UPDATABLE_FIELDS = frozenset(
    f.name
    for f in dataclasses.fields(TaskRecord)
    if f.name not in {"task_id", "task_name", "queue", "status", "history"}
)


def duration_bucket(seconds: float) -> int:
    """Return the histogram bucket index for a duration in seconds."""
    return bisect.bisect_left(DURATION_BUCKETS, seconds)


def percentile_from_histogram(
    histogram: Sequence[int], fraction: float
) -> float | None:
    """Estimate a percentile as the upper bound of the bucket that reaches it.

    An estimate: the true value lies in that bucket, at most the returned bound.
    """
    total = sum(histogram)
    if total == 0:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(histogram):
        seen += count
        if seen >= rank:
            if index < len(DURATION_BUCKETS):
                return DURATION_BUCKETS[index]
            return DURATION_BUCKETS[-1]
    return DURATION_BUCKETS[-1]


@dataclasses.dataclass(frozen=True)
class Update:
    """One atomic change to a record, applied only if its status is in `expected`.

    Args:
        task_id: The record to change.
        status: The new status, or None to keep it.
        fields: New values for fields in `UPDATABLE_FIELDS`.
        expected: Statuses the record must have for the update to apply;
            None applies it whatever the status.
        increment_attempts: Add one to ``attempts`` in the same step.
        require_no_cancel: Apply only if ``cancel_requested`` is false.
    """

    task_id: str
    status: TaskStatus | None = None
    fields: dict[str, Any] = dataclasses.field(default_factory=dict)
    expected: frozenset[TaskStatus] | None = None
    increment_attempts: bool = False
    require_no_cancel: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.fields) - UPDATABLE_FIELDS
        if unknown:
            raise ValueError(f"cannot update fields {sorted(unknown)}")


@dataclasses.dataclass
class RecentStats:
    """Finished-task figures for one queue over the recent minutes."""

    succeeded_last_hour: int
    failed_last_hour: int
    throughput_per_minute: list[int]
    mean_duration: float | None
    p95_duration: float | None


def check_sort(ledger: Ledger, sort: TaskSort) -> TaskSort:
    """Return `sort` as a `TaskSort`; raise ValueError if the ledger cannot sort by it."""
    try:
        key = TaskSort(sort)
    except ValueError:
        key = None
    if key is None or key not in ledger.sort_keys:
        choices = ", ".join(sorted(k.value for k in ledger.sort_keys))
        raise ValueError(f"invalid sort key {sort!r}: use one of {choices}")
    return key


#: One encoder for every stored value: `json.dumps` with options builds a new
#: one per call, which showed up in profiles of submits and claims.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def encode_json(value: Any) -> str:
    """Encode a value for storage; raises TypeError or ValueError if not JSON."""
    if value is None:
        return "null"
    # Most stored fields are plain numbers and flags. These branches give the
    # text the encoder would, without its per-call set-up.
    kind = type(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    return _ENCODER.encode(value)


def storable_text(text: str) -> str:
    """Return `text` with lone surrogates as backslash escapes, so it encodes as UTF-8.

    Task code produces such text from undecodable bytes (file names, output
    of other programs), and the ledger stores only valid UTF-8.
    """
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


#: Every field of a record, in declaration order.
RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TaskRecord))


def encode_fields(values: dict[str, Any]) -> dict[str, str]:
    """Encode record fields as JSON strings, one per field (for hash storage)."""
    encoded = {}
    for name, value in values.items():
        if isinstance(value, (TaskQueue, TaskStatus)):
            value = value.value
        encoded[name] = encode_json(value)
    return encoded


def decode_record(encoded: dict[str, str]) -> TaskRecord:
    """Build a record from `encode_fields` output; missing fields keep defaults."""
    # Each value is one JSON text, so the fields join into one JSON object:
    # one parse of it takes half the time of a parse per field.
    members = ",".join(
        f'"{name}":{encoded[name]}' for name in RECORD_FIELDS if name in encoded
    )
    values = json.loads("{" + members + "}")
    values["queue"] = TaskQueue(values["queue"])
    values["status"] = TaskStatus(values["status"])
    return TaskRecord(**values)


_CLAIMABLE = frozenset({TaskStatus.PENDING, TaskStatus.SCHEDULED, TaskStatus.RETRYING})


def claim_update(task_id: str, worker_id: str, now: float) -> Update:
    """Return the update of a claim: see `Ledger.claim`."""
    return Update(
        task_id,
        TaskStatus.RUNNING,
        {
            "started_at": now,
            "finished_at": None,
            "worker": worker_id,
            "next_attempt_at": None,
            "progress": None,
            "progress_message": None,
        },
        expected=_CLAIMABLE,
        increment_attempts=True,
        require_no_cancel=True,
    )


class Ledger(abc.ABC):
    """Storage of task records shared by every process on one backend."""

    #: "sqlite" or "redis".
    backend_name: str = ""
    #: The keys `list_tasks` can sort by.
    sort_keys: frozenset[TaskSort] = frozenset(TaskSort)

    # --- records ---------------------------------------------------------

    @abc.abstractmethod
    def insert(self, record: TaskRecord) -> None:
        """Store a new record, count it and append it to the change feed.

        Raises:
            ValueError: A record with this id exists already.
        """

    @abc.abstractmethod
    def get(self, task_id: str) -> TaskRecord | None:
        """Return the record, or None if no task has this id."""

    @abc.abstractmethod
    def apply(self, updates: Sequence[Update], now: float) -> list[TaskRecord | None]:
        """Apply updates in order, each atomically, and return the results.

        An update applies when the record exists, its status is in
        ``expected`` (or ``expected`` is None) and ``require_no_cancel`` is
        not violated. Applying it sets the fields, the status and
        ``updated_at`` (to `now`), moves the status counters and adds a
        change to the feed; a new status is also appended to ``history`` as
        ``[status, now]``. The updated record is returned in its position.
        An update that does not apply leaves the record untouched and
        returns None there.

        A move from RUNNING to SUCCESS or FAILURE also adds the task to the
        per-minute figures of its queue, in the minute of ``finished_at``,
        with the duration ``finished_at - started_at``.
        """

    def write(self, updates: Sequence[Update], now: float) -> None:
        """Apply updates as `apply` does, without reading the records back.

        For callers that need no results, such as the batched worker events;
        a ledger may do it with less work than `apply`.
        """
        self.apply(updates, now)

    def update(self, update: Update, now: float) -> TaskRecord | None:
        """Apply one update; see `apply`."""
        return self.apply([update], now)[0]

    def claim(self, task_id: str, worker_id: str, now: float) -> TaskRecord | None:
        """Mark a startable task RUNNING for this worker, atomically.

        Returns the record, or None if the task is missing, not in a
        startable status or has a cancel request, in which case it must not run.
        """
        return self.update(claim_update(task_id, worker_id, now), now)

    @abc.abstractmethod
    def list_tasks(
        self,
        task_filter: TaskFilter,
        limit: int = 50,
        offset: int = 0,
        ascending: bool = False,
        sort: TaskSort = TaskSort.CREATED,
    ) -> list[TaskRecord]:
        """Return one page of matching records, the largest `sort` key first.

        The default is newest ``created_at`` first. Records with equal keys
        are ordered by ``created_at``, then by ``task_id``, both descending,
        so consecutive pages never repeat or skip a record that did not
        change. With `ascending`, the whole order is reversed. See
        `TaskSort` for how each key compares.

        Status and queue filters, in any combination with any key, are served
        from indexes in the key's order, with no sort of all matches. The
        cost grows with offset + limit (on SQLite, divided by the queue's
        share of the rows when a queue filter meets a key other than
        creation, queue or status), not with the number of records. So does
        the default key with every filter.

        Raises:
            ValueError: `sort` is not in `sort_keys`.
        """

    @abc.abstractmethod
    def count_tasks(self, task_filter: TaskFilter) -> int:
        """Return how many records match."""

    @abc.abstractmethod
    def task_ids(self, status: TaskStatus, limit: int) -> list[str]:
        """Return the ids of up to `limit` records in `status`, newest first.

        Cheaper than `list_tasks` for checks that need the ids only.
        """

    @abc.abstractmethod
    def delete_finished_before(self, cutoff: float, limit: int = 1000) -> list[str]:
        """Delete up to `limit` records in a final status finished before `cutoff`.

        Counters move and each deletion appears in the change feed with
        ``deleted=True``. Returns the deleted ids; call again until it
        returns fewer than `limit`.
        """

    # --- counters and figures --------------------------------------------

    @abc.abstractmethod
    def status_counts(self) -> dict[TaskQueue, dict[TaskStatus, int]]:
        """Return the current count of records per queue and status (O(1))."""

    @abc.abstractmethod
    def oldest_created(self, queue: TaskQueue, status: TaskStatus) -> float | None:
        """Return the earliest ``created_at`` among the queue's records in `status`."""

    @abc.abstractmethod
    def recent_stats(
        self, queue: TaskQueue, now: float, minutes: int = 15
    ) -> RecentStats:
        """Return finished-task figures of the queue.

        ``throughput_per_minute`` lists the tasks finished in each of the
        last `minutes` whole minutes, oldest first, the current minute last.
        Mean and p95 durations are over the last hour.
        """

    # --- change feed -----------------------------------------------------

    @abc.abstractmethod
    def changes(self, since: int, limit: int = 1000) -> ChangeBatch:
        """Return the changes with a sequence number above `since`, oldest first.

        At most `limit` changes; ``last_seq`` is the number of the last one
        returned (or the current last when none is newer). ``reset`` is true
        when changes after `since` were already trimmed, or when `since` is
        past the newest change (the feed was wiped or belongs elsewhere).
        """

    @abc.abstractmethod
    def last_seq(self) -> int:
        """Return the sequence number of the newest change (0 when none)."""

    # --- workers and queue control --------------------------------------

    @abc.abstractmethod
    def put_heartbeats(self, workers: Iterable[WorkerInfo], ttl: float) -> None:
        """Store the workers' heartbeats; each expires `ttl` seconds after its beat."""

    @abc.abstractmethod
    def list_workers(self, now: float) -> list[WorkerInfo]:
        """Return every worker whose heartbeat has not expired."""

    @abc.abstractmethod
    def remove_workers(self, worker_ids: Collection[str]) -> None:
        """Delete the heartbeats of stopped workers."""

    @abc.abstractmethod
    def set_paused(self, queue: TaskQueue, paused: bool) -> None:
        """Store whether the queue is paused, for every process on this backend."""

    @abc.abstractmethod
    def paused_queues(self) -> set[TaskQueue]:
        """Return the queues that are paused."""

    # --- lifetime -------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; the ledger is unusable afterwards."""

    def queue_stats(
        self,
        now: float,
        workers: Sequence[WorkerInfo],
        paused: Collection[TaskQueue],
    ) -> dict[TaskQueue, QueueStats]:
        """Combine counters, recent figures and heartbeats into per-queue stats."""
        counts = self.status_counts()
        return {
            queue: queue_stats_of(
                queue,
                counts,
                self.recent_stats(queue, now),
                self.oldest_created(queue, TaskStatus.PENDING),
                now,
                workers,
                paused,
            )
            for queue in TaskQueue
        }


def queue_stats_of(
    queue: TaskQueue,
    counts: dict[TaskQueue, dict[TaskStatus, int]],
    recent: RecentStats,
    oldest_pending: float | None,
    now: float,
    workers: Sequence[WorkerInfo],
    paused: Collection[TaskQueue],
) -> QueueStats:
    """Return the stats of one queue from the figures `Ledger.queue_stats` reads."""
    queue_workers = [w for w in workers if w.queue is queue]
    return QueueStats(
        queue=queue,
        counts=dict(counts.get(queue, {})),
        succeeded_last_hour=recent.succeeded_last_hour,
        failed_last_hour=recent.failed_last_hour,
        throughput_per_minute=recent.throughput_per_minute,
        mean_duration=recent.mean_duration,
        p95_duration=recent.p95_duration,
        oldest_waiting_age=(
            None if oldest_pending is None else max(0.0, now - oldest_pending)
        ),
        workers_busy=sum(1 for w in queue_workers if w.state == "busy"),
        workers_total=len(queue_workers),
        paused=queue in paused,
    )
