"""The `Ledger` contract, run against every backend on real storage.

Each test gets a fresh ledger: an SQLite file in the test's folder, or an
empty database on the session's redis-server.
"""

from __future__ import annotations

import dataclasses
import math
import random
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from chenu_desktop.ledger.base import Ledger, Update
from chenu_desktop.ledger.redis_ledger import RedisLedger
from chenu_desktop.models import (
    TaskFilter,
    TaskQueue,
    TaskRecord,
    TaskSort,
    TaskStatus,
    WorkerInfo,
)

#: A fixed time for the records of the tests (November 2023, in POSIX seconds).
T0 = 1_700_000_000.0

PENDING = TaskStatus.PENDING
RUNNING = TaskStatus.RUNNING
SUCCESS = TaskStatus.SUCCESS
FAILURE = TaskStatus.FAILURE
STARTABLE = frozenset({TaskStatus.PENDING, TaskStatus.SCHEDULED, TaskStatus.RETRYING})

LedgerFactory = Callable[..., Ledger]


@pytest.fixture(params=["sqlite", "redis"])
def make_ledger(request: pytest.FixtureRequest) -> Iterator[LedgerFactory]:
    """Return a factory of ledgers that all share this test's storage."""
    opened: list[Ledger] = []
    if request.param == "sqlite":
        from chenu_desktop.ledger.sqlite_ledger import SqliteLedger

        path: Path = request.getfixturevalue("sqlite_path")

        def make(**options: Any) -> Ledger:
            opened.append(SqliteLedger(path, **options))
            return opened[-1]

    else:
        url: str = request.getfixturevalue("redis_url")

        def make(**options: Any) -> Ledger:
            opened.append(RedisLedger(redis.Redis.from_url(url), "contract", **options))
            return opened[-1]

    yield make
    for ledger in opened:
        ledger.close()


@pytest.fixture
def ledger(make_ledger: LedgerFactory) -> Ledger:
    return make_ledger()


def make_record(
    task_id: str,
    *,
    name: str = "reports.build",
    queue: TaskQueue = TaskQueue.DEFAULT,
    status: TaskStatus = PENDING,
    created_at: float = T0,
    **fields: Any,
) -> TaskRecord:
    fields.setdefault("updated_at", created_at)
    return TaskRecord(
        task_id=task_id,
        task_name=name,
        queue=queue,
        priority=6,
        status=status,
        created_at=created_at,
        **fields,
    )


def nonzero(
    counts: dict[TaskQueue, dict[TaskStatus, int]],
) -> dict[Any, dict[Any, int]]:
    """Drop zero counts, which a backend may or may not report."""
    cleaned = {q: {s: n for s, n in by.items() if n} for q, by in counts.items()}
    return {q: by for q, by in cleaned.items() if by}


def newest_first(records: list[TaskRecord]) -> list[str]:
    ordered = sorted(records, key=lambda r: (r.created_at, r.task_id), reverse=True)
    return [r.task_id for r in ordered]


def matches(record: TaskRecord, task_filter: TaskFilter) -> bool:
    """Return whether a record matches, as `TaskFilter` documents it."""
    if task_filter.status is not None and record.status is not task_filter.status:
        return False
    if task_filter.queue is not None and record.queue is not task_filter.queue:
        return False
    if task_filter.task_name is not None and record.task_name != task_filter.task_name:
        return False
    if (
        task_filter.created_after is not None
        and record.created_at < task_filter.created_after
    ):
        return False
    if (
        task_filter.created_before is not None
        and record.created_at > task_filter.created_before
    ):
        return False
    if not task_filter.text:
        return True
    folded = task_filter.text.casefold()
    return (
        record.task_id.startswith(task_filter.text)
        or folded in record.task_name.casefold()
        or (record.error is not None and folded in record.error.casefold())
    )


def list_all(
    ledger: Ledger, task_filter: TaskFilter, page: int, ascending: bool = False
) -> list[str]:
    """Return the ids of every match, read page by page."""
    ids: list[str] = []
    while True:
        batch = ledger.list_tasks(
            task_filter, limit=page, offset=len(ids), ascending=ascending
        )
        ids += [r.task_id for r in batch]
        if len(batch) < page:
            return ids


# --- insert and get -----------------------------------------------------


def test_round_trip_every_field(ledger: Ledger) -> None:
    record = TaskRecord(
        task_id="täsk-🚀-1",
        task_name="rapports.générer",
        queue=TaskQueue.HIGH,
        priority=3,
        status=TaskStatus.RETRYING,
        args=[1, "zwei", [3.5, None], {"schlüssel": "wert"}],
        kwargs={"name": "Zoë", "nested": {"a": [1, 2]}, "flag": True},
        result={"total": 12, "text": "日本語のテキスト"},
        error="ValueError: значение «x» недопустимо",
        traceback='Traceback (most recent call last):\n  File "x.py", line 1\n\t"boom"\\',
        attempts=2,
        max_retries=5,
        created_at=T0 + 0.123456,
        eta=T0 + 60.5,
        started_at=T0 + 1.25,
        finished_at=T0 + 2.5,
        next_attempt_at=T0 + 30.0,
        worker="host-1:42:worker-0",
        retry_of="täsk-🚀-0",
        retried_as="täsk-🚀-2",
        requires_governance=True,
        approved_by="Ana María",
        approved_at=T0 + 0.5,
        approval_reason="vérifié ✓",
        cancel_requested=True,
        progress=0.75,
        progress_message="75 % — fast fertig",
        updated_at=T0 + 3.0,
    )
    ledger.insert(record)

    stored = ledger.get(record.task_id)

    assert stored is not None
    for field in dataclasses.fields(TaskRecord):
        assert getattr(stored, field.name) == getattr(record, field.name), field.name
    assert type(stored.queue) is TaskQueue
    assert type(stored.status) is TaskStatus


def test_round_trip_defaults(ledger: Ledger) -> None:
    record = TaskRecord("plain-1", "reports.build", TaskQueue.LOW, 9, PENDING)
    ledger.insert(record)

    assert ledger.get("plain-1") == record


def test_get_missing(ledger: Ledger) -> None:
    assert ledger.get("missing") is None


def test_insert_duplicate_raises(ledger: Ledger) -> None:
    ledger.insert(make_record("dup-1"))
    seq = ledger.last_seq()

    with pytest.raises(ValueError):
        ledger.insert(make_record("dup-1", name="other.task", status=RUNNING))

    assert ledger.get("dup-1") == make_record("dup-1")
    assert nonzero(ledger.status_counts()) == {TaskQueue.DEFAULT: {PENDING: 1}}
    assert ledger.last_seq() == seq


def test_insert_counts_and_feed(ledger: Ledger) -> None:
    ledger.insert(make_record("new-1", queue=TaskQueue.HIGH))

    batch = ledger.changes(0)

    assert nonzero(ledger.status_counts()) == {TaskQueue.HIGH: {PENDING: 1}}
    assert len(batch.changes) == 1
    change = batch.changes[0]
    assert change.task_id == "new-1"
    assert change.queue is TaskQueue.HIGH
    assert change.status is PENDING
    assert change.at == T0
    assert change.deleted is False
    assert batch.last_seq == change.seq


def test_insert_visible_to_other_ledger(make_ledger: LedgerFactory) -> None:
    writer = make_ledger()
    reader = make_ledger()
    writer.insert(make_record("shared-1"))

    assert reader.get("shared-1") == make_record("shared-1")
    assert reader.last_seq() == writer.last_seq()


# --- apply, update and claim --------------------------------------------


def test_apply_expected_matches(ledger: Ledger) -> None:
    ledger.insert(make_record("a-1"))
    seq = ledger.last_seq()

    [result] = ledger.apply(
        [Update("a-1", RUNNING, {"worker": "w-1"}, expected=frozenset({PENDING}))],
        now=T0 + 5,
    )

    assert result is not None
    assert result.status is RUNNING
    assert result.worker == "w-1"
    assert result.updated_at == T0 + 5
    assert ledger.get("a-1") == result
    assert nonzero(ledger.status_counts()) == {TaskQueue.DEFAULT: {RUNNING: 1}}
    [change] = ledger.changes(seq).changes
    assert change.task_id == "a-1"
    assert change.status is RUNNING
    assert change.at == T0 + 5
    assert change.seq == seq + 1


