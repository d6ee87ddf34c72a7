"""Tests of the Audit tab: its table model, paging, filters and live updates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from engine_helpers import open_test_engine
from PySide6.QtCore import QSettings, Qt

from chenu_desktop import TaskQueue, background_task
from chenu_desktop.audit.store import AuditEntry
from chenu_desktop.engine import Engine
from chenu_desktop.ui.audit_table_model import (
    COLUMN_ACTION,
    COLUMN_DETAILS,
    COLUMN_OPERATOR,
    COLUMN_REASON,
    COLUMN_TARGET,
    COLUMN_WHEN,
    ENTRY_ROLE,
    AuditTableModel,
)
from chenu_desktop.ui.audit_view import AuditView
from chenu_desktop.ui.background import BackgroundRunner
from chenu_desktop.ui.main_window import MainWindow

#: A fixed time for the model's entries (November 2023, POSIX seconds).
T0 = 1_700_000_000.0


@background_task(name="av_payout", queue=TaskQueue.GOVERNANCE, requires_governance=True)
def av_payout(amount: int = 1, approved_by: str = "") -> str:
    return approved_by


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine without workers whose configured operator is "ada"."""
    engine = open_test_engine(
        f"sqlite://{(tmp_path / 'audit.db').as_posix()}", operator="ada"
    )
    try:
        yield engine
    finally:
        engine.close()


def make_view(qtbot, engine: Engine, runner: BackgroundRunner, page_size: int = 100):  # type: ignore[no-untyped-def]
    view = AuditView(engine, runner, page_size=page_size)
    qtbot.addWidget(view)
    view.resize(1100, 400)
    view.show()
    with qtbot.waitSignal(view.page_loaded, timeout=5000):
        view.refresh()
    return view


def pause_queues(engine: Engine, count: int) -> None:
    """Write `count` entries: pause and resume the low queue in turn."""
    for number in range(count):
        if number % 2 == 0:
            engine.pool.pause(TaskQueue.LOW)
        else:
            engine.pool.resume(TaskQueue.LOW)


def shown_actions(view: AuditView) -> list[str]:
    model = view.model()
    return [model.index(row, COLUMN_ACTION).data() for row in range(model.rowCount())]


def entry(entry_id: int, action: str = "cancel", **fields: object) -> AuditEntry:
    values: dict[str, object] = {
        "entry_id": entry_id,
        "at": T0 + entry_id,
        "operator": "ada",
        "action": action,
        "target_kind": "task",
        "target": f"t{entry_id}",
    }
    values.update(fields)
    return AuditEntry(**values)  # type: ignore[arg-type]


# --- the model -------------------------------------------------------------------


def test_model_passes_model_tester(qtmodeltester) -> None:  # type: ignore[no-untyped-def]
    model = AuditTableModel()
    model.set_entries([entry(1), entry(2, "retry", details={"new_task_id": "n"})])
    qtmodeltester.check(model, force_py=True)
    # The tester stays connected and checks each later change as it happens.
    model.set_entries([entry(3, reason="why"), entry(2), entry(1)])
    assert model.rowCount() == 3
    model.set_entries([entry(5), entry(4), entry(3, reason="why")])
    assert [e.entry_id for e in model.rows()] == [5, 4, 3]
    model.set_entries([])
    assert model.rowCount() == 0


def test_model_cells_newest_first() -> None:
    model = AuditTableModel()
    model.set_entries(
        [
            entry(1),
            entry(
                2,
                "reject",
                reason="wrong account",
                details={"approver": "bob", "status": "rejected"},
            ),
        ]
    )
    assert model.rowCount() == 2
    assert model.columnCount() == 6
    headers = [
        model.headerData(c, Qt.Orientation.Horizontal)
        for c in range(model.columnCount())
    ]
    assert headers == ["When", "Operator", "Action", "Target", "Reason", "Details"]
    top = [model.index(0, column).data() for column in range(model.columnCount())]
    assert top[COLUMN_OPERATOR] == "ada"
    assert top[COLUMN_ACTION] == "reject"
    assert top[COLUMN_TARGET] == "task t2"
    assert top[COLUMN_REASON] == "wrong account"
    assert top[COLUMN_DETAILS] == 'approver="bob", status="rejected"'
    assert top[COLUMN_WHEN].startswith("2023-11-1")
    assert model.index(1, COLUMN_REASON).data() == ""
    assert model.index(0, 0).data(ENTRY_ROLE).entry_id == 2
    tooltip = model.index(0, COLUMN_WHEN).data(Qt.ItemDataRole.ToolTipRole)
    assert "(entry 2)" in tooltip
    details_tip = model.index(0, COLUMN_DETAILS).data(Qt.ItemDataRole.ToolTipRole)
    assert '"approver": "bob"' in details_tip


