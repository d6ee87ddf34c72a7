"""One thread that batches worker events into ledger writes."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable

import sqlite3

import redis

from .errors import BackendUnavailableError
from .ledger.base import Ledger, Update

#: Errors of an unreachable or busy backend, after which the same write may succeed.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    BackendUnavailableError,
    redis.ConnectionError,
    redis.TimeoutError,
    sqlite3.OperationalError,
    OSError,
)

logger = logging.getLogger("chenu.ledger")


class LedgerWriter:
    """Collects updates from worker threads and applies them in batches.

    Workers call `put` and go on at once. The writer thread applies what has
    gathered every `interval` seconds, or sooner once `max_batch` updates
    wait. A failed write (the backend is down) is kept and retried with
    backoff, so no update is dropped while the process lives.
    """

    def __init__(
        self,
        ledger: Ledger,
        interval: float = 0.05,
        max_batch: int = 500,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ledger = ledger
        self._interval = interval
        self._max_batch = max_batch
        self._clock = clock
        self._pending: deque[Update] = deque()
        self._condition = threading.Condition()
        self._submitted = 0
        self._applied = 0
        self._stopping = False
        self._failures = 0
        #: Updates the ledger rejected for their content, logged and skipped.
        self.rejected = 0
        self._thread = threading.Thread(
            target=self._run, name="chenu-ledger-writer", daemon=True
        )
        self._thread.start()

    @property
    def backlog(self) -> int:
        with self._condition:
            return len(self._pending)

    def put(self, update: Update) -> None:
        with self._condition:
            self._pending.append(update)
            self._submitted += 1
            if len(self._pending) == 1 or len(self._pending) >= self._max_batch:
                self._condition.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every update put so far is applied; return False on timeout."""
        deadline = time.monotonic() + timeout
        with self._condition:
            target = self._submitted
            self._condition.notify_all()
            while self._applied < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
        return True

    def stop(self, timeout: float = 10.0) -> bool:
        """Apply what is left and end the thread; return False if it timed out."""
        flushed = self.flush(timeout)
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        self._thread.join(timeout)
        if not flushed:
            logger.error(
                "ledger writer stopped with %d updates not written", self.backlog
            )
        return flushed and not self._thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._pending and not self._stopping:
                    self._condition.wait()
                if self._stopping and not self._pending:
                    return
                if len(self._pending) < self._max_batch and not self._stopping:
                    # Let a burst gather so it costs one transaction.
                    self._condition.wait(self._interval)
                batch = [
                    self._pending.popleft()
                    for _ in range(min(self._max_batch, len(self._pending)))
                ]
            if not self._write(batch):
                return

    def _write(self, batch: list[Update]) -> bool:
        """Apply a batch, retrying until it is written; return False if stopped first."""
        while True:
            try:
                self._ledger.write(batch, self._clock())
            except Exception as exc:
                if not isinstance(exc, TRANSIENT_ERRORS):
                    # Not an outage: retrying the same batch would stall every
                    # later update behind one the ledger can never take.
                    return self._write_each(batch, exc)
                self._failures += 1
                if self._failures == 1 or self._failures % 100 == 0:
                    logger.exception(
                        "writing %d task updates failed (%d failures so far); retrying",
                        len(batch),
                        self._failures,
                    )
                with self._condition:
                    if self._stopping:
                        # Keep them for a later stop() that may still succeed.
                        self._pending.extendleft(reversed(batch))
                        return False
                    self._condition.wait(min(5.0, 0.1 * 2 ** min(self._failures, 6)))
                continue
            if self._failures:
                logger.info("task updates are written again")
                self._failures = 0
            self._count_applied(len(batch))
            return True

    def _count_applied(self, count: int) -> None:
        with self._condition:
            self._count_applied_locked(count)

    def _count_applied_locked(self, count: int) -> None:
        self._applied += count
        self._condition.notify_all()

    def _write_each(self, batch: list[Update], error: Exception) -> bool:
        """Apply a rejected batch one update at a time, logging each that fails.

        An update the ledger rejects for its content is logged at ERROR with
        its task id and skipped, and the rest of the batch is written. Returns
        False if stopped during an outage, with the unwritten updates kept.
        """
        logger.error(
            "the ledger rejected a batch of %d task updates (%s: %s); writing "
            "them one at a time",
            len(batch),
            type(error).__name__,
            error,
        )
        for index, update in enumerate(batch):
            while True:
                try:
                    self._ledger.write([update], self._clock())
                except TRANSIENT_ERRORS:
                    with self._condition:
                        if self._stopping:
                            self._pending.extendleft(reversed(batch[index:]))
                            self._count_applied_locked(index)
                            return False
                        self._condition.wait(0.5)
                    continue
                except Exception as exc:
                    self.rejected += 1
                    logger.error(
                        "task %s: the ledger rejected an update to status %s with "
                        "fields %s (%s: %s); it is not written",
                        update.task_id,
                        update.status.value if update.status else "unchanged",
                        sorted(update.fields),
                        type(exc).__name__,
                        exc,
                    )
                break
        self._count_applied(len(batch))
        return True
