"""Run storage calls off the GUI thread and deliver their outcome on it."""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import sqlite3
import threading
from typing import Any, Callable

import redis
from PySide6.QtCore import QObject, Qt, Signal, Slot

from ..errors import BackendUnavailableError, ChenuError
from ..pool import ErrorThrottle

logger = logging.getLogger("chenu.ui")

#: Errors of an unreachable or busy backend: logged once per outage, then counted.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    sqlite3.OperationalError,
)

ResultCallback = Callable[[Any], None]
ErrorCallback = Callable[[str], None]


def describe_error(exc: BaseException) -> str:
    """Return the message an operator sees for a failed call (never a traceback)."""
    if isinstance(exc, (ChenuError, BackendUnavailableError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class BackgroundRunner(QObject):
    """Runs callables in a thread pool; callbacks run on the GUI thread.

    Signals:
        failed(str): any call failed without an error callback of its own;
            the payload is the message to show.
    """

    failed = Signal(str)
    _delivered = Signal(object, object, object)

    def __init__(self, threads: int = 4, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="chenu-ui"
        )
        self._closed = False
        #: The callbacks of each call in flight, by call number. Pool threads
        #: never get them, so none of them drops the last reference to a Qt
        #: object that a callback keeps alive.
        self._callbacks: dict[
            int, tuple[ResultCallback | None, ErrorCallback | None]
        ] = {}
        self._callbacks_lock = threading.Lock()
        self._numbers = itertools.count()
        self._throttles: dict[str, ErrorThrottle] = {}
        self._throttle_lock = threading.Lock()
        self._delivered.connect(self._on_delivered, Qt.ConnectionType.QueuedConnection)

    def run(
        self,
        function: Callable[..., Any],
        *args: Any,
        on_result: ResultCallback | None = None,
        on_error: ErrorCallback | None = None,
        **kwargs: Any,
    ) -> concurrent.futures.Future[Any] | None:
        """Call ``function(*args, **kwargs)`` in a pool thread.

        `on_result` gets the return value and `on_error` the message of an
        exception, both on the GUI thread. Returns None once closed.
        """
        if self._closed:
            return None
        number = next(self._numbers)
        with self._callbacks_lock:
            self._callbacks[number] = (on_result, on_error)

        def call() -> Any:
            try:
                value = function(*args, **kwargs)
            except Exception as exc:
                if isinstance(exc, OUTAGE_ERRORS):
                    with self._throttle_lock:
                        self._throttle(function).failed()
                elif not isinstance(exc, (ChenuError, BackendUnavailableError)):
                    logger.exception("background call %s failed", _call_name(function))
                self._delivered.emit(None, exc, number)
                return None
            if self._throttles:
                with self._throttle_lock:
                    throttle = self._throttles.get(_call_name(function))
                    if throttle is not None:
                        throttle.succeeded()
            self._delivered.emit(value, None, number)
            return value

        try:
            return self._pool.submit(call)
        except RuntimeError:
            # Closed by another thread since the check above.
            with self._callbacks_lock:
                self._callbacks.pop(number, None)
            return None

    def _throttle(self, function: Callable[..., Any]) -> ErrorThrottle:
        name = _call_name(function)
        throttle = self._throttles.get(name)
        if throttle is None:
            throttle = ErrorThrottle(f"background call {name}", log=logger)
            self._throttles[name] = throttle
        return throttle

    @Slot(object, object, object)
    def _on_delivered(
        self, value: Any, error: BaseException | None, number: int
    ) -> None:
        with self._callbacks_lock:
            on_result, on_error = self._callbacks.pop(number, (None, None))
        if self._closed:
            return
        if error is not None:
            message = describe_error(error)
            if on_error is not None:
                on_error(message)
            else:
                self.failed.emit(message)
            return
        if on_result is not None:
            on_result(value)

    def close(self, wait: bool = True) -> None:
        """Stop delivering results and shut the pool down."""
        self._closed = True
        self._pool.shutdown(wait=wait, cancel_futures=True)


def _call_name(function: Callable[..., Any]) -> str:
    """Return a name for log lines: the qualified name, which places a lambda."""
    name = getattr(function, "__qualname__", None) or getattr(
        function, "__name__", None
    )
    return name or repr(function)
