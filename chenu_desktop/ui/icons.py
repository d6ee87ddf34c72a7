"""The app icon, drawn from its SVG source at every size the desktop uses."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QIcon, QImage, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

from ..resource_files import ICON_SIZES, icon_svg

_icon: QIcon | None = None


def render_icon(size: int) -> QImage:
    """Draw the app icon into a transparent square image of `size` pixels."""
    renderer = QSvgRenderer(QByteArray(icon_svg()))
    if not renderer.isValid():
        raise ValueError("the app icon's SVG source does not parse")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter, QRectF(0, 0, size, size))
    finally:
        painter.end()
    return image


def app_icon() -> QIcon:
    """Return the icon of the window, the tray and the bundle, built once.

    Each size is drawn from the SVG, so small sizes stay sharp and nothing
    depends on Qt's SVG icon plugin being deployed.
    """
    global _icon
    if _icon is None:
        icon = QIcon()
        for size in ICON_SIZES:
            icon.addPixmap(QPixmap.fromImage(render_icon(size)))
        _icon = icon
    return _icon
