"""One window per data directory, checked with real app processes."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from chenu_desktop.backend import parse_backend  # noqa: E402
from chenu_desktop.ui.single_instance import (  # noqa: E402
    InstanceGuard,
    instance_key,
    lock_path,
)

START_TIMEOUT = 60.0


class AppProcess:
    """The whole app, window and workers, in a process of its own (offscreen)."""

    def __init__(self, url: str, home: Path) -> None:
        self.url = url
        env = {
            **os.environ,
            "QT_QPA_PLATFORM": "offscreen",
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_STATE_HOME": str(home / "state"),
        }
        self.args = [*self.launcher(), "--backend", url]
        self.env = env
        self.process = subprocess.Popen(
            self.args,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def launcher(self) -> list[str]:
        return [sys.executable, "-m", "chenu_desktop"]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float = START_TIMEOUT) -> str:
        """Return the first output line containing `text`, reading as it comes."""
        for line in self.seen:
            if text in line:
                return line
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"no line with {text!r} within {timeout} s; output so far:\n"
                    + "\n".join(self.seen)
                ) from None
            if line is None:
                raise AssertionError(
                    f"the app ended (status {self.process.wait()}) without {text!r}:\n"
                    + "\n".join(self.seen)
                )
            self.seen.append(line)
            if text in line:
                return line

    def second_launch(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.args,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
        )

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=START_TIMEOUT)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=START_TIMEOUT)

    def close(self) -> None:
        """End the process if it still runs and release its pipe."""
        if self.process.poll() is None:
            self.kill()
        self.reader.join(timeout=START_TIMEOUT)
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[list[AppProcess]]:
    started: list[AppProcess] = []
    yield started
    for app in started:
        app.close()


def start_app(apps: list[AppProcess], url: str, home: Path) -> AppProcess:
    app = AppProcess(url, home)
    apps.append(app)
    app.wait_for("window open on")
    return app


@pytest.mark.slow
def test_second_launch_brings_the_first_window_forward(
    tmp_path: Path, apps: list[AppProcess]
) -> None:
    url = f"sqlite://{(tmp_path / 'one.db').as_posix()}"
    first = start_app(apps, url, tmp_path)
    second = first.second_launch()
    assert second.returncode == 0, second.stderr
    assert (
        f"CHE·NU Desktop is already running on {url} (process {first.process.pid}); "
        "its window was brought forward." in second.stdout
    )
    # The second launch opened no engine: it started no workers on the file.
    assert "engine opened" not in second.stderr
    first.wait_for("a second launch asked for this window")
    assert first.stop() == 0
    first.wait_for("engine closed")
    assert not lock_path(parse_backend(url), "chenu", tmp_path).exists()


@pytest.mark.slow
def test_each_data_directory_has_its_own_window(
    tmp_path: Path, apps: list[AppProcess]
) -> None:
    one = start_app(
        apps, f"sqlite://{(tmp_path / 'a' / 'one.db').as_posix()}", tmp_path
    )
    two = start_app(
        apps, f"sqlite://{(tmp_path / 'b' / 'two.db').as_posix()}", tmp_path
    )
    assert one.stop() == 0
    assert two.stop() == 0


@pytest.mark.slow
def test_killed_window_leaves_no_claim(tmp_path: Path, apps: list[AppProcess]) -> None:
    url = f"sqlite://{(tmp_path / 'one.db').as_posix()}"
    first = start_app(apps, url, tmp_path)
    first.kill()
    # The lock file and the socket stay behind; the next launch takes both over.
    assert lock_path(parse_backend(url), "chenu", tmp_path).exists()
    again = start_app(apps, url, tmp_path)
    second = again.second_launch()
    assert second.returncode == 0
    assert f"(process {again.process.pid})" in second.stdout
    assert again.stop() == 0


def test_guard_is_exclusive_until_released(qapp, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = parse_backend(f"sqlite://{(tmp_path / 'x.db').as_posix()}")
    key = instance_key(spec, "chenu")
    path = lock_path(spec, "chenu", tmp_path)
    assert path == tmp_path / "x.db.window.lock"
    first = InstanceGuard(key, path)
    second = InstanceGuard(key, path)
    try:
        assert first.acquire()
        assert not second.acquire()
        assert second.owner_pid() == os.getpid()
        first.release()
        assert second.acquire()
    finally:
        first.release()
        second.release()


def test_keys_tell_backends_apart(tmp_path: Path) -> None:
    a = parse_backend(f"sqlite://{(tmp_path / 'a.db').as_posix()}")
    same_a = parse_backend(f"sqlite://{(tmp_path / 'sub' / '..' / 'a.db').as_posix()}")
    b = parse_backend(f"sqlite://{(tmp_path / 'b.db').as_posix()}")
    red = parse_backend("redis://127.0.0.1:6390/0")
    assert instance_key(a, "chenu") == instance_key(same_a, "chenu")
    assert instance_key(a, "chenu") != instance_key(b, "chenu")
    assert instance_key(red, "chenu") != instance_key(red, "other")
    assert lock_path(red, "chenu", tmp_path).parent == tmp_path