def test_apply_expected_mismatch(ledger: Ledger) -> None:
    ledger.insert(make_record("a-1"))
    seq = ledger.last_seq()

    results = ledger.apply(
        [Update("a-1", SUCCESS, {"worker": "w-1"}, expected=frozenset({RUNNING}))],
        now=T0 + 5,
    )

    assert results == [None]
    assert ledger.get("a-1") == make_record("a-1")
    assert nonzero(ledger.status_counts()) == {TaskQueue.DEFAULT: {PENDING: 1}}
    assert ledger.last_seq() == seq


def test_apply_expected_none(ledger: Ledger) -> None:
    ledger.insert(make_record("a-1", status=FAILURE, finished_at=T0 + 1))

    result = ledger.update(Update("a-1", PENDING, {"finished_at": None}), now=T0 + 5)

    assert result is not None
    assert result.status is PENDING
    assert result.finished_at is None


def test_apply_expected_empty(ledger: Ledger) -> None:
    ledger.insert(make_record("a-1"))

    results = ledger.apply([Update("a-1", RUNNING, expected=frozenset())], now=T0 + 5)

    assert results == [None]


def test_apply_missing_task(ledger: Ledger) -> None:
    assert ledger.apply([Update("missing", RUNNING)], now=T0) == [None]
    assert ledger.last_seq() == 0


def test_apply_empty_list(ledger: Ledger) -> None:
    assert ledger.apply([], now=T0) == []


def test_apply_keeps_status(ledger: Ledger) -> None:
    ledger.insert(make_record("a-1", status=RUNNING))
    seq = ledger.last_seq()

    result = ledger.update(
        Update("a-1", fields={"progress": 0.5, "progress_message": "halfway"}),
        now=T0 + 2,
    )

    assert result is not None
    assert result.status is RUNNING
    assert result.progress == 0.5
    assert result.progress_message == "halfway"
    assert nonzero(ledger.status_counts()) == {TaskQueue.DEFAULT: {RUNNING: 1}}
    [change] = ledger.changes(seq).changes
    assert change.status is RUNNING


def test_apply_in_order(ledger: Ledger) -> None:
    ledger.insert(make_record("a-1"))
    ledger.insert(make_record("b-1"))

    results = ledger.apply(
        [
            Update("a-1", RUNNING, expected=frozenset({PENDING})),
            Update(
                "a-1", SUCCESS, {"finished_at": T0 + 3}, expected=frozenset({RUNNING})
            ),
            Update("missing", RUNNING),
            Update("b-1", SUCCESS, expected=frozenset({RUNNING})),
            Update("b-1", TaskStatus.CANCELLED, expected=frozenset({PENDING})),
        ],
        now=T0 + 3,
    )

    assert [r.status if r else None for r in results] == [
        RUNNING,
        SUCCESS,
        None,
        None,
        TaskStatus.CANCELLED,
    ]
    assert nonzero(ledger.status_counts()) == {
        TaskQueue.DEFAULT: {SUCCESS: 1, TaskStatus.CANCELLED: 1}
    }
    assert [c.status for c in ledger.changes(2).changes] == [
        RUNNING,
        SUCCESS,
        TaskStatus.CANCELLED,
    ]


def test_apply_require_no_cancel(ledger: Ledger) -> None:
    ledger.insert(make_record("cancelled-1", cancel_requested=True))
    ledger.insert(make_record("plain-1"))

    results = ledger.apply(
        [
            Update("cancelled-1", RUNNING, require_no_cancel=True),
            Update("plain-1", RUNNING, require_no_cancel=True),
        ],
        now=T0 + 1,
    )

    assert results[0] is None
    assert results[1] is not None
    assert ledger.get("cancelled-1") == make_record(
        "cancelled-1", cancel_requested=True
    )


def test_apply_increment_attempts(ledger: Ledger) -> None:
    ledger.insert(make_record("a-1", attempts=2))

    result = ledger.update(Update("a-1", increment_attempts=True), now=T0 + 1)

    assert result is not None
    assert result.attempts == 3
    assert ledger.get("a-1") == result


def test_apply_sets_cancel_request(ledger: Ledger) -> None:
    ledger.insert(make_record("a-1"))

    ledger.update(Update("a-1", fields={"cancel_requested": True}), now=T0 + 1)

    assert ledger.claim("a-1", "w-1", now=T0 + 2) is None


def test_update_unknown_field_raises() -> None:
    with pytest.raises(ValueError):
        Update("a-1", fields={"queue": TaskQueue.LOW})


@pytest.mark.parametrize("status", sorted(STARTABLE))
def test_claim_startable(ledger: Ledger, status: TaskStatus) -> None:
    ledger.insert(
        make_record(
            "c-1",
            status=status,
            attempts=1,
            finished_at=T0 + 1,
            next_attempt_at=T0 + 9,
            progress=0.4,
            progress_message="old",
        )
    )

    claimed = ledger.claim("c-1", "worker-7", now=T0 + 10)

    assert claimed is not None
    assert claimed.status is RUNNING
    assert claimed.worker == "worker-7"
    assert claimed.started_at == T0 + 10
    assert claimed.finished_at is None
    assert claimed.next_attempt_at is None
    assert claimed.progress is None
    assert claimed.progress_message is None
    assert claimed.attempts == 2
    assert claimed.updated_at == T0 + 10
    assert ledger.get("c-1") == claimed
    assert nonzero(ledger.status_counts()) == {TaskQueue.DEFAULT: {RUNNING: 1}}


@pytest.mark.parametrize(
    "status", [RUNNING, TaskStatus.AWAITING_APPROVAL, SUCCESS, TaskStatus.CANCELLED]
)
def test_claim_not_startable(ledger: Ledger, status: TaskStatus) -> None:
    ledger.insert(make_record("c-1", status=status))

    assert ledger.claim("c-1", "worker-7", now=T0 + 10) is None
    assert ledger.get("c-1") == make_record("c-1", status=status)


def test_claim_cancel_requested(ledger: Ledger) -> None:
    ledger.insert(make_record("c-1", cancel_requested=True))

    assert ledger.claim("c-1", "worker-7", now=T0 + 10) is None
    assert ledger.get("c-1") == make_record("c-1", cancel_requested=True)


def test_claim_missing(ledger: Ledger) -> None:
    assert ledger.claim("missing", "worker-7", now=T0) is None


def test_claim_twice(ledger: Ledger) -> None:
    ledger.insert(make_record("c-1"))

    first = ledger.claim("c-1", "worker-1", now=T0 + 1)
    second = ledger.claim("c-1", "worker-2", now=T0 + 2)

    assert first is not None
    assert second is None
    assert ledger.get("c-1") == first


# --- counters -----------------------------------------------------------


def test_counters_after_burst(ledger: Ledger) -> None:
    rng = random.Random(20240601)
    statuses = list(TaskStatus)
    names = {queue: [f"{queue.value}.job{i}" for i in range(3)] for queue in TaskQueue}
    task_ids = [f"burst-{i:04d}" for i in range(2000)]
    for task_id in task_ids:
        queue = rng.choice(list(TaskQueue))
        ledger.insert(
            make_record(
                task_id,
                name=rng.choice(names[queue]),
                queue=queue,
                status=rng.choice([PENDING, TaskStatus.SCHEDULED, TaskStatus.RETRYING]),
                created_at=T0 + rng.random() * 1000,
            )
        )

    applied = 0
    for _ in range(30):
        updates = []
        for _ in range(100):
            target = rng.choice(statuses)
            fields = (
                {"finished_at": T0 + rng.random() * 1000} if target.is_final else {}
            )
            expected = (
                frozenset(rng.sample(statuses, 5)) if rng.random() < 0.7 else None
            )
            updates.append(Update(rng.choice(task_ids), target, fields, expected))
        results = ledger.apply(updates, now=T0 + 2000)
        applied += sum(1 for r in results if r is not None)
    deleted = ledger.delete_finished_before(T0 + 500, limit=200)

    records = [r for r in (ledger.get(t) for t in task_ids) if r is not None]
    expected: dict[TaskQueue, dict[TaskStatus, int]] = {}
    for record in records:
        by_status = expected.setdefault(record.queue, {})
        by_status[record.status] = by_status.get(record.status, 0) + 1
    by_status_total = Counter(r.status for r in records)
    by_queue_total = Counter(r.queue for r in records)

    assert 0 < len(deleted) <= 200
    assert len(records) == 2000 - len(deleted)
    assert nonzero(ledger.status_counts()) == expected
    for status in TaskStatus:
        assert ledger.count_tasks(TaskFilter(status=status)) == by_status_total[status]
    for queue in TaskQueue:
        assert ledger.count_tasks(TaskFilter(queue=queue)) == by_queue_total[queue]
    assert ledger.count_tasks(TaskFilter()) == len(records)
    assert ledger.last_seq() == 2000 + applied + len(deleted)


