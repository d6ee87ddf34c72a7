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
