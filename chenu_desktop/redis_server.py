"""A redis-server started on a free loopback port, for the bench and the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from .errors import ChenuError


class RedisServerError(ChenuError):
    """The local redis-server is missing, exited or did not respond."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalRedisServer:
    """A redis-server bound to 127.0.0.1 on a free port.

    Without `appendonly` it keeps no data on disk. With it, every write goes to
    the append-only file in `workdir`, so the data survives a stop and start.
    """

    def __init__(self, workdir: Path, appendonly: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerError(
                "redis-server not found on PATH: install it "
                "(Debian: apt-get install redis-server)"
            )
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", "everysec",
                "--dir", str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if self.process.poll() is not None:
                        raise RedisServerError(
                            f"redis-server exited with code {self.process.returncode}"
                        ) from None
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RedisServerError(
                            f"redis-server did not respond on port {self.port} "
                            f"within {timeout:g} s"
                        ) from None
                    # The port is not listening yet: there is nothing to wait on.
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server by its pid; a server that ignores SIGTERM is killed."""
        if self.process is None:
            return
        stop_process(self.process, 10.0)
        self.process = None


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Send SIGTERM to a child process, and kill it if it runs `timeout` s later."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