# --- listing and counting -----------------------------------------------

MIXED_NAMES = {
    "reports.build": TaskQueue.DEFAULT,
    "mail.send": TaskQueue.HIGH,
    "Отчёт.собрать": TaskQueue.LOW,
    "governance.approve": TaskQueue.GOVERNANCE,
}
MIXED_ERRORS = [
    None,
    "Timeout after 30 s",
    "Connection REFUSED by Überserver",
    "Ошибка соединения с базой",
]
MIXED_STATUSES = [PENDING, RUNNING, SUCCESS, FAILURE, TaskStatus.SCHEDULED]


def seed_mixed(ledger: Ledger) -> list[TaskRecord]:
    """Insert 45 records over four names, five statuses and 13 creation times."""
    records = []
    names = list(MIXED_NAMES)
    for i in range(40):
        name = names[i % 4]
        records.append(
            make_record(
                f"mix-{i:02d}",
                name=name,
                queue=MIXED_NAMES[name],
                status=MIXED_STATUSES[i % 5],
                created_at=T0 + i % 13,
                error=MIXED_ERRORS[i % 7 % 4],
            )
        )
    # One name in two queues, which the registry never does, must still filter right.
    for i, queue in enumerate([TaskQueue.DEFAULT, TaskQueue.LOW] * 2 + [TaskQueue.LOW]):
        records.append(
            make_record(
                f"shared-{i}", name="shared.job", queue=queue, created_at=T0 + i
            )
        )
    for record in records:
        ledger.insert(record)
    return records


FILTERS = {
    "all": TaskFilter(),
    "status": TaskFilter(status=RUNNING),
    "queue": TaskFilter(queue=TaskQueue.HIGH),
    "name": TaskFilter(task_name="reports.build"),
    "name_unicode": TaskFilter(task_name="Отчёт.собрать"),
    "name_unknown": TaskFilter(task_name="missing.task"),
    "queue_status": TaskFilter(queue=TaskQueue.DEFAULT, status=PENDING),
    "name_status": TaskFilter(task_name="Отчёт.собрать", status=SUCCESS),
    "queue_name": TaskFilter(queue=TaskQueue.DEFAULT, task_name="reports.build"),
    "queue_other_name": TaskFilter(queue=TaskQueue.HIGH, task_name="reports.build"),
    "queue_split_name": TaskFilter(queue=TaskQueue.LOW, task_name="shared.job"),
    "queue_name_status": TaskFilter(
        queue=TaskQueue.HIGH, task_name="mail.send", status=FAILURE
    ),
    "created_after": TaskFilter(created_after=T0 + 5),
    "created_before": TaskFilter(created_before=T0 + 5),
    "created_between": TaskFilter(created_after=T0 + 3, created_before=T0 + 8),
    "created_empty_range": TaskFilter(created_after=T0 + 8, created_before=T0 + 3),
    "status_range": TaskFilter(
        status=PENDING, created_after=T0 + 2, created_before=T0 + 9
    ),
    "name_range": TaskFilter(task_name="mail.send", created_after=T0 + 6),
    "text_id_exact": TaskFilter(text="mix-07"),
    "text_id_prefix": TaskFilter(text="mix-1"),
    "text_id_middle": TaskFilter(text="ix-1"),
    "text_name": TaskFilter(text="REPORTS"),
    "text_name_part": TaskFilter(text="l.se"),
    "text_name_unicode": TaskFilter(text="ОТЧЁТ"),
    "text_short_name": TaskFilter(text="ma"),
    "text_error": TaskFilter(text="refused BY über"),
    "text_error_unicode": TaskFilter(text="ОШИБКА соед"),
    "text_error_end": TaskFilter(text="30 s"),
    "text_no_match": TaskFilter(text="nothing like this"),
    "text_status": TaskFilter(text="mix-1", status=SUCCESS),
    "text_queue_range": TaskFilter(
        text="refused",
        queue=TaskQueue.HIGH,
        created_after=T0 + 2,
        created_before=T0 + 10,
    ),
    "text_same_name": TaskFilter(text="mail", task_name="mail.send"),
    "text_other_name": TaskFilter(text="mail", task_name="reports.build"),
    "text_error_name": TaskFilter(text="timeout", task_name="reports.build"),
    "text_split_name": TaskFilter(text="shared", queue=TaskQueue.LOW),
}
#: Cases that select no record of `seed_mixed` on purpose.
EMPTY_CASES = {
    "name_unknown",
    "queue_other_name",
    "created_empty_range",
    "text_id_middle",
    "text_no_match",
    "text_other_name",
}


@pytest.mark.parametrize("case", list(FILTERS))
def test_list_filter(ledger: Ledger, case: str) -> None:
    records = seed_mixed(ledger)
    task_filter = FILTERS[case]
    expected = newest_first([r for r in records if matches(r, task_filter)])

    listed = ledger.list_tasks(task_filter, limit=100)

    assert bool(expected) is (case not in EMPTY_CASES)
    assert [r.task_id for r in listed] == expected
    assert ledger.count_tasks(task_filter) == len(expected)


@pytest.mark.parametrize("case", list(FILTERS))
def test_list_filter_ascending(ledger: Ledger, case: str) -> None:
    records = seed_mixed(ledger)
    task_filter = FILTERS[case]
    expected = newest_first([r for r in records if matches(r, task_filter)])[::-1]

    listed = ledger.list_tasks(task_filter, limit=100, ascending=True)

    assert [r.task_id for r in listed] == expected


def test_list_returns_full_records(ledger: Ledger) -> None:
    records = {r.task_id: r for r in seed_mixed(ledger)}

    listed = ledger.list_tasks(TaskFilter(status=FAILURE), limit=100)

    assert listed
    for record in listed:
        assert record == records[record.task_id]


def test_list_ties_by_id(ledger: Ledger) -> None:
    for task_id in ["tie-b", "tie-c", "tie-a", "tie-aa"]:
        ledger.insert(make_record(task_id, created_at=T0))
    ledger.insert(make_record("later", created_at=T0 + 1))
    ledger.insert(make_record("earlier", created_at=T0 - 1))

    listed = ledger.list_tasks(TaskFilter())

    assert [r.task_id for r in listed] == [
        "later",
        "tie-c",
        "tie-b",
        "tie-aa",
        "tie-a",
        "earlier",
    ]


def test_list_ascending_ties_by_id(ledger: Ledger) -> None:
    for task_id in ["tie-b", "tie-c", "tie-a", "tie-aa"]:
        ledger.insert(make_record(task_id, created_at=T0))
    ledger.insert(make_record("later", created_at=T0 + 1))
    ledger.insert(make_record("earlier", created_at=T0 - 1))

    listed = ledger.list_tasks(TaskFilter(), ascending=True)

    assert [r.task_id for r in listed] == [
        "earlier",
        "tie-a",
        "tie-aa",
        "tie-b",
        "tie-c",
        "later",
    ]


