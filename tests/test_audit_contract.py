"""The audit trail: the `AuditStore` contract and the recording of operator actions.

Every test runs on both backends: a SQLite file in the test's folder, or an
empty database on the session's redis-server.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from engine_helpers import backend_url, open_test_engine, wait_final, wait_status

from chenu_desktop import TaskQueue, TaskStatus, background_task
from chenu_desktop.audit.redis_store import RedisAuditStore
from chenu_desktop.audit.service import AuditWriteError
from chenu_desktop.audit.sqlite_store import SqliteAuditStore
from chenu_desktop.audit.store import AuditAction, AuditEntry, AuditFilter, AuditStore
from chenu_desktop.engine import Engine
from chenu_desktop.errors import InvalidArgumentError, InvalidStateError
from chenu_desktop.scheduling.service import DEFAULT_SCHEDULES

#: A fixed time for the entries of the store tests (November 2023, POSIX seconds).
T0 = 1_700_000_000.0

StoreFactory = Callable[[], AuditStore]


@background_task(name="audit_echo", queue=TaskQueue.DEFAULT)
def audit_echo(value: int = 0) -> int:
    return value


@background_task(
    name="audit_payout", queue=TaskQueue.GOVERNANCE, requires_governance=True
)
def audit_payout(amount: int, approved_by: str = "") -> str:
    return f"{amount} by {approved_by}"


# --- fixtures ------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "redis"])
def make_store(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    """Return a factory of audit stores that all share this test's storage."""
    opened: list[AuditStore] = []
    if request.param == "sqlite":
        path: Path = request.getfixturevalue("sqlite_path")

        def make() -> AuditStore:
            opened.append(SqliteAuditStore(path))
            return opened[-1]

    else:
        url: str = request.getfixturevalue("redis_url")

        def make() -> AuditStore:
            opened.append(RedisAuditStore(redis.Redis.from_url(url), "contract"))
            return opened[-1]

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> AuditStore:
    return make_store()


@pytest.fixture(params=["sqlite", "redis"])
def engine_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    redis_url = (
        request.getfixturevalue("redis_url") if request.param == "redis" else None
    )
    return backend_url(request.param, tmp_path, redis_url)


@pytest.fixture
def engine(engine_url: str) -> Iterator[Engine]:
    """An engine without workers whose configured operator is "ada"."""
    engine = open_test_engine(engine_url, operator="ada")
    try:
        yield engine
    finally:
        engine.close()


def make_entry(
    action: AuditAction = AuditAction.CANCEL,
    target: str = "t1",
    *,
    at: float = T0,
    operator: str = "ada",
    **fields: Any,
) -> AuditEntry:
    return AuditEntry(
        entry_id=0,
        at=at,
        operator=operator,
        action=action.value,
        target_kind=fields.pop("target_kind", "task"),
        target=target,
        **fields,
    )


def entries(engine: Engine, **filters: Any) -> list[AuditEntry]:
    """Return the engine's audit entries, oldest first."""
    return list(reversed(engine.audit.list_entries(**filters, limit=1000)))


