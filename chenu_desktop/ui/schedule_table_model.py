"""Table model of the cron schedules, with an enabled check box per row."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor

from .. import cron
from ..scheduling.service import ScheduleInfo
from .keyed_table_model import ROOT_INDEX, KeyedTableModel
from .style import STATUS_COLORS, format_relative, status_label

logger = logging.getLogger("chenu.ui")

AnyIndex = QModelIndex | QPersistentModelIndex

#: The `ScheduleInfo` of a row.
SCHEDULE_ROLE = Qt.ItemDataRole.UserRole + 1
#: A value that sorts the column: times as POSIX seconds, a missing time last.
SORT_ROLE = Qt.ItemDataRole.UserRole + 2

COLUMN_ENABLED = 0
COLUMN_NAME = 1
COLUMN_TASK = 2
COLUMN_CRON = 3
COLUMN_DESCRIPTION = 4
COLUMN_ZONE = 5
COLUMN_NEXT_RUN = 6
COLUMN_LAST_RUN = 7
_HEADERS = (
    "Enabled",
    "Name",
    "Task",
    "Cron",
    "Description",
    "Zone",
    "Next run",
    "Last run",
)
#: Sort value of a missing time, so rows without one sort after the others.
_NO_TIME = float("inf")


class ScheduleTableModel(KeyedTableModel[ScheduleInfo]):
    """One row per schedule, sorted by name. The first column is its enabled switch.

    Checking or unchecking the switch stores nothing: the model shows the
    switch as partly checked and emits `enabled_change_requested`. The view
    makes the call and reports back with `finish_enabled_change`.

    Signals:
        enabled_change_requested(str, bool): the operator toggled the switch
            of the schedule with this name; the payload is the requested state.
    """

    enabled_change_requested = Signal(str, bool)

    def __init__(
        self,
        clock: Callable[[], float] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC).timestamp())
        #: Names of the schedules whose enable or disable is under way.
        self._pending: set[str] = set()

    def set_schedules(self, schedules: Iterable[ScheduleInfo]) -> None:
        self.replace_rows(schedules)

    def schedule(self, name: str) -> ScheduleInfo | None:
        row = self.row_of(name)
        return None if row is None else self._rows[row]

    def is_pending(self, name: str) -> bool:
        """Return True while an enable or disable of `name` is under way."""
        return name in self._pending

    def finish_enabled_change(self, name: str, info: ScheduleInfo | None) -> None:
        """End the change of `name`: show `info`, or the old state when None."""
        self._pending.discard(name)
        if info is not None and self.replace_row(info):
            return
        row = self.row_of(name)
        if row is not None:
            self.dataChanged.emit(self.index(row, 0), self.index(row, 0))

    def refresh_relative_times(self) -> None:
        """Advance passed next runs locally and repaint the relative times.

        A next run in the past is replaced by the following fire from the
        schedule's own expression, which is pure computation: the feed's next
        poll brings the stored figures.
        """
        now = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        for number, info in enumerate(self._rows):
            if info.enabled and info.next_run is not None and info.next_run <= now:
                self._rows[number] = dataclasses.replace(
                    info, next_run=self._next_fire(info, now)
                )
        self.emit_column_changed(COLUMN_NEXT_RUN)
        self.emit_column_changed(COLUMN_LAST_RUN)

    # --- KeyedTableModel -----------------------------------------------------

    def row_key(self, row: ScheduleInfo) -> Hashable:
        return row.name

    # --- QAbstractTableModel -------------------------------------------------

    def columnCount(self, parent: AnyIndex = ROOT_INDEX) -> int:
        return 0 if parent.isValid() else len(_HEADERS)

    def headerData(
        self,
        section: int,
        orientation: Qt.Orientation,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(_HEADERS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return _HEADERS[section]
        if role == Qt.ItemDataRole.ToolTipRole and section == COLUMN_ENABLED:
            return "Enabled: the schedule fires on its own"
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == COLUMN_ENABLED:
            info = self._rows[index.row()]
            if info.name not in self._pending:
                flags |= Qt.ItemFlag.ItemIsUserCheckable
        return flags

    def setData(
        self, index: AnyIndex, value: Any, role: int = Qt.ItemDataRole.EditRole
    ) -> bool:
        if (
            not index.isValid()
            or index.column() != COLUMN_ENABLED
            or role != Qt.ItemDataRole.CheckStateRole
        ):
            return False
        info = self._rows[index.row()]
        if info.name in self._pending:
            return False
        requested = _check_state(value) == Qt.CheckState.Checked
        if requested == info.enabled:
            return False
        self._pending.add(info.name)
        self.dataChanged.emit(index, index)
        self.enabled_change_requested.emit(info.name, requested)
        return True

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        info = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(info, column)
        if role == Qt.ItemDataRole.CheckStateRole and column == COLUMN_ENABLED:
            if info.name in self._pending:
                return Qt.CheckState.PartiallyChecked
            return Qt.CheckState.Checked if info.enabled else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(info, column)
        if column == COLUMN_LAST_RUN and info.last_status is not None:
            if role == Qt.ItemDataRole.BackgroundRole:
                return QColor(STATUS_COLORS[info.last_status])
            if role == Qt.ItemDataRole.ForegroundRole:
                return QColor("white")
        if role == Qt.ItemDataRole.AccessibleTextRole and column == COLUMN_ENABLED:
            return "enabled" if info.enabled else "disabled"
        if role == SORT_ROLE:
            return self._sort_value(info, column)
        if role == SCHEDULE_ROLE:
            return info
        return None

    # --- cells -----------------------------------------------------------------

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)

    def _display(self, info: ScheduleInfo, column: int) -> str | None:
        if column == COLUMN_NAME:
            return info.name
        if column == COLUMN_TASK:
            return info.task_name
        if column == COLUMN_CRON:
            return info.expression
        if column == COLUMN_DESCRIPTION:
            return info.description
        if column == COLUMN_ZONE:
            return info.timezone
        if column == COLUMN_NEXT_RUN:
            if not info.enabled:
                return "disabled"
            return format_relative(info.next_run, self._now()) or "never"
        if column == COLUMN_LAST_RUN:
            return self._last_run_text(info)
        return None

    def _last_run_text(self, info: ScheduleInfo) -> str:
        if info.last_run is None:
            return "never"
        text = format_relative(info.last_run, self._now())
        if info.last_status is not None:
            text += f" · {status_label(info.last_status)}"
        return text

    def _tooltip(self, info: ScheduleInfo, column: int) -> str | None:
        if column == COLUMN_CRON:
            return f"{info.description} ({info.timezone})"
        if column == COLUMN_NAME and info.approved_by:
            approved = _format_in_zone(info.approved_at) if info.approved_at else ""
            return f"Approved by {info.approved_by} {approved}".strip()
        if column == COLUMN_NEXT_RUN and info.next_run is not None:
            return _format_in_zone(info.next_run)
        if column == COLUMN_LAST_RUN and info.last_run is not None:
            text = _format_in_zone(info.last_run)
            if info.last_task_id:
                text += f", task {info.last_task_id}"
            return text
        if column == COLUMN_ENABLED:
            return "Enabled" if info.enabled else "Disabled"
        return None

    def _sort_value(self, info: ScheduleInfo, column: int) -> Any:
        if column == COLUMN_ENABLED:
            return 1 if info.enabled else 0
        if column == COLUMN_NEXT_RUN:
            if not info.enabled or info.next_run is None:
                return _NO_TIME
            return info.next_run.timestamp()
        if column == COLUMN_LAST_RUN:
            return info.last_run.timestamp() if info.last_run else _NO_TIME
        return self._display(info, column)

    @staticmethod
    def _next_fire(info: ScheduleInfo, now: dt.datetime) -> dt.datetime | None:
        try:
            schedule = cron.validate(info.expression, info.timezone)
        except cron.InvalidScheduleError:
            logger.exception("stored schedule %s no longer validates", info.name)
            return None
        fires = cron.next_fires(schedule, now, 1)
        return fires[0] if fires else None


def _check_state(value: Any) -> Qt.CheckState:
    if isinstance(value, Qt.CheckState):
        return value
    return Qt.CheckState(int(value))


def _format_in_zone(when: dt.datetime) -> str:
    """Format an aware time in its own zone, such as ``2026-12-04 02:00 CET``."""
    return when.strftime("%Y-%m-%d %H:%M %Z")
