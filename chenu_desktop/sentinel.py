"""Backends reached through Redis Sentinel: the URL form and the master's clients.

The form is ``redis+sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/SERVICE[/DB]``
with optional query options. The credentials before ``@`` are the master's,
``sentinel_password`` and ``sentinel_username`` authenticate to the sentinels,
and every other option is a redis-py connection option of the master.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from typing import Any

import redis
from redis.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection

from .errors import InvalidBackendError

SCHEME = "redis+sentinel"
#: The port Redis Sentinel listens on unless configured otherwise.
DEFAULT_SENTINEL_PORT = 26379
#: Seconds a sentinel may take to connect or reply before the next one is asked.
DEFAULT_SENTINEL_TIMEOUT = 2.0
#: Seconds a write waits for `wait_replicas` replicas to acknowledge it.
DEFAULT_WAIT_TIMEOUT = 2.0

FORM = "redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB]"
EXAMPLE = "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/0"


@dataclasses.dataclass(frozen=True)
class SentinelTarget:
    """The sentinels of a backend URL, the service they monitor and the options.

    Attributes:
        sentinels: ``(host, port)`` of each sentinel, in the URL's order.
        service: The master's name in the sentinels' ``sentinel monitor`` line.
        db: The database number on the master.
        master_options: redis-py connection options of the master.
        sentinel_options: redis-py connection options of the sentinels.
        wait_replicas: Replicas that must acknowledge each ledger write (0: none).
        wait_timeout: Seconds a ledger write waits for those acknowledgements.
    """

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    master_options: tuple[tuple[str, Any], ...] = ()
    sentinel_options: tuple[tuple[str, Any], ...] = ()
    wait_replicas: int = 0
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT

    def master_pool(self, **options: Any) -> MasterConnectionPool:
        """Create a connection pool of the master the sentinels name now and later.

        `options` override the URL's connection options of the master.
        """
        manager = Sentinel(self.sentinels, sentinel_kwargs=dict(self.sentinel_options))
        return MasterConnectionPool(
            self.service,
            manager,
            db=self.db,
            connection_class=MasterConnection,
            **{**dict(self.master_options), **options},
        )


class MasterConnection(SentinelManagedConnection):
    """A connection to the master that also gives up on a master without replicas.

    A master configured with ``min-replicas-to-write`` rejects writes with
    NOREPLICAS once its replica leaves, which is what a replica promoted by a
    failover does. redis-py drops the connection only on READONLY, which
    comes later, when the sentinels demote the old master. On NOREPLICAS this
    connection drops too and raises `NoReplicasError`, so the client's retry
    queries the sentinels for the master again.
    """

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except redis.ResponseError as exc:
            if not self.connection_pool.is_master or "NOREPLICAS" not in str(exc):
                raise
            self.disconnect()
            raise NoReplicasError(f"{exc} (master {self.host}:{self.port})") from exc


class NoReplicasError(redis.ConnectionError):
    """The master rejected a write because too few replicas are connected.

    Nothing was applied by the rejected command. The connection is closed,
    so the next one goes to the master the sentinels name then.
    """


class MasterConnectionPool(SentinelConnectionPool):
    """A pool of master connections that closes its sentinel clients with itself."""

    def disconnect(self, inuse_connections: bool = True) -> None:
        super().disconnect(inuse_connections)
        # A master change disconnects only idle connections; a full
        # disconnect is the pool's close.
        if inuse_connections:
            self.sentinel_manager.close()


def _fail(masked_url: str, problem: str, fix: str) -> InvalidBackendError:
    return InvalidBackendError(f"invalid Sentinel URL {masked_url!r}: {problem}; {fix}")


def _parse_address(item: str, number: int, masked_url: str) -> tuple[str, int]:
    """Parse one ``HOST[:PORT]`` of the sentinel list (``[IPV6]:PORT`` too)."""
    fix = f"use {FORM}"
    if item.startswith("["):
        host, bracket, rest = item[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise _fail(
                masked_url, f"sentinel {item!r} has an unclosed IPv6 bracket", fix
            )
        port_text = rest[1:] if rest else None
    elif ":" in item:
        host, _, port_text = item.rpartition(":")
    else:
        host, port_text = item, None
    if not host:
        raise _fail(masked_url, f"sentinel {number} ({item!r}) has no host", fix)
    if port_text is None:
        return host, DEFAULT_SENTINEL_PORT
    if not port_text:
        raise _fail(masked_url, f"the port of sentinel {item!r} is empty", fix)
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise _fail(
            masked_url,
            f"the port {port_text!r} of sentinel {item!r} is not a number "
            "from 1 to 65535",
            fix,
        )
    return host, int(port_text)


def _parse_sentinels(hosts: str, masked_url: str) -> tuple[tuple[str, int], ...]:
    if not hosts:
        raise _fail(
            masked_url,
            "it lists no sentinel",
            f"list at least one HOST:PORT before the service, as in {EXAMPLE}",
        )
    items = hosts.split(",")
    addresses = []
    for number, item in enumerate(items, start=1):
        if not item:
            raise _fail(
                masked_url,
                f"sentinel {number} of {len(items)} is empty",
                "separate the HOST:PORT entries by single commas",
            )
        addresses.append(_parse_address(item, number, masked_url))
    return tuple(addresses)


def _parse_path(path: str, masked_url: str) -> tuple[str, int]:
    """Parse ``/SERVICE[/DB]`` into the service name and the database number."""
    segments = path.strip("/").split("/") if path.strip("/") else []
    if not segments:
        raise _fail(
            masked_url,
            "it names no service",
            "add the master's name from the sentinels' `sentinel monitor NAME ...` "
            f"line after the hosts, as in {EXAMPLE}",
        )
    if len(segments) > 2:
        raise _fail(
            masked_url, f"the path {path!r} has more than /SERVICE/DB", f"use {FORM}"
        )
    service = urllib.parse.unquote(segments[0])
    if not service:
        raise _fail(masked_url, "the service name is empty", f"use {FORM}")
    if len(segments) == 1:
        return service, 0
    database = segments[1]
    if not database.isdigit():
        raise _fail(
            masked_url,
            f"database {database!r} is not a number",
            f"put a database number after the service, as in {EXAMPLE}",
        )
    return service, int(database)


def _parse_credentials(userinfo: str) -> dict[str, Any]:
    user, colon, password = userinfo.partition(":")
    options: dict[str, Any] = {}
    if user:
        options["username"] = urllib.parse.unquote(user)
    if colon and password:
        options["password"] = urllib.parse.unquote(password)
    return options


def _pop_wait_options(query: dict[str, str], masked_url: str) -> tuple[int, float]:
    replicas_text = query.pop("wait_replicas", "0")
    timeout_text = query.pop("wait_timeout", str(DEFAULT_WAIT_TIMEOUT))
    if not replicas_text.isdigit():
        raise _fail(
            masked_url,
            f"wait_replicas {replicas_text!r} is not a whole number",
            "pass the number of replicas that must acknowledge a write, such as 1",
        )
    try:
        timeout = float(timeout_text)
    except ValueError:
        timeout = -1.0
    if not 0 < timeout <= 60:
        raise _fail(
            masked_url,
            f"wait_timeout {timeout_text!r} is not a number of seconds above 0",
            "pass at most 60 seconds, such as wait_timeout=2",
        )
    return int(replicas_text), timeout


def _master_options(query: dict[str, str], db: int, masked_url: str) -> dict[str, Any]:
    """Check the remaining query options with redis-py's own URL parser."""
    # The host of this URL is never contacted: it only lets redis-py parse
    # and type the options.
    probe = f"redis://127.0.0.1/{db}?{urllib.parse.urlencode(query)}"
    try:
        options = redis.connection.parse_url(probe)
        redis.Connection(**options)
    except (ValueError, TypeError) as exc:
        raise _fail(
            masked_url,
            f"an option is invalid ({exc})",
            "use redis-py connection options such as socket_timeout=5, or "
            "sentinel_password, wait_replicas and wait_timeout",
        ) from None
    for name in ("host", "port", "db"):
        options.pop(name, None)
    return options


