"""Backend URLs, the Huey instance of each queue and the matching ledger."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import sqlite3
import struct
import time
import urllib.parse
from pathlib import Path
from typing import Any

import redis
from huey import PriorityRedisHuey, SqliteHuey
from huey.api import Huey, Task
from huey.registry import Message
from huey.serializer import Serializer
from huey.storage import SqliteStorage

from .audit.store import AuditStore
from .errors import BackendUnavailableError, InvalidBackendError
from .ledger.base import Ledger
from .ledger.redis_ledger import QueueEntry
from .ledger.sqlite_ledger import PAGE_SIZE
from .scheduling.store import ScheduleStore
from .models import TaskQueue
from .sentinel import SentinelTarget, parse_sentinel_url

#: How long Huey's own dequeue blocks on an empty Redis queue. The pool's
#: workers block through `WorkerThread._blocking_pop` instead.
REDIS_READ_TIMEOUT = 0.5


@dataclasses.dataclass(frozen=True)
class BackendSpec:
    """A parsed backend URL."""

    kind: str  # "sqlite" or "redis"
    url: str
    path: Path | None = None
    #: The sentinels that name the Redis master, for ``redis+sentinel://``.
    sentinel: SentinelTarget | None = None

    @property
    def display(self) -> str:
        return mask_url(self.url)


def mask_url(url: str) -> str:
    """Return the URL with every password replaced by ``***``.

    That is the one before ``@`` and the value of each query option whose
    name ends in ``password`` (``password``, ``sentinel_password``).
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        # urlsplit rejects an unbalanced IPv6 bracket, which the message that
        # reports it must still show masked.
        return _mask_unsplittable(url)
    masked = parts._replace(query=_mask_query(parts.query))
    if "@" in parts.netloc:
        credentials, _, host = parts.netloc.rpartition("@")
        if ":" in credentials:
            user = credentials.split(":", 1)[0]
            masked = masked._replace(netloc=f"{user}:***@{host}")
    if masked == parts:
        return url
    return urllib.parse.urlunsplit(masked)


def _mask_unsplittable(url: str) -> str:
    base, question, query = url.partition("?")
    bounds = _credentials_bounds(base)
    if bounds is not None and ":" in base[bounds[0] : bounds[1]]:
        start, at = bounds
        user = base[start:at].split(":", 1)[0]
        base = f"{base[:start]}{user}:***{base[at:]}"
    return base + question + _mask_query(query)


def _mask_query(query: str) -> str:
    options = []
    for option in query.split("&"):
        name, equals, value = option.partition("=")
        if equals and value and name.lower().endswith("password"):
            option = f"{name}=***"
        options.append(option)
    return "&".join(options)


def _credentials_bounds(url: str) -> tuple[int, int] | None:
    """Return where the ``user:password`` part of a URL starts and ends, if any."""
    scheme_end = url.find("://")
    if scheme_end < 0:
        return None
    start = scheme_end + 3
    end = len(url)
    for separator in "/?#":
        position = url.find(separator, start)
        if position >= 0:
            end = min(end, position)
    at = url.rfind("@", start, end)
    if at < 0:
        return None
    return start, at


def split_password(url: str) -> tuple[str, str]:
    """Split a URL into the URL without its password and the decoded password.

    A user name stays in the URL (``redis://ops@host/0``). The URL comes back
    unchanged, with an empty password, when it has none.
    """
    bounds = _credentials_bounds(url)
    if bounds is None:
        return url, ""
    start, at = bounds
    user, colon, password = url[start:at].partition(":")
    if not colon:
        return url, ""
    prefix = url[:start]
    rest = url[at + 1 :]
    bare = f"{prefix}{user}@{rest}" if user else f"{prefix}{rest}"
    return bare, urllib.parse.unquote(password)


def join_password(url: str, password: str) -> str:
    """Return the URL with `password` (percent-encoded) in its credentials.

    An empty password returns the URL unchanged. The URL must have none yet.
    """
    if not password:
        return url
    scheme_end = url.find("://")
    if scheme_end < 0:
        raise ValueError(f"URL {mask_url(url)!r} has no scheme: use redis://HOST")
    start = scheme_end + 3
    bounds = _credentials_bounds(url)
    user = url[start : bounds[1]] if bounds is not None else ""
    rest = url[bounds[1] + 1 :] if bounds is not None else url[start:]
    encoded = urllib.parse.quote(password, safe="")
    return f"{url[:start]}{user}:{encoded}@{rest}"


