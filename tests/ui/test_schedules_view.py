"""Tests of the schedules view, its table model and the schedule dialog."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QMessageBox, QPlainTextEdit

from chenu_desktop import TaskQueue, TaskStatus, background_task, cron
from chenu_desktop.engine import Engine
from chenu_desktop.scheduling.service import DEFAULT_SCHEDULES, ScheduleInfo
from chenu_desktop.ui.background import BackgroundRunner
from chenu_desktop.ui.schedule_dialog import PREVIEW_COUNT, ScheduleDialog
from chenu_desktop.ui.schedule_table_model import (
    COLUMN_CRON,
    COLUMN_DESCRIPTION,
    COLUMN_ENABLED,
    COLUMN_LAST_RUN,
    COLUMN_NAME,
    COLUMN_NEXT_RUN,
    COLUMN_TASK,
    COLUMN_ZONE,
    SCHEDULE_ROLE,
    ScheduleTableModel,
)
from chenu_desktop.ui.schedules_view import SchedulesView
from chenu_desktop.ui.style import STATUS_COLORS

DEFAULT_NAMES = sorted(spec["name"] for spec in DEFAULT_SCHEDULES)


@background_task(
    name="sv_governed", queue=TaskQueue.GOVERNANCE, requires_governance=True
)
def sv_governed(approved_by: str = "") -> str:
    return approved_by


@background_task(name="sv_report", queue=TaskQueue.LOW)
def sv_report(title: str = "weekly", limit: int = 10) -> str:
    return f"{title}:{limit}"


@pytest.fixture
def engine(idle_engine: Engine) -> Engine:
    idle_engine.scheduler_service.seed_defaults()
    return idle_engine


@pytest.fixture
def view(qtbot, engine: Engine, runner: BackgroundRunner) -> SchedulesView:  # type: ignore[no-untyped-def]
    widget = SchedulesView(engine, runner)
    qtbot.addWidget(widget)
    widget.resize(1000, 400)
    widget.show()
    widget.refresh()
    qtbot.waitUntil(lambda: widget.model().rowCount() == len(DEFAULT_SCHEDULES))
    return widget


def stored_names(engine: Engine) -> list[str]:
    return sorted(info.name for info in engine.scheduler_service.list_schedules())


def cell(
    view: SchedulesView, name: str, column: int, role: int = Qt.ItemDataRole.DisplayRole
):  # type: ignore[no-untyped-def]
    model = view.model()
    row = model.row_of(name)
    assert row is not None, name
    return model.index(row, column).data(role)


def open_dialog(qtbot, view: SchedulesView, name: str | None = None) -> ScheduleDialog:  # type: ignore[no-untyped-def]
    if name is None:
        dialog = view.open_add_dialog()
    else:
        assert view.select_schedule(name)
        opened = view.open_edit_dialog()
        assert opened is not None
        dialog = opened
    qtbot.waitUntil(dialog.tasks_loaded)
    return dialog


def fill(
    dialog: ScheduleDialog, name: str, task: str, expression: str, zone: str = "UTC"
) -> None:
    dialog.findChild(QLineEdit, "name_edit").setText(name)
    assert dialog.select_task(task)
    dialog.findChild(QComboBox, "zone_combo").setEditText(zone)
    dialog.findChild(QLineEdit, "expression_edit").setText(expression)


def set_kwargs(dialog: ScheduleDialog, text: str) -> None:
    dialog.findChild(QPlainTextEdit, "kwargs_edit").setPlainText(text)


def label_text(dialog: ScheduleDialog, name: str) -> str:
    return dialog.findChild(QLabel, name).text()


# --- model -------------------------------------------------------------------


def test_model_passes_modeltester(qtmodeltester, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    model = ScheduleTableModel()
    model.set_schedules(engine.scheduler_service.list_schedules())
    engine.scheduler_service.add_schedule("sv_extra", "sv_report", "*/5 * * * *")
    engine.scheduler_service.run_now("daily_cleanup")
    model.set_schedules(engine.scheduler_service.list_schedules())
    qtmodeltester.check(model)
    assert model.rowCount() == 3


def test_model_advances_passed_next_run(engine: Engine) -> None:
    info = engine.scheduler_service.get_schedule("hourly_analytics")
    now = info.next_run.timestamp() + 90  # type: ignore[union-attr]
    model = ScheduleTableModel(clock=lambda: now)
    model.set_schedules([info])

    model.refresh_relative_times()
    advanced = model.schedule("hourly_analytics")
    assert advanced is not None
    assert advanced.next_run == info.next_run + dt.timedelta(hours=1)  # type: ignore[operator]
    assert model.index(0, COLUMN_NEXT_RUN).data() == "in 58 min 30 s"


def test_model_shows_disabled_next_run(engine: Engine) -> None:
    info = engine.scheduler_service.disable_schedule("daily_cleanup")
    model = ScheduleTableModel()
    model.set_schedules([info])
    assert model.index(0, COLUMN_NEXT_RUN).data() == "disabled"
    state = model.index(0, COLUMN_ENABLED).data(Qt.ItemDataRole.CheckStateRole)
    assert state == Qt.CheckState.Unchecked


def test_model_check_requests_change(qtbot, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    model = ScheduleTableModel()
    model.set_schedules(engine.scheduler_service.list_schedules())
    index = model.index(model.row_of("daily_cleanup"), COLUMN_ENABLED)
    with qtbot.waitSignal(model.enabled_change_requested) as blocker:
        assert model.setData(
            index, Qt.CheckState.Unchecked, Qt.ItemDataRole.CheckStateRole
        )
    assert blocker.args == ["daily_cleanup", False]
    assert index.data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.PartiallyChecked
    assert not model.flags(index) & Qt.ItemFlag.ItemIsUserCheckable
    assert engine.scheduler_service.get_schedule("daily_cleanup").enabled

    model.finish_enabled_change("daily_cleanup", None)
    assert index.data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked


# --- table -------------------------------------------------------------------


def test_table_shows_defaults(view: SchedulesView) -> None:
    assert [info.name for info in view.model().rows()] == DEFAULT_NAMES
    assert cell(view, "daily_cleanup", COLUMN_TASK) == "cleanup_old_data"
    assert cell(view, "daily_cleanup", COLUMN_CRON) == "0 2 * * *"
    assert cell(view, "daily_cleanup", COLUMN_DESCRIPTION) == "At 02:00"
    assert cell(view, "daily_cleanup", COLUMN_ZONE) == cron.local_zone_name()
    assert cell(view, "hourly_analytics", COLUMN_NEXT_RUN).startswith("in ")
    assert cell(view, "hourly_analytics", COLUMN_LAST_RUN) == "never"
    tooltip = cell(view, "daily_cleanup", COLUMN_CRON, Qt.ItemDataRole.ToolTipRole)
    assert tooltip.startswith("At 02:00")
    state = cell(view, "daily_cleanup", COLUMN_ENABLED, Qt.ItemDataRole.CheckStateRole)
    assert state == Qt.CheckState.Checked


def test_buttons_need_selection(view: SchedulesView) -> None:
    edit = view.findChild(object, "edit_button")
    run_now = view.findChild(object, "run_now_button")
    delete = view.findChild(object, "delete_button")
    assert not edit.isEnabled()
    assert not run_now.isEnabled()
    assert not delete.isEnabled()
    view.select_schedule("daily_cleanup")
    assert edit.isEnabled()
    assert run_now.isEnabled()
    assert delete.isEnabled()
    assert view.findChild(object, "add_button").accessibleName()


def test_uncheck_disables_schedule(qtbot, view: SchedulesView, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    model = view.model()
    index = model.index(model.row_of("daily_cleanup"), COLUMN_ENABLED)
    with qtbot.waitSignal(view.schedule_changed):
        model.setData(index, Qt.CheckState.Unchecked, Qt.ItemDataRole.CheckStateRole)
    assert not engine.scheduler_service.get_schedule("daily_cleanup").enabled
    assert index.data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Unchecked

    with qtbot.waitSignal(view.schedule_changed):
        model.setData(index, Qt.CheckState.Checked, Qt.ItemDataRole.CheckStateRole)
    assert engine.scheduler_service.get_schedule("daily_cleanup").enabled
    assert index.data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked


def test_keys_drive_selected_schedule(
    qtbot, view: SchedulesView, engine: Engine
) -> None:  # type: ignore[no-untyped-def]
    view.select_schedule("hourly_analytics")
    table = view.table()
    table.setFocus()
    qtbot.waitUntil(table.hasFocus)

    with qtbot.waitSignal(view.schedule_changed):
        qtbot.keyClick(table, Qt.Key.Key_Space)
    assert not engine.scheduler_service.get_schedule("hourly_analytics").enabled

    qtbot.keyClick(table, Qt.Key.Key_Delete)
    box = view.findChild(QMessageBox, "delete_confirmation")
    assert box is not None
    assert "hourly_analytics" in box.text()
    box.button(QMessageBox.StandardButton.Cancel).click()

    table.setFocus()
    qtbot.waitUntil(table.hasFocus)
    qtbot.keyClick(table, Qt.Key.Key_Return)
    dialog = view.findChild(ScheduleDialog)
    assert dialog is not None
    assert dialog.is_editing()


def test_enable_governance_uses_operator(
    qtbot, view: SchedulesView, engine: Engine
) -> None:  # type: ignore[no-untyped-def]
    service = engine.scheduler_service
    service.add_schedule("sv_audit", "sv_governed", "0 6 * * *", approved_by="alice")
    service.disable_schedule("sv_audit")
    view.refresh()
    qtbot.waitUntil(lambda: view.model().row_of("sv_audit") is not None)

    view.set_operator("bob")
    index = view.model().index(view.model().row_of("sv_audit"), COLUMN_ENABLED)
    with qtbot.waitSignal(view.schedule_changed):
        view.model().setData(
            index, Qt.CheckState.Checked, Qt.ItemDataRole.CheckStateRole
        )
    stored = service.get_schedule("sv_audit")
    assert stored.enabled
    assert stored.approved_by == "bob"


def test_enable_governance_without_operator_fails(  # type: ignore[no-untyped-def]
    qtbot, view: SchedulesView, engine: Engine
) -> None:
    service = engine.scheduler_service
    service.add_schedule("sv_audit", "sv_governed", "0 6 * * *", approved_by="alice")
    service.disable_schedule("sv_audit")
    view.refresh()
    qtbot.waitUntil(lambda: view.model().row_of("sv_audit") is not None)

    view.set_operator("")
    index = view.model().index(view.model().row_of("sv_audit"), COLUMN_ENABLED)
    with qtbot.waitSignal(view.message_requested) as blocker:
        view.model().setData(
            index, Qt.CheckState.Checked, Qt.ItemDataRole.CheckStateRole
        )
    assert "approved_by" in blocker.args[0]
    assert not service.get_schedule("sv_audit").enabled
    assert index.data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Unchecked


def test_last_run_coloured_by_status(
    qtbot, view: SchedulesView, engine: Engine
) -> None:  # type: ignore[no-untyped-def]
    task_id = engine.scheduler_service.run_now("daily_cleanup")
    view.refresh()
    qtbot.waitUntil(
        lambda: (
            cell(view, "daily_cleanup", COLUMN_NAME, SCHEDULE_ROLE).last_task_id
            == task_id
        )
    )
    background = cell(
        view, "daily_cleanup", COLUMN_LAST_RUN, Qt.ItemDataRole.BackgroundRole
    )
    assert background == STATUS_COLORS[TaskStatus.PENDING]
    assert cell(view, "daily_cleanup", COLUMN_LAST_RUN).endswith("· pending")
    tooltip = cell(view, "daily_cleanup", COLUMN_LAST_RUN, Qt.ItemDataRole.ToolTipRole)
    assert task_id in tooltip


def test_run_now_creates_task(qtbot, view: SchedulesView, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    view.select_schedule("hourly_analytics")
    run_now = view.findChild(object, "run_now_button")
    with qtbot.waitSignal(view.message_requested) as blocker:
        qtbot.mouseClick(run_now, Qt.MouseButton.LeftButton)
    message = blocker.args[0]
    task_id = message.rsplit(" ", 1)[-1]
    assert "hourly_analytics" in message
    record = engine.task_service.get_status(task_id)
    assert record.task_name == "aggregate_analytics"
    assert record.kwargs == {"period": "hourly"}
    assert (
        engine.scheduler_service.get_schedule("hourly_analytics").last_task_id
        == task_id
    )


def test_delete_cancel_keeps_schedule(
    qtbot, view: SchedulesView, engine: Engine
) -> None:  # type: ignore[no-untyped-def]
    view.select_schedule("daily_cleanup")
    qtbot.mouseClick(view.findChild(object, "delete_button"), Qt.MouseButton.LeftButton)
    box = view.findChild(QMessageBox, "delete_confirmation")
    assert box is not None
    assert box.isVisible()
    assert "daily_cleanup" in box.text()
    with qtbot.assertNotEmitted(view.schedule_changed, wait=100):
        box.button(QMessageBox.StandardButton.Cancel).click()
    assert stored_names(engine) == DEFAULT_NAMES


def test_delete_after_confirmation(qtbot, view: SchedulesView, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    view.select_schedule("daily_cleanup")
    box = view.delete_selected()
    assert box is not None
    assert "daily_cleanup" in box.text()
    assert "cleanup_old_data" in box.informativeText()
    delete_button = box.findChild(object, "confirm_delete_button")
    with qtbot.waitSignal(view.schedule_changed):
        delete_button.click()
    assert stored_names(engine) == ["hourly_analytics"]
    qtbot.waitUntil(lambda: view.model().rowCount() == 1)
    assert view.model().row_of("daily_cleanup") is None


# --- dialog ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "field"),
    [
        ("0 25 * * *", "hour"),
        ("61 * * * *", "minute"),
        ("5-2 * * * *", "minute"),
        ("* * * *", "expression"),
        ("0 0 31 2 *", "day-of-month"),
    ],
)
def test_dialog_rejects_invalid_expression(  # type: ignore[no-untyped-def]
    qtbot, view: SchedulesView, engine: Engine, expression: str, field: str
) -> None:
    dialog = open_dialog(qtbot, view)
    fill(dialog, "sv_bad", "sv_report", expression)
    message = dialog.expression_message()
    assert field in message
    assert not dialog.ok_button().isEnabled()
    assert dialog.next_runs() == []
    assert label_text(dialog, "description_label") == ""

    qtbot.mouseClick(dialog.ok_button(), Qt.MouseButton.LeftButton)
    dialog.findChild(QLineEdit, "expression_edit").returnPressed.emit()
    assert dialog.isVisible()
    assert stored_names(engine) == DEFAULT_NAMES


def test_dialog_message_names_value(qtbot, view: SchedulesView) -> None:  # type: ignore[no-untyped-def]
    dialog = open_dialog(qtbot, view)
    fill(dialog, "sv_bad", "sv_report", "0 25 * * *")
    assert "hour" in dialog.expression_message()
    assert "25" in dialog.expression_message()
    assert "0 to 23" in dialog.expression_message()


def test_dialog_rejects_invalid_zone(qtbot, view: SchedulesView) -> None:  # type: ignore[no-untyped-def]
    dialog = open_dialog(qtbot, view)
    fill(dialog, "sv_zone", "sv_report", "0 9 * * *", zone="Mars/Olympus")
    assert "timezone" in dialog.expression_message()
    assert not dialog.ok_button().isEnabled()


def test_dialog_previews_valid_expression(
    qtbot, view: SchedulesView, engine: Engine
) -> None:  # type: ignore[no-untyped-def]
    dialog = open_dialog(qtbot, view)
    fill(dialog, "sv_weekly", "sv_report", "30 4 * * 1", zone="America/New_York")
    assert dialog.expression_message() == ""
    assert label_text(dialog, "description_label") == "At 04:30, only on Monday"
    runs = dialog.next_runs()
    assert len(runs) == PREVIEW_COUNT
    for line in runs:
        assert line.startswith("Mon ")
        assert " 04:30 E" in line  # EST or EDT: New York time, not UTC.
    assert "America/New_York" in label_text(dialog, "next_runs_label")

    expected = cron.next_fires(
        cron.validate("30 4 * * 1", "America/New_York"), dt.datetime.now(dt.UTC), 5
    )
    assert runs[0].startswith(expected[0].strftime("%a %Y-%m-%d %H:%M %Z"))
    assert dialog.ok_button().isEnabled()

    set_kwargs(dialog, '{"title": "monday", "limit": 3}')
    with qtbot.waitSignal(dialog.schedule_saved) as blocker:
        qtbot.mouseClick(dialog.ok_button(), Qt.MouseButton.LeftButton)
    saved: ScheduleInfo = blocker.args[0]
    assert saved.name == "sv_weekly"
    stored = engine.scheduler_service.get_schedule("sv_weekly")
    assert stored.expression == "30 4 * * 1"
    assert stored.timezone == "America/New_York"
    assert stored.task_name == "sv_report"
    assert stored.kwargs == {"title": "monday", "limit": 3}
    assert stored.approved_by is None
    qtbot.waitUntil(lambda: not dialog.isVisible())
    qtbot.waitUntil(lambda: view.model().row_of("sv_weekly") is not None)


def test_dialog_defaults(qtbot, view: SchedulesView) -> None:  # type: ignore[no-untyped-def]
    dialog = open_dialog(qtbot, view)
    assert (
        dialog.findChild(QComboBox, "zone_combo").currentText()
        == cron.local_zone_name()
    )
    assert not dialog.ok_button().isEnabled()  # No name and no expression yet.
    assert dialog.select_task("sv_report")
    kwargs = json.loads(dialog.findChild(QPlainTextEdit, "kwargs_edit").toPlainText())
    assert kwargs == {"title": "weekly", "limit": 10}
    assert dialog.findChild(QComboBox, "misfire_combo").currentData() == "skip"
    assert not dialog.findChild(object, "grace_spin").isEnabled()


def test_dialog_rejects_invalid_json(
    qtbot, view: SchedulesView, engine: Engine
) -> None:  # type: ignore[no-untyped-def]
    dialog = open_dialog(qtbot, view)
    fill(dialog, "sv_json", "sv_report", "0 9 * * *")
    assert dialog.ok_button().isEnabled()

    set_kwargs(dialog, '{"title": ')
    assert "Invalid JSON" in label_text(dialog, "kwargs_message")
    assert not dialog.ok_button().isEnabled()

    set_kwargs(dialog, "[1, 2]")
    assert "JSON object" in label_text(dialog, "kwargs_message")
    assert not dialog.ok_button().isEnabled()

    set_kwargs(dialog, '{"limit": 2}')
    assert label_text(dialog, "kwargs_message") == ""
    assert dialog.ok_button().isEnabled()
    assert stored_names(engine) == DEFAULT_NAMES


def test_dialog_shows_taken_name(qtbot, view: SchedulesView, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    dialog = open_dialog(qtbot, view)
    fill(dialog, "daily_cleanup", "sv_report", "15 3 * * *")
    qtbot.mouseClick(dialog.ok_button(), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "exists already" in label_text(dialog, "save_error"))
    assert dialog.isVisible()
    assert dialog.ok_button().isEnabled()
    stored = engine.scheduler_service.get_schedule("daily_cleanup")
    assert stored.expression == "0 2 * * *"
    assert stored.task_name == "cleanup_old_data"


def test_dialog_shows_bad_arguments(qtbot, view: SchedulesView, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    dialog = open_dialog(qtbot, view)
    fill(dialog, "sv_args", "sv_report", "15 3 * * *")
    set_kwargs(dialog, '{"colour": "red"}')
    qtbot.mouseClick(dialog.ok_button(), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "colour" in label_text(dialog, "save_error"))
    assert dialog.isVisible()
    assert stored_names(engine) == DEFAULT_NAMES


def test_dialog_closed_while_saving(qtbot, view: SchedulesView, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    dialog = open_dialog(qtbot, view)
    fill(dialog, "sv_closed", "sv_report", "0 8 * * *")
    qtbot.mouseClick(dialog.ok_button(), Qt.MouseButton.LeftButton)
    dialog.reject()
    qtbot.waitUntil(lambda: "sv_closed" in stored_names(engine))
    # The late result reaches a deleted dialog, which must not raise.
    qtbot.waitUntil(lambda: view.findChild(ScheduleDialog) is None)


def test_dialog_governance_approves_as_operator(  # type: ignore[no-untyped-def]
    qtbot, view: SchedulesView, engine: Engine
) -> None:
    view.set_operator("carol")
    dialog = open_dialog(qtbot, view)
    fill(dialog, "sv_gov", "sv_governed", "0 7 * * *")
    assert "carol" in label_text(dialog, "approval_note")
    with qtbot.waitSignal(dialog.schedule_saved):
        qtbot.mouseClick(dialog.ok_button(), Qt.MouseButton.LeftButton)
    assert engine.scheduler_service.get_schedule("sv_gov").approved_by == "carol"


def test_dialog_governance_needs_operator(qtbot, view: SchedulesView) -> None:  # type: ignore[no-untyped-def]
    view.set_operator("")
    dialog = open_dialog(qtbot, view)
    fill(dialog, "sv_gov", "sv_governed", "0 7 * * *")
    assert "operator" in label_text(dialog, "approval_note")
    assert not dialog.ok_button().isEnabled()


def test_edit_dialog_updates_schedule(
    qtbot, view: SchedulesView, engine: Engine
) -> None:  # type: ignore[no-untyped-def]
    dialog = open_dialog(qtbot, view, "daily_cleanup")
    name_edit = dialog.findChild(QLineEdit, "name_edit")
    assert name_edit.text() == "daily_cleanup"
    assert name_edit.isReadOnly()
    assert dialog.findChild(QLineEdit, "expression_edit").text() == "0 2 * * *"
    assert dialog.findChild(QComboBox, "task_combo").currentData() == "cleanup_old_data"
    assert json.loads(
        dialog.findChild(QPlainTextEdit, "kwargs_edit").toPlainText()
    ) == {"days": 30}

    dialog.findChild(QLineEdit, "expression_edit").setText("45 3 * * *")
    set_kwargs(dialog, '{"days": 7}')
    with qtbot.waitSignal(view.schedule_changed):
        qtbot.mouseClick(dialog.ok_button(), Qt.MouseButton.LeftButton)
    stored = engine.scheduler_service.get_schedule("daily_cleanup")
    assert stored.expression == "45 3 * * *"
    assert stored.kwargs == {"days": 7}
    qtbot.waitUntil(lambda: cell(view, "daily_cleanup", COLUMN_CRON) == "45 3 * * *")


def test_schedule_info_roles(view: SchedulesView) -> None:
    info = cell(view, "daily_cleanup", COLUMN_NAME, SCHEDULE_ROLE)
    assert isinstance(info, ScheduleInfo)
    assert dataclasses.asdict(info)["task_name"] == "cleanup_old_data"
    assert cell(view, "daily_cleanup", COLUMN_NAME) == "daily_cleanup"
