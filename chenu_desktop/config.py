"""Configuration: one typed object, loaded from a TOML file in the user config dir."""

from __future__ import annotations

import dataclasses
import getpass
import os
import secrets
import stat
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import platformdirs
import tomlkit

from .errors import ConfigurationError
from .models import TaskQueue

APP_NAME = "chenu-desktop"
#: Environment variable that overrides the configured backend URL.
BACKEND_VARIABLE = "CHENU_BACKEND"
#: Environment variable that points at another configuration file.
CONFIG_VARIABLE = "CHENU_CONFIG"

#: Worker threads per queue on a laptop: governance keeps its own, so it never
#: waits behind the other queues.
DEFAULT_WORKERS: dict[TaskQueue, int] = {
    TaskQueue.GOVERNANCE: 1,
    TaskQueue.HIGH: 2,
    TaskQueue.DEFAULT: 2,
    TaskQueue.LOW: 1,
    TaskQueue.SCHEDULED: 1,
}
MAX_WORKERS_PER_QUEUE = 64
#: Values of the ``theme`` key: follow the platform, or force one palette.
THEMES = ("system", "light", "dark")
#: Top-level keys of the configuration file, in the order `save_config` adds them.
CONFIG_KEYS = (
    "backend",
    "namespace",
    "operator",
    "retention_days",
    "heartbeat_interval",
    "heartbeat_timeout",
    "poll_interval",
    "change_retention",
    "max_argument_bytes",
    "theme",
    "close_to_tray",
    "workers",
)


def user_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def user_config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def user_log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def default_config_path() -> Path:
    return user_config_dir() / "config.toml"


def config_file_path(path: Path | str | None = None) -> Path:
    """Return `path`, else ``$CHENU_CONFIG``, else the default configuration file."""
    chosen = path or os.environ.get(CONFIG_VARIABLE) or default_config_path()
    return Path(chosen).expanduser()


def os_user_name() -> str:
    """Return the login name of the OS user, or ``operator`` when it is unknown."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def default_backend_url() -> str:
    """Return the embedded default: a SQLite file in the user data dir."""
    from .backend import sqlite_url

    return sqlite_url(user_data_dir() / "chenu.db")


def check_worker_count(queue: TaskQueue, value: Any) -> int:
    """Return a valid worker count for `queue`, or raise naming the range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(
            f"invalid worker count {value!r} for queue {queue.value!r}: "
            f"use an int from 0 to {MAX_WORKERS_PER_QUEUE}"
        )
    if not 0 <= value <= MAX_WORKERS_PER_QUEUE:
        raise ConfigurationError(
            f"invalid worker count {value} for queue {queue.value!r}: "
            f"use a value from 0 to {MAX_WORKERS_PER_QUEUE}"
        )
    return value


@dataclasses.dataclass
class Config:
    """Settings of one installation.

    Attributes:
        backend: ``sqlite:///PATH`` or ``redis://HOST:PORT/DB``; None for the
            embedded default in the user data dir.
        namespace: Prefix of every queue and ledger key, so several
            installations can share one Redis database.
        operator: Name recorded for operator actions; defaults to the OS user.
        retention_days: Age after which `cleanup` removes finished records.
        workers: Worker threads per queue.
        heartbeat_interval: Seconds between two heartbeats of the worker pool.
        heartbeat_timeout: Seconds without a heartbeat after which a worker
            counts as gone.
        poll_interval: Maximum wait in seconds of an idle SQLite worker before
            it looks at the queue again; local submits wake it at once.
        change_retention: Entries the change feed keeps.
        max_argument_bytes: Largest JSON size of a task's arguments that
            submit accepts, in bytes.
        theme: Palette of the window: one of `THEMES`.
        close_to_tray: Whether closing the window hides it and keeps the
            workers running behind the tray icon, instead of quitting.
        source: The file the settings were read from; None for the defaults.
    """

    backend: str | None = None
    namespace: str = "chenu"
    operator: str | None = None
    retention_days: int = 30
    workers: dict[TaskQueue, int] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_WORKERS)
    )
    heartbeat_interval: float = 2.0
    heartbeat_timeout: float = 30.0
    poll_interval: float = 1.0
    change_retention: int = 100_000
    max_argument_bytes: int = 1024 * 1024
    theme: str = "system"
    close_to_tray: bool = False
    source: Path | None = None

    @property
    def backend_url(self) -> str:
        return self.backend or default_backend_url()

    @property
    def operator_name(self) -> str:
        return self.operator or os_user_name()

    def __repr__(self) -> str:
        # The generated repr would show a Redis password in the backend URL.
        from .backend import mask_url

        parts = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "backend" and value is not None:
                value = mask_url(value)
            parts.append(f"{field.name}={value!r}")
        return f"Config({', '.join(parts)})"

    def with_backend(self, backend: str | None) -> Config:
        return dataclasses.replace(self, backend=backend or self.backend)


