"""The task table widget: filter bar, delegates, selection, sorting and go to task."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import QItemSelectionModel, QPoint, QSignalBlocker, Qt
from PySide6.QtGui import QColor

from chenu_desktop import TaskQueue, TaskStatus, background_task
from chenu_desktop.engine import Engine
from chenu_desktop.models import TaskFilter, TaskRecord, TaskSort
from chenu_desktop.ui.background import BackgroundRunner
from chenu_desktop.ui.feed import EngineFeed
from chenu_desktop.ui.style import STATUS_COLORS
from chenu_desktop.ui.task_columns import TaskColumn
from chenu_desktop.ui.task_filter_bar import TaskFilterBar
from chenu_desktop.ui.task_table import TaskTableWidget

#: A fixed time for inserted records (November 2023, in POSIX seconds).
T0 = 1_700_000_000.0


@background_task(name="tt_echo", queue=TaskQueue.DEFAULT)
def echo(value: int) -> int:
    return value


def make_record(number: int, **fields: Any) -> TaskRecord:
    fields.setdefault("queue", TaskQueue.DEFAULT)
    fields.setdefault("status", TaskStatus.PENDING)
    created = T0 + number
    return TaskRecord(
        task_id=f"task-{number:06d}",
        task_name=fields.pop("task_name", "reports.build"),
        priority=6,
        created_at=created,
        updated_at=created,
        history=[[fields["status"].value, created]],
        **fields,
    )


def insert(engine: Engine, records: list[TaskRecord]) -> None:
    ledger: Any = engine.ledger
    ledger.insert_many(records)


def open_table(
    qtbot: Any, engine: Engine, runner: BackgroundRunner, **options: Any
) -> TaskTableWidget:
    table = TaskTableWidget(engine, runner, **options)
    qtbot.addWidget(table)
    table.resize(1400, 600)
    table.show()
    qtbot.waitUntil(lambda: not table.model.is_loading, timeout=10_000)
    return table


def wait_rows_loaded(qtbot: Any, table: TaskTableWidget, rows: range) -> None:
    for row in rows:
        table.model.data(table.model.index(row, 0))
    qtbot.waitUntil(
        lambda: all(table.model.record_at(row) for row in rows), timeout=10_000
    )


def id_at(table: TaskTableWidget, row: int) -> str | None:
    """Return the task id of a row, or None while its page is being read."""
    record = table.model.record_at(row)
    return None if record is None else record.task_id


def select_rows(table: TaskTableWidget, *rows: int) -> None:
    selection = table.view.selectionModel()
    for row in rows:
        selection.select(
            table.model.index(row, 0),
            QItemSelectionModel.SelectionFlag.Select
            | QItemSelectionModel.SelectionFlag.Rows,
        )


def visible(table: TaskTableWidget, row: int) -> bool:
    rect = table.view.visualRect(table.model.index(row, 0))
    return table.view.viewport().rect().contains(rect.center())


@pytest.fixture
def start_feed(
    ui_engine: Engine, runner: BackgroundRunner
) -> Iterator[Callable[[], EngineFeed]]:
    """Return a function that starts a feed; the feed is deleted at the end.

    The runner closes first, because the feed's pending results would
    otherwise arrive after it is gone.
    """
    feeds: list[EngineFeed] = []

    def start() -> EngineFeed:
        feed = EngineFeed(ui_engine, runner, change_interval_ms=30)
        feeds.append(feed)
        feed.start()
        return feed

    yield start
    for feed in feeds:
        feed.stop()
    runner.close()
    for feed in feeds:
        shiboken6.delete(feed)


def test_delegates_paint(qtbot, idle_engine: Engine, runner: BackgroundRunner) -> None:
    insert(
        idle_engine,
        [
            make_record(n, status=status, progress=n / 10)
            for n, status in enumerate(TaskStatus)
        ]
        + [
            make_record(
                50,
                queue=TaskQueue.GOVERNANCE,
                status=TaskStatus.AWAITING_APPROVAL,
                requires_governance=True,
            ),
            make_record(51, status=TaskStatus.RUNNING, cancel_requested=True),
        ],
    )
    table = open_table(qtbot, idle_engine, runner)
    wait_rows_loaded(qtbot, table, range(table.model.rowCount()))

    image = table.view.viewport().grab().toImage()

    assert not image.isNull()
    row = table.model.row_of("task-000005")
    status = table.model.record_at(row).status
    cell = table.view.visualRect(table.model.index(row, TaskColumn.STATUS))
    pixel = QColor(image.pixel(cell.left() + 6, cell.center().y()))
    assert pixel == STATUS_COLORS[status]
    governance = table.model.index(table.model.row_of("task-000050"), 0)
    assert table.model.data(governance, Qt.ItemDataRole.BackgroundRole) is not None


def test_filter_bar_sets_model_filter(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    table = open_table(qtbot, idle_engine, runner)
    bar = table.filter_bar
    changed: list[TaskFilter] = []
    table.filter_changed.connect(changed.append)

    bar.status_combo.setCurrentIndex(bar.status_combo.findData("failure"))
    bar.queue_combo.setCurrentIndex(bar.queue_combo.findData("high"))

    assert table.task_filter() == TaskFilter(
        status=TaskStatus.FAILURE, queue=TaskQueue.HIGH
    )
    assert changed[-1] == table.task_filter()

    qtbot.mouseClick(bar.clear_button, Qt.MouseButton.LeftButton)

    assert table.task_filter() == TaskFilter()


def test_search_waits_for_typing_pause(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    insert(
        idle_engine,
        [make_record(1, task_name="mail.send"), make_record(2, task_name="reports")],
    )
    table = open_table(qtbot, idle_engine, runner)

    qtbot.keyClicks(table.filter_bar.search_edit, "mail")
    typed = table.task_filter()

    qtbot.waitUntil(lambda: table.task_filter().text == "mail", timeout=10_000)
    qtbot.waitUntil(lambda: not table.model.is_loading, timeout=10_000)
    assert typed == TaskFilter()
    assert table.model.rowCount() == 1
    assert table.count_label.text() == "1 task"


def test_awaiting_toggle_filters_status(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    table = open_table(qtbot, idle_engine, runner)
    toggle = table.filter_bar.awaiting_toggle

    table.set_awaiting_count(3)
    qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    checked_filter = table.task_filter()
    table.set_status_filter(TaskStatus.FAILURE)
    after_status = toggle.isChecked()

    assert toggle.text() == "Awaiting approval (3)"
    assert checked_filter.status is TaskStatus.AWAITING_APPROVAL
    assert not after_status
    assert table.task_filter().status is TaskStatus.FAILURE


def test_public_filter_setters(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    table = open_table(qtbot, idle_engine, runner)

    table.set_queue_filter(TaskQueue.LOW)
    table.set_status_filter(TaskStatus.RUNNING)
    table.set_text_filter("  report ")

    assert table.task_filter() == TaskFilter(
        status=TaskStatus.RUNNING, queue=TaskQueue.LOW, text="report"
    )
    assert table.filter_bar.search_edit.text() == "  report "


def test_selection_changed_sends_records(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    insert(idle_engine, [make_record(n) for n in range(5)])
    table = open_table(qtbot, idle_engine, runner)

    with qtbot.waitSignal(table.selection_changed, timeout=10_000) as first:
        select_rows(table, 1)
    with qtbot.waitSignal(table.selection_changed, timeout=10_000) as both:
        select_rows(table, 3)

    assert [r.task_id for r in first.args[0]] == ["task-000003"]
    assert [r.task_id for r in both.args[0]] == ["task-000003", "task-000001"]
    assert table.selected_records() == both.args[0]


def test_enter_and_double_click_activate(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    insert(idle_engine, [make_record(n) for n in range(3)])
    table = open_table(qtbot, idle_engine, runner)
    index = table.model.index(1, 0)
    table.view.setCurrentIndex(index)
    table.view.setFocus()

    with qtbot.waitSignal(table.task_activated, timeout=10_000) as entered:
        qtbot.keyClick(table.view, Qt.Key.Key_Return)
    center = table.view.visualRect(table.model.index(2, 1)).center()
    viewport = table.view.viewport()
    with qtbot.waitSignal(table.task_activated, timeout=10_000) as clicked:
        # A real double-click starts with a press, which the view needs.
        qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=center)
        qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=center)
        qtbot.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=center)

    assert entered.args == ["task-000001"]
    assert clicked.args == ["task-000000"]


def test_header_click_ignores_unsortable_column(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    insert(idle_engine, [make_record(n) for n in range(5)])
    table = open_table(qtbot, idle_engine, runner)
    header = table.view.horizontalHeader()
    select_rows(table, 1)
    table.view.setCurrentIndex(table.model.index(1, 0))

    qtbot.mouseClick(
        header.viewport(),
        Qt.MouseButton.LeftButton,
        pos=QPoint(header.sectionViewportPosition(TaskColumn.CREATED) + 20, 5),
    )
    qtbot.waitUntil(lambda: not table.model.is_loading, timeout=10_000)
    qtbot.waitUntil(
        lambda: [r.task_id for r in table.selected_records()] == ["task-000003"],
        timeout=10_000,
    )
    qtbot.mouseClick(
        header.viewport(),
        Qt.MouseButton.LeftButton,
        pos=QPoint(header.sectionViewportPosition(TaskColumn.PROGRESS) + 20, 5),
    )

    assert table.model.ascending
    assert table.model.record_at(0).task_id == "task-000000"
    assert header.sortIndicatorSection() == TaskColumn.CREATED
    assert header.sortIndicatorOrder() == Qt.SortOrder.AscendingOrder
    assert table.model.record_at(3).task_id == "task-000003"


def test_header_state_round_trip(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    first = open_table(qtbot, idle_engine, runner)
    header = first.view.horizontalHeader()
    header.resizeSection(TaskColumn.TASK, 333)
    header.setSortIndicator(TaskColumn.DURATION, Qt.SortOrder.AscendingOrder)
    state = first.header_state()

    second = open_table(qtbot, idle_engine, runner)
    restored = second.restore_header_state(state)
    second_header = second.view.horizontalHeader()

    assert restored
    assert second_header.sectionSize(TaskColumn.TASK) == 333
    assert second.model.sort_key is TaskSort.DURATION
    assert second.model.ascending
    assert second_header.sortIndicatorSection() == TaskColumn.DURATION


def test_header_state_unsortable_column(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    first = open_table(qtbot, idle_engine, runner)
    header = first.view.horizontalHeader()
    with QSignalBlocker(header):
        header.setSortIndicator(TaskColumn.WORKER, Qt.SortOrder.AscendingOrder)
    state = first.header_state()

    second = open_table(qtbot, idle_engine, runner)
    second.restore_header_state(state)
    second_header = second.view.horizontalHeader()

    assert second.model.sort_key is TaskSort.CREATED
    assert not second.model.ascending
    assert second_header.sortIndicatorSection() == TaskColumn.CREATED
    assert second_header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder


def click_header(qtbot: Any, table: TaskTableWidget, column: TaskColumn) -> None:
    header = table.view.horizontalHeader()
    qtbot.mouseClick(
        header.viewport(),
        Qt.MouseButton.LeftButton,
        pos=QPoint(header.sectionViewportPosition(column) + 20, 5),
    )


def test_header_clicks_sort_by_column(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    records = [make_record(n, attempts=(n * 3) % 5) for n in range(6)]
    records += [make_record(n, task_name=f"job.{n % 3}") for n in range(6, 9)]
    insert(idle_engine, records)
    table = open_table(qtbot, idle_engine, runner)
    header = table.view.horizontalHeader()
    select_rows(table, 0)
    table.view.setCurrentIndex(table.model.index(0, 0))
    selected = id_at(table, 0)

    click_header(qtbot, table, TaskColumn.ATTEMPTS)
    qtbot.waitUntil(lambda: not table.model.is_loading, timeout=10_000)
    wait_rows_loaded(qtbot, table, range(9))
    most_attempts = [id_at(table, row) for row in range(3)]

    assert table.model.sort_key is TaskSort.ATTEMPTS
    assert not table.model.ascending
    assert header.sortIndicatorSection() == TaskColumn.ATTEMPTS
    assert header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
    assert most_attempts == ["task-000003", "task-000001", "task-000004"]
    qtbot.waitUntil(
        lambda: [r.task_id for r in table.selected_records()] == [selected],
        timeout=10_000,
    )

    click_header(qtbot, table, TaskColumn.ATTEMPTS)
    qtbot.waitUntil(lambda: not table.model.is_loading, timeout=10_000)
    wait_rows_loaded(qtbot, table, range(9))
    assert table.model.ascending
    assert header.sortIndicatorOrder() == Qt.SortOrder.AscendingOrder
    assert table.model.record_at(0).attempts == 0

    click_header(qtbot, table, TaskColumn.TASK)
    qtbot.waitUntil(lambda: not table.model.is_loading, timeout=10_000)
    wait_rows_loaded(qtbot, table, range(9))
    names = [table.model.record_at(row).task_name for row in range(9)]
    assert table.model.sort_key is TaskSort.TASK_NAME
    assert header.sortIndicatorOrder() == Qt.SortOrder.AscendingOrder
    assert names == sorted(names)


def test_select_far_task_clears_hiding_filter(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    insert(idle_engine, [make_record(n) for n in range(5000)])
    table = open_table(qtbot, idle_engine, runner)
    table.set_status_filter(TaskStatus.FAILURE)
    table.set_queue_filter(TaskQueue.DEFAULT)
    qtbot.waitUntil(lambda: not table.model.is_loading, timeout=10_000)

    table.select_task("task-000123")

    qtbot.waitUntil(
        lambda: [r.task_id for r in table.selected_records()] == ["task-000123"],
        timeout=10_000,
    )
    row = table.model.row_of("task-000123")
    assert row == 5000 - 1 - 123
    assert table.task_filter() == TaskFilter(queue=TaskQueue.DEFAULT)
    assert table.filter_bar.status() is None
    qtbot.waitUntil(lambda: visible(table, row), timeout=10_000)
    assert table.view.currentIndex().row() == row


def test_select_unknown_task_reports(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    table = open_table(qtbot, idle_engine, runner)

    with qtbot.waitSignal(table.message_requested, timeout=10_000) as message:
        table.select_task("no-such-task")

    assert "no-such-task" in message.args[0]
    assert "not found" in message.args[0]
    assert table.selected_records() == []


def test_new_rows_keep_selection_and_scroll(
    qtbot, ui_engine: Engine, runner: BackgroundRunner, start_feed: Any
) -> None:
    insert(ui_engine, [make_record(n, status=TaskStatus.SUCCESS) for n in range(300)])
    table = open_table(qtbot, ui_engine, runner)
    wait_rows_loaded(qtbot, table, range(300))
    # Started after the inserts, the feed sends only the new task's changes,
    # so the model takes its cheap path and inserts one row at the top.
    feed = start_feed()
    qtbot.waitUntil(lambda: feed._since is not None, timeout=10_000)
    feed.changes_arrived.connect(table.apply_changes)
    table.view.scrollTo(table.model.index(100, 0), table.view.ScrollHint.PositionAtTop)
    top_before = table.view.indexAt(QPoint(5, 5)).row()
    top_id = table.model.record_at(top_before).task_id
    select_rows(table, 120)
    selected_id = table.model.record_at(120).task_id

    new_id = ui_engine.task_service.submit("tt_echo", args=[1])

    qtbot.waitUntil(lambda: table.model.rowCount() == 301, timeout=10_000)
    qtbot.waitUntil(
        lambda: id_at(table, table.view.indexAt(QPoint(5, 5)).row()) == top_id,
        timeout=10_000,
    )
    assert table.model.record_at(0).task_id == new_id
    assert [r.task_id for r in table.selected_records()] == [selected_id]
    assert table.model.row_of(selected_id) == 121


def test_object_and_accessible_names(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    table = open_table(qtbot, idle_engine, runner)
    names = [
        "task_table",
        "task_status_filter",
        "task_queue_filter",
        "task_search",
        "task_awaiting_toggle",
        "task_clear_filters",
    ]

    widgets = {name: table.findChild(object, name) for name in names}

    assert all(widgets.values())
    assert all(widget.accessibleName() for widget in widgets.values())


def test_filter_bar_alone_emits_once(qtbot) -> None:
    bar = TaskFilterBar()
    qtbot.addWidget(bar)
    seen: list[TaskFilter] = []
    bar.filter_changed.connect(seen.append)

    bar.set_values(TaskStatus.RUNNING, None, "x")
    bar.set_queue(TaskQueue.HIGH)

    assert seen == [
        TaskFilter(status=TaskStatus.RUNNING, queue=TaskQueue.HIGH, text="x")
    ]
