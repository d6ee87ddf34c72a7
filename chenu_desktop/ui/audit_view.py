"""The audit view: a paged table of operator actions, newest first, with filters."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..audit.store import AuditAction, AuditEntry, AuditFilter
from .audit_table_model import COLUMN_DETAILS, AuditTableModel, action_label

if TYPE_CHECKING:
    from ..engine import Engine
    from .background import BackgroundRunner

logger = logging.getLogger("chenu.ui")

#: Entries per page of the table.
PAGE_SIZE = 100
#: Quiet time after typing in a filter field before the page is read again.
FILTER_DELAY_MS = 300


class AuditView(QWidget):
    """Pages of the audit trail, read in the background through the runner.

    Only one read runs at a time. A read requested while one runs is made
    once that one ends, so a burst of actions costs at most two reads.

    Signals:
        message_requested(str): a message for the window to show, such as why
            a read failed.
        page_loaded(): a page read ended and the table shows it.
    """

    message_requested = Signal(str)
    page_loaded = Signal()

    def __init__(
        self,
        engine: Engine,
        runner: BackgroundRunner,
        page_size: int = PAGE_SIZE,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("audit_view")
        self.setAccessibleName("Audit trail")
        self._engine = engine
        self._runner = runner
        self._page_size = page_size
        self._offset = 0
        self._total = 0
        self._last_id_shown: int | None = None
        self._loading = False
        self._reload_requested = False
        self._model = AuditTableModel(self)
        self._build()

        self._filter_timer = QTimer(self, singleShot=True, interval=FILTER_DELAY_MS)
        self._filter_timer.timeout.connect(self._on_filter_timer_timeout)

    # --- public API ------------------------------------------------------------

    def model(self) -> AuditTableModel:
        return self._model

    def table(self) -> QTableView:
        return self._table

    def offset(self) -> int:
        return self._offset

    def total(self) -> int:
        return self._total

    def current_filter(self) -> AuditFilter:
        """Return the filter the fields describe; blank fields match anything."""
        action = self.action_combo.currentData()
        return AuditFilter(
            action=action or None,
            target=self.target_edit.text().strip() or None,
            operator=self.operator_edit.text().strip() or None,
        )

    def refresh(self) -> None:
        """Read the current page again in the background."""
        if self._loading:
            self._reload_requested = True
            return
        self._loading = True
        entry_filter = self.current_filter()
        offset = self._offset
        self._runner.run(
            self._engine.audit.page,
            entry_filter,
            self._page_size,
            offset,
            on_result=lambda value: self._on_page_read(entry_filter, offset, value),
            on_error=self._on_page_failed,
        )

    def notify_last_id(self, last_id: int) -> None:
        """Take the newest entry id from the feed; read the page again if it grew."""
        if last_id == self._last_id_shown:
            return
        self._last_id_shown = last_id
        self.refresh()

    def show_newer(self) -> None:
        if self._offset == 0:
            return
        self._offset = max(0, self._offset - self._page_size)
        self.refresh()

    def show_older(self) -> None:
        if self._offset + self._page_size >= self._total:
            return
        self._offset += self._page_size
        self.refresh()

    # --- building --------------------------------------------------------------

    def _build(self) -> None:
        self.action_combo = QComboBox(objectName="audit_action_filter")
        self.action_combo.setAccessibleName("Action filter")
        self.action_combo.addItem("All actions", None)
        for action in AuditAction:
            self.action_combo.addItem(action_label(action.value), action.value)
        self.action_combo.currentIndexChanged.connect(self._on_filter_changed)
        self.target_edit = QLineEdit(objectName="audit_target_filter")
        self.target_edit.setAccessibleName("Target filter")
        self.target_edit.setPlaceholderText("Target: task id, schedule or queue")
        self.target_edit.setClearButtonEnabled(True)
        self.target_edit.textChanged.connect(self._on_filter_text_changed)
        self.operator_edit = QLineEdit(objectName="audit_operator_filter")
        self.operator_edit.setAccessibleName("Operator filter")
        self.operator_edit.setPlaceholderText("Operator")
        self.operator_edit.setClearButtonEnabled(True)
        self.operator_edit.textChanged.connect(self._on_filter_text_changed)
        filters = QHBoxLayout()
        filters.addWidget(self.action_combo)
        filters.addWidget(self.target_edit, 2)
        filters.addWidget(self.operator_edit, 1)

        self._table = QTableView(self)
        self._table.setObjectName("audit_table")
        self._table.setAccessibleName("Audit entries")
        self._table.setModel(self._model)
        self._table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self._table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self._table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._table.verticalHeader().setVisible(False)
        self._table.setAlternatingRowColors(True)
        self._table.setWordWrap(False)
        # Columns are sized to each page once it is shown (see `_on_page_read`),
        # so the details, the last column, take the rest of the width.
        header = self._table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)

        self.newer_button = QPushButton("&Newer", objectName="audit_newer_button")
        self.newer_button.setAccessibleName("Newer entries")
        self.newer_button.setToolTip("Show the previous, newer page")
        self.newer_button.clicked.connect(self.show_newer)
        self.older_button = QPushButton("&Older", objectName="audit_older_button")
        self.older_button.setAccessibleName("Older entries")
        self.older_button.setToolTip("Show the next, older page")
        self.older_button.clicked.connect(self.show_older)
        self.page_label = QLabel(objectName="audit_page_label")
        self.page_label.setAccessibleName("Audit page")
        pager = QHBoxLayout()
        pager.addWidget(self.page_label, 1)
        pager.addWidget(self.newer_button)
        pager.addWidget(self.older_button)

        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(self._table, 1)
        layout.addLayout(pager)
        self._update_pager()

    # --- slots -----------------------------------------------------------------

    def _on_filter_changed(self) -> None:
        self._filter_timer.stop()
        self._offset = 0
        self.refresh()

    def _on_filter_text_changed(self, _text: str) -> None:
        self._filter_timer.start()

    def _on_filter_timer_timeout(self) -> None:
        self._on_filter_changed()

    def _on_page_read(
        self,
        entry_filter: AuditFilter,
        offset: int,
        value: tuple[list[AuditEntry], int],
    ) -> None:
        self._loading = False
        stale = entry_filter != self.current_filter() or offset != self._offset
        if stale or self._reload_requested:
            self._reload_requested = False
            self.refresh()
            if stale:
                return
        entries, total = value
        self._total = total
        if not entries and offset > 0 and total > 0:
            # Entries matching the filter became fewer than the offset.
            self._offset = max(0, (total - 1) // self._page_size * self._page_size)
            self.refresh()
            return
        self._model.set_entries(entries)
        for column in range(COLUMN_DETAILS):
            self._table.resizeColumnToContents(column)
        self._update_pager()
        self.page_loaded.emit()

    def _on_page_failed(self, message: str) -> None:
        self._loading = False
        self._reload_requested = False
        logger.warning("reading the audit trail failed: %s", message)
        self.message_requested.emit(f"Reading the audit trail failed: {message}")

    def _update_pager(self) -> None:
        shown = self._model.rowCount()
        if shown:
            first = self._offset + 1
            self.page_label.setText(
                f"Entries {first}–{self._offset + shown} of {self._total}"
            )
        else:
            self.page_label.setText("No audit entries match")
        self.newer_button.setEnabled(self._offset > 0)
        self.older_button.setEnabled(self._offset + self._page_size < self._total)
