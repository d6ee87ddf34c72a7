"""Install the desktop entry and the app icon for the current user on Linux.

The files follow the freedesktop specs: the entry goes to
``$XDG_DATA_HOME/applications`` and the icon, drawn at each size of
`ICON_SIZES`, to the ``hicolor`` theme under ``$XDG_DATA_HOME/icons``.
The entry's Exec line names the launcher of this installation by its
absolute path, so the menu starts this app even when its venv is not on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import ConfigurationError
from .resource_files import APP_ID, ICON_SIZES, desktop_entry_template, icon_svg

# Characters the Desktop Entry spec wants escaped inside a quoted Exec argument.
_EXEC_ESCAPED = '"`$\\'
_EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def data_home() -> Path:
    """Return ``$XDG_DATA_HOME``, or its default ``~/.local/share``."""
    value = os.environ.get("XDG_DATA_HOME", "").strip()
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / ".local" / "share"


def launcher_command() -> list[str]:
    """Return the command that starts this installation's window.

    Inside the bundle it is the bundle's executable; in a venv, the
    ``chenu-desktop`` launcher beside its Python; else Python with ``-m``.
    """
    if getattr(sys, "frozen", False):
        return [sys.executable]
    bin_dir = Path(sys.executable).parent
    for name in ("chenu-desktop", "chenu-desktop.exe"):
        candidate = bin_dir / name
        if candidate.is_file():
            return [str(candidate)]
    return [sys.executable, "-m", "chenu_desktop"]


def quote_exec_argument(argument: str) -> str:
    """Quote one argument of an Exec line as the Desktop Entry spec requires."""
    if "\n" in argument or "\r" in argument:
        raise ConfigurationError(
            f"the launcher path {argument!r} contains a line break; install the "
            "app under a path without one"
        )
    text = argument.replace("%", "%%")
    if not any(char in _EXEC_RESERVED for char in text):
        return text
    escaped = "".join("\\" + char if char in _EXEC_ESCAPED else char for char in text)
    return f'"{escaped}"'


def exec_line(command: list[str]) -> str:
    """Return the value of the Exec key for `command`.

    The file format escapes backslashes once more on top of the Exec quoting.
    """
    return " ".join(quote_exec_argument(part) for part in command).replace("\\", "\\\\")


def render_entry(command: list[str]) -> str:
    """Return the desktop entry with its Exec and TryExec keys set for `command`."""
    lines = []
    for line in desktop_entry_template().splitlines():
        if line.startswith("Exec="):
            line = f"Exec={exec_line(command)}"
        elif line.startswith("TryExec="):
            continue
        lines.append(line)
    return "\n".join(lines) + "\n"


def entry_path(home: Path) -> Path:
    return home / "applications" / f"{APP_ID}.desktop"


def icon_paths(home: Path) -> list[Path]:
    """Return every icon file the install writes, PNG sizes then the SVG."""
    theme = home / "icons" / "hicolor"
    paths = [theme / f"{size}x{size}" / "apps" / f"{APP_ID}.png" for size in ICON_SIZES]
    paths.append(theme / "scalable" / "apps" / f"{APP_ID}.svg")
    return paths


def _write_icons(home: Path) -> list[Path]:
    from .ui.icons import render_icon

    written = []
    *pngs, svg = icon_paths(home)
    for size, path in zip(ICON_SIZES, pngs):
        path.parent.mkdir(parents=True, exist_ok=True)
        if not render_icon(size).save(str(path), "PNG"):
            raise OSError(f"could not write the icon {path}")
        written.append(path)
    svg.parent.mkdir(parents=True, exist_ok=True)
    svg.write_bytes(icon_svg())
    written.append(svg)
    return written


def _refresh_caches(home: Path) -> None:
    """Tell the desktop about the new files, where the tools for it exist.

    Both tools are optional: desktops also rescan these folders on their own.
    """
    for tool, target in (
        ("update-desktop-database", home / "applications"),
        ("gtk-update-icon-cache", home / "icons" / "hicolor"),
    ):
        path = shutil.which(tool)
        if path is None:
            continue
        args = [path, "-q", str(target)]
        if tool == "gtk-update-icon-cache":
            args.insert(2, "--ignore-theme-index")
        subprocess.run(args, check=False, capture_output=True, timeout=30)


def install(home: Path | None = None, command: list[str] | None = None) -> list[Path]:
    """Write the desktop entry and the icons; return the files written."""
    home = home or data_home()
    command = command or launcher_command()
    written = _write_icons(home)
    entry = entry_path(home)
    entry.parent.mkdir(parents=True, exist_ok=True)
    partial = entry.with_suffix(".desktop.tmp")
    partial.write_text(render_entry(command), encoding="utf-8")
    os.replace(partial, entry)
    written.append(entry)
    _refresh_caches(home)
    return written


def uninstall(home: Path | None = None) -> list[Path]:
    """Remove what `install` wrote; return the files that were there."""
    home = home or data_home()
    removed = []
    for path in [entry_path(home), *icon_paths(home)]:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    _refresh_caches(home)
    return removed
