"""Configuration: one typed object, loaded from a TOML file in the user config dir."""

from __future__ import annotations

import dataclasses
import getpass
import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

import platformdirs

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


def user_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def user_config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def user_log_dir() -> Path:
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def default_config_path() -> Path:
    return user_config_dir() / "config.toml"


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
    source: Path | None = None

    @property
    def backend_url(self) -> str:
        return self.backend or default_backend_url()

    @property
    def operator_name(self) -> str:
        if self.operator:
            return self.operator
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "operator"

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
    known = {
        "backend",
        "namespace",
        "operator",
        "retention_days",
        "workers",
        "heartbeat_interval",
        "heartbeat_timeout",
        "poll_interval",
        "change_retention",
        "max_argument_bytes",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigurationError(
            f"unknown key {unknown[0]!r} in {source}: use one of {', '.join(sorted(known))}"
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
    return config


def load_config(path: Path | str | None = None) -> Config:
    """Load the configuration file; a missing default file means the defaults.

    The file is `path`, else ``$CHENU_CONFIG``, else ``config.toml`` in the
    user config dir. ``$CHENU_BACKEND`` overrides the file's backend.

    Raises:
        ConfigurationError: The file named explicitly is missing, or the file
            is not valid TOML or has an invalid value.
    """
    explicit = path is not None or bool(os.environ.get(CONFIG_VARIABLE))
    config_path = Path(path or os.environ.get(CONFIG_VARIABLE) or default_config_path())
    config_path = config_path.expanduser()
    if config_path.is_file():
        try:
            data = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(
                f"invalid TOML in {config_path}: {exc}; fix the file or pass another "
                "with --config"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"cannot read {config_path}: {exc}") from None
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