def test_list_time_range_inclusive(ledger: Ledger) -> None:
    for i, offset in enumerate([0.0, 10.0, 10.5, 20.0]):
        ledger.insert(make_record(f"t-{i}", created_at=T0 + offset))

    between = ledger.list_tasks(
        TaskFilter(created_after=T0 + 10, created_before=T0 + 20)
    )
    exact = ledger.list_tasks(TaskFilter(created_after=T0 + 10, created_before=T0 + 10))

    assert [r.task_id for r in between] == ["t-3", "t-2", "t-1"]
    assert [r.task_id for r in exact] == ["t-1"]


PAGED_FILTERS = {
    "all": TaskFilter(),
    "status": TaskFilter(status=PENDING),
    "queue_name": TaskFilter(queue=TaskQueue.LOW, task_name="page.low"),
    "range": TaskFilter(created_after=T0 + 2, created_before=T0 + 6),
    "text_id": TaskFilter(text="page-1"),
    "text_name_error": TaskFilter(text="LOW"),
}


@pytest.mark.parametrize("case", list(PAGED_FILTERS))
def test_list_pages(ledger: Ledger, case: str) -> None:
    records = []
    for i in range(130):
        queue = TaskQueue.LOW if i % 3 == 0 else TaskQueue.DEFAULT
        record = make_record(
            f"page-{i:03d}",
            name=f"page.{queue.value}",
            queue=queue,
            status=PENDING if i % 2 else RUNNING,
            created_at=T0 + i % 9,
            error="flow too low" if i % 5 == 0 else None,
        )
        ledger.insert(record)
        records.append(record)
    task_filter = PAGED_FILTERS[case]
    expected = newest_first([r for r in records if matches(r, task_filter)])

    paged = list_all(ledger, task_filter, page=7)

    assert len(expected) > 14
    assert paged == expected
    assert len(set(paged)) == len(paged)
    assert ledger.list_tasks(task_filter, limit=10, offset=len(expected)) == []


@pytest.mark.parametrize("case", list(PAGED_FILTERS))
def test_list_pages_ascending(ledger: Ledger, case: str) -> None:
    records = []
    for i in range(130):
        queue = TaskQueue.LOW if i % 3 == 0 else TaskQueue.DEFAULT
        record = make_record(
            f"page-{i:03d}",
            name=f"page.{queue.value}",
            queue=queue,
            status=PENDING if i % 2 else RUNNING,
            created_at=T0 + i % 9,
            error="flow too low" if i % 5 == 0 else None,
        )
        ledger.insert(record)
        records.append(record)
    task_filter = PAGED_FILTERS[case]
    expected = newest_first([r for r in records if matches(r, task_filter)])[::-1]

    paged = list_all(ledger, task_filter, page=7, ascending=True)

    beyond = ledger.list_tasks(
        task_filter, limit=10, offset=len(expected), ascending=True
    )

    assert paged == expected
    assert beyond == []


def test_text_follows_error_changes(ledger: Ledger) -> None:
    ledger.insert(make_record("e-1", status=RUNNING, error="Disk füll on /var"))
    ledger.insert(make_record("e-2", status=RUNNING))

    ledger.apply(
        [
            Update("e-1", fields={"error": "Quota exceeded"}),
            Update("e-2", FAILURE, {"error": "Disk FÜLL again"}),
        ],
        now=T0 + 1,
    )
    after_change = ledger.list_tasks(TaskFilter(text="disk füll"))
    ledger.update(Update("e-2", fields={"error": None}), now=T0 + 2)
    after_clear = ledger.list_tasks(TaskFilter(text="disk füll"))

    assert [r.task_id for r in after_change] == ["e-2"]
    assert [r.task_id for r in ledger.list_tasks(TaskFilter(text="quota"))] == ["e-1"]
    assert after_clear == []
    assert ledger.count_tasks(TaskFilter(text="disk")) == 0


def test_text_after_delete(ledger: Ledger) -> None:
    ledger.insert(
        make_record("gone-1", status=FAILURE, finished_at=T0, error="Fatal crash")
    )

    ledger.delete_finished_before(T0 + 1)

    assert ledger.list_tasks(TaskFilter(text="fatal")) == []
    assert ledger.list_tasks(TaskFilter(text="gone")) == []
    assert ledger.list_tasks(TaskFilter(text="reports")) == []
    assert ledger.count_tasks(TaskFilter(text="crash")) == 0


def test_list_follows_status_changes(ledger: Ledger) -> None:
    ledger.insert(make_record("s-1"))
    ledger.insert(make_record("s-2", created_at=T0 + 1))

    ledger.claim("s-1", "w-1", now=T0 + 2)

    pending = ledger.list_tasks(TaskFilter(status=PENDING))
    running = ledger.list_tasks(TaskFilter(queue=TaskQueue.DEFAULT, status=RUNNING))
    by_name = ledger.list_tasks(TaskFilter(task_name="reports.build", status=RUNNING))
    assert [r.task_id for r in pending] == ["s-2"]
    assert [r.task_id for r in running] == ["s-1"]
    assert [r.task_id for r in by_name] == ["s-1"]
    assert ledger.count_tasks(TaskFilter(status=PENDING)) == 1


def test_list_follows_created_change(ledger: Ledger) -> None:
    ledger.insert(make_record("m-1", created_at=T0))
    ledger.insert(make_record("m-2", created_at=T0 + 1))

    ledger.update(Update("m-1", fields={"created_at": T0 + 5}), now=T0 + 6)

    listed = ledger.list_tasks(TaskFilter(status=PENDING))
    assert [r.task_id for r in listed] == ["m-1", "m-2"]
    assert ledger.count_tasks(TaskFilter(created_after=T0 + 4)) == 1


# --- sorting ------------------------------------------------------------

SORTED_NAMES = ["reports.build", "mail.send", "Отчёт.собрать", "a.job"]
SORTED_QUEUES = [TaskQueue.DEFAULT, TaskQueue.HIGH, TaskQueue.LOW]
SORTED_STATUSES = [PENDING, RUNNING, SUCCESS, FAILURE, TaskStatus.AWAITING_APPROVAL]


def seed_sortable(ledger: Ledger, count: int = 60) -> list[TaskRecord]:
    """Insert records with ties in every sort key and some keys missing."""
    records = []
    for i in range(count):
        status = SORTED_STATUSES[i % 5]
        started = finished = None
        if status in (RUNNING, SUCCESS, FAILURE):
            started = T0 + 100 + i % 4
        if status in (SUCCESS, FAILURE):
            finished = started + (i % 3) * 0.5
        record = make_record(
            f"sort-{(i * 37) % count:03d}",
            name=SORTED_NAMES[i % 4],
            queue=SORTED_QUEUES[i % 3],
            status=status,
            created_at=T0 + i % 7,
            started_at=started,
            finished_at=finished,
            attempts=i % 3 if started is not None else 0,
            error="disk full" if i % 6 == 0 else None,
        )
        record.priority = (0, 3, 6)[i % 3 % 2 + i % 5 % 2]
        ledger.insert(record)
        records.append(record)
    return records


def sort_value(record: TaskRecord, sort: TaskSort) -> tuple[int, Any]:
    """Return the value `TaskSort` documents for `sort`, None below every value."""
    values: dict[TaskSort, Any] = {
        TaskSort.CREATED: record.created_at,
        TaskSort.STARTED: record.started_at,
        TaskSort.DURATION: None,
        TaskSort.ATTEMPTS: record.attempts,
        TaskSort.PRIORITY: record.priority,
        TaskSort.TASK_NAME: record.task_name,
        TaskSort.QUEUE: record.queue.value,
        TaskSort.STATUS: record.status.value,
    }
    if record.started_at is not None and record.finished_at is not None:
        values[TaskSort.DURATION] = record.finished_at - record.started_at
    value = values[sort]
    return (0, 0) if value is None else (1, value)


def sorted_ids(
    records: list[TaskRecord], sort: TaskSort, ascending: bool = False
) -> list[str]:
    ordered = sorted(
        records,
        key=lambda r: (sort_value(r, sort), r.created_at, r.task_id),
        reverse=not ascending,
    )
    return [r.task_id for r in ordered]


