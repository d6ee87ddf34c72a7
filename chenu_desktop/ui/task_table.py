"""The task table: a filter bar over a paged view of the ledger's tasks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QByteArray,
    QItemSelection,
    QModelIndex,
    QPersistentModelIndex,
    QSignalBlocker,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..errors import TaskNotFoundError
from ..models import Change, TaskFilter, TaskQueue, TaskRecord, TaskStatus
from .progress_delegate import ProgressDelegate
from .status_badge_delegate import StatusBadgeDelegate
from .task_columns import COLUMN_SORTS, DEFAULT_SORT_COLUMN, TaskColumn, column_of_sort
from .task_filter_bar import TaskFilterBar
from .task_model import TaskTableModel, while_alive
from .task_name_delegate import TaskNameDelegate

if TYPE_CHECKING:
    from ..engine import Engine
    from .background import BackgroundRunner

logger = logging.getLogger("chenu.ui")

#: Default column widths in pixels; the last column stretches.
_COLUMN_WIDTHS = {
    TaskColumn.ID: 150,
    TaskColumn.TASK: 180,
    TaskColumn.QUEUE: 90,
    TaskColumn.PRIORITY: 60,
    TaskColumn.STATUS: 190,
    TaskColumn.ATTEMPTS: 70,
    TaskColumn.CREATED: 145,
    TaskColumn.STARTED: 145,
    TaskColumn.DURATION: 90,
    TaskColumn.PROGRESS: 110,
    TaskColumn.WORKER: 200,
    TaskColumn.ARGUMENTS: 260,
}
#: Delay that gathers a burst of row updates into one `selection_changed`.
_SELECTION_DELAY_MS = 50


def text_may_match(record: TaskRecord, text: str) -> bool:
    """Return whether a search for `text` can list `record`, per `TaskFilter`."""
    folded = text.casefold()
    if record.task_id.startswith(text) or folded in record.task_name.casefold():
        return True
    return len(text) >= 3 and folded in (record.error or "").casefold()


def _read_record(engine: Engine, task_id: str) -> TaskRecord | None:
    """Return the task's record, or None if no task has the id (pool thread)."""
    try:
        return engine.task_service.get_status(task_id)
    except TaskNotFoundError:
        return None


