"""The task detail panel: fields, error and traceback, links, history and approval."""

from __future__ import annotations

import dataclasses
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from chenu_desktop import TaskQueue, TaskStatus, background_task
from chenu_desktop.engine import Engine
from chenu_desktop.models import TaskRecord
from chenu_desktop.ui.task_detail import TaskDetailPanel

from engine_helpers import wait_final

#: A fixed time for the records (November 2023, in POSIX seconds).
T0 = 1_700_000_000.0


@background_task(name="td_fail", queue=TaskQueue.DEFAULT)
def fail(reason: str) -> None:
    raise ValueError(f"cannot build the report: {reason}")


def make_record(**fields: Any) -> TaskRecord:
    fields.setdefault("status", TaskStatus.SUCCESS)
    return TaskRecord(
        task_id=fields.pop("task_id", "task-1"),
        task_name=fields.pop("task_name", "reports.build"),
        queue=fields.pop("queue", TaskQueue.DEFAULT),
        priority=fields.pop("priority", 6),
        created_at=fields.pop("created_at", T0),
        **fields,
    )


def open_panel(qtbot: Any) -> TaskDetailPanel:
    panel = TaskDetailPanel()
    qtbot.addWidget(panel)
    panel.resize(500, 800)
    panel.show()
    return panel


def test_failing_task_shows_traceback(qtbot, ui_engine: Engine) -> None:
    task_id = ui_engine.task_service.submit("td_fail", reason="no data")
    record = wait_final(ui_engine, task_id)
    panel = open_panel(qtbot)

    panel.show_record(record)

    assert record.status is TaskStatus.FAILURE
    assert panel.error_group.isVisibleTo(panel)
    assert "cannot build the report: no data" in panel.error_label.text()
    assert panel.traceback_box.toPlainText() == record.traceback
    assert "Traceback (most recent call last)" in record.traceback
    assert panel.traceback_box.isReadOnly()


def test_copy_button_copies_traceback(qtbot, ui_engine: Engine) -> None:
    task_id = ui_engine.task_service.submit("td_fail", reason="copy me")
    record = wait_final(ui_engine, task_id)
    panel = open_panel(qtbot)
    panel.show_record(record)
    QGuiApplication.clipboard().clear()

    qtbot.mouseClick(panel.copy_button, Qt.MouseButton.LeftButton)

    assert QGuiApplication.clipboard().text() == record.traceback


