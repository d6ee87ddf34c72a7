"""Shared helpers for tests that run a real engine."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

from chenu_desktop import open_engine
from chenu_desktop.config import Config
from chenu_desktop.engine import Engine
from chenu_desktop.models import TaskQueue, TaskRecord, TaskStatus

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], timeout: float = 10.0, message: str = "condition"
) -> T:
    """Poll `condition` until it returns a true value; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        pause.wait(0.01)


def wait_status(
    engine: Engine, task_id: str, statuses: set[TaskStatus], timeout: float = 10.0
) -> TaskRecord:
    def reached() -> TaskRecord | None:
        record = engine.task_service.get_status(task_id)
        return record if record.status in statuses else None

    return wait_until(reached, timeout, f"task {task_id} to reach {sorted(statuses)}")


def wait_final(engine: Engine, task_id: str, timeout: float = 10.0) -> TaskRecord:
    return wait_until(
        lambda: (r := engine.task_service.get_status(task_id)).status.is_final and r,
        timeout,
        f"task {task_id} to finish",
    )


def unfinished(engine: Engine, task_ids: list[str]) -> list[str]:
    """Return ``id: status`` of each task that has not reached a final status."""
    found = []
    for task_id in task_ids:
        record = engine.task_service.get_status(task_id)
        if not record.status.is_final:
            found.append(f"{task_id}: {record.status.value} on {record.worker}")
    return found


def wait_final_all(engine: Engine, task_ids: list[str], timeout: float) -> None:
    """Wait until every task is final; fail naming up to ten that are not."""
    try:
        wait_until(lambda: not unfinished(engine, task_ids), timeout)
    except AssertionError:
        left = unfinished(engine, task_ids)
        raise AssertionError(
            f"{len(left)} tasks never finished, such as {left[:10]}"
        ) from None


def make_config(backend: str, **overrides: object) -> Config:
    workers = {
        TaskQueue.GOVERNANCE: 1,
        TaskQueue.HIGH: 1,
        TaskQueue.DEFAULT: 2,
        TaskQueue.LOW: 1,
        TaskQueue.SCHEDULED: 1,
    }
    config = Config(
        backend=backend,
        workers=workers,
        heartbeat_interval=0.2,
        heartbeat_timeout=5.0,
        poll_interval=0.2,
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def backend_url(kind: str, tmp_path: Path, redis_url: str | None) -> str:
    if kind == "sqlite":
        return f"sqlite://{(tmp_path / 'chenu.db').as_posix()}"
    assert redis_url is not None
    return redis_url


def open_test_engine(url: str, **overrides: object) -> Engine:
    return open_engine(config=make_config(url, **overrides))


class Burst:
    """Submits tasks from a thread and sorts the submits by their outcome.

    Task ``burst-N`` runs ``PREFIX_fail`` when N ends in 9 and ``PREFIX_echo``
    otherwise, with a countdown when N ends in 5. The thread stops after
    `count` submits (None: when `stop` is set). After a submit raises, it
    waits up to 50 ms for `resumed`, so an outage does not use up the burst.
    """

    def __init__(self, engine: Engine, prefix: str, count: int | None = None) -> None:
        self.engine = engine
        self.prefix = prefix
        self.count = count
        self.accepted: list[str] = []
        self.rejected: list[str] = []
        self.unconfirmed: list[str] = []
        self.unexpected: list[BaseException] = []
        self.resumed = threading.Event()
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="burst", daemon=True)

    def counts(self) -> tuple[int, int]:
        """Return how many submits were accepted and rejected so far."""
        with self._lock:
            return len(self.accepted), len(self.rejected)

    def _run(self) -> None:
        from chenu_desktop.errors import BackendUnavailableError, SubmitUnconfirmedError

        service = self.engine.task_service
        number = 0
        while not self.stop.is_set() and (self.count is None or number < self.count):
            task_id = f"burst-{number:05d}"
            kind = "fail" if number % 10 == 9 else "echo"
            options = {"countdown": 0.2} if number % 10 == 5 else {}
            number += 1
            try:
                service.submit(
                    f"{self.prefix}_{kind}",
                    number=number - 1,
                    task_id=task_id,
                    **options,
                )
            except SubmitUnconfirmedError:
                with self._lock:
                    self.unconfirmed.append(task_id)
            except BackendUnavailableError:
                with self._lock:
                    self.rejected.append(task_id)
                self.resumed.wait(0.05)
            except BaseException as exc:  # noqa: BLE001  (reported by the test)
                self.unexpected.append(exc)
                return
            else:
                with self._lock:
                    self.accepted.append(task_id)
