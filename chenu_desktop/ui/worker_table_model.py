"""Table model of the workers of every process, from their heartbeats."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QFont, QGuiApplication

from ..models import TaskQueue, TaskStatus, WorkerInfo
from .keyed_table_model import ROOT_INDEX, KeyedTableModel
from .style import (
    QUEUE_ORDER,
    STATUS_COLORS,
    format_relative,
    format_time,
    text_color_on,
)

AnyIndex = QModelIndex | QPersistentModelIndex

#: The `WorkerInfo` of a row.
WORKER_ROLE = Qt.ItemDataRole.UserRole + 1
#: The queue's name, such as ``"default"``, which per-queue proxies filter on.
QUEUE_NAME_ROLE = Qt.ItemDataRole.UserRole + 2
#: True if the worker runs in this process.
IS_LOCAL_ROLE = Qt.ItemDataRole.UserRole + 3
#: A value that sorts the column: numbers and times as numbers.
SORT_ROLE = Qt.ItemDataRole.UserRole + 4

COLUMN_WORKER = 0
COLUMN_HOST = 1
COLUMN_PID = 2
COLUMN_STATE = 3
COLUMN_PROCESS = 4
COLUMN_TASK = 5
COLUMN_SINCE = 6
_HEADERS = ("Worker", "Host", "PID", "State", "Process", "Current task", "Since")

_STATE_COLORS = {
    "busy": STATUS_COLORS[TaskStatus.RUNNING],
    "paused": STATUS_COLORS[TaskStatus.RETRYING],
}


class WorkerTableModel(KeyedTableModel[WorkerInfo]):
    """One row per worker heartbeat, ordered by queue, this process first.

    Args:
        local_run_id: The run id of this process's pool (`WorkerPool.run_id`);
            a worker whose id contains it is marked as this process's.
        clock: Returns the current POSIX time, for the relative "since" column.
    """

    def __init__(
        self,
        local_run_id: str | None = None,
        clock: Callable[[], float] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._local_run_id = local_run_id
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC).timestamp())

    def set_workers(self, workers: Iterable[WorkerInfo]) -> None:
        self.replace_rows(workers)

    def refresh_relative_times(self) -> None:
        """Repaint the "since" column, whose text depends on the current time."""
        self.emit_column_changed(COLUMN_SINCE)

    def is_local(self, worker: WorkerInfo) -> bool:
        """Return True if `worker` runs in this process.

        A worker id is ``host-pid-queue-run_id-index``, and the run id is
        random per pool, so it distinguishes this process's threads from those of
        an earlier run with the same pid.
        """
        if not self._local_run_id:
            return False
        return f"-{self._local_run_id}-" in worker.worker_id

    # --- KeyedTableModel -----------------------------------------------------

    def row_key(self, row: WorkerInfo) -> Hashable:
        return row.worker_id

    def row_order(self, row: WorkerInfo) -> Any:
        queue_rank = QUEUE_ORDER.index(row.queue) if row.queue in QUEUE_ORDER else 99
        return (queue_rank, not self.is_local(row), row.worker_id)

    # --- QAbstractTableModel -------------------------------------------------

    def columnCount(self, parent: AnyIndex = ROOT_INDEX) -> int:
        return 0 if parent.isValid() else len(_HEADERS)

    def headerData(
        self,
        section: int,
        orientation: Qt.Orientation,
        role: int = Qt.ItemDataRole.DisplayRole,
    ) -> Any:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(_HEADERS):
            return _HEADERS[section]
        if orientation == Qt.Orientation.Vertical and 0 <= section < self.rowCount():
            return str(section + 1)
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        worker = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(worker, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(worker, column)
        if role == Qt.ItemDataRole.ForegroundRole and column == COLUMN_STATE:
            color = _STATE_COLORS.get(worker.state)
            if color is None:
                return None
            return text_color_on(color, QGuiApplication.palette().base().color())
        if role == Qt.ItemDataRole.FontRole and self.is_local(worker):
            font = QFont()
            font.setBold(True)
            return font
        if role == SORT_ROLE:
            return self._sort_value(worker, column)
        if role == WORKER_ROLE:
            return worker
        if role == QUEUE_NAME_ROLE:
            return TaskQueue(worker.queue).value
        if role == IS_LOCAL_ROLE:
            return self.is_local(worker)
        return None

    def _display(self, worker: WorkerInfo, column: int) -> str | None:
        if column == COLUMN_WORKER:
            return worker.worker_id
        if column == COLUMN_HOST:
            return worker.host
        if column == COLUMN_PID:
            return str(worker.pid)
        if column == COLUMN_STATE:
            return worker.state
        if column == COLUMN_PROCESS:
            return "this process" if self.is_local(worker) else "other process"
        if column == COLUMN_TASK:
            return worker.current_task or ""
        if column == COLUMN_SINCE:
            now = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
            since = dt.datetime.fromtimestamp(worker.since, dt.UTC)
            return format_relative(since, now)
        return None

    def _tooltip(self, worker: WorkerInfo, column: int) -> str | None:
        if column == COLUMN_SINCE:
            activity = "running its task" if worker.current_task else "idle"
            return f"{activity} since {format_time(worker.since)}"
        if column == COLUMN_PROCESS:
            if self.is_local(worker):
                return "A worker thread of this window's process"
            return f"A worker of process {worker.pid} on {worker.host}"
        if column == COLUMN_WORKER:
            return f"Last heartbeat {format_time(worker.last_beat)}"
        return None

    def _sort_value(self, worker: WorkerInfo, column: int) -> Any:
        if column == COLUMN_WORKER:
            # This process's workers first, as in the model's own order.
            return f"{0 if self.is_local(worker) else 1} {worker.worker_id}"
        if column == COLUMN_PID:
            return worker.pid
        if column == COLUMN_SINCE:
            return worker.since
        if column == COLUMN_PROCESS:
            return 0 if self.is_local(worker) else 1
        return self._display(worker, column)
