"""The schedules view: cron schedules with enable, add, edit, run now and delete."""

from __future__ import annotations

import getpass
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QItemSelection,
    QModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..scheduling.service import ScheduleInfo
from .schedule_dialog import ScheduleDialog
from .schedule_table_model import (
    COLUMN_DESCRIPTION,
    COLUMN_ENABLED,
    COLUMN_NAME,
    SCHEDULE_ROLE,
    SORT_ROLE,
    ScheduleTableModel,
)

if TYPE_CHECKING:
    from ..engine import Engine
    from .background import BackgroundRunner

logger = logging.getLogger("chenu.ui")

#: How often the relative next and last run times are repainted (no storage calls).
RELATIVE_TIME_REFRESH_MS = 5000


def default_operator() -> str:
    """Return the OS user name, the approver until the window sets an operator."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        # No login name in the environment and no passwd entry for the uid.
        return ""


class SchedulesView(QWidget):
    """The table of schedules with its actions. Storage calls go through the runner.

    Signals:
        message_requested(str): a message for the window to show, such as
            the id of the task that Run now submitted, or why a call failed.
        schedule_changed(): a schedule was added, edited, enabled, disabled,
            run or deleted; the window may refresh what depends on it.
    """

    message_requested = Signal(str)
    schedule_changed = Signal()

    def __init__(
        self,
        engine: Engine,
        runner: BackgroundRunner,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("schedules_view")
        self.setAccessibleName("Schedules")
        self._engine = engine
        self._runner = runner
        self._operator = default_operator()
        self._dialog: ScheduleDialog | None = None

        self._model = ScheduleTableModel(engine.clock, self)
        self._model.enabled_change_requested.connect(
            self._on_model_enabled_change_requested
        )
        self._proxy = QSortFilterProxyModel(self)
        self._proxy.setSourceModel(self._model)
        self._proxy.setSortRole(SORT_ROLE)
        self._build()

        self._time_timer = QTimer(self)
        self._time_timer.setInterval(RELATIVE_TIME_REFRESH_MS)
        self._time_timer.timeout.connect(self._model.refresh_relative_times)
        self._time_timer.start()

    # --- public API ------------------------------------------------------------

    def model(self) -> ScheduleTableModel:
        return self._model

    def table(self) -> QTableView:
        return self._table

    def operator(self) -> str:
        return self._operator

    def set_operator(self, name: str) -> None:
        """Set who approves governance schedules enabled or saved from this view."""
        self._operator = name.strip()

    def update_schedules(self, schedules: list[ScheduleInfo]) -> None:
        """Show the schedules, as the feed or `refresh` lists them."""
        self._model.set_schedules(schedules)
        self._update_buttons()

    def refresh(self) -> None:
        """Read the schedules again in the background."""
        self._runner.run(
            self._engine.scheduler_service.list_schedules,
            on_result=self.update_schedules,
            on_error=lambda message: self.message_requested.emit(
                f"Reading the schedules failed: {message}"
            ),
        )

    def selected_schedule(self) -> ScheduleInfo | None:
        rows = self._table.selectionModel().selectedRows()
        if not rows:
            return None
        info = rows[0].data(SCHEDULE_ROLE)
        return info if isinstance(info, ScheduleInfo) else None

    def select_schedule(self, name: str) -> bool:
        """Select the row of schedule `name`; return False if it is not shown."""
        row = self._model.row_of(name)
        if row is None:
            return False
        index = self._proxy.mapFromSource(self._model.index(row, COLUMN_NAME))
        self._table.selectRow(index.row())
        return True

    def open_add_dialog(self) -> ScheduleDialog:
        return self._open_dialog(None)

    def open_edit_dialog(self) -> ScheduleDialog | None:
        info = self.selected_schedule()
        return self._open_dialog(info) if info is not None else None

    def run_selected_now(self) -> None:
        info = self.selected_schedule()
        if info is None:
            return
        name = info.name
        self._runner.run(
            self._engine.scheduler_service.run_now,
            name,
            on_result=lambda task_id: self._on_run_now_done(name, task_id),
            on_error=lambda message: self._report_failure(
                f"Running {name!r} now", message
            ),
        )

    def toggle_selected_enabled(self) -> bool:
        """Request the opposite enabled state for the selected schedule."""
        info = self.selected_schedule()
        if info is None:
            return False
        row = self._model.row_of(info.name)
        index = self._model.index(row if row is not None else -1, COLUMN_ENABLED)
        state = Qt.CheckState.Unchecked if info.enabled else Qt.CheckState.Checked
        return self._model.setData(index, state, Qt.ItemDataRole.CheckStateRole)

    def delete_selected(self) -> QMessageBox | None:
        """Open a confirmation box for deleting the selected schedule, and return it.

        The box does not block. The schedule is removed only after its Delete
        button is clicked.
        """
        info = self.selected_schedule()
        if info is None:
            return None
        box = QMessageBox(self)
        box.setObjectName("delete_confirmation")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Delete schedule")
        box.setText(f"Delete the schedule “{info.name}”?")
        box.setInformativeText(
            f"It runs {info.task_name} ({info.description.lower()}, {info.timezone}). "
            "Its fire history is deleted with it. Tasks it already submitted stay."
        )
        delete_button = box.addButton("Delete", QMessageBox.ButtonRole.DestructiveRole)
        delete_button.setObjectName("confirm_delete_button")
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        name = info.name
        box.finished.connect(
            lambda _result: self._on_confirmation_finished(box, delete_button, name)
        )
        box.open()
        return box

    # --- building --------------------------------------------------------------

    def _build(self) -> None:
        self._table = QTableView(self)
        self._table.setObjectName("schedules_table")
        self._table.setAccessibleName("Schedules")
        self._table.setModel(self._proxy)
        self._table.setSortingEnabled(True)
        self._table.sortByColumn(COLUMN_NAME, Qt.SortOrder.AscendingOrder)
        self._table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self._table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self._table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._table.verticalHeader().setVisible(False)
        self._table.setAlternatingRowColors(True)
        header = self._table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COLUMN_DESCRIPTION, QHeaderView.ResizeMode.Stretch)
        self._table.doubleClicked.connect(self._on_table_double_clicked)
        self._add_table_action(
            "Edit schedule", Qt.Key.Key_Return, self.open_edit_dialog
        )
        self._add_table_action("Edit schedule", Qt.Key.Key_Enter, self.open_edit_dialog)
        self._add_table_action(
            "Delete schedule", Qt.Key.Key_Delete, self.delete_selected
        )
        self._add_table_action(
            "Enable or disable schedule", Qt.Key.Key_Space, self.toggle_selected_enabled
        )
        self._table.selectionModel().selectionChanged.connect(
            self._on_table_selection_changed
        )

        buttons = QHBoxLayout()
        self._add_button = self._button("add_button", "&Add…", "Add a schedule")
        self._edit_button = self._button(
            "edit_button", "&Edit…", "Edit the selected schedule"
        )
        self._run_button = self._button(
            "run_now_button", "&Run now", "Submit the selected schedule's task at once"
        )
        self._delete_button = self._button(
            "delete_button", "&Delete…", "Delete the selected schedule"
        )
        self._add_button.clicked.connect(self.open_add_dialog)
        self._edit_button.clicked.connect(self.open_edit_dialog)
        self._run_button.clicked.connect(self.run_selected_now)
        self._delete_button.clicked.connect(self.delete_selected)
        for button in (self._add_button, self._edit_button, self._run_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self._delete_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self._table)
        self._update_buttons()

    def _add_table_action(
        self, text: str, key: Qt.Key, slot: Callable[[], object]
    ) -> None:
        action = QAction(text, self._table)
        action.setShortcut(QKeySequence(key))
        action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        action.triggered.connect(slot)
        self._table.addAction(action)

    def _button(self, name: str, text: str, tooltip: str) -> QPushButton:
        button = QPushButton(text, self)
        button.setObjectName(name)
        button.setToolTip(tooltip)
        button.setAccessibleName(tooltip)
        return button

    def _update_buttons(self) -> None:
        selected = self.selected_schedule() is not None
        self._edit_button.setEnabled(selected)
        self._run_button.setEnabled(selected)
        self._delete_button.setEnabled(selected)

    # --- dialog ----------------------------------------------------------------

    def _open_dialog(self, info: ScheduleInfo | None) -> ScheduleDialog:
        if self._dialog is not None:
            self._dialog.close()
        dialog = ScheduleDialog(self._engine, self._runner, info, self._operator, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.schedule_saved.connect(self._on_dialog_schedule_saved)
        dialog.destroyed.connect(self._on_dialog_destroyed)
        self._dialog = dialog
        dialog.open()
        return dialog

    def _on_dialog_schedule_saved(self, info: ScheduleInfo) -> None:
        self.message_requested.emit(f"Schedule {info.name!r} saved")
        self._after_change()
        self.select_schedule(info.name)

    def _on_dialog_destroyed(self) -> None:
        self._dialog = None

    # --- actions ---------------------------------------------------------------

    def _on_model_enabled_change_requested(self, name: str, enabled: bool) -> None:
        service = self._engine.scheduler_service
        verb = "Enabling" if enabled else "Disabling"
        if enabled:
            # enable_schedule uses the approver only for governance tasks.
            call = (service.enable_schedule, name, self._operator or None)
        else:
            call = (service.disable_schedule, name)
        self._runner.run(
            *call,
            on_result=lambda info: self._on_enabled_changed(name, info),
            on_error=lambda message: self._on_enabled_change_failed(
                name, verb, message
            ),
        )

    def _on_enabled_changed(self, name: str, info: ScheduleInfo) -> None:
        self._model.finish_enabled_change(name, info)
        self.schedule_changed.emit()
        self._update_buttons()

    def _on_enabled_change_failed(self, name: str, verb: str, message: str) -> None:
        self._model.finish_enabled_change(name, None)
        self._report_failure(f"{verb} {name!r}", message)

    def _on_run_now_done(self, name: str, task_id: str) -> None:
        self.message_requested.emit(f"Schedule {name!r} submitted task {task_id}")
        self._after_change()

    def _on_confirmation_finished(
        self, box: QMessageBox, delete_button: QPushButton, name: str
    ) -> None:
        confirmed = box.clickedButton() is delete_button
        box.deleteLater()
        if not confirmed:
            return
        self._runner.run(
            self._engine.scheduler_service.remove_schedule,
            name,
            on_result=lambda _value: self._on_deleted(name),
            on_error=lambda message: self._report_failure(
                f"Deleting {name!r}", message
            ),
        )

    def _on_deleted(self, name: str) -> None:
        self.message_requested.emit(f"Schedule {name!r} deleted")
        self._after_change()

    def _after_change(self) -> None:
        self.schedule_changed.emit()
        self.refresh()

    def _report_failure(self, action: str, message: str) -> None:
        logger.warning("%s failed: %s", action, message)
        self.message_requested.emit(f"{action} failed: {message}")

    # --- table -----------------------------------------------------------------

    def _on_table_double_clicked(self, index: QModelIndex) -> None:
        if index.isValid():
            self.open_edit_dialog()

    def _on_table_selection_changed(
        self, _selected: QItemSelection, _deselected: QItemSelection
    ) -> None:
        self._update_buttons()
