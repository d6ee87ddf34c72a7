"""Saving the configuration file, and the theme and tray keys."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest

from chenu_desktop import ConfigurationError, InvalidBackendError, TaskQueue
from chenu_desktop.backend import join_password, split_password
from chenu_desktop.config import Config, load_config, save_config

FULL_FILE = """\
# Settings of the control room.
backend = "sqlite:///srv/chenu/chenu.db"  # shared by the team
namespace = "ops"
operator = "ada"
retention_days = 14
heartbeat_interval = 3
heartbeat_timeout = 40.0
poll_interval = 0.5
change_retention = 5000
max_argument_bytes = 4096
theme = "dark"
close_to_tray = true

[workers]  # per queue
governance = 2
high = 3
default = 4
low = 0
scheduled = 1
"""


def test_save_round_trip_equal(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(FULL_FILE, encoding="utf-8")
    loaded = load_config(path)

    save_config(loaded, path)

    assert load_config(path) == loaded
    assert path.read_text(encoding="utf-8") == FULL_FILE


def test_save_keeps_comments_and_other_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(FULL_FILE + "\n[window]  # written by a newer version\nx = 1\n")
    config = Config(
        backend="sqlite:///srv/chenu/chenu.db",
        namespace="ops",
        retention_days=7,
        workers={**Config().workers, TaskQueue.LOW: 5},
        theme="light",
    )

    save_config(config, path, keys={"retention_days", "workers", "theme"})

    text = path.read_text(encoding="utf-8")
    assert "# Settings of the control room." in text
    assert "# shared by the team" in text
    assert "[workers]  # per queue" in text
    assert "[window]  # written by a newer version\nx = 1" in text
    assert 'operator = "ada"' in text
    assert "retention_days = 7\n" in text
    assert 'theme = "light"\n' in text
    assert "low = 5\n" in text
    assert "default = 2\n" in text


def test_save_new_file_skips_defaults(tmp_path: Path) -> None:
    path = tmp_path / "new" / "config.toml"
    config = dataclasses.replace(Config(), theme="dark", operator="ada")

    save_config(config, path)

    assert path.read_text(encoding="utf-8") == 'operator = "ada"\ntheme = "dark"\n'
    assert load_config(path) == dataclasses.replace(config, source=path)


def test_save_none_removes_key(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(FULL_FILE, encoding="utf-8")
    config = dataclasses.replace(load_config(path), backend=None, operator=None)

    save_config(config, path)

    text = path.read_text(encoding="utf-8")
    assert "backend" not in text
    assert "operator" not in text
    assert load_config(path).backend is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"retention_days": 0}, "invalid retention_days 0 .*1 or more"),
        ({"theme": "blue"}, 'invalid theme \'blue\' .*"system", "light" or "dark"'),
        ({"close_to_tray": "yes"}, "invalid close_to_tray 'yes' .*true or false"),
        ({"namespace": "a-b"}, "invalid namespace 'a-b' .*underscores"),
        (
            {"workers": {**Config().workers, TaskQueue.HIGH: 65}},
            "invalid worker count 65 for queue 'high'",
        ),
    ],
)
def test_save_invalid_writes_nothing(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(FULL_FILE, encoding="utf-8")
    config = dataclasses.replace(load_config(path), **change)

    with pytest.raises(ConfigurationError, match=message):
        save_config(config, path)

    assert path.read_text(encoding="utf-8") == FULL_FILE
    assert not list(tmp_path.glob(".config.toml.*"))


def test_save_invalid_backend_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(FULL_FILE, encoding="utf-8")
    config = dataclasses.replace(
        load_config(path), backend="redis://:s3cret@127.0.0.1:notaport/0"
    )

    with pytest.raises(InvalidBackendError) as raised:
        save_config(config, path)

    assert "s3cret" not in str(raised.value)
    assert path.read_text(encoding="utf-8") == FULL_FILE


def test_save_rejects_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("retention_days = = 3\n", encoding="utf-8")

    with pytest.raises(ConfigurationError, match="invalid TOML"):
        save_config(Config(theme="dark"), path)

    assert path.read_text(encoding="utf-8") == "retention_days = = 3\n"


def test_save_new_file_uses_umask(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    previous = os.umask(0o027)
    try:
        save_config(Config(theme="dark"), path)
    finally:
        os.umask(previous)

    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_save_keeps_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(FULL_FILE, encoding="utf-8")
    path.chmod(0o600)

    save_config(dataclasses.replace(load_config(path), theme="light"), path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_config(path).theme == "light"


def test_save_writes_through_link(tmp_path: Path) -> None:
    real = tmp_path / "real.toml"
    real.write_text(FULL_FILE, encoding="utf-8")
    link = tmp_path / "config.toml"
    link.symlink_to(real)

    save_config(dataclasses.replace(load_config(link), theme="light"), link)

    assert link.is_symlink()
    assert load_config(real).theme == "light"


def test_save_default_path_is_source(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(FULL_FILE, encoding="utf-8")
    config = dataclasses.replace(load_config(path), retention_days=9)

    assert save_config(config) == path.resolve()

    assert load_config(path).retention_days == 9


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('theme = "Blue"', "invalid theme 'Blue'"),
        ("theme = 1", "invalid theme 1"),
        ('close_to_tray = "true"', "invalid close_to_tray 'true'"),
        ("close_to_tray = 1", "invalid close_to_tray 1"),
    ],
)
def test_theme_and_tray_rejected(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text + "\n", encoding="utf-8")

    with pytest.raises(ConfigurationError, match=message):
        load_config(path)


def test_theme_and_tray_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('theme = " Dark "\n', encoding="utf-8")

    assert load_config(path).theme == "dark"
    assert load_config(path).close_to_tray is False
    assert Config().theme == "system"


def test_config_repr_masks_password() -> None:
    config = Config(backend="redis://:s3cret@127.0.0.1:6379/0")

    assert "s3cret" not in repr(config)
    assert "redis://:***@127.0.0.1:6379/0" in repr(config)


@pytest.mark.parametrize(
    ("url", "bare", "password"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0", ""),
        ("redis://:pw@127.0.0.1:6379/0", "redis://127.0.0.1:6379/0", "pw"),
        ("redis://ops:p%40ss@127.0.0.1/0", "redis://ops@127.0.0.1/0", "p@ss"),
        ("unix://:pw@/run/redis.sock?db=1", "unix:///run/redis.sock?db=1", "pw"),
        ("unix:///run/redis.sock", "unix:///run/redis.sock", ""),
    ],
)
def test_password_split_and_join(url: str, bare: str, password: str) -> None:
    assert split_password(url) == (bare, password)
    assert split_password(join_password(bare, password)) == (bare, password)


def test_joined_password_encoded() -> None:
    url = join_password("redis://127.0.0.1:6379/0", "a@b/:c")

    assert url == "redis://:a%40b%2F%3Ac@127.0.0.1:6379/0"
