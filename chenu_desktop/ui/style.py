"""Colours, labels and formatting shared by the window's widgets."""

from __future__ import annotations

import datetime as dt

from PySide6.QtGui import QColor, QGuiApplication

from ..models import TaskQueue, TaskStatus

#: Badge colour of each status (background). White text on each has a contrast
#: ratio of at least 4.5:1, the WCAG 2.1 AA level for body text.
STATUS_COLORS: dict[TaskStatus, QColor] = {
    TaskStatus.PENDING: QColor("#5b6770"),
    TaskStatus.SCHEDULED: QColor("#6f5fb5"),
    TaskStatus.AWAITING_APPROVAL: QColor("#9c6412"),
    TaskStatus.RUNNING: QColor("#2b6cb0"),
    TaskStatus.RETRYING: QColor("#c05621"),
    TaskStatus.SUCCESS: QColor("#2f855a"),
    TaskStatus.FAILURE: QColor("#c53030"),
    TaskStatus.CANCELLED: QColor("#64748b"),
    TaskStatus.REJECTED: QColor("#9b2c2c"),
    TaskStatus.EXPIRED: QColor("#7b6f5a"),
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


#: Contrast ratio of body text that WCAG 2.1 level AA requires.
MIN_TEXT_CONTRAST = 4.5


def _relative_luminance(color: QColor) -> float:
    """Return the WCAG 2.1 relative luminance of an sRGB colour, from 0 to 1."""

    def linear(channel: float) -> float:
        if channel <= 0.04045:
            return channel / 12.92
        return ((channel + 0.055) / 1.055) ** 2.4

    red, green, blue = color.redF(), color.greenF(), color.blueF()
    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def contrast_ratio(first: QColor, second: QColor) -> float:
    """Return the WCAG 2.1 contrast ratio of two colours, from 1 to 21."""
    lighter, darker = sorted(
        (_relative_luminance(first), _relative_luminance(second)), reverse=True
    )
    return (lighter + 0.05) / (darker + 0.05)


def text_color_on(color: QColor, background: QColor) -> QColor:
    """Return `color`, mixed towards white or black until it reads on `background`.

    The result has at least `MIN_TEXT_CONTRAST` against `background`, or is
    pure white or black when no mix gets there. A colour that already passes
    comes back unchanged.
    """
    if contrast_ratio(color, background) >= MIN_TEXT_CONTRAST:
        return QColor(color)
    white, black = QColor("white"), QColor("black")
    if contrast_ratio(white, background) >= contrast_ratio(black, background):
        target = white
    else:
        target = black
    for step in range(1, 11):
        share = step / 10
        mixed = QColor.fromRgbF(
            color.redF() + (target.redF() - color.redF()) * share,
            color.greenF() + (target.greenF() - color.greenF()) * share,
            color.blueF() + (target.blueF() - color.blueF()) * share,
        )
        if contrast_ratio(mixed, background) >= MIN_TEXT_CONTRAST:
            return mixed
    return target


def error_style() -> str:
    """Return the style sheet of an error message on the application's palette."""
    background = QGuiApplication.palette().window().color()
    color = text_color_on(STATUS_COLORS[TaskStatus.FAILURE], background)
    return f"color: {color.name()};"


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
