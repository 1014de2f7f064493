"""The Redis queue's state and plumbing, without I/O: settings, scripts, per-name caches.

``RedisQueue`` and ``AsyncRedisQueue`` are this plus a driver that sends the steps of the
operations (``_steps``). Here live what every operation leans on: the attrs fields,
script registration, the error mapping, the start-up verdict on the server's durability,
the helpers several operations share (adoption of orphans, reading a settle script's
answer, choosing how a durable publish confirms) and the caches that turn (already
validated) names into encoded keys and ready-made hot calls once per name. The client
is a ``redis.Redis`` or a ``redis.asyncio.Redis``: nothing here sends a command.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

import attrs
import redis
from returns.result import Failure, Result, Success

from portside.adapters.clock import SystemClock
from portside.adapters.redis._client import REDIS_ERRORS, map_error
from portside.adapters.redis._queue._durability import (
    Confirmation,
    QueueDurability,
    QueueNotDurable,
)
from portside.adapters.redis._queue._layout import (
    SERVICE,
    GroupCalls,
    GroupKeys,
    TopicKeys,
    receive_flags,
)
from portside.adapters.redis._queue._nodes import encoder_of, socket_timeout
from portside.adapters.redis._queue._scripts import SCRIPTS, AdoptPage, Settled, script_text
from portside.adapters.redis._queue._steps import Call, ReadDurability, Step
from portside.domain._errors import ServiceError
from portside.domain._queue import Delivery
from portside.ports._clock import Clock
from portside.ports.queue_rules import QueueOptions

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from redis.cluster import RedisCluster

__all__ = ["QueueCore", "check_namespace", "nogroup"]

_LOG: Final = logging.getLogger("portside.queue.redis")
#: Bounds the per-name caches of a process that keeps inventing names.
_MAX_CACHED: Final = 4096


#: Characters a namespace may not hold: ``|`` ends a cache namespace (``RedisCache``
#: deletes ``<its namespace>|*``), the others are glob syntax for SCAN MATCH patterns.
_NOT_IN_NAMESPACE: Final = frozenset("|*?[]\\{}")


def check_namespace(namespace: object) -> None:
    """Raise ``ValueError`` when ``namespace`` cannot name a queue's keys.

    Construction input, like ``QueueOptions``, so a wrong value raises. A queue named
    ``x|q`` would be wiped by ``RedisCache(namespace="x").clear()``.
    """
    if not isinstance(namespace, str) or not namespace or len(namespace) > 200:
        raise ValueError("queue namespace must be a str of 1 to 200 characters")
    if not namespace.isprintable() or _NOT_IN_NAMESPACE.intersection(namespace):
        raise ValueError("queue namespace must be printable and hold none of | * ? [ ] \\ { }")


#: The client a queue runs on: one server or a cluster (blocking), or asyncio.
C = TypeVar("C", bound="redis.Redis | RedisCluster | aioredis.Redis")
#: Bounds the adoption schedule of a process that keeps inventing group names.
_MAX_GROUPS: Final = 4096


def nogroup(exc: BaseException) -> bool:
    """Whether Redis answered that the stream or its consumer group does not exist."""
    return "NOGROUP" in str(exc)


@attrs.define
class QueueCore(Generic[C]):
    """The fields and shared machinery of ``RedisQueue`` and ``AsyncRedisQueue``; not a queue.

    Building one checks the namespace and registers the queue scripts (no I/O); the
    adapter reads the server's durability (``durability_found`` judges the answer).
    """

    # The client's repr names the server; kept out of ours all the same. A
    # ``RedisCluster`` routes every call by its keys: a topic's keys share one slot.
    client: C = attrs.field(repr=False)
    clock: Clock = attrs.field(factory=SystemClock)
    options: QueueOptions = attrs.field(factory=QueueOptions)
    namespace: str = "portside:queue"
    #: How often a ``publish`` that carries a dedupe key is repeated after a
    #: connection failure or timeout (safe: the key makes it idempotent).
    dedupe_retries: int = 1
    owns_client: bool = False
    #: Refuse to start (``QueueNotDurable``) on a server that can lose acknowledged
    #: messages across a restart or to eviction, instead of logging a warning.
    require_durable: bool = False
    #: Confirm every publish reached the disk or a replica before it returns
    #: (``TimedOut`` when that cannot be confirmed within ``confirm_timeout``).
    durable_publish: bool = False
    confirm_timeout: float = 1.0
    #: What the server promised at start-up (``None`` when it could not be read).
    durability: QueueDurability | None = attrs.field(default=None, init=False, repr=False)
    _keys: dict[str, TopicKeys] = attrs.field(factory=dict, init=False, repr=False)
    #: (topic, group) -> when (adapter clock) this process next pages through the
    #: group's pending entries for orphans; absent until its first receive here.
    _next_adoption: dict[tuple[str, str], float] = attrs.field(factory=dict, init=False, repr=False)
    #: Groups found missing on the server and not yet created again (logged once).
    _vanished: set[tuple[str, str]] = attrs.field(factory=set, init=False, repr=False)
    #: ``Script`` or ``AsyncScript`` objects by name (a pipeline loads them when needed).
    _scripts: dict[str, Any] = attrs.field(factory=dict, init=False, repr=False)
    _receive_flags: dict[tuple[bool, bool], bytes] = attrs.field(
        factory=dict, init=False, repr=False
    )
    # Validated (topic, group, consumer) -> their script calls, constants encoded.
    _calls: dict[tuple[str, str, str], GroupCalls] = attrs.field(
        factory=dict, init=False, repr=False
    )

    _read_timeout: float = attrs.field(default=1.0, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        check_namespace(self.namespace)
        self._read_timeout = socket_timeout(self.client) or 1.0
        for name in SCRIPTS:
            self._scripts[name] = self.client.register_script(script_text(name))
        # Encoded once: the receive script takes its settings as one argument.
        self._receive_flags.update(receive_flags(self.options))

    def durability_found(self, report: Result[QueueDurability, ServiceError]) -> None:
        """Judge what the server promises: log it, warn, or refuse (``QueueNotDurable``)."""
        if type(report) is Failure:
            if self.require_durable:
                raise QueueNotDurable(f"cannot check the Redis queue's durability: {report}")
            _LOG.info("could not read the Redis queue's durability: %s", report.failure())
            return
        self.durability = found = report.unwrap()
        if found.durable:
            _LOG.info("%s", found.summary)
            return
        advice = "; ".join(found.problems)
        if self.require_durable:
            raise QueueNotDurable(f"{found.summary} ({advice})")
        _LOG.warning("%s (%s)", found.summary, advice)

    def _topic_keys(self, topic: str) -> TopicKeys:
        """The encoded keys of ``topic`` (a cache of encoding, not of validation)."""
        keys = self._keys.get(topic)
        if keys is None:
            if len(self._keys) >= _MAX_CACHED:
                self._keys.clear()
            keys = self._keys[topic] = TopicKeys.of(self.namespace, topic)
        return keys

    def _calls_for(self, topic: str, group: str, consumer: str) -> GroupCalls:
        """The hot calls of valid names, built once (callers validate first)."""
        calls = self._calls.get((topic, group, consumer))
        if calls is None:
            if len(self._calls) >= _MAX_CACHED:
                self._calls.clear()
            keys = self._topic_keys(topic).group(group)
            # The client's own encoder, so the bytes are what redis-py would send.
            encoder = encoder_of(self.client)
            name, member = encoder.encode(group), encoder.encode(consumer)
            receive, ack = (self._scripts[s].sha.encode() for s in ("receive", "ack"))
            calls = GroupCalls.of(keys, name, member, receive, ack)
            self._calls[topic, group, consumer] = calls
        return calls

    def _script(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Call:
        """The step that runs the named script (``EVALSHA``; the driver loads it if needed)."""
        return Call(("EVALSHA", self._scripts[name].sha, len(keys), *keys, *args))

    def _group_vanished(self, topic: str, group: str, operation: str) -> None:
        """Log, once, that the server lost a group this process used, and recreate it.

        The next ``receive`` creates the group again and adopts what is pending.
        """
        self._next_adoption.pop((topic, group), None)
        if (topic, group) in self._vanished:
            return
        self._vanished.add((topic, group))
        _LOG.error(
            "queue group %r of topic %r vanished from Redis (seen by %s): its leases, "
            "unread and unacked messages may be lost (a restart without persistence, "
            "eviction, or deleted keys); creating it again and adopting what is left",
            group,
            topic,
            operation,
        )

    def _fail(self, exc: BaseException, operation: str) -> Failure[ServiceError]:
        return Failure(map_error(exc, service=SERVICE, operation=operation))

    def _flags(self, create: bool, waiting: float) -> bytes:
        """The receive script's last argument: settings and switches in one string."""
        return self._receive_flags[create, waiting > 0]

    # -- steps several operations share ---------------------------------------------

    def _adopt(self, topic: str, group: str) -> Generator[Step, Any, None]:
        """Adopt the group's orphans now and schedule the next pass (Redis errors raise).

        Pages XAUTOCLAIM to the end: every entry this adapter reads gets its lease in
        the same script, so an entry pending with neither a record nor a live batch
        lease lost it (eviction, deleted keys, a partial restore) or was read by a
        client outside the adapter: it is made due now whatever its idle time.
        """
        if len(self._next_adoption) >= _MAX_GROUPS:
            self._next_adoption.clear()
        yield from self._adopt_pages(group, self._topic_keys(topic).group(group))
        # Only once it went through: a pass a Redis error cut short is tried again.
        self._next_adoption[topic, group] = self.clock.now() + self.options.lease_timeout

    def _adopt_pages(self, group: str, keys: GroupKeys) -> Generator[Step, Any, None]:
        if not (yield Call(("EXISTS", keys.stream))):
            return
        cursor: bytes | str = "0-0"
        while True:
            args = [group, 0, cursor, repr(self.clock.now())]
            try:
                page = AdoptPage.of((yield self._script("adopt", keys.settle, args)))
            except redis.exceptions.ResponseError as exc:
                if nogroup(exc):
                    return  # the group does not exist yet: nothing to adopt
                raise
            if page.adopted:
                _LOG.warning(
                    "adopted %d pending messages of group %r without a lease record",
                    page.adopted,
                    group,
                )
            if page.last:
                return
            cursor = page.cursor

    def _due_for_adoption(self, topic: str, group: str) -> bool:
        """Whether this process should page through the group's pending entries now."""
        return self.clock.now() >= self._next_adoption.get((topic, group), -math.inf)

    def _settled(
        self, delivery: Delivery, operation: str, step: Call
    ) -> Generator[Step, Any, Result[Settled, ServiceError]]:
        """What a settle script answered; a group that vanished is ``NOT_PENDING``.

        Nothing of a vanished group is pending any more, so settling one of its
        deliveries is refused like any delivery that is no longer live (as on the fake).
        """
        try:
            return Success(Settled((yield step)))
        except redis.exceptions.ResponseError as exc:
            if not nogroup(exc):
                return self._fail(exc, operation)
            self._group_vanished(delivery.message.topic, delivery.group, operation)
            return Success(Settled.NOT_PENDING)
        except REDIS_ERRORS as exc:
            return self._fail(exc, operation)

    def _confirmation(self) -> Generator[Step, Any, Confirmation]:
        """How this server confirms a write (read again when start-up could not tell)."""
        if self.durability is None:
            found = yield ReadDurability()
            if type(found) is Success:
                self.durability = found.unwrap()
        return Confirmation.NONE if self.durability is None else self.durability.confirmation

    def _check_durability(self) -> Generator[Step, Any, Result[QueueDurability, ServiceError]]:
        """Read again what the server can promise the queue, and keep the answer."""
        found: Result[QueueDurability, ServiceError] = yield ReadDurability()
        if type(found) is Success:
            self.durability = found.unwrap()
        return found
