"""SIGKILL of the whole app under load: nothing committed is lost, restart settles."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from engine_helpers import open_test_engine, wait_until

from chenu_desktop import TaskStatus
from chenu_desktop.config import default_backend_url, user_data_dir
from chenu_desktop.engine import Engine
from chenu_desktop.ledger.sqlite_ledger import SqliteLedger
from chenu_desktop.models import TaskRecord
from chenu_desktop.reaper import parse_worker_id

TASK_MODULE = """
from chenu_desktop import TaskQueue, background_task, current_task


@background_task(name="{prefix}_step", queue=TaskQueue.DEFAULT)
def step(n: int) -> int:
    current_task().wait_cancelled(0.05)
    return n


@background_task(
    name="{prefix}_safe_step", queue=TaskQueue.DEFAULT, requeue_on_loss=True
)
def safe_step(n: int) -> int:
    current_task().wait_cancelled(0.05)
    return n
"""

#: Submits tasks as fast as it can until the stop file appears, writing each
#: id that submit returned to the ids file, one per line.
SUBMITTER = """
import sys
from pathlib import Path

from chenu_desktop import open_engine
from chenu_desktop.config import Config

import {prefix}

backend, ids_path, stop_path = sys.argv[1:4]
config = Config(backend=backend, workers={{}})
with open_engine(config=config) as engine, open(ids_path, "a") as ids:
    n = 0
    while not Path(stop_path).exists() and n < {limit}:
        name = "{prefix}_safe_step" if n % 2 else "{prefix}_step"
        task_id = engine.task_service.submit(name, n=n)
        ids.write(task_id + "\\n")
        ids.flush()
        n += 1
"""

#: Maximum number of tasks the submitter sends, so a stuck test cannot fill the disk.
SUBMIT_LIMIT = 5000
#: Seconds a process may take to start, stop or finish its share of work.
PROCESS_TIMEOUT = 60.0
CONFIG = """
heartbeat_interval = 0.2
heartbeat_timeout = 1.5
poll_interval = 0.1

[workers]
default = 4
"""


class AppProcess:
    """One ``python -m chenu_desktop`` process with its output in a log file."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log: IO[bytes] = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chenu_desktop", *argv],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=PROCESS_TIMEOUT)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=PROCESS_TIMEOUT)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=PROCESS_TIMEOUT)
        self._log.close()


class Setup:
    """The files, environment and processes of one crash test."""

    def __init__(self, tmp_path: Path, mode: str) -> None:
        self.tmp_path = tmp_path
        self.mode = mode
        self.prefix = f"crash_{uuid.uuid4().hex[:8]}"
        modules = tmp_path / "modules"
        modules.mkdir()
        (modules / f"{self.prefix}.py").write_text(
            TASK_MODULE.format(prefix=self.prefix)
        )
        (modules / "submitter.py").write_text(
            SUBMITTER.format(prefix=self.prefix, limit=SUBMIT_LIMIT)
        )
        self.config = tmp_path / "config.toml"
        self.config.write_text(CONFIG)
        self.ids_path = tmp_path / "submitted.txt"
        self.stop_path = tmp_path / "stop-submitting"
        # The embedded default backend: a SQLite file in this test's data dir.
        self.backend = default_backend_url()
        self.db_path = user_data_dir() / "chenu.db"
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join(
            part for part in (str(modules), self.env.get("PYTHONPATH")) if part
        )
        self.env["QT_QPA_PLATFORM"] = "offscreen"
        self.processes: list[AppProcess] = []

    def start_app(self, run: int) -> AppProcess:
        if self.mode == "window":
            argv = ["--config", str(self.config), f"--tasks={self.prefix}"]
        else:
            argv = [
                "--config", str(self.config), "worker", f"--tasks={self.prefix}",
                "--queues", "default",
            ]  # fmt: skip
        log = self.tmp_path / f"{self.mode}-{run}.log"
        app = AppProcess(argv, self.env, log)
        self.processes.append(app)
        return app

    def start_submitter(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable, str(self.tmp_path / "modules" / "submitter.py"),
                self.backend, str(self.ids_path), str(self.stop_path),
            ],
            env=self.env,
        )  # fmt: skip

    def submitted_ids(self) -> list[str]:
        if not self.ids_path.exists():
            return []
        lines = self.ids_path.read_text().split("\n")
        # The last line has no newline yet while the submitter writes it.
        return [line for line in lines[:-1] if line]

    def close(self) -> None:
        self.stop_path.touch()
        for app in self.processes:
            app.close()


