"""``AsyncRedisQueue``: ``AsyncQueuePort`` over ``redis.asyncio``, the twin of ``RedisQueue``.

Both adapters run the same operations (``_publish``, ``_receive``, ``_settle``: the rules
of ``portside.ports.queue_rules``, the key layout, the ``.lua`` scripts, the reply
decoding, the retries and the error mapping), written once as steps without I/O; this
one sends the steps with the awaiting driver (``_async_drive``), ``RedisQueue`` with the
blocking one. A ``receive(wait=)`` blocks a pool connection, not the event loop.

Building one does no I/O, so the server's durability is read on first use (or by
``await queue.start()``, which ``open`` runs): the same verdict as ``RedisQueue``'s
start-up, a warning, or with ``require_durable`` a refusal (``QueueNotDurable`` from
``start``; every operation ``Failure(Unavailable)`` when the refusal came on first use).

Cancellation: each operation is one script call in the common case, so a call cancelled
before its command was written changed nothing, and one cancelled after had its whole
effect on the server (scripts are atomic) with the reply lost: a receive whose reply
was lost leased messages to no one, and they are delivered again once the lease runs
out, as at-least-once allows. The connection of a cancelled call is closed, never
reused with a reply still on its way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

import attrs
import redis.asyncio as aioredis
from returns.result import Failure, Result

from portside.adapters.clock import SystemClock
from portside.adapters.redis._async_client import CallGate, connect_async
from portside.adapters.redis._client import RedisOptions
from portside.adapters.redis._queue import _publish, _receive, _settle
from portside.adapters.redis._queue._adapter import QUEUE_CONNECTION
from portside.adapters.redis._queue._async_drive import drive_async
from portside.adapters.redis._queue._core import QueueCore
from portside.adapters.redis._queue._durability import (
    QueueDurability,
    QueueNotDurable,
    read_durability,
)
from portside.adapters.redis._queue._layout import SERVICE
from portside.adapters.redis._queue._steps import Op
from portside.domain._errors import ServiceError, Unavailable
from portside.domain._queue import DeadLetter, Delivery
from portside.ports._clock import Clock
from portside.ports._queue import AsyncQueuePort
from portside.ports.queue_rules import QueueOptions

__all__ = ["AsyncRedisQueue"]

T = TypeVar("T")


@attrs.define
class AsyncRedisQueue(QueueCore[aioredis.Redis], AsyncQueuePort):
    """An at-least-once queue on Redis Streams for asyncio; ``RedisQueue``'s twin.

    Use ``AsyncRedisQueue.from_url`` (or ``await AsyncRedisQueue.open(url)`` to check the
    server at once); ``await queue.aclose()`` releases the pool when the queue created
    it. Every method answers as ``RedisQueue``'s of the same name: ``InvalidRequest``
    for bad input (nothing sent), ``Unavailable`` or ``TimedOut`` when Redis cannot be
    reached or does not answer, ``Unavailable`` when no pool connection came free in
    time. The fields are ``QueueCore``'s (``client`` is a ``redis.asyncio.Redis``).
    """

    _gate: CallGate = attrs.field(init=False, repr=False)
    _started: bool = attrs.field(default=False, init=False, repr=False)
    _starting: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False, repr=False)
    #: Set when the start-up check refused the server (``require_durable``).
    _refusal: ServiceError | None = attrs.field(default=None, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._gate = CallGate(self.client)

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
    ) -> AsyncRedisQueue:
        """A queue with its own pool to ``url`` (``connect_async``); connects on first use."""
        client = connect_async(url, connection or QUEUE_CONNECTION)
        return cls(
            client,
            clock or SystemClock(),
            options or QueueOptions(),
            namespace,
            owns_client=True,
            require_durable=require_durable,
            durable_publish=durable_publish,
        )

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        clock: Clock | None = None,
        options: QueueOptions | None = None,
        namespace: str = "portside:queue",
        connection: RedisOptions | None = None,
        require_durable: bool = False,
        durable_publish: bool = False,
    ) -> AsyncRedisQueue:
        """``from_url``, then ``await start()`` (``QueueNotDurable`` as from ``RedisQueue``)."""
        queue = cls.from_url(
            url,
            clock=clock,
            options=options,
            namespace=namespace,
            connection=connection,
            require_durable=require_durable,
            durable_publish=durable_publish,
        )
        try:
            await queue.start()
        except BaseException:
            await queue.aclose()
            raise
        return queue

    async def start(self) -> None:
        """Read what the server promises and judge it, as ``RedisQueue``'s constructor does.

        Logs the verdict; raises ``QueueNotDurable`` with ``require_durable`` when the
        server can lose acknowledged messages or cannot be checked.
        """
        async with self._starting:
            report = await drive_async(self.client, self._scripts, self._gate, read_durability())
            self._started = True
            try:
                self.durability_found(report)
            except QueueNotDurable as exc:
                self._refusal = Unavailable(service=SERVICE, operation="start", message=str(exc))
                raise

    async def _started_or_refused(self) -> ServiceError | None:
        """Run the start-up check on first use; the refusal, if the server was refused."""
        async with self._starting:
            if self._started:
                return self._refusal
            report = await drive_async(self.client, self._scripts, self._gate, read_durability())
            if type(report) is Failure and self.require_durable:
                unchecked: ServiceError = report.failure()
                return unchecked  # not started: checked again on the next call
            self._started = True
        try:
            self.durability_found(report)
        except QueueNotDurable as exc:
            self._refusal = Unavailable(service=SERVICE, operation="start", message=str(exc))
        return self._refusal

    async def _drive(self, op: Op[T]) -> Result[T, ServiceError]:
        if not self._started or self._refusal is not None:
            refused = await self._started_or_refused()
            if refused is not None:
                op.close()
                return Failure(refused)
        return await drive_async(self.client, self._scripts, self._gate, op)

    def stream_key(self, topic: str) -> str:
        """The Redis key of the stream holding ``topic`` (the same as ``RedisQueue``'s)."""
        return self._topic_keys(topic).stream.decode()

    async def publish(
        self,
        topic: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        dedupe_key: str | None = None,
        delay: float = 0.0,
    ) -> Result[str, ServiceError]:
        """See ``RedisQueue.publish`` (repeated only with a dedupe key)."""
        return await self._drive(_publish.publish(self, topic, body, headers, dedupe_key, delay))

    async def publish_many(
        self,
        topic: str,
        bodies: Iterable[bytes],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Result[list[str], ServiceError]:
        """See ``RedisQueue.publish_many`` (one atomic script call)."""
        return await self._drive(_publish.publish_many(self, topic, bodies, headers))

    async def check_durability(self) -> Result[QueueDurability, ServiceError]:
        """See ``RedisQueue.check_durability`` (for health checks)."""
        return await drive_async(self.client, self._scripts, self._gate, self._check_durability())

    async def receive(
        self,
        topic: str,
        group: str,
        consumer: str,
        *,
        max_messages: int = 1,
        wait: float = 0.0,
    ) -> Result[list[Delivery], ServiceError]:
        """See ``RedisQueue.receive``; a ``wait`` is awaited, the event loop runs on."""
        return await self._drive(_receive.receive(self, topic, group, consumer, max_messages, wait))

    async def ack(self, delivery: Delivery) -> Result[None, ServiceError]:
        """See ``RedisQueue.ack``."""
        return await self._drive(_settle.ack(self, delivery))

    async def ack_many(self, deliveries: Sequence[Delivery]) -> Result[int, ServiceError]:
        """See ``RedisQueue.ack_many`` (one round trip)."""
        return await self._drive(_settle.ack_many(self, deliveries))

    async def nack(self, delivery: Delivery, *, delay: float = 0.0) -> Result[None, ServiceError]:
        """See ``RedisQueue.nack``."""
        return await self._drive(_settle.nack(self, delivery, delay))

    async def extend(self, delivery: Delivery, *, by: float) -> Result[Delivery, ServiceError]:
        """See ``RedisQueue.extend``."""
        return await self._drive(_settle.extend(self, delivery, by))

    async def dead_letters(self, topic: str, group: str) -> Result[list[DeadLetter], ServiceError]:
        """See ``RedisQueue.dead_letters``."""
        return await self._drive(_receive.dead_letters(self, topic, group))

    async def stored(self, topic: str) -> Result[int, ServiceError]:
        """See ``RedisQueue.stored``."""
        return await self._drive(_receive.stored(self, topic))

    async def aclose(self) -> None:
        """Close the client's pool when this queue created it."""
        if self.owns_client:
            await self.client.aclose()