class TaskTableWidget(QWidget):
    """The filter bar and the table of tasks, with the selection the window acts on.

    Signals:
        selection_changed(list): the selected `TaskRecord`s in row order.
            Also emitted when a selected record is re-read with new values.
            Rows whose page has not arrived yet are left out.
        task_activated(str): a row was double-clicked or Enter was pressed
            on it; the payload is its task id.
        message_requested(str): a message for the operator, such as a
            failed read or an unknown task id.
        filter_changed(object): the table now shows this `TaskFilter`.
    """

    selection_changed = Signal(list)
    task_activated = Signal(str)
    message_requested = Signal(str)
    filter_changed = Signal(object)

    def __init__(
        self,
        engine: Engine,
        runner: BackgroundRunner,
        parent: QWidget | None = None,
        page_size: int | None = None,
    ) -> None:
        super().__init__(parent)
        self._engine = engine
        self._runner = runner
        options = {} if page_size is None else {"page_size": page_size}
        self.model = TaskTableModel(engine.task_service, runner, parent=self, **options)
        self.filter_bar = TaskFilterBar(self)
        self.count_label = QLabel(self)
        self.count_label.setObjectName("task_count_label")
        self.count_label.setAccessibleName("Number of tasks shown")
        self.view = self._make_view()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.filter_bar)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.count_label)

        #: The id `select_task` is going to, and whether filters were cleared for it.
        self._goto_id: str | None = None
        self._goto_cleared_all = False
        #: The id to select again once a new filter or order has loaded.
        self._reselect_id: str | None = None
        self._emitted_selection: list[TaskRecord] = []
        self._top_anchor: QPersistentModelIndex | None = None
        self._selection_timer = QTimer(self)
        self._selection_timer.setSingleShot(True)
        self._selection_timer.setInterval(_SELECTION_DELAY_MS)
        self._selection_timer.timeout.connect(self._emit_selection_if_changed)
        self._connect()
        self._update_count_label()
        self.model.reload()

    def _make_view(self) -> QTableView:
        view = QTableView(self)
        view.setObjectName("task_table")
        view.setAccessibleName("Tasks")
        view.setModel(self.model)
        view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        view.setWordWrap(False)
        view.setTabKeyNavigation(False)
        view.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)

        rows = view.verticalHeader()
        rows.hide()
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        rows.setDefaultSectionSize(view.fontMetrics().height() + 10)

        header = view.horizontalHeader()
        header.setSectionsClickable(True)
        header.setSectionsMovable(True)
        header.setSortIndicatorShown(True)
        header.setSortIndicator(DEFAULT_SORT_COLUMN, Qt.SortOrder.DescendingOrder)
        header.setStretchLastSection(True)
        header.setHighlightSections(False)
        for column, width in _COLUMN_WIDTHS.items():
            header.resizeSection(column, width)

        # The delegates are children of the view, which does not own them.
        view.setItemDelegateForColumn(
            TaskColumn.STATUS, StatusBadgeDelegate(TaskTableModel.StatusRole, view)
        )
        view.setItemDelegateForColumn(
            TaskColumn.PROGRESS, ProgressDelegate(TaskTableModel.ProgressRole, view)
        )
        view.setItemDelegateForColumn(
            TaskColumn.TASK, TaskNameDelegate(TaskTableModel.GovernanceRole, view)
        )
        return view

    def _connect(self) -> None:
        model = self.model
        self.filter_bar.filter_changed.connect(self._on_filter_bar_filter_changed)
        self.view.selectionModel().selectionChanged.connect(
            self._on_selection_model_selection_changed
        )
        self.view.activated.connect(self._on_view_activated)
        self.view.horizontalHeader().sortIndicatorChanged.connect(
            self._on_header_sort_indicator_changed
        )
        model.load_failed.connect(self.message_requested)
        model.loading_changed.connect(self._on_model_loading_changed)
        model.task_located.connect(self._on_model_task_located)
        model.locate_failed.connect(self._on_model_locate_failed)
        model.rowsAboutToBeInserted.connect(self._on_model_rows_about_to_be_inserted)
        model.rowsInserted.connect(self._on_model_rows_inserted)
        model.rowsRemoved.connect(self._update_count_label)
        model.modelReset.connect(self._on_model_rows_changed)
        model.dataChanged.connect(self._on_model_rows_changed)
        model.layoutAboutToBeChanged.connect(self._on_model_layout_about_to_be_changed)
        model.layoutChanged.connect(self._on_model_layout_changed)

    # --- public API ----------------------------------------------------------

    def task_filter(self) -> TaskFilter:
        """Return the filter the table shows."""
        return self.model.task_filter

    def set_queue_filter(self, queue: TaskQueue | None) -> None:
        """Show only the tasks of `queue` (None for all queues)."""
        self.filter_bar.set_queue(queue)

    def set_status_filter(self, status: TaskStatus | None) -> None:
        """Show only the tasks in `status` (None for all statuses)."""
        self.filter_bar.set_status(status)

    def set_text_filter(self, text: str) -> None:
        """Search for `text` at once; see `TaskFilter` for what it matches."""
        self.filter_bar.set_text(text)

    def set_awaiting_count(self, count: int) -> None:
        """Show the number of tasks awaiting approval on the filter bar's toggle."""
        self.filter_bar.set_awaiting_count(count)

    @Slot(list)
    def apply_changes(self, changes: Sequence[Change]) -> None:
        """Bring the table up to date with entries of the change feed."""
        self.model.apply_changes(changes)

    def reload(self) -> None:
        """Read the shown rows again, keeping the selection on its task ids."""
        self.model.reload()

    def select_task(self, task_id: str) -> None:
        """Go to a task: select it, scroll to it and load its page.

        Filters that would hide the task are cleared first. Emits
        `message_requested` if no task has the id.
        """
        task_id = task_id.strip()
        if not task_id:
            return
        self._goto_id = task_id
        self._goto_cleared_all = False
        self._runner.run(
            _read_record,
            self._engine,
            task_id,
            on_result=while_alive(
                self, lambda record: self._on_goto_record_read(task_id, record)
            ),
            on_error=while_alive(self, self.message_requested.emit),
        )

    def selected_records(self) -> list[TaskRecord]:
        """Return the loaded records of the selected rows, in row order."""
        rows = sorted(
            index.row() for index in self.view.selectionModel().selectedRows()
        )
        records = (self.model.record_at(row) for row in rows)
        return [record for record in records if record is not None]

    def header_state(self) -> QByteArray:
        """Return the column order, widths and sort order, for saving."""
        return self.view.horizontalHeader().saveState()

    def restore_header_state(self, state: QByteArray) -> bool:
        """Restore what `header_state` returned; return False if it was invalid."""
        header = self.view.horizontalHeader()
        with QSignalBlocker(header):
            restored = header.restoreState(state)
        for column in TaskColumn:
            # A state from another version may have hidden or shrunk a column.
            header.setSectionHidden(column, False)
        section = header.sortIndicatorSection()
        order = header.sortIndicatorOrder()
        if section not in self.model.sortable_columns:
            # Saved by a version or backend that sorted by another column.
            section = DEFAULT_SORT_COLUMN
            order = Qt.SortOrder.DescendingOrder
            with QSignalBlocker(header):
                header.setSortIndicator(section, order)
        self.model.sort(section, order)
        return restored

    # --- going to a task -----------------------------------------------------

    def _on_goto_record_read(self, task_id: str, record: TaskRecord | None) -> None:
        if task_id != self._goto_id:
            return
        if record is None:
            self._goto_id = None
            self.message_requested.emit(
                f"task {task_id} not found: check the id; it may have been deleted"
            )
            return
        current = self.filter_bar.task_filter()
        status = current.status if current.status in (None, record.status) else None
        queue = current.queue if current.queue in (None, record.queue) else None
        text = current.text or ""
        if text and not text_may_match(record, text):
            text = ""
        self.filter_bar.set_values(status, queue, text)
        self._show_filter(self.filter_bar.task_filter())
        self.model.locate(task_id)

    def _on_model_task_located(self, task_id: str, row: int) -> None:
        if task_id == self._goto_id:
            self._goto_id = None
            self._select_row(row, QAbstractItemView.ScrollHint.PositionAtCenter)
            self.view.setFocus()
        elif task_id == self._reselect_id:
            self._reselect_id = None
            self._select_row(row, QAbstractItemView.ScrollHint.EnsureVisible)

    def _on_model_locate_failed(self, task_id: str, message: str) -> None:
        if task_id == self._reselect_id:
            self._reselect_id = None
            return
        if task_id != self._goto_id:
            return
        if not self._goto_cleared_all and self.task_filter() != TaskFilter():
            # The ledger's search disagreed with `text_may_match`: show everything.
            self._goto_cleared_all = True
            self.filter_bar.set_values(None, None, "")
            self._show_filter(TaskFilter())
            self.model.locate(task_id)
            return
        self._goto_id = None
        self.message_requested.emit(message)

    def _select_row(self, row: int, hint: QAbstractItemView.ScrollHint) -> None:
        index = self.model.index(row, 0)
        flags = (
            self.view.selectionModel().SelectionFlag.ClearAndSelect
            | self.view.selectionModel().SelectionFlag.Rows
        )
        self.view.selectionModel().setCurrentIndex(index, flags)
        self.view.scrollTo(index, hint)

    # --- filters and order ---------------------------------------------------

    def _show_filter(self, task_filter: TaskFilter) -> None:
        if task_filter == self.model.task_filter:
            return
        self._remember_current_for_reselect()
        self.model.set_filter(task_filter)
        self._locate_reselect()
        self.filter_changed.emit(task_filter)

    def _remember_current_for_reselect(self) -> None:
        record = self.model.record_at(self.view.currentIndex().row())
        if record is not None and self._goto_id is None:
            self._reselect_id = record.task_id

    def _locate_reselect(self) -> None:
        """Select the remembered task again once the new rows have loaded."""
        if self._reselect_id is not None:
            self.model.locate(self._reselect_id)

    @Slot(object)
    def _on_filter_bar_filter_changed(self, task_filter: TaskFilter) -> None:
        self._goto_id = None
        self._show_filter(task_filter)

    def _on_header_sort_indicator_changed(
        self, section: int, order: Qt.SortOrder
    ) -> None:
        header = self.view.horizontalHeader()
        if section not in self.model.sortable_columns:
            # The ledger cannot sort by it: put the indicator back where it was.
            current = (
                Qt.SortOrder.AscendingOrder
                if self.model.ascending
                else Qt.SortOrder.DescendingOrder
            )
            with QSignalBlocker(header):
                header.setSortIndicator(column_of_sort(self.model.sort_key), current)
            return
        ascending = order == Qt.SortOrder.AscendingOrder
        key = COLUMN_SORTS[TaskColumn(section)]
        if key is not self.model.sort_key or ascending != self.model.ascending:
            self._remember_current_for_reselect()
            self.model.sort(section, order)
            self._locate_reselect()

    # --- view updates --------------------------------------------------------

    def _on_view_activated(self, index: QModelIndex) -> None:
        record = self.model.record_at(index.row())
        if record is not None:
            self.task_activated.emit(record.task_id)

    def _on_selection_model_selection_changed(
        self, _selected: QItemSelection, _deselected: QItemSelection
    ) -> None:
        self._selection_timer.stop()
        self._emit_selection_if_changed()

    def _on_model_rows_changed(self, *_args: object) -> None:
        self._update_count_label()
        if self.view.selectionModel().hasSelection() or self._emitted_selection:
            self._selection_timer.start()

    def _emit_selection_if_changed(self) -> None:
        records = self.selected_records()
        if records != self._emitted_selection:
            self._emitted_selection = records
            self.selection_changed.emit(records)

    def _on_model_rows_about_to_be_inserted(
        self, _parent: QModelIndex, first: int, _last: int
    ) -> None:
        if first == 0:
            self._anchor_top_row()

    def _on_model_rows_inserted(self, *_args: object) -> None:
        self._update_count_label()
        self._restore_top_row()

    def _on_model_layout_about_to_be_changed(self, *_args: object) -> None:
        self._anchor_top_row()

    def _on_model_layout_changed(self, *_args: object) -> None:
        self._on_model_rows_changed()
        self._restore_top_row()

    def _anchor_top_row(self) -> None:
        """Remember the top visible row before rows arrive above it or move.

        Rows that arrive above the rows the operator scrolled to must not
        push those rows down and out of sight. At the very top the view
        stays put, so that new tasks come into sight.
        """
        self._top_anchor = None
        if self.view.verticalScrollBar().value() > 0:
            top = self.view.indexAt(self.view.viewport().rect().topLeft())
            if top.isValid():
                self._top_anchor = QPersistentModelIndex(top)

    def _restore_top_row(self) -> None:
        anchor, self._top_anchor = self._top_anchor, None
        if anchor is not None:
            # The view lays its rows out after this signal: scroll once it has.
            QTimer.singleShot(0, self, lambda: self._scroll_to_anchor(anchor))

    def _scroll_to_anchor(self, anchor: QPersistentModelIndex) -> None:
        if anchor.isValid():
            index = self.model.index(anchor.row(), anchor.column())
            self.view.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtTop)

    def _on_model_loading_changed(self, _loading: bool) -> None:
        self._update_count_label()

    def _update_count_label(self, *_args: object) -> None:
        if self.model.is_loading:
            text = "Loading tasks…"
        elif self.model.rowCount() == 0:
            text = (
                "No tasks yet"
                if self.model.task_filter == TaskFilter()
                else "No tasks match these filters"
            )
        else:
            count = self.model.rowCount()
            text = f"{count:,} task{'s' if count != 1 else ''}"
        self.count_label.setText(text)
