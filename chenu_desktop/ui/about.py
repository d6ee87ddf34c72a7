"""The About box: versions of the app and of everything it runs on."""

from __future__ import annotations

import platform
import sqlite3
from importlib import metadata
from typing import TYPE_CHECKING

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from .. import __version__
from .icons import app_icon

if TYPE_CHECKING:
    from ..engine import Engine
    from .background import BackgroundRunner

_READING = "reading…"


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def backend_server_version(engine: Engine) -> str:
    """Return the version of the backend's server; it reads from the backend.

    Raises what the backend raises when it is unreachable; call it off the
    GUI thread.
    """
    if engine.spec.kind == "sqlite":
        return f"SQLite {sqlite3.sqlite_version}"
    from ..backend import redis_client

    client = redis_client(engine.spec, socket_timeout=3, socket_connect_timeout=3)
    try:
        return f"Redis {client.info('server')['redis_version']}"
    finally:
        client.close()


def version_lines(engine: Engine) -> list[tuple[str, str]]:
    """Return the rows of the About box that need no backend read."""
    return [
        ("CHE·NU Desktop", __version__),
        ("Python", platform.python_version()),
        ("Qt", qVersion()),
        ("PySide6", PySide6.__version__),
        ("Huey", _package_version("huey")),
        ("redis-py", _package_version("redis")),
        ("Backend", engine.spec.display),
    ]


class AboutDialog(QDialog):
    """Versions of the app, Qt, Huey and the backend's server, selectable for reports."""

    def __init__(
        self, engine: Engine, runner: BackgroundRunner, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("about_dialog")
        self.setWindowTitle("About CHE·NU Desktop")
        self.setAccessibleName("About CHE·NU Desktop")
        layout = QVBoxLayout(self)
        header = QLabel(objectName="about_icon")
        header.setPixmap(app_icon().pixmap(64, 64))
        header.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(header)
        intro = QLabel(
            "A control room for Huey background tasks: five queues, a task "
            "ledger on SQLite or Redis, cron schedules and the worker pool.",
            wordWrap=True,
            objectName="about_text",
        )
        layout.addWidget(intro)
        form = QFormLayout()
        self.values: dict[str, QLabel] = {}
        rows = version_lines(engine)
        rows.append(("Server", _READING))
        for name, value in rows:
            label = QLabel(value, objectName=f"about_{name.lower().replace('-', '_')}")
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setAccessibleName(f"{name} version")
            form.addRow(f"{name}:", label)
            self.values[name] = label
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        copy.setObjectName("about_copy")
        copy.clicked.connect(self.copy_to_clipboard)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        server = self.values["Server"]
        runner.run(
            lambda: backend_server_version(engine),
            on_result=server.setText,
            on_error=lambda message: server.setText(f"unreachable ({message})"),
        )

    def text(self) -> str:
        """Return the versions as lines of ``name: value``."""
        return "\n".join(
            f"{name}: {label.text()}" for name, label in self.values.items()
        )

    def copy_to_clipboard(self) -> None:
        QApplication.clipboard().setText(self.text())
