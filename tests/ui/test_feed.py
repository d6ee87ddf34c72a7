"""The background runner and the engine feed against a real engine."""

from __future__ import annotations

import sys
import threading

from chenu_desktop import InvalidArgumentError, TaskQueue, TaskStatus
from chenu_desktop.engine import Engine
from chenu_desktop.ui.background import BackgroundRunner
from chenu_desktop.ui.feed import EngineFeed

from engine_helpers import open_test_engine


def test_runner_delivers_on_gui_thread(qtbot, runner: BackgroundRunner) -> None:
    seen: list[tuple[object, bool]] = []
    gui_thread = threading.current_thread()

    def work() -> str:
        return threading.current_thread().name

    runner.run(
        work,
        on_result=lambda v: seen.append((v, threading.current_thread() is gui_thread)),
    )
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    name, on_gui = seen[0]
    assert name.startswith("chenu-ui")
    assert on_gui


def test_runner_callbacks_stay_on_gui_thread(qtbot, runner: BackgroundRunner) -> None:
    """Pool threads never hold a callback, so none of them frees a Qt object."""
    release = threading.Event()
    results: list[int] = []

    def work() -> int:
        release.wait(5)
        return 1

    runner.run(work, on_result=results.append)
    # While a pool thread runs `work`, the callback is in the runner only.
    assert [on_result for on_result, _ in runner._callbacks.values()] == [
        results.append
    ]
    release.set()
    qtbot.waitUntil(lambda: results == [1], timeout=5000)
    assert runner._callbacks == {}


def test_runner_closed_meanwhile_returns_none(runner: BackgroundRunner) -> None:
    """A call that loses the race with `close` is dropped, not raised."""
    runner._pool.shutdown(wait=True)
    assert runner.run(lambda: 1, on_result=print) is None
    assert runner._callbacks == {}


def test_runner_reports_errors_without_traceback(
    qtbot, runner: BackgroundRunner
) -> None:
    def bad_input() -> None:
        raise InvalidArgumentError("invalid value 7: use 8")

    def crash() -> None:
        raise KeyError("slot")

    with qtbot.waitSignal(runner.failed, timeout=5000) as blocker:
        runner.run(bad_input)
    assert blocker.args == ["invalid value 7: use 8"]
    with qtbot.waitSignal(runner.failed, timeout=5000) as blocker:
        runner.run(crash)
    assert blocker.args == ["KeyError: 'slot'"]


def test_feed_reports_changes(
    qtbot, ui_engine: Engine, runner: BackgroundRunner
) -> None:
    feed = EngineFeed(ui_engine, runner, change_interval_ms=20)
    feed.start()
    qtbot.waitUntil(lambda: feed._since is not None, timeout=5000)
    task_id = ui_engine.task_service.submit("cleanup_old_data", days=999)
    seen: list = []
    feed.changes_arrived.connect(seen.extend)
    qtbot.waitUntil(
        lambda: any(
            c.task_id == task_id and c.status is TaskStatus.SUCCESS for c in seen
        ),
        timeout=10000,
    )
    statuses = [c.status for c in seen if c.task_id == task_id]
    assert statuses[0] is TaskStatus.PENDING
    feed.stop()


def test_feed_coalesces_burst(
    qtbot, idle_engine: Engine, runner: BackgroundRunner
) -> None:
    feed = EngineFeed(idle_engine, runner, change_interval_ms=10_000)
    batches: list[list] = []
    feed.changes_arrived.connect(batches.append)
    feed.poll_changes()
    qtbot.waitUntil(lambda: feed._since is not None, timeout=5000)
    for n in range(500):
        idle_engine.task_service.submit("cleanup_old_data", days=n + 1)
    feed.poll_changes()
    qtbot.waitUntil(lambda: bool(batches), timeout=5000)
    assert len(batches) == 1
    assert len(batches[0]) == 500


def test_feed_stats_and_workers(
    qtbot, ui_engine: Engine, runner: BackgroundRunner
) -> None:
    feed = EngineFeed(ui_engine, runner)
    with qtbot.waitSignal(feed.stats_updated, timeout=5000) as stats:
        feed.poll_stats()
    assert set(stats.args[0]) == set(TaskQueue)
    with qtbot.waitSignal(feed.workers_updated, timeout=5000) as workers:
        feed.poll_workers()
    assert len(workers.args[0]) == sum(ui_engine.pool.sizes().values())


def test_feed_reports_unreachable_backend(qtbot, runner: BackgroundRunner) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    engine = open_test_engine(f"redis://127.0.0.1:{port}/0")
    try:
        feed = EngineFeed(engine, runner)
        with qtbot.waitSignal(feed.backend_status_changed, timeout=10000) as blocker:
            feed.poll_stats()
        reachable, message = blocker.args
        assert reachable is False
        assert str(port) in message
    finally:
        engine.close(timeout=1)


def test_true_refcount_survives_emits(qtbot) -> None:
    """PySide6 6.12.0 on Python 3.11 loses a reference to True per emit."""
    from PySide6.QtCore import QObject, Signal

    class Emitter(QObject):
        fired = Signal(int)

    emitter = Emitter()
    received = []
    emitter.fired.connect(received.append)
    before = sys.getrefcount(True)
    for n in range(20_000):
        emitter.fired.emit(n)
    assert len(received) == 20_000
    assert sys.getrefcount(True) >= before - 10


def test_feed_restarts_after_stop(
    qtbot, ui_engine: Engine, runner: BackgroundRunner
) -> None:
    feed = EngineFeed(ui_engine, runner, stats_interval_ms=50)
    feed.start()
    feed.stop()
    with qtbot.waitSignal(feed.stats_updated, timeout=5000):
        feed.start()
    feed.stop()


def test_runner_logs_an_outage_once(qtbot, runner: BackgroundRunner, caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    import redis

    down = True

    def read_counts() -> int:
        if down:
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:1")
        return 3

    caplog.set_level(logging.INFO, logger="chenu.ui")
    errors: list[str] = []
    for _ in range(5):
        with qtbot.waitSignal(runner.failed, timeout=5000) as blocker:
            runner.run(read_counts)
        errors.append(blocker.args[0])
    assert errors == ["ConnectionError: Error 111 connecting to 127.0.0.1:1"] * 5
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    assert (
        "test_runner_logs_an_outage_once.<locals>.read_counts"
        in failures[0].getMessage()
    )
    down = False
    seen: list[int] = []
    runner.run(read_counts, on_result=seen.append)
    qtbot.waitUntil(lambda: seen == [3], timeout=5000)
    assert any("works again after 5 failures" in r.getMessage() for r in caplog.records)
