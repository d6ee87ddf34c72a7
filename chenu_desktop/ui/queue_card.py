"""One queue's summary card: counts, recent rates, latency and its workers."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..models import QueueStats, TaskQueue, TaskStatus
from .sparkline import ThroughputChart
from .style import (
    GOVERNANCE_ACCENT,
    GOVERNANCE_TINT,
    STATUS_COLORS,
    format_duration,
    text_color_on,
)

#: Shown in place of a figure before the first stats arrive, or when it has none.
NO_VALUE = "–"

#: Counts shown large in the card's top row: object-name key, caption.
_COUNTS: tuple[tuple[str, str], ...] = (
    ("pending", "pending"),
    ("scheduled", "scheduled"),
    ("running", "running"),
)
#: Figures listed below the counts: object-name key, caption.
_FIGURES: tuple[tuple[str, str], ...] = (
    ("succeeded", "Succeeded, last hour"),
    ("failed", "Failed, last hour"),
    ("mean_duration", "Mean duration"),
    ("oldest_waiting", "Oldest waiting"),
    ("workers", "Workers busy"),
)

_KEYS_THAT_CLICK = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space)


def shield_pixmap(size: int, color: QColor) -> QPixmap:
    """Paint the governance mark: a filled shield with a check, `size` px square."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    side = float(size)
    path = QPainterPath(QPointF(side * 0.5, side * 0.05))
    path.lineTo(side * 0.9, side * 0.2)
    path.cubicTo(
        side * 0.9, side * 0.6, side * 0.7, side * 0.82, side * 0.5, side * 0.95
    )
    path.cubicTo(
        side * 0.3, side * 0.82, side * 0.1, side * 0.6, side * 0.1, side * 0.2
    )
    path.closeSubpath()
    painter.fillPath(path, color)
    painter.setPen(QPen(QColor("white"), max(1.5, side / 9)))
    painter.drawPolyline(
        [
            QPointF(side * 0.32, side * 0.5),
            QPointF(side * 0.46, side * 0.64),
            QPointF(side * 0.7, side * 0.36),
        ]
    )
    painter.end()
    return pixmap


