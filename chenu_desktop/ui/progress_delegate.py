"""Paint a task's progress as a progress bar inside its cell."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
)

AnyIndex = QModelIndex | QPersistentModelIndex

#: Steps of the drawn bar, so a fraction shows to a tenth of a percent.
_STEPS = 1000
_INSET = 3


class ProgressDelegate(QStyledItemDelegate):
    """A delegate that draws the fraction (0 to 1) in a role as a progress bar.

    The bar shows the percentage. Cells whose role contains None (no progress
    reported) are drawn as usual.
    """

    def __init__(self, progress_role: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._progress_role = progress_role

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex
    ) -> None:
        fraction = index.data(self._progress_role)
        if not isinstance(fraction, (int, float)):
            super().paint(painter, option, index)
            return
        item = QStyleOptionViewItem(option)
        self.initStyleOption(item, index)
        item.text = ""
        widget = item.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, item, painter, widget)

        fraction = min(1.0, max(0.0, float(fraction)))
        bar = QStyleOptionProgressBar()
        bar.rect = item.rect.adjusted(_INSET, _INSET, -_INSET, -_INSET)
        bar.state = item.state | QStyle.StateFlag.State_Horizontal
        bar.palette = item.palette
        bar.fontMetrics = item.fontMetrics
        bar.direction = item.direction
        bar.minimum = 0
        bar.maximum = _STEPS
        bar.progress = round(fraction * _STEPS)
        bar.text = f"{fraction:.0%}"
        bar.textVisible = True
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, widget)
