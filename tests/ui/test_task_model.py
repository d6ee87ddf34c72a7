"""The task table model: paging, order, filters and live updates on a real ledger."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import QItemSelectionModel, QModelRoleData, QModelRoleDataSpan, Qt
from PySide6.QtWidgets import QTableView

from chenu_desktop import TaskQueue, TaskStatus, background_task
from chenu_desktop.engine import Engine
from chenu_desktop.ledger import Update
from chenu_desktop.models import Change, TaskFilter, TaskRecord, TaskSort
from chenu_desktop.ui.background import BackgroundRunner
from chenu_desktop.ui.feed import EngineFeed
from chenu_desktop.ui.task_changes import plan_refresh
from chenu_desktop.ui.task_columns import COLUMN_SORTS, TaskColumn
from chenu_desktop.ui import task_model
from chenu_desktop.ui.task_model import TaskTableModel
from chenu_desktop.ui.task_rows import TaskRows

#: A fixed time for inserted records (November 2023, in POSIX seconds).
T0 = 1_700_000_000.0

_gates: dict[str, threading.Event] = {}


@background_task(name="tm_echo", queue=TaskQueue.DEFAULT)
def echo(value: int) -> int:
    return value


@background_task(name="tm_hold", queue=TaskQueue.HIGH)
def hold(key: str) -> str:
    _gates.setdefault(key, threading.Event()).wait(10)
    return key


class CountingService:
    """Wraps a task service and records the pages the model reads."""

    def __init__(self, service: Any) -> None:
        self._service = service
        self.pages: list[tuple[int, int]] = []
        self.counts = 0

    def list_tasks(self, **kwargs: Any) -> list[TaskRecord]:
        records = self._service.list_tasks(**kwargs)
        self.pages.append((kwargs.get("offset", 0), len(records)))
        return records

    def count_tasks(self, **kwargs: Any) -> int:
        self.counts += 1
        return self._service.count_tasks(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)


class RecordingRunner:
    """Wraps a background runner and records the names of the calls it runs."""

    def __init__(self, runner: BackgroundRunner) -> None:
        self._runner = runner
        self.calls: list[str] = []

    def run(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(function.__name__)
        return self._runner.run(function, *args, **kwargs)


def make_record(number: int, **fields: Any) -> TaskRecord:
    fields.setdefault("queue", TaskQueue.DEFAULT)
    fields.setdefault("status", TaskStatus.PENDING)
    created = fields.pop("created_at", T0 + number)
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


_made_models: list[TaskTableModel] = []


@pytest.fixture(autouse=True)
def _delete_models(runner: BackgroundRunner) -> Iterator[None]:
    """Delete each test's models on the GUI thread when the test ends.

    Left to garbage collection, a model may be freed on a pool thread,
    where Qt cannot stop its timers, and a later timer event then crashes.
    """
    yield
    while _made_models:
        shiboken6.delete(_made_models.pop())


def new_model(service: Any, runner: BackgroundRunner, **options: Any) -> TaskTableModel:
    model = TaskTableModel(service, runner, **options)
    _made_models.append(model)
    return model


def open_model(
    qtbot: Any, service: Any, runner: BackgroundRunner, **options: Any
) -> TaskTableModel:
    model = new_model(service, runner, **options)
    model.reload()
    qtbot.waitUntil(lambda: not model.is_loading, timeout=10_000)
    return model


def load_all_rows(qtbot: Any, model: TaskTableModel) -> None:
    for row in range(model.rowCount()):
        model.data(model.index(row, 0))
    qtbot.waitUntil(
        lambda: all(model.record_at(r) for r in range(model.rowCount())), timeout=10_000
    )


def status_at(model: TaskTableModel, row: int) -> TaskStatus | None:
    """Return the status of a row, or None while its page is being read."""
    record = model.record_at(row)
    return None if record is None else record.status


def ids(model: TaskTableModel) -> list[str]:
    return [model.record_at(row).task_id for row in range(model.rowCount())]


@pytest.fixture
def feed(ui_engine: Engine, runner: BackgroundRunner) -> Iterator[EngineFeed]:
    """A running feed, deleted on the GUI thread after the runner closes.

    The runner closes first, because the feed's pending results would
    otherwise arrive after it is gone.
    """
    feed = EngineFeed(ui_engine, runner, change_interval_ms=30)
    feed.start()
    yield feed
    feed.stop()
    runner.close()
    shiboken6.delete(feed)


def test_model_passes_model_tester(
    qtbot, qtmodeltester, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    insert(idle_engine, [make_record(n) for n in range(30)])
    model = open_model(qtbot, idle_engine.task_service, runner, page_size=10)
    load_all_rows(qtbot, model)

    qtmodeltester.check(model, force_py=True)

    assert model.rowCount() == 30
    assert model.columnCount() == len(TaskColumn)


def running_governance_record(number: int) -> TaskRecord:
    """Return a record that every custom role and the governance tint apply to."""
    return make_record(
        number,
        queue=TaskQueue.GOVERNANCE,
        status=TaskStatus.RUNNING,
        requires_governance=True,
        progress=0.25,
        progress_message="a quarter",
    )


def test_model_roles(qtbot, idle_engine: Engine, runner: BackgroundRunner) -> None:
    insert(idle_engine, [running_governance_record(1)])
    model = open_model(qtbot, idle_engine.task_service, runner)
    index = model.index(0, TaskColumn.PROGRESS)

    assert model.data(index, TaskTableModel.RecordRole).task_id == "task-000001"
    assert model.data(index, TaskTableModel.StatusRole) is TaskStatus.RUNNING
    assert model.data(index, TaskTableModel.QueueRole) is TaskQueue.GOVERNANCE
    assert model.data(index, TaskTableModel.GovernanceRole) is True
    assert model.data(index, TaskTableModel.ProgressRole) == 0.25
    assert model.data(index) == "25%"
    assert model.data(index, Qt.ItemDataRole.ToolTipRole) == "a quarter"
    assert model.data(index, Qt.ItemDataRole.BackgroundRole) is not None


def test_multi_data_matches_data(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    insert(idle_engine, [running_governance_record(n) for n in range(30)])
    model = open_model(qtbot, idle_engine.task_service, runner, page_size=10)
    roles = [
        Qt.ItemDataRole.DisplayRole,
        Qt.ItemDataRole.ToolTipRole,
        Qt.ItemDataRole.BackgroundRole,
        Qt.ItemDataRole.TextAlignmentRole,
        Qt.ItemDataRole.FontRole,
        TaskTableModel.RecordRole,
        TaskTableModel.StatusRole,
        TaskTableModel.ProgressRole,
    ]
    # Row 0 is loaded; row 25 lies on a page that has not been read yet.
    for row in (0, 25):
        for column in TaskColumn:
            index = model.index(row, column)
            for role in roles:
                role_data = QModelRoleData(role)
                index.multiData(QModelRoleDataSpan(role_data))
                expected = model.data(index, role)
                assert role_data.data() == expected, (row, column, role)


def test_table_paint_asks_once_per_cell(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    """The view's repaint gets each cell's roles in one call, not one per role."""
    calls = {"data": 0, "multiData": 0}

    class CountingModel(TaskTableModel):
        def data(self, index: Any, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
            calls["data"] += 1
            return super().data(index, role)

        def multiData(self, index: Any, roleDataSpan: Any) -> None:
            calls["multiData"] += 1
            super().multiData(index, roleDataSpan)

    insert(idle_engine, [make_record(n) for n in range(20)])
    model = CountingModel(idle_engine.task_service, runner)
    _made_models.append(model)
    model.reload()
    qtbot.waitUntil(lambda: not model.is_loading, timeout=10_000)
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(model)
    view.resize(800, 400)
    view.show()
    qtbot.waitExposed(view)

    calls.update(data=0, multiData=0)
    view.grab()  # paints the view, with its rows, into a pixmap

    assert calls["multiData"] >= model.columnCount()
    assert calls["data"] == 0


def test_open_100k_reads_one_page(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    total = 100_000
    insert(idle_engine, [make_record(n) for n in range(total)])
    service = CountingService(idle_engine.task_service)

    model = open_model(qtbot, service, runner)

    assert model.rowCount() == total
    assert service.pages == [(0, 200)]
    assert model.record_at(0).task_id == f"task-{total - 1:06d}"
    assert model.record_at(200) is None

    assert model.data(model.index(total - 1, 0)) == "…"
    qtbot.waitUntil(lambda: model.record_at(total - 1) is not None, timeout=10_000)
    assert model.record_at(total - 1).task_id == "task-000000"
    assert service.pages == [(0, 200), (99_800, 200)]
    assert model.record_at(99_799) is None


def test_newest_first_by_default(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    insert(idle_engine, [make_record(n) for n in (3, 1, 4, 0, 2)])
    model = open_model(qtbot, idle_engine.task_service, runner)
    load_all_rows(qtbot, model)

    assert not model.ascending
    assert ids(model) == [f"task-{n:06d}" for n in (4, 3, 2, 1, 0)]


def test_sort_by_created_ascending(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    insert(idle_engine, [make_record(n) for n in range(25)])
    model = open_model(qtbot, idle_engine.task_service, runner, page_size=10)

    model.sort(TaskColumn.CREATED, Qt.SortOrder.AscendingOrder)
    qtbot.waitUntil(
        lambda: not model.is_loading and model.rowCount() == 25, timeout=10_000
    )
    load_all_rows(qtbot, model)

    assert model.ascending
    assert ids(model) == [f"task-{n:06d}" for n in range(25)]

    model.sort(TaskColumn.PROGRESS, Qt.SortOrder.DescendingOrder)
    assert model.ascending
    assert model.sort_key is TaskSort.CREATED

    model.sort(TaskColumn.CREATED, Qt.SortOrder.DescendingOrder)
    qtbot.waitUntil(
        lambda: not model.is_loading and model.rowCount() == 25, timeout=10_000
    )
    load_all_rows(qtbot, model)
    assert ids(model) == [f"task-{n:06d}" for n in reversed(range(25))]


def test_header_says_which_column_sorts(
    idle_engine: Engine, runner: BackgroundRunner
) -> None:
    model = new_model(idle_engine.task_service, runner)
    horizontal = Qt.Orientation.Horizontal
    tooltip = Qt.ItemDataRole.ToolTipRole

    created = model.headerData(TaskColumn.CREATED, horizontal, tooltip)
    progress = model.headerData(TaskColumn.PROGRESS, horizontal, tooltip)
    initial = Qt.ItemDataRole.InitialSortOrderRole

    assert created == "Click to sort by created"
    assert progress == "Progress: this column does not sort"
    assert model.sortable_columns == set(COLUMN_SORTS)
    assert TaskColumn.WORKER not in model.sortable_columns
    assert model.headerData(TaskColumn.DURATION, horizontal, initial) == (
        Qt.SortOrder.DescendingOrder
    )
    assert model.headerData(TaskColumn.TASK, horizontal, initial) == (
        Qt.SortOrder.AscendingOrder
    )
    assert model.headerData(TaskColumn.ID, horizontal, initial) is None


def sortable_records() -> list[TaskRecord]:
    """Return records whose keys differ from their creation order, with ties."""
    records = []
    for n in range(24):
        started = None if n % 4 == 0 else T0 + 100 + (n * 7) % 5
        finished = None if started is None or n % 3 == 0 else started + n % 4
        status = TaskStatus.PENDING if started is None else TaskStatus.SUCCESS
        if started is not None and finished is None:
            status = TaskStatus.RUNNING
        record = make_record(
            n,
            status=status,
            queue=(TaskQueue.DEFAULT, TaskQueue.HIGH, TaskQueue.LOW)[n % 3],
            task_name=("b.task", "a.task", "c.task")[n * 5 % 3],
            attempts=(n * 3) % 4,
            started_at=started,
            finished_at=finished,
        )
        record.priority = (n * 7) % 3
        records.append(record)
    return records


def order_of(service: Any, key: TaskSort, ascending: bool) -> list[str]:
    listed = service.list_tasks(limit=100, sort=key, ascending=ascending)
    return [record.task_id for record in listed]


@pytest.mark.parametrize("column", list(COLUMN_SORTS))
def test_sort_by_each_sortable_column(
    qtbot, qtmodeltester, idle_engine: Engine, runner: BackgroundRunner, column
) -> None:
    insert(idle_engine, sortable_records())
    service = idle_engine.task_service
    model = open_model(qtbot, service, runner, page_size=10)
    key = COLUMN_SORTS[column]

    for order in (Qt.SortOrder.DescendingOrder, Qt.SortOrder.AscendingOrder):
        ascending = order == Qt.SortOrder.AscendingOrder
        model.sort(column, order)
        qtbot.waitUntil(lambda: not model.is_loading, timeout=10_000)
        load_all_rows(qtbot, model)

        assert model.sort_key is key
        assert model.ascending is ascending
        assert ids(model) == order_of(service, key, ascending)
    qtmodeltester.check(model, force_py=True)


def test_sorted_rows_move_on_change(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    insert(idle_engine, sortable_records())
    ledger = idle_engine.ledger
    service = idle_engine.task_service
    model = open_model(qtbot, service, runner, page_size=10)
    model.sort(TaskColumn.ATTEMPTS, Qt.SortOrder.DescendingOrder)
    qtbot.waitUntil(lambda: not model.is_loading, timeout=10_000)
    load_all_rows(qtbot, model)
    last = model.record_at(model.rowCount() - 1)
    selection = QItemSelectionModel(model)
    selection.select(
        model.index(model.rowCount() - 1, 0),
        QItemSelectionModel.SelectionFlag.ClearAndSelect
        | QItemSelectionModel.SelectionFlag.Rows,
    )
    since = ledger.last_seq()

    # The last row gets the most attempts, and a new task arrives.
    ledger.update(Update(last.task_id, fields={"attempts": 9}), now=T0 + 500)
    ledger.insert(make_record(90, attempts=2, created_at=T0 + 50))
    model.apply_changes(ledger.changes(since).changes)

    expected = order_of(service, TaskSort.ATTEMPTS, False)
    qtbot.waitUntil(
        lambda: (
            model.rowCount() == 25
            and model.record_at(0) is not None
            and model.record_at(0).task_id == last.task_id
        ),
        timeout=10_000,
    )
    load_all_rows(qtbot, model)
    assert ids(model) == expected
    assert expected[0] == last.task_id
    assert expected.index("task-000090") not in (0, 24)
    assert [index.row() for index in selection.selectedRows()] == [0]


def test_sorted_refresh_keeps_unmoved_rows(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    insert(idle_engine, sortable_records())
    ledger = idle_engine.ledger
    model = open_model(qtbot, idle_engine.task_service, runner)
    model.sort(TaskColumn.PRIORITY, Qt.SortOrder.AscendingOrder)
    qtbot.waitUntil(lambda: not model.is_loading, timeout=10_000)
    load_all_rows(qtbot, model)
    before = ids(model)
    layouts: list[int] = []
    model.layoutChanged.connect(lambda *args: layouts.append(1))
    since = ledger.last_seq()

    ledger.update(Update(before[5], fields={"progress": 0.5}), now=T0 + 500)
    model.apply_changes(ledger.changes(since).changes)

    qtbot.waitUntil(lambda: model.record_at(5).progress == 0.5, timeout=10_000)
    assert ids(model) == before
    assert layouts == []


def test_locate_in_other_order(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    insert(idle_engine, sortable_records())
    model = open_model(qtbot, idle_engine.task_service, runner, page_size=5)
    model.sort(TaskColumn.DURATION, Qt.SortOrder.AscendingOrder)
    qtbot.waitUntil(lambda: not model.is_loading, timeout=10_000)
    expected = order_of(idle_engine.task_service, TaskSort.DURATION, True)
    target = expected[17]

    with qtbot.waitSignal(model.task_located, timeout=10_000) as located:
        model.locate(target)

    assert located.args == [target, 17]
    assert model.record_at(17).task_id == target


@pytest.mark.parametrize(
    ("task_filter", "expected"),
    [
        (TaskFilter(status=TaskStatus.FAILURE), {"task-000001", "task-000004"}),
        (TaskFilter(queue=TaskQueue.HIGH), {"task-000002", "task-000004"}),
        (TaskFilter(text="task-00000"), {f"task-00000{n}" for n in range(6)}),
        (TaskFilter(text="mail"), {"task-000003"}),
        (TaskFilter(text="disk full"), {"task-000001"}),
        (TaskFilter(status=TaskStatus.FAILURE, queue=TaskQueue.HIGH), {"task-000004"}),
    ],
)
def test_filters(
    qtbot,
    idle_engine: Engine,
    runner: BackgroundRunner,
    task_filter: TaskFilter,
    expected: set[str],
) -> None:
    insert(
        idle_engine,
        [
            make_record(0),
            make_record(1, status=TaskStatus.FAILURE, error="OSError: disk full"),
            make_record(2, queue=TaskQueue.HIGH),
            make_record(3, task_name="mail.send"),
            make_record(4, queue=TaskQueue.HIGH, status=TaskStatus.FAILURE),
            make_record(5, status=TaskStatus.SUCCESS),
        ],
    )
    model = open_model(qtbot, idle_engine.task_service, runner)

    model.set_filter(task_filter)
    qtbot.waitUntil(lambda: not model.is_loading, timeout=10_000)
    load_all_rows(qtbot, model)

    assert model.task_filter == task_filter
    assert set(ids(model)) == expected


def test_live_runs_insert_rows_at_top(
    qtbot,
    qtmodeltester,
    ui_engine: Engine,
    runner: BackgroundRunner,
    feed: EngineFeed,
) -> None:
    service = ui_engine.task_service
    first = [service.submit("tm_echo", args=[n]) for n in range(3)]
    model = open_model(qtbot, service, runner)
    qtmodeltester.check(model, force_py=True)
    feed.changes_arrived.connect(model.apply_changes)
    qtbot.waitUntil(lambda: model.rowCount() == 3, timeout=10_000)
    selection = QItemSelectionModel(model)
    selected_id = model.record_at(1).task_id
    selection.select(
        model.index(1, 0),
        QItemSelectionModel.SelectionFlag.Select
        | QItemSelectionModel.SelectionFlag.Rows,
    )
    inserted: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda _, start, end: inserted.append((start, end)))
    resets: list[bool] = []
    model.modelReset.connect(lambda: resets.append(True))

    later = [service.submit("tm_echo", args=[n]) for n in range(3, 6)]

    qtbot.waitUntil(lambda: model.rowCount() == 6, timeout=10_000)
    qtbot.waitUntil(
        lambda: all(status_at(model, row) is TaskStatus.SUCCESS for row in range(6)),
        timeout=10_000,
    )
    assert set(ids(model)[:3]) == set(later)
    assert set(ids(model)[3:]) == set(first)
    assert all(start == 0 for start, _ in inserted)
    assert resets == []
    rows = [index.row() for index in selection.selectedRows()]
    assert rows == [model.row_of(selected_id)]
    assert model.row_of(selected_id) == 4


def test_live_update_changes_only_its_rows(
    qtbot, ui_engine: Engine, runner: BackgroundRunner, feed: EngineFeed
) -> None:
    service = ui_engine.task_service
    model = open_model(qtbot, service, runner)
    feed.changes_arrived.connect(model.apply_changes)
    for n in range(5):
        service.submit("tm_echo", args=[n])
    qtbot.waitUntil(
        lambda: (
            model.rowCount() == 5
            and all(status_at(model, row) is TaskStatus.SUCCESS for row in range(5))
        ),
        timeout=10_000,
    )
    held = service.submit("tm_hold", args=["changes-only-its-rows"])
    qtbot.waitUntil(
        lambda: model.rowCount() == 6 and status_at(model, 0) is TaskStatus.RUNNING,
        timeout=10_000,
    )
    changed: list[tuple[int, int]] = []
    model.dataChanged.connect(
        lambda top, bottom, roles=(): changed.append((top.row(), bottom.row()))
    )

    _gates.setdefault("changes-only-its-rows", threading.Event()).set()

    qtbot.waitUntil(lambda: status_at(model, 0) is TaskStatus.SUCCESS, timeout=10_000)
    assert model.record_at(0).task_id == held
    assert model.record_at(0).result == "changes-only-its-rows"
    assert set(changed) == {(0, 0)}


def test_status_filter_resyncs_keeping_selection(
    qtbot, qtmodeltester, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    service = idle_engine.task_service
    submitted = [service.submit("tm_echo", args=[n]) for n in range(6)]
    model = open_model(qtbot, service, runner)
    model.set_filter(TaskFilter(status=TaskStatus.PENDING))
    qtbot.waitUntil(
        lambda: not model.is_loading and model.rowCount() == 6, timeout=10_000
    )
    load_all_rows(qtbot, model)
    qtmodeltester.check(model, force_py=True)
    selection = QItemSelectionModel(model)
    keep = submitted[1]
    selection.select(
        model.index(model.row_of(keep), 0),
        QItemSelectionModel.SelectionFlag.Select
        | QItemSelectionModel.SelectionFlag.Rows,
    )
    since = idle_engine.ledger.last_seq()

    service.cancel(submitted[4])
    service.cancel(submitted[0])
    model.apply_changes(idle_engine.changes(since).changes)

    qtbot.waitUntil(lambda: model.rowCount() == 4, timeout=10_000)
    assert set(ids(model)) == set(submitted[1:4] + submitted[5:])
    assert [index.row() for index in selection.selectedRows()] == [model.row_of(keep)]
    assert model.record_at(selection.selectedRows()[0].row()).task_id == keep


def test_status_filter_rows_enter_at_top(
    qtbot, qtmodeltester, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    service = idle_engine.task_service
    submitted = [service.submit("tm_echo", args=[n]) for n in range(4)]
    model = open_model(qtbot, service, runner)
    model.set_filter(TaskFilter(status=TaskStatus.PENDING))
    qtbot.waitUntil(
        lambda: not model.is_loading and model.rowCount() == 4, timeout=10_000
    )
    qtmodeltester.check(model, force_py=True)
    selection = QItemSelectionModel(model)
    keep = submitted[2]
    selection.select(
        model.index(model.row_of(keep), 0),
        QItemSelectionModel.SelectionFlag.Select
        | QItemSelectionModel.SelectionFlag.Rows,
    )
    since = idle_engine.ledger.last_seq()

    added = [service.submit("tm_echo", args=[n]) for n in range(4, 6)]
    model.apply_changes(idle_engine.changes(since).changes)

    qtbot.waitUntil(lambda: model.rowCount() == 6, timeout=10_000)
    load_all_rows(qtbot, model)
    assert ids(model)[:2] == added[::-1]
    assert [index.row() for index in selection.selectedRows()] == [model.row_of(keep)]
    assert model.row_of(keep) == 3


def test_settled_status_filter_ignores_other_tasks(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    recording = RecordingRunner(runner)
    cancelled = idle_engine.task_service.submit("tm_echo", args=[1])
    idle_engine.task_service.cancel(cancelled)
    model = open_model(qtbot, idle_engine.task_service, recording)
    model.set_filter(TaskFilter(status=TaskStatus.CANCELLED))
    qtbot.waitUntil(
        lambda: not model.is_loading and model.rowCount() == 1, timeout=10_000
    )
    since = idle_engine.ledger.last_seq()
    started = len(recording.calls)

    idle_engine.task_service.submit("tm_echo", args=[2])
    model.apply_changes(idle_engine.changes(since).changes)

    # The model plans on the GUI thread, so a read would be started by now.
    assert recording.calls[started:] == []
    assert model.rowCount() == 1


def test_burst_waits_for_its_interval(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    """A burst of changes starts at most one update per interval; a few, at once."""
    insert(idle_engine, [make_record(n) for n in range(5)])
    recording = RecordingRunner(runner)
    model = open_model(
        qtbot, idle_engine.task_service, recording, burst_interval_ms=400
    )
    burst_size = task_model.BURST_CHANGES

    started = len(recording.calls)
    insert(idle_engine, [make_record(100)])
    first_start = time.monotonic()
    model.apply_changes([change("task-000100", TaskStatus.PENDING)] * burst_size)
    assert len(recording.calls) == started + 1
    qtbot.waitUntil(lambda: model.rowCount() == 6, timeout=10_000)

    started = len(recording.calls)
    insert(idle_engine, [make_record(101)])
    model.apply_changes([change("task-000101", TaskStatus.PENDING)] * burst_size)
    # The previous update started less than 400 ms ago, so this one waits.
    assert recording.calls[started:] == []
    qtbot.waitUntil(lambda: model.rowCount() == 7, timeout=10_000)
    assert time.monotonic() - first_start >= 0.4

    started = len(recording.calls)
    insert(idle_engine, [make_record(102)])
    model.apply_changes([change("task-000102", TaskStatus.PENDING)])
    # Too few changes to be a burst: the update starts at once.
    assert len(recording.calls) == started + 1
    qtbot.waitUntil(lambda: model.rowCount() == 8, timeout=10_000)


def test_reload_keeps_rows_on_their_ids(
    qtbot, qtmodeltester, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    finished = {"status": TaskStatus.SUCCESS, "finished_at": T0}
    insert(
        idle_engine,
        [make_record(n, **finished) for n in range(2)]
        + [make_record(n) for n in range(2, 10)],
    )
    model = open_model(qtbot, idle_engine.task_service, runner)
    qtmodeltester.check(model, force_py=True)
    selection = QItemSelectionModel(model)
    selection.setCurrentIndex(
        model.index(3, 0), QItemSelectionModel.SelectionFlag.ClearAndSelect
    )
    current_id = model.record_at(3).task_id
    insert(idle_engine, [make_record(n) for n in range(100, 102)])
    ledger: Any = idle_engine.ledger
    ledger.delete_finished_before(T0 + 10_000)

    with qtbot.waitSignal(model.layoutChanged, timeout=10_000):
        model.reload()

    assert model.rowCount() == 10
    assert selection.currentIndex().row() == 5
    assert model.record_at(5).task_id == current_id


def test_locate_far_row(qtbot, idle_engine: Engine, runner: BackgroundRunner) -> None:
    insert(idle_engine, [make_record(n) for n in range(5000)])
    model = open_model(qtbot, idle_engine.task_service, runner)

    with qtbot.waitSignal(model.task_located, timeout=10_000) as located:
        model.locate("task-000123")

    row = 5000 - 1 - 123
    assert located.args == ["task-000123", row]
    assert model.record_at(row).task_id == "task-000123"


def test_locate_unknown_id(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    model = open_model(qtbot, idle_engine.task_service, runner)

    with qtbot.waitSignal(model.locate_failed, timeout=10_000) as failed:
        model.locate("no-such-task")

    assert failed.args[0] == "no-such-task"
    assert "not found" in failed.args[1]


def test_running_durations_tick(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    started = time.time() - 5
    insert(
        idle_engine,
        [
            make_record(1, status=TaskStatus.RUNNING, started_at=started),
            make_record(2, status=TaskStatus.SUCCESS),
        ],
    )
    model = open_model(qtbot, idle_engine.task_service, runner)

    with qtbot.waitSignal(model.dataChanged, timeout=10_000) as tick:
        pass

    top, bottom = tick.args[0], tick.args[1]
    assert (top.row(), top.column()) == (1, TaskColumn.DURATION)
    assert (bottom.row(), bottom.column()) == (1, TaskColumn.DURATION)
    assert model.data(top).endswith(" s")


def change(task_id: str, status: TaskStatus, **fields: Any) -> Change:
    fields.setdefault("queue", TaskQueue.DEFAULT)
    return Change(seq=1, task_id=task_id, status=status, at=T0, **fields)


@pytest.mark.parametrize(
    ("task_filter", "changes", "expected"),
    [
        (
            TaskFilter(),
            [change("task-000001", TaskStatus.RUNNING)],
            (["task-000001"], False),
        ),
        (TaskFilter(), [change("other", TaskStatus.PENDING)], ([], True)),
        (TaskFilter(), [change("task-000001", TaskStatus.SUCCESS, deleted=True)], None),
        (TaskFilter(text="rep"), [change("other", TaskStatus.PENDING)], None),
        (
            TaskFilter(queue=TaskQueue.HIGH),
            [change("other", TaskStatus.PENDING, queue=TaskQueue.LOW)],
            ([], False),
        ),
        (
            TaskFilter(status=TaskStatus.PENDING),
            [change("task-000001", TaskStatus.PENDING)],
            (["task-000001"], False),
        ),
        (
            TaskFilter(status=TaskStatus.PENDING),
            [change("task-000001", TaskStatus.RUNNING)],
            None,
        ),
        (
            TaskFilter(status=TaskStatus.PENDING),
            [change("other", TaskStatus.RUNNING)],
            None,
        ),
        (
            TaskFilter(status=TaskStatus.FAILURE),
            [change("other", TaskStatus.RUNNING)],
            ([], False),
        ),
        (
            TaskFilter(status=TaskStatus.LOST),
            [change("other", TaskStatus.RETRYING)],
            None,
        ),
    ],
)
def test_plan_refresh_cases(
    task_filter: TaskFilter, changes: list[Change], expected: Any
) -> None:
    rows = TaskRows(page_size=10)
    rows.reset(3)
    rows.store_page(0, [make_record(n) for n in (2, 1, 0)])

    assert plan_refresh(changes, task_filter, rows) == expected
