"""``QueuePort`` on Redis Streams and consumer groups (Redis 7.0 and later).

Each operation is one command: a bare XADD for a plain publish, one Lua script (the
``.lua`` files beside this module) for the rest, so a crash between two commands can
never half-apply it. The operations themselves are written once, without I/O
(``_publish``, ``_receive``, ``_settle``); this adapter sends their steps with the
blocking driver (``_drive``), ``AsyncRedisQueue`` with the awaiting one.
Leases and delays are kept in a sorted set per group, scored on the adapter's
``Clock``: that makes lease expiry testable with a manual clock and lets ``extend``
and ``nack(delay=)`` set any due time. Attempt counts are the stream's own delivery
counters (XPENDING), set explicitly on every redelivery.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

import attrs
from returns.result import Result

from portside.adapters.clock import SystemClock
from portside.adapters.redis._client import CLUSTER_SCHEMES, RedisOptions, connect, connect_cluster
from portside.adapters.redis._queue import _publish, _receive, _settle
from portside.adapters.redis._queue._core import QueueCore
from portside.adapters.redis._queue._drive import drive, queue_durability
from portside.adapters.redis._queue._durability import QueueDurability
from portside.adapters.redis._queue._nodes import QueueClient
from portside.adapters.redis._queue._steps import Step
from portside.domain._errors import ServiceError
from portside.domain._queue import DeadLetter, Delivery
from portside.ports._clock import Clock
from portside.ports._queue import QueuePort
from portside.ports.queue_rules import QueueOptions

__all__ = ["QUEUE_CONNECTION", "RedisQueue"]

#: The connection settings of a queue that builds its own client (``from_url``).
QUEUE_CONNECTION: Final = RedisOptions(socket_timeout=5.0, connect_timeout=1.0)
R = TypeVar("R")


@attrs.define
class RedisQueue(QueueCore[QueueClient], QueuePort):
    """An at-least-once queue on Redis Streams with consumer groups.

    Use ``RedisQueue.from_url``; ``close()`` releases the connection pool when the
    queue created it. Every method returns ``Failure(InvalidRequest)`` for bad input
    (nothing written), ``Failure(Unavailable)`` or ``Failure(TimedOut)`` when Redis
    cannot be reached or does not answer. ``receive(wait=)`` waits in real time.
    The fields (``client``, ``clock``, ``options``, ``namespace``, ``dedupe_retries``,
    ``owns_client``) and the shared plumbing are ``QueueCore``'s. Building one
    registers the queue scripts and checks the server's durability.
    """

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.durability_found(queue_durability(self.client))

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
        opts = connection or QUEUE_CONNECTION
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

    def _drive(self, op: Generator[Step, Any, R]) -> R:
        return drive(self.client, self._scripts, op)

    def stream_key(self, topic: str) -> str:
        """The Redis key of the stream holding ``topic`` (for XINFO and monitoring)."""
        return self._topic_keys(topic).stream.decode()

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
        return self._drive(_publish.publish(self, topic, body, headers, dedupe_key, delay))

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
        return self._drive(_publish.publish_many(self, topic, bodies, headers))

    def check_durability(self) -> Result[QueueDurability, ServiceError]:
        """Read again what the server can promise the queue (for health checks).

        ``Unavailable`` / ``TimedOut`` when the server cannot be reached.
        """
        return self._drive(self._check_durability())  # every primary, on a cluster

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
        return self._drive(_receive.receive(self, topic, group, consumer, max_messages, wait))

    def ack(self, delivery: Delivery) -> Result[None, ServiceError]:
        """Mark the message done for its group; deletes it once every group is done.

        A stale or already acked delivery is ``InvalidRequest``.
        """
        return self._drive(_settle.ack(self, delivery))

    def ack_many(self, deliveries: Sequence[Delivery]) -> Result[int, ServiceError]:
        """Ack each delivery ``ack`` would accept, in one round trip; returns how many."""
        return self._drive(_settle.ack_many(self, deliveries))

    def nack(self, delivery: Delivery, *, delay: float = 0.0) -> Result[None, ServiceError]:
        """Return the message, due again after ``delay``; dead-letter it after the last try.

        A negative delay or a stale or acked delivery is ``InvalidRequest``.
        """
        return self._drive(_settle.nack(self, delivery, delay))

    def extend(self, delivery: Delivery, *, by: float) -> Result[Delivery, ServiceError]:
        """Lease the message ``by`` seconds from now; returns the updated delivery.

        ``by`` must be positive; a stale, nacked or acked delivery is ``InvalidRequest``.
        """
        return self._drive(_settle.extend(self, delivery, by))

    def dead_letters(self, topic: str, group: str) -> Result[list[DeadLetter], ServiceError]:
        """The group's dead letters, oldest first (after sweeping spent leases)."""
        return self._drive(_receive.dead_letters(self, topic, group))

    def stored(self, topic: str) -> Result[int, ServiceError]:
        """How many entries the topic's stream holds (messages some group still needs).

        A bad topic name is ``InvalidRequest``.
        """
        return self._drive(_receive.stored(self, topic))

    def close(self) -> None:
        """Close the connection pool when this queue created it."""
        if self.owns_client:
            self.client.close()