SORT_FILTERS = {
    "all": TaskFilter(),
    "status": TaskFilter(status=SUCCESS),
    "awaiting_approval": TaskFilter(status=TaskStatus.AWAITING_APPROVAL),
    "queue": TaskFilter(queue=TaskQueue.HIGH),
    "queue_status": TaskFilter(queue=TaskQueue.DEFAULT, status=RUNNING),
    "name": TaskFilter(task_name="mail.send"),
    "text_name": TaskFilter(text="ОТЧЁТ"),
    "text_error": TaskFilter(text="disk f", queue=TaskQueue.DEFAULT),
    "time_range": TaskFilter(created_after=T0 + 2, created_before=T0 + 4),
}


@pytest.mark.parametrize("ascending", [False, True], ids=["descending", "ascending"])
@pytest.mark.parametrize("case", list(SORT_FILTERS))
@pytest.mark.parametrize("sort", list(TaskSort))
def test_list_sorted(
    ledger: Ledger, sort: TaskSort, case: str, ascending: bool
) -> None:
    records = seed_sortable(ledger)
    task_filter = SORT_FILTERS[case]
    expected = sorted_ids(
        [r for r in records if matches(r, task_filter)], sort, ascending
    )

    listed = ledger.list_tasks(task_filter, limit=100, ascending=ascending, sort=sort)

    assert expected
    assert [r.task_id for r in listed] == expected


