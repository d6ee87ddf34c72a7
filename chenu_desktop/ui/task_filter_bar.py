"""The filter bar above the task table: status, queue, search text, approvals."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QToolButton,
    QWidget,
)

from ..models import TaskFilter, TaskQueue, TaskStatus
from .style import QUEUE_ORDER, status_label

#: Quiet time after the last keystroke before a search runs.
SEARCH_DEBOUNCE_MS = 250


class TaskFilterBar(QWidget):
    """Controls that build the `TaskFilter` of the task table.

    The "Awaiting approval (N)" toggle is the status filter set to awaiting
    approval: checking it selects that status, and choosing another status
    unchecks it.

    Signals:
        filter_changed(object): the operator changed a control; the payload
            is the new `TaskFilter`. Typing is debounced by
            `SEARCH_DEBOUNCE_MS`; Enter searches at once.
    """

    filter_changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.status_combo = QComboBox(self)
        self.status_combo.setObjectName("task_status_filter")
        self.status_combo.setAccessibleName("Status filter")
        self.status_combo.setToolTip("Show only tasks in this status")
        # Item data are plain strings, because Qt stores str enums as strings.
        self.status_combo.addItem("All statuses", "")
        for status in TaskStatus:
            self.status_combo.addItem(status_label(status), status.value)

        self.queue_combo = QComboBox(self)
        self.queue_combo.setObjectName("task_queue_filter")
        self.queue_combo.setAccessibleName("Queue filter")
        self.queue_combo.setToolTip("Show only tasks of this queue")
        self.queue_combo.addItem("All queues", "")
        for queue in QUEUE_ORDER:
            self.queue_combo.addItem(queue.value, queue.value)

        self.search_edit = QLineEdit(self)
        self.search_edit.setObjectName("task_search")
        self.search_edit.setAccessibleName("Search tasks")
        self.search_edit.setPlaceholderText("Search id, task name or error")
        self.search_edit.setToolTip(
            "Matches the start of a task id, part of a task name, or part of an "
            "error message (three characters or more)"
        )
        self.search_edit.setClearButtonEnabled(True)

        self.awaiting_toggle = QToolButton(self)
        self.awaiting_toggle.setObjectName("task_awaiting_toggle")
        self.awaiting_toggle.setAccessibleName("Show tasks awaiting approval")
        self.awaiting_toggle.setToolTip("Show only governance tasks awaiting approval")
        self.awaiting_toggle.setCheckable(True)
        self.set_awaiting_count(0)

        self.clear_button = QPushButton("Clear filters", self)
        self.clear_button.setObjectName("task_clear_filters")
        self.clear_button.setAccessibleName("Clear filters")

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.status_combo)
        layout.addWidget(self.queue_combo)
        layout.addWidget(self.search_edit, 1)
        layout.addWidget(self.awaiting_toggle)
        layout.addWidget(self.clear_button)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DEBOUNCE_MS)
        self._search_timer.timeout.connect(self._on_search_timer_timeout)
        self.status_combo.currentIndexChanged.connect(self._on_status_combo_changed)
        self.queue_combo.currentIndexChanged.connect(self._on_queue_combo_changed)
        self.search_edit.textChanged.connect(self._on_search_edit_text_changed)
        self.search_edit.returnPressed.connect(self._on_search_timer_timeout)
        self.awaiting_toggle.toggled.connect(self._on_awaiting_toggle_toggled)
        self.clear_button.clicked.connect(self._on_clear_button_clicked)

    # --- reading and setting -------------------------------------------------

    def task_filter(self) -> TaskFilter:
        """Return the filter the controls show."""
        text = self.search_edit.text().strip()
        return TaskFilter(
            status=self.status(),
            queue=self.queue(),
            text=text or None,
        )

    def status(self) -> TaskStatus | None:
        """Return the status chosen, or None for all."""
        value = self.status_combo.currentData()
        return TaskStatus(value) if value else None

    def queue(self) -> TaskQueue | None:
        """Return the queue chosen, or None for all."""
        value = self.queue_combo.currentData()
        return TaskQueue(value) if value else None

    def set_values(
        self,
        status: TaskStatus | None,
        queue: TaskQueue | None,
        text: str,
    ) -> None:
        """Show these filter values without emitting `filter_changed`."""
        self._search_timer.stop()
        with QSignalBlocker(self.status_combo):
            index = self.status_combo.findData(status.value if status else "")
            self.status_combo.setCurrentIndex(max(0, index))
        with QSignalBlocker(self.queue_combo):
            index = self.queue_combo.findData(queue.value if queue else "")
            self.queue_combo.setCurrentIndex(max(0, index))
        with QSignalBlocker(self.search_edit):
            self.search_edit.setText(text)
        self._sync_awaiting_toggle()

    def set_status(self, status: TaskStatus | None) -> None:
        """Filter by `status` (None for all) and emit `filter_changed`."""
        current = self.task_filter()
        self.set_values(status, current.queue, current.text or "")
        self.filter_changed.emit(self.task_filter())

    def set_queue(self, queue: TaskQueue | None) -> None:
        """Filter by `queue` (None for all) and emit `filter_changed`."""
        current = self.task_filter()
        self.set_values(current.status, queue, current.text or "")
        self.filter_changed.emit(self.task_filter())

    def set_text(self, text: str) -> None:
        """Search for `text` at once and emit `filter_changed`."""
        current = self.task_filter()
        self.set_values(current.status, current.queue, text)
        self.filter_changed.emit(self.task_filter())

    def clear(self) -> None:
        """Clear every filter and emit `filter_changed`."""
        self.set_values(None, None, "")
        self.filter_changed.emit(self.task_filter())

    def set_awaiting_count(self, count: int) -> None:
        """Show the number of tasks awaiting approval on the toggle."""
        self.awaiting_toggle.setText(f"Awaiting approval ({count})")

    def _sync_awaiting_toggle(self) -> None:
        awaiting = self.status() is TaskStatus.AWAITING_APPROVAL
        with QSignalBlocker(self.awaiting_toggle):
            self.awaiting_toggle.setChecked(awaiting)

    # --- slots ---------------------------------------------------------------

    def _on_status_combo_changed(self, _index: int) -> None:
        self._sync_awaiting_toggle()
        self.filter_changed.emit(self.task_filter())

    def _on_queue_combo_changed(self, _index: int) -> None:
        self.filter_changed.emit(self.task_filter())

    def _on_search_edit_text_changed(self, _text: str) -> None:
        self._search_timer.start()

    def _on_search_timer_timeout(self) -> None:
        self._search_timer.stop()
        self.filter_changed.emit(self.task_filter())

    def _on_awaiting_toggle_toggled(self, checked: bool) -> None:
        if checked:
            self.set_status(TaskStatus.AWAITING_APPROVAL)
        elif self.status() is TaskStatus.AWAITING_APPROVAL:
            self.set_status(None)

    def _on_clear_button_clicked(self) -> None:
        self.clear()
