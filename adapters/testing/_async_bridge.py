"""A sync bridge to async adapters, so the sync contract kits check them unchanged.

``EventLoopThread`` runs one asyncio event loop in a daemon thread; ``blocking(cache)``
wraps an ``AsyncCachePort`` as a ``CachePort`` (and ``blocking_queue(queue)`` an
``AsyncQueuePort`` as a ``QueuePort``) whose every method submits the awaited
call to that loop and waits for its answer. Calls from several threads run as several
tasks on the one loop, so the kit's concurrent ``add`` and ``incr`` steps race on the
event loop the way an asyncio application's tasks do. ``blocking_llm(llm)`` does the
same for an ``AsyncLLMPort``: a stream is driven one ``__anext__`` at a time and closed
with ``aclose()`` on the loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Coroutine, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

import attrs
from returns.result import Result

from portside.domain._cache import FillClaim
from portside.domain._errors import ServiceError
from portside.domain._llm import ChatDelta, ChatRequest, Completion, Embeddings, LLMIdentity
from portside.domain._queue import DeadLetter, Delivery
from portside.ports._cache import (
    AsyncCachePort,
    AsyncCompareAndDelete,
    AsyncLockedFill,
    CachePort,
    CompareAndDelete,
    LockedFill,
)
from portside.ports._llm import AsyncLLMPort, LLMPort
from portside.ports._queue import AsyncQueuePort, QueuePort

__all__ = [
    "BlockingCache",
    "BlockingLLM",
    "BlockingLockingCache",
    "BlockingQueue",
    "EventLoopThread",
]

T = TypeVar("T")


class EventLoopThread:
    """One asyncio event loop running in a daemon thread, until ``close()``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and block until it finishes; its result or exception."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def blocking(self, cache: AsyncCachePort) -> BlockingCache:
        """``cache`` as a ``CachePort`` whose calls run on this loop.

        A ``BlockingLockingCache`` (offering ``CompareAndDelete`` and ``LockedFill``)
        when ``cache`` offers both async capabilities, so the kit checks them too.
        """
        if isinstance(cache, AsyncCompareAndDelete) and isinstance(cache, AsyncLockedFill):
            return BlockingLockingCache(cache, self)
        return BlockingCache(cache, self)

    def blocking_llm(self, llm: AsyncLLMPort) -> BlockingLLM:
        """``llm`` as an ``LLMPort`` whose calls run on this loop."""
        return BlockingLLM(llm, self)

    def blocking_queue(self, queue: AsyncQueuePort) -> BlockingQueue:
        """``queue`` as a ``QueuePort`` whose calls run on this loop."""
        return BlockingQueue(queue, self)

    def close(self) -> None:
        """Stop the loop and its thread, then close the loop."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@attrs.define
class BlockingCache(CachePort):
    """An ``AsyncCachePort`` seen as a ``CachePort``: each call awaited on ``runner``'s loop."""

    inner: AsyncCachePort
    runner: EventLoopThread = attrs.field(repr=False)

    @property
    def namespace(self) -> str:
        """The inner cache's namespace."""
        return self.inner.namespace

    def get(self, key: str) -> Result[bytes | None, ServiceError]:
        """``await inner.get(key)``."""
        return self.runner.run(self.inner.get(key))

    def get_many(self, keys: Iterable[str]) -> Result[dict[str, bytes], ServiceError]:
        """``await inner.get_many(keys)``."""
        return self.runner.run(self.inner.get_many(keys))

    def set(self, key: str, value: bytes, ttl: float | None = None) -> Result[None, ServiceError]:
        """``await inner.set(key, value, ttl)``."""
        return self.runner.run(self.inner.set(key, value, ttl))

    def set_many(
        self, items: Mapping[str, bytes], ttl: float | None = None
    ) -> Result[None, ServiceError]:
        """``await inner.set_many(items, ttl)``."""
        return self.runner.run(self.inner.set_many(items, ttl))

    def add(self, key: str, value: bytes, ttl: float | None = None) -> Result[bool, ServiceError]:
        """``await inner.add(key, value, ttl)``."""
        return self.runner.run(self.inner.add(key, value, ttl))

    def delete(self, key: str) -> Result[bool, ServiceError]:
        """``await inner.delete(key)``."""
        return self.runner.run(self.inner.delete(key))

    def incr(self, key: str, by: int = 1) -> Result[int, ServiceError]:
        """``await inner.incr(key, by)``."""
        return self.runner.run(self.inner.incr(key, by))

    def ttl(self, key: str) -> Result[float | None, ServiceError]:
        """``await inner.ttl(key)``."""
        return self.runner.run(self.inner.ttl(key))

    def clear(self) -> Result[None, ServiceError]:
        """``await inner.clear()``."""
        return self.runner.run(self.inner.clear())

    def close(self) -> None:
        """``await inner.aclose()``."""
        self.runner.run(self.inner.aclose())


