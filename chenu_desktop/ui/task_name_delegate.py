"""Mark the task name of governance tasks with a shield icon."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QSize
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QApplication,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
)

AnyIndex = QModelIndex | QPersistentModelIndex

_ICON_SIZE = QSize(16, 16)


def governance_icon() -> QIcon:
    """Return the style's shield icon, or its warning icon where it has no shield."""
    style = QApplication.style()
    icon = style.standardIcon(QStyle.StandardPixmap.SP_VistaShield)
    if icon.isNull():
        icon = style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
    return icon


class TaskNameDelegate(QStyledItemDelegate):
    """A delegate that adds the governance icon to task names where a role is true."""

    def __init__(self, governance_role: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._governance_role = governance_role
        self._icon = governance_icon()

    def initStyleOption(self, option: QStyleOptionViewItem, index: AnyIndex) -> None:
        super().initStyleOption(option, index)
        if index.data(self._governance_role):
            option.features |= QStyleOptionViewItem.ViewItemFeature.HasDecoration
            option.icon = self._icon
            option.decorationSize = _ICON_SIZE