class QueueCard(QWidget):
    """A focusable card with one queue's figures, clicked by mouse, Enter or Space.

    Signals:
        clicked(object): the card was clicked or activated from the keyboard;
            the payload is its `TaskQueue`.
    """

    clicked = Signal(object)

    def __init__(self, queue: TaskQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.queue = TaskQueue(queue)
        self._selected = False
        self._paused = False
        self._stats: QueueStats | None = None
        self._figures: dict[str, QLabel] = {}
        self._title = self.queue.value.capitalize()

        self.setObjectName(f"queue_card_{self.queue.value}")
        self.setAccessibleName(f"{self._title} queue")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self._build()
        self._update_description()

    @property
    def is_governance(self) -> bool:
        return self.queue is TaskQueue.GOVERNANCE

    def stats(self) -> QueueStats | None:
        return self._stats

    def is_selected(self) -> bool:
        return self._selected

    def set_selected(self, selected: bool) -> None:
        if selected == self._selected:
            return
        self._selected = selected
        self._update_description()
        self.update()

    def is_paused(self) -> bool:
        return self._paused

    def figure_text(self, key: str) -> str:
        """Return the text shown for a figure, such as ``"pending"`` or ``"workers"``."""
        return self._figures[key].text()

    def chart(self) -> ThroughputChart:
        return self._chart

    # --- building ----------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.setSpacing(6)
        layout.addLayout(self._build_header())
        layout.addLayout(self._build_counts())
        layout.addLayout(self._build_figures())

        self._chart = ThroughputChart(self)
        self._chart.setObjectName(f"throughput_chart_{self.queue.value}")
        self._chart.setAccessibleName(f"{self._title} queue throughput")
        if self.is_governance:
            self._chart.set_bar_color(GOVERNANCE_ACCENT)
        layout.addWidget(self._chart)

        self._throughput_label = QLabel(NO_VALUE, self)
        self._throughput_label.setObjectName("throughput_value")
        self._throughput_label.setToolTip(
            "Tasks finished (succeeded or failed) per minute. The hollow last bar "
            "is the current minute, still counting."
        )
        small = self._throughput_label.font()
        small.setPointSizeF(small.pointSizeF() * 0.9)
        self._throughput_label.setFont(small)
        layout.addWidget(self._throughput_label)

    def _build_header(self) -> QHBoxLayout:
        header = QHBoxLayout()
        header.setSpacing(6)
        if self.is_governance:
            icon = QLabel(self)
            icon.setObjectName("governance_icon")
            icon.setPixmap(shield_pixmap(18, GOVERNANCE_ACCENT))
            icon.setToolTip("Governance queue: its tasks need an operator's approval")
            icon.setAccessibleName("Governance")
            header.addWidget(icon)

        title = QLabel(self._title, self)
        title.setObjectName("queue_title")
        font = title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        title.setFont(font)
        header.addWidget(title)
        header.addStretch(1)

        self._paused_badge = QLabel("PAUSED", self)
        self._paused_badge.setObjectName("paused_badge")
        self._paused_badge.setToolTip(
            "No worker of any process takes work from this queue"
        )
        self._paused_badge.setStyleSheet(
            "QLabel { background: #c05621; color: white; border-radius: 3px;"
            " padding: 1px 5px; font-weight: bold; }"
        )
        self._paused_badge.setVisible(False)
        header.addWidget(self._paused_badge)
        return header

    def _build_counts(self) -> QGridLayout:
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(0)
        number_font = QFont(self.font())
        number_font.setBold(True)
        number_font.setPointSizeF(number_font.pointSizeF() * 1.5)
        counts = _COUNTS
        if self.is_governance:
            # Governance work waits for a person first, so that count leads.
            counts = (("awaiting", "awaiting"), *_COUNTS)
        for column, (key, caption_text) in enumerate(counts):
            value = self._figure_label(key, number_font)
            value.setAlignment(
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom
            )
            caption = QLabel(caption_text, self)
            caption.setFont(self._caption_font())
            caption.setBuddy(value)
            grid.addWidget(value, 0, column)
            grid.addWidget(caption, 1, column)
        grid.setColumnStretch(len(counts), 1)
        return grid

    def _build_figures(self) -> QGridLayout:
        grid = QGridLayout()
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(1)
        value_font = QFont(self.font())
        value_font.setBold(True)
        for row, (key, caption_text) in enumerate(_FIGURES):
            value = self._figure_label(key, value_font)
            value.setAlignment(
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
            )
            caption = QLabel(caption_text, self)
            caption.setFont(self._caption_font())
            caption.setBuddy(value)
            grid.addWidget(caption, row, 0)
            grid.addWidget(value, row, 1)
        grid.setColumnStretch(0, 1)
        return grid

    def _figure_label(self, key: str, font: QFont) -> QLabel:
        label = QLabel(NO_VALUE, self)
        label.setObjectName(f"{key}_value")
        label.setFont(font)
        self._figures[key] = label
        return label

    def _caption_font(self) -> QFont:
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() * 0.9)
        return font

    # --- figures -----------------------------------------------------------

    def update_stats(self, stats: QueueStats) -> None:
        """Show the figures of `stats` (which must be of this card's queue)."""
        self._stats = stats
        figures = self._figures
        figures["pending"].setText(str(stats.pending))
        figures["running"].setText(str(stats.running))
        figures["scheduled"].setText(str(stats.scheduled))
        if "awaiting" in figures:
            figures["awaiting"].setText(str(stats.count(TaskStatus.AWAITING_APPROVAL)))
        figures["workers"].setText(f"{stats.workers_busy}/{stats.workers_total}")
        figures["succeeded"].setText(str(stats.succeeded_last_hour))
        figures["failed"].setText(str(stats.failed_last_hour))
        figures["mean_duration"].setText(
            format_duration(stats.mean_duration) or NO_VALUE
        )
        figures["oldest_waiting"].setText(
            format_duration(stats.oldest_waiting_age) or NO_VALUE
        )
        failed_color = text_color_on(
            STATUS_COLORS[TaskStatus.FAILURE], self.palette().base().color()
        ).name()
        figures["failed"].setStyleSheet(
            f"color: {failed_color};" if stats.failed_last_hour else ""
        )

        per_minute = list(stats.throughput_per_minute)
        self._chart.set_values(per_minute)
        if per_minute:
            full = per_minute[:-1]
            self._throughput_label.setText(
                f"{sum(full)} in {len(full)} min · this minute so far: {per_minute[-1]}"
            )
        else:
            self._throughput_label.setText(NO_VALUE)

        self._paused = stats.paused
        self._paused_badge.setVisible(stats.paused)
        self._update_description()
        self.update()

    def _update_description(self) -> None:
        parts = []
        if self.is_governance:
            parts.append("Governance queue")
        if self._selected:
            parts.append("selected")
        if self._paused:
            parts.append("paused")
        stats = self._stats
        if stats is not None:
            parts.append(
                f"{stats.pending} pending, {stats.scheduled} scheduled, "
                f"{stats.running} running, {stats.failed_last_hour} failed and "
                f"{stats.succeeded_last_hour} succeeded in the last hour, "
                f"{stats.workers_busy} of {stats.workers_total} workers busy"
            )
        self.setAccessibleDescription(", ".join(parts))
        self.setToolTip(f"{self._title} queue: click to show only its tasks")

    # --- painting and input ------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        background = palette.base().color()
        border = palette.mid().color()
        border_width = 1.0
        if self.is_governance:
            border = GOVERNANCE_ACCENT
            border_width = 2.0
        if self._selected:
            border = palette.highlight().color()
            border_width = 3.0

        frame = QRectF(self.rect()).adjusted(
            border_width / 2, border_width / 2, -border_width / 2, -border_width / 2
        )
        path = QPainterPath()
        path.addRoundedRect(frame, 6, 6)
        painter.fillPath(path, background)
        if self.is_governance:
            painter.fillPath(path, GOVERNANCE_TINT)
            # A solid stripe down the left edge marks governance even when selected.
            stripe = QRectF(frame.left(), frame.top() + 6, 4, frame.height() - 12)
            painter.fillRect(stripe, GOVERNANCE_ACCENT)
        painter.setPen(QPen(border, border_width))
        painter.drawPath(path)

        if self.hasFocus():
            focus = QPen(palette.highlight().color(), 1, Qt.PenStyle.DashLine)
            painter.setPen(focus)
            painter.drawRoundedRect(frame.adjusted(4, 4, -4, -4), 4, 4)
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        # Accepting the press makes this card receive the release.
        if event.button() == Qt.MouseButton.LeftButton:
            self.setFocus(Qt.FocusReason.MouseFocusReason)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        inside = self.rect().contains(event.position().toPoint())
        if event.button() == Qt.MouseButton.LeftButton and inside:
            self.clicked.emit(self.queue)
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in _KEYS_THAT_CLICK and not event.isAutoRepeat():
            self.clicked.emit(self.queue)
            event.accept()
            return
        super().keyPressEvent(event)
