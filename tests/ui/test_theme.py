"""The light and dark themes, and the readability of the status colours."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QLabel

from chenu_desktop.ui.style import (
    MIN_TEXT_CONTRAST,
    STATUS_COLORS,
    contrast_ratio,
    text_color_on,
)
from chenu_desktop.ui.theme import apply_theme, build_palette

Role = QPalette.ColorRole


@pytest.fixture
def app(qapp: QApplication) -> Iterator[QApplication]:
    """The test application, back on the system theme after the test."""
    apply_theme(qapp, "system")
    try:
        yield qapp
    finally:
        apply_theme(qapp, "system")


def test_dark_theme_changes_palette(app: QApplication, qtbot) -> None:  # type: ignore[no-untyped-def]
    label = QLabel("queue")
    qtbot.addWidget(label)
    system_window = app.palette().color(Role.Window)

    apply_theme(app, "dark")

    dark = build_palette("dark")
    assert app.palette().color(Role.Window) == dark.color(Role.Window)
    assert app.palette().color(Role.Window) != system_window
    assert app.palette().color(Role.Window).lightness() < 64
    assert app.style().name() == "fusion"
    # Qt posts the palette change to existing widgets.
    qtbot.waitUntil(
        lambda: label.palette().color(Role.WindowText) == dark.color(Role.WindowText),
        timeout=5000,
    )


def test_light_theme_changes_palette(app: QApplication) -> None:
    apply_theme(app, "light")

    light = build_palette("light")
    assert app.palette().color(Role.Base) == light.color(Role.Base)
    assert app.palette().color(Role.Base).lightness() > 200


def test_system_theme_restores_palette(app: QApplication) -> None:
    style_name = app.style().name()
    window = app.palette().color(Role.Window)
    text = app.palette().color(Role.Text)

    apply_theme(app, "dark")
    apply_theme(app, "system")

    assert app.style().name() == style_name
    assert app.palette().color(Role.Window) == window
    assert app.palette().color(Role.Text) == text


def test_unknown_theme_rejected(app: QApplication) -> None:
    window = app.palette().color(Role.Window)

    with pytest.raises(ValueError, match="invalid theme 'blue'"):
        apply_theme(app, "blue")

    assert app.palette().color(Role.Window) == window


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_palette_text_readable(theme: str) -> None:
    palette = build_palette(theme)
    for background in (Role.Window, Role.Base, Role.AlternateBase, Role.Button):
        for foreground in (Role.WindowText, Role.Text, Role.ButtonText):
            ratio = contrast_ratio(palette.color(foreground), palette.color(background))
            assert ratio >= MIN_TEXT_CONTRAST, (foreground, background, ratio)
    placeholder = contrast_ratio(
        palette.color(Role.PlaceholderText), palette.color(Role.Base)
    )
    assert placeholder >= MIN_TEXT_CONTRAST
    selected = contrast_ratio(
        palette.color(Role.HighlightedText), palette.color(Role.Highlight)
    )
    assert selected >= MIN_TEXT_CONTRAST


def test_badge_text_readable() -> None:
    white = QColor("white")
    for status, color in STATUS_COLORS.items():
        ratio = contrast_ratio(white, color)
        assert ratio >= MIN_TEXT_CONTRAST, (status, color.name(), ratio)


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("role", [Role.Base, Role.Window])
def test_status_text_readable(theme: str, role: QPalette.ColorRole) -> None:
    background = build_palette(theme).color(role)
    for status, color in STATUS_COLORS.items():
        readable = text_color_on(color, background)
        ratio = contrast_ratio(readable, background)
        assert ratio >= MIN_TEXT_CONTRAST, (status, readable.name(), ratio)


def test_status_text_unchanged_on_light() -> None:
    base = build_palette("light").color(Role.Base)
    failure = next(c for s, c in STATUS_COLORS.items() if s.value == "failure")

    assert text_color_on(failure, base) == failure
