"""Start the desktop window on an engine, with its workers running inside."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading

from PySide6.QtCore import QTimer, qInstallMessageHandler, QtMsgType
from PySide6.QtWidgets import QApplication

from .. import __version__
from ..backend import parse_backend
from ..config import Config, user_data_dir, user_log_dir
from ..engine import Engine
from ..logs import file_logging
from ..resource_files import APP_ID
from .icons import app_icon
from .theme import apply_theme
from .single_instance import InstanceGuard, instance_key, lock_path

logger = logging.getLogger("chenu.ui")
qt_logger = logging.getLogger("chenu.qt")

_QT_LEVELS = {
    QtMsgType.QtDebugMsg: logging.DEBUG,
    QtMsgType.QtInfoMsg: logging.INFO,
    QtMsgType.QtWarningMsg: logging.WARNING,
    QtMsgType.QtCriticalMsg: logging.ERROR,
    QtMsgType.QtFatalMsg: logging.CRITICAL,
}


#: Time after the window opens at which `freeze_startup_objects` runs, in ms.
FREEZE_DELAY_MS = 2000


def _route_qt_message(kind: QtMsgType, context: object, message: str) -> None:
    qt_logger.log(_QT_LEVELS.get(kind, logging.WARNING), "%s", message)


def run_window(config: Config, demo: bool = False, minimized: bool = False) -> int:
    """Open the engine, start its workers and show the window until it quits.

    Only one window runs per data directory: when another has it, that
    window is asked to come forward and this call returns at once. With
    `demo`, the example tasks are registered and a mix of them is submitted,
    so a new user sees the dashboard at work.
    """
    qInstallMessageHandler(_route_qt_message)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("CHE·NU Desktop")
    app.setOrganizationName("chenu-desktop")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName(APP_ID)
    app.setWindowIcon(app_icon())
    # The window may hide to the tray; the app ends when the engine has stopped.
    app.setQuitOnLastWindowClosed(False)
    apply_theme(app, config.theme)
    with file_logging() as log_path:
        if log_path is not None:
            logger.info("logging to %s", log_path)
        return _run_window(app, config, demo, minimized)


def _run_window(app: QApplication, config: Config, demo: bool, minimized: bool) -> int:
    from .main_window import MainWindow
    from .shell import DesktopShell

    spec = parse_backend(config.backend_url)
    data_dir = spec.path.parent if spec.path is not None else user_data_dir()
    guard = InstanceGuard(
        instance_key(spec, config.namespace),
        lock_path(spec, config.namespace, data_dir),
    )
    if not guard.acquire():
        return _defer_to_running_instance(guard, spec.display)

    try:
        if demo:
            from .. import demo as demo_tasks  # noqa: F401  (registers the example tasks)

        engine = Engine(config)
        engine.start_workers()
        window = MainWindow(engine)
        shell = DesktopShell(window, user_log_dir(), close_to_tray=config.close_to_tray)
        shell.install_crash_reporter()
        guard.activation_requested.connect(shell.show_window)
        if minimized:
            window.showMinimized()
        else:
            window.show()
        logger.info("window open on %s", engine.spec.display)
        # Once the first pages are painted, not before: the collection takes
        # a few tens of milliseconds.
        QTimer.singleShot(FREEZE_DELAY_MS, freeze_startup_objects)
        if demo:
            _submit_demo_work(engine)

        # Ctrl+C or SIGTERM stops the workers and quits, tray or not.
        signal.signal(signal.SIGINT, lambda *_: window.quit_app())
        signal.signal(signal.SIGTERM, lambda *_: window.quit_app())
        # Python only runs signal handlers between bytecodes; wake it regularly.
        wake = QTimer(interval=200)
        wake.timeout.connect(lambda: None)
        wake.start()
        window.shutdown_finished.connect(app.quit)
        try:
            return app.exec()
        finally:
            shell.close()
    finally:
        guard.release()


def freeze_startup_objects() -> None:
    """Collect the garbage of the start, then exempt what survived from collection.

    The modules, Qt wrappers and widgets made at the start live as long as the
    window, yet each full collection would walk them again, with every thread
    paused, the GUI thread included. With the window open on 100,000 records
    while its 2 workers completed about 1,100 tasks/s, full collections paused
    it for up to 37 ms, and for up to 16 ms after this freeze (`chenu-desktop
    bench --sections window`, 2-core machine).
    """
    gc.collect()
    gc.freeze()


def _defer_to_running_instance(guard: InstanceGuard, display: str) -> int:
    pid = guard.owner_pid()
    owner = f" (process {pid})" if pid else ""
    if guard.ask_owner_to_show():
        print(
            f"CHE·NU Desktop is already running on {display}{owner}; "
            "its window was brought forward."
        )
        logger.info("another window runs on %s%s; it was asked to show", display, owner)
        return 0
    print(
        f"error: CHE·NU Desktop is already running on {display}{owner} but did not "
        "answer; switch to its window, or end that process and start again",
        file=sys.stderr,
    )
    return 1


def show_startup_error(text: str) -> None:
    """Show why the window cannot open, for launches without a terminal.

    Does nothing on the offscreen and minimal platforms, because nobody sees
    them. The command line prints the same text as its error line.
    """
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform.split(":")[0] in ("offscreen", "minimal"):
        return
    from PySide6.QtWidgets import QMessageBox

    app = QApplication.instance() or QApplication(sys.argv[:1])
    if app.platformName() in ("offscreen", "minimal"):
        return
    QMessageBox.critical(None, "CHE·NU Desktop cannot start", text)


def _submit_demo_work(engine: Engine) -> None:
    from ..demo import submit_demo_work

    def submit() -> None:
        try:
            submit_demo_work(engine)
        except Exception:
            logger.exception("submitting the demo tasks failed")

    threading.Thread(target=submit, name="chenu-demo", daemon=True).start()