def break_audit_writes(engine: Engine) -> None:
    """Make every later audit append fail in the real storage of the engine."""
    if engine.spec.kind == "sqlite":
        assert engine.spec.path is not None
        conn = sqlite3.connect(engine.spec.path)
        conn.execute(
            "CREATE TRIGGER audit_test_full BEFORE INSERT ON chenu_audit "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
        conn.commit()
        conn.close()
    else:
        client = redis.Redis.from_url(engine.spec.url)
        # A string where the sorted set belongs: ZADD fails with WRONGTYPE.
        client.set(f"chenu:{engine.config.namespace}:audit:entries", b"broken")
        client.close()


# --- the store contract ----------------------------------------------------------


def test_store_append_assigns_ids(store: AuditStore) -> None:
    assert store.last_id() == 0
    first = store.append(make_entry(target="a"))
    second = store.append(make_entry(target="b"))
    assert first.entry_id == 1
    assert second.entry_id == 2
    assert first.target == "a"
    assert store.last_id() == 2


def test_store_round_trips_every_field(store: AuditStore) -> None:
    entry = make_entry(
        AuditAction.REJECT,
        "task-é",
        at=T0 + 0.123456,
        operator="Zoë",
        reason="wrong account: 12 ≠ 13",
        details={"approver": "bob", "nested": {"ids": [1, 2]}, "none": None},
    )
    stored = store.append(entry)
    [read] = store.list_entries(AuditFilter(), 10)
    assert read == stored
    assert read.at == T0 + 0.123456
    assert read.details == {"approver": "bob", "nested": {"ids": [1, 2]}, "none": None}


def test_store_lists_newest_first_in_pages(store: AuditStore) -> None:
    for number in range(7):
        store.append(make_entry(target=f"t{number}", at=T0 + number))
    page1 = store.list_entries(AuditFilter(), 3)
    page2 = store.list_entries(AuditFilter(), 3, offset=3)
    page3 = store.list_entries(AuditFilter(), 3, offset=6)
    assert [e.target for e in page1] == ["t6", "t5", "t4"]
    assert [e.target for e in page2] == ["t3", "t2", "t1"]
    assert [e.target for e in page3] == ["t0"]
    assert store.list_entries(AuditFilter(), 3, offset=7) == []
    assert store.count_entries(AuditFilter()) == 7


def test_store_filters_and_counts(store: AuditStore) -> None:
    store.append(make_entry(AuditAction.CANCEL, "t1", at=T0, operator="ada"))
    store.append(make_entry(AuditAction.RETRY, "t1", at=T0 + 10, operator="bob"))
    store.append(make_entry(AuditAction.CANCEL, "t2", at=T0 + 20, operator="bob"))
    store.append(
        make_entry(
            AuditAction.QUEUE_PAUSE, "low", at=T0 + 30, operator="ada",
            target_kind="queue",
        )
    )  # fmt: skip
    cases = [
        (AuditFilter(action="cancel"), ["t2", "t1"]),
        (AuditFilter(target="t1"), ["t1", "t1"]),
        (AuditFilter(operator="bob"), ["t2", "t1"]),
        (AuditFilter(since=T0 + 20), ["low", "t2"]),
        (AuditFilter(action="cancel", operator="bob"), ["t2"]),
        (AuditFilter(action="retry", target="t2"), []),
        (AuditFilter(target="t"), []),
    ]
    for entry_filter, expected in cases:
        listed = store.list_entries(entry_filter, 10)
        assert [e.target for e in listed] == expected, entry_filter
        assert store.count_entries(entry_filter) == len(expected), entry_filter


def test_store_filtered_pages_skip_matches_only(store: AuditStore) -> None:
    # More entries than one scan batch of the Redis store, every third a retry.
    for number in range(1200):
        action = AuditAction.RETRY if number % 3 == 0 else AuditAction.CANCEL
        store.append(make_entry(action, f"t{number}"))
    retry = AuditFilter(action="retry")
    page = store.list_entries(retry, 5, offset=390)
    assert [e.target for e in page] == ["t27", "t24", "t21", "t18", "t15"]
    assert store.count_entries(retry) == 400
    assert store.count_entries(AuditFilter()) == 1200


def test_store_shared_between_instances(make_store: StoreFactory) -> None:
    writer, reader = make_store(), make_store()
    writer.append(make_entry(target="from-writer"))
    assert [e.target for e in reader.list_entries(AuditFilter(), 10)] == ["from-writer"]
    assert reader.last_id() == 1


def test_store_concurrent_appends_keep_every_entry(make_store: StoreFactory) -> None:
    stores = [make_store() for _ in range(4)]
    ids: list[int] = []
    ids_lock = threading.Lock()

    def append_many(store: AuditStore, worker: int) -> None:
        for number in range(50):
            stored = store.append(make_entry(target=f"w{worker}-{number}"))
            with ids_lock:
                ids.append(stored.entry_id)

    threads = [
        threading.Thread(target=append_many, args=(store, worker))
        for worker, store in enumerate(stores)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(ids) == list(range(1, 201))
    listed = stores[0].list_entries(AuditFilter(), 1000)
    assert [e.entry_id for e in listed] == list(range(200, 0, -1))
    assert len({e.target for e in listed}) == 200


def test_sqlite_rejects_update_and_delete(sqlite_path: Path) -> None:
    store = SqliteAuditStore(sqlite_path)
    try:
        store.append(make_entry(target="kept"))
    finally:
        store.close()
    conn = sqlite3.connect(sqlite_path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE chenu_audit SET operator = 'mallory'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM chenu_audit")
        rows = conn.execute("SELECT operator, target FROM chenu_audit").fetchall()
    finally:
        conn.close()
    assert rows == [("ada", "kept")]


# --- recording through the engine ------------------------------------------------


def test_task_actions_recorded(engine: Engine) -> None:
    tasks = engine.task_service
    cancelled = tasks.submit_as_operator(
        "audit_echo", kwargs={"value": 1}, countdown=600
    )
    tasks.cancel(cancelled)
    retried = tasks.retry(cancelled)
    payout = tasks.submit("audit_payout", amount=10)
    tasks.approve(payout, "bob", reason="checked")
    refused = tasks.submit("audit_payout", amount=99)
    tasks.reject(refused, "ada", reason="  too much  ")

    recorded = entries(engine)
    assert [(e.action, e.target) for e in recorded] == [
        ("submit", cancelled),
        ("cancel", cancelled),
        ("retry", cancelled),
        ("approve", payout),
        ("reject", refused),
    ]
    assert {e.operator for e in recorded} == {"ada"}
    assert {e.target_kind for e in recorded} == {"task"}
    submit, cancel, retry, approve, reject = recorded
    assert submit.details == {
        "task_name": "audit_echo",
        "queue": "default",
        "priority": 6,
        "status": "scheduled",
    }
    assert cancel.details["outcome"] == "cancelled"
    assert cancel.details["previous_status"] == "scheduled"
    assert retry.details["new_task_id"] == retried
    assert approve.reason == "checked"
    assert approve.details["approver"] == "bob"
    assert approve.details["status"] == "pending"
    assert reject.reason == "too much"
    assert reject.details["status"] == "rejected"
    ids = [e.entry_id for e in recorded]
    assert ids == sorted(ids)
    times = [e.at for e in recorded]
    assert times == sorted(times)


def test_cancel_of_running_task_recorded(engine_url: str) -> None:
    @background_task(name="audit_wait")
    def audit_wait() -> None:
        from chenu_desktop import check_cancelled

        while True:
            check_cancelled()
            threading.Event().wait(0.01)

    engine = open_test_engine(engine_url, operator="ada")
    try:
        engine.start_workers({TaskQueue.DEFAULT}, scheduler=False)
        task_id = engine.task_service.submit("audit_wait")
        wait_status(engine, task_id, {TaskStatus.RUNNING})
        engine.task_service.cancel(task_id)
        wait_final(engine, task_id)
        [entry] = entries(engine)
    finally:
        engine.close()
        engine.registry.remove("audit_wait")
    assert entry.action == "cancel"
    assert entry.details["outcome"] == "cancel_requested"
    assert entry.details["previous_status"] == "running"


def test_plain_submit_records_nothing(engine: Engine) -> None:
    for value in range(5):
        engine.task_service.submit("audit_echo", value=value)
    assert engine.audit.count_entries() == 0
    assert engine.audit.last_id() == 0


def test_refused_actions_record_nothing(engine: Engine) -> None:
    tasks = engine.task_service
    task_id = tasks.submit("audit_echo", countdown=600)
    tasks.cancel(task_id)
    before = engine.audit.count_entries()
    with pytest.raises(InvalidStateError, match="nothing to cancel"):
        tasks.cancel(task_id)
    with pytest.raises(InvalidStateError, match="not awaiting approval"):
        tasks.approve(task_id, "ada")
    with pytest.raises(InvalidStateError, match="not awaiting approval"):
        tasks.reject(task_id, "ada", "no")
    with pytest.raises(InvalidArgumentError):
        tasks.submit_as_operator("audit_echo", kwargs={"wrong": 1})
    with pytest.raises(ValueError, match="invalid worker count 1000"):
        engine.pool.resize(TaskQueue.LOW, 1000)
    with pytest.raises(ValueError, match="hour"):
        engine.scheduler_service.add_schedule("bad", "audit_echo", "0 25 * * *")
    with pytest.raises(ValueError, match="not found"):
        engine.scheduler_service.remove_schedule("missing")
    assert engine.audit.count_entries() == before == 1


def test_schedule_actions_recorded(engine: Engine) -> None:
    service = engine.scheduler_service
    service.add_schedule("nightly", "audit_echo", "0 2 * * *", timezone="UTC", value=1)
    service.update_schedule("nightly", schedule="30 3 * * *", value=2)
    service.disable_schedule("nightly")
    service.enable_schedule("nightly")
    task_id = service.run_now("nightly")
    service.remove_schedule("nightly")

    recorded = entries(engine, target="nightly")
    assert [e.action for e in recorded] == [
        "schedule_add",
        "schedule_update",
        "schedule_disable",
        "schedule_enable",
        "schedule_run_now",
        "schedule_remove",
    ]
    assert {e.target_kind for e in recorded} == {"schedule"}
    add, update, _, _, run_now, remove = recorded
    assert add.details["expression"] == "0 2 * * *"
    assert add.details["kwargs"] == {"value": 1}
    assert update.details == {
        "changes": {
            "expression": ["0 2 * * *", "30 3 * * *"],
            "kwargs": [{"value": 1}, {"value": 2}],
        }
    }
    assert run_now.details["task_id"] == task_id
    assert remove.details["expression"] == "30 3 * * *"


def test_default_schedules_record_nothing(engine: Engine) -> None:
    engine.scheduler_service.seed_defaults()
    names = {info.name for info in engine.scheduler_service.list_schedules()}
    assert names == {spec["name"] for spec in DEFAULT_SCHEDULES}
    assert engine.audit.count_entries() == 0


def test_pool_actions_recorded(engine: Engine) -> None:
    engine.pool.resize(TaskQueue.LOW, 3)
    engine.pool.pause(TaskQueue.HIGH)
    engine.pool.resume(TaskQueue.HIGH)
    resize, pause, resume = entries(engine)
    assert (resize.action, resize.target_kind, resize.target) == (
        "pool_resize",
        "queue",
        "low",
    )
    assert resize.details["old_workers"] == 1
    assert resize.details["new_workers"] == 3
    assert resize.details["pid"] == engine.pool.pid
    assert (pause.action, pause.target) == ("queue_pause", "high")
    assert (resume.action, resume.target) == ("queue_resume", "high")


def test_cleanup_recorded_and_keeps_trail(engine: Engine) -> None:
    tasks = engine.task_service
    for _ in range(3):
        tasks.cancel(tasks.submit_as_operator("audit_echo", countdown=600))
    before = entries(engine)
    assert len(before) == 6
    deleted = tasks.cleanup(older_than_days=0)
    after = entries(engine)
    assert deleted == 3
    assert after[:6] == before
    cleanup = after[6]
    assert cleanup.action == "cleanup"
    assert cleanup.target_kind == "ledger"
    assert cleanup.details == {"older_than_days": 0, "deleted": 3}


def test_delete_finished_records_nothing(engine: Engine) -> None:
    tasks = engine.task_service
    tasks.cancel(tasks.submit("audit_echo", countdown=600))
    before = engine.audit.count_entries()
    assert tasks.delete_finished(older_than_days=0) == 1
    assert engine.audit.count_entries() == before


def test_operator_defaults_to_os_user(engine_url: str) -> None:
    import getpass

    engine = open_test_engine(engine_url)
    try:
        engine.pool.pause(TaskQueue.LOW)
        [entry] = entries(engine)
    finally:
        engine.close()
    assert entry.operator == getpass.getuser()


def test_audit_write_failure_keeps_action(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    tasks = engine.task_service
    task_id = tasks.submit("audit_echo", countdown=600)
    break_audit_writes(engine)
    with (
        caplog.at_level(logging.ERROR, logger="chenu.audit"),
        pytest.raises(AuditWriteError, match="took effect") as raised,
    ):
        tasks.cancel(task_id)
    assert tasks.get_status(task_id).status is TaskStatus.CANCELLED
    assert raised.value.entry.action == "cancel"
    assert raised.value.entry.target == task_id
    assert raised.value.result.status is TaskStatus.CANCELLED
    assert task_id in str(raised.value)
    logged = [r.getMessage() for r in caplog.records if r.name == "chenu.audit"]
    assert len(logged) == 1
    assert task_id in logged[0]
    assert '"action":"cancel"' in logged[0]


def test_audit_write_failure_keeps_retry_id(engine: Engine) -> None:
    tasks = engine.task_service
    task_id = tasks.submit("audit_echo", countdown=600)
    tasks.cancel(task_id)
    break_audit_writes(engine)
    with pytest.raises(AuditWriteError) as raised:
        tasks.retry(task_id)
    new_id = raised.value.result
    assert tasks.get_status(task_id).retried_as == new_id
    assert tasks.get_status(new_id).status is TaskStatus.PENDING


def test_approve_enqueues_before_audit_write(engine_url: str) -> None:
    engine = open_test_engine(engine_url, operator="ada")
    try:
        task_id = engine.task_service.submit("audit_payout", amount=5)
        break_audit_writes(engine)
        with pytest.raises(AuditWriteError):
            engine.task_service.approve(task_id, "ada")
        engine.start_workers({TaskQueue.GOVERNANCE}, scheduler=False)
        record = wait_final(engine, task_id)
    finally:
        engine.close()
    assert record.status is TaskStatus.SUCCESS
    assert record.result == "5 by ada"


def test_list_rejects_bad_filters(engine: Engine) -> None:
    audit = engine.audit
    with pytest.raises(InvalidArgumentError, match="invalid action 'cancelled'"):
        audit.list_entries(action="cancelled")
    with pytest.raises(InvalidArgumentError, match="invalid limit 0"):
        audit.list_entries(limit=0)
    with pytest.raises(InvalidArgumentError, match="invalid offset -1"):
        audit.list_entries(offset=-1)
    with pytest.raises(InvalidArgumentError, match="invalid since 'yesterday'"):
        audit.count_entries(since="yesterday")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="invalid target 5"):
        audit.count_entries(target=5)  # type: ignore[arg-type]


def test_list_blank_filters_match_all(engine: Engine) -> None:
    engine.pool.pause(TaskQueue.LOW)
    assert len(engine.audit.list_entries(target="  ", operator="")) == 1
