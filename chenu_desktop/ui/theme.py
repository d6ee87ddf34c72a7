"""The window's colour theme: the platform's own, or a fixed light or dark palette.

`apply_theme(app, theme)` takes a value of `chenu_desktop.config.THEMES`.
"light" and "dark" switch the application to the Fusion style with a palette
of this module, because the native styles of Windows and macOS ignore parts of
a custom palette. "system" restores the style and palette that the application
had before the first call. The status colours of `style.STATUS_COLORS` are
backgrounds under white text, so they read the same on both palettes.

Call it on the GUI thread; every open widget repaints in the new palette.
"""

from __future__ import annotations

import logging
import weakref

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from ..config import THEMES

logger = logging.getLogger("chenu.ui")

Role = QPalette.ColorRole
Group = QPalette.ColorGroup

#: Active and inactive colours of the dark palette. In both palettes, text,
#: placeholder and selected text reach the WCAG 2.1 AA ratio of 4.5:1 on the
#: backgrounds they are drawn on. Disabled text is dimmer on purpose.
_DARK = {
    Role.Window: "#2d3035",
    Role.WindowText: "#e6e8eb",
    Role.Base: "#1f2226",
    Role.AlternateBase: "#272a2f",
    Role.ToolTipBase: "#3a3f45",
    Role.ToolTipText: "#e6e8eb",
    Role.PlaceholderText: "#9aa1aa",
    Role.Text: "#e6e8eb",
    Role.Button: "#383d44",
    Role.ButtonText: "#e6e8eb",
    Role.BrightText: "#ff8a8a",
    Role.Light: "#4c525a",
    Role.Midlight: "#42474e",
    Role.Mid: "#53595f",
    Role.Dark: "#1b1d20",
    Role.Shadow: "#0e0f11",
    Role.Highlight: "#3b73c4",
    Role.HighlightedText: "#ffffff",
    Role.Link: "#7fb2ff",
    Role.LinkVisited: "#c3a6ff",
}
_DARK_DISABLED = {
    Role.WindowText: "#8d939b",
    Role.Text: "#8d939b",
    Role.ButtonText: "#8d939b",
    Role.Highlight: "#4a4f56",
    Role.HighlightedText: "#c9cdd2",
}

_LIGHT = {
    Role.Window: "#f2f3f5",
    Role.WindowText: "#1a202c",
    Role.Base: "#ffffff",
    Role.AlternateBase: "#f4f6f8",
    Role.ToolTipBase: "#ffffdc",
    Role.ToolTipText: "#1a202c",
    Role.PlaceholderText: "#6b7280",
    Role.Text: "#1a202c",
    Role.Button: "#e8ebef",
    Role.ButtonText: "#1a202c",
    Role.BrightText: "#c53030",
    Role.Light: "#ffffff",
    Role.Midlight: "#f4f5f7",
    Role.Mid: "#b8bec6",
    Role.Dark: "#8a919a",
    Role.Shadow: "#4a5058",
    Role.Highlight: "#2b6cb0",
    Role.HighlightedText: "#ffffff",
    Role.Link: "#2058a8",
    Role.LinkVisited: "#6b46c1",
}
_LIGHT_DISABLED = {
    Role.WindowText: "#8a919a",
    Role.Text: "#8a919a",
    Role.ButtonText: "#8a919a",
    Role.Highlight: "#c4c9d0",
    Role.HighlightedText: "#4a5058",
}

_COLOR_SCHEMES = {
    "light": Qt.ColorScheme.Light,
    "dark": Qt.ColorScheme.Dark,
}


class _SystemLook:
    """The style and palette an application had before its first theme change."""

    def __init__(self, app: QApplication) -> None:
        self.style_name = app.style().name()
        self.palette = QPalette(app.palette())


_system_looks: weakref.WeakKeyDictionary[QApplication, _SystemLook] = (
    weakref.WeakKeyDictionary()
)


def build_palette(theme: str) -> QPalette:
    """Build the fixed palette of ``"light"`` or ``"dark"``."""
    if theme == "dark":
        colors, disabled = _DARK, _DARK_DISABLED
    elif theme == "light":
        colors, disabled = _LIGHT, _LIGHT_DISABLED
    else:
        raise ValueError(f"no fixed palette for theme {theme!r}: use light or dark")
    palette = QPalette()
    for role, color in colors.items():
        palette.setColor(role, QColor(color))
    for role, color in disabled.items():
        palette.setColor(Group.Disabled, role, QColor(color))
    return palette


def apply_theme(app: QApplication, theme: str) -> None:
    """Switch `app` to the theme ``"system"``, ``"light"`` or ``"dark"``.

    Raises:
        ValueError: `theme` is not one of `THEMES`; nothing changes then.
    """
    if theme not in THEMES:
        raise ValueError(f"invalid theme {theme!r}: use one of {', '.join(THEMES)}")
    system = _system_looks.get(app)
    if system is None:
        system = _system_looks[app] = _SystemLook(app)

    hints = app.styleHints()
    if theme == "system":
        hints.unsetColorScheme()
        app.setStyle(system.style_name)
        app.setPalette(system.palette)
    else:
        # Tells the platform (title bars, native dialogs) where it supports it.
        hints.setColorScheme(_COLOR_SCHEMES[theme])
        app.setStyle("Fusion")
        app.setPalette(build_palette(theme))
    logger.info("theme set to %s", theme)
