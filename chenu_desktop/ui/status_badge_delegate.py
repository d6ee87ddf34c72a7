"""Paint a task status as a coloured pill with its label."""

from __future__ import annotations

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QRectF,
    QSize,
    Qt,
)
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
)

from ..models import TaskStatus
from .style import STATUS_COLORS, status_label

AnyIndex = QModelIndex | QPersistentModelIndex

_PADDING_X = 8
_PADDING_Y = 2
_MARGIN = 4
_TEXT_COLOR = QColor("white")
_STATUS_VALUES = frozenset(status.value for status in TaskStatus)


def _status_of(value: object) -> TaskStatus | None:
    """Return the status a role holds; Qt hands str enums over as plain strings."""
    if isinstance(value, str) and value in _STATUS_VALUES:
        return TaskStatus(value)
    return None


class StatusBadgeDelegate(QStyledItemDelegate):
    """A delegate that draws the `TaskStatus` in a role as a pill in its colour.

    Cells whose role contains no status (rows still loading) are drawn as usual.
    The display text after the label, such as "(cancel requested)", is drawn
    beside the pill.
    """

    def __init__(self, status_role: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._status_role = status_role

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: AnyIndex
    ) -> None:
        status = _status_of(index.data(self._status_role))
        if status is None:
            super().paint(painter, option, index)
            return
        item = QStyleOptionViewItem(option)
        self.initStyleOption(item, index)
        label = status_label(status)
        suffix = (item.text or "")[len(label) :].strip()
        item.text = ""
        widget = item.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, item, painter, widget)

        metrics = item.fontMetrics
        height = min(metrics.height() + 2 * _PADDING_Y, item.rect.height() - 2)
        width = metrics.horizontalAdvance(label) + 2 * _PADDING_X
        top = item.rect.top() + (item.rect.height() - height) / 2
        pill = QRectF(item.rect.left() + _MARGIN, top, width, height)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(STATUS_COLORS.get(status, QColor("gray")))
        painter.drawRoundedRect(pill, height / 2, height / 2)
        painter.setPen(_TEXT_COLOR)
        painter.setFont(item.font)
        painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, label)
        if suffix:
            rest = QRect(item.rect)
            rest.setLeft(int(pill.right()) + _MARGIN)
            selected = bool(item.state & QStyle.StateFlag.State_Selected)
            role = (
                item.palette.ColorRole.HighlightedText
                if selected
                else (item.palette.ColorRole.Text)
            )
            painter.setPen(item.palette.color(role))
            elided = metrics.elidedText(
                suffix, Qt.TextElideMode.ElideRight, rest.width()
            )
            painter.drawText(rest, Qt.AlignmentFlag.AlignVCenter, elided)
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: AnyIndex) -> QSize:
        hint = super().sizeHint(option, index)
        if _status_of(index.data(self._status_role)) is None:
            return hint
        width = option.fontMetrics.horizontalAdvance(str(index.data()))
        return QSize(
            max(hint.width(), width + 2 * (_PADDING_X + _MARGIN)), hint.height()
        )
