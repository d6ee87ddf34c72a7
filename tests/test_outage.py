"""Redis outages: tasks keep a truthful status and none vanishes across a restart."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chenu_desktop import TaskStatus
from chenu_desktop.engine import Engine
from chenu_desktop.errors import (
    BackendUnavailableError,
    TaskNotFoundError,
)

from engine_helpers import (
    Burst,
    open_test_engine,
    wait_final,
    wait_final_all,
    wait_until,
)
from redis_helpers import RedisServer

TASK_MODULE = """
from pathlib import Path

from chenu_desktop import TaskQueue, background_task, current_task


@background_task(name="{prefix}_echo", queue=TaskQueue.DEFAULT)
def echo(number: int) -> int:
    return number


@background_task(name="{prefix}_fail", queue=TaskQueue.DEFAULT)
def fail(number: int) -> None:
    raise ValueError(f"task {{number}} fails on purpose")


@background_task(name="{prefix}_hold", queue=TaskQueue.LOW)
def hold(release: str, outcome: str) -> str:
    while not Path(release).exists():
        current_task().wait_cancelled(0.02)
    if outcome == "fail":
        raise RuntimeError("hold failed on purpose")
    return outcome
"""

#: Tasks submitted in the burst of the fault test.
BURST = 1000
#: Seconds a worker process gets to start, stop, or finish the burst.
PROCESS_TIMEOUT = 120.0


@pytest.fixture
def task_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Write a task module that the test process and the worker process import."""
    prefix = f"outage_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "modules"
    folder.mkdir()
    (folder / f"{prefix}.py").write_text(TASK_MODULE.format(prefix=prefix))
    monkeypatch.syspath_prepend(str(folder))
    importlib.import_module(prefix)
    yield prefix
    sys.modules.pop(prefix, None)


@pytest.fixture
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of this test alone, with an append-only file."""
    own = RedisServer(tmp_path_factory.mktemp("outage-redis"), appendonly=True)
    own.start()
    try:
        yield own
    finally:
        own.stop()


class WorkerProcess:
    """A headless `chenu-desktop worker` whose output goes to a log file."""

    def __init__(self, tmp_path: Path, url: str, module: str) -> None:
        config = tmp_path / "worker.toml"
        config.write_text(
            "heartbeat_interval = 0.2\nheartbeat_timeout = 5.0\npoll_interval = 0.2\n"
        )
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(tmp_path / "modules"), env.get("PYTHONPATH", "")]
        )
        self.log_path = tmp_path / "worker.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "chenu_desktop",
                "--backend", url, "--config", str(config),
                "worker", f"--tasks={module}",
                "--workers", "default=2", "low=1",
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        """Stop the process with SIGTERM and return its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        return self.process.returncode


@pytest.fixture
def worker_process(
    tmp_path: Path, server: RedisServer, task_module: str
) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(tmp_path, server.url, task_module)
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def engine(server: RedisServer) -> Iterator[Engine]:
    opened = open_test_engine(server.url)
    try:
        yield opened
    finally:
        opened.close(timeout=5)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_burst_survives_redis_restart(
    server: RedisServer,
    engine: Engine,
    worker_process: WorkerProcess,
    task_module: str,
) -> None:
    """Stop and restart redis-server during a burst run by two processes."""
    wait_until(
        lambda: len({w.pid for w in engine.workers()}) == 1,
        PROCESS_TIMEOUT,
        "the worker process to send heartbeats",
    )
    engine.start_workers(scheduler=False)
    burst = Burst(engine, task_module, BURST)
    burst.thread.start()

    wait_until(lambda: burst.counts()[0] >= 300, 60, "300 accepted submits")
    server.stop()
    wait_until(lambda: burst.counts()[1] >= 20, 60, "20 rejected submits")
    server.start()
    burst.resumed.set()
    burst.thread.join(PROCESS_TIMEOUT)
    assert not burst.thread.is_alive()
    assert burst.unexpected == []

    accepted, rejected = burst.accepted, burst.rejected
    assert len(accepted) + len(rejected) + len(burst.unconfirmed) == BURST
    assert len(accepted) > 300
    wait_final_all(engine, accepted, PROCESS_TIMEOUT)

    service = engine.task_service
    for task_id in accepted:
        record = service.get_status(task_id)
        number = int(task_id.split("-")[1])
        if record.status is TaskStatus.SUCCESS:
            assert record.result == number, task_id
        else:
            assert record.status in {TaskStatus.FAILURE, TaskStatus.LOST}, task_id
            assert record.error, task_id
        if number % 10 == 9:
            assert record.status is not TaskStatus.SUCCESS, task_id
    for task_id in rejected:
        with pytest.raises(TaskNotFoundError):
            service.get_status(task_id)
    # A submit whose reply was lost for longer than the confirm timeout either
    # stored nothing or stored a task that then ran like the others.
    stored_unconfirmed = []
    for task_id in burst.unconfirmed:
        try:
            stored_unconfirmed.append(service.get_status(task_id).task_id)
        except TaskNotFoundError:
            continue
    wait_final_all(engine, stored_unconfirmed, PROCESS_TIMEOUT)
    assert service.count_tasks() == len(accepted) + len(stored_unconfirmed)

    # Both processes ran tasks, and every worker thread here survived.
    records = service.list_tasks(limit=1000)
    workers = {r.worker.split("-")[1] for r in records if r.worker}
    assert str(worker_process.process.pid) in workers
    assert str(os.getpid()) in workers
    assert len(engine.pool.local_workers()) == sum(engine.config.workers.values())
    assert all(r.scheduler.is_alive() for r in engine.pool.runtimes.values())
    assert worker_process.process.poll() is None, worker_process.output()
    assert worker_process.stop() == 0, worker_process.output()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("outcome", "status"), [("done", TaskStatus.SUCCESS), ("fail", TaskStatus.FAILURE)]
)
def test_outcome_kept_through_outage(
    server: RedisServer,
    engine: Engine,
    task_module: str,
    tmp_path: Path,
    outcome: str,
    status: TaskStatus,
) -> None:
    """A task that finishes while redis-server is down is recorded once it is back."""
    engine.start_workers(scheduler=False)
    release = tmp_path / "release"
    service = engine.task_service
    task_id = service.submit(
        f"{task_module}_hold", release=str(release), outcome=outcome
    )
    wait_until(
        lambda: service.get_status(task_id).status is TaskStatus.RUNNING,
        30,
        "the held task to run",
    )

    server.stop()
    release.touch()
    wait_until(
        lambda: engine.local_contexts.get(task_id) is None, 30, "the task to end"
    )
    with pytest.raises(BackendUnavailableError):
        service.get_status(task_id)
    # The outcome waits in the ledger writer: not written, and not dropped.
    assert not engine.flush(timeout=0.5)

    server.start()
    assert engine.flush(timeout=30)
    record = service.get_status(task_id)
    assert record.status is status
    if status is TaskStatus.SUCCESS:
        assert record.result == outcome
    else:
        assert "hold failed on purpose" in (record.error or "")
    assert record.finished_at is not None

    # Workers and the schedule mover took up work again by themselves.
    now_id = service.submit(f"{task_module}_echo", number=1)
    later_id = service.submit(f"{task_module}_echo", number=2, countdown=0.3)
    for submitted, number in ((now_id, 1), (later_id, 2)):
        record = wait_final(engine, submitted, timeout=30)
        assert record.status is TaskStatus.SUCCESS
        assert record.result == number
    assert len(engine.pool.local_workers()) == sum(engine.config.workers.values())
