"""Full flows through the main window over a real engine (offscreen)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from PySide6.QtCore import QObject, QSettings, Qt
from PySide6.QtWidgets import QDialogButtonBox, QLineEdit

from chenu_desktop import TaskQueue, TaskStatus, background_task, current_task
from chenu_desktop.engine import Engine
from chenu_desktop.models import TaskRecord
from chenu_desktop.ui.main_window import FIRST_SIZE, SCREEN_SHARE, MainWindow
from chenu_desktop.ui.reason_dialog import ReasonDialog

FAST_FEED = {
    "change_interval_ms": 50,
    "stats_interval_ms": 200,
    "workers_interval_ms": 300,
    "schedules_interval_ms": 300,
}


@background_task(name="w_square", queue=TaskQueue.DEFAULT)
def square(n: int) -> int:
    return n * n


@background_task(name="w_fail", queue=TaskQueue.DEFAULT, max_retries=1, retry_delay=0.2)
def fail_twice(reason: str) -> None:
    raise RuntimeError(f"broken: {reason}")


@background_task(name="w_wait", queue=TaskQueue.LOW)
def wait_for_cancel(seconds: float = 30) -> str:
    task = current_task()
    if task.wait_cancelled(seconds):
        task.check_cancelled()
    return "waited"


@background_task(
    name="w_governed", queue=TaskQueue.GOVERNANCE, requires_governance=True
)
def governed(amount: int, approved_by: str) -> dict:
    return {"amount": amount, "approved_by": approved_by}


@pytest.fixture
def window(qtbot, ui_engine: Engine, tmp_path: Path) -> Iterator[MainWindow]:
    settings = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    window = MainWindow(ui_engine, settings=settings, feed_intervals=FAST_FEED)
    qtbot.addWidget(window)
    window.show()
    yield window
    window.feed.stop()
    window.runner.close(wait=True)


def row_record(window: MainWindow, task_id: str) -> TaskRecord | None:
    model = window.tasks.model
    row = model.row_of(task_id)
    return None if row is None else model.record_at(row)


def wait_row_status(
    qtbot, window: MainWindow, task_id: str, status: TaskStatus
) -> TaskRecord:
    def reached() -> bool:
        record = row_record(window, task_id)
        return record is not None and record.status is status

    qtbot.waitUntil(reached, timeout=15000)
    return row_record(window, task_id)


def select(qtbot, window: MainWindow, task_id: str) -> None:
    window.go_to_task(task_id)
    qtbot.waitUntil(
        lambda: [r.task_id for r in window._selection] == [task_id], timeout=10000
    )


def answer_reason(qtbot, window: MainWindow, reason: str) -> None:
    """Type `reason` into the reason dialog as soon as it opens, and accept it."""

    def fill() -> None:
        dialog = window.findChild(ReasonDialog)
        if dialog is None or not dialog.isVisible():
            raise AssertionError("no reason dialog yet")
        dialog.editor.setPlainText(reason)
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()

    from PySide6.QtCore import QTimer

    def attempt() -> None:
        try:
            fill()
        except AssertionError:
            QTimer.singleShot(20, attempt)

    QTimer.singleShot(20, attempt)


def test_window_has_named_parts(window: MainWindow) -> None:
    for name in ("main_tabs", "backend_label", "main_toolbar", "task_splitter"):
        assert window.findChild(QObject, name) is not None, name
    assert window.cancel_action.shortcut().toString() == "Del"
    assert window.goto_action.shortcut().toString() == "Ctrl+G"


def test_submit_runs_to_success(qtbot, window: MainWindow, ui_engine: Engine) -> None:
    dialog = window.open_submit_dialog()
    qtbot.waitUntil(lambda: dialog.task_combo.findText("w_square") >= 0, timeout=10000)
    dialog.select_task("w_square")
    dialog._fields["n"].setText("12")
    with qtbot.waitSignal(dialog.task_submitted, timeout=10000) as submitted:
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    task_id = submitted.args[0]
    record = wait_row_status(qtbot, window, task_id, TaskStatus.SUCCESS)
    assert record.result == 144
    assert task_id in window.messages.label.text()


def test_submit_dialog_shows_invalid_arguments(qtbot, window: MainWindow) -> None:
    dialog = window.open_submit_dialog()
    qtbot.waitUntil(lambda: dialog.task_combo.findText("w_square") >= 0, timeout=10000)
    dialog.select_task("w_square")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: "missing" in dialog.error.text(), timeout=10000)
    assert dialog.isVisible()
    assert "Traceback" not in dialog.error.text()


def test_failure_shows_traceback_and_retries(
    qtbot, window: MainWindow, ui_engine: Engine
) -> None:
    task_id = ui_engine.task_service.submit("w_fail", reason="disk full")
    wait_row_status(qtbot, window, task_id, TaskStatus.FAILURE)
    select(qtbot, window, task_id)
    qtbot.waitUntil(
        lambda: "broken: disk full" in window.detail.traceback_box.toPlainText(),
        timeout=10000,
    )
    record = window.detail.record
    assert record.attempts == 2
    statuses = [status for status, _ in record.history]
    assert "retrying" in statuses
    assert window.retry_action.isEnabled()
    assert not window.cancel_action.isEnabled()


def test_cancel_running_task(qtbot, window: MainWindow, ui_engine: Engine) -> None:
    task_id = ui_engine.task_service.submit("w_wait", seconds=30)
    wait_row_status(qtbot, window, task_id, TaskStatus.RUNNING)
    select(qtbot, window, task_id)
    qtbot.waitUntil(window.cancel_action.isEnabled, timeout=5000)
    window.cancel_action.trigger()
    record = wait_row_status(qtbot, window, task_id, TaskStatus.CANCELLED)
    assert record.cancel_requested
    assert record.finished_at is not None


def test_retry_failed_task(qtbot, window: MainWindow, ui_engine: Engine) -> None:
    failed_id = ui_engine.task_service.submit("w_fail", reason="once")
    wait_row_status(qtbot, window, failed_id, TaskStatus.FAILURE)
    select(qtbot, window, failed_id)
    qtbot.waitUntil(window.retry_action.isEnabled, timeout=5000)
    window.retry_action.trigger()
    qtbot.waitUntil(
        lambda: ui_engine.task_service.get_status(failed_id).retried_as is not None,
        timeout=10000,
    )
    new_id = ui_engine.task_service.get_status(failed_id).retried_as
    record = wait_row_status(qtbot, window, new_id, TaskStatus.FAILURE)
    assert record.retry_of == failed_id


def test_approve_governance_task(qtbot, window: MainWindow, ui_engine: Engine) -> None:
    task_id = ui_engine.task_service.submit("w_governed", amount=5)
    wait_row_status(qtbot, window, task_id, TaskStatus.AWAITING_APPROVAL)
    select(qtbot, window, task_id)
    qtbot.waitUntil(window.approve_action.isEnabled, timeout=5000)
    answer_reason(qtbot, window, "budget checked")
    window.approve_action.trigger()
    record = wait_row_status(qtbot, window, task_id, TaskStatus.SUCCESS)
    assert record.approved_by == ui_engine.config.operator_name
    assert record.approval_reason == "budget checked"
    assert record.result == {"amount": 5, "approved_by": ui_engine.config.operator_name}


def test_reject_governance_task(qtbot, window: MainWindow, ui_engine: Engine) -> None:
    task_id = ui_engine.task_service.submit("w_governed", amount=9)
    wait_row_status(qtbot, window, task_id, TaskStatus.AWAITING_APPROVAL)
    select(qtbot, window, task_id)
    qtbot.waitUntil(window.reject_action.isEnabled, timeout=5000)
    answer_reason(qtbot, window, "not in budget")
    window.reject_action.trigger()
    record = wait_row_status(qtbot, window, task_id, TaskStatus.REJECTED)
    assert record.approval_reason == "not in budget"


def test_retry_all_failed_states_count(
    qtbot, window: MainWindow, ui_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [ui_engine.task_service.submit("w_fail", reason=str(n)) for n in range(3)]
    for task_id in ids:
        wait_row_status(qtbot, window, task_id, TaskStatus.FAILURE)
    questions: list[str] = []
    monkeypatch.setattr(
        window, "confirm", lambda title, text: questions.append(text) or True
    )
    window.retry_all_failed()
    qtbot.waitUntil(lambda: bool(questions), timeout=10000)
    assert questions[0].startswith("Retry 3 failed task(s)?")
    qtbot.waitUntil(
        lambda: all(ui_engine.task_service.get_status(t).retried_as for t in ids),
        timeout=10000,
    )


def test_card_click_filters_table(qtbot, window: MainWindow, ui_engine: Engine) -> None:
    low = ui_engine.task_service.submit("w_wait", seconds=0)
    default = ui_engine.task_service.submit("w_square", n=2)
    wait_row_status(qtbot, window, low, TaskStatus.SUCCESS)
    wait_row_status(qtbot, window, default, TaskStatus.SUCCESS)
    qtbot.mouseClick(window.cards.card(TaskQueue.LOW), Qt.MouseButton.LeftButton)
    model = window.tasks.model
    qtbot.waitUntil(
        lambda: model.row_of(low) is not None and model.row_of(default) is None,
        timeout=10000,
    )
    assert model.rowCount() == 1
    assert window.tasks.task_filter().queue is TaskQueue.LOW


def test_invalid_schedule_stores_nothing(
    qtbot, window: MainWindow, ui_engine: Engine
) -> None:
    before = {s.name for s in ui_engine.scheduler_service.list_schedules()}
    window.tabs.setCurrentWidget(window.schedules)
    dialog = window.schedules.open_add_dialog()
    qtbot.waitUntil(dialog.tasks_loaded, timeout=10000)
    dialog.findChild(QLineEdit, "name_edit").setText("broken")
    dialog.findChild(QLineEdit, "expression_edit").setText("0 25 * * *")
    qtbot.waitUntil(lambda: "hour" in dialog.expression_message(), timeout=5000)
    assert not dialog.ok_button().isEnabled()
    dialog.reject()
    assert {s.name for s in ui_engine.scheduler_service.list_schedules()} == before


def test_backend_banner_hidden_when_reachable(qtbot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: window.feed.reachable, timeout=5000)
    assert window.banner.isHidden()


def test_state_saved_on_close(qtbot, window: MainWindow, tmp_path: Path) -> None:
    window.tabs.setCurrentIndex(2)
    with qtbot.waitSignal(window.shutdown_finished, timeout=20000):
        window.close()
    settings = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    assert int(settings.value("window/tab")) == 2
    assert settings.value("tasks/header") is not None


def test_screenshot_renders(
    qtbot, window: MainWindow, ui_engine: Engine, tmp_path: Path
) -> None:
    ui_engine.task_service.submit("w_square", n=3)
    qtbot.waitUntil(lambda: window.tasks.model.rowCount() >= 1, timeout=10000)
    image = window.grab()
    assert image.size() == window.size()
    assert image.save(str(tmp_path / "window.png"))


def test_first_size_fits_screen(window: MainWindow) -> None:
    """With no saved geometry, the window fits the free area of its screen."""
    available = window.screen().availableGeometry().size()
    # The offscreen screen is smaller than the first size, so this is the limit.
    assert available.width() < FIRST_SIZE.width()
    # SCREEN_SHARE of it, or the window's minimum width where that is more.
    assert window.width() <= available.width()
    assert window.height() <= available.height() * SCREEN_SHARE


def test_unreachable_backend_shows_banner(qtbot, tmp_path: Path) -> None:
    import socket

    from engine_helpers import open_test_engine

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    engine = open_test_engine(f"redis://127.0.0.1:{port}/0")
    settings = QSettings(str(tmp_path / "w.ini"), QSettings.Format.IniFormat)
    window = MainWindow(engine, settings=settings, feed_intervals=FAST_FEED)
    qtbot.addWidget(window)
    window.show()
    try:
        qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=15000)
        assert "unreachable" in window.banner.text()
        assert str(port) in window.banner.text()
    finally:
        window.feed.stop()
        window.runner.close(wait=True)
        engine.close(timeout=1)


def test_banner_recovers_after_redis_restart(
    qtbot, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Stopping the window's redis-server shows the banner; restarting hides it."""
    from redis_helpers import RedisServer
    from engine_helpers import open_test_engine

    server = RedisServer(tmp_path_factory.mktemp("own-redis"))
    server.start()
    engine = open_test_engine(server.url)
    settings = QSettings(str(tmp_path / "w.ini"), QSettings.Format.IniFormat)
    window = MainWindow(engine, settings=settings, feed_intervals=FAST_FEED)
    qtbot.addWidget(window)
    window.show()
    try:
        task_id = engine.task_service.submit("w_square", n=4)
        qtbot.waitUntil(
            lambda: window.tasks.model.row_of(task_id) is not None, timeout=10000
        )
        server.stop()
        qtbot.waitUntil(window.banner.isVisible, timeout=15000)
        # The window keeps what it showed while the backend is away.
        assert window.tasks.model.row_of(task_id) is not None
        server.start()
        qtbot.waitUntil(window.banner.isHidden, timeout=15000)
        assert "reachable again" in window.messages.label.text()
    finally:
        window.feed.stop()
        window.runner.close(wait=True)
        engine.close(timeout=2)
        server.stop()


@background_task(name="w_steps", queue=TaskQueue.LOW)
def steps(count: int) -> int:
    task = current_task()
    for step in range(1, count + 1):
        task.set_progress(step / count, f"step {step}")
        if task.wait_cancelled(0.05):
            task.check_cancelled()
    return count


def test_detail_follows_selected_task(qtbot, window: MainWindow, ui_engine: Engine) -> None:
    task_id = ui_engine.task_service.submit("w_steps", count=20)
    wait_row_status(qtbot, window, task_id, TaskStatus.RUNNING)
    select(qtbot, window, task_id)
    qtbot.waitUntil(
        lambda: window.detail.record is not None
        and window.detail.record.status is TaskStatus.SUCCESS,
        timeout=15000,
    )
    assert window.detail.record.task_id == task_id
    assert window.detail.record.result == 20