def _check_redis_url(text: str) -> None:
    """Reject Redis URLs that redis-py would misread or fail on later."""
    shown = mask_url(text)
    parts = urllib.parse.urlsplit(text)
    fix = "use redis://[:PASSWORD@]HOST:PORT/DB, for example redis://127.0.0.1:6379/0"
    if parts.scheme in ("redis", "rediss"):
        if parts.netloc.endswith(":"):
            raise InvalidBackendError(
                f"invalid Redis URL {shown!r}: the port is empty; {fix}"
            )
        try:
            parts.port
        except ValueError:
            raise InvalidBackendError(
                f"invalid Redis URL {shown!r}: the port is not a number; {fix}"
            ) from None
        database = parts.path.strip("/")
        if database and not database.isdigit():
            raise InvalidBackendError(
                f"invalid Redis URL {shown!r}: database {database!r} is not a number; {fix}"
            )
    try:
        pool = redis.ConnectionPool.from_url(text)
        # Builds a connection object without connecting; unknown query
        # options fail here rather than at the first command.
        pool.make_connection()
    except (ValueError, TypeError) as exc:
        reason = str(exc).replace(text, shown)
        raise InvalidBackendError(
            f"invalid Redis URL {shown!r}: {reason}; {fix}"
        ) from None


def parse_backend(url: str) -> BackendSpec:
    """Parse ``sqlite:///PATH``, a plain file path, a ``redis://`` URL or a
    ``redis+sentinel://`` URL.

    Raises:
        InvalidBackendError: The URL has another scheme or no path.
    """
    text = url.strip()
    if not text:
        raise InvalidBackendError(
            "empty backend URL: use sqlite:///PATH/chenu.db or redis://HOST:6379/0"
        )
    scheme = text.split(":", 1)[0].lower() if "://" in text else ""
    if scheme == "redis+sentinel":
        target = parse_sentinel_url(text, mask_url(text))
        return BackendSpec("redis", text, sentinel=target)
    if scheme in ("redis", "rediss", "unix"):
        _check_redis_url(text)
        return BackendSpec("redis", text)
    if scheme == "sqlite":
        raw = text[len("sqlite://") :]
        if raw.startswith("//"):
            raw = raw[1:]
        raw = urllib.parse.unquote(raw)
        if raw in ("", "/"):
            raise InvalidBackendError(
                f"invalid SQLite URL {text!r}: it names no file; "
                "use sqlite:///PATH/chenu.db"
            )
        path = Path(raw).expanduser()
        if not path.is_absolute():
            raise InvalidBackendError(
                f"invalid SQLite URL {text!r}: the path after sqlite:// must be "
                f"absolute, as in sqlite:///srv/chenu/chenu.db; for {raw!r} relative "
                "to the current folder, pass the plain path instead"
            )
        return BackendSpec("sqlite", sqlite_url(path), path)
    if scheme:
        raise InvalidBackendError(
            f"unsupported backend scheme {scheme!r} in {mask_url(text)!r}: "
            "use sqlite:///PATH/chenu.db, redis://HOST:6379/0 or "
            "redis+sentinel://HOST:26379/SERVICE/0"
        )
    mistyped = _MISTYPED_URL.match(text)
    if mistyped:
        raise InvalidBackendError(
            f"invalid backend URL {mask_url(text)!r}: it starts like a "
            f"{mistyped.group(1)} URL but has no '://', so it would be read as a "
            f"file path; write it as {mistyped.group(1)}://…"
        )
    path = Path(text).expanduser().resolve()
    return BackendSpec("sqlite", sqlite_url(path), path)


# A scheme name followed by ':' or '/' in place of '://', such as redis//host:6379.
_MISTYPED_URL = re.compile(r"^(redis|rediss|unix|sqlite)(?::|//)", re.IGNORECASE)


def sqlite_url(path: Path) -> str:
    """Return the URL of a SQLite file; an absolute path gives ``sqlite:///PATH``."""
    posix = path.as_posix()
    return f"sqlite://{posix}" if posix.startswith("/") else f"sqlite:///{posix}"


class JsonMessageSerializer(Serializer):
    """Encodes Huey messages as JSON, so reading a queue never runs stored code.

    Only the fields this package uses travel: the id, the Huey task name,
    the ETA, the priority and the arguments (the ledger task id).
    """

    def _serialize(self, data: Any) -> bytes:
        if isinstance(data, Message):
            eta = data.eta.isoformat() if data.eta is not None else None
            payload = {
                "id": data.id,
                "name": data.name,
                "eta": eta,
                "priority": data.priority,
                "args": list(data.args or ()),
            }
            return json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return json.dumps(data, separators=(",", ":")).encode("utf-8")

    def _deserialize(self, data: bytes) -> Any:
        payload = json.loads(data)
        if isinstance(payload, dict) and "name" in payload and "id" in payload:
            eta = payload.get("eta")
            return Message(
                id=payload["id"],
                name=payload["name"],
                eta=dt.datetime.fromisoformat(eta) if eta else None,
                retries=0,
                retry_delay=0,
                retry_backoff=1,
                priority=payload.get("priority"),
                expires=None,
                on_complete=None,
                on_error=None,
                args=tuple(payload.get("args") or ()),
                kwargs={},
            )
        return payload


class _TunedSqliteStorage(SqliteStorage):
    """Huey's SQLite storage with ``synchronous=NORMAL`` under WAL.

    NORMAL keeps the file consistent after a crash; a power cut may lose the
    last commits. Huey's own ``fsync=False`` would mean OFF instead. A file
    this storage creates gets the ledger's page size.
    """

    def _set_journal_mode(self, conn: sqlite3.Connection) -> None:
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
        super()._set_journal_mode(conn)

    def _create_connection(self) -> sqlite3.Connection:
        conn = super()._create_connection()
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn


def redis_pool(spec: BackendSpec, **options: Any) -> redis.ConnectionPool:
    """Create a connection pool of the backend's Redis server.

    Behind Sentinel the pool connects to the master the sentinels name at
    each new connection, so it follows a failover by itself. `options`
    override connection options of the URL, such as ``socket_timeout``.
    """
    if spec.sentinel is not None:
        return spec.sentinel.master_pool(**options)
    return redis.ConnectionPool.from_url(spec.url, **options)


def redis_client(spec: BackendSpec, **options: Any) -> redis.Redis:
    """Open a client of the backend's Redis server; closing it closes its pool."""
    return redis.Redis.from_pool(redis_pool(spec, **options))


def huey_name(namespace: str, queue: TaskQueue) -> str:
    """Return the Huey (storage) name of a queue; Redis cleans it to word characters."""
    return f"{namespace}_{queue.value}"


def create_huey(spec: BackendSpec, namespace: str, queue: TaskQueue) -> Huey:
    """Create the Huey instance of one queue. Huey's result store stays off."""
    serializer = JsonMessageSerializer()
    name = huey_name(namespace, queue)
    if spec.kind == "sqlite":
        assert spec.path is not None
        spec.path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteHuey(
            name,
            filename=str(spec.path),
            results=False,
            serializer=serializer,
            storage_class=_TunedSqliteStorage,
            timeout=30,
        )
    return PriorityRedisHuey(
        name,
        connection_pool=redis_pool(spec),
        results=False,
        serializer=serializer,
        blocking=True,
        read_timeout=REDIS_READ_TIMEOUT,
    )


def is_future(naive_eta: dt.datetime | None) -> bool:
    """Return whether a naive UTC ETA of a Huey message is later than now."""
    if naive_eta is None:
        return False
    return naive_eta > dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def redis_queue_entry(huey: Huey, message: Task) -> QueueEntry:
    """Return a message as Huey's Redis storage would add it to its sorted set.

    The layout is that of huey 3.5 (`PriorityRedisStorage`): a message due
    now goes to the queue with an 8-byte big-endian microsecond prefix and
    the negated priority as score. A later one goes to the schedule, unprefixed,
    scored by `convert_ts` of its naive UTC ETA.
    """
    storage: Any = huey.storage
    data = huey.serialize_task(message)
    if is_future(message.eta):
        return QueueEntry(storage.schedule_key, data, storage.convert_ts(message.eta))
    prefix = struct.pack(">Q", int(time.time() * 1e6))
    return QueueEntry(storage.queue_key, prefix + data, -(message.priority or 0))


def create_ledger(spec: BackendSpec, namespace: str, change_retention: int) -> Ledger:
    """Open the ledger of the backend.

    Raises:
        InvalidBackendError: The SQLite file exists but is not a database.
        BackendUnavailableError: The SQLite file cannot be created or opened.
    """
    if spec.kind == "sqlite":
        from .ledger.sqlite_ledger import SqliteLedger

        assert spec.path is not None
        try:
            return SqliteLedger(spec.path, change_retention=change_retention)
        except sqlite3.OperationalError as exc:
            raise BackendUnavailableError(
                f"opening {spec.path} failed ({exc}): check that its folder exists "
                "and that you may write there, or pass another path with --backend"
            ) from exc
        except sqlite3.DatabaseError as exc:
            raise InvalidBackendError(
                f"{spec.path} is not a SQLite database ({exc}): pass another file "
                "with --backend; the file was left unchanged"
            ) from None
        except OSError as exc:
            raise BackendUnavailableError(
                f"opening {spec.path} failed ({exc}): check that its folder can be "
                "created and written, or pass another path with --backend"
            ) from exc
    from .ledger.redis_ledger import RedisLedger

    wait_replicas, wait_timeout = 0, 0.0
    if spec.sentinel is not None:
        wait_replicas = spec.sentinel.wait_replicas
        wait_timeout = spec.sentinel.wait_timeout
    return RedisLedger(
        redis_client(spec),
        namespace,
        change_retention=change_retention,
        wait_replicas=wait_replicas,
        wait_timeout=wait_timeout,
    )


def create_schedule_store(spec: BackendSpec, namespace: str) -> ScheduleStore:
    if spec.kind == "sqlite":
        from .scheduling.sqlite_store import SqliteScheduleStore

        assert spec.path is not None
        return SqliteScheduleStore(spec.path)
    from .scheduling.redis_store import RedisScheduleStore

    return RedisScheduleStore(redis_client(spec), namespace)


def create_audit_store(spec: BackendSpec, namespace: str) -> AuditStore:
    """Open the audit trail: a table of the SQLite file, or keys under the namespace."""
    if spec.kind == "sqlite":
        from .audit.sqlite_store import SqliteAuditStore

        assert spec.path is not None
        return SqliteAuditStore(spec.path)
    from .audit.redis_store import RedisAuditStore

    return RedisAuditStore(redis_client(spec), namespace)
