"""The window process of the bench, run as ``python -m chenu_desktop.bench_window``.

The window gets a process of its own, so its first paint, event-loop lag and
memory are not mixed with those of the bench, which submits the tasks that
the window's workers complete. The process prints ``ready`` on stdout once
the window has painted its task rows, waits for a line on stdin, measures
for the given time and prints its figures as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QEvent, QEventLoop, QObject, QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication

from .models import TaskQueue, TaskStatus
from .ui.app import freeze_startup_objects
from .ui.main_window import FIRST_SIZE, MainWindow

#: Interval of the timer whose lateness is the event-loop lag, in ms.
LAG_TIMER_MS = 10
#: Maximum wait for the first paint of the task rows, in seconds.
FIRST_PAINT_TIMEOUT = 60.0


def memory_mb() -> dict[str, float]:
    """Return the resident memory of this process now and at its peak, in MB."""
    figures: dict[str, float] = {}
    try:
        with open("/proc/self/status", encoding="utf-8") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    figures[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    # ru_maxrss is in KiB on Linux; it is the peak only.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "rss_mb": figures.get("VmRSS", peak),
        "peak_rss_mb": figures.get("VmHWM", peak),
    }


class _PaintProbe(QObject):
    """Notes the time of the first paint of the window and of the task rows."""

    def __init__(self, window: MainWindow, start: float) -> None:
        super().__init__()
        self.start = start
        self.window = window
        self.first_paint: float | None = None
        self.rows_painted: float | None = None

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            now = time.perf_counter()
            if self.first_paint is None:
                self.first_paint = now
            tasks = self.window.tasks
            if (
                self.rows_painted is None
                and watched is tasks.view.viewport()
                and tasks.model.rowCount() > 0
            ):
                self.rows_painted = now
        return False


def run_child(url: str, namespace: str, records: int, seconds: float) -> int:
    """Open the window on loaded records; print its first paint, then its lag."""
    from .bench import (
        DEFAULT_WORKERS,
        open_bench_engine,
        percentile,
        status_count,
    )

    engine = open_bench_engine(url, namespace, DEFAULT_WORKERS)
    engine.start_workers(scheduler=False)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    settings_dir = tempfile.TemporaryDirectory(prefix="chenu-bench-window-")
    settings = QSettings(
        str(Path(settings_dir.name) / "window.ini"), QSettings.Format.IniFormat
    )
    start = time.perf_counter()
    window = MainWindow(engine, settings=settings)
    # The size of a first start on a full-HD screen, whatever the offscreen
    # screen's size, so that runs on different machines paint the same rows.
    window.resize(FIRST_SIZE)
    probe = _PaintProbe(window, start)
    app.installEventFilter(probe)
    window.show()
    deadline = start + FIRST_PAINT_TIMEOUT
    while probe.rows_painted is None and time.perf_counter() < deadline:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
    app.removeEventFilter(probe)
    if probe.first_paint is None or probe.rows_painted is None:
        print("no paint within the timeout", flush=True)
        return 1
    # As `chenu-desktop` does shortly after its window opens.
    freeze_startup_objects()
    print("ready", flush=True)
    sys.stdin.readline()

    lags: list[float] = []
    last = [time.perf_counter()]

    def on_tick() -> None:
        now = time.perf_counter()
        lags.append(max(0.0, now - last[0] - LAG_TIMER_MS / 1000))
        last[0] = now

    timer = QTimer(interval=LAG_TIMER_MS)
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(on_tick)
    done_before = status_count(engine, TaskQueue.DEFAULT, TaskStatus.SUCCESS)
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    last[0] = time.perf_counter()
    timer.start()
    loop.exec()
    timer.stop()
    engine.flush()
    done = status_count(engine, TaskQueue.DEFAULT, TaskStatus.SUCCESS) - done_before
    figures = {
        "records": records,
        "first_paint_ms": (probe.first_paint - start) * 1000,
        "rows_painted_ms": (probe.rows_painted - start) * 1000,
        "lag_p50_ms": percentile(lags, 0.5) * 1000,
        "lag_p99_ms": percentile(lags, 0.99) * 1000,
        "lag_max_ms": max(lags) * 1000,
        "completed_per_s": done / seconds,
        **memory_mb(),
    }
    window.feed.stop()
    window.runner.close(wait=True)
    engine.close()
    print(json.dumps(figures), flush=True)
    settings_dir.cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The window part of the bench.")
    parser.add_argument("--backend", required=True, metavar="URL")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return run_child(args.backend, args.namespace, args.records, args.seconds)


if __name__ == "__main__":
    sys.exit(main())
