"""``RedisCache``: ``CachePort`` over redis-py, namespaced, one round trip per batch.

Every key is stored as ``<namespace>|<key>``; a namespace never contains ``|``, so no
namespace's keys start with another's prefix and ``clear()`` can match
``<namespace>|*`` safely. Reads and plain writes are retried once after a dropped
connection (a pooled connection the server closed fails on first use); ``add``,
``delete``, ``delete_if_equal`` and ``incr`` are never retried, because after a lost
reply a second attempt would report the wrong answer or apply the increment twice.
``get_or_lock`` is not retried either (a lock taken by a lost reply would be reported as
held by another); ``set_and_unlock`` is (the write is idempotent and the release checks
the owner's token).

On Redis Cluster (a ``RedisCluster`` client) every key carries a hash tag,
``<namespace>|{=<base>}<key>``, where ``<base>`` is the key without trailing ``:fill``
(and without ``}``): a key and its fill lock ``<key>:fill`` share a slot, so the fill steps stay
one script, while other keys spread over the primaries. Batches are split by slot
(redis-py's ``mget_nonatomic`` and cluster pipelines, one round trip per node) and
``clear()`` scans every primary.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import attrs
import redis
import redis.exceptions as rex
from redis.cluster import RedisCluster
from returns.result import Failure, Result, Success

from portside.adapters.redis._cache._scripts import claim_from_reply, script_text
from portside.adapters.redis._client import (
    CLUSTER_SCHEMES,
    REDIS_ERRORS,
    RedisOptions,
    connect,
    connect_cluster,
    map_error,
    redacted_url,
    refused_by_replica,
)
from portside.domain._cache import FillClaim
from portside.domain._errors import InvalidRequest, NotFound, ServiceError
from portside.ports._cache import CachePort, CompareAndDelete, LockedFill
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

__all__ = ["RedisCache"]

SERVICE: Final = "redis-cache"
#: Keys per MGET command / commands per pipeline round trip for very large batches.
CHUNK: Final = 10_000
#: Keys per UNLINK while clearing a namespace, and the SCAN COUNT hint.
CLEAR_BATCH: Final = 500
_OK: Final = Success(None)
_MISS: Final = Success(None)
# A stale pooled connection fails with ConnectionError on first use; one more attempt
# on a fresh connection fixes that. TimeoutError is deliberately not retried: the
# server is slow, and a second wait would double the cost of an outage.
_RECONNECT: Final = (rex.ConnectionError,)
#: The fill lock's suffix (``LockedFill`` callers lock ``<key>:fill``): on a cluster a
#: key and its lock are tagged alike, so one script can touch both.
FILL_SUFFIX: Final = ":fill"


# redis-py drops the "ERR " prefix from error replies, so these are the texts it keeps
# for an INCRBY on a value that is not an integer or would overflow: bad input.
_BAD_COUNTER: Final = ("value is not an integer", "increment or decrement would overflow")


def _map_error(exc: BaseException, *, operation: str) -> ServiceError:
    """``map_error``, plus the counter replies it does not recognise as bad input."""
    if isinstance(exc, rex.ResponseError) and str(exc).startswith(_BAD_COUNTER):
        return InvalidRequest(service=SERVICE, operation=operation, message=str(exc)).caused_by(exc)
    return map_error(exc, service=SERVICE, operation=operation)


def _tag(key: str) -> str:
    """The cluster hash tag of ``key``: ``=`` and the key without trailing ``:fill``s or ``}``.

    Never empty and free of ``}``, so the stored name ``<ns>|{<tag>}<key>`` has exactly
    this tag (Redis hashes up to the first ``}``) and still names one key only.
    """
    base = key
    while base.endswith(FILL_SUFFIX):
        base = base[: -len(FILL_SUFFIX)]
    return "=" + base.replace("}", "")


def stored_name(prefix: str, key: str, cluster: bool) -> str:
    """The Redis name of ``key`` under ``prefix`` (``<namespace>|``), tagged on a cluster."""
    return f"{prefix}{{{_tag(key)}}}{key}" if cluster else prefix + key


def slot_problem(key: str, lock: str, operation: str) -> InvalidRequest | None:
    """On a cluster, ``InvalidRequest`` unless ``lock`` is tagged like ``key`` (``<key>:fill``).

    One script may touch one slot only; those locks are tagged like their key.
    """
    if _tag(key) == _tag(lock):
        return None
    return InvalidRequest(
        service=SERVICE,
        operation=operation,
        message=f"lock: on Redis Cluster the lock of {key[:64]!r} must be its own "
        f"'<key>{FILL_SUFFIX}' (a key and its lock must share a hash slot)",
    )


def _px(ttl: float) -> int:
    """Milliseconds for Redis, rounded up so a key never lives shorter than asked."""
    return max(1, math.ceil(ttl * 1000))


@attrs.define
class RedisCache(CachePort, CompareAndDelete, LockedFill):
    """``CachePort`` on one pooled redis-py client: ``redis.Redis`` or ``RedisCluster``.

    Every method returns ``Failure(InvalidRequest)`` for bad input (nothing is sent),
    ``Failure(Unavailable)`` when Redis cannot be reached, ``Failure(TimedOut)`` when it
    does not answer within the socket timeout (after a timed-out write the write may or
    may not have happened), ``Failure(Unauthorized)`` for refused credentials and
    ``Failure(ProtocolError)`` for an answer the adapter does not understand.
    """

    client: redis.Redis | RedisCluster = attrs.field(repr=False)
    _namespace: str = attrs.field(default="default", alias="namespace")
    owns_client: bool = attrs.field(default=False, repr=False)
    url: str = attrs.field(default="", converter=redacted_url)
    _prefix: str = attrs.field(init=False, repr=False)
    _scripts: dict[str, Any] = attrs.field(init=False, repr=False)
    _cluster: bool = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._prefix = check_namespace(self._namespace) + "|"
        self._cluster = isinstance(self.client, RedisCluster)
        self._scripts = {
            name: self.client.register_script(script_text(name))
            for name in ("delete_if_equal", "get_or_lock", "set_and_unlock")
        }

    @classmethod
    def from_url(
        cls, url: str, namespace: str = "default", options: RedisOptions | None = None
    ) -> RedisCache:
        """A cache with its own pooled client for a ``redis://``, ``rediss://`` or ``unix://`` URL.

        Connects lazily: an unreachable server shows up as ``Unavailable`` on first use.
        ``redis+cluster://host:port`` (or ``rediss+cluster://``) names one node of a Redis
        Cluster: the cache then runs on a ``RedisCluster`` client, which reads the slot
        map at once (raising ``RedisClusterException`` or ``ConnectionError`` when no
        node answers).
        """
        if url.startswith(CLUSTER_SCHEMES):
            client: redis.Redis | RedisCluster = connect_cluster(url, options)
        else:
            client = connect(url, options)
        return cls(client, namespace=namespace, owns_client=True, url=url)

    @property
    def namespace(self) -> str:
        """The namespace every key of this cache lives in."""
        return self._namespace

    def _name(self, key: str) -> str:
        """The Redis name of ``key``: prefixed, and hash-tagged on a cluster."""
        return stored_name(self._prefix, key, self._cluster)

    def _call(self, operation: str, retry: bool, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``, or the mapped ``ServiceError`` (returned, not raised)."""
        try:
            return fn(*args)
        except _RECONNECT as exc:
            # A write a demoted primary refused was not applied: repeat it on the primary
            # the sentinels name now, whatever it is (the one retry, never a second).
            if not (retry or refused_by_replica(exc)):
                return _map_error(exc, operation=operation)
        except REDIS_ERRORS as exc:
            return _map_error(exc, operation=operation)
        try:
            return fn(*args)
        except REDIS_ERRORS as exc:
            return _map_error(exc, operation=operation)

    def get(self, key: str) -> Result[bytes | None, ServiceError]:
        """The value at ``key``, or ``None`` when absent or expired."""
        error = check_key(key, "get")
        if error is not None:
            return Failure(error)
        value = self._call("get", True, self.client.get, self._name(key))
        if isinstance(value, ServiceError):
            return Failure(value)
        return _MISS if value is None else Success(value)

    def get_many(self, keys: Iterable[str]) -> Result[dict[str, bytes], ServiceError]:
        """The present keys among ``keys`` with their values, in one round trip.

        One MGET, or for very large batches one pipeline of MGETs of ``CHUNK`` keys; on
        a cluster, redis-py's ``mget_nonatomic`` (one MGET per slot, pipelined per node).
        """
        listed, error = check_keys(keys, "get_many")
        if error is not None:
            return Failure(error)
        if not listed:
            return Success({})
        if isinstance(self.client, RedisCluster):
            names = [self._name(key) for key in listed]
            values = self._call("get_many", True, self.client.mget_nonatomic, names)
            if isinstance(values, ServiceError):
                return Failure(values)
            return Success({k: v for k, v in zip(listed, values, strict=True) if v is not None})
        prefix = self._prefix
        names = [prefix + key for key in listed]
        if len(names) <= CHUNK:
            values = self._call("get_many", True, self.client.mget, names)
        else:
            values = self._call("get_many", True, self._chunked_mget, names)
        if isinstance(values, ServiceError):
            return Failure(values)
        return Success({k: v for k, v in zip(listed, values, strict=True) if v is not None})

    def _chunked_mget(self, names: list[str]) -> list[bytes | None]:
        pipe = self.client.pipeline(transaction=False)
        for start in range(0, len(names), CHUNK):
            pipe.mget(names[start : start + CHUNK])
        return [value for chunk in pipe.execute() for value in chunk]

    def set(self, key: str, value: bytes, ttl: float | None = None) -> Result[None, ServiceError]:
        """Store ``value`` at ``key``, replacing any value and expiry (``SET ... PX``)."""
        error = check_key(key, "set") or check_value(value, "set") or check_ttl(ttl, "set")
        if error is not None:
            return Failure(error)
        px = None if ttl is None else _px(ttl)
        outcome = self._call("set", True, self.client.set, self._name(key), value, None, px)
        return Failure(outcome) if isinstance(outcome, ServiceError) else _OK

    def set_many(
        self, items: Mapping[str, bytes], ttl: float | None = None
    ) -> Result[None, ServiceError]:
        """Store every item with the same ``ttl`` in one pipelined round trip.

        Very large batches take one round trip per ``CHUNK`` items. Nothing is sent if
        any item is bad. On a cluster the pipeline sends each node its own keys.
        """
        error = check_items(items, "set_many") or check_ttl(ttl, "set_many")
        if error is not None:
            return Failure(error)
        if not items:
            return _OK
        outcome = self._call("set_many", True, self._pipelined_set, items, ttl)
        return Failure(outcome) if isinstance(outcome, ServiceError) else _OK

    def _pipelined_set(self, items: Mapping[str, bytes], ttl: float | None) -> None:
        px = None if ttl is None else _px(ttl)
        # The plain prefix concatenation on one server (no per-key method call there).
        name = self._name if self._cluster else self._prefix.__add__
        pipe = self.client.pipeline(transaction=False)
        for count, (key, value) in enumerate(items.items(), 1):
            pipe.set(name(key), value, px=px)
            if count % CHUNK == 0:
                pipe.execute()
        pipe.execute()

    def add(self, key: str, value: bytes, ttl: float | None = None) -> Result[bool, ServiceError]:
        """``SET NX``: store ``value`` only if ``key`` is absent; ``True`` if this call wrote it."""
        error = check_key(key, "add") or check_value(value, "add") or check_ttl(ttl, "add")
        if error is not None:
            return Failure(error)
        px = None if ttl is None else _px(ttl)
        written = self._call("add", False, self.client.set, self._name(key), value, None, px, True)
        if isinstance(written, ServiceError):
            return Failure(written)
        return Success(bool(written))

    def delete(self, key: str) -> Result[bool, ServiceError]:
        """Remove ``key``; ``True`` if it was present."""
        error = check_key(key, "delete")
        if error is not None:
            return Failure(error)
        removed = self._call("delete", False, self.client.delete, self._name(key))
        if isinstance(removed, ServiceError):
            return Failure(removed)
        return Success(bool(removed))

    def delete_if_equal(self, key: str, expected: bytes) -> Result[bool, ServiceError]:
        """Remove ``key`` only if it holds ``expected`` (one Lua script, atomic)."""
        error = check_key(key, "delete_if_equal") or check_value(expected, "delete_if_equal")
        if error is not None:
            return Failure(error)
        removed = self._call(
            "delete_if_equal", False, self._run, "delete_if_equal", [self._name(key)], [expected]
        )
        if isinstance(removed, ServiceError):
            return Failure(removed)
        return Success(bool(removed))

    def get_or_lock(
        self, key: str, lock: str, token: bytes, ttl: float
    ) -> Result[FillClaim, ServiceError]:
        """The value at ``key`` if present; else take ``lock`` if free (one Lua script)."""
        error = (
            check_key(key, "get_or_lock")
            or check_lock(lock, token, ttl, "get_or_lock")
            or self._check_slot(key, lock, "get_or_lock")
        )
        if error is not None:
            return Failure(error)
        names = [self._name(key), self._name(lock)]
        reply = self._call("get_or_lock", False, self._run, "get_or_lock", names, [token, _px(ttl)])
        if isinstance(reply, ServiceError):
            return Failure(reply)
        return claim_from_reply(reply, SERVICE)

    def set_and_unlock(
        self, key: str, value: bytes, ttl: float | None, lock: str, token: bytes
    ) -> Result[bool, ServiceError]:
        """Store ``value`` and release ``lock`` if ``token`` holds it (one Lua script)."""
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
        released = self._call("set_and_unlock", True, self._run, "set_and_unlock", names, args)
        if isinstance(released, ServiceError):
            return Failure(released)
        return Success(bool(released))

    def _check_slot(self, key: str, lock: str, operation: str) -> InvalidRequest | None:
        """``slot_problem`` on a cluster; nothing to check on one server."""
        return slot_problem(key, lock, operation) if self._cluster else None

    def _run(self, script: str, keys: list[str], args: list[Any]) -> object:
        return self._scripts[script](keys=keys, args=args)

    def incr(self, key: str, by: int = 1) -> Result[int, ServiceError]:
        """``INCRBY``: add ``by`` to the integer at ``key`` (absent is 0), keeping its TTL.

        ``InvalidRequest`` when the value is not an integer or would overflow 64 bits.
        Never retried: after ``TimedOut`` the increment may or may not have happened.
        """
        error = check_key(key, "incr") or check_by(by)
        if error is not None:
            return Failure(error)
        total = self._call("incr", False, self.client.incrby, self._name(key), by)
        if isinstance(total, ServiceError):
            return Failure(total)
        return Success(int(total))

    def ttl(self, key: str) -> Result[float | None, ServiceError]:
        """``PTTL`` in seconds; ``None`` if the key never expires; ``NotFound`` if absent."""
        error = check_key(key, "ttl")
        if error is not None:
            return Failure(error)
        millis = self._call("ttl", True, self.client.pttl, self._name(key))
        if isinstance(millis, ServiceError):
            return Failure(millis)
        if millis == -2:
            return Failure(NotFound(service=SERVICE, operation="ttl", message="no such key"))
        return Success(None if millis == -1 else millis / 1000)

    def clear(self) -> Result[None, ServiceError]:
        """Remove this namespace's keys with ``SCAN MATCH <namespace>|*`` and ``UNLINK``.

        Incremental (never ``FLUSHDB``): other namespaces and a queue sharing the
        database are untouched. On a failure midway, part of the namespace is gone.
        On a cluster every primary is scanned in turn.
        """
        outcome = self._call("clear", True, self._scan_and_unlink)
        return Failure(outcome) if isinstance(outcome, ServiceError) else _OK

    def _scan_and_unlink(self) -> None:
        # The namespace alphabet has no glob characters, so the prefix needs no escaping.
        match = self._prefix + "*"
        client = self.client
        if isinstance(client, RedisCluster):
            primaries: list[Any] = client.get_primaries()  # type: ignore[no-untyped-call]
            for node in primaries:
                self._unlink_all(
                    client.scan_iter(match=match, count=CLEAR_BATCH, target_nodes=node)
                )
        else:
            self._unlink_all(client.scan_iter(match=match, count=CLEAR_BATCH))

    def _unlink_all(self, names: Iterable[bytes]) -> None:
        """UNLINK ``names`` in batches (on a cluster redis-py splits each batch by slot)."""
        batch: list[bytes] = []
        for name in names:
            batch.append(name)
            if len(batch) >= CLEAR_BATCH:
                self.client.unlink(*batch)
                batch.clear()
        if batch:
            self.client.unlink(*batch)

    def close(self) -> None:
        """Close the client's connections if this cache created the client."""
        if self.owns_client:
            self.client.close()