@pytest.mark.parametrize("ascending", [False, True], ids=["descending", "ascending"])
@pytest.mark.parametrize("sort", list(TaskSort))
def test_sqlite_sorted_large_status(
    sqlite_path: Path, sort: TaskSort, ascending: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A status filter over many records walks the key's index, in the same order."""
    from chenu_desktop.ledger import sqlite_ledger

    monkeypatch.setattr(sqlite_ledger, "SMALL_STATUS_SET", 0)
    ledger = sqlite_ledger.SqliteLedger(sqlite_path)
    try:
        records = seed_sortable(ledger)
        for case in ("status", "queue_status", "awaiting_approval"):
            task_filter = SORT_FILTERS[case]
            expected = sorted_ids(
                [r for r in records if matches(r, task_filter)], sort, ascending
            )
            listed = ledger.list_tasks(
                task_filter, limit=100, ascending=ascending, sort=sort
            )
            assert expected, case
            assert [r.task_id for r in listed] == expected, case
    finally:
        ledger.close()


@pytest.mark.parametrize("ascending", [False, True], ids=["descending", "ascending"])
@pytest.mark.parametrize("case", ["all", "queue_status", "text_error", "name"])
@pytest.mark.parametrize("sort", list(TaskSort))
def test_list_sorted_pages(
    ledger: Ledger, sort: TaskSort, case: str, ascending: bool
) -> None:
    records = seed_sortable(ledger, count=150)
    task_filter = SORT_FILTERS[case]
    expected = sorted_ids(
        [r for r in records if matches(r, task_filter)], sort, ascending
    )

    paged: list[str] = []
    while batch := ledger.list_tasks(
        task_filter, limit=4, offset=len(paged), ascending=ascending, sort=sort
    ):
        paged += [r.task_id for r in batch]
    beyond = ledger.list_tasks(
        task_filter, limit=4, offset=len(expected), ascending=ascending, sort=sort
    )

    assert len(expected) > 8
    assert paged == expected
    assert len(set(paged)) == len(paged)
    assert beyond == []


@pytest.mark.parametrize("sort", list(TaskSort))
def test_list_sorted_ties(ledger: Ledger, sort: TaskSort) -> None:
    for task_id in ["tie-b", "tie-c", "tie-a", "tie-aa"]:
        ledger.insert(make_record(task_id, created_at=T0))
    ledger.insert(make_record("later", created_at=T0 + 1))
    ledger.insert(make_record("earlier", created_at=T0 - 1))

    descending = ledger.list_tasks(TaskFilter(), sort=sort)
    ascending = ledger.list_tasks(TaskFilter(), sort=sort, ascending=True)

    order = ["later", "tie-c", "tie-b", "tie-aa", "tie-a", "earlier"]
    assert [r.task_id for r in descending] == order
    assert [r.task_id for r in ascending] == order[::-1]


def test_list_sorted_follows_changes(ledger: Ledger) -> None:
    for i in range(4):
        ledger.insert(make_record(f"c-{i}", created_at=T0 + i))

    ledger.claim("c-0", "w-1", now=T0 + 10)
    ledger.claim("c-2", "w-1", now=T0 + 11)
    ledger.update(
        Update("c-0", SUCCESS, {"finished_at": T0 + 13}, expected=frozenset({RUNNING})),
        now=T0 + 13,
    )
    ledger.update(
        Update("c-2", FAILURE, {"finished_at": T0 + 12}, expected=frozenset({RUNNING})),
        now=T0 + 12,
    )
    ledger.update(Update("c-2", PENDING), now=T0 + 14)
    ledger.claim("c-2", "w-2", now=T0 + 15)

    def ids(sort: TaskSort, task_filter: TaskFilter | None = None) -> list[str]:
        listed = ledger.list_tasks(task_filter or TaskFilter(), sort=sort)
        return [r.task_id for r in listed]

    assert ids(TaskSort.STARTED) == ["c-2", "c-0", "c-3", "c-1"]
    assert ids(TaskSort.ATTEMPTS) == ["c-2", "c-0", "c-3", "c-1"]
    assert ids(TaskSort.DURATION) == ["c-0", "c-3", "c-2", "c-1"]
    assert ids(TaskSort.STATUS) == ["c-0", "c-2", "c-3", "c-1"]
    assert ids(TaskSort.ATTEMPTS, TaskFilter(status=RUNNING)) == ["c-2"]
    assert ids(TaskSort.DURATION, TaskFilter(status=PENDING)) == ["c-3", "c-1"]
    assert ids(TaskSort.STARTED, TaskFilter(queue=TaskQueue.DEFAULT))[:2] == [
        "c-2",
        "c-0",
    ]


def test_list_sorted_follows_created_change(ledger: Ledger) -> None:
    ledger.insert(make_record("m-1", created_at=T0))
    ledger.insert(make_record("m-2", created_at=T0 + 1))

    ledger.update(Update("m-1", fields={"created_at": T0 + 5}), now=T0 + 6)

    listed = ledger.list_tasks(TaskFilter(status=PENDING), sort=TaskSort.PRIORITY)
    assert [r.task_id for r in listed] == ["m-1", "m-2"]


def test_sorted_pages_while_rows_change(ledger: Ledger) -> None:
    records = {r.task_id: r for r in seed_sortable(ledger, count=40)}
    task_filter = TaskFilter()
    expected = sorted_ids(list(records.values()), TaskSort.ATTEMPTS)

    # Changes that keep every sort key in place must not disturb paging.
    paged: list[str] = []
    step = 0
    while batch := ledger.list_tasks(
        task_filter, limit=6, offset=len(paged), sort=TaskSort.ATTEMPTS
    ):
        paged += [r.task_id for r in batch]
        for task_id in expected[step::7][:2]:
            ledger.update(
                Update(task_id, fields={"progress": step / 10}), now=T0 + 50 + step
            )
        step += 1
    moved = expected[-1]
    ledger.update(Update(moved, fields={"attempts": 9}), now=T0 + 99)
    after = ledger.list_tasks(task_filter, limit=100, sort=TaskSort.ATTEMPTS)

    assert paged == expected
    assert [r.task_id for r in after] == [moved] + expected[:-1]
    assert ledger.count_tasks(task_filter) == len(expected)


def test_list_sorted_after_delete(ledger: Ledger) -> None:
    ledger.insert(make_record("d-1", status=SUCCESS, started_at=T0, finished_at=T0))
    ledger.insert(make_record("d-2", created_at=T0 + 5))

    ledger.delete_finished_before(T0 + 1)

    for sort in TaskSort:
        listed = ledger.list_tasks(TaskFilter(), sort=sort)
        assert [r.task_id for r in listed] == ["d-2"], sort


def test_list_invalid_sort_raises(ledger: Ledger) -> None:
    ledger.insert(make_record("x-1"))

    with pytest.raises(ValueError, match="invalid sort key 'progress'"):
        ledger.list_tasks(TaskFilter(), sort="progress")  # type: ignore[arg-type]

    assert [r.task_id for r in ledger.list_tasks(TaskFilter())] == ["x-1"]


def test_sort_keys_cover_every_key(ledger: Ledger) -> None:
    assert ledger.sort_keys == frozenset(TaskSort)


@pytest.mark.parametrize("sort", list(TaskSort))
def test_sqlite_sorted_pages_use_indexes(
    sqlite_path: Path, sort: TaskSort, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chenu_desktop.ledger import sqlite_ledger

    ledger = sqlite_ledger.SqliteLedger(sqlite_path)
    try:
        seed_sortable(ledger)
        connection = sqlite3.connect(sqlite_path)

        def plan_of(task_filter: TaskFilter, ascending: bool) -> list[str]:
            sql, params = ledger.list_query(task_filter, 50, 0, ascending, sort)
            return [
                row[3]
                for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            ]

        # A status with many records: the page comes straight off an index.
        monkeypatch.setattr(sqlite_ledger, "SMALL_STATUS_SET", 0)
        for task_filter in [
            TaskFilter(),
            TaskFilter(status=TaskStatus.AWAITING_APPROVAL),
            TaskFilter(queue=TaskQueue.LOW),
            TaskFilter(queue=TaskQueue.LOW, status=FAILURE),
        ]:
            for ascending in (False, True):
                plan = plan_of(task_filter, ascending)
                assert len(plan) == 1, (task_filter, plan)
                assert "USING INDEX" in plan[0], (task_filter, plan)
                assert "TEMP B-TREE" not in plan[0], (task_filter, plan)
        # A status with few records: they are read by the status index and sorted.
        monkeypatch.setattr(sqlite_ledger, "SMALL_STATUS_SET", 10_000)
        keyed = sqlite_ledger.SORT_EXPRESSIONS[sort] not in (None, "status")
        for ascending in (False, True):
            plan = plan_of(TaskFilter(status=FAILURE), ascending)
            assert "status" in plan[0].split("USING", 1)[-1], plan
            if keyed:
                assert any("TEMP B-TREE" in step for step in plan), plan
        connection.close()
    finally:
        ledger.close()


# --- deleting -----------------------------------------------------------


def test_delete_finished_before(ledger: Ledger) -> None:
    old = [
        make_record("old-success", status=SUCCESS, finished_at=T0 + 10),
        make_record(
            "old-failure", queue=TaskQueue.HIGH, status=FAILURE, finished_at=T0 + 20
        ),
        make_record("old-cancelled", status=TaskStatus.CANCELLED, finished_at=T0 + 30),
    ]
    remaining = [
        make_record("new-success", status=SUCCESS, finished_at=T0 + 600),
        make_record("at-cutoff", status=SUCCESS, finished_at=T0 + 500),
        make_record("old-running", status=RUNNING, started_at=T0 + 1),
        make_record("old-pending", created_at=T0 - 1000),
        make_record("old-retrying", status=TaskStatus.RETRYING, finished_at=T0 + 5),
    ]
    for record in old + remaining:
        ledger.insert(record)
    seq = ledger.last_seq()

    deleted = ledger.delete_finished_before(T0 + 500)

    assert sorted(deleted) == sorted(r.task_id for r in old)
    for record in old:
        assert ledger.get(record.task_id) is None
    for record in remaining:
        assert ledger.get(record.task_id) == record
    assert nonzero(ledger.status_counts()) == {
        TaskQueue.DEFAULT: {SUCCESS: 2, RUNNING: 1, PENDING: 1, TaskStatus.RETRYING: 1}
    }
    changes = ledger.changes(seq).changes
    assert sorted(c.task_id for c in changes) == sorted(deleted)
    assert all(c.deleted for c in changes)
    by_id = {c.task_id: c for c in changes}
    assert by_id["old-failure"].queue is TaskQueue.HIGH
    assert by_id["old-failure"].status is FAILURE
    assert ledger.count_tasks(TaskFilter()) == len(remaining)
    assert sorted(r.task_id for r in ledger.list_tasks(TaskFilter())) == sorted(
        r.task_id for r in remaining
    )


def test_delete_after_finishing(ledger: Ledger) -> None:
    ledger.insert(make_record("f-1", status=RUNNING, started_at=T0))
    ledger.insert(make_record("f-2", status=RUNNING, started_at=T0))
    ledger.update(Update("f-1", SUCCESS, {"finished_at": T0 + 5}), now=T0 + 5)
    ledger.update(Update("f-2", SUCCESS, {"finished_at": T0 + 1}), now=T0 + 1)
    ledger.update(Update("f-2", PENDING, {"finished_at": None}), now=T0 + 6)

    # f-2 left its final status, so it must not take the place of f-1.
    deleted = ledger.delete_finished_before(T0 + 100, limit=1)

    assert deleted == ["f-1"]
    assert ledger.get("f-2") is not None


def test_delete_in_batches(ledger: Ledger) -> None:
    for i in range(5):
        ledger.insert(make_record(f"d-{i}", status=SUCCESS, finished_at=T0 + i))

    batches = [ledger.delete_finished_before(T0 + 10, limit=2) for _ in range(4)]

    assert [len(b) for b in batches] == [2, 2, 1, 0]
    assert sorted(task_id for batch in batches for task_id in batch) == [
        f"d-{i}" for i in range(5)
    ]
    assert nonzero(ledger.status_counts()) == {}


# --- counters and figures -----------------------------------------------


def test_oldest_created(ledger: Ledger) -> None:
    for task_id, offset in [("p-5", 5.0), ("p-1", 1.0), ("p-9", 9.0)]:
        ledger.insert(make_record(task_id, created_at=T0 + offset))
    ledger.insert(make_record("r-0", status=RUNNING, created_at=T0))
    ledger.insert(make_record("h-0", queue=TaskQueue.HIGH, created_at=T0 - 100))

    assert ledger.oldest_created(TaskQueue.DEFAULT, PENDING) == T0 + 1
    assert ledger.oldest_created(TaskQueue.DEFAULT, RUNNING) == T0
    assert ledger.oldest_created(TaskQueue.HIGH, PENDING) == T0 - 100
    assert ledger.oldest_created(TaskQueue.LOW, PENDING) is None

    ledger.claim("p-1", "w-1", now=T0 + 20)

    assert ledger.oldest_created(TaskQueue.DEFAULT, PENDING) == T0 + 5


def finish(
    ledger: Ledger,
    task_id: str,
    status: TaskStatus,
    finished_at: float,
    seconds: float,
    queue: TaskQueue = TaskQueue.DEFAULT,
) -> None:
    """Insert a running task and move it to `status` after `seconds`."""
    started_at = finished_at - seconds
    ledger.insert(
        make_record(
            task_id,
            queue=queue,
            status=RUNNING,
            created_at=started_at,
            started_at=started_at,
        )
    )
    result = ledger.update(
        Update(
            task_id, status, {"finished_at": finished_at}, expected=frozenset({RUNNING})
        ),
        now=finished_at,
    )
    assert result is not None


def test_recent_stats(ledger: Ledger) -> None:
    now = math.floor(T0 / 60) * 60 + 30.0
    finish(ledger, "s-now-1", SUCCESS, now - 1, seconds=0.003)
    finish(ledger, "s-now-2", SUCCESS, now - 2, seconds=0.04)
    finish(ledger, "s-1min", FAILURE, now - 60, seconds=1.5)
    finish(ledger, "s-5min", SUCCESS, now - 300, seconds=0.15)
    finish(ledger, "s-70min", SUCCESS, now - 70 * 60, seconds=100.0)
    finish(ledger, "s-high", SUCCESS, now - 1, seconds=7.0, queue=TaskQueue.HIGH)
    # Only a move from RUNNING counts: a task failed before it ran does not.
    ledger.insert(make_record("never-ran"))
    ledger.update(Update("never-ran", FAILURE, {"finished_at": now - 1}), now=now - 1)

    stats = ledger.recent_stats(TaskQueue.DEFAULT, now)
    short = ledger.recent_stats(TaskQueue.DEFAULT, now, minutes=3)

    assert stats.throughput_per_minute == [0] * 9 + [1, 0, 0, 0, 1, 2]
    assert short.throughput_per_minute == [0, 1, 2]
    assert stats.succeeded_last_hour == 3
    assert stats.failed_last_hour == 1
    assert stats.mean_duration == pytest.approx((0.003 + 0.04 + 1.5 + 0.15) / 4)
    assert stats.p95_duration == 2.0


def test_recent_stats_p95(ledger: Ledger) -> None:
    now = math.floor(T0 / 60) * 60 + 30.0
    for i in range(95):
        finish(ledger, f"fast-{i}", SUCCESS, now - i % 50, seconds=0.008)
    for i in range(5):
        finish(ledger, f"slow-{i}", FAILURE, now - i, seconds=3.0)
    finish(ledger, "slowest", SUCCESS, now - 3, seconds=4000.0, queue=TaskQueue.LOW)

    default = ledger.recent_stats(TaskQueue.DEFAULT, now)
    finish(ledger, "one-more-slow", SUCCESS, now, seconds=3.0)
    tipped = ledger.recent_stats(TaskQueue.DEFAULT, now)
    low = ledger.recent_stats(TaskQueue.LOW, now)

    assert default.p95_duration == 0.01
    assert tipped.p95_duration == 5.0
    assert low.p95_duration == 3600.0
    assert default.mean_duration == pytest.approx((95 * 0.008 + 5 * 3.0) / 100)


def test_recent_stats_empty(ledger: Ledger) -> None:
    stats = ledger.recent_stats(TaskQueue.SCHEDULED, T0, minutes=4)

    assert stats.throughput_per_minute == [0, 0, 0, 0]
    assert stats.succeeded_last_hour == 0
    assert stats.failed_last_hour == 0
    assert stats.mean_duration is None
    assert stats.p95_duration is None


def test_queue_stats(ledger: Ledger) -> None:
    ledger.insert(make_record("q-1", queue=TaskQueue.HIGH, created_at=T0))
    ledger.insert(make_record("q-2", queue=TaskQueue.HIGH, created_at=T0 + 20))
    finish(ledger, "q-3", SUCCESS, T0 + 32, seconds=2.0, queue=TaskQueue.HIGH)
    workers = [
        WorkerInfo("w-1", "host", 1, TaskQueue.HIGH, "q-3", T0, T0 + 39, "busy"),
        WorkerInfo("w-2", "host", 2, TaskQueue.HIGH, None, T0, T0 + 39, "idle"),
        WorkerInfo("w-3", "host", 3, TaskQueue.LOW, None, T0, T0 + 39),
    ]

    stats = ledger.queue_stats(T0 + 40, workers, {TaskQueue.HIGH})

    high = stats[TaskQueue.HIGH]
    assert set(stats) == set(TaskQueue)
    assert high.pending == 2
    assert high.running == 0
    assert high.count(SUCCESS) == 1
    assert high.total == 3
    assert high.succeeded_last_hour == 1
    assert high.mean_duration == pytest.approx(2.0)
    assert high.oldest_waiting_age == 40.0
    assert high.workers_busy == 1
    assert high.workers_total == 2
    assert high.paused is True
    assert stats[TaskQueue.LOW].paused is False
    assert stats[TaskQueue.LOW].workers_total == 1
    assert stats[TaskQueue.LOW].oldest_waiting_age is None
    assert stats[TaskQueue.LOW].total == 0


def test_queue_stats_match_recent_stats(ledger: Ledger) -> None:
    """Each queue's figures are its own, whichever way a ledger reads them."""
    finish(ledger, "m-1", SUCCESS, T0 + 10, seconds=1.0, queue=TaskQueue.HIGH)
    finish(ledger, "m-2", FAILURE, T0 + 70, seconds=3.0, queue=TaskQueue.LOW)
    finish(ledger, "m-3", SUCCESS, T0 + 75, seconds=5.0, queue=TaskQueue.SCHEDULED)
    ledger.insert(make_record("m-4", queue=TaskQueue.SCHEDULED, created_at=T0 + 5))
    now = T0 + 130

    stats = ledger.queue_stats(now, [], set())

    for queue in TaskQueue:
        recent = ledger.recent_stats(queue, now)
        assert stats[queue].throughput_per_minute == recent.throughput_per_minute
        assert stats[queue].succeeded_last_hour == recent.succeeded_last_hour
        assert stats[queue].failed_last_hour == recent.failed_last_hour
        assert stats[queue].mean_duration == recent.mean_duration
    assert stats[TaskQueue.LOW].failed_last_hour == 1
    assert stats[TaskQueue.SCHEDULED].mean_duration == pytest.approx(5.0)
    assert stats[TaskQueue.SCHEDULED].oldest_waiting_age == 125.0


# --- change feed --------------------------------------------------------


def test_changes_since_and_limit(ledger: Ledger) -> None:
    for i in range(5):
        ledger.insert(make_record(f"c-{i}"))

    first = ledger.changes(0, limit=2)
    rest = ledger.changes(first.last_seq)
    none_newer = ledger.changes(rest.last_seq)

    assert [c.task_id for c in first.changes] == ["c-0", "c-1"]
    assert first.last_seq == first.changes[-1].seq
    assert [c.task_id for c in rest.changes] == ["c-2", "c-3", "c-4"]
    assert [c.seq for c in first.changes + rest.changes] == sorted(
        c.seq for c in first.changes + rest.changes
    )
    assert rest.last_seq == ledger.last_seq()
    assert none_newer.changes == []
    assert none_newer.last_seq == ledger.last_seq()
    assert first.reset is False
    assert rest.reset is False
    assert none_newer.reset is False


def test_changes_empty_feed(ledger: Ledger) -> None:
    batch = ledger.changes(0)

    assert ledger.last_seq() == 0
    assert batch.changes == []
    assert batch.last_seq == 0
    assert batch.reset is False


def test_changes_reset_past_end(ledger: Ledger) -> None:
    ledger.insert(make_record("past-end"))

    batch = ledger.changes(ledger.last_seq() + 5)

    assert batch.changes == []
    assert batch.reset is True


def test_changes_reset_after_trim(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger(change_retention=20)
    # A backend may trim only now and then, so write well past 1,000 changes.
    for i in range(1100):
        ledger.insert(make_record(f"trim-{i:04d}"))
    last = ledger.last_seq()

    trimmed = ledger.changes(0, limit=50)
    after_reset = ledger.changes(trimmed.last_seq)
    recent = ledger.changes(last - 10)

    seqs = [c.seq for c in trimmed.changes]
    assert last == 1100
    assert trimmed.reset is True
    assert seqs
    assert seqs[0] > 1
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert trimmed.last_seq == seqs[-1]
    assert after_reset.reset is False
    assert recent.reset is False
    assert [c.task_id for c in recent.changes] == [
        f"trim-{i:04d}" for i in range(1090, 1100)
    ]


def test_changes_never_reuse_numbers(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger(change_retention=1)
    for i in range(1100):
        ledger.insert(make_record(f"keep-{i:04d}"))
    last = ledger.last_seq()

    ledger.insert(make_record("after-trim"))
    newest = ledger.changes(last)

    assert last == 1100
    assert [c.task_id for c in newest.changes] == ["after-trim"]
    assert newest.changes[0].seq == last + 1
    assert newest.reset is False


def test_change_retention_below_one_rejected(make_ledger: LedgerFactory) -> None:
    with pytest.raises(ValueError, match="change_retention must be at least 1"):
        make_ledger(change_retention=0)


# --- workers and queue control ------------------------------------------


def test_heartbeats_expire(ledger: Ledger) -> None:
    busy = WorkerInfo(
        "w-1", "host-a", 101, TaskQueue.HIGH, "task-1", T0 - 50, T0, "busy"
    )
    idle = WorkerInfo("w-2", "hôte-b", 102, TaskQueue.LOW, None, T0 - 50, T0)
    ledger.put_heartbeats([busy, idle], ttl=30)

    alive = ledger.list_workers(T0 + 10)
    expired = ledger.list_workers(T0 + 31)

    assert sorted(alive, key=lambda w: w.worker_id) == [busy, idle]
    assert expired == []


def test_heartbeats_renewed(ledger: Ledger) -> None:
    first = WorkerInfo("w-1", "host-a", 101, TaskQueue.HIGH, None, T0, T0)
    other = WorkerInfo("w-2", "host-a", 102, TaskQueue.HIGH, None, T0, T0)
    ledger.put_heartbeats([first, other], ttl=30)
    renewed = dataclasses.replace(
        first, last_beat=T0 + 25, state="busy", current_task="t-9"
    )

    ledger.put_heartbeats([renewed], ttl=30)

    assert ledger.list_workers(T0 + 40) == [renewed]


def test_remove_workers(ledger: Ledger) -> None:
    workers = [
        WorkerInfo(f"w-{i}", "host", 100 + i, TaskQueue.DEFAULT, None, T0, T0)
        for i in range(3)
    ]
    ledger.put_heartbeats(workers, ttl=60)

    ledger.remove_workers(["w-0", "w-2"])
    ledger.remove_workers([])

    assert ledger.list_workers(T0 + 1) == [workers[1]]


def test_paused_queues(ledger: Ledger) -> None:
    assert ledger.paused_queues() == set()

    ledger.set_paused(TaskQueue.HIGH, True)
    ledger.set_paused(TaskQueue.LOW, True)
    ledger.set_paused(TaskQueue.LOW, True)
    both = ledger.paused_queues()
    ledger.set_paused(TaskQueue.HIGH, False)
    ledger.set_paused(TaskQueue.DEFAULT, False)

    assert both == {TaskQueue.HIGH, TaskQueue.LOW}
    assert ledger.paused_queues() == {TaskQueue.LOW}


def test_paused_shared(make_ledger: LedgerFactory) -> None:
    make_ledger().set_paused(TaskQueue.GOVERNANCE, True)

    assert make_ledger().paused_queues() == {TaskQueue.GOVERNANCE}


def test_backend_name(ledger: Ledger) -> None:
    assert ledger.backend_name in {"sqlite", "redis"}


# --- Redis only ---------------------------------------------------------


def test_redis_namespaces_isolated(redis_url: str) -> None:
    first = RedisLedger(redis.Redis.from_url(redis_url), "one")
    second = RedisLedger(redis.Redis.from_url(redis_url), "two")
    try:
        first.insert(make_record("n-1"))
        first.set_paused(TaskQueue.LOW, True)

        assert second.get("n-1") is None
        assert second.list_tasks(TaskFilter()) == []
        assert second.status_counts() == {}
        assert second.last_seq() == 0
        assert second.paused_queues() == set()
        second.insert(make_record("n-1"))
    finally:
        first.close()
        second.close()


def test_redis_keys_under_prefix(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    ledger = RedisLedger(redis.Redis.from_url(redis_url), "pre")
    try:
        ledger.insert(make_record("k-1", status=RUNNING, started_at=T0, error="Boom"))
        ledger.update(Update("k-1", SUCCESS, {"finished_at": T0 + 1}), now=T0 + 1)
        ledger.put_heartbeats(
            [WorkerInfo("w-1", "host", 1, TaskQueue.DEFAULT, None, T0, T0)], ttl=60
        )
        ledger.set_paused(TaskQueue.LOW, True)

        keys = client.keys("*")
        assert keys
        assert all(k.startswith(b"chenu:pre:") for k in keys)
    finally:
        ledger.close()
        client.close()


def test_redis_delete_leaves_no_index(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    ledger = RedisLedger(redis.Redis.from_url(redis_url), "clean")
    try:
        ledger.insert(make_record("k-1", status=RUNNING, started_at=T0, error="Boom"))
        ledger.update(Update("k-1", FAILURE, {"finished_at": T0 + 1}), now=T0 + 1)

        ledger.delete_finished_before(T0 + 2)

        left = sorted(k.decode().removeprefix("chenu:clean:") for k in client.keys("*"))
        assert [k for k in left if not k.startswith("stats:")] == ["changes", "seq"]
    finally:
        ledger.close()
        client.close()


def test_redis_decoded_replies(redis_url: str) -> None:
    ledger = RedisLedger(redis.Redis.from_url(redis_url, decode_responses=True), "text")
    try:
        record = make_record(
            "ü-1", name="Отчёт", status=RUNNING, started_at=T0, error="Bööm"
        )
        ledger.insert(record)
        ledger.update(Update("ü-1", SUCCESS, {"finished_at": T0 + 1}), now=T0 + 1)
        ledger.put_heartbeats(
            [WorkerInfo("w-1", "host", 1, TaskQueue.DEFAULT, None, T0, T0)], ttl=60
        )

        assert ledger.get("ü-1") == dataclasses.replace(
            record,
            status=SUCCESS,
            finished_at=T0 + 1,
            updated_at=T0 + 1,
            history=[["success", T0 + 1]],
        )
        assert [r.task_id for r in ledger.list_tasks(TaskFilter(text="bööm"))] == [
            "ü-1"
        ]
        assert [r.task_id for r in ledger.list_tasks(TaskFilter(text="отч"))] == ["ü-1"]
        assert (
            ledger.count_tasks(TaskFilter(queue=TaskQueue.DEFAULT, task_name="Отчёт"))
            == 1
        )
        assert ledger.status_counts() == {TaskQueue.DEFAULT: {SUCCESS: 1}}
        assert ledger.changes(0).last_seq == 2
        assert ledger.recent_stats(TaskQueue.DEFAULT, T0 + 1).succeeded_last_hour == 1
        assert [w.worker_id for w in ledger.list_workers(T0)] == ["w-1"]
        assert ledger.oldest_created(TaskQueue.DEFAULT, SUCCESS) == T0
    finally:
        ledger.close()


def test_redis_builds_missing_sort_indexes(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    ledger = RedisLedger(redis.Redis.from_url(redis_url), "rebuild")
    try:
        records = seed_sortable(ledger, count=30)
        # A ledger written before the sort indexes existed has none of them.
        client.delete(*client.keys("chenu:rebuild:sort:*"))

        reopened = RedisLedger(redis.Redis.from_url(redis_url), "rebuild")
        listed = reopened.list_tasks(TaskFilter(), limit=100, sort=TaskSort.ATTEMPTS)
        by_status = reopened.list_tasks(
            TaskFilter(status=SUCCESS), limit=100, sort=TaskSort.DURATION
        )
        reopened.close()

        assert [r.task_id for r in listed] == sorted_ids(records, TaskSort.ATTEMPTS)
        assert [r.task_id for r in by_status] == sorted_ids(
            [r for r in records if r.status is SUCCESS], TaskSort.DURATION
        )
    finally:
        ledger.close()
        client.close()


@pytest.mark.parametrize("ascending", [False, True], ids=["descending", "ascending"])
@pytest.mark.parametrize(
    "sort", [TaskSort.STARTED, TaskSort.DURATION, TaskSort.PRIORITY]
)
def test_redis_sorted_queue_walk(
    redis_url: str, sort: TaskSort, ascending: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A queue filter over many records walks the sort index, in the same order."""
    import redis

    from chenu_desktop.ledger import redis_ledger

    monkeypatch.setattr(redis_ledger, "SMALL_SORT_SET", 0)
    monkeypatch.setattr(redis_ledger, "_SCAN_CHUNK", 7)
    ledger = redis_ledger.RedisLedger(redis.Redis.from_url(redis_url), "walk")
    try:
        records = seed_sortable(ledger, count=150)
        for case in ("queue", "queue_status"):
            task_filter = SORT_FILTERS[case]
            expected = sorted_ids(
                [r for r in records if matches(r, task_filter)], sort, ascending
            )
            paged: list[str] = []
            while batch := ledger.list_tasks(
                task_filter, limit=9, offset=len(paged), ascending=ascending, sort=sort
            ):
                paged += [r.task_id for r in batch]
            assert expected, case
            assert paged == expected, case
    finally:
        ledger.close()
