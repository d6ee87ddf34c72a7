"""Colours, labels and formatting shared by the window's widgets."""

from __future__ import annotations

import datetime as dt

from PySide6.QtGui import QColor

from ..models import TaskQueue, TaskStatus

#: Badge colour of each status (background); text is white on all of them.
STATUS_COLORS: dict[TaskStatus, QColor] = {
    TaskStatus.PENDING: QColor("#5b6770"),
    TaskStatus.SCHEDULED: QColor("#6f5fb5"),
    TaskStatus.AWAITING_APPROVAL: QColor("#b7791f"),
    TaskStatus.RUNNING: QColor("#2b6cb0"),
    TaskStatus.RETRYING: QColor("#c05621"),
    TaskStatus.SUCCESS: QColor("#2f855a"),
    TaskStatus.FAILURE: QColor("#c53030"),
    TaskStatus.CANCELLED: QColor("#718096"),
    TaskStatus.REJECTED: QColor("#9b2c2c"),
    TaskStatus.EXPIRED: QColor("#a0aec0"),
    TaskStatus.LOST: QColor("#702459"),
}

#: Row tint of governance tasks and the governance card's accent.
GOVERNANCE_TINT = QColor(183, 121, 31, 40)
GOVERNANCE_ACCENT = QColor("#b7791f")
#: The governance queue first, set apart; then the others by urgency.
QUEUE_ORDER: tuple[TaskQueue, ...] = (
    TaskQueue.GOVERNANCE,
    TaskQueue.HIGH,
    TaskQueue.DEFAULT,
    TaskQueue.LOW,
    TaskQueue.SCHEDULED,
)


def status_label(status: TaskStatus) -> str:
    """Return the status as operators read it ("awaiting approval")."""
    return status.value.replace("_", " ")


def format_duration(seconds: float | None) -> str:
    """Format seconds as ``850 ms``, ``12.3 s``, ``4 min 05 s`` or ``2 h 03 min``."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_time(timestamp: float | None) -> str:
    """Format a POSIX time in the local zone as ``2026-12-04 14:03:07``."""
    if timestamp is None:
        return ""
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def format_relative(when: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """Format an aware time relative to now: ``in 3 min``, ``5 s ago``."""
    if when is None:
        return ""
    now = now or dt.datetime.now(dt.timezone.utc)
    delta = (when - now).total_seconds()
    text = format_duration(abs(delta)).replace(".0 s", " s")
    if abs(delta) < 1:
        return "now"
    return f"in {text}" if delta > 0 else f"{text} ago"
