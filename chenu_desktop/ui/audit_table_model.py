"""Table model of one page of the audit trail, newest entry first."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Hashable, Iterable
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt

from ..audit.store import AuditEntry
from .keyed_table_model import ROOT_INDEX, KeyedTableModel
from .style import format_time

AnyIndex = QModelIndex | QPersistentModelIndex

#: The `AuditEntry` of a row.
ENTRY_ROLE = Qt.ItemDataRole.UserRole + 1

COLUMN_WHEN = 0
COLUMN_OPERATOR = 1
COLUMN_ACTION = 2
COLUMN_TARGET = 3
COLUMN_REASON = 4
COLUMN_DETAILS = 5
_HEADERS = ("When", "Operator", "Action", "Target", "Reason", "Details")


def action_label(action: str) -> str:
    """Return an action as operators read it ("schedule run now")."""
    return action.replace("_", " ")


def details_text(details: dict[str, Any]) -> str:
    """Format outcome details on one line, as ``key=value`` pairs."""
    return ", ".join(
        f"{key}={json.dumps(value, ensure_ascii=False)}"
        for key, value in details.items()
    )


class AuditTableModel(KeyedTableModel[AuditEntry]):
    """One row per audit entry of the page shown, the newest at the top."""

    def set_entries(self, entries: Iterable[AuditEntry]) -> None:
        self.replace_rows(entries)

    def entry(self, row: int) -> AuditEntry:
        return self._rows[row]

    # --- KeyedTableModel -----------------------------------------------------

    def row_key(self, row: AuditEntry) -> Hashable:
        return row.entry_id

    def row_order(self, row: AuditEntry) -> Any:
        return -row.entry_id

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
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        entry = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(entry, column)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(entry, column)
        if role == ENTRY_ROLE:
            return entry
        return None

    def _display(self, entry: AuditEntry, column: int) -> str | None:
        if column == COLUMN_WHEN:
            return format_time(entry.at)
        if column == COLUMN_OPERATOR:
            return entry.operator
        if column == COLUMN_ACTION:
            return action_label(entry.action)
        if column == COLUMN_TARGET:
            return f"{entry.target_kind} {entry.target}"
        if column == COLUMN_REASON:
            return entry.reason or ""
        if column == COLUMN_DETAILS:
            return details_text(entry.details)
        return None

    @staticmethod
    def _tooltip(entry: AuditEntry, column: int) -> str | None:
        if column == COLUMN_WHEN:
            moment = dt.datetime.fromtimestamp(entry.at).astimezone()
            return (
                f"{moment.isoformat(timespec='milliseconds')} (entry {entry.entry_id})"
            )
        if column == COLUMN_DETAILS and entry.details:
            return json.dumps(entry.details, ensure_ascii=False, indent=2)
        if column == COLUMN_REASON and entry.reason:
            return entry.reason
        return None
