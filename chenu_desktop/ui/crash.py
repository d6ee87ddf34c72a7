"""Unexpected exceptions: saved to a file, shown in a dialog, and the app goes on.

`CrashReporter` takes over `sys.excepthook` (which PySide6 calls for an
exception in a slot or a Qt override) and `threading.excepthook`. Each
exception is logged, written whole to a ``crash-*.txt`` file in the log
folder, and reported by the `crashed` signal on the GUI thread, where the
window shows a `CrashDialog`. The app keeps running: Qt's event loop goes on
after the handler returns.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import threading
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

logger = logging.getLogger("chenu.ui")

#: Dialogs shown at most; further exceptions are only logged and saved.
MAX_DIALOGS = 3


class CrashReporter(QObject):
    """Catch, save and report unexpected exceptions.

    Signals:
        crashed(str, str): the traceback text and the file it was saved to
            (empty when it could not be saved).
    """

    crashed = Signal(str, str)

    def __init__(self, directory: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.directory = directory
        self.count = 0
        self._previous_hook = sys.excepthook
        self._previous_thread_hook = threading.excepthook
        self._lock = threading.Lock()

    def install(self) -> None:
        self._previous_hook = sys.excepthook
        self._previous_thread_hook = threading.excepthook
        sys.excepthook = self._handle
        threading.excepthook = self._handle_thread

    def uninstall(self) -> None:
        if sys.excepthook == self._handle:
            sys.excepthook = self._previous_hook
        if threading.excepthook == self._handle_thread:
            threading.excepthook = self._previous_thread_hook

    def _handle_thread(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        thread = args.thread.name if args.thread is not None else "a thread"
        self.report(args.exc_type, args.exc_value, args.exc_traceback, thread)

    def _handle(
        self,
        exc_type: type[BaseException],
        exc_value: BaseException,
        exc_traceback: TracebackType | None,
    ) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            self._previous_hook(exc_type, exc_value, exc_traceback)
            return
        self.report(exc_type, exc_value, exc_traceback, threading.current_thread().name)

    def report(
        self,
        exc_type: type[BaseException],
        exc_value: BaseException | None,
        exc_traceback: TracebackType | None,
        where: str,
    ) -> None:
        """Log, save and announce one exception."""
        text = "".join(traceback.format_exception(exc_type, exc_value, exc_traceback))
        text = f"Unexpected error in {where}:\n{text}"
        logger.error("%s", text.rstrip())
        with self._lock:
            self.count += 1
            number = self.count
        path = self._save(text, number)
        self.crashed.emit(text, str(path) if path else "")

    def _save(self, text: str, number: int) -> Path | None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = self.directory / f"crash-{stamp}-{os.getpid()}-{number}.txt"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError:
            logger.exception("could not save the error report to %s", path)
            return None
        return path


class CrashDialog(QDialog):
    """The traceback of an unexpected error, where it was saved, and a way on."""

    def __init__(self, text: str, path: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("crash_dialog")
        self.setWindowTitle("Unexpected error")
        self.setAccessibleName("Unexpected error")
        self.resize(760, 460)
        layout = QVBoxLayout(self)
        saved = (
            f"It was saved to {path}." if path else "It could not be saved to a file."
        )
        summary = QLabel(
            "CHE·NU Desktop met an error it did not expect and keeps running. "
            f"{saved} Please include the text below when you report it.",
            wordWrap=True,
            objectName="crash_summary",
        )
        summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(summary)
        self.traceback_view = QPlainTextEdit(text, objectName="crash_traceback")
        self.traceback_view.setReadOnly(True)
        self.traceback_view.setAccessibleName("Traceback")
        self.traceback_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        layout.addWidget(self.traceback_view, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        copy.setObjectName("crash_copy")
        copy.clicked.connect(lambda: QApplication.clipboard().setText(text))
        if path:
            folder = buttons.addButton(
                "Open folder", QDialogButtonBox.ButtonRole.ActionRole
            )
            folder.setObjectName("crash_open_folder")
            folder.clicked.connect(
                lambda: QDesktopServices.openUrl(
                    QUrl.fromLocalFile(str(Path(path).parent))
                )
            )
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