def test_retry_links_emit_their_ids(qtbot) -> None:
    panel = open_panel(qtbot)
    panel.show_record(make_record(retry_of="task-0", retried_as="task-2"))

    with qtbot.waitSignal(panel.task_link_activated, timeout=10_000) as retry_of:
        qtbot.mouseClick(panel.retry_of_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(panel.task_link_activated, timeout=10_000) as retried_as:
        qtbot.mouseClick(panel.retried_as_button, Qt.MouseButton.LeftButton)

    assert retry_of.args == ["task-0"]
    assert retried_as.args == ["task-2"]
    assert panel.retry_of_button.text() == "task-0"


def test_links_hidden_without_retries(qtbot) -> None:
    panel = open_panel(qtbot)

    panel.show_record(make_record())

    assert not panel.retry_of_button.isVisibleTo(panel)
    assert not panel.retried_as_button.isVisibleTo(panel)


def test_fields_and_selectable_id(qtbot) -> None:
    panel = open_panel(qtbot)
    record = make_record(
        status=TaskStatus.RUNNING,
        attempts=2,
        max_retries=3,
        started_at=T0 + 5,
        worker="host-1:default-0",
        progress=0.4,
        progress_message="40 of 100 rows",
        args=[1, "two"],
        kwargs={"größe": 3},
    )

    panel.show_record(record)

    assert panel.id_label.text() == "task-1"
    flags = panel.id_label.textInteractionFlags()
    assert flags & Qt.TextInteractionFlag.TextSelectableByMouse
    assert panel.status_badge.text() == "running"
    assert panel.fields["attempts"].text() == "attempt 2 of 4 (3 retries)"
    assert panel.fields["worker"].text() == "host-1:default-0"
    assert panel.progress_bar.value() == 400
    assert panel.progress_message.text() == "40 of 100 rows"
    assert '"größe": 3' in panel.arguments_box.toPlainText()
    assert '"two"' in panel.arguments_box.toPlainText()
    assert not panel.result_group.isVisibleTo(panel)
    assert not panel.error_group.isVisibleTo(panel)


def test_result_as_formatted_json(qtbot) -> None:
    panel = open_panel(qtbot)

    panel.show_record(make_record(result={"rows": 3, "names": ["a", "b"]}))

    assert panel.result_box.toPlainText() == (
        '{\n  "rows": 3,\n  "names": [\n    "a",\n    "b"\n  ]\n}'
    )


def test_large_arguments_shown_whole(qtbot) -> None:
    panel = open_panel(qtbot)
    blob = "x" * 1_000_000

    panel.show_record(make_record(args=[blob]))

    assert blob in panel.arguments_box.toPlainText()


def test_history_newest_first(qtbot) -> None:
    panel = open_panel(qtbot)
    history = [["pending", T0], ["running", T0 + 1], ["success", T0 + 3.5]]

    panel.show_record(make_record(history=history))

    tree = panel.history_tree
    assert tree.topLevelItemCount() == 3
    assert tree.topLevelItem(0).text(0) == "success"
    assert tree.topLevelItem(0).text(2) == "2.5 s"
    assert tree.topLevelItem(2).text(0) == "pending"
    assert tree.topLevelItem(2).text(2) == ""


def test_approval_record_shown(qtbot) -> None:
    panel = open_panel(qtbot)
    record = make_record(
        queue=TaskQueue.GOVERNANCE,
        status=TaskStatus.REJECTED,
        requires_governance=True,
        approved_by="ops-lead",
        approved_at=T0 + 60,
        approval_reason="outside the change window",
    )

    panel.show_record(record)

    text = panel.fields["approval"].text()
    assert text.startswith("rejected by ops-lead at ")
    assert text.endswith(": outside the change window")


def test_awaiting_approval_shown(qtbot) -> None:
    panel = open_panel(qtbot)

    panel.show_record(
        make_record(status=TaskStatus.AWAITING_APPROVAL, requires_governance=True)
    )

    assert panel.fields["approval"].text() == "awaiting approval"


def test_cancel_requested_shown(qtbot) -> None:
    panel = open_panel(qtbot)

    panel.show_record(make_record(status=TaskStatus.RUNNING, cancel_requested=True))
    running = panel.cancel_label.isVisibleTo(panel)
    panel.show_record(make_record(status=TaskStatus.CANCELLED, cancel_requested=True))
    cancelled = panel.cancel_label.isVisibleTo(panel)

    assert panel.cancel_label.text() == "cancel requested"
    assert running
    assert not cancelled


def test_refresh_keeps_traceback_scroll(qtbot) -> None:
    panel = open_panel(qtbot)
    traceback = "\n".join(f"  line {n}" for n in range(500))
    record = make_record(status=TaskStatus.FAILURE, error="boom", traceback=traceback)
    panel.show_record(record)
    scroll_bar = panel.traceback_box.verticalScrollBar()
    scroll_bar.setValue(200)

    panel.show_record(dataclasses.replace(record, worker="host-2"))

    assert scroll_bar.value() == 200
    assert panel.fields["worker"].text() == "host-2"


def test_none_shows_empty_state(qtbot) -> None:
    panel = open_panel(qtbot)
    panel.show_record(make_record())

    panel.show_record(None)

    assert panel.empty_label.isVisibleTo(panel)
    assert not panel.scroll_area.isVisibleTo(panel)
    assert panel.record is None


def test_object_names_on_parts(qtbot) -> None:
    panel = open_panel(qtbot)
    names = {
        "detail_task_id",
        "detail_status",
        "detail_traceback",
        "detail_copy_traceback",
        "detail_arguments",
        "detail_result",
        "detail_history",
        "detail_retry_of",
        "detail_retried_as",
        "detail_approval",
        "detail_progress",
    }

    found = {name for name in names if panel.findChild(object, name) is not None}

    assert found == names
