"""The async composition root: every async port built from the same settings.

``build_async_services()`` is ``build_services()`` for asyncio: the same ``Settings``
(``load_settings()``), the same embedded defaults when nothing is configured and the
same rule that an override is the caller's and never closed. It returns an
``AsyncServices`` that an ASGI lifespan opens and closes::

    async with build_async_services() as services:
        async with services.unit_of_work() as uow:
            ...

Nothing connects while building; ``aopen()`` runs the start-up checks the adapters
offer (a Redis queue's durability check), ``aclose()`` releases every client it built.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar

import attrs

from portside.adapters.app._clients import redis_options
from portside.adapters.app._services import (
    announce,
    database_arguments,
    describe_database,
    openai_arguments,
    pick_adapter,
    queue_options,
    redis_queue_url,
)
from portside.adapters.app._settings import Settings, load_settings, redact_url
from portside.adapters.clock import SystemClock
from portside.adapters.entities import Entities
from portside.adapters.observability import Metrics, default_metrics
from portside.ports._cache import AsyncCachePort
from portside.ports._clock import Clock
from portside.ports._llm import AsyncLLMPort
from portside.ports._queue import AsyncQueuePort
from portside.ports._uow import AsyncUnitOfWork

if TYPE_CHECKING:
    from portside.adapters.memory import MemoryDatabase
    from portside.adapters.sqlalchemy import AsyncDatabase

__all__ = ["AsyncServices", "build_async_services"]

_log = logging.getLogger("portside")


class _AsyncClosable(Protocol):
    async def aclose(self) -> None: ...


_P = TypeVar("_P", bound=_AsyncClosable)


@attrs.define
class AsyncServices:
    """One async adapter per port, built from the settings; ``async with`` it.

    The twin of ``Services``: ``llm`` answers repeated deterministic requests from
    ``cache`` (an ``AsyncCachingLLM``) and ``raw_llm`` is the adapter underneath;
    ``unit_of_work()`` opens a new async unit of work on ``database``, ``adapters``
    names the adapter serving each port and ``health_report`` is where
    ``acheck_services`` keeps its last report.
    """

    settings: Settings
    llm: AsyncLLMPort
    raw_llm: AsyncLLMPort
    cache: AsyncCachePort
    queue: AsyncQueuePort
    database: AsyncDatabase | MemoryDatabase
    clock: Clock
    metrics: Metrics
    adapters: dict[str, str] = attrs.field(factory=dict)
    _closers: list[Callable[[], Awaitable[None]]] = attrs.field(factory=list, repr=False)
    _opened: bool = attrs.field(default=False, init=False, repr=False)
    _closed: bool = attrs.field(default=False, init=False, repr=False)
    health_report: Any = attrs.field(default=None, init=False, repr=False, eq=False)

    @property
    def entities(self) -> Entities:
        """The entity registry the units of work store."""
        return self.database.entities

    @property
    def is_open(self) -> bool:
        """Whether ``aopen()`` ran and ``aclose()`` has not."""
        return self._opened and not self._closed

    def unit_of_work(self) -> AsyncUnitOfWork:
        """A new async unit of work; nothing connects until ``async with uow:``."""
        from portside.adapters.memory import MemoryDatabase

        if isinstance(self.database, MemoryDatabase):
            # The fake holds sync and async units over one state; this root wants the latter.
            return self.database.async_unit_of_work()
        return self.database.unit_of_work()

    async def aopen(self) -> Self:
        """Run the adapters' start-up checks (once); returns ``self``.

        A queue that offers ``check_durability`` (Redis) is asked whether its server can
        lose acknowledged messages, and a warning is logged if it can (the application
        still starts: ``/healthz`` keeps saying so).
        """
        if self._opened:
            return self
        self._opened = True
        check = getattr(self.queue, "check_durability", None)
        if check is not None:
            found = await check()
            report = getattr(found, "value_or", lambda _: None)(None)
            if report is not None and not report.durable:
                _log.warning("queue: %s", report.summary)
        return self

    async def aclose(self) -> None:
        """Close every client this object built (not the overrides it was given)."""
        if self._closed:
            return
        self._closed = True
        for close in reversed(self._closers):
            try:
                await close()
            except Exception:  # closing must go on for the other clients
                _log.warning("closing a client failed", exc_info=True)

    async def __aenter__(self) -> Self:
        return await self.aopen()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _build_cache(settings: Settings, clock: Clock) -> tuple[AsyncCachePort, str]:
    namespace = settings.tuning.namespace
    url = settings.connections.redis_url
    if settings.uses_redis(settings.tuning.cache_backend) and url:
        from portside.adapters.redis import AsyncRedisCache

        cache = AsyncRedisCache.from_url(url, namespace, redis_options(settings))
        return cache, f"redis ({redact_url(url)})"
    from portside.adapters.memory import AsyncMemoryCache

    return AsyncMemoryCache(namespace=namespace, clock=clock), "memory"


def _build_queue(settings: Settings, clock: Clock) -> tuple[AsyncQueuePort, str]:
    options = queue_options(settings)
    url = redis_queue_url(settings)
    if url is not None:
        from portside.adapters.redis import AsyncRedisQueue

        queue = AsyncRedisQueue.from_url(
            url, clock=clock, options=options, namespace=f"{settings.tuning.namespace}:queue"
        )
        return queue, f"redis streams ({redact_url(url)})"
    from portside.adapters.memory import AsyncMemoryQueue

    return AsyncMemoryQueue(clock=clock, options=options), "memory"


def _build_llm(settings: Settings, clock: Clock) -> tuple[AsyncLLMPort, str]:
    if settings.real_llm:
        from portside.adapters.openai import AsyncOpenAILLM

        arguments, description = openai_arguments(settings, clock)
        return AsyncOpenAILLM(**arguments), description
    from portside.adapters.memory import AsyncFakeLLM

    return AsyncFakeLLM(), "fake"


def _build_store(settings: Settings, entities: Entities | None) -> tuple[AsyncDatabase, str]:
    from portside.adapters.sqlalchemy import AsyncDatabase

    url, options = database_arguments(settings)
    database = AsyncDatabase.from_url(entities or Entities(), url, **options)
    return database, describe_database(url)


def build_async_services(
    settings: Settings | None = None,
    *,
    entities: Entities | None = None,
    llm: AsyncLLMPort | None = None,
    cache: AsyncCachePort | None = None,
    queue: AsyncQueuePort | None = None,
    database: AsyncDatabase | MemoryDatabase | None = None,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
) -> AsyncServices:
    """Every async port built from ``settings`` (default: the environment), overrides first.

    An override is used as given and never closed by ``AsyncServices.aclose()``. Raises
    ``SettingsError`` for invalid configuration. No connection is opened here: clients
    connect on first use (or in ``aopen()``'s start-up checks).
    """
    from portside.adapters.llm_cache import AsyncCachingLLM

    settings = settings or load_settings()
    clock = clock or SystemClock()
    metrics = metrics or default_metrics()
    closers: list[Callable[[], Awaitable[None]]] = []
    names: dict[str, str] = {}

    def pick(port: str, given: _P | None, build: Callable[[], tuple[_P, str]]) -> _P:
        return pick_adapter(names, closers, port, given, build, lambda built: built.aclose)

    store: AsyncDatabase | MemoryDatabase
    if database is None:
        store, names["database"] = _build_store(settings, entities)
        closers.append(store.close)
    else:
        store, names["database"] = database, type(database).__name__
    cache = pick("cache", cache, lambda: _build_cache(settings, clock))
    queue = pick("queue", queue, lambda: _build_queue(settings, clock))
    llm = pick("llm", llm, lambda: _build_llm(settings, clock))
    cached = AsyncCachingLLM(llm, cache, clock=clock, metrics=metrics)
    announce(names)
    return AsyncServices(settings, cached, llm, cache, queue, store, clock, metrics, names, closers)
