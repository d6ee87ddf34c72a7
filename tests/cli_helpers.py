"""Run the command line in-process and read what it printed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chenu_desktop.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    """Run a command with --json and return the parsed document on stdout."""
    code, out, err = run_cli(capsys, *argv, "--json")
    assert code == 0, err
    assert err == ""
    return json.loads(out)
