"""``AsyncEntryStore``: ``EntryStore`` over an ``AsyncCachePort``, failing open the same way.

Reads, writes and the fill lock make the same calls in the same order as the sync
store (the fill's decisions are ``take_steps``, ``write_step`` and ``release_step``,
shared); each call is awaited. A task cancelled while it holds the fill lock leaves
the lock to its TTL (``lock_ttl``) at worst; ``AsyncCachingLLM`` releases it in a
``finally``.
"""

from __future__ import annotations

import attrs

from portside.adapters.clock import async_sleeper
from portside.adapters.llm_cache._entry import ChatEntry
from portside.adapters.llm_cache._store import (
    Fill,
    StoreCore,
    release_step,
    take_steps,
    write_step,
)
from portside.adapters.resilience._async_fail_open import AsyncFailOpenCache
from portside.adapters.resilience._steps import arun
from portside.domain._llm import Completion
from portside.ports._cache import AsyncCachePort

__all__ = ["AsyncEntryStore"]


@attrs.define
class AsyncEntryStore(StoreCore[AsyncCachePort]):
    """Chat entries in an async ``cache``, behind ``breaker``; cache errors are misses."""

    #: ``cache`` failing open on every error: what every read and write goes through.
    safe: AsyncFailOpenCache = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.safe = AsyncFailOpenCache(self.cache, **self._fail_open_options())

    async def read(self, key: str, *, with_deltas: bool) -> ChatEntry | None:
        """The entry at ``key``; ``None`` when absent, corrupt, or the cache failed."""
        data = (await self.safe.get(key)).value_or(None)
        return None if data is None else ChatEntry.decode(data, with_deltas=with_deltas)

    async def answer(self, key: str) -> Completion | None:
        """The stored completion at ``key`` as a counted hit with its age, or ``None``."""
        return self.answer_of(await self.read(key, with_deltas=False))

    async def write(self, fill: Fill, entry: ChatEntry, ttl: float | None) -> None:
        """Store ``entry`` for ``ttl`` seconds and release the fill lock; failures are logged."""
        step = write_step(fill, entry, ttl, self.codec)
        if step is None:
            await self.release(fill)
        else:
            await getattr(self.safe, step.method)(*step.args)
            fill.token = None  # only now: cancelled before, the finally releases it

    async def take(
        self, key: str, *, read: bool, with_deltas: bool
    ) -> tuple[Fill, ChatEntry | None]:
        """``EntryStore.take``: the waits are ``asyncio.sleep`` (or a test clock's)."""
        return await arun(
            take_steps(key, read, with_deltas, self.lock_ttl, self.clock),
            self.safe,
            sleep=async_sleeper(self.clock),
        )

    async def release(self, fill: Fill) -> None:
        """Release the fill lock if this task still holds it (nothing stored)."""
        step = release_step(fill)
        if step is not None:
            await self.safe.delete_if_equal(*step.args)
            fill.token = None
