"""The redis+sentinel:// URL form: parsing, errors and password masking."""

from __future__ import annotations

import pytest

from chenu_desktop import InvalidBackendError
from chenu_desktop.backend import mask_url, parse_backend, redis_pool
from chenu_desktop.sentinel import DEFAULT_SENTINEL_PORT, MasterConnectionPool


def test_sentinel_url_parts() -> None:
    spec = parse_backend(
        "redis+sentinel://ops:m%40ster@127.0.0.1:26379,127.0.0.1:26380,[::1]:26381"
        "/chenu/3?sentinel_password=s3nt&wait_replicas=1&wait_timeout=1.5"
        "&socket_timeout=5"
    )
    assert spec.kind == "redis"
    assert spec.sentinel is not None
    target = spec.sentinel
    assert target.sentinels == (
        ("127.0.0.1", 26379),
        ("127.0.0.1", 26380),
        ("::1", 26381),
    )
    assert target.service == "chenu"
    assert target.db == 3
    master = dict(target.master_options)
    assert master["username"] == "ops"
    assert master["password"] == "m@ster"
    assert master["socket_timeout"] == 5.0
    sentinel = dict(target.sentinel_options)
    assert sentinel["password"] == "s3nt"
    assert "username" not in sentinel
    assert target.wait_replicas == 1
    assert target.wait_timeout == 1.5


def test_sentinel_url_defaults() -> None:
    target = parse_backend("redis+sentinel://127.0.0.1/chenu").sentinel
    assert target is not None
    assert target.sentinels == (("127.0.0.1", DEFAULT_SENTINEL_PORT),)
    assert target.db == 0
    assert target.master_options == ()
    assert target.wait_replicas == 0
    assert "password" not in dict(target.sentinel_options)


def test_sentinel_pool_opens_no_connection() -> None:
    spec = parse_backend("redis+sentinel://127.0.0.1:1/chenu/2?socket_timeout=4")
    pool = redis_pool(spec, socket_connect_timeout=1)
    assert isinstance(pool, MasterConnectionPool)
    assert pool.service_name == "chenu"
    assert pool.connection_kwargs["db"] == 2
    assert pool.connection_kwargs["socket_timeout"] == 4.0
    assert pool.connection_kwargs["socket_connect_timeout"] == 1
    pool.disconnect()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+sentinel:///chenu", "it lists no sentinel"),
        ("redis+sentinel://:pw@/chenu", "it lists no sentinel"),
        ("redis+sentinel://127.0.0.1:1,,127.0.0.1:2/chenu", "sentinel 2 of 3 is empty"),
        ("redis+sentinel://127.0.0.1:abc/chenu", "port 'abc' of sentinel"),
        ("redis+sentinel://127.0.0.1:70000/chenu", "port '70000' of sentinel"),
        ("redis+sentinel://127.0.0.1:/chenu", "port of sentinel '127.0.0.1:' is empty"),
        ("redis+sentinel://:26379/chenu", r"sentinel 1 \(':26379'\) has no host"),
        ("redis+sentinel://[::1:26379/chenu", "unclosed IPv6 bracket"),
        ("redis+sentinel://127.0.0.1:26379", "it names no service"),
        ("redis+sentinel://127.0.0.1:26379/", "it names no service"),
        ("redis+sentinel://127.0.0.1:26379/chenu/x", "database 'x' is not a number"),
        ("redis+sentinel://127.0.0.1:26379/chenu/0/1", "more than /SERVICE/DB"),
        ("redis+sentinel://127.0.0.1:26379/chenu?colour=red", "colour"),
        ("redis+sentinel://127.0.0.1:26379/chenu?socket_timeout=x", "socket_timeout"),
        ("redis+sentinel://127.0.0.1:26379/chenu?wait_replicas=-1", "wait_replicas"),
        ("redis+sentinel://127.0.0.1:26379/chenu?wait_timeout=0", "wait_timeout '0'"),
        ("redis+sentinel://127.0.0.1:26379/chenu?password=pw", "credentials are in"),
        ("redis+sentinel://127.0.0.1:26379/chenu#top", "fragment"),
    ],
)
def test_bad_sentinel_url_rejected(url: str, message: str) -> None:
    with pytest.raises(InvalidBackendError, match=message):
        parse_backend(url)


def test_bad_sentinel_url_hides_passwords() -> None:
    with pytest.raises(InvalidBackendError) as caught:
        parse_backend(
            "redis+sentinel://:m4ster@127.0.0.1:abc/chenu?sentinel_password=s3nt"
        )
    message = str(caught.value)
    assert "m4ster" not in message
    assert "s3nt" not in message
    assert "redis+sentinel://:***@127.0.0.1:abc/chenu?sentinel_password=***" in message


def test_sentinel_display_masks_passwords() -> None:
    spec = parse_backend(
        "redis+sentinel://:m4ster@127.0.0.1:26379,127.0.0.1:26380/chenu/0"
        "?sentinel_password=s3nt&wait_replicas=1"
    )
    assert spec.display == (
        "redis+sentinel://:***@127.0.0.1:26379,127.0.0.1:26380/chenu/0"
        "?sentinel_password=***&wait_replicas=1"
    )


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://127.0.0.1/0?password=pw", "redis://127.0.0.1/0?password=***"),
        (
            "redis+sentinel://ops:pw@h:1/s?SENTINEL_PASSWORD=x&db=1",
            "redis+sentinel://ops:***@h:1/s?SENTINEL_PASSWORD=***&db=1",
        ),
        (
            "redis+sentinel://h:1/s?sentinel_password=",
            "redis+sentinel://h:1/s?sentinel_password=",
        ),
        ("redis+sentinel://h:1,h:2/s", "redis+sentinel://h:1,h:2/s"),
        ("redis+sentinel://:pw@[::1:2/s", "redis+sentinel://:***@[::1:2/s"),
    ],
)
def test_query_passwords_masked(url: str, masked: str) -> None:
    assert mask_url(url) == masked
