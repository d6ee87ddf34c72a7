"""Follow the engine from the GUI thread: changes, stats, workers and schedules."""

from __future__ import annotations

import logging
import weakref
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


def fetch_changes(ledger: Any, since: int | None) -> tuple[int, list[Change], bool]:
    """Return (last seq, changes, reset) after `since`; runs in a pool thread."""
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
        audit_updated(int): the id of the newest audit entry, each time it changes.
        backend_status_changed(bool, str): reachable or not, and the message.
    """

    changes_arrived = Signal(list)
    feed_reset = Signal()
    stats_updated = Signal(dict)
    workers_updated = Signal(list)
    schedules_updated = Signal(list)
    audit_updated = Signal(int)
    backend_status_changed = Signal(bool, str)

    def __init__(
        self,
        engine: Engine,
        runner: BackgroundRunner,
        change_interval_ms: int = 250,
        stats_interval_ms: int = 1000,
        workers_interval_ms: int = 2000,
        schedules_interval_ms: int = 5000,
        audit_interval_ms: int = 1000,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._engine = engine
        self._runner = runner
        self._since: int | None = None
        self._audit_last_id: int | None = None
        self._in_flight: set[str] = set()
        self._reachable = True
        self._stopped = False
        self._timers: list[QTimer] = []
        for interval, poll in (
            (change_interval_ms, self.poll_changes),
            (stats_interval_ms, self.poll_stats),
            (workers_interval_ms, self.poll_workers),
            (schedules_interval_ms, self.poll_schedules),
            (audit_interval_ms, self.poll_audit),
        ):
            timer = QTimer(self)
            timer.setInterval(interval)
            timer.timeout.connect(poll)
            self._timers.append(timer)

    @property
    def reachable(self) -> bool:
        return self._reachable

    def start(self) -> None:
        self._stopped = False
        # Polls dropped by an earlier stop() never cleared their mark.
        self._in_flight.clear()
        for timer in self._timers:
            timer.start()
        self.refresh_all()

    def stop(self) -> None:
        """Stop polling; results of polls still in flight are dropped."""
        self._stopped = True
        for timer in self._timers:
            timer.stop()

    def refresh_all(self) -> None:
        self.poll_changes()
        self.poll_stats()
        self.poll_workers()
        self.poll_schedules()
        self.poll_audit()

    # --- polls ---------------------------------------------------------------

    def _poll(self, kind: str, function: Callable[[], Any], deliver: str) -> None:
        """Run `function` in the pool and pass its result to the method `deliver`."""
        if self._stopped or kind in self._in_flight:
            return
        self._in_flight.add(kind)
        # The callbacks hold the feed weakly: a pool thread that drops them must
        # never be the one that destroys this QObject and its timers.
        feed_ref = weakref.ref(self)

        def on_result(value: Any) -> None:
            feed = feed_ref()
            if feed is None or feed._stopped:
                return
            feed._in_flight.discard(kind)
            feed._set_reachable(True, "")
            getattr(feed, deliver)(value)

        def on_error(message: str) -> None:
            feed = feed_ref()
            if feed is None or feed._stopped:
                return
            feed._in_flight.discard(kind)
            feed._set_reachable(False, message)

        if self._runner.run(function, on_result=on_result, on_error=on_error) is None:
            self._in_flight.discard(kind)

    def poll_changes(self) -> None:
        ledger, since = self._engine.ledger, self._since
        self._poll("changes", lambda: fetch_changes(ledger, since), "_deliver_changes")

    def poll_stats(self) -> None:
        self._poll("stats", self._engine.task_service.queue_stats, "_emit_stats")

    def poll_workers(self) -> None:
        self._poll("workers", self._engine.workers, "_emit_workers")

    def poll_schedules(self) -> None:
        self._poll(
            "schedules",
            self._engine.scheduler_service.list_schedules,
            "_emit_schedules",
        )

    def poll_audit(self) -> None:
        self._poll("audit", self._engine.audit.last_id, "_emit_audit")

    def _emit_audit(self, last_id: int) -> None:
        if last_id != self._audit_last_id:
            self._audit_last_id = last_id
            self.audit_updated.emit(last_id)

    def _emit_stats(self, stats: dict[Any, Any]) -> None:
        self.stats_updated.emit(stats)

    def _emit_workers(self, workers: list[Any]) -> None:
        self.workers_updated.emit(workers)

    def _emit_schedules(self, schedules: list[Any]) -> None:
        self.schedules_updated.emit(schedules)

    # --- helpers ---------------------------------------------------------------

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
