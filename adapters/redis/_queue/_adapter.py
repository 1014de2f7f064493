"""``QueuePort`` on Redis Streams and consumer groups (Redis 7.0 and later).

Each operation is one command: a bare XADD for a plain publish, one Lua script (the
``.lua`` files beside this module) for the rest, so a crash between two commands can
never half-apply it.
Leases and delays are kept in a sorted set per group, scored on the adapter's
``Clock``: that makes lease expiry testable with a manual clock and lets ``extend``
and ``nack(delay=)`` set any due time. Attempt counts are the stream's own delivery
counters (XPENDING), set explicitly on every redelivery.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from random import getrandbits as _random_bits
from typing import Any, Final

import attrs
import redis
from redis.exceptions import NoScriptError
from returns.result import Failure, Result, Success

from portside.adapters.clock import SystemClock
from portside.adapters.redis._client import (
    CLUSTER_SCHEMES,
    REDIS_ERRORS,
    RedisOptions,
    connect,
    connect_cluster,
)
from portside.adapters.redis._queue._confirm import write_confirmed
from portside.adapters.redis._queue._core import QueueCore
from portside.adapters.redis._queue._durability import (
    Confirmation,
    QueueDurability,
    queue_durability,
)
from portside.adapters.redis._queue._layout import SERVICE as _SERVICE
from portside.adapters.redis._queue._layout import decode_dead_letters, decode_deliveries
from portside.adapters.redis._queue._publish import (
    batch_args,
    checked_fields,
    dedupe_call,
    publish_deduped,
)
from portside.adapters.redis._queue._scripts import ReceiveReply, Settled
from portside.adapters.redis._queue._settle import ack_batches, extend_args, nack_args, refused_by
from portside.adapters.redis._queue._wait import adopt_orphans, block
from portside.domain._errors import ServiceError
from portside.domain._queue import DeadLetter, Delivery
from portside.ports._clock import Clock
from portside.ports._queue import QueuePort
from portside.ports.queue_rules import QueueOptions, check_delivery, check_name, check_receive

__all__ = ["RedisQueue"]

_QUEUE_CONNECTION: Final = RedisOptions(socket_timeout=5.0, connect_timeout=1.0)
#: Bounds the adoption schedule of a process that keeps inventing group names.
_MAX_GROUPS: Final = 4096


def _nogroup(exc: BaseException) -> bool:
    """Whether Redis answered that the stream or its consumer group does not exist."""
    return "NOGROUP" in str(exc)


@attrs.define
class RedisQueue(QueueCore, QueuePort):
    """An at-least-once queue on Redis Streams with consumer groups.

    Use ``RedisQueue.from_url``; ``close()`` releases the connection pool when the
    queue created it. Every method returns ``Failure(InvalidRequest)`` for bad input
    (nothing written), ``Failure(Unavailable)`` or ``Failure(TimedOut)`` when Redis
    cannot be reached or does not answer. ``receive(wait=)`` waits in real time.
    The fields (``client``, ``clock``, ``options``, ``namespace``, ``dedupe_retries``,
    ``owns_client``) and the shared plumbing are ``QueueCore``'s.
    """

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        clock: Clock | None = None,
        options: QueueOptions | None = None,
        namespace: str = "portside:queue",
        connection: RedisOptions | None = None,
        require_durable: bool = False,
        durable_publish: bool = False,
    ) -> RedisQueue:
        """A queue with its own connection pool to ``url`` (closed by ``close()``).

        ``redis+cluster://host:port`` (or ``rediss+cluster://``) names one node of a
        Redis Cluster: the queue then runs on a ``RedisCluster`` client, which reads the
        slot map at once (raising ``RedisClusterException`` or ``ConnectionError`` when
        no node answers). Raises ``QueueNotDurable`` with ``require_durable`` on a
        server (on a cluster: any primary) that can lose acknowledged messages (see
        ``QueueDurability``).
        """
        opts = connection or _QUEUE_CONNECTION
        cluster = url.startswith(CLUSTER_SCHEMES)
        client = connect_cluster(url, opts) if cluster else connect(url, opts)
        try:
            return cls(
                client,
                clock or SystemClock(),
                options or QueueOptions(),
                namespace,
                owns_client=True,
                require_durable=require_durable,
                durable_publish=durable_publish,
            )
        except BaseException:
            client.close()
            raise

    def stream_key(self, topic: str) -> str:
        """The Redis key of the stream holding ``topic`` (for XINFO and monitoring)."""
        return self._topic_keys(topic).stream.decode()

    # -- publishing -------------------------------------------------------------

    def publish(
        self,
        topic: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        dedupe_key: str | None = None,
        delay: float = 0.0,
    ) -> Result[str, ServiceError]:
        """Append a message; returns its id (the first one's for a seen dedupe key).

        With ``delay`` no group gets it before that many seconds (adapter clock).

        Without a dedupe key a failed or timed-out publish is never repeated (it may
        have been stored); with one it is repeated up to ``dedupe_retries`` times.
        """
        fields = checked_fields(topic, body, headers, dedupe_key, delay, self.options, self.clock)
        if type(fields) is Failure:
            return fields
        keys = self._topic_keys(topic)
        if self.durable_publish:
            if dedupe_key is None:
                command = ("XADD", keys.stream, b"*", *fields.unwrap())
                return self._durably(
                    keys.stream, "publish", lambda pipe: pipe.execute_command(*command)
                )
            script_keys, args = dedupe_call(keys, dedupe_key, fields.unwrap(), self.options)
            script = self._scripts["publish"]
            return self._durably(
                keys.stream, "publish", lambda pipe: script(script_keys, args, client=pipe)
            )
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
        return publish_deduped(
            self._run, keys, dedupe_key, fields.unwrap(), self.options, self.dedupe_retries
        )

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
        batch = batch_args(topic, bodies, headers, self.options, self.clock)
        if type(batch) is Failure:
            return batch
        if not batch.unwrap().size:
            return Success([])
        keys = self._topic_keys(topic)
        if self.durable_publish:
            script, args = self._scripts["publish_many"], batch.unwrap().args
            confirmed = write_confirmed(
                self.client,
                keys.stream,
                self._confirmation(),
                self.confirm_timeout,
                lambda pipe: script([keys.stream], args, client=pipe),
                "publish_many",
            )
            return confirmed.map(lambda replies: [reply.decode() for reply in replies])
        try:
            replies = self._run("publish_many", [keys.stream], batch.unwrap().args)
        except REDIS_ERRORS as exc:
            return self._fail(exc, "publish_many")
        return Success([reply.decode() for reply in replies])

    def _durably(
        self, stream: bytes, operation: str, write: Callable[[Any], None]
    ) -> Result[str, ServiceError]:
        """The id a publish's ``write`` to ``stream`` returns once the server confirmed it."""
        confirmed = write_confirmed(
            self.client, stream, self._confirmation(), self.confirm_timeout, write, operation
        )
        return confirmed.map(lambda added: added.decode())

    def _confirmation(self) -> Confirmation:
        """How this server confirms a write (read again when start-up could not tell)."""
        if self.durability is None:
            found = queue_durability(self.client)
            if type(found) is Success:
                self.durability = found.unwrap()
        return Confirmation.NONE if self.durability is None else self.durability.confirmation

    def check_durability(self) -> Result[QueueDurability, ServiceError]:
        """Read again what the server can promise the queue (for health checks).

        ``Unavailable`` / ``TimedOut`` when the server cannot be reached.
        """
        found = queue_durability(self.client)
        if type(found) is Success:
            self.durability = found.unwrap()
        return found

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
        checked = check_receive(topic, group, consumer, max_messages, wait, service=_SERVICE)
        if type(checked) is Failure:
            return checked
        count, waiting = checked.unwrap()
        calls = self._calls_for(topic, group, consumer)
        try:
            # The first receive of a group in this process makes sure the group exists;
            # later ones skip that (a NOGROUP reply, after the group vanished, brings
            # it back). Every lease_timeout each process pages through the group's
            # pending entries and adopts those whose lease was lost.
            key = (topic, group)
            create = key not in self._next_adoption
            if self.clock.now() >= self._next_adoption.get(key, -math.inf):
                self._adopt(topic, group)
            deadline = time.monotonic() + waiting if waiting else 0.0
            while True:
                now = self.clock.now()
                # Random, so no two receives anywhere share a receipt (the module's
                # generator is reseeded in a forked child; a receipt is no secret).
                head = (*calls.receive, count, repr(now), f"{_random_bits(48):012x}.")
                try:
                    reply = ReceiveReply.of(self._call((*head, self._flags(create, waiting))))
                except redis.exceptions.ResponseError as exc:
                    if create or "NOGROUP" not in str(exc):
                        raise
                    self._group_vanished(topic, group, "receive")
                    create = True
                    reply = ReceiveReply.of(self._call((*head, self._flags(True, waiting))))
                    self._adopt(topic, group)
                self._vanished.discard(key)
                if reply.delivered or reply.wake is None:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                stream = self._topic_keys(topic).stream
                block(self.client, stream, reply.wake, remaining, now, self._read_timeout)
        except REDIS_ERRORS as exc:
            return self._fail(exc, "receive")
        return decode_deliveries(topic, group, consumer, reply, now + self.options.lease_timeout)

    def _adopt(self, topic: str, group: str) -> None:
        """Adopt the group's orphans now and schedule the next pass (Redis errors raise)."""
        if len(self._next_adoption) >= _MAX_GROUPS:
            self._next_adoption.clear()
        group_keys = self._topic_keys(topic).group(group)
        adopt_orphans(self.client, self._run, self.clock, group, group_keys)
        self._next_adoption[topic, group] = self.clock.now() + self.options.lease_timeout

    # -- settling deliveries ----------------------------------------------------

    def ack(self, delivery: Delivery) -> Result[None, ServiceError]:
        """Mark the message done for its group; deletes it once every group is done.

        A stale or already acked delivery is ``InvalidRequest``.
        """
        checked = check_delivery(delivery, operation="ack", service=_SERVICE)
        if type(checked) is Failure:
            return checked
        message = delivery.message
        calls = self._calls_for(message.topic, delivery.group, delivery.consumer)
        settled = self._settled(
            delivery, "ack", lambda: self._call((*calls.ack, message.id, delivery.receipt))
        )
        if type(settled) is Failure:
            return settled
        outcome = settled.unwrap()
        return refused_by(outcome, delivery, "ack") if outcome.refused else Success(None)

    def ack_many(self, deliveries: Sequence[Delivery]) -> Result[int, ServiceError]:
        """Ack each delivery ``ack`` would accept, in one round trip; returns how many."""
        grouped = ack_batches(deliveries)
        if type(grouped) is Failure:
            return grouped
        batches = grouped.unwrap()
        try:
            if len(batches) == 1:
                [((topic, group), args)] = batches.items()
                keys = self._topic_keys(topic).group(group).settle
                counts: list[Any] = [self._run("ack_many", keys, args)]
            else:
                counts = self._ack_pipelined(batches)
        except redis.exceptions.ResponseError as exc:
            if not _nogroup(exc):
                return self._fail(exc, "ack_many")
            counts = [exc]
        except REDIS_ERRORS as exc:
            return self._fail(exc, "ack_many")
        acked = 0
        for (topic, group), count in zip(batches, counts, strict=True):
            if isinstance(count, redis.exceptions.ResponseError) and _nogroup(count):
                # The group vanished: nothing of it is pending any more, nothing acked.
                self._group_vanished(topic, group, "ack_many")
            elif isinstance(count, BaseException):
                return self._fail(count, "ack_many")
            else:
                acked += int(count)
        return Success(acked)

    def _ack_pipelined(self, batches: Mapping[tuple[str, str], list[Any]]) -> list[Any]:
        """Each batch's ACK_MANY reply (or error), several (topic, group)s in one pipeline.

        Plain EVALSHA commands: redis-py's cluster pipeline refuses its script methods
        (and sends each node its own calls). Nothing loads the scripts first, so a call
        answered ``NOSCRIPT`` is sent again once they are loaded: that call did nothing,
        the others' replies stand.
        """
        sha = self._scripts["ack_many"].sha
        settle = [self._topic_keys(topic).group(group).settle for topic, group in batches]
        with self.client.pipeline(transaction=False) as pipe:
            for keys, args in zip(settle, batches.values(), strict=True):
                pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
            counts: list[Any] = pipe.execute(raise_on_error=False)
        lost = [i for i, count in enumerate(counts) if isinstance(count, NoScriptError)]
        if lost:
            self._load_scripts()
            for i, args in enumerate(batches.values()):
                if i in lost:
                    counts[i] = self._run("ack_many", settle[i], args)
        return counts

    def nack(self, delivery: Delivery, *, delay: float = 0.0) -> Result[None, ServiceError]:
        """Return the message, due again after ``delay``; dead-letter it after the last try.

        A negative delay or a stale or acked delivery is ``InvalidRequest``.
        """
        args = nack_args(delivery, delay, self.clock, self.options.max_deliveries)
        if type(args) is Failure:
            return args
        keys = self._topic_keys(delivery.message.topic).group(delivery.group)
        settled = self._settled(
            delivery, "nack", lambda: self._run("nack", keys.every, args.unwrap())
        )
        if type(settled) is Failure:
            return settled
        outcome = settled.unwrap()
        return refused_by(outcome, delivery, "nack") if outcome.refused else Success(None)

    def extend(self, delivery: Delivery, *, by: float) -> Result[Delivery, ServiceError]:
        """Lease the message ``by`` seconds from now; returns the updated delivery.

        ``by`` must be positive; a stale, nacked or acked delivery is ``InvalidRequest``.
        """
        checked = extend_args(delivery, by, self.clock, self.options.max_deliveries)
        if type(checked) is Failure:
            return checked
        args, due = checked.unwrap()
        keys = self._topic_keys(delivery.message.topic).group(delivery.group)
        settled = self._settled(delivery, "extend", lambda: self._run("extend", keys.settle, args))
        if type(settled) is Failure:
            return settled
        outcome = settled.unwrap()
        if outcome.refused:
            return refused_by(outcome, delivery, "extend")
        return Success(attrs.evolve(delivery, lease_expires_at=due))

    def _settled(
        self, delivery: Delivery, operation: str, send: Callable[[], Any]
    ) -> Result[Settled, ServiceError]:
        """What a settle script answered; a group that vanished is ``NOT_PENDING``.

        Nothing of a vanished group is pending any more, so settling one of its
        deliveries is refused like any delivery that is no longer live (as on the fake).
        """
        try:
            return Success(Settled(send()))
        except redis.exceptions.ResponseError as exc:
            if not _nogroup(exc):
                return self._fail(exc, operation)
            self._group_vanished(delivery.message.topic, delivery.group, operation)
            return Success(Settled.NOT_PENDING)
        except REDIS_ERRORS as exc:
            return self._fail(exc, operation)

    # -- inspection -------------------------------------------------------------

    def dead_letters(self, topic: str, group: str) -> Result[list[DeadLetter], ServiceError]:
        """The group's dead letters, oldest first (after sweeping spent leases)."""
        for kind, name in (("topic", topic), ("group", group)):
            checked = check_name(kind, name, operation="dead_letters", service=_SERVICE)
            if type(checked) is Failure:
                return checked
        group_keys = self._topic_keys(topic).group(group)
        now = self.clock.now()
        try:
            # A receive of zero messages that does not create the group: only the sweep.
            args = [group, "-", 0, repr(now), "x.", self._flags(False, 0.0)]
            try:
                self._run("receive", group_keys.every, args)
            except redis.exceptions.ResponseError as exc:
                if not _nogroup(exc):
                    raise
                # The group vanished with its leases: nothing to sweep, its dead
                # letters (if they survived) are still listed.
                self._group_vanished(topic, group, "dead_letters")
            entries: Any = self.client.xrange(group_keys.dead, "-", "+")
        except REDIS_ERRORS as exc:
            return self._fail(exc, "dead_letters")
        return decode_dead_letters(topic, group, entries)

    def stored(self, topic: str) -> Result[int, ServiceError]:
        """How many entries the topic's stream holds (messages some group still needs).

        A bad topic name is ``InvalidRequest``.
        """
        checked = check_name("topic", topic, operation="stored", service=_SERVICE)
        if type(checked) is Failure:
            return checked
        try:
            return Success(int(self.client.xlen(self._topic_keys(topic).stream)))
        except REDIS_ERRORS as exc:
            return self._fail(exc, "stored")

    def close(self) -> None:
        """Close the connection pool when this queue created it."""
        if self.owns_client:
            self.client.close()
