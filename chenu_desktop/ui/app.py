"""Start the desktop window on an engine, with its workers running inside."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from PySide6.QtCore import QTimer, qInstallMessageHandler, QtMsgType
from PySide6.QtWidgets import QApplication

from ..config import Config
from ..engine import Engine

logger = logging.getLogger("chenu.ui")
qt_logger = logging.getLogger("chenu.qt")

_QT_LEVELS = {
    QtMsgType.QtDebugMsg: logging.DEBUG,
    QtMsgType.QtInfoMsg: logging.INFO,
    QtMsgType.QtWarningMsg: logging.WARNING,
    QtMsgType.QtCriticalMsg: logging.ERROR,
    QtMsgType.QtFatalMsg: logging.CRITICAL,
}


def _route_qt_message(kind: QtMsgType, context: object, message: str) -> None:
    qt_logger.log(_QT_LEVELS.get(kind, logging.WARNING), "%s", message)


def run_window(config: Config, demo: bool = False, minimized: bool = False) -> int:
    """Open the engine, start its workers and show the window until it closes.

    With `demo`, the example tasks are registered and a mix of them is
    submitted, so a new user sees the dashboard at work.
    """
    from .main_window import MainWindow

    qInstallMessageHandler(_route_qt_message)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("CHE·NU Desktop")
    app.setOrganizationName("chenu-desktop")
    if demo:
        from .. import demo as demo_tasks  # noqa: F401  (registers the example tasks)

    engine = Engine(config)
    engine.start_workers()
    window = MainWindow(engine)
    if minimized:
        window.showMinimized()
    else:
        window.show()
    logger.info("window open on %s", engine.spec.display)
    if demo:
        from ..demo import submit_demo_work

        def submit() -> None:
            try:
                submit_demo_work(engine)
            except Exception:
                logger.exception("submitting the demo tasks failed")

        threading.Thread(target=submit, name="chenu-demo", daemon=True).start()

    # Ctrl+C in the terminal closes the window the same way as its close button.
    signal.signal(signal.SIGINT, lambda *_: window.close())
    signal.signal(signal.SIGTERM, lambda *_: window.close())
    # Python only runs signal handlers between bytecodes; wake it regularly.
    wake = QTimer(interval=200)
    wake.timeout.connect(lambda: None)
    wake.start()
    window.shutdown_finished.connect(app.quit)
    return app.exec()