@attrs.define
class BlockingLockingCache(BlockingCache, CompareAndDelete, LockedFill):
    """A ``BlockingCache`` whose inner cache also offers the async capabilities."""

    def delete_if_equal(self, key: str, expected: bytes) -> Result[bool, ServiceError]:
        """``await inner.delete_if_equal(key, expected)``."""
        inner = cast(AsyncCompareAndDelete, self.inner)  # checked by EventLoopThread.blocking
        return self.runner.run(inner.delete_if_equal(key, expected))

    def get_or_lock(
        self, key: str, lock: str, token: bytes, ttl: float
    ) -> Result[FillClaim, ServiceError]:
        """``await inner.get_or_lock(key, lock, token, ttl)``."""
        inner = cast(AsyncLockedFill, self.inner)  # checked by EventLoopThread.blocking
        return self.runner.run(inner.get_or_lock(key, lock, token, ttl))

    def set_and_unlock(
        self, key: str, value: bytes, ttl: float | None, lock: str, token: bytes
    ) -> Result[bool, ServiceError]:
        """``await inner.set_and_unlock(key, value, ttl, lock, token)``."""
        inner = cast(AsyncLockedFill, self.inner)  # checked by EventLoopThread.blocking
        return self.runner.run(inner.set_and_unlock(key, value, ttl, lock, token))


@attrs.define
class BlockingLLM(LLMPort):
    """An ``AsyncLLMPort`` seen as an ``LLMPort``: each call awaited on ``runner``'s loop."""

    inner: AsyncLLMPort
    runner: EventLoopThread = attrs.field(repr=False)

    @property
    def identity(self) -> LLMIdentity:
        """The inner port's identity."""
        return self.inner.identity

    def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        """``await inner.complete(request)``."""
        return self.runner.run(self.inner.complete(request))

    def stream(self, request: ChatRequest) -> Iterator[Result[ChatDelta, ServiceError]]:
        """``inner.stream(request)``, each event awaited on the loop; closed on exit."""
        events = self.runner.run(_opened(self.inner, request))
        try:
            while True:
                try:
                    yield self.runner.run(_next(events))
                except StopAsyncIteration:
                    return
        finally:
            self.runner.run(events.aclose())

    def embed(
        self,
        texts: Sequence[str],
        *,
        model: str | None = None,
        dimensions: int | None = None,
    ) -> Result[Embeddings, ServiceError]:
        """``await inner.embed(texts, model=model, dimensions=dimensions)``."""
        return self.runner.run(self.inner.embed(texts, model=model, dimensions=dimensions))

    def close(self) -> None:
        """``await inner.aclose()``."""
        self.runner.run(self.inner.aclose())


@attrs.define
class BlockingQueue(QueuePort):
    """An ``AsyncQueuePort`` seen as a ``QueuePort``: each call awaited on ``runner``'s loop."""

    inner: AsyncQueuePort
    runner: EventLoopThread = attrs.field(repr=False)

    def publish(
        self,
        topic: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        dedupe_key: str | None = None,
        delay: float = 0.0,
    ) -> Result[str, ServiceError]:
        """``await inner.publish(...)``."""
        return self.runner.run(
            self.inner.publish(topic, body, headers=headers, dedupe_key=dedupe_key, delay=delay)
        )

    def publish_many(
        self,
        topic: str,
        bodies: Iterable[bytes],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Result[list[str], ServiceError]:
        """``await inner.publish_many(...)``."""
        return self.runner.run(self.inner.publish_many(topic, bodies, headers=headers))

    def receive(
        self,
        topic: str,
        group: str,
        consumer: str,
        *,
        max_messages: int = 1,
        wait: float = 0.0,
    ) -> Result[list[Delivery], ServiceError]:
        """``await inner.receive(...)``."""
        return self.runner.run(
            self.inner.receive(topic, group, consumer, max_messages=max_messages, wait=wait)
        )

    def ack(self, delivery: Delivery) -> Result[None, ServiceError]:
        """``await inner.ack(delivery)``."""
        return self.runner.run(self.inner.ack(delivery))

    def ack_many(self, deliveries: Sequence[Delivery]) -> Result[int, ServiceError]:
        """``await inner.ack_many(deliveries)``."""
        return self.runner.run(self.inner.ack_many(deliveries))

    def nack(self, delivery: Delivery, *, delay: float = 0.0) -> Result[None, ServiceError]:
        """``await inner.nack(delivery, delay=delay)``."""
        return self.runner.run(self.inner.nack(delivery, delay=delay))

    def extend(self, delivery: Delivery, *, by: float) -> Result[Delivery, ServiceError]:
        """``await inner.extend(delivery, by=by)``."""
        return self.runner.run(self.inner.extend(delivery, by=by))

    def dead_letters(self, topic: str, group: str) -> Result[list[DeadLetter], ServiceError]:
        """``await inner.dead_letters(topic, group)``."""
        return self.runner.run(self.inner.dead_letters(topic, group))

    def close(self) -> None:
        """``await inner.aclose()``."""
        self.runner.run(self.inner.aclose())


async def _opened(
    llm: AsyncLLMPort, request: ChatRequest
) -> AsyncGenerator[Result[ChatDelta, ServiceError], None]:
    # Called on the loop: an adapter may start work when its stream is created.
    return llm.stream(request)


async def _next(events: AsyncGenerator[T, None]) -> T:
    return await anext(events)
