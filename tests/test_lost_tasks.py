"""Tasks of killed workers become lost; safe ones are requeued; live ones untouched."""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from chenu_desktop import TaskQueue, TaskStatus, background_task
from chenu_desktop.engine import Engine
from chenu_desktop.models import TaskRecord, WorkerInfo
from chenu_desktop.reaper import parse_worker_id

from engine_helpers import backend_url, open_test_engine, wait_final, wait_status


@background_task(name="lost_square", queue=TaskQueue.DEFAULT)
def square(n: int) -> int:
    return n * n


TASK_MODULE = """
from pathlib import Path

from chenu_desktop import TaskQueue, background_task, current_task


@background_task(name="{prefix}_hold", queue=TaskQueue.DEFAULT)
def hold(release: str) -> str:
    while not Path(release).exists():
        current_task().wait_cancelled(0.02)
    return "released"


@background_task(name="{prefix}_repeatable", queue=TaskQueue.DEFAULT, requeue_on_loss=True)
def repeatable(release: str) -> int:
    attempt = current_task().attempt
    while attempt == 1 and not Path(release).exists():
        current_task().wait_cancelled(0.02)
    return attempt
"""


@pytest.fixture
def task_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Write a task module both the workers and the test process import."""
    prefix = f"lost_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "modules"
    folder.mkdir()
    (folder / f"{prefix}.py").write_text(TASK_MODULE.format(prefix=prefix))
    monkeypatch.syspath_prepend(str(folder))
    importlib.import_module(prefix)
    return prefix


@pytest.fixture(params=["sqlite", "redis"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    redis_url = (
        request.getfixturevalue("redis_url") if request.param == "redis" else None
    )
    return backend_url(request.param, tmp_path, redis_url)


class WorkerProcess:
    """A headless `chenu-desktop worker` started for one test."""

    def __init__(self, url: str, module: str, folder: Path, config: Path) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(folder), env.get("PYTHONPATH", "")])
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "chenu_desktop",
                "--backend", url, "--config", str(config),
                "worker", f"--tasks={module}", "--queues", "default",
                "--workers", "default=2",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def start_worker(tmp_path: Path, task_module: str) -> Iterator[callable]:  # type: ignore[valid-type]
    config = tmp_path / "worker.toml"
    config.write_text(
        "heartbeat_interval = 0.2\nheartbeat_timeout = 1.5\npoll_interval = 0.1\n"
    )
    started: list[WorkerProcess] = []

    def start(url: str) -> WorkerProcess:
        worker = WorkerProcess(url, task_module, tmp_path / "modules", config)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def running_on(engine: Engine, task_id: str, timeout: float = 20.0) -> TaskRecord:
    return wait_status(engine, task_id, {TaskStatus.RUNNING}, timeout)


def test_killed_worker_tasks_lost(
    url: str, tmp_path: Path, task_module: str, start_worker
) -> None:
    worker = start_worker(url)
    release = tmp_path / "release"
    engine = open_test_engine(url, heartbeat_timeout=1.5)
    try:
        service = engine.task_service
        plain = service.submit(f"{task_module}_hold", release=str(release))
        safe = service.submit(f"{task_module}_repeatable", release=str(release))
        first = running_on(engine, plain)
        running_on(engine, safe)
        assert parse_worker_id(first.worker).pid == worker.process.pid
        worker.kill()
        # This engine's pool settles the dead run's tasks at its start.
        engine.start_workers(scheduler=False)
        lost = wait_final(engine, plain)
        assert lost.status is TaskStatus.LOST
        assert first.worker in lost.error
        assert lost.result is None
        requeued = wait_final(engine, safe)
        assert requeued.status is TaskStatus.SUCCESS
        assert requeued.result == 2
        assert requeued.attempts == 2
    finally:
        engine.close()


def test_other_worker_untouched(
    url: str, tmp_path: Path, task_module: str, start_worker
) -> None:
    release = tmp_path / "release"
    doomed = start_worker(url)
    engine = open_test_engine(url, heartbeat_timeout=1.5)
    try:
        service = engine.task_service
        first = [
            service.submit(f"{task_module}_hold", release=str(release))
            for _ in range(2)
        ]
        for task_id in first:
            running_on(engine, task_id)
        survivor = start_worker(url)
        second = [
            service.submit(f"{task_module}_hold", release=str(release))
            for _ in range(2)
        ]
        for task_id in second:
            record = running_on(engine, task_id)
            assert parse_worker_id(record.worker).pid == survivor.process.pid
        doomed.kill()
        # Workers on the low queue only, so this pool does not take the held tasks.
        engine.start_workers({TaskQueue.LOW}, scheduler=False)
        for task_id in first:
            assert wait_final(engine, task_id).status is TaskStatus.LOST
        for task_id in second:
            assert service.get_status(task_id).status is TaskStatus.RUNNING
        release.touch()
        for task_id in second:
            assert wait_final(engine, task_id).status is TaskStatus.SUCCESS
    finally:
        release.touch()
        engine.close()


def test_stale_heartbeat_from_other_host(url: str) -> None:
    """A remote worker whose heartbeat expired loses its task; a live one keeps it."""
    engine = open_test_engine(url, heartbeat_timeout=1.5)
    try:
        service = engine.task_service
        now = engine.clock()
        stale_id = service.submit("cleanup_old_data", days=999)
        live_id = service.submit("aggregate_analytics", period="daily")
        stale_worker = "far-away-host-4242-low-aaaaaa-0"
        live_worker = "far-away-host-4343-low-bbbbbb-0"
        assert engine.ledger.claim(stale_id, stale_worker, now - 60) is not None
        assert engine.ledger.claim(live_id, live_worker, now - 60) is not None
        engine.ledger.put_heartbeats(
            [
                WorkerInfo(live_worker, "far-away-host", 4343, TaskQueue.LOW, live_id,
                           now - 60, now, "busy"),
            ],
            ttl=30,
        )  # fmt: skip
        settled = engine.pool.reaper.settle(now)
        assert settled == [stale_id]
        assert service.get_status(stale_id).status is TaskStatus.LOST
        assert service.get_status(live_id).status is TaskStatus.RUNNING
    finally:
        engine.close()


def test_dead_local_process_live_heartbeat(url: str) -> None:
    """A crashed process on this machine loses its tasks before its beat expires."""
    exited = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(exited.stdout)
    worker = f"{socket.gethostname()}-{pid}-default-dead00-0"
    engine = open_test_engine(url, heartbeat_timeout=30)
    try:
        now = engine.clock()
        task_id = engine.task_service.submit("cleanup_old_data", days=999)
        assert engine.ledger.claim(task_id, worker, now - 1) is not None
        engine.ledger.put_heartbeats(
            [
                WorkerInfo(worker, socket.gethostname(), pid, TaskQueue.DEFAULT,
                           task_id, now - 1, now, "busy"),
            ],
            ttl=30,
        )  # fmt: skip
        assert engine.pool.reaper.settle(now) == [task_id]
        record = engine.task_service.get_status(task_id)
        assert record.status is TaskStatus.LOST
        assert worker in record.error
    finally:
        engine.close()


def test_pending_without_message_requeued(url: str) -> None:
    """A message taken off the queue by a process that then died is put back."""
    engine = open_test_engine(url)
    try:
        task_id = engine.task_service.submit("lost_square", n=4)
        queued = engine.task_service.submit("lost_square", n=5)
        storage = engine.hueys[TaskQueue.DEFAULT].storage
        # Take the older message off the queue, as a worker does before its claim.
        assert storage.dequeue() is not None
        assert len(storage.enqueued_items()) == 1

        assert engine.pool.reaper.requeue_unqueued() == [task_id]
        engine.start_workers(scheduler=False)
        for each_id, square in ((task_id, 16), (queued, 25)):
            record = wait_final(engine, each_id)
            assert record.status is TaskStatus.SUCCESS, record.error
            assert record.result == square
            assert record.attempts == 1
    finally:
        engine.close()


def test_claim_within_grace_not_requeued(url: str) -> None:
    """A message popped by a live worker just before its claim is left alone."""
    engine = open_test_engine(url)
    try:
        claimed = engine.task_service.submit("lost_square", n=2)
        orphan = engine.task_service.submit("lost_square", n=3)
        storage = engine.hueys[TaskQueue.DEFAULT].storage
        assert storage.dequeue() is not None
        assert storage.dequeue() is not None
        waits: list[float] = []

        def claim_during_grace(seconds: float) -> bool:
            waits.append(seconds)
            engine.ledger.claim(claimed, "here-1-default-aaaaaa-0", engine.clock())
            return False

        requeued = engine.pool.reaper.requeue_unqueued(
            grace=2.0, wait=claim_during_grace
        )

        assert waits == [2.0]
        assert requeued == [orphan]
        assert [json.loads(m)["args"] for m in storage.enqueued_items()] == [[orphan]]
    finally:
        engine.close()


def test_pending_check_stops_with_the_pool(url: str) -> None:
    engine = open_test_engine(url)
    try:
        engine.task_service.submit("lost_square", n=2)
        assert engine.hueys[TaskQueue.DEFAULT].storage.dequeue() is not None
        assert engine.pool.reaper.requeue_unqueued(grace=2.0, wait=lambda _: True) == []
    finally:
        engine.close()


def test_recent_task_not_lost_yet(url: str) -> None:
    engine = open_test_engine(url, heartbeat_timeout=30)
    try:
        now = engine.clock()
        task_id = engine.task_service.submit("cleanup_old_data", days=999)
        engine.ledger.claim(task_id, "far-away-host-4242-low-aaaaaa-0", now - 5)
        assert engine.pool.reaper.settle(now) == []
        assert engine.task_service.get_status(task_id).status is TaskStatus.RUNNING
    finally:
        engine.close()


def test_finished_task_not_lost(url: str) -> None:
    engine = open_test_engine(url, heartbeat_timeout=1.5)
    try:
        engine.start_workers(scheduler=False)
        task_id = engine.task_service.submit("cleanup_old_data", days=999)
        wait_final(engine, task_id)
        assert engine.pool.reaper.settle(engine.clock() + 3600) == []
        assert engine.task_service.get_status(task_id).status is TaskStatus.SUCCESS
    finally:
        engine.close()


def test_parse_worker_id_forms() -> None:
    address = parse_worker_id("my-laptop-1234-default-abc123-0")
    assert address.host == "my-laptop"
    assert address.pid == 1234
    assert address.run_id == "abc123"
    assert parse_worker_id("nonsense") is None
    assert parse_worker_id(None) is None
