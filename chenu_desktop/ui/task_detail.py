"""The task detail panel: every field of one record, its history and its error."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..models import TaskRecord, TaskStatus, to_datetime
from .style import (
    STATUS_COLORS,
    format_duration,
    format_relative,
    format_time,
    status_label,
)

#: Lines a text box shows before it scrolls, at least and at most.
_MIN_BOX_LINES = 4
_MAX_BOX_LINES = 18
_STATUS_VALUES = frozenset(status.value for status in TaskStatus)
_SELECTABLE = (
    Qt.TextInteractionFlag.TextSelectableByMouse
    | Qt.TextInteractionFlag.TextSelectableByKeyboard
)


def format_json(value: Any) -> str:
    """Format a stored JSON value for reading: indented, non-ASCII kept."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _field_label(name: str) -> QLabel:
    label = QLabel()
    label.setObjectName(name)
    label.setTextInteractionFlags(_SELECTABLE)
    label.setWordWrap(True)
    return label


def _text_box(name: str, accessible_name: str) -> QPlainTextEdit:
    box = QPlainTextEdit()
    box.setObjectName(name)
    box.setAccessibleName(accessible_name)
    box.setReadOnly(True)
    box.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
    box.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    line = box.fontMetrics().lineSpacing()
    box.setMinimumHeight(line * _MIN_BOX_LINES + 12)
    box.setMaximumHeight(line * _MAX_BOX_LINES + 12)
    return box


def _link_button(name: str, accessible_name: str) -> QPushButton:
    button = QPushButton()
    button.setObjectName(name)
    button.setAccessibleName(accessible_name)
    button.setFlat(True)
    button.setCursor(Qt.CursorShape.PointingHandCursor)
    button.setStyleSheet("text-align: left; color: palette(link);")
    return button