def parse_sentinel_url(text: str, masked_url: str) -> SentinelTarget:
    """Parse a ``redis+sentinel://`` URL; `masked_url` is its form for messages.

    Raises:
        InvalidBackendError: A part is missing or invalid; the message names it.
    """
    rest = text.split("://", 1)[1]
    if "#" in rest:
        raise _fail(masked_url, "it contains a fragment (#)", "remove it")
    rest, _, query_text = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        hosts = netloc
    sentinels = _parse_sentinels(hosts, masked_url)
    service, db = _parse_path(slash + path, masked_url)

    try:
        pairs = urllib.parse.parse_qsl(
            query_text, keep_blank_values=True, strict_parsing=bool(query_text)
        )
    except ValueError:
        raise _fail(
            masked_url, "the query is not NAME=VALUE pairs", "use ?NAME=VALUE&..."
        )
    query = dict(pairs)
    wait_replicas, wait_timeout = _pop_wait_options(query, masked_url)
    sentinel_options: dict[str, Any] = {
        "socket_timeout": DEFAULT_SENTINEL_TIMEOUT,
        "socket_connect_timeout": DEFAULT_SENTINEL_TIMEOUT,
    }
    for name in ("password", "username"):
        value = query.pop(f"sentinel_{name}", "")
        if value:
            sentinel_options[name] = value
    if "password" in query or "username" in query:
        raise _fail(
            masked_url,
            "the master's credentials are in the query",
            "put them before the hosts, as in redis+sentinel://:PASSWORD@HOST:PORT/..",
        )
    master_options = _master_options(query, db, masked_url)
    master_options.update(_parse_credentials(userinfo))
    return SentinelTarget(
        sentinels=sentinels,
        service=service,
        db=db,
        master_options=tuple(sorted(master_options.items())),
        sentinel_options=tuple(sorted(sentinel_options.items())),
        wait_replicas=wait_replicas,
        wait_timeout=wait_timeout,
    )
