"""A worker pops a message and claims its task in one step, on both backends."""

from __future__ import annotations

import json

import pytest

from chenu_desktop import TaskQueue, TaskStatus, background_task
from chenu_desktop.engine import Engine
from chenu_desktop.ledger.base import Update
from chenu_desktop.ledger.redis_ledger import RedisLedger

from engine_helpers import open_test_engine, wait_final

WORKER = "bench-host-4242-default-abcdef-0"


@background_task(name="take_double", queue=TaskQueue.DEFAULT)
def double(n: int) -> int:
    return 2 * n


@pytest.fixture
def engine(url: str) -> Engine:
    opened = open_test_engine(url)
    yield opened
    opened.close()


def queued(engine: Engine, queue: TaskQueue = TaskQueue.DEFAULT) -> list[bytes]:
    return list(engine.hueys[queue].storage.enqueued_items())


def test_take_claims_the_first_task(engine: Engine) -> None:
    first = engine.task_service.submit("take_double", n=1)
    second = engine.task_service.submit("take_double", n=2)
    now = engine.clock()

    result = engine.take(TaskQueue.DEFAULT, WORKER, now)

    assert result is not None
    data, record = result
    assert json.loads(data)["args"] == [first]
    assert record is not None
    assert record.task_id == first
    assert record.status is TaskStatus.RUNNING
    assert record.worker == WORKER
    assert record.started_at == now
    assert record.attempts == 1
    assert record.kwargs == {"n": 1}
    assert engine.ledger.get(first).status is TaskStatus.RUNNING
    # The claim is in the counters and the change feed like any other.
    counts = engine.ledger.status_counts()[TaskQueue.DEFAULT]
    assert counts[TaskStatus.RUNNING] == 1
    assert counts[TaskStatus.PENDING] == 1
    last = engine.changes(0).changes[-1]
    assert (last.task_id, last.status) == (first, TaskStatus.RUNNING)
    assert [json.loads(m)["args"] for m in queued(engine)] == [[second]]


def test_take_of_an_empty_queue(engine: Engine) -> None:
    assert engine.take(TaskQueue.HIGH, WORKER, engine.clock()) is None
    engine.task_service.submit("take_double", n=1)
    engine.take(TaskQueue.DEFAULT, WORKER, engine.clock())
    assert engine.take(TaskQueue.DEFAULT, WORKER, engine.clock()) is None


def test_take_skips_cancelled_task(engine: Engine) -> None:
    task_id = engine.task_service.submit("take_double", n=3)
    engine.ledger.update(
        Update(task_id, None, {"cancel_requested": True}), engine.clock()
    )

    result = engine.take(TaskQueue.DEFAULT, WORKER, engine.clock())

    assert result is not None
    assert result[1] is None
    record = engine.ledger.get(task_id)
    assert record.status is TaskStatus.PENDING
    assert record.attempts == 0
    assert queued(engine) == []


@pytest.mark.parametrize(
    "change",
    [
        {"name": "os.system"},
        {"eta": "2999-01-01T00:00:00"},
        {"args": []},
        {"args": [42]},
    ],
)
def test_take_skips_foreign_messages(engine: Engine, change: dict[str, object]) -> None:
    """A foreign name, an ETA or a missing id is left to the general path."""
    task_id = engine.task_service.submit("take_double", n=4)
    storage = engine.hueys[TaskQueue.DEFAULT].storage
    message = json.loads(storage.dequeue())
    message.update(change)
    storage.enqueue(json.dumps(message).encode(), 0)

    result = engine.take(TaskQueue.DEFAULT, WORKER, engine.clock())

    assert result is not None
    assert json.loads(result[0]) == message
    assert result[1] is None
    assert engine.ledger.get(task_id).status is TaskStatus.PENDING


def test_take_of_non_json_bytes(engine: Engine) -> None:
    engine.hueys[TaskQueue.DEFAULT].storage.enqueue(b"\x80\x04not json", 0)
    result = engine.take(TaskQueue.DEFAULT, WORKER, engine.clock())
    assert result == (b"\x80\x04not json", None)


