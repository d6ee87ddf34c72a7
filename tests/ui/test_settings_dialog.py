"""The Settings dialog: editing, validation, saving and the Redis password."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QFileDialog,
    QGroupBox,
    QLabel,
    QLineEdit,
    QWidget,
)

from chenu_desktop import TaskQueue
from chenu_desktop.config import load_config
from chenu_desktop.ui.settings_dialog import SettingsChange, SettingsDialog

PASSWORD = "Sup3r-s3cret"

CONFIG_FILE = """\
# Settings of the control room.
backend = "sqlite:///srv/chenu/chenu.db"
namespace = "chenu"
retention_days = 30
heartbeat_interval = 3.0  # seconds
poll_interval = 0.5
change_retention = 5000

[workers]
default = 2
"""


def write_config(folder: Path, text: str = CONFIG_FILE) -> Path:
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def open_dialog(qtbot, path: Path) -> SettingsDialog:  # type: ignore[no-untyped-def]
    dialog = SettingsDialog(load_config(path))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def replace_text(qtbot, edit: QLineEdit, text: str) -> None:  # type: ignore[no-untyped-def]
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key.Key_Delete)
    qtbot.keyClicks(edit, text)


def click_indicator(qtbot, button: QAbstractButton) -> None:  # type: ignore[no-untyped-def]
    """Click a radio button or check box on its indicator, as a user does.

    A click at the centre of a row-wide button misses its hit area.
    """
    qtbot.mouseClick(
        button, Qt.MouseButton.LeftButton, pos=QPoint(6, button.height() // 2)
    )


def visible_texts(root: QWidget) -> list[str]:
    """Return every text a widget tree shows or reports to screen readers."""
    texts = [root.windowTitle()]
    for widget in [root, *root.findChildren(QWidget)]:
        texts += [
            widget.toolTip(),
            widget.accessibleName(),
            widget.accessibleDescription(),
            widget.statusTip(),
            widget.whatsThis(),
        ]
        if isinstance(widget, QLineEdit):
            texts += [widget.displayText(), widget.placeholderText()]
            if widget.echoMode() == QLineEdit.EchoMode.Normal:
                texts.append(widget.text())
        elif isinstance(widget, (QLabel, QAbstractButton)):
            texts.append(widget.text())
        elif isinstance(widget, QGroupBox):
            texts.append(widget.title())
        elif isinstance(widget, QComboBox):
            texts += [widget.itemText(i) for i in range(widget.count())]
    return texts


def test_settings_round_trip(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_config(tmp_path)
    dialog = open_dialog(qtbot, path)
    assert dialog.path == path
    assert dialog.sqlite_path.text() == "/srv/chenu/chenu.db"

    click_indicator(qtbot, dialog.redis_radio)
    replace_text(qtbot, dialog.redis_url, "redis://127.0.0.1:6390/3")
    replace_text(qtbot, dialog.redis_password, PASSWORD)
    replace_text(qtbot, dialog.namespace, "ops")
    counts = {
        TaskQueue.GOVERNANCE: 3,
        TaskQueue.HIGH: 4,
        TaskQueue.DEFAULT: 5,
        TaskQueue.LOW: 0,
        TaskQueue.SCHEDULED: 2,
    }
    for queue, count in counts.items():
        dialog.worker_spins[queue].setValue(count)
    dialog.retention_days.setValue(9)
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    click_indicator(qtbot, dialog.close_to_tray)
    replace_text(qtbot, dialog.operator, "ada")
    assert dialog.message.text() == ""
    assert "namespace" in dialog.restart_note.text()

    with qtbot.waitSignal(dialog.settings_saved, timeout=5000) as saved:
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)

    change = saved.args[0]
    assert isinstance(change, SettingsChange)
    assert change.restart_fields == {"backend", "namespace"}
    assert change.live_fields == {
        "workers",
        "retention_days",
        "theme",
        "close_to_tray",
        "operator",
    }
    reloaded = load_config(path)
    assert reloaded == change.config
    assert reloaded.backend == f"redis://:{PASSWORD}@127.0.0.1:6390/3"
    assert reloaded.namespace == "ops"
    assert reloaded.workers == counts
    assert reloaded.retention_days == 9
    assert reloaded.theme == "dark"
    assert reloaded.close_to_tray is True
    assert reloaded.operator == "ada"
    assert reloaded.heartbeat_interval == 3.0
    assert reloaded.poll_interval == 0.5
    assert reloaded.change_retention == 5000
    text = path.read_text(encoding="utf-8")
    assert "# Settings of the control room." in text
    assert "heartbeat_interval = 3.0  # seconds" in text


def test_settings_unchanged_writes_nothing(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_config(tmp_path)
    dialog = open_dialog(qtbot, path)

    with qtbot.assertNotEmitted(dialog.settings_saved):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)

    assert dialog.change is not None
    assert dialog.change.changed == frozenset()
    assert path.read_text(encoding="utf-8") == CONFIG_FILE


def test_live_change_keeps_running_backend(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_config(tmp_path)
    running = load_config(path)
    dialog = open_dialog(qtbot, path)
    replace_text(qtbot, dialog.sqlite_path, str(tmp_path / "other.db"))
    dialog.retention_days.setValue(3)

    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)

    assert dialog.change is not None
    merged = dialog.change.merged_into(running)
    assert merged.retention_days == 3
    assert merged.backend == running.backend
    assert load_config(path).backend == f"sqlite://{tmp_path / 'other.db'}"


def test_password_never_shown(qtbot, tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    url = f"redis://:{PASSWORD}@127.0.0.1:6390/1"
    path = write_config(tmp_path, f'backend = "{url}"\n')
    caplog.set_level(logging.DEBUG)
    dialog = open_dialog(qtbot, path)

    assert dialog.redis_radio.isChecked()
    assert dialog.redis_url.text() == "redis://127.0.0.1:6390/1"
    assert dialog.redis_password.echoMode() == QLineEdit.EchoMode.Password
    assert dialog.redis_password.text() == PASSWORD
    for text in visible_texts(dialog):
        assert PASSWORD not in text

    replace_text(qtbot, dialog.redis_url, "redis://127.0.0.1:6390/notanumber")
    assert "not a number" in dialog.message.text()
    for text in visible_texts(dialog):
        assert PASSWORD not in text

    replace_text(qtbot, dialog.redis_url, "redis://127.0.0.1:6390/2")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)

    assert load_config(path).backend == f"redis://:{PASSWORD}@127.0.0.1:6390/2"
    assert "redis://:***@127.0.0.1:6390/2" in caplog.text
    assert PASSWORD not in caplog.text
    assert dialog.change is not None
    assert PASSWORD not in repr(dialog.change)


def test_password_typed_in_url_moves(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dialog = open_dialog(qtbot, write_config(tmp_path))
    click_indicator(qtbot, dialog.redis_radio)
    replace_text(qtbot, dialog.redis_url, f"redis://:{PASSWORD}@127.0.0.1:6390/0")

    assert "Password field" in dialog.message.text()
    assert not dialog.ok_button.isEnabled()

    dialog.activateWindow()
    qtbot.waitUntil(dialog.isActiveWindow, timeout=5000)
    dialog.redis_url.setFocus()
    qtbot.waitUntil(dialog.redis_url.hasFocus, timeout=5000)
    qtbot.keyClick(dialog.redis_url, Qt.Key.Key_Tab)
    qtbot.waitUntil(lambda: dialog.redis_password.text() == PASSWORD, timeout=5000)

    assert dialog.redis_url.text() == "redis://127.0.0.1:6390/0"
    assert dialog.message.text() == ""
    assert dialog.ok_button.isEnabled()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "Redis URL: missing"),
        ("127.0.0.1:6379", "does not start with redis://"),
        ("redis://127.0.0.1:notaport/0", "the port is not a number"),
        ("redis://127.0.0.1:6390/0?password=x", "Password field"),
        ("redis://127.0.0.1:6390/0?colour=red", "colour"),
    ],
)
def test_bad_redis_url_message(qtbot, tmp_path: Path, url: str, message: str) -> None:  # type: ignore[no-untyped-def]
    dialog = open_dialog(qtbot, write_config(tmp_path))
    click_indicator(qtbot, dialog.redis_radio)

    replace_text(qtbot, dialog.redis_url, url)

    assert message in dialog.message.text()
    assert dialog.invalid_field is dialog.redis_url
    assert not dialog.ok_button.isEnabled()


@pytest.mark.parametrize("queue", list(TaskQueue))
def test_empty_worker_count_message(qtbot, tmp_path: Path, queue: TaskQueue) -> None:  # type: ignore[no-untyped-def]
    dialog = open_dialog(qtbot, write_config(tmp_path))
    spin = dialog.worker_spins[queue]

    spin.lineEdit().selectAll()
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Delete)

    assert dialog.message.text() == (
        f"Workers of the {queue.value} queue: enter a whole number from 0 to 64"
    )
    assert dialog.invalid_field is spin
    assert not dialog.ok_button.isEnabled()

    qtbot.keyClicks(spin.lineEdit(), "7")

    assert dialog.message.text() == ""
    assert dialog.ok_button.isEnabled()
    assert spin.value() == 7


def test_worker_count_over_max_rejected(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dialog = open_dialog(qtbot, write_config(tmp_path))
    spin = dialog.worker_spins[TaskQueue.HIGH]

    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), "650")

    assert spin.maximum() == 64
    assert spin.value() <= 64


def test_empty_retention_message(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dialog = open_dialog(qtbot, write_config(tmp_path))
    edit = dialog.retention_days.lineEdit()

    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key.Key_Delete)

    assert "Keep records for: enter a whole number of days" in dialog.message.text()
    assert dialog.invalid_field is dialog.retention_days
    assert not dialog.ok_button.isEnabled()
    assert dialog.retention_days.minimum() == 1


def test_retention_above_default_max_kept(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_config(tmp_path, "retention_days = 40000\n")
    dialog = open_dialog(qtbot, path)

    assert dialog.retention_days.value() == 40000

    dialog.theme.setCurrentIndex(dialog.theme.findData("light"))
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)

    assert load_config(path).retention_days == 40000


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("namespace", "ops-1", "invalid namespace 'ops-1'"),
        ("namespace", "", "invalid namespace ''"),
        ("sqlite_path", "relative/chenu.db", "relative path"),
    ],
)
def test_bad_text_field_message(  # type: ignore[no-untyped-def]
    qtbot, tmp_path: Path, field: str, text: str, message: str
) -> None:
    dialog = open_dialog(qtbot, write_config(tmp_path))
    edit = getattr(dialog, field)

    replace_text(qtbot, edit, text)

    assert message in dialog.message.text()
    assert dialog.invalid_field is edit
    assert not dialog.ok_button.isEnabled()


def test_empty_sqlite_path_means_default(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_config(tmp_path)
    dialog = open_dialog(qtbot, path)

    replace_text(qtbot, dialog.sqlite_path, "")
    assert dialog.sqlite_path.placeholderText().startswith("default: ")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)

    assert "backend" not in path.read_text(encoding="utf-8")
    assert load_config(path).backend is None


def test_empty_operator_means_os_user(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_config(tmp_path, 'operator = "ada"\n')
    dialog = open_dialog(qtbot, path)

    replace_text(qtbot, dialog.operator, "")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)

    assert load_config(path).operator is None
    assert dialog.operator.placeholderText() == load_config(path).operator_name


def test_browse_sets_sqlite_path(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dialog = open_dialog(qtbot, write_config(tmp_path))
    chosen = tmp_path / "chosen.db"

    qtbot.mouseClick(dialog.browse_button, Qt.MouseButton.LeftButton)
    file_dialog = dialog.findChild(QFileDialog, "settings_sqlite_file_dialog")
    assert file_dialog is not None
    file_dialog.selectFile(str(chosen))
    file_dialog.accept()

    assert dialog.sqlite_path.text() == str(chosen)
    assert dialog.message.text() == ""


def test_save_failure_keeps_dialog_open(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("", encoding="utf-8")
    path = blocker / "config.toml"
    dialog = SettingsDialog(load_config(write_config(tmp_path)), path=path)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.retention_days.setValue(5)

    with qtbot.assertNotEmitted(dialog.settings_saved):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)

    assert dialog.change is None
    assert f"saving {path} failed" in dialog.message.text()
    assert dialog.isVisible()
    assert blocker.read_text(encoding="utf-8") == ""


def test_every_field_named(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dialog = open_dialog(qtbot, write_config(tmp_path))
    fields = [
        dialog.sqlite_radio,
        dialog.redis_radio,
        dialog.sqlite_path,
        dialog.browse_button,
        dialog.redis_url,
        dialog.redis_password,
        dialog.namespace,
        *dialog.worker_spins.values(),
        dialog.retention_days,
        dialog.theme,
        dialog.close_to_tray,
        dialog.operator,
        dialog.ok_button,
    ]
    for field in fields:
        assert field.objectName() or field is dialog.ok_button, field
        assert field.accessibleName(), field.objectName()
