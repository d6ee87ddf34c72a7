"""Tests of the worker pool view and its table model."""

from __future__ import annotations

import dataclasses
import time

import pytest
from PySide6.QtCore import Qt

from chenu_desktop import TaskQueue
from chenu_desktop.config import ConfigurationError
from chenu_desktop.engine import Engine
from chenu_desktop.models import QueueStats, WorkerInfo
from chenu_desktop.ui.background import BackgroundRunner
from chenu_desktop.ui.worker_table_model import (
    COLUMN_PROCESS,
    COLUMN_SINCE,
    COLUMN_STATE,
    COLUMN_TASK,
    COLUMN_WORKER,
    IS_LOCAL_ROLE,
    WORKER_ROLE,
    WorkerTableModel,
)
from chenu_desktop.ui.workers_view import WorkerPoolView

from engine_helpers import wait_until


def make_worker(worker_id: str, queue: TaskQueue, **overrides: object) -> WorkerInfo:
    values: dict[str, object] = {
        "worker_id": worker_id,
        "host": "other-host",
        "pid": 4242,
        "queue": queue,
        "current_task": None,
        "since": time.time() - 30,
        "last_beat": time.time(),
        "state": "idle",
    }
    values.update(overrides)
    return WorkerInfo(**values)  # type: ignore[arg-type]


def make_stats(queue: TaskQueue, paused: bool) -> QueueStats:
    return QueueStats(
        queue=queue,
        counts={},
        succeeded_last_hour=0,
        failed_last_hour=0,
        throughput_per_minute=[0] * 15,
        mean_duration=None,
        p95_duration=None,
        oldest_waiting_age=None,
        workers_busy=0,
        workers_total=1,
        paused=paused,
    )


def column_texts(view: WorkerPoolView, queue: TaskQueue, column: int) -> list[str]:
    model = view.table(queue).model()
    return [model.index(row, column).data() for row in range(model.rowCount())]


@pytest.fixture
def view(qtbot, ui_engine: Engine, runner: BackgroundRunner) -> WorkerPoolView:  # type: ignore[no-untyped-def]
    widget = WorkerPoolView(ui_engine, runner)
    qtbot.addWidget(widget)
    widget.resize(900, 700)
    return widget


def test_model_passes_modeltester(qtmodeltester, ui_engine: Engine) -> None:  # type: ignore[no-untyped-def]
    model = WorkerTableModel(ui_engine.pool.run_id)
    model.set_workers(ui_engine.workers())
    model.set_workers([*ui_engine.workers(), make_worker("far-1", TaskQueue.LOW)])
    qtmodeltester.check(model)
    assert model.rowCount() == len(ui_engine.workers()) + 1


def test_model_updates_rows_in_place(qtbot) -> None:  # type: ignore[no-untyped-def]
    model = WorkerTableModel("abc123")
    first = make_worker("h-1-low-abc123-0", TaskQueue.LOW)
    second = make_worker("h-1-high-abc123-0", TaskQueue.HIGH)
    model.set_workers([first, second])
    assert [w.worker_id for w in model.rows()] == [second.worker_id, first.worker_id]

    busy = dataclasses.replace(first, state="busy", current_task="t-1")
    with qtbot.waitSignal(model.dataChanged):
        model.set_workers([second, busy])
    assert model.rowCount() == 2
    assert model.index(1, COLUMN_STATE).data() == "busy"
    assert model.index(1, COLUMN_TASK).data() == "t-1"

    with qtbot.waitSignal(model.rowsRemoved):
        model.set_workers([busy])
    assert model.rowCount() == 1
    assert model.index(0, COLUMN_WORKER).data(WORKER_ROLE) == busy


def test_model_marks_local_workers() -> None:
    model = WorkerTableModel("abc123")
    local = make_worker("h-1-low-abc123-0", TaskQueue.LOW)
    remote = make_worker("h-2-low-zzz999-0", TaskQueue.LOW)
    model.set_workers([remote, local])
    assert model.index(0, COLUMN_WORKER).data() == local.worker_id
    assert model.index(0, COLUMN_PROCESS).data() == "this process"
    assert model.index(0, 0).data(IS_LOCAL_ROLE) is True
    assert model.index(1, COLUMN_PROCESS).data() == "other process"
    assert model.index(1, 0).data(IS_LOCAL_ROLE) is False
    assert model.index(0, 0).data(Qt.ItemDataRole.FontRole).bold()