def test_model_action_label_spaces() -> None:
    model = AuditTableModel()
    model.set_entries([entry(1, "schedule_run_now", target_kind="schedule")])
    assert model.index(0, COLUMN_ACTION).data() == "schedule run now"
    assert model.index(0, COLUMN_TARGET).data() == "schedule t1"


# --- the view --------------------------------------------------------------------


def test_view_names_widgets(qtbot, engine: Engine, runner: BackgroundRunner) -> None:  # type: ignore[no-untyped-def]
    view = make_view(qtbot, engine, runner)
    assert view.objectName() == "audit_view"
    assert view.accessibleName() == "Audit trail"
    for name, accessible in (
        ("audit_table", "Audit entries"),
        ("audit_action_filter", "Action filter"),
        ("audit_target_filter", "Target filter"),
        ("audit_operator_filter", "Operator filter"),
        ("audit_newer_button", "Newer entries"),
        ("audit_older_button", "Older entries"),
        ("audit_page_label", "Audit page"),
    ):
        widget = view.findChild(object, name)
        assert widget is not None, name
        assert widget.accessibleName() == accessible, name


def test_view_shows_actions_on_engine(
    qtbot, engine: Engine, runner: BackgroundRunner
) -> None:  # type: ignore[no-untyped-def]
    tasks = engine.task_service
    task_id = tasks.submit("av_payout", amount=5)
    tasks.reject(task_id, "bob", "over the limit")
    engine.pool.pause(TaskQueue.HIGH)
    view = make_view(qtbot, engine, runner)
    model = view.model()
    assert shown_actions(view) == ["queue pause", "reject"]
    assert model.index(1, COLUMN_OPERATOR).data() == "ada"
    assert model.index(1, COLUMN_TARGET).data() == f"task {task_id}"
    assert model.index(1, COLUMN_REASON).data() == "over the limit"
    assert 'approver="bob"' in model.index(1, COLUMN_DETAILS).data()
    assert model.index(0, COLUMN_TARGET).data() == "queue high"
    assert view.page_label.text() == "Entries 1–2 of 2"


def test_view_empty_trail(qtbot, engine: Engine, runner: BackgroundRunner) -> None:  # type: ignore[no-untyped-def]
    view = make_view(qtbot, engine, runner)
    assert view.model().rowCount() == 0
    assert view.page_label.text() == "No audit entries match"
    assert not view.newer_button.isEnabled()
    assert not view.older_button.isEnabled()


def test_view_pages_older_and_newer(
    qtbot, engine: Engine, runner: BackgroundRunner
) -> None:  # type: ignore[no-untyped-def]
    pause_queues(engine, 7)
    view = make_view(qtbot, engine, runner, page_size=3)
    ids = lambda: [e.entry_id for e in view.model().rows()]
    assert ids() == [7, 6, 5]
    assert view.page_label.text() == "Entries 1–3 of 7"
    assert not view.newer_button.isEnabled()
    assert view.older_button.isEnabled()

    with qtbot.waitSignal(view.page_loaded, timeout=5000):
        view.older_button.click()
    assert ids() == [4, 3, 2]
    assert view.page_label.text() == "Entries 4–6 of 7"
    assert view.newer_button.isEnabled()

    with qtbot.waitSignal(view.page_loaded, timeout=5000):
        view.older_button.click()
    assert ids() == [1]
    assert view.page_label.text() == "Entries 7–7 of 7"
    assert not view.older_button.isEnabled()

    with qtbot.waitSignal(view.page_loaded, timeout=5000):
        view.newer_button.click()
    assert ids() == [4, 3, 2]