class TaskDetailPanel(QWidget):
    """The fields, arguments, result, error and status history of one task.

    Large arguments, results and tracebacks are shown in full in scrollable,
    read-only boxes. Showing a newer version of the same record keeps the
    boxes' scroll positions where the text did not change.

    Signals:
        task_link_activated(str): the operator clicked the task this one
            retried, or the one that retried it; the payload is its id.
    """

    task_link_activated = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("task_detail")
        self._record: TaskRecord | None = None

        self.empty_label = QLabel("Select a task to see its details.")
        self.empty_label.setObjectName("detail_empty")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)

        content = QWidget()
        content_layout = QVBoxLayout(content)
        content_layout.addLayout(self._make_title())
        content_layout.addLayout(self._make_form())
        content_layout.addWidget(self._make_error_group())
        content_layout.addWidget(self._make_arguments_group())
        content_layout.addWidget(self._make_result_group())
        content_layout.addWidget(self._make_history_group())
        content_layout.addStretch(1)

        self.scroll_area = QScrollArea()
        self.scroll_area.setObjectName("detail_scroll")
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setHorizontalScrollBarPolicy(
            Qt.ScrollBarPolicy.ScrollBarAlwaysOff
        )
        self.scroll_area.setWidget(content)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.scroll_area)
        self.show_record(None)

    # --- building ------------------------------------------------------------

    def _make_title(self) -> QHBoxLayout:
        self.id_label = _field_label("detail_task_id")
        self.id_label.setAccessibleName("Task id")
        self.id_label.setWordWrap(False)
        # An id has no spaces to wrap at: let it be cut, it stays selectable.
        self.id_label.setSizePolicy(
            QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred
        )
        font = self.id_label.font()
        font.setBold(True)
        self.id_label.setFont(font)
        self.status_badge = QLabel()
        self.status_badge.setObjectName("detail_status")
        self.status_badge.setAccessibleName("Status")
        self.cancel_label = QLabel("cancel requested")
        self.cancel_label.setObjectName("detail_cancel_requested")
        title = QHBoxLayout()
        title.addWidget(self.id_label, 1)
        title.addWidget(self.cancel_label)
        title.addWidget(self.status_badge)
        return title

    def _make_form(self) -> QFormLayout:
        self.form = QFormLayout()
        self.fields: dict[str, QLabel] = {}
        for key, title in (
            ("task", "Task"),
            ("queue", "Queue"),
            ("priority", "Priority"),
            ("attempts", "Attempts"),
            ("created", "Created"),
            ("eta", "Runs at"),
            ("started", "Started"),
            ("finished", "Finished"),
            ("expires", "Expires"),
            ("duration", "Duration"),
            ("worker", "Worker"),
            ("approval", "Approval"),
        ):
            label = _field_label(f"detail_{key}")
            label.setAccessibleName(title)
            self.fields[key] = label
            self.form.addRow(f"{title}:", label)

        self.progress_bar = QProgressBar()
        self.progress_bar.setObjectName("detail_progress")
        self.progress_bar.setAccessibleName("Progress")
        self.progress_bar.setRange(0, 1000)
        self.progress_message = _field_label("detail_progress_message")
        progress = QWidget()
        progress_layout = QVBoxLayout(progress)
        progress_layout.setContentsMargins(0, 0, 0, 0)
        progress_layout.addWidget(self.progress_bar)
        progress_layout.addWidget(self.progress_message)
        self.form.addRow("Progress:", progress)
        self._progress_row = progress

        self.retry_of_button = _link_button("detail_retry_of", "Go to the retried task")
        self.retry_of_button.clicked.connect(self._on_retry_of_button_clicked)
        self.form.addRow("Retry of:", self.retry_of_button)
        self.retried_as_button = _link_button("detail_retried_as", "Go to the retry")
        self.retried_as_button.clicked.connect(self._on_retried_as_button_clicked)
        self.form.addRow("Retried as:", self.retried_as_button)
        return self.form

    def _make_error_group(self) -> QGroupBox:
        self.error_group = QGroupBox("Error")
        self.error_group.setObjectName("detail_error_group")
        self.error_label = _field_label("detail_error")
        self.error_label.setAccessibleName("Error message")
        self.traceback_box = _text_box("detail_traceback", "Traceback")
        self.copy_button = QPushButton("Copy")
        self.copy_button.setObjectName("detail_copy_traceback")
        self.copy_button.setAccessibleName("Copy the traceback")
        self.copy_button.setToolTip("Copy the traceback, or the error without one")
        self.copy_button.clicked.connect(self._on_copy_button_clicked)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.copy_button)
        layout = QVBoxLayout(self.error_group)
        layout.addWidget(self.error_label)
        layout.addWidget(self.traceback_box)
        layout.addLayout(buttons)
        return self.error_group

    def _make_arguments_group(self) -> QGroupBox:
        self.arguments_group = QGroupBox("Arguments")
        self.arguments_group.setObjectName("detail_arguments_group")
        self.arguments_box = _text_box("detail_arguments", "Arguments")
        QVBoxLayout(self.arguments_group).addWidget(self.arguments_box)
        return self.arguments_group

    def _make_result_group(self) -> QGroupBox:
        self.result_group = QGroupBox("Result")
        self.result_group.setObjectName("detail_result_group")
        self.result_box = _text_box("detail_result", "Result")
        QVBoxLayout(self.result_group).addWidget(self.result_box)
        return self.result_group

    def _make_history_group(self) -> QGroupBox:
        self.history_group = QGroupBox("History (newest first)")
        self.history_group.setObjectName("detail_history_group")
        self.history_tree = QTreeWidget()
        self.history_tree.setObjectName("detail_history")
        self.history_tree.setAccessibleName("Status history")
        self.history_tree.setRootIsDecorated(False)
        self.history_tree.setHeaderLabels(["Status", "Time", "After"])
        self.history_tree.header().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        QVBoxLayout(self.history_group).addWidget(self.history_tree)
        return self.history_group

    # --- showing a record ----------------------------------------------------

    @property
    def record(self) -> TaskRecord | None:
        """The record shown, or None."""
        return self._record

    def show_record(self, record: TaskRecord | None) -> None:
        """Show `record`, or the empty state for None."""
        self._record = record
        self.empty_label.setVisible(record is None)
        self.scroll_area.setVisible(record is not None)
        if record is None:
            return
        self.id_label.setText(record.task_id)
        self.id_label.setToolTip(record.task_id)
        self._show_status(record)
        self._show_fields(record)
        self._show_progress(record)
        self._show_links(record)
        self._show_error(record)
        arguments = {"args": record.args, "kwargs": record.kwargs}
        # NOTE: the boxes are filled on the GUI thread. With a 1 MiB string in
        # both the arguments and the result, this call and the first paint took
        # about 1 s together on a shared 2-core machine.
        _set_text(self.arguments_box, format_json(arguments))
        has_result = record.result is not None or record.status is TaskStatus.SUCCESS
        self.result_group.setVisible(has_result)
        _set_text(self.result_box, format_json(record.result) if has_result else "")
        self._show_history(record)

    def _show_status(self, record: TaskRecord) -> None:
        color = STATUS_COLORS[record.status].name()
        self.status_badge.setText(status_label(record.status))
        self.status_badge.setStyleSheet(
            f"background-color: {color}; color: white; border-radius: 8px;"
            " padding: 2px 8px;"
        )
        self.cancel_label.setVisible(
            record.cancel_requested and record.status is not TaskStatus.CANCELLED
        )

    def _show_fields(self, record: TaskRecord) -> None:
        fields = self.fields
        fields["task"].setText(record.task_name)
        fields["queue"].setText(record.queue.value)
        fields["priority"].setText(str(record.priority))
        fields["attempts"].setText(_attempts_text(record))
        self._set_field("created", format_time(record.created_at))
        self._set_field("eta", format_time(record.eta))
        self._set_field("started", format_time(record.started_at))
        self._set_field("finished", format_time(record.finished_at))
        self._set_field("expires", format_time(record.expires_at))
        self._set_field("duration", format_duration(record.duration_seconds))
        self._set_field("worker", record.worker or "")
        self._set_field("approval", _approval_text(record))

    def _set_field(self, key: str, text: str) -> None:
        """Show a field's row only when it has a value."""
        label = self.fields[key]
        label.setText(text)
        self.form.setRowVisible(label, bool(text))

    def _show_progress(self, record: TaskRecord) -> None:
        visible = record.progress is not None or bool(record.progress_message)
        self.form.setRowVisible(self._progress_row, visible)
        fraction = min(1.0, max(0.0, record.progress or 0.0))
        self.progress_bar.setValue(round(fraction * 1000))
        self.progress_bar.setFormat(f"{fraction:.0%}")
        self.progress_bar.setVisible(record.progress is not None)
        self.progress_message.setText(record.progress_message or "")
        self.progress_message.setVisible(bool(record.progress_message))

    def _show_links(self, record: TaskRecord) -> None:
        for button, task_id in (
            (self.retry_of_button, record.retry_of),
            (self.retried_as_button, record.retried_as),
        ):
            button.setText(task_id or "")
            button.setToolTip(f"Go to task {task_id}" if task_id else "")
            self.form.setRowVisible(button, bool(task_id))

    def _show_error(self, record: TaskRecord) -> None:
        has_error = bool(record.error or record.traceback)
        self.error_group.setVisible(has_error)
        self.error_label.setText(record.error or "")
        self.error_label.setVisible(bool(record.error))
        _set_text(self.traceback_box, record.traceback or "")
        self.traceback_box.setVisible(bool(record.traceback))
        self.copy_button.setEnabled(has_error)

    def _show_history(self, record: TaskRecord) -> None:
        self.history_tree.clear()
        self.history_group.setVisible(bool(record.history))
        items = []
        previous_at: float | None = None
        for entry in record.history:
            status, at = entry[0], float(entry[1])
            after = "" if previous_at is None else format_duration(at - previous_at)
            previous_at = at
            label = (
                status_label(TaskStatus(status)) if status in _STATUS_VALUES else status
            )
            item = QTreeWidgetItem([label, format_time(at), after])
            items.append(item)
        self.history_tree.addTopLevelItems(list(reversed(items)))

    # --- slots ---------------------------------------------------------------

    def _on_copy_button_clicked(self) -> None:
        record = self._record
        if record is None:
            return
        text = record.traceback or record.error or ""
        if text:
            QGuiApplication.clipboard().setText(text)

    def _on_retry_of_button_clicked(self) -> None:
        if self._record is not None and self._record.retry_of:
            self.task_link_activated.emit(self._record.retry_of)

    def _on_retried_as_button_clicked(self) -> None:
        if self._record is not None and self._record.retried_as:
            self.task_link_activated.emit(self._record.retried_as)


