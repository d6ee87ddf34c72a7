"""Backend URLs and the configuration file."""

from __future__ import annotations

from pathlib import Path

import pytest

from chenu_desktop import (
    ConfigurationError,
    InvalidBackendError,
    TaskQueue,
    open_engine,
)
from chenu_desktop.backend import mask_url, parse_backend
from chenu_desktop.config import load_config, user_data_dir


def test_sqlite_url_forms(tmp_path: Path) -> None:
    three = parse_backend("sqlite:///srv/chenu/chenu.db")
    four = parse_backend("sqlite:////srv/chenu/chenu.db")
    assert three.path == Path("/srv/chenu/chenu.db")
    assert four.path == three.path
    assert three.url == "sqlite:///srv/chenu/chenu.db"
    plain = parse_backend(str(tmp_path / "x.db"))
    assert plain.kind == "sqlite"
    assert plain.path == tmp_path / "x.db"


def test_redis_url_accepted() -> None:
    spec = parse_backend("redis://127.0.0.1:6390/2")
    assert spec.kind == "redis"
    assert spec.path is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "empty backend URL"),
        ("postgres://db/x", "unsupported backend scheme 'postgres'"),
        ("sqlite://", "names no file"),
        ("redis://127.0.0.1:notaport/0", "invalid Redis URL"),
        ("redis://127.0.0.1:6390/abc", "database 'abc' is not a number"),
        ("redis://127.0.0.1:/0", "the port is empty"),
        ("redis://127.0.0.1:6390/0?colour=red", "colour"),
        (
            "redis://:s3cret@127.0.0.1:notaport/0",
            r"redis://:\*\*\*@127.0.0.1:notaport/0",
        ),
    ],
)
def test_bad_backend_rejected(url: str, message: str) -> None:
    with pytest.raises(InvalidBackendError, match=message):
        parse_backend(url)


def test_password_masked() -> None:
    assert (
        mask_url("redis://:s3cret@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    )
    assert mask_url("redis://ops:s3cret@127.0.0.1/0") == "redis://ops:***@127.0.0.1/0"
    assert mask_url("redis://127.0.0.1/0") == "redis://127.0.0.1/0"


def test_config_file_read(tmp_path: Path) -> None:
    path = tmp_path / "chenu.toml"
    path.write_text(
        'backend = "sqlite:///srv/c.db"\n'
        'operator = "ada"\n'
        "retention_days = 7\n"
        "[workers]\n"
        "default = 4\n"
        "governance = 2\n",
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.backend == "sqlite:///srv/c.db"
    assert config.operator_name == "ada"
    assert config.retention_days == 7
    assert config.workers[TaskQueue.DEFAULT] == 4
    assert config.workers[TaskQueue.GOVERNANCE] == 2
    assert config.workers[TaskQueue.LOW] == 1


def test_env_backend_overrides_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "chenu.toml"
    path.write_text('backend = "sqlite:///srv/file.db"\n', encoding="utf-8")
    monkeypatch.setenv("CHENU_BACKEND", "redis://127.0.0.1:6390/0")
    assert load_config(path).backend == "redis://127.0.0.1:6390/0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("retention_days = 0\n", "invalid retention_days 0"),
        ("[workers]\nurgent = 2\n", "unknown queue 'urgent'"),
        ("[workers]\ndefault = -1\n", "invalid worker count -1"),
        ("[workers]\ndefault = 'two'\n", "invalid worker count 'two'"),
        ("colour = 'red'\n", "unknown key 'colour'"),
        ("backend = [\n", "invalid TOML"),
        ("namespace = 'a-b'\n", "invalid namespace 'a-b'"),
        (
            "heartbeat_interval = 5\nheartbeat_timeout = 2\n",
            "invalid heartbeat_timeout",
        ),
    ],
)
def test_bad_config_rejected(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "chenu.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError, match=message):
        load_config(path)


def test_missing_explicit_config_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        load_config(tmp_path / "absent.toml")


def test_default_engine_uses_user_data_dir() -> None:
    engine = open_engine()
    try:
        assert engine.spec.kind == "sqlite"
        assert engine.spec.path == user_data_dir() / "chenu.db"
        assert engine.spec.path.is_file()
    finally:
        engine.close()


def test_bad_redis_url_hides_password() -> None:
    with pytest.raises(InvalidBackendError) as caught:
        parse_backend("redis://:s3cret@127.0.0.1:notaport/0")
    assert "s3cret" not in str(caught.value)


def test_non_database_file_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are notes, not a database\n" * 100, encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(InvalidBackendError, match="is not a SQLite database"):
        open_engine(f"sqlite://{path.as_posix()}")
    assert path.read_bytes() == before


def test_error_throttle_logs_once_then_counts(caplog: pytest.LogCaptureFixture) -> None:
    from chenu_desktop.pool import ErrorThrottle

    throttle = ErrorThrottle("reading queue x", interval=3600)
    with caplog.at_level("INFO", logger="chenu.pool"):
        for _ in range(50):
            try:
                raise ConnectionError("down")
            except ConnectionError:
                throttle.failed()
        throttle.succeeded()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "reading queue x failed",
        "reading queue x works again after 50 failures",
    ]
    assert caplog.records[0].exc_info is not None


def test_argument_limit_configurable(tmp_path: Path) -> None:
    path = tmp_path / "chenu.toml"
    path.write_text("max_argument_bytes = 4096\n", encoding="utf-8")
    assert load_config(path).max_argument_bytes == 4096
    path.write_text("max_argument_bytes = 10\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="invalid max_argument_bytes 10"):
        load_config(path)


@pytest.mark.parametrize(
    "text", ["redis//127.0.0.1:6379/0", "redis:/127.0.0.1:6379/0", "sqlite:/srv/x.db"]
)
def test_mistyped_url_not_taken_as_path(text: str) -> None:
    with pytest.raises(InvalidBackendError, match="has no '://'"):
        parse_backend(text)


def test_folder_named_like_a_scheme_is_a_path(tmp_path: Path) -> None:
    spec = parse_backend(str(tmp_path / "redis" / "x.db"))
    assert spec.kind == "sqlite"
    assert spec.path == tmp_path / "redis" / "x.db"


def test_relative_sqlite_url_rejected() -> None:
    with pytest.raises(InvalidBackendError, match="must be absolute") as caught:
        parse_backend("sqlite://relative/x.db")
    assert "sqlite:///srv/chenu/chenu.db" in str(caught.value)
