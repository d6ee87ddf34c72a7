"""The app's log file: rotating, in the user log dir, for the window and workers."""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import re
from pathlib import Path
from typing import Iterator

from .config import user_log_dir

LOG_FILE_NAME = "chenu-desktop.log"
#: Size at which the log file rotates, and how many old files are kept.
MAX_LOG_BYTES = 2 * 1024 * 1024
BACKUP_COUNT = 5
_FORMAT = "%(asctime)s %(process)d %(threadName)s %(levelname)s %(name)s: %(message)s"
# user:password@ in URLs, for messages logged by code that did not mask them.
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)


class _MaskPasswords(logging.Filter):
    """Replace the password of any URL in a record's text by ``***``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _URL_PASSWORD.sub(r"\1***@", message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def mask_passwords(text: str) -> str:
    """Return `text` with the password of every URL in it replaced by ``***``."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def log_file_path(directory: Path | None = None) -> Path:
    return (directory or user_log_dir()) / LOG_FILE_NAME


def start_file_logging(directory: Path | None = None) -> Path | None:
    """Add the rotating log file to the root logger at INFO; return its path.

    Once per process: a second call returns the same path. When the folder
    cannot be created, a warning goes to the other handlers and the app goes
    on without the file (None).
    """
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, _AppFileHandler):
            return Path(handler.baseFilename)
    path = log_file_path(directory)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = _AppFileHandler(
            path, maxBytes=MAX_LOG_BYTES, backupCount=BACKUP_COUNT, encoding="utf-8"
        )
    except OSError as exc:
        logging.getLogger("chenu").warning(
            "cannot write the log file %s (%s); logging to the terminal only",
            path,
            exc,
        )
        return None
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(_MaskPasswords())
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    for name in ("chenu", "huey"):
        named = logging.getLogger(name)
        if named.level == logging.NOTSET or named.level > logging.INFO:
            named.setLevel(logging.INFO)
    return path


def stop_file_logging() -> None:
    """Remove the log file handler again (for tests and in-process callers)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _AppFileHandler):
            root.removeHandler(handler)
            handler.close()


@contextlib.contextmanager
def file_logging(directory: Path | None = None) -> Iterator[Path | None]:
    """Log to the file for the time of the block; yield its path or None.

    A handler added here is removed after the block, so in-process callers
    such as tests leave logging as it was. One that was already there stays.
    """
    had_file = any(
        isinstance(handler, _AppFileHandler) for handler in logging.getLogger().handlers
    )
    path = start_file_logging(directory)
    try:
        yield path
    finally:
        if not had_file:
            stop_file_logging()


class _AppFileHandler(logging.handlers.RotatingFileHandler):
    """The app's own file handler, recognized by its type."""