def _set_text(box: QPlainTextEdit, text: str) -> None:
    """Replace a box's text only if it changed, which keeps its scroll position."""
    if box.toPlainText() != text:
        box.setPlainText(text)


def _attempts_text(record: TaskRecord) -> str:
    """Return "attempt 2 of 4 (3 retries)", with the next attempt's time if any."""
    retries = "retry" if record.max_retries == 1 else "retries"
    text = (
        f"attempt {record.attempts} of {record.max_retries + 1} "
        f"({record.max_retries} {retries})"
    )
    if record.next_attempt_at is not None and record.status is TaskStatus.RETRYING:
        when = to_datetime(record.next_attempt_at)
        text += (
            f", next at {format_time(record.next_attempt_at)} ({format_relative(when)})"
        )
    return text


def _approval_text(record: TaskRecord) -> str:
    """Return who approved or rejected the task, when and why, or "" if not governed."""
    if not record.requires_governance:
        return ""
    if record.status is TaskStatus.AWAITING_APPROVAL:
        return "awaiting approval"
    if record.approved_by is None:
        return "no decision recorded"
    verb = "rejected" if record.status is TaskStatus.REJECTED else "approved"
    text = f"{verb} by {record.approved_by} at {format_time(record.approved_at)}"
    if record.approval_reason:
        text += f": {record.approval_reason}"
    return text