def test_model_since_is_relative() -> None:
    now = 1_000_000.0
    model = WorkerTableModel("abc123", clock=lambda: now)
    model.set_workers([make_worker("w", TaskQueue.LOW, since=now - 90)])
    assert model.index(0, COLUMN_SINCE).data() == "1 min 30 s ago"
    now += 60
    model.refresh_relative_times()
    assert model.index(0, COLUMN_SINCE).data() == "2 min 30 s ago"


def test_view_lists_pool_workers(view: WorkerPoolView, ui_engine: Engine) -> None:
    workers = wait_until(lambda: ui_engine.workers(), message="heartbeats")
    remote = make_worker("far-9-default-zzz999-0", TaskQueue.DEFAULT)
    view.update_workers([*workers, remote])

    for queue, size in ui_engine.pool.sizes().items():
        expected = {w.worker_id for w in workers if w.queue is queue}
        listed_ids = set(column_texts(view, queue, COLUMN_WORKER)) - {remote.worker_id}
        assert listed_ids == expected, queue
        assert len(expected) == size, queue

    processes = column_texts(view, TaskQueue.DEFAULT, COLUMN_PROCESS)
    assert processes == ["this process", "this process", "other process"]
    summary = view.findChild(object, "workers_summary_default").text()
    assert summary == "3 workers (2 in this process), 0 busy, on 2 hosts"


def test_resize_changes_pool_size(
    qtbot, view: WorkerPoolView, ui_engine: Engine
) -> None:  # type: ignore[no-untyped-def]
    spin = view.size_spin_box(TaskQueue.LOW)
    assert spin.value() == 1
    spin.setValue(3)
    qtbot.waitUntil(lambda: ui_engine.pool.sizes()[TaskQueue.LOW] == 3)
    qtbot.waitUntil(
        lambda: len([w for w in ui_engine.workers() if w.queue is TaskQueue.LOW]) == 3,
        timeout=5000,
    )

    spin.setValue(0)
    qtbot.waitUntil(lambda: ui_engine.pool.sizes()[TaskQueue.LOW] == 0)
    assert ui_engine.pool.sizes()[TaskQueue.HIGH] == 1


def test_resize_error_reverts_spin_box(  # type: ignore[no-untyped-def]
    qtbot, view: WorkerPoolView, ui_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def reject(queue: TaskQueue, size: int) -> None:
        raise ConfigurationError(f"invalid worker count {size}")

    monkeypatch.setattr(ui_engine.pool, "resize", reject)
    spin = view.size_spin_box(TaskQueue.HIGH)
    with qtbot.waitSignal(view.message_requested) as blocker:
        spin.setValue(5)
    assert "high" in blocker.args[0]
    assert "invalid worker count 5" in blocker.args[0]
    assert spin.value() == 1


def test_pause_and_resume_queue(qtbot, view: WorkerPoolView, ui_engine: Engine) -> None:  # type: ignore[no-untyped-def]
    button = view.pause_button(TaskQueue.LOW)
    badge = view.findChild(object, "paused_badge_low")
    assert button.text() == "Pause"

    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.is_paused(TaskQueue.LOW) and button.isEnabled())
    assert TaskQueue.LOW in ui_engine.ledger.paused_queues()
    assert button.text() == "Resume"
    assert button.isChecked()
    assert not badge.isHidden()

    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not view.is_paused(TaskQueue.LOW) and button.isEnabled())
    assert TaskQueue.LOW not in ui_engine.ledger.paused_queues()
    assert button.text() == "Pause"
    assert badge.isHidden()


def test_paused_state_follows_stats(view: WorkerPoolView) -> None:
    view.update_stats({TaskQueue.HIGH: make_stats(TaskQueue.HIGH, paused=True)})
    assert view.is_paused(TaskQueue.HIGH)
    assert view.pause_button(TaskQueue.HIGH).text() == "Resume"
    view.update_stats({TaskQueue.HIGH: make_stats(TaskQueue.HIGH, paused=False)})
    assert not view.is_paused(TaskQueue.HIGH)


def test_view_loads_paused_queues(  # type: ignore[no-untyped-def]
    qtbot, ui_engine: Engine, runner: BackgroundRunner
) -> None:
    ui_engine.pool.pause(TaskQueue.DEFAULT)
    widget = WorkerPoolView(ui_engine, runner)
    qtbot.addWidget(widget)
    qtbot.waitUntil(lambda: widget.is_paused(TaskQueue.DEFAULT))
    assert not widget.is_paused(TaskQueue.LOW)


def test_controls_have_accessible_names(view: WorkerPoolView) -> None:
    for queue in TaskQueue:
        assert view.size_spin_box(queue).accessibleName()
        assert view.pause_button(queue).accessibleName()
        assert view.table(queue).accessibleName()