def test_redis_keeps_last_taken(url: str) -> None:
    """A take whose reply is lost can learn which task it claimed."""
    if not url.startswith("redis"):
        pytest.skip("only Redis replies can be lost between the claim and the worker")
    engine = open_test_engine(url)
    try:
        ledger = engine.ledger
        assert isinstance(ledger, RedisLedger)
        assert ledger.last_taken(WORKER) is None
        task_id = engine.task_service.submit("take_double", n=5)
        engine.take(TaskQueue.DEFAULT, WORKER, engine.clock())
        assert ledger.last_taken(WORKER) == task_id
        # A message that is not claimed leaves the last one in place.
        engine.hueys[TaskQueue.DEFAULT].storage.enqueue(b"[]", 0)
        engine.take(TaskQueue.DEFAULT, WORKER, engine.clock())
        assert ledger.last_taken(WORKER) == task_id
    finally:
        engine.close()


def test_workers_run_both_paths(engine: Engine) -> None:
    """Tasks claimed by take and by the general path both finish."""
    plain = engine.task_service.submit("take_double", n=6)
    later = engine.task_service.submit("take_double", n=7)
    storage = engine.hueys[TaskQueue.DEFAULT].storage
    messages = [json.loads(storage.dequeue()) for _ in range(2)]
    messages[1]["eta"] = "2000-01-01T00:00:00"  # due long ago: run by the general path
    for message in messages:
        storage.enqueue(json.dumps(message).encode(), 0)

    engine.start_workers(scheduler=False)

    assert wait_final(engine, plain).result == 12
    assert wait_final(engine, later).result == 14
    for task_id in (plain, later):
        assert engine.ledger.get(task_id).attempts == 1


def test_write_applies_like_apply(engine: Engine) -> None:
    """`write` moves status, counters and minute figures as `apply` does."""
    ledger = engine.ledger
    task_ids = [engine.task_service.submit("take_double", n=n) for n in range(3)]
    now = engine.clock()
    for task_id in task_ids:
        ledger.claim(task_id, WORKER, now)
    ledger.write(
        [
            Update(task_id, TaskStatus.SUCCESS, {"finished_at": now + 2, "result": 1})
            for task_id in task_ids[:2]
        ]
        + [Update(task_ids[2], TaskStatus.FAILURE, {"finished_at": now + 1})],
        now + 3,
    )
    counts = ledger.status_counts()[TaskQueue.DEFAULT]
    assert counts == {TaskStatus.SUCCESS: 2, TaskStatus.FAILURE: 1}
    record = ledger.get(task_ids[0])
    assert record.result == 1
    assert record.updated_at == now + 3
    assert [status for status, _ in record.history][-2:] == ["running", "success"]
    stats = ledger.recent_stats(TaskQueue.DEFAULT, now + 3)
    assert (stats.succeeded_last_hour, stats.failed_last_hour) == (2, 1)


def test_worker_recovers_a_lost_reply(url: str) -> None:
    """After a take's reply is lost, the worker finds the task it claimed."""
    if not url.startswith("redis"):
        pytest.skip("only Redis replies can be lost between the claim and the worker")
    from chenu_desktop.pool import WorkerThread

    engine = open_test_engine(url)
    try:
        worker = WorkerThread(engine.pool.runtimes[TaskQueue.DEFAULT], 0)
        task_id = engine.task_service.submit("take_double", n=8)
        now = engine.clock()
        engine.take(TaskQueue.DEFAULT, worker.worker_id, now)  # the reply is ignored

        recovered = worker._recover_take(now)

        assert recovered is not None
        assert recovered.task_id == task_id
        assert recovered.status is TaskStatus.RUNNING
        # A take at another moment claimed nothing for this worker.
        assert worker._recover_take(now + 1) is None
        other = WorkerThread(engine.pool.runtimes[TaskQueue.DEFAULT], 1)
        assert other._recover_take(now) is None
    finally:
        engine.close()


def test_stop_wakes_idle_redis_workers(url: str) -> None:
    """Idle workers block for seconds on Redis; a stop ends the wait at once."""
    if not url.startswith("redis"):
        pytest.skip("only Redis workers block on their queue")
    from chenu_desktop.pool import REDIS_BLOCK_SECONDS

    engine = open_test_engine(url)
    try:
        engine.start_workers(scheduler=False)
        task_id = engine.task_service.submit("take_double", n=9)
        assert wait_final(engine, task_id).result == 18
        workers = engine.pool.local_workers()
        assert workers
        assert all(w.wake_key for w in workers)
        # Every worker is now blocked on an empty queue.
        assert engine.stop_workers(timeout=REDIS_BLOCK_SECONDS / 2)
        assert not any(w.is_alive() for w in workers)
        client = engine.hueys[TaskQueue.DEFAULT].storage.conn
        assert [w.wake_key for w in workers if client.exists(w.wake_key)] == []
    finally:
        engine.close()