def _positive_number(key: str, value: Any, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigurationError(
            f"invalid {key} {value!r} in {source}: use a number above 0"
        )
    return float(value)


def config_from_mapping(
    data: Mapping[str, Any], source: str = "the configuration"
) -> Config:
    """Build a Config from parsed TOML, rejecting unknown keys and bad values."""
    config = Config()
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise ConfigurationError(
            f"unknown key {unknown[0]!r} in {source}: "
            f"use one of {', '.join(sorted(CONFIG_KEYS))}"
        )
    for key in ("backend", "namespace", "operator"):
        if key in data:
            value = data[key]
            if not isinstance(value, str) or (key != "operator" and not value.strip()):
                raise ConfigurationError(
                    f"invalid {key} {value!r} in {source}: use a non-empty string"
                )
            setattr(config, key, value.strip())
    if not config.namespace.replace("_", "").isalnum():
        raise ConfigurationError(
            f"invalid namespace {config.namespace!r} in {source}: "
            "use letters, digits and underscores only"
        )
    if "retention_days" in data:
        days = data["retention_days"]
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise ConfigurationError(
                f"invalid retention_days {days!r} in {source}: use a whole number of 1 or more"
            )
        config.retention_days = days
    if "change_retention" in data:
        entries = data["change_retention"]
        if isinstance(entries, bool) or not isinstance(entries, int) or entries < 1000:
            raise ConfigurationError(
                f"invalid change_retention {entries!r} in {source}: "
                "use a whole number of 1000 or more"
            )
        config.change_retention = entries
    if "max_argument_bytes" in data:
        limit = data["max_argument_bytes"]
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1024:
            raise ConfigurationError(
                f"invalid max_argument_bytes {limit!r} in {source}: "
                "use a whole number of bytes, 1024 or more"
            )
        config.max_argument_bytes = limit
    for key in ("heartbeat_interval", "heartbeat_timeout", "poll_interval"):
        if key in data:
            setattr(config, key, _positive_number(key, data[key], source))
    if config.heartbeat_timeout <= config.heartbeat_interval:
        raise ConfigurationError(
            f"invalid heartbeat_timeout {config.heartbeat_timeout} in {source}: "
            f"use more than heartbeat_interval ({config.heartbeat_interval})"
        )
    if "workers" in data:
        workers = data["workers"]
        if not isinstance(workers, Mapping):
            raise ConfigurationError(
                f"invalid workers {workers!r} in {source}: use a table such as "
                "[workers] with default = 2"
            )
        for name, count in workers.items():
            try:
                queue = TaskQueue(name)
            except ValueError:
                names = ", ".join(q.value for q in TaskQueue)
                raise ConfigurationError(
                    f"unknown queue {name!r} in [workers] of {source}: use one of {names}"
                ) from None
            config.workers[queue] = check_worker_count(queue, count)
    _read_window_keys(config, data, source)
    return config


def _read_window_keys(config: Config, data: Mapping[str, Any], source: str) -> None:
    """Set the theme and the close-to-tray choice of `config` from `data`."""
    if "theme" in data:
        theme = data["theme"]
        if not isinstance(theme, str) or theme.strip().lower() not in THEMES:
            raise ConfigurationError(
                f'invalid theme {theme!r} in {source}: use "system", "light" or "dark"'
            )
        config.theme = theme.strip().lower()
    if "close_to_tray" in data:
        close_to_tray = data["close_to_tray"]
        if not isinstance(close_to_tray, bool):
            raise ConfigurationError(
                f"invalid close_to_tray {close_to_tray!r} in {source}: "
                "use true or false"
            )
        config.close_to_tray = close_to_tray


def _read_config_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None


def _invalid_toml_error(path: Path, exc: Exception) -> ConfigurationError:
    return ConfigurationError(
        f"invalid TOML in {path}: {exc}; fix the file or pass another with --config"
    )


def load_config(path: Path | str | None = None) -> Config:
    """Load the configuration file; a missing default file means the defaults.

    The file is `path`, else ``$CHENU_CONFIG``, else ``config.toml`` in the
    user config dir. ``$CHENU_BACKEND`` overrides the file's backend.

    Raises:
        ConfigurationError: The file named explicitly is missing, or the file
            is not valid TOML or has an invalid value.
    """
    explicit = path is not None or bool(os.environ.get(CONFIG_VARIABLE))
    config_path = config_file_path(path)
    if config_path.is_file():
        text = _read_config_text(config_path)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise _invalid_toml_error(config_path, exc) from None
        config = config_from_mapping(data, str(config_path))
        config.source = config_path
    elif explicit:
        raise ConfigurationError(
            f"configuration file {config_path} not found: create it or pass another "
            "with --config"
        )
    else:
        config = Config()
    backend = os.environ.get(BACKEND_VARIABLE)
    if backend:
        config.backend = backend.strip()
    return config


def config_to_mapping(config: Config) -> dict[str, Any]:
    """Return the settings of `config` as TOML values keyed like the file.

    The backend and the operator are left out while they are None, because
    None means the default and TOML has no null.
    """
    mapping: dict[str, Any] = {
        "backend": config.backend,
        "namespace": config.namespace,
        "operator": config.operator,
        "retention_days": config.retention_days,
        "workers": {queue.value: config.workers[queue] for queue in config.workers},
        "heartbeat_interval": config.heartbeat_interval,
        "heartbeat_timeout": config.heartbeat_timeout,
        "poll_interval": config.poll_interval,
        "change_retention": config.change_retention,
        "max_argument_bytes": config.max_argument_bytes,
        "theme": config.theme,
        "close_to_tray": config.close_to_tray,
    }
    return {key: value for key, value in mapping.items() if value is not None}


def save_config(
    config: Config,
    path: Path | str | None = None,
    keys: Collection[str] | None = None,
) -> Path:
    """Write the settings of `config` to a TOML file, replacing it atomically.

    The file is `path`, else ``config.source``, else the file `load_config`
    reads. Keys and tables that are not in `keys` stay as they are, comments
    and unknown keys included, because the file is edited with tomlkit rather
    than rewritten. A key missing from the file is only added when its value
    differs from the default; a backend or operator of None removes the key.

    The new text goes to a temporary file in the same folder, created with
    the user's umask, then replaces the old file in one rename, so a crash
    leaves the old or the new file and never half of one. A file that already
    exists keeps its permission bits. A symbolic link is written through.

    Args:
        config: The settings to write.
        path: The file to write.
        keys: The top-level keys to write (``workers`` is the whole table);
            None writes every key of `CONFIG_KEYS`.

    Returns:
        The path of the file written.

    Raises:
        ConfigurationError: A value is invalid, or the existing file is not
            valid TOML; nothing is written then.
        InvalidBackendError: The backend URL is invalid; nothing is written.
        OSError: Writing the file failed; the old file is left unchanged.
    """
    from .backend import parse_backend

    target = Path(path) if path is not None else config.source or config_file_path()
    target = target.expanduser()
    chosen = frozenset(CONFIG_KEYS if keys is None else keys)
    unknown = sorted(chosen - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(
            f"unknown configuration key {unknown[0]!r}: use one of "
            f"{', '.join(CONFIG_KEYS)}"
        )

    mapping = config_to_mapping(config)
    config_from_mapping(mapping, f"the settings for {target}")
    if "backend" in chosen and config.backend is not None:
        parse_backend(config.backend)

    document = _read_document(target)
    defaults = config_to_mapping(Config())
    for key in (key for key in CONFIG_KEYS if key in chosen):
        if key == "workers":
            _update_workers(document, config.workers)
        else:
            _update_key(document, key, mapping.get(key), defaults.get(key))
    text = tomlkit.dumps(document)
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Parsing the output with tomllib, as load_config does, keeps a
        # tomlkit bug from writing a file that the next start rejects.
        raise ConfigurationError(
            f"saving {target} failed: the new text is not valid TOML ({exc}); "
            "the file was left unchanged"
        ) from None
    return _write_atomically(target, text)


def _read_document(path: Path) -> tomlkit.TOMLDocument:
    if not path.is_file():
        return tomlkit.document()
    text = _read_config_text(path)
    try:
        tomllib.loads(text)
        return tomlkit.parse(text)
    except (tomllib.TOMLDecodeError, tomlkit.exceptions.ParseError) as exc:
        raise _invalid_toml_error(path, exc) from None


def _plain(item: Any) -> Any:
    """Return a tomlkit item as the Python value it contains."""
    return item.unwrap() if hasattr(item, "unwrap") else item


def _update_key(
    document: tomlkit.TOMLDocument, key: str, value: Any, default: Any
) -> None:
    if value is None:
        document.pop(key, None)
    elif key in document:
        current = _plain(document[key])
        # Assigning an equal value would still reformat the line, so skip it;
        # an int of 2 stays as written for a float setting of 2.0.
        if current != value or isinstance(current, bool) != isinstance(value, bool):
            document[key] = value
    elif value != default:
        document[key] = value


def _update_workers(
    document: tomlkit.TOMLDocument, workers: Mapping[TaskQueue, int]
) -> None:
    table = document.get("workers")
    if not isinstance(table, Mapping):
        if all(workers.get(q) == DEFAULT_WORKERS[q] for q in TaskQueue):
            return
        document["workers"] = tomlkit.table()
        table = document["workers"]
    for queue in TaskQueue:
        count = workers.get(queue, DEFAULT_WORKERS[queue])
        if queue.value in table:
            if _plain(table[queue.value]) != count:
                table[queue.value] = count
        elif count != DEFAULT_WORKERS[queue]:
            table[queue.value] = count


def _write_atomically(target: Path, text: str) -> Path:
    target = target.resolve()
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    try:
        mode: int | None = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = None
    temporary = folder / f".{target.name}.{secrets.token_hex(6)}.tmp"
    # 0o666 lets the umask decide, as for any file the user creates.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target
