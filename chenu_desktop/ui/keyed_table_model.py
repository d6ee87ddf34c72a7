"""A table model base whose rows carry a unique key and are updated in place."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, Generic, TypeVar

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
)

Row = TypeVar("Row")
AnyIndex = QModelIndex | QPersistentModelIndex
#: The invalid index, the parent of every row of a table.
ROOT_INDEX = QModelIndex()


class KeyedTableModel(QAbstractTableModel, Generic[Row]):
    """Rows in a fixed order, each with a unique key. Subclasses add the columns.

    `replace_rows` turns a fresh list into row removals, insertions and
    `dataChanged` for the rows whose value changed, so views keep their
    selection and scroll position across the feed's periodic updates.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Row] = []

    # --- for subclasses ------------------------------------------------------

    def row_key(self, row: Row) -> Hashable:
        """Return the key that identifies `row` across updates."""
        raise NotImplementedError

    def row_order(self, row: Row) -> Any:
        """Return the sort key of `row`, which must stay the same while its key does."""
        return self.row_key(row)

    # --- rows ------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = ROOT_INDEX) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def rows(self) -> list[Row]:
        return list(self._rows)

    def row_value(self, row: int) -> Row:
        return self._rows[row]

    def row_of(self, key: Hashable) -> int | None:
        """Return the row number of the row with `key`, or None if it has none."""
        for number, row in enumerate(self._rows):
            if self.row_key(row) == key:
                return number
        return None

    def replace_rows(self, rows: Iterable[Row]) -> None:
        """Show `rows`, given in any order. Of rows with the same key, the last wins."""
        unique = {self.row_key(row): row for row in rows}
        new_rows = sorted(unique.values(), key=self.row_order)
        for number in reversed(range(len(self._rows))):
            if self.row_key(self._rows[number]) not in unique:
                self.beginRemoveRows(QModelIndex(), number, number)
                del self._rows[number]
                self.endRemoveRows()

        kept_keys = [self.row_key(row) for row in self._rows]
        kept_key_set = set(kept_keys)
        new_keys = [self.row_key(row) for row in new_rows]
        if kept_keys != [key for key in new_keys if key in kept_key_set]:
            # A kept row moved, which the merge below cannot express.
            self.beginResetModel()
            self._rows = new_rows
            self.endResetModel()
            return

        for number, row in enumerate(new_rows):
            same_key = (
                number < len(self._rows)
                and self.row_key(self._rows[number]) == new_keys[number]
            )
            if not same_key:
                self.beginInsertRows(QModelIndex(), number, number)
                self._rows.insert(number, row)
                self.endInsertRows()
            elif self._rows[number] != row:
                self._rows[number] = row
                self.dataChanged.emit(
                    self.index(number, 0), self.index(number, self.columnCount() - 1)
                )

    def replace_row(self, row: Row) -> bool:
        """Update the row with the key of `row`; return False if there is none."""
        number = self.row_of(self.row_key(row))
        if number is None:
            return False
        self._rows[number] = row
        self.dataChanged.emit(
            self.index(number, 0), self.index(number, self.columnCount() - 1)
        )
        return True

    def emit_column_changed(self, column: int) -> None:
        """Tell views that every cell of `column` may show new text."""
        if self._rows:
            last = len(self._rows) - 1
            self.dataChanged.emit(self.index(0, column), self.index(last, column))
