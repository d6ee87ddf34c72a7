"""A small bar chart of tasks finished per minute, painted by hand."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget


class ThroughputChart(QWidget):
    """Bars of the tasks finished in each of the last minutes, oldest first.

    The last value is the current minute, which is still counting, so its bar
    is drawn hollow: a short last bar does not mean the queue slowed down.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._values: list[int] = []
        self._bar_color = QColor("#2b6cb0")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setAccessibleName("Throughput chart")

    def values(self) -> list[int]:
        return list(self._values)

    def set_values(self, values: Sequence[int]) -> None:
        """Show `values` (tasks per minute, oldest first, the last one partial)."""
        self._values = [max(0, int(value)) for value in values]
        self._update_description()
        self.update()

    def set_bar_color(self, color: QColor) -> None:
        self._bar_color = QColor(color)
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(120, 32)

    def minimumSizeHint(self) -> QSize:
        return QSize(60, 24)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        area = QRectF(self.rect()).adjusted(1, 1, -1, -1)

        baseline = QPen(self.palette().mid().color())
        painter.setPen(baseline)
        painter.drawLine(area.bottomLeft(), area.bottomRight())
        if not self._values:
            painter.end()
            return

        peak = max(max(self._values), 1)
        slot = area.width() / len(self._values)
        gap = min(2.0, slot / 4)
        for index, value in enumerate(self._values):
            # Every minute with work gets at least 2 px, so a 1 is visible next to 500.
            height = 0.0 if value == 0 else max(2.0, area.height() * value / peak)
            bar = QRectF(
                area.left() + index * slot + gap / 2,
                area.bottom() - height,
                slot - gap,
                height,
            )
            if index == len(self._values) - 1:
                self._paint_partial_bar(painter, bar)
            else:
                painter.fillRect(bar, self._bar_color)
        painter.end()

    def _paint_partial_bar(self, painter: QPainter, bar: QRectF) -> None:
        fill = QColor(self._bar_color)
        fill.setAlpha(70)
        painter.fillRect(bar, QBrush(fill, Qt.BrushStyle.SolidPattern))
        painter.setPen(QPen(self._bar_color, 1, Qt.PenStyle.DashLine))
        painter.drawRect(bar)

    def _update_description(self) -> None:
        if not self._values:
            self.setToolTip("")
            self.setAccessibleDescription("No throughput figures yet")
            return
        finished = self._values[:-1]
        text = (
            f"Tasks finished per minute over the last {len(finished)} full minutes: "
            f"{', '.join(str(n) for n in finished)}. "
            f"The current minute, still counting: {self._values[-1]} "
            "(the hollow bar)."
        )
        self.setToolTip(text)
        self.setAccessibleDescription(text)
