"""Follow the engine from the GUI thread: changes, stats, workers and schedules."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QObject, QTimer, Signal

from ..models import Change

if TYPE_CHECKING:
    from ..engine import Engine
    from .background import BackgroundRunner

logger = logging.getLogger("chenu.ui")

#: Changes fetched per round trip; a burst larger than this takes several.
_CHANGE_PAGE = 5000
#: Changes fetched per poll at most; the rest come with the next poll.
_MAX_CHANGES_PER_POLL = 50_000


class EngineFeed(QObject):
    """Polls the engine in background threads and emits what it found.

    Each kind of poll runs at most once at a time, so a slow backend never
    piles up calls. Changes are coalesced: one signal carries every change
    found since the previous poll.

    Signals:
        changes_arrived(list): the new `Change` entries, oldest first.
        feed_reset(): the feed lost changes; reload whatever is shown.
        stats_updated(dict): `TaskQueue` to `QueueStats`.
        workers_updated(list): `WorkerInfo` of every process on the backend.
        schedules_updated(list): `ScheduleInfo` of every schedule.
        backend_status_changed(bool, str): reachable or not, and the message.
    """

    changes_arrived = Signal(list)
    feed_reset = Signal()
    stats_updated = Signal(dict)
    workers_updated = Signal(list)
    schedules_updated = Signal(list)
    backend_status_changed = Signal(bool, str)

    def __init__(
        self,
        engine: Engine,
        runner: BackgroundRunner,
        change_interval_ms: int = 250,
        stats_interval_ms: int = 1000,
        workers_interval_ms: int = 2000,
        schedules_interval_ms: int = 5000,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._engine = engine
        self._runner = runner
        self._since: int | None = None
        self._in_flight: set[str] = set()
        self._reachable = True
        self._timers: list[QTimer] = []
        for interval, poll in (
            (change_interval_ms, self.poll_changes),
            (stats_interval_ms, self.poll_stats),
            (workers_interval_ms, self.poll_workers),
            (schedules_interval_ms, self.poll_schedules),
        ):
            timer = QTimer(self)
            timer.setInterval(interval)
            timer.timeout.connect(poll)
            self._timers.append(timer)

    @property
    def reachable(self) -> bool:
        return self._reachable

    def start(self) -> None:
        for timer in self._timers:
            timer.start()
        self.refresh_all()

    def stop(self) -> None:
        for timer in self._timers:
            timer.stop()

    def refresh_all(self) -> None:
        self.poll_changes()
        self.poll_stats()
        self.poll_workers()
        self.poll_schedules()

    # --- polls ---------------------------------------------------------------

    def _poll(
        self, kind: str, function: Callable[[], Any], deliver: Callable[[Any], None]
    ) -> None:
        if kind in self._in_flight:
            return
        self._in_flight.add(kind)

        def on_result(value: Any) -> None:
            self._in_flight.discard(kind)
            self._set_reachable(True, "")
            deliver(value)

        def on_error(message: str) -> None:
            self._in_flight.discard(kind)
            self._set_reachable(False, message)

        if self._runner.run(function, on_result=on_result, on_error=on_error) is None:
            self._in_flight.discard(kind)

    def poll_changes(self) -> None:
        since = self._since
        self._poll("changes", lambda: self._fetch_changes(since), self._deliver_changes)

    def poll_stats(self) -> None:
        self._poll(
            "stats", self._engine.task_service.queue_stats, self.stats_updated.emit
        )

    def poll_workers(self) -> None:
        self._poll("workers", self._engine.workers, self.workers_updated.emit)

    def poll_schedules(self) -> None:
        self._poll(
            "schedules",
            self._engine.scheduler_service.list_schedules,
            self.schedules_updated.emit,
        )

    # --- helpers ---------------------------------------------------------------

    def _fetch_changes(self, since: int | None) -> tuple[int, list[Change], bool]:
        """Return (last seq, changes, reset); runs in a pool thread."""
        ledger = self._engine.ledger
        if since is None:
            return ledger.last_seq(), [], False
        changes: list[Change] = []
        reset = False
        last = since
        while len(changes) < _MAX_CHANGES_PER_POLL:
            batch = ledger.changes(last, _CHANGE_PAGE)
            reset = reset or batch.reset
            changes.extend(batch.changes)
            last = batch.last_seq
            if len(batch.changes) < _CHANGE_PAGE:
                break
        return last, changes, reset

    def _deliver_changes(self, value: tuple[int, list[Change], bool]) -> None:
        last, changes, reset = value
        first_poll = self._since is None
        self._since = last
        if first_poll:
            return
        if reset:
            logger.info("change feed reset at %d; reloading the views", last)
            self.feed_reset.emit()
            return
        if changes:
            self.changes_arrived.emit(changes)

    def _set_reachable(self, reachable: bool, message: str) -> None:
        if reachable == self._reachable:
            return
        self._reachable = reachable
        if reachable:
            logger.info("backend %s reachable again", self._engine.spec.display)
            self.backend_status_changed.emit(
                True, f"connected to {self._engine.spec.display}"
            )
            self.refresh_all()
        else:
            logger.warning(
                "backend %s unreachable: %s", self._engine.spec.display, message
            )
            self.backend_status_changed.emit(False, message)
