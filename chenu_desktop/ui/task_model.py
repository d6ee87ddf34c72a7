"""The task table's model: the ledger's tasks, read one page at a time."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import shiboken6
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QBrush

from ..models import Change, TaskFilter, TaskRecord, TaskSort, TaskStatus
from .style import GOVERNANCE_TINT
from .task_changes import plan_refresh, row_runs
from .task_columns import (
    COLUMN_SORTS,
    COLUMN_TITLES,
    NUMERIC_COLUMNS,
    TaskColumn,
    cell_text,
    cell_tooltip,
    header_tooltip,
)
from .task_reads import (
    CHANGING_SORTS,
    FirstPage,
    ListOrder,
    Location,
    Refresh,
    Resync,
    TaskListReader,
    sort_value,
)
from .task_rows import TaskRows

if TYPE_CHECKING:
    from ..services import TaskService
    from .background import BackgroundRunner

logger = logging.getLogger("chenu.ui")

AnyIndex = QModelIndex | QPersistentModelIndex

#: Rows read per storage call.
PAGE_SIZE = 200
#: Pages a resync reads again; the others are dropped and read when shown.
MAX_RESYNC_PAGES = 10
#: Delay before a page whose read failed is tried again.
RETRY_DELAY_MS = 3000
#: Interval at which the durations of running tasks are redrawn.
DURATION_TICK_MS = 1000
#: Waiting changes that make a burst. Below it, an update starts as soon as
#: its changes arrive, and during a burst at most one update starts per
#: `BURST_INTERVAL_MS`. Each task makes about three changes.
BURST_CHANGES = 100
#: Minimum time between the starts of two updates during a burst, in ms. Each
#: update repaints the visible rows. At about a thousand tasks/s, with an update
#: every 250 ms, the window's repaints and updates held the GIL for about 40%
#: of the time its process held it, and each repaint took 17 to 33 ms.
BURST_INTERVAL_MS = 1000
_PLACEHOLDER = "…"
_RIGHT_ALIGNED = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
#: Keys whose first click sorts largest first: times, durations and counts.
_DESCENDING_FIRST = frozenset(
    {TaskSort.CREATED, TaskSort.STARTED, TaskSort.DURATION, TaskSort.ATTEMPTS}
)


class TaskTableModel(QAbstractTableModel):
    """The tasks matching a filter in one order, read from the ledger on demand.

    `rowCount` is the number of matching tasks. A row's record is read with
    its page (`page_size` rows) when `data` is first called for it; until then the
    row shows a placeholder and `RecordRole` is None. Every storage call
    runs through the `BackgroundRunner`, so the GUI thread never waits on
    storage.

    The order is newest first unless `sort` or `set_order` chose another
    key of the ledger. Only the columns in `sortable_columns` sort.

    Live updates (`apply_changes`) re-read the loaded rows that changed and
    insert new tasks at the top of a newest-first view (at the end of an
    oldest-first one). Changes that can move rows in or out of the middle
    (deletions, a status or text filter, or a changed or new row in an
    order other than creation time) make the model read the count and its
    loaded pages again and apply them as one layout change, which keeps
    persistent indexes, and so the view's selection, on their task ids.

    Give the model a parent, or delete it on the GUI thread: freed by garbage
    collection on another thread, it could not stop its timers there.

    Signals:
        loading_changed(bool): the count of a new filter or order is being
            read (True) or has arrived (False).
        load_failed(str): a storage call failed; the payload is the message.
        task_located(str, int): `locate` found the task id at this row.
        locate_failed(str, str): `locate` did not find the task id; the
            second payload is the message to show.
    """

    #: Custom roles. StatusRole and QueueRole hold `TaskStatus` and `TaskQueue`
    #: members, which are str enums: read through Qt (``index.data``), they
    #: arrive as their string values, so compare with == or convert them.
    RecordRole = Qt.ItemDataRole.UserRole + 1
    StatusRole = Qt.ItemDataRole.UserRole + 2
    QueueRole = Qt.ItemDataRole.UserRole + 3
    GovernanceRole = Qt.ItemDataRole.UserRole + 4
    ProgressRole = Qt.ItemDataRole.UserRole + 5
    TaskIdRole = Qt.ItemDataRole.UserRole + 6

    loading_changed = Signal(bool)
    load_failed = Signal(str)
    task_located = Signal(str, int)
    locate_failed = Signal(str, str)

    def __init__(
        self,
        task_service: TaskService,
        runner: BackgroundRunner,
        page_size: int = PAGE_SIZE,
        parent: QObject | None = None,
        burst_interval_ms: int = BURST_INTERVAL_MS,
    ) -> None:
        super().__init__(parent)
        self._reader = TaskListReader(task_service, page_size)
        self._runner = runner
        self._page_size = page_size
        self._filter = TaskFilter()
        self._order = ListOrder()
        self._sortable_columns = frozenset(
            column
            for column, key in COLUMN_SORTS.items()
            if key in task_service.sort_keys
        )
        self._rows = TaskRows(page_size)
        #: Bumped whenever rows move, so that reads started before are dropped.
        self._version = 0
        self._loading = False
        self._loaded = False
        self._pages_in_flight: set[int] = set()
        self._failed_pages: set[int] = set()
        self._pending_changes: list[Change] = []
        self._resync_wanted = False
        self._updating = False
        #: `time.monotonic()` at the start of the last update round.
        self._last_update_start = -math.inf
        self._burst_interval = burst_interval_ms / 1000
        self._burst_timer = QTimer(self)
        self._burst_timer.setSingleShot(True)
        self._burst_timer.timeout.connect(self._start_next_update)
        self._pending_locates: list[str] = []
        self._retry_timer = QTimer(self)
        self._retry_timer.setSingleShot(True)
        self._retry_timer.setInterval(RETRY_DELAY_MS)
        self._retry_timer.timeout.connect(self._on_retry_timer_timeout)
        self._duration_timer = QTimer(self)
        self._duration_timer.setInterval(DURATION_TICK_MS)
        self._duration_timer.timeout.connect(self._on_duration_timer_timeout)
        self._duration_timer.start()

    # --- Qt model interface --------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(TaskColumn)

    # No flags() here: Qt's own gives every cell ItemIsEnabled and
    # ItemIsSelectable without a call into Python per cell and paint.

    def headerData(
        self,
        section: int,
        orientation: Qt.Orientation,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return str(section + 1)
            return None
        if not 0 <= section < len(TaskColumn):
            return None
        column = TaskColumn(section)
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMN_TITLES[column]
        sortable = column in self._sortable_columns
        if role == Qt.ItemDataRole.ToolTipRole:
            return header_tooltip(column, sortable)
        if role == Qt.ItemDataRole.InitialSortOrderRole and sortable:
            if COLUMN_SORTS[column] in _DESCENDING_FIRST:
                return Qt.SortOrder.DescendingOrder
            return Qt.SortOrder.AscendingOrder
        if role == Qt.ItemDataRole.TextAlignmentRole and column in NUMERIC_COLUMNS:
            return _RIGHT_ALIGNED
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not self._is_row(index):
            return None
        record = self._cell_record(index)
        if record is None:
            if role == Qt.ItemDataRole.DisplayRole and index.column() == 0:
                return _PLACEHOLDER
            return None
        return self._record_data(record, TaskColumn(index.column()), role)

    def multiData(self, index: AnyIndex, roleDataSpan: Any) -> None:
        """Fill every role the view requests of a cell in one call.

        Qt's item delegates request about seven roles per cell and paint.
        Each call into Python must take the GIL, which the window's workers
        hold much of the time under load, so one call per cell instead of one
        per role shortens the task table's repaint (`chenu-desktop bench
        --sections window`).
        """
        if not self._is_row(index):
            return
        record = self._cell_record(index)
        if record is None:
            if index.column() == 0:
                for role_data in roleDataSpan:
                    if role_data.role() == Qt.ItemDataRole.DisplayRole:
                        role_data.setData(_PLACEHOLDER)
            return
        column = TaskColumn(index.column())
        for role_data in roleDataSpan:
            role_data.setData(self._record_data(record, column, role_data.role()))

    def _is_row(self, index: AnyIndex) -> bool:
        return index.isValid() and 0 <= index.row() < len(self._rows)

    def _cell_record(self, index: AnyIndex) -> TaskRecord | None:
        """Return the record of a cell's row, or None and request its page."""
        page_number = self._rows.page_of(index.row())
        record = self._rows.record(index.row())
        if record is None:
            self._request_page(page_number)
            return None
        self._rows.touch(page_number)
        return record

    def sort(
        self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder
    ) -> None:
        """Sort by a column in `sortable_columns`; the others are ignored."""
        if column in self._sortable_columns:
            key = COLUMN_SORTS[TaskColumn(column)]
            self.set_order(key, order == Qt.SortOrder.AscendingOrder)

    # --- public API ----------------------------------------------------------

    @property
    def task_filter(self) -> TaskFilter:
        return self._filter

    @property
    def ascending(self) -> bool:
        """Whether the smallest key comes first (the default is newest first)."""
        return self._order.ascending

    @property
    def sort_key(self) -> TaskSort:
        """The key the rows are ordered by."""
        return self._order.key

    @property
    def sortable_columns(self) -> frozenset[TaskColumn]:
        """The columns whose key the ledger can sort by."""
        return self._sortable_columns

    @property
    def page_size(self) -> int:
        return self._page_size

    @property
    def is_loading(self) -> bool:
        return self._loading

    def set_filter(self, task_filter: TaskFilter) -> None:
        """Show the tasks matching `task_filter`, from the top."""
        if task_filter == self._filter and (self._loaded or self._loading):
            return
        self._filter = task_filter
        self._load()

    def set_ascending(self, ascending: bool) -> None:
        """Keep the sort key, smallest first when `ascending`."""
        self.set_order(self._order.key, ascending)

    def set_order(self, key: TaskSort, ascending: bool) -> None:
        """Order the rows by `key`, smallest first when `ascending`, from the top."""
        order = ListOrder(key, ascending)
        if order == self._order and (self._loaded or self._loading):
            return
        self._order = order
        self._load()

    def reload(self) -> None:
        """Read the count and loaded pages again, keeping rows on their task ids.

        Before a first load has succeeded, start the load again instead.
        """
        self._failed_pages.clear()
        if not self._loaded:
            if not self._loading:
                self._load()
            return
        self._request_resync()

    def record_at(self, row: int) -> TaskRecord | None:
        """Return the record of `row`, or None if it has not arrived yet."""
        return self._rows.record(row)

    def row_of(self, task_id: str) -> int | None:
        """Return the row of a loaded task, or None if it is not loaded."""
        return self._rows.row_of(task_id)

    def apply_changes(self, changes: Sequence[Change]) -> None:
        """Bring the rows up to date with entries of the change feed.

        Changes that arrive while an update is being read wait for it, so a
        burst costs one read round, not one per change.
        """
        if not changes:
            return
        self._pending_changes.extend(changes)
        if self._loaded and not self._loading:
            self._start_next_update()

    def locate(self, task_id: str) -> None:
        """Find the row of a task in the current filter and load its page.

        Emits `task_located` with the row, or `locate_failed` with a message
        when the task is unknown or does not match the filter.
        """
        if self._loading or not self._loaded:
            self._pending_locates.append(task_id)
            if not self._loading:
                self._load()
            return
        self._start_locate(task_id, attempts_left=2)

    # --- cells ---------------------------------------------------------------

    def _record_data(self, record: TaskRecord, column: TaskColumn, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return cell_text(record, column)
        if role == self.RecordRole:
            return record
        if role == self.TaskIdRole:
            return record.task_id
        if role == self.StatusRole:
            return record.status
        if role == self.QueueRole:
            return record.queue
        if role == self.GovernanceRole:
            return record.requires_governance
        if role == self.ProgressRole:
            return record.progress
        if role == Qt.ItemDataRole.ToolTipRole:
            return cell_tooltip(record, column)
        if role == Qt.ItemDataRole.BackgroundRole and record.requires_governance:
            return QBrush(GOVERNANCE_TINT)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in NUMERIC_COLUMNS:
            return _RIGHT_ALIGNED
        return None

    # --- loading -------------------------------------------------------------

    def _run(
        self,
        function: Callable[..., Any],
        *args: Any,
        on_result: Callable[[Any], None],
        on_error: Callable[[str], None],
    ) -> bool:
        """Run `function` in the background; return False if the runner is closed.

        The callbacks are dropped once this model is deleted, because the
        runner may outlive it.
        """
        future = self._runner.run(
            function,
            *args,
            on_result=while_alive(self, on_result),
            on_error=while_alive(self, on_error),
        )
        return future is not None

    def _set_loading(self, loading: bool) -> None:
        if loading != self._loading:
            self._loading = loading
            self.loading_changed.emit(loading)

    def _load(self) -> None:
        """Drop every row, then read the count and the first page of the filter."""
        self._version += 1
        self.beginResetModel()
        self._rows.reset()
        self._pages_in_flight.clear()
        self._failed_pages.clear()
        self._resync_wanted = False
        # The load reads every change made so far.
        self._pending_changes.clear()
        self._loaded = False
        self.endResetModel()
        self._set_loading(True)
        version = self._version
        started = self._run(
            self._reader.first_page,
            self._filter,
            self._order,
            on_result=lambda first: self._on_first_page_read(version, first),
            on_error=lambda message: self._on_first_page_failed(version, message),
        )
        if not started:
            self._set_loading(False)

    def _on_first_page_read(self, version: int, first: FirstPage) -> None:
        if version != self._version:
            return
        # A task stored between the two reads can make the page longer than
        # the count. Its change arrives later and resyncs.
        count = max(first.count, len(first.records))
        if count:
            self.beginInsertRows(QModelIndex(), 0, count - 1)
            self._rows.reset(count)
            self._rows.store_page(0, first.records)
            self.endInsertRows()
        self._loaded = True
        self._set_loading(False)
        locates, self._pending_locates = self._pending_locates, []
        for task_id in locates:
            self._start_locate(task_id, attempts_left=2)
        self._start_next_update()

    def _on_first_page_failed(self, version: int, message: str) -> None:
        if version != self._version:
            return
        self._set_loading(False)
        logger.warning("reading the task list failed: %s", message)
        self.load_failed.emit(message)
        locates, self._pending_locates = self._pending_locates, []
        for task_id in locates:
            self.locate_failed.emit(task_id, message)

    def _request_page(self, page_number: int) -> None:
        if self._loading or page_number in self._pages_in_flight:
            return
        if page_number in self._failed_pages:
            return
        self._pages_in_flight.add(page_number)
        version = self._version
        started = self._run(
            self._reader.page,
            self._filter,
            self._order,
            page_number,
            on_result=lambda records: self._on_page_read(version, page_number, records),
            on_error=lambda message: self._on_page_failed(
                version, page_number, message
            ),
        )
        if not started:
            self._pages_in_flight.discard(page_number)

    def _on_page_read(
        self, version: int, page_number: int, records: list[TaskRecord]
    ) -> None:
        self._pages_in_flight.discard(page_number)
        first, last = self._rows.page_rows(page_number)
        if first > last:
            return
        if version != self._version:
            # Rows moved while the page was read: make the view ask again.
            self._emit_rows_changed(first, last)
            return
        consistent = self._store_page(page_number, records)
        if not consistent or len(records) < last - first + 1:
            # Tasks were stored or deleted since the count was read.
            self._request_resync()

    def _on_page_failed(self, version: int, page_number: int, message: str) -> None:
        self._pages_in_flight.discard(page_number)
        if version != self._version:
            return
        logger.warning(
            "reading page %d of the task list failed: %s", page_number, message
        )
        self._failed_pages.add(page_number)
        self._retry_timer.start()
        self.load_failed.emit(message)

    def _on_retry_timer_timeout(self) -> None:
        failed, self._failed_pages = self._failed_pages, set()
        for page_number in failed:
            first, last = self._rows.page_rows(page_number)
            if first <= last:
                self._emit_rows_changed(first, last)

    def _on_duration_timer_timeout(self) -> None:
        """Redraw the durations of running tasks, which grow while they run."""
        rows = self._rows.rows_in_status(TaskStatus.RUNNING)
        for first, last in row_runs(rows):
            self.dataChanged.emit(
                self.index(first, TaskColumn.DURATION),
                self.index(last, TaskColumn.DURATION),
                [Qt.ItemDataRole.DisplayRole],
            )

    # --- row bookkeeping -----------------------------------------------------

    def _store_page(self, page_number: int, records: list[TaskRecord]) -> bool:
        """Store a page that arrived and tell the views; see `TaskRows.store`."""
        consistent = self._rows.store_page(page_number, records)
        first, last = self._rows.page_rows(page_number)
        if first <= last:
            self._emit_rows_changed(first, last)
        for first, last in self._rows.evict():
            self._emit_rows_changed(first, last)
        return consistent

    def _emit_rows_changed(self, first: int, last: int) -> None:
        self.dataChanged.emit(
            self.index(first, 0), self.index(last, len(TaskColumn) - 1)
        )

    # --- live updates --------------------------------------------------------

    def _request_resync(self) -> None:
        self._resync_wanted = True
        if self._loaded and not self._loading:
            self._start_next_update()

    def _start_next_update(self) -> None:
        """Start the next update round unless one is being read."""
        if self._updating:
            return
        if self._resync_wanted:
            self._pending_changes.clear()
            self._start_resync()
            return
        if not self._pending_changes:
            return
        if len(self._pending_changes) >= BURST_CHANGES and self._burst_wait():
            return
        self._last_update_start = time.monotonic()
        changes, self._pending_changes = self._pending_changes, []
        plan = plan_refresh(changes, self._filter, self._rows)
        if plan is None:
            self._start_resync()
            return
        task_ids, may_add = plan
        if may_add and self._order.key in CHANGING_SORTS:
            # A task that is not loaded may have moved into the loaded rows.
            self._start_resync()
            return
        if task_ids or may_add:
            self._start_refresh(task_ids, may_add)

    def _burst_wait(self) -> bool:
        """Return True, with the burst timer started, if a burst update must wait."""
        wait = self._last_update_start + self._burst_interval - time.monotonic()
        if wait <= 0:
            return False
        if not self._burst_timer.isActive():
            self._burst_timer.start(max(1, math.ceil(wait * 1000)))
        return True

    def _start_refresh(self, task_ids: list[str], may_add: bool) -> None:
        self._updating = True
        version = self._version
        started = self._run(
            self._reader.refresh,
            self._filter,
            self._order,
            task_ids,
            len(self._rows) if may_add else None,
            on_result=lambda refresh: self._on_refresh_read(version, refresh),
            on_error=lambda message: self._on_update_failed(version, message),
        )
        if not started:
            self._updating = False

    def _on_refresh_read(self, version: int, refresh: Refresh) -> None:
        self._updating = False
        if version != self._version:
            self._start_next_update()
            return
        records = [r for r in refresh.records.values() if r is not None]
        if len(records) < len(refresh.records) or self._sort_values_changed(records):
            self._request_resync()
            return
        for first, last in row_runs(self._rows.replace(records)):
            self._emit_rows_changed(first, last)
        count = refresh.count
        if (
            count is not None
            and count != len(self._rows)
            and not self._place_new_rows(count, refresh.newest)
        ):
            self._request_resync()
            return
        self._start_next_update()

    def _place_new_rows(self, count: int, newest: list[TaskRecord] | None) -> bool:
        """Insert the rows of new tasks; return False if they cannot be placed.

        NOTE: a page read after new tasks were stored but before their
        changes arrive sits one row per new task too high. A page next to a
        loaded row repeats an id, which makes the model resync. A far page
        with no loaded neighbour keeps the offset until the next resync.
        """
        old_count = len(self._rows)
        added = count - old_count
        if added <= 0 or self._order.key is not TaskSort.CREATED:
            # In another order, a new task may belong anywhere.
            return False
        if self._order.ascending:
            # New tasks are the newest, so they go at the end.
            self.beginInsertRows(QModelIndex(), old_count, count - 1)
            self._rows.extend(added)
            self.endInsertRows()
            return True
        if newest is None:
            return False
        if old_count:
            top = self._rows.record(0)
            if top is None or len(newest) != added + 1:
                return False
            if newest[added].task_id != top.task_id:
                return False
        elif len(newest) != added:
            return False
        self._insert_at_top(newest[:added])
        return True

    def _sort_values_changed(self, records: list[TaskRecord]) -> bool:
        """Return whether a re-read record has a new sort key, so its row moves."""
        key = self._order.key
        for record in records:
            row = self._rows.row_of(record.task_id)
            loaded = None if row is None else self._rows.record(row)
            if loaded is not None and sort_value(loaded, key) != sort_value(
                record, key
            ):
                return True
        return False

    def _insert_at_top(self, records: list[TaskRecord]) -> None:
        self.beginInsertRows(QModelIndex(), 0, len(records) - 1)
        self._rows.insert_at_top(records)
        self._pages_in_flight.clear()
        self._failed_pages.clear()
        self._version += 1
        self.endInsertRows()

    def _start_resync(self) -> None:
        self._resync_wanted = False
        self._updating = True
        version = self._version
        started = self._run(
            self._reader.resync,
            self._filter,
            self._order,
            self._rows.recent_pages(MAX_RESYNC_PAGES),
            on_result=lambda resync: self._on_resync_read(version, resync),
            on_error=lambda message: self._on_update_failed(version, message),
        )
        if not started:
            self._updating = False

    def _on_resync_read(self, version: int, resync: Resync) -> None:
        self._updating = False
        if version == self._version:
            self._apply_resync(resync)
        self._start_next_update()

    def _apply_resync(self, resync: Resync) -> None:
        """Show a fresh count and pages in one layout change, rows kept on their ids."""
        count = resync.count
        old_count = len(self._rows)
        if count > old_count:
            self.beginInsertRows(QModelIndex(), old_count, count - 1)
            self._rows.extend(count - old_count)
            self.endInsertRows()

        self.layoutAboutToBeChanged.emit()
        old_indexes = self.persistentIndexList()
        old_records = [self._rows.record(index.row()) for index in old_indexes]
        self._rows.replace_all(count, resync.pages)
        self._rows.pad(old_count)
        new_indexes = [
            self._moved_index(index, record, count)
            for index, record in zip(old_indexes, old_records, strict=True)
        ]
        self.changePersistentIndexList(old_indexes, new_indexes)
        self._pages_in_flight.clear()
        self._failed_pages.clear()
        self._version += 1
        self.layoutChanged.emit()

        if count < old_count:
            self.beginRemoveRows(QModelIndex(), count, old_count - 1)
            self._rows.truncate(count)
            self.endRemoveRows()

    def _moved_index(
        self, index: QModelIndex, record: TaskRecord | None, count: int
    ) -> QModelIndex:
        if record is None:
            # A row that was not loaded has no id to follow: it keeps its number.
            return index if index.row() < count else QModelIndex()
        row = self._rows.row_of(record.task_id)
        if row is None:
            return QModelIndex()
        return self.index(row, index.column())

    def _on_update_failed(self, version: int, message: str) -> None:
        self._updating = False
        logger.warning("updating the task list failed: %s", message)
        self.load_failed.emit(message)
        if version == self._version:
            # The next change, or reload(), tries again with a resync.
            self._resync_wanted = True

    # --- locating a task -----------------------------------------------------

    def _start_locate(self, task_id: str, attempts_left: int) -> None:
        version = self._version
        started = self._run(
            self._reader.locate,
            self._filter,
            self._order,
            task_id,
            on_result=lambda location: self._on_location_read(
                version, task_id, attempts_left, location
            ),
            on_error=lambda message: self.locate_failed.emit(task_id, message),
        )
        if not started:
            self.locate_failed.emit(task_id, "the task list is closed")

    def _on_location_read(
        self,
        version: int,
        task_id: str,
        attempts_left: int,
        location: Location | None,
    ) -> None:
        not_listed = f"task {task_id} does not match the current filters"
        if location is None:
            self.locate_failed.emit(task_id, not_listed)
            return
        first, _ = self._rows.page_rows(location.page_number)
        if version != self._version or first >= len(self._rows):
            # Rows moved while the position was read: read it again.
            if attempts_left > 0:
                self._start_locate(task_id, attempts_left - 1)
            else:
                self.locate_failed.emit(
                    task_id, f"task {task_id} kept moving while it was located"
                )
            return
        consistent = self._store_page(location.page_number, location.page)
        row = self._rows.row_of(task_id)
        if row is None:
            self.locate_failed.emit(task_id, not_listed)
        else:
            self.task_located.emit(task_id, row)
        if not consistent:
            self._request_resync()


def while_alive(
    owner: QObject, callback: Callable[[Any], None]
) -> Callable[[Any], None]:
    """Wrap `callback` so that it does nothing once `owner` has been deleted."""

    def call(value: Any) -> None:
        if shiboken6.isValid(owner):
            callback(value)

    return call
