"""RedisCache on real servers: URLs, namespacing, batches, error mapping, reconnects."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from returns.result import Success

from portside.adapters.redis import connect
from portside.adapters.redis._cache._adapter import CHUNK, RedisCache
from portside.adapters.testing import TcpFaultProxy, free_port, proxied_url, throwaway_redis
from portside.domain import InvalidRequest, NotFound, Unavailable


@pytest.fixture(name="raw")
def _raw(redis_url: str) -> Iterator[redis.Redis]:
    client = connect(redis_url)
    yield client
    client.close()


@pytest.fixture(name="namespace")
def _namespace(raw: redis.Redis) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    for key in raw.scan_iter(match=f"{name}*", count=1000):
        raw.unlink(key)


@pytest.fixture(name="cache")
def _cache(raw: redis.Redis, namespace: str) -> RedisCache:
    return RedisCache(raw, namespace=namespace)


@pytest.mark.parametrize(
    ("url", "connection", "where"),
    [
        ("redis://:s3cret@127.0.0.1:6390/2", "Connection", {"host": "127.0.0.1", "db": 2}),
        ("rediss://user:s3cret@cache.example:6380/0", "SSLConnection", {"port": 6380}),
        ("unix:///run/redis.sock?db=3", "UnixDomainSocketConnection", {"path": "/run/redis.sock"}),
    ],
)
def test_url_forms_parse_without_connecting(
    url: str, connection: str, where: dict[str, object]
) -> None:
    """redis://, rediss:// and unix:// URLs build the right pool; the repr hides the password."""
    cache = RedisCache.from_url(url, namespace="n")
    pool = cache.client.connection_pool
    assert pool.connection_class.__name__ == connection
    assert where.items() <= pool.connection_kwargs.items()
    assert pool.connection_kwargs["socket_timeout"] == 0.5
    assert "s3cret" not in repr(cache)
    cache.close()


def test_an_unreachable_server_is_unavailable_without_leaking_the_password() -> None:
    """A closed port is Failure(Unavailable) whose text never shows the password."""
    cache = RedisCache.from_url(f"redis://:s3cret@127.0.0.1:{free_port()}/0", namespace="n")
    got = cache.get("k")
    error = got.failure()
    assert isinstance(error, Unavailable)
    assert "s3cret" not in f"{error} {error!r} {error.__cause__}"
    cache.close()


def test_a_unix_socket_url_reaches_a_server(tmp_path: Path) -> None:
    """A unix:// URL talks to a redis-server listening on a socket file."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.skip("redis-server is not installed")
    sock = tmp_path / "redis.sock"
    server = subprocess.Popen(
        [executable, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path), "--logfile", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert time.monotonic() < deadline, "redis-server did not create its socket"
            time.sleep(0.01)
        cache = RedisCache.from_url(f"unix://{sock}?db=0", namespace="unix")
        assert cache.set("k", b"v") == Success(None)
        assert cache.get("k") == Success(b"v")
        cache.close()
    finally:
        server.kill()
        server.wait(10)


@pytest.mark.services
def test_keys_live_under_the_namespace_prefix(
    cache: RedisCache, raw: redis.Redis, namespace: str
) -> None:
    """A key is stored as '<namespace>|<key>' with a millisecond TTL."""
    cache.set("user:1", b"v", ttl=1.5)
    assert raw.get(f"{namespace}|user:1") == b"v"
    assert 1400 < raw.pttl(f"{namespace}|user:1") <= 1500
    left = cache.ttl("user:1").unwrap()
    assert left is not None
    assert 1.4 < left <= 1.5


@pytest.mark.services
def test_clear_removes_this_namespace_only(
    cache: RedisCache, raw: redis.Redis, namespace: str
) -> None:
    """clear() leaves a sibling namespace, a longer namespace and foreign keys alone."""
    sibling = RedisCache(raw, namespace=f"{namespace}:x")
    cache.set_many({f"k{i}": b"v" for i in range(1200)})
    sibling.set("k0", b"sibling")
    raw.set(f"{namespace}-queue", b"foreign")
    assert cache.clear() == Success(None)
    assert list(raw.scan_iter(match=f"{namespace}|*")) == []
    assert sibling.get("k0") == Success(b"sibling")
    assert raw.get(f"{namespace}-queue") == b"foreign"


@pytest.mark.services
def test_a_huge_get_many_is_chunked_transparently(cache: RedisCache) -> None:
    """A get_many of 100 000 keys answers in full (several MGETs in one pipeline)."""
    present = {f"k{i}": str(i).encode() for i in range(0, 100_000, 7)}
    assert cache.set_many(present, ttl=60) == Success(None)
    found = cache.get_many(f"k{i}" for i in range(100_000)).unwrap()
    assert found == present
    assert CHUNK < 100_000


@pytest.mark.services
def test_bad_items_write_nothing(cache: RedisCache, raw: redis.Redis, namespace: str) -> None:
    """A batch with one bad key, value or TTL is InvalidRequest and sends nothing."""
    attempts = [
        cache.set_many({"a": b"1", "b\n": b"2"}),
        cache.set_many({"a": b"1", "b": "two"}),  # type: ignore[dict-item]
        cache.set_many({"a": b"1"}, ttl=0),
        cache.add("a", b"1", ttl=-1),
        cache.set("a" * 1025, b"1"),
    ]
    for attempt in attempts:
        assert isinstance(attempt.failure(), InvalidRequest)
    assert list(raw.scan_iter(match=f"{namespace}|*")) == []


@pytest.mark.services
def test_a_value_of_another_type_is_invalid_request(
    cache: RedisCache, raw: redis.Redis, namespace: str
) -> None:
    """A list stored at the key (WRONGTYPE) and a text counter are InvalidRequest."""
    raw.rpush(f"{namespace}|list", b"x")
    assert isinstance(cache.get("list").failure(), InvalidRequest)
    cache.set("word", b"abc")
    assert isinstance(cache.incr("word").failure(), InvalidRequest)
    assert isinstance(cache.ttl("missing").failure(), NotFound)


@pytest.mark.services
def test_a_restarted_server_is_reached_again() -> None:
    """After a restart the pooled connection is replaced and every operation works."""
    with throwaway_redis() as server:
        cache = RedisCache.from_url(server.url, namespace="restart")
        assert cache.set("k", b"v") == Success(None)
        server.restart()  # nothing is persisted: the key is gone
        assert cache.get("k") == Success(None)
        assert cache.incr("n") == Success(1)
        cache.close()


@pytest.mark.services
def test_a_read_cut_mid_reply_is_retried_once_but_incr_is_not(
    redis_url: str, raw: redis.Redis, namespace: str
) -> None:
    """A connection reset during the reply: get retries and succeeds; incr reports it.

    The incr was applied before its reply was lost, which is exactly why it is never
    repeated automatically.
    """
    target = urlsplit(redis_url)
    with TcpFaultProxy(target.hostname or "127.0.0.1", target.port or 6379) as proxy:
        cache = RedisCache.from_url(proxied_url(redis_url, proxy.port), namespace=namespace)
        cache.set("k", b"value")
        proxy.close_after(1, "downstream")
        assert cache.get("k") == Success(b"value")
        proxy.close_after(1, "downstream")
        assert isinstance(cache.incr("n").failure(), Unavailable)
        assert raw.get(f"{namespace}|n") == b"1"
        assert cache.incr("n") == Success(2)
        cache.close()
