"""Starting the window: what the operator learns when it cannot start."""

from __future__ import annotations

import argparse
import gc
from pathlib import Path

import pytest
import redis

from chenu_desktop.cli import check_display, main, startup_error_text
from chenu_desktop.errors import ConfigurationError


def test_no_display_names_headless(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert main([]) == 2
    error = capsys.readouterr().err
    assert "no display to open the window on" in error
    assert "chenu-desktop --headless" in error


@pytest.mark.parametrize(
    "environ",
    [
        {"DISPLAY": ":1"},
        {"WAYLAND_DISPLAY": "wayland-0"},
        {"QT_QPA_PLATFORM": "offscreen"},
    ],
)
def test_display_found(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.platform", "linux")
    check_display(environ)


def test_display_missing_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.platform", "linux")
    with pytest.raises(ConfigurationError, match="DISPLAY and WAYLAND_DISPLAY"):
        check_display({})


def test_bad_config_file_error_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    config = tmp_path / "config.toml"
    config.write_text('theme = "purple"\n', encoding="utf-8")
    assert main(["--config", str(config)]) == 2
    error = capsys.readouterr().err
    assert "purple" in error
    assert str(config) in error


def test_unreachable_backend_text_names_source_and_fix() -> None:
    args = argparse.Namespace(
        backend=None, config="/etc/chenu/config.toml", backend_display="redis://h:1/0"
    )
    text = startup_error_text(args, redis.ConnectionError("Error 111 connecting"))
    assert text.startswith(
        "backend redis://h:1/0 is unavailable: Error 111 connecting."
    )
    assert "the configuration file /etc/chenu/config.toml" in text
    assert "--backend URL" in text


def test_config_error_text_is_the_message() -> None:
    args = argparse.Namespace(backend=None, config=None, backend_display=None)
    error = ConfigurationError("invalid theme 'purple' in x.toml: use system")
    assert startup_error_text(args, error) == str(error)


def test_startup_error_dialog_skipped_offscreen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chenu_desktop.ui.app import show_startup_error

    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    # Returns at once: a modal box here would wait for a click forever.
    show_startup_error("backend redis://h:1/0 is unavailable")


def test_freeze_startup_objects() -> None:
    """What the start made is exempted from later collections."""
    from chenu_desktop.ui.app import freeze_startup_objects

    gc.unfreeze()
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
