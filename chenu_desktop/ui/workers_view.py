"""The worker pool view: workers per queue, pool size and pause per queue."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from PySide6.QtCore import QRegularExpression, QSortFilterProxyModel, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ..config import MAX_WORKERS_PER_QUEUE
from ..models import QueueStats, TaskQueue, WorkerInfo
from .queue_card import shield_pixmap
from .style import GOVERNANCE_ACCENT, QUEUE_ORDER
from .worker_table_model import (
    COLUMN_SINCE,
    COLUMN_WORKER,
    QUEUE_NAME_ROLE,
    SORT_ROLE,
    WorkerTableModel,
)

if TYPE_CHECKING:
    from ..engine import Engine
    from .background import BackgroundRunner

logger = logging.getLogger("chenu.ui")

#: How long the pool size waits after the last spin box change before it applies.
RESIZE_DELAY_MS = 400
#: How often the relative "since" times are repainted (no storage calls).
RELATIVE_TIME_REFRESH_MS = 2000


class WorkerPoolView(QWidget):
    """Workers of every process grouped by queue, with this process's controls.

    Each queue's section lists the workers from the feed's heartbeats (this
    process's in bold), a spin box that resizes this process's pool for the
    queue and a button that pauses or resumes the queue in every process.

    Signals:
        message_requested(str): an action failed; the payload is the message
            for the window to show.
    """

    message_requested = Signal(str)

    def __init__(
        self,
        engine: Engine,
        runner: BackgroundRunner,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("worker_pool_view")
        self.setAccessibleName("Worker pool")
        self._engine = engine
        self._runner = runner
        self._model = WorkerTableModel(engine.pool.run_id, engine.clock, self)
        self._spin_boxes: dict[TaskQueue, QSpinBox] = {}
        self._pause_buttons: dict[TaskQueue, QPushButton] = {}
        self._paused_badges: dict[TaskQueue, QLabel] = {}
        self._summaries: dict[TaskQueue, QLabel] = {}
        self._tables: dict[TaskQueue, QTableView] = {}
        self._resize_timers: dict[TaskQueue, QTimer] = {}
        self._resizing: set[TaskQueue] = set()
        self._pausing: set[TaskQueue] = set()
        self._paused: dict[TaskQueue, bool] = {}

        self._build()
        self._time_timer = QTimer(self)
        self._time_timer.setInterval(RELATIVE_TIME_REFRESH_MS)
        self._time_timer.timeout.connect(self._model.refresh_relative_times)
        self._time_timer.start()
        self._load_paused_queues()

    # --- public API ------------------------------------------------------------

    def model(self) -> WorkerTableModel:
        return self._model

    def table(self, queue: TaskQueue) -> QTableView:
        return self._tables[TaskQueue(queue)]

    def size_spin_box(self, queue: TaskQueue) -> QSpinBox:
        return self._spin_boxes[TaskQueue(queue)]

    def pause_button(self, queue: TaskQueue) -> QPushButton:
        return self._pause_buttons[TaskQueue(queue)]

    def is_paused(self, queue: TaskQueue) -> bool:
        """Return the paused state shown for `queue` (False until it is known)."""
        return self._paused.get(TaskQueue(queue), False)

    def update_workers(self, workers: list[WorkerInfo]) -> None:
        """Show the workers of every process, as the feed's heartbeats list them."""
        self._model.set_workers(workers)
        self.refresh_pool_sizes()
        for queue in QUEUE_ORDER:
            self._update_summary(queue, [w for w in workers if w.queue is queue])
            self._fit_table_height(self._tables[queue])

    def update_stats(self, stats: Mapping[TaskQueue, QueueStats]) -> None:
        """Show the paused state of each queue from the feed's figures."""
        for queue, figures in stats.items():
            queue = TaskQueue(queue)
            if queue in self._pause_buttons and queue not in self._pausing:
                self._show_paused(queue, figures.paused)

    def refresh_pool_sizes(self) -> None:
        """Show this process's pool sizes again, unless an edit is pending."""
        sizes = self._engine.pool.sizes()
        for queue in self._spin_boxes:
            pending = self._resize_timers[queue].isActive() or queue in self._resizing
            if not pending:
                self._set_spin_value(queue, sizes.get(queue, 0))

    # --- building --------------------------------------------------------------

    def _build(self) -> None:
        content = QWidget(self)
        sections = QVBoxLayout(content)
        sizes = self._engine.pool.sizes()
        for queue in QUEUE_ORDER:
            sections.addWidget(self._build_section(queue, sizes.get(queue, 0)))
        sections.addStretch(1)

        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(content)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)

    def _build_section(self, queue: TaskQueue, size: int) -> QGroupBox:
        title = queue.value.capitalize()
        box = QGroupBox(f"{title} queue", self)
        box.setObjectName(f"workers_section_{queue.value}")
        box.setAccessibleName(f"{title} queue workers")
        layout = QVBoxLayout(box)
        layout.addLayout(self._build_controls(queue, title, size))
        layout.addWidget(self._build_table(queue, title))
        return box

    def _build_controls(self, queue: TaskQueue, title: str, size: int) -> QHBoxLayout:
        row = QHBoxLayout()
        if queue is TaskQueue.GOVERNANCE:
            icon = QLabel(self)
            icon.setPixmap(shield_pixmap(16, GOVERNANCE_ACCENT))
            icon.setToolTip("Governance queue: its tasks need an operator's approval")
            row.addWidget(icon)

        summary = QLabel("No workers", self)
        summary.setObjectName(f"workers_summary_{queue.value}")
        self._summaries[queue] = summary
        row.addWidget(summary)
        row.addStretch(1)

        badge = QLabel("PAUSED", self)
        badge.setObjectName(f"paused_badge_{queue.value}")
        badge.setStyleSheet(
            "QLabel { background: #c05621; color: white; border-radius: 3px;"
            " padding: 1px 5px; font-weight: bold; }"
        )
        badge.setVisible(False)
        self._paused_badges[queue] = badge
        row.addWidget(badge)

        spin = QSpinBox(self)
        spin.setObjectName(f"pool_size_{queue.value}")
        spin.setAccessibleName(f"Workers of the {title} queue in this process")
        spin.setToolTip(
            "Worker threads of this process for the queue. Other processes keep "
            "their own pools. A shrink lets running tasks finish first."
        )
        spin.setRange(0, MAX_WORKERS_PER_QUEUE)
        spin.setValue(size)
        spin.setKeyboardTracking(False)
        spin.valueChanged.connect(
            lambda _value, q=queue: self._on_spin_value_changed(q)
        )
        spin.editingFinished.connect(lambda q=queue: self._on_spin_editing_finished(q))
        self._spin_boxes[queue] = spin
        label = QLabel("Workers here:", self)
        label.setBuddy(spin)
        row.addWidget(label)
        row.addWidget(spin)

        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(RESIZE_DELAY_MS)
        timer.timeout.connect(lambda q=queue: self._apply_size(q))
        self._resize_timers[queue] = timer

        button = QPushButton("Pause", self)
        button.setObjectName(f"pause_button_{queue.value}")
        button.setAccessibleName(f"Pause the {title} queue")
        button.setCheckable(True)
        button.setToolTip(
            "Pause: no worker of any process takes new work from this queue; "
            "running tasks finish and submits still go in. Resume takes work again."
        )
        button.clicked.connect(
            lambda checked, q=queue: self._on_pause_clicked(q, checked)
        )
        self._pause_buttons[queue] = button
        row.addWidget(button)
        return row

    def _build_table(self, queue: TaskQueue, title: str) -> QTableView:
        proxy = QSortFilterProxyModel(self)
        proxy.setSourceModel(self._model)
        proxy.setFilterRole(QUEUE_NAME_ROLE)
        proxy.setFilterKeyColumn(COLUMN_WORKER)
        proxy.setFilterRegularExpression(
            QRegularExpression(f"^{re.escape(queue.value)}$")
        )
        proxy.setSortRole(SORT_ROLE)

        table = QTableView(self)
        table.setObjectName(f"workers_table_{queue.value}")
        table.setAccessibleName(f"Workers of the {title} queue")
        table.setModel(proxy)
        table.setSortingEnabled(True)
        table.sortByColumn(COLUMN_WORKER, Qt.SortOrder.AscendingOrder)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setAlternatingRowColors(True)
        table.verticalHeader().setVisible(False)
        table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COLUMN_SINCE, QHeaderView.ResizeMode.Stretch)
        self._tables[queue] = table
        self._fit_table_height(table)
        return table

    def _fit_table_height(self, table: QTableView) -> None:
        # The sections scroll together, so each table is as tall as its rows.
        rows = max(1, table.model().rowCount())
        row_height = table.verticalHeader().defaultSectionSize()
        height = table.horizontalHeader().sizeHint().height() + rows * row_height
        table.setFixedHeight(height + 2 * table.frameWidth() + 2)

    # --- pool size -------------------------------------------------------------

    def _on_spin_value_changed(self, queue: TaskQueue) -> None:
        self._resize_timers[queue].start()

    def _on_spin_editing_finished(self, queue: TaskQueue) -> None:
        if self._resize_timers[queue].isActive():
            self._resize_timers[queue].stop()
            self._apply_size(queue)

    def _apply_size(self, queue: TaskQueue) -> None:
        if queue in self._resizing:
            return  # `_on_resize_done` applies the newest value after this call.
        size = self._spin_boxes[queue].value()
        if size == self._engine.pool.sizes().get(queue):
            return
        self._resizing.add(queue)
        self._runner.run(
            self._engine.pool.resize,
            queue,
            size,
            on_result=lambda _value: self._on_resize_done(queue),
            on_error=lambda message: self._on_resize_failed(queue, size, message),
        )

    def _on_resize_done(self, queue: TaskQueue) -> None:
        self._resizing.discard(queue)
        if self._spin_boxes[queue].value() != self._engine.pool.sizes().get(queue):
            self._apply_size(queue)

    def _on_resize_failed(self, queue: TaskQueue, size: int, message: str) -> None:
        self._resizing.discard(queue)
        self._set_spin_value(queue, self._engine.pool.sizes().get(queue, 0))
        logger.warning(
            "resizing queue %s to %d workers failed: %s", queue, size, message
        )
        self.message_requested.emit(
            f"Resizing the {queue.value} queue to {size} workers failed: {message}"
        )

    def _set_spin_value(self, queue: TaskQueue, size: int) -> None:
        spin = self._spin_boxes[queue]
        spin.blockSignals(True)
        spin.setValue(size)
        spin.blockSignals(False)

    # --- pause -----------------------------------------------------------------

    def _load_paused_queues(self) -> None:
        self._runner.run(
            self._engine.ledger.paused_queues,
            on_result=self._on_paused_queues_loaded,
            on_error=lambda message: self.message_requested.emit(
                f"Reading which queues are paused failed: {message}"
            ),
        )

    def _on_paused_queues_loaded(self, paused: set[TaskQueue]) -> None:
        for queue in QUEUE_ORDER:
            if queue not in self._pausing:
                self._show_paused(queue, queue in paused)

    def _on_pause_clicked(self, queue: TaskQueue, checked: bool) -> None:
        pool = self._engine.pool
        action = pool.pause if checked else pool.resume
        self._pausing.add(queue)
        self._pause_buttons[queue].setEnabled(False)
        self._runner.run(
            action,
            queue,
            on_result=lambda _value: self._on_pause_done(queue, checked),
            on_error=lambda message: self._on_pause_failed(queue, checked, message),
        )

    def _on_pause_done(self, queue: TaskQueue, paused: bool) -> None:
        self._pausing.discard(queue)
        self._pause_buttons[queue].setEnabled(True)
        self._show_paused(queue, paused)

    def _on_pause_failed(self, queue: TaskQueue, paused: bool, message: str) -> None:
        self._pausing.discard(queue)
        self._pause_buttons[queue].setEnabled(True)
        self._show_paused(queue, not paused)
        verb = "Pausing" if paused else "Resuming"
        logger.warning("%s queue %s failed: %s", verb.lower(), queue, message)
        self.message_requested.emit(f"{verb} the {queue.value} queue failed: {message}")

    def _show_paused(self, queue: TaskQueue, paused: bool) -> None:
        self._paused[queue] = paused
        title = queue.value.capitalize()
        button = self._pause_buttons[queue]
        button.setChecked(paused)
        button.setText("Resume" if paused else "Pause")
        button.setAccessibleName(
            f"Resume the {title} queue" if paused else f"Pause the {title} queue"
        )
        self._paused_badges[queue].setVisible(paused)

    # --- summaries -------------------------------------------------------------

    def _update_summary(self, queue: TaskQueue, workers: list[WorkerInfo]) -> None:
        if not workers:
            self._summaries[queue].setText("No workers")
            return
        local = sum(1 for w in workers if self._model.is_local(w))
        busy = sum(1 for w in workers if w.state == "busy")
        hosts = len({w.host for w in workers})
        noun = "worker" if len(workers) == 1 else "workers"
        text = f"{len(workers)} {noun} ({local} in this process), {busy} busy"
        if hosts > 1:
            text += f", on {hosts} hosts"
        self._summaries[queue].setText(text)
