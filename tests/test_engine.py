"""The engine end to end on a real SQLite file and a real redis-server."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from pathlib import Path
from typing import Iterator

import pytest

from chenu_desktop import (
    BackendUnavailableError,
    InvalidArgumentError,
    InvalidStateError,
    TaskCancelled,
    TaskNotFoundError,
    TaskPriority,
    TaskQueue,
    TaskStatus,
    UnknownTaskError,
    background_task,
    check_cancelled,
    current_task,
    set_progress,
)
from chenu_desktop.engine import Engine
from chenu_desktop.models import FINAL_STATUSES

from engine_helpers import (
    backend_url,
    open_test_engine,
    wait_final,
    wait_status,
    wait_until,
)

#: Released by tests to let blocked tasks end.
_gates: dict[str, threading.Event] = {}
#: Order in which `ordered_task` ran, per test key.
_runs: dict[str, list[int]] = {}
_runs_lock = threading.Lock()


def gate(key: str) -> threading.Event:
    return _gates.setdefault(key, threading.Event())


@background_task(name="t_echo", queue=TaskQueue.DEFAULT)
def echo(value, label="x"):
    return {"value": value, "label": label}


@background_task(name="t_async_echo", queue=TaskQueue.DEFAULT)
async def async_echo(value: int) -> int:
    await asyncio.sleep(0)
    return value * 2


@background_task(name="t_block", queue=TaskQueue.DEFAULT)
def block(key: str) -> str:
    """Run until the test opens the gate or cancels the task."""
    while not gate(key).is_set():
        if current_task().wait_cancelled(0.01):
            check_cancelled()
    return "released"


@background_task(name="t_block_low", queue=TaskQueue.LOW)
def block_low(key: str) -> str:
    gate(key).wait(30)
    return "released"


@background_task(name="t_block_high", queue=TaskQueue.HIGH)
def block_high(key: str) -> str:
    gate(key).wait(30)
    return "released"


@background_task(name="t_block_scheduled", queue=TaskQueue.SCHEDULED)
def block_scheduled(key: str) -> str:
    gate(key).wait(30)
    return "released"


@background_task(name="t_async_block", queue=TaskQueue.DEFAULT)
async def async_block(key: str) -> str:
    while not gate(key).is_set():
        await asyncio.sleep(0.01)
    return "released"


@background_task(name="t_ordered", queue=TaskQueue.LOW)
def ordered_task(key: str, number: int) -> int:
    with _runs_lock:
        _runs.setdefault(key, []).append(number)
    return number


@background_task(
    name="t_flaky", queue=TaskQueue.DEFAULT, max_retries=2, retry_delay=0.3
)
def flaky(key: str, succeed_on: int) -> int:
    attempt = current_task().attempt
    if attempt < succeed_on:
        raise RuntimeError(f"attempt {attempt} failed")
    return attempt


@background_task(name="t_fail", queue=TaskQueue.DEFAULT)
def fail(message: str) -> None:
    raise ValueError(message)


@background_task(name="t_bad_result", queue=TaskQueue.DEFAULT)
def bad_result() -> object:
    return {1, 2, 3}


@background_task(name="t_progress", queue=TaskQueue.DEFAULT)
def progress(key: str) -> str:
    set_progress(0.5, "half way")
    gate(key).wait(30)
    return "done"


@background_task(name="t_huey_names", queue=TaskQueue.DEFAULT)
def huey_names(priority, timeout, id, eta, delay, expires):
    return [priority, timeout, id, eta, delay, expires]


@background_task(
    name="t_governed",
    queue=TaskQueue.GOVERNANCE,
    priority=TaskPriority.CRITICAL,
    requires_governance=True,
)
def governed(action_id: str, approved_by: str) -> dict:
    return {"action_id": action_id, "approved_by": approved_by}


@pytest.fixture(params=["sqlite", "redis"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    redis_url = (
        request.getfixturevalue("redis_url") if request.param == "redis" else None
    )
    engine = open_test_engine(backend_url(request.param, tmp_path, redis_url))
    engine.start_workers()
    try:
        yield engine
    finally:
        for event in _gates.values():
            event.set()
        engine.close(timeout=10)
        _gates.clear()
        _runs.clear()


# --- submit and run ---------------------------------------------------------


def test_submit_runs_to_success(engine: Engine) -> None:
    task_id = engine.task_service.submit("t_echo", value=[1, "é"], label="ünïcode")
    record = wait_final(engine, task_id)
    assert record.status is TaskStatus.SUCCESS
    assert record.result == {"value": [1, "é"], "label": "ünïcode"}
    assert record.attempts == 1
    assert record.worker
    assert record.duration_seconds is not None
    assert record.finished_at >= record.started_at >= record.created_at


def test_async_task_runs(engine: Engine) -> None:
    task_id = engine.task_service.submit("t_async_echo", value=21)
    assert wait_final(engine, task_id).result == 42


def test_async_service_submits(engine: Engine) -> None:
    async def main() -> str:
        task_id = await engine.async_task_service.submit("t_echo", value=3)
        record = await engine.async_task_service.get_status(task_id)
        assert record.task_name == "t_echo"
        return task_id

    task_id = asyncio.run(main())
    assert wait_final(engine, task_id).status is TaskStatus.SUCCESS


def test_huey_option_names_reach_task(engine: Engine) -> None:
    task_id = engine.task_service.submit(
        "t_huey_names",
        kwargs={"priority": 1, "eta": "e"},
        timeout=2,
        id="i",
        delay=4,
        expires=5,
    )
    assert wait_final(engine, task_id).result == [1, 2, "i", "e", 4, 5]


def test_positional_args(engine: Engine) -> None:
    task_id = engine.task_service.submit("t_echo", args=[7, "y"])
    assert wait_final(engine, task_id).result == {"value": 7, "label": "y"}


def test_progress_is_recorded(engine: Engine) -> None:
    task_id = engine.task_service.submit("t_progress", key="progress")
    record = wait_until(
        lambda: (r := engine.task_service.get_status(task_id)).progress == 0.5 and r,
        message="progress 0.5",
    )
    assert record.progress_message == "half way"
    gate("progress").set()
    assert wait_final(engine, task_id).progress == 1.0


# --- bad input ------------------------------------------------------------


def test_unknown_task_name_rejected(engine: Engine) -> None:
    with pytest.raises(UnknownTaskError, match="'no_such_task'"):
        engine.task_service.submit("no_such_task")


def test_non_json_argument_rejected(engine: Engine) -> None:
    before = engine.task_service.count_tasks()
    with pytest.raises(InvalidArgumentError, match=r"argument 'value'.*\[1\].*set"):
        engine.task_service.submit("t_echo", value=[1, {2}])
    with pytest.raises(InvalidArgumentError, match="string keys"):
        engine.task_service.submit("t_echo", value={1: "a"})
    with pytest.raises(InvalidArgumentError, match="finite"):
        engine.task_service.submit("t_echo", value=float("nan"))
    assert engine.task_service.count_tasks() == before


def test_wrong_signature_rejected(engine: Engine) -> None:
    with pytest.raises(InvalidArgumentError, match="t_echo.*signature"):
        engine.task_service.submit("t_echo", nope=1)
    with pytest.raises(InvalidArgumentError, match="missing"):
        engine.task_service.submit("t_echo")


def test_argument_given_twice_rejected(engine: Engine) -> None:
    with pytest.raises(InvalidArgumentError, match="given twice"):
        engine.task_service.submit("t_echo", kwargs={"value": 1}, value=2)


def test_bad_options_rejected(engine: Engine) -> None:
    service = engine.task_service
    with pytest.raises(InvalidArgumentError, match="countdown -1"):
        service.submit("t_echo", value=1, countdown=-1)
    with pytest.raises(InvalidArgumentError, match="priority 10"):
        service.submit("t_echo", value=1, priority=10)
    with pytest.raises(InvalidArgumentError, match="only one"):
        service.submit("t_echo", value=1, countdown=1, eta=dt.datetime.now())
    with pytest.raises(InvalidArgumentError, match="expires_in 0"):
        service.submit("t_echo", value=1, expires_in=0)


def test_unstorable_result_fails(engine: Engine) -> None:
    task_id = engine.task_service.submit("t_bad_result")
    record = wait_final(engine, task_id)
    assert record.status is TaskStatus.FAILURE
    assert "not a JSON value" in record.error


def test_unknown_id_errors(engine: Engine) -> None:
    service = engine.task_service
    with pytest.raises(TaskNotFoundError, match="'nope'"):
        service.get_status("nope")
    with pytest.raises(TaskNotFoundError):
        service.cancel("nope")
    with pytest.raises(TaskNotFoundError):
        service.retry("nope")
    with pytest.raises(TaskNotFoundError):
        service.approve("nope", "ada")


def test_duplicate_task_id_rejected(engine: Engine) -> None:
    engine.task_service.submit("t_echo", value=1, task_id="fixed-id")
    with pytest.raises(InvalidArgumentError, match="fixed-id"):
        engine.task_service.submit("t_echo", value=2, task_id="fixed-id")
    assert wait_final(engine, "fixed-id").result["value"] == 1


# --- failures and retries ---------------------------------------------------


def test_failure_keeps_traceback(engine: Engine) -> None:
    task_id = engine.task_service.submit("t_fail", message="kaputt ☠")
    record = wait_final(engine, task_id)
    assert record.status is TaskStatus.FAILURE
    assert record.error == "ValueError: kaputt ☠"
    assert "Traceback" in record.traceback
    assert "raise ValueError(message)" in record.traceback


def test_automatic_retries_show_retrying(engine: Engine) -> None:
    task_id = engine.task_service.submit("t_flaky", key="k", succeed_on=3)
    retrying = wait_status(engine, task_id, {TaskStatus.RETRYING})
    assert retrying.next_attempt_at is not None
    assert retrying.next_attempt_at > retrying.finished_at
    assert "attempt 1 failed" in retrying.error
    record = wait_final(engine, task_id)
    assert record.status is TaskStatus.SUCCESS
    assert record.attempts == 3
    assert record.result == 3


def test_retries_exhausted_fail(engine: Engine) -> None:
    task_id = engine.task_service.submit("t_flaky", key="k", succeed_on=9)
    record = wait_final(engine, task_id)
    assert record.status is TaskStatus.FAILURE
    assert record.attempts == 3
    assert "attempt 3 failed" in record.error


def test_retry_links_both_ways(engine: Engine) -> None:
    service = engine.task_service
    failed_id = service.submit("t_fail", message="once", priority=TaskPriority.HIGH)
    wait_final(engine, failed_id)
    new_id = service.retry(failed_id)
    new = wait_final(engine, new_id)
    old = service.get_status(failed_id)
    assert old.retried_as == new_id
    assert new.retry_of == failed_id
    assert new.kwargs == old.kwargs
    assert new.priority == TaskPriority.HIGH
    assert new.queue is old.queue
    with pytest.raises(InvalidStateError, match=new_id):
        service.retry(failed_id)


def test_retry_of_success_rejected(engine: Engine) -> None:
    task_id = engine.task_service.submit("t_echo", value=1)
    wait_final(engine, task_id)
    with pytest.raises(InvalidStateError, match="success"):
        engine.task_service.retry(task_id)


# --- cancel -----------------------------------------------------------------


def test_cancel_pending_never_runs(engine: Engine) -> None:
    engine.pool.pause(TaskQueue.DEFAULT)
    service = engine.task_service
    task_id = service.submit("t_echo", value=1)
    record = service.cancel(task_id)
    assert record.status is TaskStatus.CANCELLED
    engine.pool.resume(TaskQueue.DEFAULT)
    marker = service.submit("t_echo", value=2)
    wait_final(engine, marker)
    record = service.get_status(task_id)
    assert record.status is TaskStatus.CANCELLED
    assert record.started_at is None
    assert record.attempts == 0


def test_cancel_scheduled_never_runs(engine: Engine) -> None:
    service = engine.task_service
    task_id = service.submit("t_echo", value=1, countdown=0.3)
    assert service.get_status(task_id).status is TaskStatus.SCHEDULED
    service.cancel(task_id)
    # A later task with a shorter countdown proves the schedule moved past it.
    marker = service.submit("t_echo", value=2, countdown=0.5)
    wait_final(engine, marker)
    record = service.get_status(task_id)
    assert record.status is TaskStatus.CANCELLED
    assert record.started_at is None


def test_cancel_running_sync_task(engine: Engine) -> None:
    service = engine.task_service
    task_id = service.submit("t_block", key="never")
    wait_status(engine, task_id, {TaskStatus.RUNNING})
    record = service.cancel(task_id)
    assert record.status is TaskStatus.RUNNING
    assert record.cancel_requested
    final = wait_final(engine, task_id)
    assert final.status is TaskStatus.CANCELLED


def test_cancel_running_async_task(engine: Engine) -> None:
    service = engine.task_service
    task_id = service.submit("t_async_block", key="never-async")
    wait_status(engine, task_id, {TaskStatus.RUNNING})
    service.cancel(task_id)
    assert wait_final(engine, task_id).status is TaskStatus.CANCELLED


def test_cancel_from_other_engine(engine: Engine, tmp_path: Path) -> None:
    """A cancel stored by another process reaches the task through the ledger."""
    task_id = engine.task_service.submit("t_block", key="remote-cancel")
    wait_status(engine, task_id, {TaskStatus.RUNNING})
    other = open_test_engine(engine.config.backend_url)
    try:
        other.task_service.cancel(task_id)
        assert wait_final(other, task_id).status is TaskStatus.CANCELLED
    finally:
        other.close()


def test_cancel_finished_rejected(engine: Engine) -> None:
    task_id = engine.task_service.submit("t_echo", value=1)
    wait_final(engine, task_id)
    with pytest.raises(InvalidStateError, match="finished as success"):
        engine.task_service.cancel(task_id)


def test_cancel_retrying_stops_retries(engine: Engine) -> None:
    service = engine.task_service
    task_id = service.submit("t_flaky", key="k", succeed_on=3)
    wait_status(engine, task_id, {TaskStatus.RETRYING})
    service.cancel(task_id)
    marker = service.submit("t_echo", value=1, countdown=0.6)
    wait_final(engine, marker)
    record = service.get_status(task_id)
    assert record.status is TaskStatus.CANCELLED
    assert record.attempts == 1


# --- scheduling and priority -------------------------------------------------


def test_countdown_delays_start(engine: Engine) -> None:
    task_id = engine.task_service.submit("t_echo", value=1, countdown=0.5)
    record = engine.task_service.get_status(task_id)
    assert record.status is TaskStatus.SCHEDULED
    assert record.eta == pytest.approx(record.created_at + 0.5)
    final = wait_final(engine, task_id)
    assert final.status is TaskStatus.SUCCESS
    assert final.started_at >= record.eta


def test_expired_task_does_not_run(engine: Engine) -> None:
    engine.pool.pause(TaskQueue.DEFAULT)
    task_id = engine.task_service.submit("t_echo", value=1, expires_in=0.05)
    marker = engine.task_service.submit("t_echo", value=1, countdown=0.3)
    wait_status(engine, marker, {TaskStatus.PENDING})
    engine.pool.resume(TaskQueue.DEFAULT)
    record = wait_final(engine, task_id)
    assert record.status is TaskStatus.EXPIRED
    assert record.result is None


def test_priority_orders_queue(engine: Engine) -> None:
    engine.pool.pause(TaskQueue.LOW)
    service = engine.task_service
    plan = [(9, 1), (0, 2), (6, 3), (3, 4), (0, 5)]
    ids = [
        service.submit("t_ordered", key="prio", number=n, priority=p) for p, n in plan
    ]
    engine.pool.resume(TaskQueue.LOW)
    for task_id in ids:
        wait_final(engine, task_id)
    assert _runs["prio"] == [2, 5, 4, 3, 1]


def test_governance_runs_while_others_saturated(engine: Engine) -> None:
    service = engine.task_service
    blockers = []
    for name, queue in (
        ("t_block_high", TaskQueue.HIGH),
        ("t_block", TaskQueue.DEFAULT),
        ("t_block_low", TaskQueue.LOW),
        ("t_block_scheduled", TaskQueue.SCHEDULED),
    ):
        for _ in range(engine.pool.sizes()[queue] + 2):
            blockers.append(service.submit(name, key="saturate"))
    wait_until(
        lambda: all(
            s.running == engine.pool.sizes()[q]
            for q, s in service.queue_stats().items()
            if q is not TaskQueue.GOVERNANCE
        ),
        message="every worker of the other queues to be busy",
    )
    task_id = service.submit("t_governed", action_id="act-1")
    service.approve(task_id, "ada", reason="looks right")
    record = wait_final(engine, task_id)
    assert record.status is TaskStatus.SUCCESS
    assert record.result == {"action_id": "act-1", "approved_by": "ada"}
    still_waiting = [service.get_status(b).status for b in blockers]
    assert TaskStatus.PENDING in still_waiting
    gate("saturate").set()


# --- governance ---------------------------------------------------------------


def test_governance_waits_for_approval(engine: Engine) -> None:
    service = engine.task_service
    task_id = service.submit("t_governed", action_id="a")
    assert service.get_status(task_id).status is TaskStatus.AWAITING_APPROVAL
    marker = service.submit("t_echo", value=1)
    wait_final(engine, marker)
    assert service.get_status(task_id).status is TaskStatus.AWAITING_APPROVAL
    approved = service.approve(task_id, "grace", reason="ok")
    assert approved.approved_by == "grace"
    assert approved.approval_reason == "ok"
    record = wait_final(engine, task_id)
    assert record.result == {"action_id": "a", "approved_by": "grace"}
    with pytest.raises(InvalidStateError, match="not awaiting approval"):
        service.approve(task_id, "grace")


def test_governance_rejection(engine: Engine) -> None:
    service = engine.task_service
    task_id = service.submit("t_governed", action_id="b")
    with pytest.raises(InvalidArgumentError, match="reason"):
        service.reject(task_id, "grace", "  ")
    record = service.reject(task_id, "grace", "not today")
    assert record.status is TaskStatus.REJECTED
    assert record.approval_reason == "not today"
    assert record.finished_at is not None
    with pytest.raises(InvalidStateError):
        service.approve(task_id, "grace")
    new_id = service.retry(task_id)
    assert service.get_status(new_id).status is TaskStatus.AWAITING_APPROVAL


def test_governance_approver_not_submitted(engine: Engine) -> None:
    with pytest.raises(InvalidArgumentError, match="approved_by"):
        engine.task_service.submit("t_governed", action_id="c", approved_by="me")


# --- listing, counters, feed ----------------------------------------------------


def test_counters_match_records_after_burst(engine: Engine) -> None:
    service = engine.task_service
    ids = [service.submit("t_echo", value=i) for i in range(1000)]
    ids += [service.submit("t_fail", message=str(i)) for i in range(1000)]
    wait_until(
        lambda: (
            service.count_tasks(status=TaskStatus.SUCCESS) >= 1000
            and service.count_tasks(status=TaskStatus.FAILURE) >= 1000
        ),
        timeout=60,
        message="2,000 tasks to finish",
    )
    engine.flush()
    stats = service.queue_stats()[TaskQueue.DEFAULT]
    assert stats.count(TaskStatus.SUCCESS) == 1000
    assert stats.count(TaskStatus.FAILURE) == 1000
    assert stats.pending == 0
    assert stats.running == 0
    assert stats.succeeded_last_hour == 1000
    assert stats.failed_last_hour == 1000
    assert sum(stats.throughput_per_minute) == 2000
    counted = {
        status: len(
            [
                r
                for offset in range(0, 2000, 500)
                for r in service.list_tasks(status=status, limit=500, offset=offset)
            ]
        )
        for status in (TaskStatus.SUCCESS, TaskStatus.FAILURE)
    }
    assert counted[TaskStatus.SUCCESS] == 1000
    assert counted[TaskStatus.FAILURE] == 1000


def test_filters_and_pagination(engine: Engine) -> None:
    service = engine.task_service
    ids = [service.submit("t_echo", value=i) for i in range(25)]
    failed = service.submit("t_fail", message="disk Ünavailable")
    wait_final(engine, failed)
    for task_id in ids:
        wait_final(engine, task_id)
    pages = [
        service.list_tasks(task_name="t_echo", limit=10, offset=o) for o in (0, 10, 20)
    ]
    seen = [r.task_id for page in pages for r in page]
    assert len(seen) == 25
    assert set(seen) == set(ids)
    created = [r.created_at for page in pages for r in page]
    assert created == sorted(created, reverse=True)
    assert [r.task_id for r in service.list_tasks(status=TaskStatus.FAILURE)] == [
        failed
    ]
    assert [r.task_id for r in service.list_tasks(text="ünavail")] == [failed]
    assert [r.task_id for r in service.list_tasks(text=failed[:8])] == [failed]
    assert len(service.list_tasks(text="echo", limit=100)) == 25
    assert service.list_tasks(queue=TaskQueue.GOVERNANCE) == []
    assert service.count_tasks(queue="default") == 26
    middle = service.get_status(ids[12]).created_at
    newer = service.list_tasks(task_name="t_echo", created_after=middle, limit=100)
    assert {r.task_id for r in newer} == set(ids[12:])
    with pytest.raises(InvalidArgumentError, match="invalid status"):
        service.list_tasks(status="done")
    with pytest.raises(InvalidArgumentError, match="invalid queue"):
        service.list_tasks(queue="urgent")
    with pytest.raises(InvalidArgumentError, match="limit 0"):
        service.list_tasks(limit=0)


def test_change_feed_follows_task(engine: Engine) -> None:
    start = engine.ledger.last_seq()
    task_id = engine.task_service.submit("t_echo", value=1)
    wait_final(engine, task_id)
    batch = engine.changes(start)
    statuses = [c.status for c in batch.changes if c.task_id == task_id]
    assert statuses[0] is TaskStatus.PENDING
    assert TaskStatus.RUNNING in statuses
    assert statuses[-1] is TaskStatus.SUCCESS
    assert batch.last_seq == batch.changes[-1].seq
    assert not batch.reset
    assert engine.changes(batch.last_seq).changes == []


def test_registered_tasks_describe(engine: Engine) -> None:
    tasks = {t["name"]: t for t in engine.task_service.registered_tasks()}
    governed_task = tasks["t_governed"]
    assert governed_task["queue"] == "governance"
    assert governed_task["priority"] == 0
    assert governed_task["requires_governance"] is True
    assert (
        governed_task["signature"]
        == "t_governed(action_id: str, approved_by: str) -> dict"
    )
    assert tasks["t_flaky"]["max_retries"] == 2
    assert tasks["t_async_echo"]["is_async"] is True
    assert {"cleanup_old_data", "aggregate_analytics", "export_tasks"} <= set(tasks)


def test_cleanup_removes_only_old_finished(engine: Engine) -> None:
    service = engine.task_service
    done = service.submit("t_echo", value=1)
    wait_final(engine, done)
    waiting = service.submit("t_governed", action_id="keep")
    assert service.cleanup(older_than_days=1) == 0
    assert service.cleanup(older_than_days=0) == 1
    with pytest.raises(TaskNotFoundError):
        service.get_status(done)
    assert service.get_status(waiting).status is TaskStatus.AWAITING_APPROVAL
    with pytest.raises(InvalidArgumentError, match="older_than_days -1"):
        service.cleanup(older_than_days=-1)


# --- pool ---------------------------------------------------------------------


def test_heartbeats_list_workers(engine: Engine) -> None:
    workers = wait_until(engine.workers, message="heartbeats")
    queues = {w.queue for w in workers}
    assert queues == set(TaskQueue)
    assert len(workers) == sum(engine.pool.sizes().values())
    task_id = engine.task_service.submit("t_block", key="beat")
    wait_status(engine, task_id, {TaskStatus.RUNNING})
    busy = wait_until(
        lambda: [w for w in engine.workers() if w.current_task == task_id],
        message="a heartbeat naming the running task",
    )
    assert busy[0].state == "busy"
    assert busy[0].pid > 0
    gate("beat").set()


def test_workers_of_two_engines_listed(engine: Engine) -> None:
    other = open_test_engine(engine.config.backend_url)
    try:
        other.start_workers({TaskQueue.LOW})
        both = wait_until(
            lambda: (
                {
                    run_id
                    for w in engine.workers()
                    for run_id in (engine.pool.run_id, other.pool.run_id)
                    if run_id in w.worker_id
                }
                == {engine.pool.run_id, other.pool.run_id}
            ),
            message="heartbeats of both pools",
        )
        assert both
        others = [w for w in engine.workers() if other.pool.run_id in w.worker_id]
        assert {w.queue for w in others} == {TaskQueue.LOW}
    finally:
        other.close()
    wait_until(
        lambda: all(other.pool.run_id not in w.worker_id for w in engine.workers()),
        message="the stopped pool's heartbeats to go",
    )


def test_resize_while_running(engine: Engine) -> None:
    engine.pool.resize(TaskQueue.LOW, 3)
    wait_until(
        lambda: len([w for w in engine.workers() if w.queue is TaskQueue.LOW]) == 3,
        message="three low workers",
    )
    engine.pool.resize(TaskQueue.LOW, 1)
    wait_until(
        lambda: len([w for w in engine.workers() if w.queue is TaskQueue.LOW]) == 1,
        message="one low worker",
    )
    task_id = engine.task_service.submit("t_ordered", key="resize", number=1)
    assert wait_final(engine, task_id).status is TaskStatus.SUCCESS
    with pytest.raises(ValueError, match="worker count -1"):
        engine.pool.resize(TaskQueue.LOW, -1)


def test_pause_keeps_accepting_submits(engine: Engine) -> None:
    engine.pool.pause(TaskQueue.DEFAULT)
    task_id = engine.task_service.submit("t_echo", value=1)
    assert engine.task_service.queue_stats()[TaskQueue.DEFAULT].paused
    other_queue = engine.task_service.submit("t_ordered", key="pause", number=1)
    wait_final(engine, other_queue)
    assert engine.task_service.get_status(task_id).status is TaskStatus.PENDING
    engine.pool.resume(TaskQueue.DEFAULT)
    assert wait_final(engine, task_id).status is TaskStatus.SUCCESS


def test_stop_is_bounded(engine: Engine) -> None:
    task_id = engine.task_service.submit("t_block_low", key="stuck")
    wait_status(engine, task_id, {TaskStatus.RUNNING})
    assert engine.stop_workers(timeout=0.3) is False
    gate("stuck").set()


def test_final_statuses_are_final() -> None:
    assert TaskStatus.RUNNING not in FINAL_STATUSES
    assert all(s.is_final for s in FINAL_STATUSES)


def test_task_cancelled_is_not_value_error() -> None:
    assert not issubclass(TaskCancelled, ValueError)


def test_retry_without_task_module(engine: Engine) -> None:
    """A process that does not import the task (a dashboard) can still retry it."""
    service = engine.task_service
    failed_id = service.submit("t_fail", message="again")
    wait_final(engine, failed_id)
    definition = engine.registry.find("t_fail")
    engine.pool.pause(TaskQueue.DEFAULT)
    engine.registry.remove("t_fail")
    try:
        new_id = service.retry(failed_id)
    finally:
        engine.registry.add(definition)
        engine.pool.resume(TaskQueue.DEFAULT)
    record = wait_final(engine, new_id)
    assert record.retry_of == failed_id
    assert record.status is TaskStatus.FAILURE
    assert record.error == "ValueError: again"


def test_unreachable_redis_gives_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"redis://:hunter2@127.0.0.1:{port}/0"
    engine = open_test_engine(url)
    try:
        with pytest.raises(BackendUnavailableError) as caught:
            engine.task_service.get_status("any")
        message = str(caught.value)
        assert "get_status failed" in message
        assert f"127.0.0.1:{port}" in message
        assert "hunter2" not in message
        with pytest.raises(BackendUnavailableError, match="nothing was stored"):
            engine.task_service.submit("t_echo", value=1)
    finally:
        engine.close(timeout=1)


def test_history_lists_each_status(engine: Engine) -> None:
    task_id = engine.task_service.submit("t_flaky", key="h", succeed_on=2)
    record = wait_final(engine, task_id)
    statuses = [status for status, _ in record.history]
    assert statuses == ["pending", "running", "retrying", "running", "success"]
    times = [at for _, at in record.history]
    assert times == sorted(times)
    assert times[0] == record.created_at
    assert times[-1] == record.updated_at


def test_oversized_arguments_rejected(engine: Engine) -> None:
    service = engine.task_service
    before = service.count_tasks()
    with pytest.raises(
        InvalidArgumentError, match=r"t_echo.*over the limit of 1048576 bytes"
    ):
        service.submit("t_echo", value="x" * (1024 * 1024 + 1))
    assert service.count_tasks() == before
    task_id = service.submit("t_echo", value="é" * 200_000)
    assert wait_final(engine, task_id).result["value"] == "é" * 200_000


def test_undecodable_message_recorded(engine: Engine) -> None:
    storage = engine.hueys[TaskQueue.DEFAULT].storage
    storage.enqueue(b"\x80\x04not json at all", 0)
    record = wait_until(
        lambda: next(
            iter(engine.task_service.list_tasks(task_name="(undecodable message)")),
            None,
        ),
        message="the undecodable message's failure record",
    )
    assert record.status is TaskStatus.FAILURE
    assert "could not be decoded" in record.error
    assert "not json at all" in record.args[0]


def test_tampered_message_fails_its_task(engine: Engine) -> None:
    from chenu_desktop.models import TaskRecord

    now = engine.clock()
    task_id = "forged-target"
    engine.ledger.insert(
        TaskRecord(
            task_id, "t_echo", TaskQueue.DEFAULT, 6, TaskStatus.PENDING,
            kwargs={"value": 1}, created_at=now, updated_at=now,
        )
    )  # fmt: skip
    forged = '{"id": "%s", "name": "os.system", "args": ["%s"]}' % (task_id, task_id)
    engine.hueys[TaskQueue.DEFAULT].storage.enqueue(forged.encode(), 0)
    record = wait_final(engine, task_id)
    assert record.status is TaskStatus.FAILURE
    assert "could not be decoded" in record.error
    assert record.started_at is None
