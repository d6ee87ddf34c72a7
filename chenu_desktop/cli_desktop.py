"""The ``chenu-desktop desktop-entry`` command: the app in the desktop's menu."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
from typing import Any

from . import desktop_entry
from .errors import ConfigurationError


def run_desktop_entry(args: argparse.Namespace) -> int:
    if args.action == "install":
        command = shlex.split(args.launcher) if args.launcher else None
        if command is not None and not command:
            raise ConfigurationError(
                "--launcher is empty: give the command that starts the app, or leave "
                "the option out to use this installation's launcher"
            )
        if command is not None and not os.path.isabs(command[0]):
            raise ConfigurationError(
                f"--launcher {args.launcher!r} does not start with an absolute path: "
                "the desktop runs the entry without your shell's PATH"
            )
        written = desktop_entry.install(command=command)
        print(f"installed the desktop entry and {len(written) - 1} icon files:")
        for path in written:
            print(f"  {path}")
        return 0
    removed = desktop_entry.uninstall()
    if not removed:
        print(f"nothing to remove under {desktop_entry.data_home()}")
    for path in removed:
        print(f"removed {path}")
    return 0


def add_desktop_entry_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "desktop-entry",
        help="add the app to the desktop's menu, or take it out (Linux)",
        description="Install the desktop entry and the app icon in the freedesktop "
        "sizes for the current user, under $XDG_DATA_HOME (default "
        "~/.local/share), or remove them. The entry starts this installation's "
        "launcher by its absolute path.",
    )
    parser.add_argument("action", choices=("install", "remove"))
    parser.add_argument(
        "--launcher",
        metavar="COMMAND",
        help="the command the entry runs, starting with an absolute path "
        "(default: this installation's chenu-desktop)",
    )
    parser.set_defaults(run=run_desktop_entry, default_level=logging.WARNING)
