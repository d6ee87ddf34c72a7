"""Menus, tray, notifications, About box and error dialogs around a real window."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from pathlib import Path
from typing import Iterator

import pytest
import redis
from PySide6.QtCore import QSettings, QTimer, qVersion
from PySide6.QtWidgets import QApplication, QLabel

from chenu_desktop import TaskQueue, TaskStatus, background_task
from chenu_desktop.engine import Engine
from chenu_desktop.ledger.base import Update
from chenu_desktop.ui.crash import CrashDialog
from chenu_desktop.ui.main_window import MainWindow
from chenu_desktop.ui.notifier import Notice, NoticeKind, TaskNotifier
from chenu_desktop.ui.shell import DesktopShell

from engine_helpers import open_test_engine, wait_final

FAST_FEED = {
    "change_interval_ms": 30,
    "stats_interval_ms": 200,
    "workers_interval_ms": 300,
    "schedules_interval_ms": 300,
}


@background_task(name="n_fail", queue=TaskQueue.DEFAULT, max_retries=1, retry_delay=0.1)
def fail_with(reason: str) -> None:
    raise RuntimeError(f"disk full: {reason}")


@background_task(name="n_fail_now", queue=TaskQueue.DEFAULT)
def fail_now(n: int) -> None:
    raise RuntimeError(f"bad row {n}")


@background_task(name="n_ok", queue=TaskQueue.DEFAULT)
def succeed(n: int) -> int:
    return n


@background_task(
    name="n_governed", queue=TaskQueue.GOVERNANCE, requires_governance=True
)
def governed(amount: int, approved_by: str) -> int:
    return amount


def make_shell(
    qtbot,
    engine: Engine,
    tmp_path: Path,
    tray: bool = False,
    close_to_tray: bool = False,
) -> DesktopShell:
    settings = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    window = MainWindow(engine, settings=settings, feed_intervals=FAST_FEED)
    qtbot.addWidget(window)
    shell = DesktopShell(
        window, tmp_path / "logs", close_to_tray=close_to_tray, tray=tray
    )
    shell.notifier._timer.setInterval(200)
    window.show()
    return shell


@pytest.fixture
def shell(qtbot, ui_engine: Engine, tmp_path: Path) -> Iterator[DesktopShell]:
    shell = make_shell(qtbot, ui_engine, tmp_path)
    yield shell
    shell.close()
    shell.window.feed.stop()
    shell.window.runner.close(wait=True)


def notices_of(shell: DesktopShell, kind: NoticeKind) -> list[Notice]:
    return [n for n in shell.notices if n.kind is kind]


def test_menus_hold_the_app_actions(shell: DesktopShell) -> None:
    names = [a.objectName() for a in shell.file_menu.actions() if a.objectName()]
    assert names == [
        "action_submit",
        "action_goto",
        "action_settings",
        "action_close_window",
        "action_quit",
    ]
    help_names = [a.objectName() for a in shell.help_menu.actions()]
    assert help_names == ["action_open_log_folder", "action_about"]
    assert shell.quit_action.shortcut().toString() == "Ctrl+Q"
    assert not shell.window.windowIcon().isNull()


def test_log_folder_without_desktop(shell: DesktopShell) -> None:
    # The offscreen platform has no file manager to open.
    assert shell.open_log_folder() is False
    assert shell.log_dir.is_dir()
    assert str(shell.log_dir) in shell.window.messages.label.text()


def test_failure_after_last_attempt_notifies_once(
    qtbot, shell: DesktopShell, ui_engine: Engine
) -> None:
    task_id = ui_engine.task_service.submit("n_fail", reason="volume 3")
    record = wait_final(ui_engine, task_id)
    assert record.status is TaskStatus.FAILURE
    assert record.attempts == 2
    qtbot.waitUntil(lambda: bool(notices_of(shell, NoticeKind.FAILED)), timeout=10000)
    (notice,) = notices_of(shell, NoticeKind.FAILED)
    assert notice.title == "Task failed after its last attempt"
    assert notice.task_ids == (task_id,)
    assert f"n_fail ({task_id}): RuntimeError: disk full: volume 3" in notice.text
    # Without a tray, a warning notice shows in the window's message bar.
    assert notice.title in shell.window.messages.label.text()
    # The retry in between was no failure to announce: nothing more arrives.
    ok = ui_engine.task_service.submit("n_ok", n=1)
    wait_final(ui_engine, ok)
    shell.notifier.flush()
    assert len(notices_of(shell, NoticeKind.FAILED)) == 1


def test_burst_of_failures_becomes_one_notice(
    qtbot, shell: DesktopShell, ui_engine: Engine
) -> None:
    shell.notifier._timer.setInterval(3000)
    ids = [ui_engine.task_service.submit("n_fail_now", n=n) for n in range(12)]
    for task_id in ids:
        assert wait_final(ui_engine, task_id).status is TaskStatus.FAILURE
    qtbot.waitUntil(lambda: bool(notices_of(shell, NoticeKind.FAILED)), timeout=15000)
    notices = notices_of(shell, NoticeKind.FAILED)
    assert sum(len(n.task_ids) for n in notices) == 12
    assert len(notices) <= 2
    biggest = max(notices, key=lambda n: len(n.task_ids))
    assert (
        biggest.title
        == f"{len(biggest.task_ids)} tasks failed after their last attempt"
    )
    assert f"and {len(biggest.task_ids) - 3} more" in biggest.text


def test_governance_task_awaiting_approval_notifies(
    qtbot, shell: DesktopShell, ui_engine: Engine
) -> None:
    task_id = ui_engine.task_service.submit("n_governed", amount=5)
    qtbot.waitUntil(
        lambda: bool(notices_of(shell, NoticeKind.AWAITING_APPROVAL)), timeout=10000
    )
    (notice,) = notices_of(shell, NoticeKind.AWAITING_APPROVAL)
    assert notice.title == "A governance task awaits approval"
    assert f"n_governed ({task_id})" in notice.text
    assert not notice.is_warning


def test_lost_task_notifies(qtbot, idle_engine: Engine, tmp_path: Path) -> None:
    shell = make_shell(qtbot, idle_engine, tmp_path)
    try:
        task_id = idle_engine.task_service.submit("n_ok", n=3)
        now = idle_engine.clock()
        # The record of a worker on another machine that stopped beating long ago.
        idle_engine.ledger.update(
            Update(
                task_id,
                TaskStatus.RUNNING,
                {"worker": "elsewhere:4242:dead", "started_at": now - 3600},
            ),
            now - 3600,
        )
        assert idle_engine.pool.reaper.settle(now) == [task_id]
        qtbot.waitUntil(lambda: bool(notices_of(shell, NoticeKind.LOST)), timeout=10000)
        (notice,) = notices_of(shell, NoticeKind.LOST)
        assert notice.title == "A task was lost with its worker"
        assert task_id in notice.text
        assert "Retry it from the window" in notice.text
    finally:
        shell.close()
        shell.window.feed.stop()
        shell.window.runner.close(wait=True)


def test_notice_names_ids_when_records_cannot_be_read(qtbot, runner) -> None:  # type: ignore[no-untyped-def]
    def unreadable(task_id: str):  # type: ignore[no-untyped-def]
        raise sqlite3.OperationalError("database is locked")

    notifier = TaskNotifier(unreadable, runner, gather_ms=10)
    from chenu_desktop.models import Change

    with qtbot.waitSignal(notifier.notice, timeout=5000) as blocker:
        notifier.handle_changes(
            [Change(1, "t-1", TaskQueue.DEFAULT, TaskStatus.FAILURE, 0.0)]
        )
    notice = blocker.args[0]
    assert notice.task_ids == ("t-1",)
    assert notice.text == "t-1"


def test_close_to_tray_keeps_workers_until_quit(
    qtbot, ui_engine: Engine, tmp_path: Path
) -> None:
    shell = make_shell(qtbot, ui_engine, tmp_path, tray=True, close_to_tray=True)
    window = shell.window
    try:
        assert window.keep_running_on_close
        with qtbot.waitSignal(window.hidden_on_close, timeout=5000):
            window.close()
        assert window.isHidden()
        # The workers go on while the window is hidden.
        task_id = ui_engine.task_service.submit("n_ok", n=7)
        assert wait_final(ui_engine, task_id).result == 7
        shell.show_window()
        assert window.isVisible()
        with qtbot.waitSignal(window.shutdown_finished, timeout=20000):
            window.quit_app()
            assert window.stopping
            assert window.banner.isVisible()
            assert window.banner.text().startswith("Stopping the workers")
        assert ui_engine._closed
    finally:
        shell.close()


def test_close_to_tray_without_tray_stops_on_close(
    qtbot, ui_engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shell = make_shell(qtbot, ui_engine, tmp_path, tray=False, close_to_tray=True)
    try:
        assert "has no system tray" in caplog.text
        assert not shell.window.keep_running_on_close
        with qtbot.waitSignal(shell.window.shutdown_finished, timeout=20000):
            shell.window.close()
        assert ui_engine._closed
    finally:
        shell.close()


@pytest.mark.qt_no_exception_capture
def test_slot_error_shows_dialog(qtbot, shell: DesktopShell) -> None:
    shell.install_crash_reporter()
    try:

        def broken_slot() -> None:
            {}["missing key"]

        with qtbot.waitSignal(shell.crash_reporter.crashed, timeout=5000) as blocker:
            QTimer.singleShot(0, broken_slot)
        text, path = blocker.args
        assert "KeyError: 'missing key'" in text
        assert "broken_slot" in text
        assert Path(path).parent == shell.log_dir
        assert Path(path).read_text(encoding="utf-8") == text
        qtbot.waitUntil(lambda: _crash_dialogs() != [], timeout=5000)
        dialog = _crash_dialogs()[0]
        assert dialog.traceback_view.toPlainText() == text
        assert path in dialog.findChild(QLabel, "crash_summary").text()
        # The window still works: a read through the runner still returns.
        seen: list[int] = []
        shell.window.runner.run(lambda: 41 + 1, on_result=seen.append)
        qtbot.waitUntil(lambda: seen == [42], timeout=5000)
        dialog.close()
    finally:
        shell.crash_reporter.uninstall()


@pytest.mark.qt_no_exception_capture
def test_unexpected_error_in_a_thread_is_reported(qtbot, shell: DesktopShell) -> None:
    shell.install_crash_reporter()
    try:

        def broken() -> None:
            raise ValueError("bad frame 7")

        with qtbot.waitSignal(shell.crash_reporter.crashed, timeout=5000) as blocker:
            thread = threading.Thread(target=broken, name="chenu-test-thread")
            thread.start()
            thread.join()
        text, _path = blocker.args
        assert text.startswith("Unexpected error in chenu-test-thread:")
        assert "ValueError: bad frame 7" in text
    finally:
        shell.crash_reporter.uninstall()


def _crash_dialogs() -> list[CrashDialog]:
    return [
        w
        for w in QApplication.topLevelWidgets()
        if isinstance(w, CrashDialog) and w.isVisible()
    ]


def test_about_box_lists_versions_and_sqlite(qtbot, shell: DesktopShell) -> None:
    dialog = shell.show_about()
    qtbot.addWidget(dialog)
    assert dialog.values["Qt"].text() == qVersion()
    assert dialog.values["Backend"].text() == shell.window.engine.spec.display
    qtbot.waitUntil(
        lambda: dialog.values["Server"].text() == f"SQLite {sqlite3.sqlite_version}",
        timeout=5000,
    )
    dialog.copy_to_clipboard()
    assert f"Qt: {qVersion()}" in QApplication.clipboard().text()


def test_about_box_reads_the_redis_server_version(
    qtbot, redis_url: str, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(redis_url)
    expected = client.info("server")["redis_version"]
    client.close()
    engine = open_test_engine(redis_url)
    try:
        shell = make_shell(qtbot, engine, tmp_path)
        dialog = shell.show_about()
        qtbot.addWidget(dialog)
        qtbot.waitUntil(
            lambda: dialog.values["Server"].text() == f"Redis {expected}", timeout=5000
        )
        shell.close()
        shell.window.feed.stop()
        shell.window.runner.close(wait=True)
    finally:
        engine.close()


def test_settings_apply_live_and_name_restart(
    qtbot, shell: DesktopShell, ui_engine: Engine, tmp_path: Path
) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QPalette

    from chenu_desktop.config import load_config

    config_file = tmp_path / "config" / "settings.toml"
    config_file.parent.mkdir()
    config_file.write_text("# kept\nretention_days = 30\n", encoding="utf-8")
    ui_engine.config = dataclasses.replace(ui_engine.config, source=config_file)
    dialog = shell.open_settings()
    dialog.worker_spins[TaskQueue.LOW].setValue(3)
    dialog.operator.setText("Zoë")
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    dialog.namespace.setText("second")
    with qtbot.waitSignal(dialog.settings_saved, timeout=5000):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    try:
        qtbot.waitUntil(
            lambda: ui_engine.pool.sizes()[TaskQueue.LOW] == 3, timeout=5000
        )
        assert ui_engine.config.operator_name == "Zoë"
        # The namespace waits for a restart: the running engine keeps its own.
        assert ui_engine.config.namespace == "chenu"
        text = shell.window.messages.label.text()
        assert f"Settings saved to {config_file}." in text
        assert "The new namespace takes effect when you restart the app" in text
        window = QApplication.palette().color(QPalette.ColorRole.Window)
        assert window.lightness() < 100
        saved = load_config(config_file)
        assert saved.workers[TaskQueue.LOW] == 3
        assert saved.namespace == "second"
        assert saved.operator == "Zoë"
        assert config_file.read_text(encoding="utf-8").startswith("# kept\n")
    finally:
        from chenu_desktop.ui.theme import apply_theme

        apply_theme(QApplication.instance(), "system")


def test_long_error_shortened_with_ellipsis() -> None:
    from chenu_desktop.models import TaskRecord
    from chenu_desktop.ui.notifier import ERROR_CHARS, compose

    record = TaskRecord(
        task_id="t-9",
        task_name="n_fail",
        queue=TaskQueue.DEFAULT,
        priority=6,
        status=TaskStatus.FAILURE,
        error="ValueError: " + "x" * 500,
    )
    notice = compose(NoticeKind.FAILED, ["t-9"], [record])
    error_part = notice.text.split(": ", 1)[1]
    assert len(error_part) == ERROR_CHARS
    assert error_part.endswith("…")
