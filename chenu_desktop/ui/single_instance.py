"""One window per data directory: a second launch brings the first one forward.

The first instance locks a `QLockFile` beside its data and listens on a
local socket named after the same key. A second launch on the same data
fails to take the lock, requests over the socket that the first show its
window, and exits, so two sets of workers never run the same SQLite file from two
windows. A lock left by a killed instance is stale once its process is gone,
and the next launch takes it over.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QLockFile, QObject, Signal, Slot
from PySide6.QtNetwork import QLocalServer, QLocalSocket

if TYPE_CHECKING:
    from ..backend import BackendSpec

logger = logging.getLogger("chenu.ui")

_ACTIVATE = b"activate\n"
_SHOWN = b"shown\n"


def instance_key(spec: BackendSpec, namespace: str) -> str:
    """Return the key of the instance that owns `spec`'s data."""
    if spec.kind == "sqlite" and spec.path is not None:
        identity = f"sqlite:{spec.path.expanduser().resolve()}"
    else:
        identity = f"{spec.url}#{namespace}"
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()[:20]


def lock_path(spec: BackendSpec, namespace: str, data_dir: Path) -> Path:
    """Return the lock file: beside the SQLite file, else in the data dir."""
    key = instance_key(spec, namespace)
    if spec.kind == "sqlite" and spec.path is not None:
        return (
            spec.path.expanduser().resolve().with_name(f"{spec.path.name}.window.lock")
        )
    return data_dir / f"window-{key}.lock"


class InstanceGuard(QObject):
    """The claim of one window on one data directory.

    Signals:
        activation_requested(): a second launch asked this window to show.
    """

    activation_requested = Signal()

    def __init__(
        self, key: str, lock_file: Path, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.key = key
        self.server_name = f"chenu-desktop-{key}"
        self.lock_file = lock_file
        self._lock = QLockFile(str(lock_file))
        # Only a dead owner makes a lock stale, never its age: a window runs for weeks.
        self._lock.setStaleLockTime(0)
        self._server: QLocalServer | None = None

    def acquire(self) -> bool:
        """Take the claim; False when another live instance has it."""
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        if not self._lock.tryLock(0):
            return False
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.server_name):
            # A socket file left by a killed instance: we own the lock, so remove it.
            QLocalServer.removeServer(self.server_name)
            if not server.listen(self.server_name):
                logger.warning(
                    "cannot listen on %s (%s): a second launch will not find "
                    "this window",
                    self.server_name,
                    server.errorString(),
                )
        server.newConnection.connect(self._on_connection)
        self._server = server
        return True

    def owner_pid(self) -> int | None:
        """Return the process id of the instance holding the lock, if known."""
        # PySide6 returns (pid, hostname, appname), or False when unreadable.
        info = self._lock.getLockInfo()
        if not isinstance(info, tuple) or not info:
            return None
        pid = info[0]
        return pid if isinstance(pid, int) and pid > 0 else None

    def ask_owner_to_show(self, timeout_ms: int = 3000) -> bool:
        """Ask the running instance to bring its window forward; True if it did."""
        socket = QLocalSocket()
        socket.connectToServer(self.server_name)
        if not socket.waitForConnected(timeout_ms):
            return False
        try:
            socket.write(_ACTIVATE)
            if not socket.waitForBytesWritten(timeout_ms):
                return False
            while socket.bytesAvailable() < len(_SHOWN):
                if not socket.waitForReadyRead(timeout_ms):
                    return False
            return bytes(socket.readAll().data()).startswith(_SHOWN)
        finally:
            socket.disconnectFromServer()

    @Slot()
    def _on_connection(self) -> None:
        assert self._server is not None
        while self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            socket.readyRead.connect(lambda s=socket: self._on_request(s))
            socket.disconnected.connect(socket.deleteLater)

    def _on_request(self, socket: QLocalSocket) -> None:
        if not bytes(socket.readAll().data()).startswith(_ACTIVATE):
            socket.disconnectFromServer()
            return
        logger.info("a second launch asked for this window")
        self.activation_requested.emit()
        socket.write(_SHOWN)
        socket.flush()

    def release(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._lock.isLocked():
            self._lock.unlock()
