"""Find the app's data files, installed or bundled, through `importlib.resources`."""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

#: Name of the app icon and the desktop entry, as the freedesktop specs use it.
APP_ID = "chenu-desktop"
#: Square sizes of the icon theme's ``hicolor/NxN/apps`` folders that we fill.
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def resource(*parts: str) -> Traversable:
    """Return the data file at `parts` below the resources package."""
    node = files("chenu_desktop.resources")
    for part in parts:
        node = node / part
    return node


def icon_svg() -> bytes:
    """Return the app icon as SVG source."""
    return resource("icons", f"{APP_ID}.svg").read_bytes()


def desktop_entry_template() -> str:
    """Return the desktop entry as shipped, before its Exec line is resolved."""
    return resource(f"{APP_ID}.desktop").read_text(encoding="utf-8")
