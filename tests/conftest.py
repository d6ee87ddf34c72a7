"""Fixtures: a real redis-server on a free loopback port, and fresh backends."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest
import redis

from engine_helpers import backend_url
from redis_helpers import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The URL of an empty database on the session's redis-server."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    yield redis_server.url


@pytest.fixture(params=["sqlite", "redis"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A backend URL, once for a fresh SQLite file and once for an empty Redis."""
    redis_url = (
        request.getfixturevalue("redis_url") if request.param == "redis" else None
    )
    return backend_url(request.param, tmp_path, redis_url)


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "chenu.db"


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep config, data and logs of the code under test inside the test's folder."""
    for variable, folder in (
        ("XDG_DATA_HOME", "data"),
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        path = tmp_path / "xdg" / folder
        path.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(variable, str(path))
    monkeypatch.delenv("CHENU_BACKEND", raising=False)
    monkeypatch.delenv("CHENU_CONFIG", raising=False)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