def test_view_filters_action_and_target(
    qtbot, engine: Engine, runner: BackgroundRunner
) -> None:  # type: ignore[no-untyped-def]
    pause_queues(engine, 4)
    engine.pool.pause(TaskQueue.HIGH)
    view = make_view(qtbot, engine, runner)
    assert view.model().rowCount() == 5

    combo = view.action_combo
    with qtbot.waitSignal(view.page_loaded, timeout=5000):
        combo.setCurrentIndex(combo.findData("queue_resume"))
    assert shown_actions(view) == ["queue resume", "queue resume"]
    assert view.page_label.text() == "Entries 1–2 of 2"

    with qtbot.waitSignal(view.page_loaded, timeout=5000):
        combo.setCurrentIndex(combo.findData("queue_pause"))
    assert len(shown_actions(view)) == 3
    with qtbot.waitSignal(view.page_loaded, timeout=5000):
        view.target_edit.setText("high")
    assert [e.target for e in view.model().rows()] == ["high"]

    with qtbot.waitSignal(view.page_loaded, timeout=5000):
        view.operator_edit.setText("bob")
    assert view.model().rowCount() == 0
    assert view.page_label.text() == "No audit entries match"


def test_view_follows_new_entries(
    qtbot, engine: Engine, runner: BackgroundRunner
) -> None:  # type: ignore[no-untyped-def]
    view = make_view(qtbot, engine, runner)
    engine.pool.pause(TaskQueue.LOW)
    with qtbot.waitSignal(view.page_loaded, timeout=5000):
        view.notify_last_id(engine.audit.last_id())
    assert shown_actions(view) == ["queue pause"]
    # The same id again reads nothing.
    with qtbot.assertNotEmitted(view.page_loaded, wait=200):
        view.notify_last_id(engine.audit.last_id())


def test_view_reports_read_failure(qtbot, runner: BackgroundRunner) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    engine = open_test_engine(f"redis://127.0.0.1:{port}/0")
    try:
        view = AuditView(engine, runner)
        qtbot.addWidget(view)
        with qtbot.waitSignal(view.message_requested, timeout=15000) as signal:
            view.refresh()
        message = signal.args[0]
        assert message.startswith("Reading the audit trail failed:")
        assert str(port) in message
        assert "Traceback" not in message
        assert view.model().rowCount() == 0
    finally:
        engine.close(timeout=1)


# --- in the window ---------------------------------------------------------------


FAST_FEED = {
    "change_interval_ms": 50,
    "stats_interval_ms": 200,
    "workers_interval_ms": 300,
    "schedules_interval_ms": 300,
    "audit_interval_ms": 100,
}


def test_window_audit_tab_follows_actions(
    qtbot, ui_engine: Engine, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    settings = QSettings(str(tmp_path / "window.ini"), QSettings.Format.IniFormat)
    window = MainWindow(ui_engine, settings=settings, feed_intervals=FAST_FEED)
    qtbot.addWidget(window)
    window.show()
    try:
        tabs = window.tabs
        assert [tabs.tabText(i) for i in range(tabs.count())][-1] == "Audit"
        tabs.setCurrentWidget(window.audit)
        task_id = ui_engine.task_service.submit("av_payout", amount=3)
        qtbot.waitUntil(lambda: window.tasks.model.row_of(task_id) is not None)
        ui_engine.task_service.approve(task_id, "ada", reason="checked")
        qtbot.waitUntil(lambda: window.audit.model().rowCount() == 1, timeout=10000)
        model = window.audit.model()
        assert model.index(0, COLUMN_ACTION).data() == "approve"
        assert model.index(0, COLUMN_REASON).data() == "checked"
        assert model.index(0, COLUMN_TARGET).data() == f"task {task_id}"

        ui_engine.pool.pause(TaskQueue.LOW)
        qtbot.waitUntil(lambda: window.audit.model().rowCount() == 2, timeout=10000)
        assert model.index(0, COLUMN_ACTION).data() == "queue pause"
    finally:
        window.feed.stop()
        window.runner.close(wait=True)
