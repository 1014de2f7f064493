"""``QueuePort`` on Redis Streams and consumer groups (Redis 7.0 and later).

Each operation is one command: a bare XADD for a plain publish, one Lua script (see
``_queue_lua``) for the rest, so a crash between two commands can never half-apply it.
Leases and delays are kept in a sorted set per group, scored on the adapter's
``Clock``: that makes lease expiry testable with a manual clock and lets ``extend``
and ``nack(delay=)`` set any due time. Attempt counts are the stream's own delivery
counters (XPENDING), set explicitly on every redelivery.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from random import getrandbits as _random_bits
from typing import Any, Final

import attrs
import redis
from redis.commands.core import Script
from returns.result import Failure, Result, Success

from adapters._queue_rules import (
    MAX_BATCH,
    QueueOptions,
    check_body,
    check_delay,
    check_delivery,
    check_headers,
    check_name,
    check_publish_batch,
    check_receive,
    name_problem,
    refused,
)
from adapters.codec import encode
from adapters.memory.clock import SystemClock
from adapters.redis import _queue_lua as lua
from adapters.redis._client import REDIS_ERRORS, RedisOptions, connect, map_error
from adapters.redis._queue_layout import (
    GroupCalls,
    TopicKeys,
    decode_dead_letter,
    decode_deliveries,
    eviction_warning,
    names_of,
)
from domain.errors import ServiceError, TimedOut, Unavailable
from domain.queue import DeadLetter, Delivery
from ports.clock import Clock
from ports.queue import QueuePort

__all__ = ["QueueOptions", "RedisQueue", "eviction_warning"]

_SERVICE: Final = "redis-queue"
_LOG: Final = logging.getLogger("portside.queue.redis")
#: Blocking reads are cut into chunks well inside the socket timeout.
_BLOCK_CHUNK: Final = 1.0
_QUEUE_CONNECTION: Final = RedisOptions(socket_timeout=5.0, connect_timeout=1.0)
#: Immutable, so every successful ack shares one.
_DONE: Final[Success[None]] = Success(None)
#: Bounds the per-name caches of a process that keeps inventing names.
_MAX_CACHED: Final = 4096
_INF: Final = math.inf


@attrs.define
class RedisQueue(QueuePort):
    """An at-least-once queue on Redis Streams with consumer groups.

    Use ``RedisQueue.from_url``; ``close()`` releases the connection pool when the
    queue created it. Every method returns ``Failure(InvalidRequest)`` for bad input
    (nothing written), ``Failure(Unavailable)`` or ``Failure(TimedOut)`` when Redis
    cannot be reached or does not answer. ``receive(wait=)`` waits in real time.
    """

    # The client's repr names the server; kept out of ours all the same.
    client: redis.Redis = attrs.field(repr=False)
    clock: Clock = attrs.field(factory=SystemClock)
    options: QueueOptions = attrs.field(factory=QueueOptions)
    namespace: str = "portside:queue"
    #: How often a ``publish`` that carries a dedupe key is repeated after a
    #: connection failure or timeout (safe: the key makes it idempotent).
    dedupe_retries: int = 1
    owns_client: bool = False
    _keys: dict[str, TopicKeys] = attrs.field(factory=dict, init=False, repr=False)
    _adopted: set[tuple[str, str]] = attrs.field(factory=set, init=False, repr=False)
    _scripts: dict[str, Script] = attrs.field(factory=dict, init=False, repr=False)
    _receive_flags: dict[tuple[bool, bool], bytes] = attrs.field(
        factory=dict, init=False, repr=False
    )
    # Validated (topic, group, consumer) -> their script calls, constants encoded.
    _calls: dict[tuple[str, str, str], GroupCalls] = attrs.field(
        factory=dict, init=False, repr=False
    )

    _read_timeout: float = attrs.field(default=1.0, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        timeout = self.client.connection_pool.connection_kwargs.get("socket_timeout")
        self._read_timeout = float(timeout) if timeout else 1.0
        for name in lua.__all__:
            self._scripts[name] = self.client.register_script(getattr(lua, name))
        # Encoded once: the receive script takes its settings as one argument.
        settings = f"{self.options.max_deliveries} {self.options.lease_timeout!r}"
        for create in (False, True):
            for wake in (False, True):
                flags = f"{settings} {int(create)} {int(wake)}"
                self._receive_flags[create, wake] = flags.encode()
        self._check_eviction_policy()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        clock: Clock | None = None,
        options: QueueOptions | None = None,
        namespace: str = "portside:queue",
        connection: RedisOptions | None = None,
    ) -> RedisQueue:
        """A queue with its own connection pool to ``url`` (closed by ``close()``)."""
        return cls(
            connect(url, connection or _QUEUE_CONNECTION),
            clock or SystemClock(),
            options or QueueOptions(),
            namespace,
            owns_client=True,
        )

    def _check_eviction_policy(self) -> None:
        try:
            reply: Any = self.client.config_get("maxmemory-policy")
        except REDIS_ERRORS as exc:
            # Managed services often refuse CONFIG; the check is advice, not a gate.
            _LOG.info("could not read Redis maxmemory-policy: %s", type(exc).__name__)
            return
        raw = reply.get("maxmemory-policy", reply.get(b"maxmemory-policy"))
        policy = raw.decode() if isinstance(raw, bytes) else str(raw)
        warning = eviction_warning(policy)
        if warning is not None:
            _LOG.warning(warning)

    def _topic_keys(self, topic: str) -> TopicKeys:
        keys = self._keys.get(topic)
        if keys is None:
            # The length prefix makes every key decode to one (topic, group) pair even
            # when names contain braces or colons; the braces keep a topic in one slot.
            base = f"{self.namespace}:{len(topic)}:{{{topic}}}"
            keys = TopicKeys((base + ":s").encode(), (base + ":groups").encode(), base)
            # Only valid names are kept: publish takes a cached topic as validated.
            if name_problem("topic", topic) is None:
                self._keys[topic] = keys
        return keys

    def _calls_for(self, topic: str, group: str, consumer: str) -> GroupCalls:
        """The hot calls of valid names, built once (callers validate first)."""
        calls = self._calls.get((topic, group, consumer))
        if calls is None:
            if len(self._calls) >= _MAX_CACHED:
                self._calls.clear()
            keys = self._topic_keys(topic).group(group)
            # The client's own encoder, so the bytes are what redis-py would send.
            encoder: Any = self.client.connection_pool.get_encoder()
            name, member = encoder.encode(group), encoder.encode(consumer)
            receive, ack = (self._scripts[s].sha.encode() for s in ("RECEIVE", "ACK"))
            calls = self._calls[topic, group, consumer] = GroupCalls(
                ("EVALSHA", receive, b"5", *keys, name, member),
                ("EVALSHA", ack, b"4", *keys[:4], name),
            )
        return calls

    def _call(self, command: tuple[Any, ...]) -> Any:
        """Send one EVALSHA command; on NOSCRIPT load every script and send it again."""
        try:
            return self.client.execute_command(*command)  # type: ignore[no-untyped-call]
        except redis.exceptions.NoScriptError:
            # A restarted server or a SCRIPT FLUSH lost them all; a script's SHA is its
            # text's, so loading gives the same SHA back and cached calls stay valid.
            for script in self._scripts.values():
                self.client.script_load(script.script)
            return self.client.execute_command(*command)  # type: ignore[no-untyped-call]

    def _run(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """EVALSHA the named script, loading it first if the server does not know it."""
        return self._call(("EVALSHA", self._scripts[name].sha, len(keys), *keys, *args))

    def stream_key(self, topic: str) -> str:
        """The Redis key of the stream holding ``topic`` (for XINFO and monitoring)."""
        return self._topic_keys(topic).stream.decode()

    def _fail(self, exc: BaseException, operation: str) -> Failure[ServiceError]:
        return Failure(map_error(exc, service=_SERVICE, operation=operation))

    # -- publishing -------------------------------------------------------------

    def _fields(
        self, body: bytes, headers: dict[str, str], dedupe: str | None
    ) -> Result[list[Any], ServiceError]:
        """The stream entry's field list (see ``_queue_layout``)."""
        fields: list[Any] = [b"b", body, b"t", repr(self.clock.now())]
        if headers:
            encoded = encode(headers)
            if isinstance(encoded, Failure):
                return encoded
            fields += [b"h", encoded.unwrap()]
        if dedupe is not None:
            fields += [b"d", dedupe]
        return Success(fields)

    def publish(
        self,
        topic: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        dedupe_key: str | None = None,
    ) -> Result[str, ServiceError]:
        """Append a message; returns its id (the first one's for a seen dedupe key).

        Without a dedupe key a failed or timed-out publish is never repeated (it may
        have been stored); with one it is repeated up to ``dedupe_retries`` times.
        """
        try:
            keys = self._keys.get(topic)  # cached only once valid
        except TypeError:  # an unhashable topic: the check below names the problem
            keys = None
        if (
            keys is not None
            and headers is None
            and dedupe_key is None
            and type(body) is bytes
            and len(body) <= self.options.max_body_bytes
        ):
            # The common publish: valid names, no headers, no dedupe key. A bare XADD
            # (the same command a raw client sends) with nothing built on the way.
            try:
                added: Any = self.client.execute_command(  # type: ignore[no-untyped-call]
                    "XADD", keys.stream, b"*", b"b", body, b"t", repr(self.clock.now())
                )
            except REDIS_ERRORS as exc:
                return self._fail(exc, "publish")
            return Success(added.decode())
        return self._publish_checked(topic, body, headers, dedupe_key)

    def _publish_checked(
        self,
        topic: str,
        body: bytes,
        headers: Mapping[str, str] | None,
        dedupe_key: str | None,
    ) -> Result[str, ServiceError]:
        """``publish`` for anything but the common case: every argument checked."""
        checked = check_name("topic", topic, operation="publish", service=_SERVICE)
        if isinstance(checked, Failure):
            return checked
        data = check_body(body, self.options, operation="publish", service=_SERVICE)
        if isinstance(data, Failure):
            return data
        copied = check_headers(headers, operation="publish", service=_SERVICE)
        if isinstance(copied, Failure):
            return copied
        if dedupe_key is not None:
            key = check_name("dedupe key", dedupe_key, operation="publish", service=_SERVICE)
            if isinstance(key, Failure):
                return key
        fields = self._fields(data.unwrap(), copied.unwrap(), dedupe_key)
        if isinstance(fields, Failure):
            return fields
        keys = self._topic_keys(topic)
        if dedupe_key is None:
            # Nothing to check first: a bare XADD, the same command a raw client sends
            # (execute_command skips xadd()'s dict-to-list work; redis-py leaves it untyped).
            try:
                added: Any = self.client.execute_command(  # type: ignore[no-untyped-call]
                    "XADD", keys.stream, b"*", *fields.unwrap()
                )
            except REDIS_ERRORS as exc:
                return self._fail(exc, "publish")
            return Success(added.decode())
        script_keys = [keys.stream, f"{keys.base}:dd:{dedupe_key}".encode()]
        args = [int(self.options.dedupe_window * 1000), *fields.unwrap()]
        tries = 1 + self.dedupe_retries
        for attempt in range(tries):
            try:
                reply = self._run("PUBLISH", script_keys, args)
            except REDIS_ERRORS as exc:
                failure = self._fail(exc, "publish")
                error = failure.failure()
                if attempt + 1 < tries and isinstance(error, Unavailable | TimedOut):
                    continue
                return failure
            return Success(reply.decode())
        raise AssertionError("unreachable: the loop returns")  # pragma: no cover

    def publish_many(
        self,
        topic: str,
        bodies: Iterable[bytes],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Result[list[str], ServiceError]:
        """Append several messages in one atomic script call; returns their ids.

        Bad input fails the whole batch before anything is sent. A batch that timed
        out may have been stored (whole); it is not repeated.
        """
        checked = check_publish_batch(topic, bodies, self.options, service=_SERVICE)
        if isinstance(checked, Failure):
            return checked
        copied = check_headers(headers, operation="publish_many", service=_SERVICE)
        if isinstance(copied, Failure):
            return copied
        args: list[Any] = [repr(self.clock.now()), b""]
        if copied.unwrap():
            encoded = encode(copied.unwrap())
            if isinstance(encoded, Failure):
                return encoded
            args[1] = encoded.unwrap()
        args += checked.unwrap()
        if len(args) == 2:
            return Success([])
        keys = self._topic_keys(topic)
        try:
            replies = self._run("PUBLISH_MANY", [keys.stream], args)
        except REDIS_ERRORS as exc:
            return self._fail(exc, "publish_many")
        return Success([reply.decode() for reply in replies])

    # -- receiving --------------------------------------------------------------

    def receive(
        self,
        topic: str,
        group: str,
        consumer: str,
        *,
        max_messages: int = 1,
        wait: float = 0.0,
    ) -> Result[list[Delivery], ServiceError]:
        """Lease up to ``max_messages``: own due messages, others' due ones, then new ones.

        Creates the group on first use: the topic's first group starts with the
        messages kept before it, a later one after the messages already published.
        Waits up to ``wait`` real seconds when nothing is ready.
        """
        count: object = max_messages
        seconds: object = wait
        try:
            calls = self._calls.get((topic, group, consumer))  # cached only once valid
        except TypeError:  # an unhashable name: the check below names the problem
            calls = None
        if (
            calls is None
            or type(count) is not int
            or not 0 < count <= MAX_BATCH
            or (type(seconds) is not float and type(seconds) is not int)
            or not 0.0 <= seconds < _INF  # false for NaN too
        ):
            checked = check_receive(topic, group, consumer, count, seconds, service=_SERVICE)
            if isinstance(checked, Failure):
                return checked
            count, seconds = checked.unwrap()
            calls = self._calls_for(topic, group, consumer)
        waiting = float(seconds)
        try:
            # The first receive of a group in this process adopts orphans and makes
            # sure the group exists; later ones skip both (a NOGROUP reply, after the
            # keys were deleted under us, brings the check back).
            create = (topic, group) not in self._adopted
            if create:
                self._adopt_orphans(group, self._topic_keys(topic).group(group))
                self._adopted.add((topic, group))
            deadline = time.monotonic() + waiting if waiting else 0.0
            while True:
                now = self.clock.now()
                # Random, so no two receives anywhere share a receipt (the module's
                # generator is reseeded in a forked child; a receipt is no secret).
                head = (*calls.receive, count, repr(now), f"{_random_bits(48):012x}.")
                try:
                    reply = self._call((*head, self._flags(create, waiting)))
                except redis.exceptions.ResponseError as exc:
                    if create or "NOGROUP" not in str(exc):
                        raise
                    create = True
                    reply = self._call((*head, self._flags(True, waiting)))
                if reply[0] or reply[1] or waiting <= 0:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                stream = self._topic_keys(topic).stream
                self._block(stream, reply[2], reply[3] or None, remaining, now)
        except REDIS_ERRORS as exc:
            return self._fail(exc, "receive")
        return decode_deliveries(topic, group, consumer, reply, now + self.options.lease_timeout)

    def _flags(self, create: bool, waiting: float) -> bytes:
        """The receive script's last argument: settings and switches in one string."""
        return self._receive_flags[create, waiting > 0]

    def _block(
        self, stream: bytes, last: bytes, next_due: bytes | None, left: float, now: float
    ) -> None:
        """Sleep until a message newer than ``last`` arrives, a lease falls due, or ``left``."""
        pause = min(left, _BLOCK_CHUNK)
        if next_due is not None:
            pause = min(pause, max(0.0, float(next_due) - now))
        if pause <= 0.001:
            return
        # A blocking read legitimately stays silent for `pause` (and Redis wakes blocked
        # clients on its ~100 ms timer), so this one reply may take that much longer than
        # the socket timeout; an idle but healthy server must not look like TimedOut.
        pool = self.client.connection_pool
        connection: Any = pool.get_connection()  # redis-py leaves these methods untyped
        try:
            connection.send_command(
                "XREAD", "COUNT", 1, "BLOCK", max(1, int(pause * 1000)), "STREAMS", stream, last
            )
            connection.read_response(timeout=pause + 0.25 + self._read_timeout)
        except BaseException:
            connection.disconnect()  # the reply may still be on its way: never reuse it
            raise
        finally:
            pool.release(connection)

    def _adopt_orphans(self, group: str, group_keys: list[bytes]) -> None:
        """Page XAUTOCLAIM to the end once per group: adopt pending entries with no lease."""
        if not self.client.exists(group_keys[0]):
            return
        cursor: bytes | str = "0-0"
        min_idle = int(self.options.lease_timeout * 1000)
        while True:
            try:
                reply = self._run(
                    "ADOPT", group_keys[:4], [group, min_idle, cursor, repr(self.clock.now())]
                )
            except redis.exceptions.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    return  # the group does not exist yet: nothing to adopt
                raise
            cursor = reply[0]
            if reply[1]:
                _LOG.warning("adopted %d pending messages without a lease record", reply[1])
            if cursor in (b"0-0", "0-0"):
                return

    # -- settling deliveries ----------------------------------------------------

    def _settle_args(self, delivery: Delivery) -> tuple[list[bytes], str]:
        return self._topic_keys(delivery.message.topic).group(delivery.group), delivery.message.id

    def _refused(self, code: int, delivery: Delivery, operation: str) -> Failure[ServiceError]:
        # The scripts answer 0 for "not pending in the group" and -1 for "stale".
        return refused(delivery, stale=code != 0, operation=operation, service=_SERVICE)

    def ack(self, delivery: Delivery) -> Result[None, ServiceError]:
        """Mark the message done for its group; deletes it once every group is done.

        A stale or already acked delivery is ``InvalidRequest``.
        """
        calls = None
        if type(delivery) is Delivery:
            message = delivery.message
            calls = self._calls.get((message.topic, delivery.group, delivery.consumer))
        if calls is None:
            checked = check_delivery(delivery, operation="ack", service=_SERVICE)
            if isinstance(checked, Failure):
                return checked
            message = delivery.message
            calls = self._calls_for(message.topic, delivery.group, delivery.consumer)
        try:
            code = self._call((*calls.ack, message.id, delivery.receipt))
        except REDIS_ERRORS as exc:
            return self._fail(exc, "ack")
        return _DONE if code == 1 else self._refused(code, delivery, "ack")

    def ack_many(self, deliveries: Sequence[Delivery]) -> Result[int, ServiceError]:
        """Ack each delivery ``ack`` would accept, in one round trip; returns how many."""
        # One script call per (topic, group): the per-call cost of Lua is paid once.
        batches: dict[tuple[str, str], list[str]] = {}
        last: tuple[str, str, str] | None = None
        args: list[str] = []
        for delivery in deliveries:
            names = names_of(delivery)
            if names != last:  # a batch usually repeats one topic, group and consumer
                if names is None or names not in self._calls:
                    checked = check_delivery(delivery, operation="ack_many", service=_SERVICE)
                    if isinstance(checked, Failure):
                        return checked
                    names = (delivery.message.topic, delivery.group, delivery.consumer)
                    self._calls_for(*names)
                last = names
                args = batches.setdefault((delivery.message.topic, delivery.group), [])
                if not args:
                    args.append(delivery.group)
            args += (delivery.message.id, delivery.receipt)
        try:
            if len(batches) == 1:
                [((topic, group), args)] = batches.items()
                keys = self._topic_keys(topic).group(group)[:4]
                return Success(int(self._run("ACK_MANY", keys, args)))
            script = self._scripts["ACK_MANY"]
            with self.client.pipeline(transaction=False) as pipe:
                for (topic, group), args in batches.items():
                    script(self._topic_keys(topic).group(group)[:4], args, client=pipe)
                counts = pipe.execute()
        except REDIS_ERRORS as exc:
            return self._fail(exc, "ack_many")
        return Success(sum(int(count) for count in counts))

    def nack(self, delivery: Delivery, *, delay: float = 0.0) -> Result[None, ServiceError]:
        """Return the message, due again after ``delay``; dead-letter it after the last try.

        A negative delay or a stale or acked delivery is ``InvalidRequest``.
        """
        waited = check_delay("delay", delay, operation="nack", service=_SERVICE)
        if isinstance(waited, Failure):
            return waited
        checked = check_delivery(delivery, operation="nack", service=_SERVICE)
        if isinstance(checked, Failure):
            return checked
        keys, message_id = self._settle_args(delivery)
        now = self.clock.now()
        try:
            code = self._run(
                "NACK",
                keys,
                [
                    delivery.group,
                    message_id,
                    delivery.receipt,
                    repr(now),
                    repr(now + waited.unwrap()),
                    self.options.max_deliveries,
                ],
            )
        except REDIS_ERRORS as exc:
            return self._fail(exc, "nack")
        return Success(None) if code in (1, 2) else self._refused(code, delivery, "nack")

    def extend(self, delivery: Delivery, *, by: float) -> Result[Delivery, ServiceError]:
        """Lease the message ``by`` seconds from now; returns the updated delivery.

        ``by`` must be positive; a stale, nacked or acked delivery is ``InvalidRequest``.
        """
        longer = check_delay("by", by, operation="extend", service=_SERVICE, positive=True)
        if isinstance(longer, Failure):
            return longer
        checked = check_delivery(delivery, operation="extend", service=_SERVICE)
        if isinstance(checked, Failure):
            return checked
        keys, message_id = self._settle_args(delivery)
        due = self.clock.now() + longer.unwrap()
        try:
            code = self._run(
                "EXTEND", keys[:4], [delivery.group, message_id, delivery.receipt, repr(due)]
            )
        except REDIS_ERRORS as exc:
            return self._fail(exc, "extend")
        if code != 1:
            return self._refused(code, delivery, "extend")
        return Success(attrs.evolve(delivery, lease_expires_at=due))

    # -- inspection -------------------------------------------------------------

    def dead_letters(self, topic: str, group: str) -> Result[list[DeadLetter], ServiceError]:
        """The group's dead letters, oldest first (after sweeping spent leases)."""
        for kind, name in (("topic", topic), ("group", group)):
            checked = check_name(kind, name, operation="dead_letters", service=_SERVICE)
            if isinstance(checked, Failure):
                return checked
        group_keys = self._topic_keys(topic).group(group)
        now = self.clock.now()
        try:
            # A receive of zero messages that does not create the group: only the sweep.
            args = [group, "-", 0, repr(now), "x.", self._flags(False, 0.0)]
            self._run("RECEIVE", group_keys, args)
            entries: Any = self.client.xrange(group_keys[4], "-", "+")
        except REDIS_ERRORS as exc:
            return self._fail(exc, "dead_letters")
        letters: list[DeadLetter] = []
        for _, raw in entries:
            letter = decode_dead_letter(topic, group, raw)
            if isinstance(letter, Failure):
                return letter
            letters.append(letter.unwrap())
        return Success(letters)

    def stored(self, topic: str) -> Result[int, ServiceError]:
        """How many entries the topic's stream holds (messages some group still needs)."""
        try:
            return Success(int(self.client.xlen(self._topic_keys(topic).stream)))
        except REDIS_ERRORS as exc:
            return self._fail(exc, "stored")

    def close(self) -> None:
        """Close the connection pool when this queue created it."""
        if self.owns_client:
            self.client.close()
