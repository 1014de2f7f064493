"""``AsyncRedisCache``: ``AsyncCachePort`` over ``redis.asyncio``, the twin of ``RedisCache``.

Only the I/O differs from ``RedisCache``: the rules (``portside.ports.cache_rules``), the
key layout (``<namespace>|<key>``, and ``<namespace>|{=<base>}<key>`` on a cluster), the
millisecond rounding, the chunk sizes, the retry policy (reads and plain writes once
after a dropped connection; ``add``, ``delete`` and ``incr`` never) and the error mapping
are the sync adapter's own, imported from it. On Redis Cluster (a
``redis.asyncio.cluster.RedisCluster``) batches are split by slot as there:
``mget_nonatomic`` and a cluster pipeline, one round trip per node; ``clear()`` scans
every primary.

Cancellation: redis-py closes a connection whose reply was not read when the awaiting
task is cancelled (``read_response`` disconnects on ``BaseException``), so a cancelled
call never hands the pool a connection with a stray reply on it; the next call gets a
fresh connection. A pipelined ``set_many`` is handed to the socket as one write, so a
cancelled call has written all of a chunk or none of it, as long as the kernel accepts
that write whole (batches of kilobytes; a multi-megabyte batch cut by a cancellation
may be applied in part, like one cut by a ``TimedOut``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

import attrs
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from returns.result import Failure, Result, Success

from portside.adapters.redis._async_client import CallGate, connect_async, connect_async_cluster
from portside.adapters.redis._cache._adapter import (
    _MISS,
    _OK,
    _RECONNECT,
    CHUNK,
    CLEAR_BATCH,
    SERVICE,
    _map_error,
    _px,
    slot_problem,
    stored_name,
)
from portside.adapters.redis._cache._scripts import claim_from_reply, script_text
from portside.adapters.redis._client import (
    CLUSTER_SCHEMES,
    REDIS_ERRORS,
    RedisOptions,
    redacted_url,
    refused_by_replica,
)
from portside.domain._cache import FillClaim
from portside.domain._errors import InvalidRequest, NotFound, ServiceError, Unavailable
from portside.ports._cache import AsyncCachePort, AsyncCompareAndDelete, AsyncLockedFill
from portside.ports.cache_rules import (
    check_by,
    check_items,
    check_key,
    check_keys,
    check_lock,
    check_namespace,
    check_ttl,
    check_value,
)

__all__ = ["AsyncRedisCache"]


@attrs.define
class AsyncRedisCache(AsyncCachePort, AsyncCompareAndDelete, AsyncLockedFill):
    """``AsyncCachePort`` on one long-lived ``redis.asyncio`` client; ``RedisCache``'s twin.

    Every method returns ``Failure(InvalidRequest)`` for bad input (nothing is sent),
    ``Failure(Unavailable)`` when Redis cannot be reached, ``Failure(TimedOut)`` when it
    does not answer within the socket timeout (after a timed-out write the write may or
    may not have happened), ``Failure(Unauthorized)`` for refused credentials and
    ``Failure(ProtocolError)`` for an answer the adapter does not understand. Close it
    with ``await cache.aclose()``.
    """

    client: aioredis.Redis | AsyncRedisCluster = attrs.field(repr=False)
    _namespace: str = attrs.field(default="default", alias="namespace")
    owns_client: bool = attrs.field(default=False, repr=False)
    url: str = attrs.field(default="", converter=redacted_url)
    _prefix: str = attrs.field(init=False, repr=False)
    _scripts: dict[str, Any] = attrs.field(init=False, repr=False)
    _gate: CallGate = attrs.field(init=False, repr=False)
    _cluster: bool = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._prefix = check_namespace(self._namespace) + "|"
        self._cluster = isinstance(self.client, AsyncRedisCluster)
        # Calls take turns for the pool's connections first come, first served (see CallGate).
        self._gate = CallGate(self.client)
        # The sync adapter's .lua files; an AsyncScript loads itself on first use (EVALSHA,
        # then SCRIPT LOAD on NOSCRIPT) like the sync Script.
        self._scripts = {
            name: self.client.register_script(script_text(name))
            for name in ("delete_if_equal", "get_or_lock", "set_and_unlock")
        }

    @classmethod
    def from_url(
        cls, url: str, namespace: str = "default", options: RedisOptions | None = None
    ) -> AsyncRedisCache:
        """A cache with its own pooled client (``connect_async``); connects on first use.

        ``redis+cluster://`` (or ``rediss+cluster://``) gives a cluster client
        (``connect_async_cluster``), which reads the slot map on first use.
        """
        client: aioredis.Redis | AsyncRedisCluster
        if url.startswith(CLUSTER_SCHEMES):
            client = connect_async_cluster(url, options)
        else:
            client = connect_async(url, options)
        return cls(client, namespace=namespace, owns_client=True, url=url)

    @property
    def namespace(self) -> str:
        """The namespace every key of this cache lives in."""
        return self._namespace

    def _name(self, key: str) -> str:
        """The Redis name of ``key``: ``RedisCache``'s layout."""
        return stored_name(self._prefix, key, self._cluster)

    async def _call(
        self, operation: str, retry: bool, fn: Callable[..., Awaitable[Any]], *args: Any
    ) -> Any:
        """``await fn(*args)`` in turn, or the mapped ``ServiceError`` (returned, not raised)."""
        if not await self._gate.enter():
            return Unavailable(
                service=SERVICE, operation=operation, message="no Redis connection free in time"
            )
        try:
            return await self._attempt(operation, retry, fn, *args)
        finally:
            self._gate.leave()

    async def _attempt(
        self, operation: str, retry: bool, fn: Callable[..., Awaitable[Any]], *args: Any
    ) -> Any:
        try:
            return await fn(*args)
        except _RECONNECT as exc:
            if not (retry or refused_by_replica(exc)):
                return _map_error(exc, operation=operation)
        except REDIS_ERRORS as exc:
            return _map_error(exc, operation=operation)
        try:
            return await fn(*args)
        except REDIS_ERRORS as exc:
            return _map_error(exc, operation=operation)

    async def get(self, key: str) -> Result[bytes | None, ServiceError]:
        """See ``RedisCache.get``."""
        error = check_key(key, "get")
        if error is not None:
            return Failure(error)
        value = await self._call("get", True, self.client.get, self._name(key))
        if isinstance(value, ServiceError):
            return Failure(value)
        return _MISS if value is None else Success(value)

    async def get_many(self, keys: Iterable[str]) -> Result[dict[str, bytes], ServiceError]:
        """See ``RedisCache.get_many`` (one MGET, a pipeline of ``CHUNK``-key MGETs, or by slot)."""
        listed, error = check_keys(keys, "get_many")
        if error is not None:
            return Failure(error)
        if not listed:
            return Success({})
        names = [self._name(key) for key in listed]
        fn: Callable[..., Awaitable[Any]]
        if isinstance(self.client, AsyncRedisCluster):
            fn = self.client.mget_nonatomic  # one MGET per slot, pipelined per node
        else:
            fn = self.client.mget if len(names) <= CHUNK else self._chunked_mget
        values = await self._call("get_many", True, fn, names)
        if isinstance(values, ServiceError):
            return Failure(values)
        return Success({k: v for k, v in zip(listed, values, strict=True) if v is not None})

    async def _chunked_mget(self, names: list[str]) -> list[bytes | None]:
        pipe = self.client.pipeline(transaction=False)
        for start in range(0, len(names), CHUNK):
            pipe.mget(names[start : start + CHUNK])
        return [value for chunk in await pipe.execute() for value in chunk]

    async def set(
        self, key: str, value: bytes, ttl: float | None = None
    ) -> Result[None, ServiceError]:
        """See ``RedisCache.set`` (``SET ... PX``)."""
        error = check_key(key, "set") or check_value(value, "set") or check_ttl(ttl, "set")
        if error is not None:
            return Failure(error)
        px = None if ttl is None else _px(ttl)
        outcome = await self._call("set", True, self.client.set, self._name(key), value, None, px)
        return Failure(outcome) if isinstance(outcome, ServiceError) else _OK

    async def set_many(
        self, items: Mapping[str, bytes], ttl: float | None = None
    ) -> Result[None, ServiceError]:
        """See ``RedisCache.set_many`` (one pipelined round trip per ``CHUNK`` items)."""
        error = check_items(items, "set_many") or check_ttl(ttl, "set_many")
        if error is not None:
            return Failure(error)
        if not items:
            return _OK
        outcome = await self._call("set_many", True, self._pipelined_set, items, ttl)
        return Failure(outcome) if isinstance(outcome, ServiceError) else _OK

    async def _pipelined_set(self, items: Mapping[str, bytes], ttl: float | None) -> None:
        # The plain prefix concatenation on one server (no per-key method call there).
        name = self._name if self._cluster else self._prefix.__add__
        px = None if ttl is None else _px(ttl)
        pipe: Any = self.client.pipeline(transaction=False)  # a cluster one sends each node its own
        for count, (key, value) in enumerate(items.items(), 1):
            pipe.set(name(key), value, px=px)
            if count % CHUNK == 0:
                await pipe.execute()
        await pipe.execute()

    async def add(
        self, key: str, value: bytes, ttl: float | None = None
    ) -> Result[bool, ServiceError]:
        """See ``RedisCache.add`` (``SET NX``, never retried)."""
        error = check_key(key, "add") or check_value(value, "add") or check_ttl(ttl, "add")
        if error is not None:
            return Failure(error)
        px = None if ttl is None else _px(ttl)
        written = await self._call(
            "add", False, self.client.set, self._name(key), value, None, px, True
        )
        if isinstance(written, ServiceError):
            return Failure(written)
        return Success(bool(written))

    async def delete(self, key: str) -> Result[bool, ServiceError]:
        """See ``RedisCache.delete`` (never retried)."""
        error = check_key(key, "delete")
        if error is not None:
            return Failure(error)
        removed = await self._call("delete", False, self.client.delete, self._name(key))
        if isinstance(removed, ServiceError):
            return Failure(removed)
        return Success(bool(removed))

    async def delete_if_equal(self, key: str, expected: bytes) -> Result[bool, ServiceError]:
        """See ``RedisCache.delete_if_equal`` (one Lua script, never retried)."""
        error = check_key(key, "delete_if_equal") or check_value(expected, "delete_if_equal")
        if error is not None:
            return Failure(error)
        removed = await self._call(
            "delete_if_equal", False, self._run, "delete_if_equal", [self._name(key)], [expected]
        )
        if isinstance(removed, ServiceError):
            return Failure(removed)
        return Success(bool(removed))

    async def get_or_lock(
        self, key: str, lock: str, token: bytes, ttl: float
    ) -> Result[FillClaim, ServiceError]:
        """See ``RedisCache.get_or_lock`` (one Lua script, never retried)."""
        error = (
            check_key(key, "get_or_lock")
            or check_lock(lock, token, ttl, "get_or_lock")
            or self._check_slot(key, lock, "get_or_lock")
        )
        if error is not None:
            return Failure(error)
        names = [self._name(key), self._name(lock)]
        reply = await self._call(
            "get_or_lock", False, self._run, "get_or_lock", names, [token, _px(ttl)]
        )
        if isinstance(reply, ServiceError):
            return Failure(reply)
        return claim_from_reply(reply, SERVICE)

    async def set_and_unlock(
        self, key: str, value: bytes, ttl: float | None, lock: str, token: bytes
    ) -> Result[bool, ServiceError]:
        """See ``RedisCache.set_and_unlock`` (one Lua script, retried once like ``set``)."""
        error = (
            check_key(key, "set_and_unlock")
            or check_value(value, "set_and_unlock")
            or check_ttl(ttl, "set_and_unlock")
            or check_lock(lock, token, 1.0, "set_and_unlock")
            or self._check_slot(key, lock, "set_and_unlock")
        )
        if error is not None:
            return Failure(error)
        names = [self._name(key), self._name(lock)]
        args = [value, "" if ttl is None else _px(ttl), token]
        released = await self._call(
            "set_and_unlock", True, self._run, "set_and_unlock", names, args
        )
        if isinstance(released, ServiceError):
            return Failure(released)
        return Success(bool(released))

    def _check_slot(self, key: str, lock: str, operation: str) -> InvalidRequest | None:
        """``slot_problem`` on a cluster; nothing to check on one server."""
        return slot_problem(key, lock, operation) if self._cluster else None

    async def _run(self, script: str, keys: list[str], args: list[Any]) -> object:
        return await self._scripts[script](keys=keys, args=args)

    async def incr(self, key: str, by: int = 1) -> Result[int, ServiceError]:
        """See ``RedisCache.incr`` (``INCRBY``, never retried)."""
        error = check_key(key, "incr") or check_by(by)
        if error is not None:
            return Failure(error)
        total = await self._call("incr", False, self.client.incrby, self._name(key), by)
        if isinstance(total, ServiceError):
            return Failure(total)
        return Success(int(total))

    async def ttl(self, key: str) -> Result[float | None, ServiceError]:
        """See ``RedisCache.ttl`` (``PTTL``; ``NotFound`` when absent)."""
        error = check_key(key, "ttl")
        if error is not None:
            return Failure(error)
        millis = await self._call("ttl", True, self.client.pttl, self._name(key))
        if isinstance(millis, ServiceError):
            return Failure(millis)
        if millis == -2:
            return Failure(NotFound(service=SERVICE, operation="ttl", message="no such key"))
        return Success(None if millis == -1 else millis / 1000)

    async def clear(self) -> Result[None, ServiceError]:
        """See ``RedisCache.clear`` (``SCAN MATCH <namespace>|*`` and ``UNLINK``)."""
        outcome = await self._call("clear", True, self._scan_and_unlink)
        return Failure(outcome) if isinstance(outcome, ServiceError) else _OK

    async def _scan_and_unlink(self) -> None:
        match = self._prefix + "*"
        client = self.client
        if isinstance(client, AsyncRedisCluster):
            for node in client.get_primaries():
                await self._unlink_all(
                    client.scan_iter(match=match, count=CLEAR_BATCH, target_nodes=node)
                )
        else:
            await self._unlink_all(client.scan_iter(match=match, count=CLEAR_BATCH))

    async def _unlink_all(self, names: AsyncIterator[bytes]) -> None:
        """UNLINK ``names`` in batches (on a cluster redis-py splits each batch by slot)."""
        batch: list[bytes] = []
        async for name in names:
            batch.append(name)
            if len(batch) >= CLEAR_BATCH:
                await self.client.unlink(*batch)
                batch.clear()
        if batch:
            await self.client.unlink(*batch)

    async def aclose(self) -> None:
        """Close the client's connections if this cache created the client."""
        if self.owns_client:
            await self.client.aclose()