@pytest.fixture(params=["window", "worker"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    setup = Setup(tmp_path, request.param)
    try:
        yield setup
    finally:
        setup.close()


def statuses(engine: Engine, task_ids: list[str]) -> dict[str, TaskRecord]:
    return {task_id: engine.task_service.get_status(task_id) for task_id in task_ids}


def unfinished(engine: Engine) -> dict[str, int]:
    """Return the count of records per status that is not final, zeros left out."""
    service = engine.task_service
    counts = {
        status.value: service.count_tasks(status=status)
        for status in TaskStatus
        if not status.is_final
    }
    return {status: count for status, count in counts.items() if count}


def lost_at(record: TaskRecord) -> float:
    """Return when the record became lost, from its status history."""
    times = [at for status, at in record.history if status == TaskStatus.LOST.value]
    assert times, f"task {record.task_id} was never lost: {record.history}"
    return times[0]


def wait_for_workers(engine: Engine, app: AppProcess) -> None:
    wait_until(
        lambda: (
            app.process.poll() is None
            and any(w.pid == app.pid for w in engine.workers())
        ),
        PROCESS_TIMEOUT,
        f"heartbeats of the app (pid {app.pid}); its output:\n{app.output()}",
    )


def wait_for_load(engine: Engine, setup: Setup, app: AppProcess) -> None:
    """Wait until the app has finished some tasks and runs others, under submits."""

    def loaded() -> bool:
        running = engine.task_service.list_tasks(status=TaskStatus.RUNNING, limit=10)
        done = engine.task_service.count_tasks(status=TaskStatus.SUCCESS)
        return (
            len(setup.submitted_ids()) >= 100
            and done >= 20
            and any(parse_worker_id(r.worker).pid == app.pid for r in running)
        )

    wait_until(loaded, PROCESS_TIMEOUT, "the app to run tasks under load")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigkill_under_load_loses_nothing(setup: Setup) -> None:
    engine = open_test_engine(setup.backend)
    try:
        first = setup.start_app(1)
        wait_for_workers(engine, first)
        submitter = setup.start_submitter()
        wait_for_load(engine, setup, first)

        first.kill()
        killed_at = len(setup.submitted_ids())
        # Submits go on while the app is dead, then the submitter stops.
        wait_until(
            lambda: len(setup.submitted_ids()) >= killed_at + 50,
            PROCESS_TIMEOUT,
            "submits after the kill",
        )
        setup.stop_path.touch()
        assert submitter.wait(timeout=PROCESS_TIMEOUT) == 0
        submitted = setup.submitted_ids()

        checker = SqliteLedger(setup.db_path)
        try:
            assert checker.integrity_check() == "ok"
        finally:
            checker.close()
        missing = [i for i in submitted if engine.ledger.get(i) is None]
        assert missing == []
        assert engine.task_service.count_tasks() == len(submitted)
        records = statuses(engine, submitted)
        interrupted = [r for r in records.values() if r.status is TaskStatus.RUNNING]
        assert interrupted, "no task was running when the app was killed"
        for record in interrupted:
            assert parse_worker_id(record.worker).pid == first.pid

        second = setup.start_app(2)
        wait_for_workers(engine, second)
        try:
            wait_until(
                lambda: not unfinished(engine),
                PROCESS_TIMEOUT * 2,
                "every submitted task to finish after the restart",
            )
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}: of {len(submitted)} tasks, {unfinished(engine)} are left"
            ) from None
        final = statuses(engine, submitted)
        assert second.terminate() == 0, second.output()
    finally:
        engine.close()

    # Settled at the start of the second run, before it claimed any task.
    new_starts = [
        r.started_at
        for r in final.values()
        if r.started_at is not None and parse_worker_id(r.worker).pid == second.pid
    ]
    assert new_starts, "the restarted app ran nothing"
    settled_by = max(lost_at(final[r.task_id]) for r in interrupted)
    assert settled_by <= min(new_starts)

    for before in interrupted:
        after = final[before.task_id]
        if before.requeue_on_loss:
            assert after.status is TaskStatus.SUCCESS, after.error
            assert after.attempts == before.attempts + 1
            assert parse_worker_id(after.worker).pid == second.pid
        else:
            assert after.status is TaskStatus.LOST
            assert before.worker in after.error
            assert after.result is None

    interrupted_ids = {r.task_id for r in interrupted}
    for task_id, record in final.items():
        if task_id not in interrupted_ids:
            assert record.status is TaskStatus.SUCCESS, (task_id, record.error)
            assert record.result == record.kwargs["n"]
    log = second.output()
    assert "Traceback" not in log, log
