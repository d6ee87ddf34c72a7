"""The strip of queue cards across the top of the window."""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QWidget

from ..models import QueueStats, TaskQueue
from .queue_card import QueueCard
from .style import QUEUE_ORDER


class QueueCardStrip(QWidget):
    """One `QueueCard` per queue in `QUEUE_ORDER`, governance first and set apart.

    At most one card is selected. Clicking a card selects it, and clicking the
    selected card again clears the selection.

    Signals:
        queue_clicked(object): a card was clicked; the payload is its
            `TaskQueue`, or None when the click cleared the selection.
    """

    queue_clicked = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("queue_card_strip")
        self.setAccessibleName("Queues")
        self._selected: TaskQueue | None = None
        self._cards: dict[TaskQueue, QueueCard] = {}

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        for queue in QUEUE_ORDER:
            card = QueueCard(queue, self)
            card.clicked.connect(self._on_card_clicked)
            card.installEventFilter(self)
            self._cards[queue] = card
            layout.addWidget(card, 1)
            if queue is TaskQueue.GOVERNANCE:
                layout.addSpacing(4)
                layout.addWidget(self._separator())
                layout.addSpacing(4)

    def card(self, queue: TaskQueue) -> QueueCard:
        return self._cards[TaskQueue(queue)]

    def cards(self) -> list[QueueCard]:
        """Return the cards in display order."""
        return [self._cards[queue] for queue in QUEUE_ORDER]

    def selected_queue(self) -> TaskQueue | None:
        return self._selected

    def set_selected_queue(self, queue: TaskQueue | None) -> None:
        """Select the card of `queue`, or no card for None, without emitting a signal."""
        self._selected = TaskQueue(queue) if queue is not None else None
        for card_queue, card in self._cards.items():
            card.set_selected(card_queue is self._selected)

    def update_stats(self, stats: Mapping[TaskQueue, QueueStats]) -> None:
        """Show new figures. Cards of queues missing from `stats` keep theirs."""
        for queue, figures in stats.items():
            card = self._cards.get(TaskQueue(queue))
            if card is not None:
                card.update_stats(figures)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # Left and Right move the focus along the strip and stop at its ends.
        if event.type() == QEvent.Type.KeyPress and isinstance(watched, QueueCard):
            key = event.key()  # type: ignore[attr-defined]
            if key in (Qt.Key.Key_Left, Qt.Key.Key_Right):
                order = self.cards()
                step = 1 if key == Qt.Key.Key_Right else -1
                target = order.index(watched) + step
                if 0 <= target < len(order):
                    order[target].setFocus(Qt.FocusReason.TabFocusReason)
                return True
        return super().eventFilter(watched, event)

    def _on_card_clicked(self, queue: TaskQueue) -> None:
        target = None if queue is self._selected else queue
        self.set_selected_queue(target)
        self.queue_clicked.emit(target)

    def _separator(self) -> QFrame:
        line = QFrame(self)
        line.setFrameShape(QFrame.Shape.VLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        return line
