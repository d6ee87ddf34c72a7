"""Fixtures for the window's tests: a real engine and a background runner."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from chenu_desktop.engine import Engine  # noqa: E402
from chenu_desktop.ui.background import BackgroundRunner  # noqa: E402

from engine_helpers import open_test_engine  # noqa: E402


@pytest.fixture
def ui_engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine on a fresh SQLite file with its workers running."""
    engine = open_test_engine(f"sqlite://{(tmp_path / 'ui.db').as_posix()}")
    engine.start_workers()
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture
def idle_engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine on a fresh SQLite file without workers, for static data."""
    engine = open_test_engine(f"sqlite://{(tmp_path / 'idle.db').as_posix()}")
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture
def runner(qapp) -> Iterator[BackgroundRunner]:  # type: ignore[no-untyped-def]
    runner = BackgroundRunner()
    try:
        yield runner
    finally:
        runner.close()
