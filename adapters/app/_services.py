"""The composition root: build every port from the settings, once, lazily.

``build_services()`` returns a ``Services`` object holding one adapter per port; any
port can be overridden (a fake in tests, a custom adapter in production).
``get_services()`` is the process-wide lazy singleton; ``reset_services()`` closes it
(tests call it between cases). The seed-style helpers for applications that use the raw
clients directly live beside it: ``get_openai_client()`` and ``get_redis_client()`` in
``_clients``, ``init_db(app)`` in ``portside.adapters.app.flask``.

With nothing configured, portside runs on embedded defaults (an SQLite file, an
in-memory cache and queue, the fake LLM) and says so in one log line.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import attrs

from portside.adapters.app._clients import close_clients, redis_options
from portside.adapters.app._settings import Settings, SettingsError, load_settings, redact_url
from portside.adapters.clock import SystemClock
from portside.adapters.entities import Entities
from portside.adapters.observability import Metrics, default_metrics
from portside.ports._cache import CachePort
from portside.ports._clock import Clock
from portside.ports._llm import LLMPort
from portside.ports._queue import QueuePort
from portside.ports._uow import UnitOfWork

if TYPE_CHECKING:
    from portside.adapters.memory._uow import MemoryDatabase
    from portside.adapters.outbox import RelayLoop
    from portside.adapters.sqlalchemy import Database
    from portside.ports.queue_rules import QueueOptions

__all__ = [
    "Services",
    "build_services",
    "get_services",
    "reset_services",
]

_log = logging.getLogger("portside")


class _Closable(Protocol):
    def close(self) -> None: ...


_P = TypeVar("_P", bound=_Closable)


@attrs.define
class Services:
    """One adapter per port, built from the settings; close it when done.

    ``llm`` answers repeated deterministic requests from ``cache`` (a ``CachingLLM``);
    ``raw_llm`` is the adapter underneath. ``unit_of_work()`` opens a new unit of work
    on ``database``. ``adapters`` names the adapter serving each port;
    ``health_report`` is where ``check_services`` keeps its last report. ``outbox`` is
    the relay loop moving the database's outbox to ``queue`` (``None`` for a database
    given no engine), run where ``PORTSIDE_OUTBOX_RELAY`` says.
    """

    settings: Settings
    llm: LLMPort
    raw_llm: LLMPort
    cache: CachePort
    queue: QueuePort
    database: Database | MemoryDatabase
    clock: Clock
    metrics: Metrics
    adapters: dict[str, str] = attrs.field(factory=dict)
    _closers: list[Callable[[], None]] = attrs.field(factory=list, repr=False)
    _closed: bool = attrs.field(default=False, init=False, repr=False)
    health_report: Any = attrs.field(default=None, init=False, repr=False, eq=False)
    outbox: RelayLoop | None = attrs.field(default=None, kw_only=True, repr=False)

    @property
    def entities(self) -> Entities:
        """The entity registry the units of work store."""
        return self.database.entities

    def unit_of_work(self) -> UnitOfWork:
        """A new unit of work; nothing connects until ``with uow:``.

        With ``PORTSIDE_OUTBOX_RELAY=after_commit`` each commit that published relays
        at once (``RelayLoop.after_commit``).
        """
        uow = self.database.unit_of_work()
        if self.outbox is not None and self.settings.tuning.outbox_relay == "after_commit":
            uow.after_commit(self.outbox.after_commit)
        return uow

    @property
    def worker_relay(self) -> RelayLoop | None:
        """The loop a worker runs beside its handlers (``PORTSIDE_OUTBOX_RELAY=worker``).

        ``None`` in the other modes: pass it to ``run_worker(relay=...)`` either way.
        """
        return self.outbox if self.settings.tuning.outbox_relay == "worker" else None

    def close(self) -> None:
        """Close every client this object created (not the overrides it was given)."""
        if self._closed:
            return
        self._closed = True
        for close in reversed(self._closers):
            try:
                close()
            except Exception:  # closing must go on for the other clients
                _log.warning("closing a client failed", exc_info=True)


def _check_sqlite_path(url: str) -> None:
    if not url.startswith("sqlite:///") or url.endswith(":memory:"):
        return
    path = Path(url.removeprefix("sqlite:///")).expanduser()
    folder = path.parent if str(path.parent) else Path()
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise SettingsError(
            "PORTSIDE_SQLITE_PATH" if "DATABASE_URL" not in os.environ else "DATABASE_URL",
            f"the folder of the SQLite file {str(path)!r} is not writable",
        )


def database_arguments(settings: Settings) -> tuple[str, dict[str, Any]]:
    """The database URL and engine options the settings ask for (sync and async roots).

    Raises ``SettingsError`` when the SQLite file's folder is not writable.
    """
    url = settings.database_url
    _check_sqlite_path(url)
    options: dict[str, Any] = {}
    if not url.startswith("sqlite"):
        options["pool_size"] = settings.tuning.db_pool_size
    return url, options


def describe_database(url: str) -> str:
    """How the adapter listing names the database at ``url`` (credentials redacted)."""
    return _describe_database(url)


def _build_database(settings: Settings, entities: Entities) -> Database:
    from portside.adapters.sqlalchemy import Database

    url, options = database_arguments(settings)
    return Database.from_url(entities, url, **options)


def _build_store(
    settings: Settings, entities: Entities | None
) -> tuple[Database | MemoryDatabase, str]:
    url = settings.database_url
    return _build_database(settings, entities or Entities()), _describe_database(url)


def _build_cache(settings: Settings, clock: Clock) -> tuple[CachePort, str]:
    namespace = settings.tuning.namespace
    url = settings.connections.redis_url
    if settings.uses_redis(settings.tuning.cache_backend) and url:
        from portside.adapters.redis._cache import RedisCache

        options = redis_options(settings)
        return RedisCache.from_url(url, namespace, options), f"redis ({redact_url(url)})"
    from portside.adapters.memory._cache import MemoryCache

    return MemoryCache(namespace=namespace, clock=clock), "memory"


def queue_options(settings: Settings) -> QueueOptions:
    """The queue's lease and delivery limits from the settings (sync and async roots)."""
    from portside.ports.queue_rules import QueueOptions

    return QueueOptions(
        lease_timeout=settings.tuning.queue_lease,
        max_deliveries=settings.tuning.queue_max_deliveries,
    )


def redis_queue_url(settings: Settings) -> str | None:
    """The Redis URL the queue runs on, or ``None`` for the in-memory queue."""
    url = settings.connections.redis_url
    return url if settings.uses_redis(settings.tuning.queue_backend) and url else None


def _build_queue(settings: Settings, clock: Clock) -> tuple[QueuePort, str]:
    options = queue_options(settings)
    url = redis_queue_url(settings)
    if url is not None:
        from portside.adapters.redis._queue import RedisQueue

        queue = RedisQueue.from_url(
            url, clock=clock, options=options, namespace=f"{settings.tuning.namespace}:queue"
        )
        return queue, f"redis streams ({redact_url(url)})"
    from portside.adapters.memory._queue import MemoryQueue

    return MemoryQueue(clock=clock, options=options), "memory"


def openai_arguments(settings: Settings, clock: Clock) -> tuple[dict[str, Any], str]:
    """The OpenAI adapter's arguments from the settings, and how the listing names it.

    Shared by the sync root (``OpenAILLM``) and the async one (``AsyncOpenAILLM``).
    """
    from portside.adapters.resilience._retry import RetryPolicy

    conn = settings.connections
    arguments: dict[str, Any] = {
        "retry": RetryPolicy(
            attempts=settings.tuning.llm_max_retries + 1, base=0.5, cap=8.0, jitter=1.0
        ),
        "api_key": settings.openai_api_key(),
        "base_url": conn.openai_base_url,
        "model": settings.tuning.llm_model,
        "embedding_model": settings.tuning.embedding_model,
        "timeout": settings.tuning.llm_timeout,
        "deadline": settings.tuning.llm_deadline,
        "clock": clock,
    }
    return arguments, f"openai ({conn.openai_base_url or 'api.openai.com'})"


def _build_llm(settings: Settings, clock: Clock) -> tuple[LLMPort, str]:
    if settings.real_llm:
        from portside.adapters.openai import OpenAILLM

        arguments, description = openai_arguments(settings, clock)
        return OpenAILLM(**arguments), description
    from portside.adapters.memory._llm import FakeLLM

    return FakeLLM(), "fake"


_A = TypeVar("_A")
_C = TypeVar("_C")


def pick_adapter(
    names: dict[str, str],
    closers: list[_C],
    port: str,
    given: _A | None,
    build: Callable[[], tuple[_A, str]],
    closer: Callable[[_A], _C],
) -> _A:
    """``given``, or a new adapter from ``build`` whose ``closer`` joins ``closers``.

    Both composition roots pick each port so: an override belongs to the caller and is
    never closed by the services; ``names[port]`` says which adapter serves it.
    """
    if given is not None:
        names[port] = type(given).__name__
        return given
    built, names[port] = build()
    closers.append(closer(built))
    return built


def build_services(
    settings: Settings | None = None,
    *,
    entities: Entities | None = None,
    llm: LLMPort | None = None,
    cache: CachePort | None = None,
    queue: QueuePort | None = None,
    database: Database | MemoryDatabase | None = None,
    clock: Clock | None = None,
    metrics: Metrics | None = None,
) -> Services:
    """Every port built from ``settings`` (default: the environment), overrides first.

    An override is used as given and never closed by ``Services.close()``. Raises
    ``SettingsError`` for invalid configuration (e.g. an SQLite folder that is not
    writable). No connection is opened here: clients connect on first use.
    """
    from portside.adapters.llm_cache._caching import CachingLLM

    settings = settings or load_settings()
    clock = clock or SystemClock()
    metrics = metrics or default_metrics()
    closers: list[Callable[[], None]] = []
    names: dict[str, str] = {}

    def pick(port: str, given: _P | None, build: Callable[[], tuple[_P, str]]) -> _P:
        return pick_adapter(names, closers, port, given, build, lambda built: built.close)

    store: Database | MemoryDatabase
    if database is None:
        store, names["database"] = _build_store(settings, entities)
        closers.append(store.close)
    else:
        store, names["database"] = database, type(database).__name__
    cache = pick("cache", cache, lambda: _build_cache(settings, clock))
    queue = pick("queue", queue, lambda: _build_queue(settings, clock))
    llm = pick("llm", llm, lambda: _build_llm(settings, clock))
    cached = CachingLLM(llm, cache, clock=clock, metrics=metrics)
    outbox = _build_outbox(settings, store, queue, metrics)
    if outbox is not None:
        closers.append(outbox.close)  # last in, first closed: before the queue it feeds
    announce(names)
    return Services(
        settings, cached, llm, cache, queue, store, clock, metrics, names, closers, outbox=outbox
    )


def _build_outbox(
    settings: Settings, store: Database | MemoryDatabase, queue: QueuePort, metrics: Metrics
) -> RelayLoop | None:
    from portside.adapters.outbox import OutboxRelay, RelayLoop

    if getattr(store, "engine", True) is None:
        return None  # a Database on a session factory alone: no engine to relay from
    tuning = settings.tuning
    return RelayLoop(
        OutboxRelay(store, queue),
        interval=tuning.outbox_poll_interval,
        batch=tuning.outbox_batch,
        metrics=metrics,
    )


def _describe_database(url: str) -> str:
    if url.startswith("sqlite"):
        return f"sqlite ({url.removeprefix('sqlite:///') or 'memory'})"
    return f"sqlalchemy ({redact_url(url)})"


def announce(names: dict[str, str]) -> None:
    """Log, in one line, which ports run on embedded defaults."""
    embedded = [port for port, name in names.items() if name in ("memory", "fake")]
    if names.get("database", "").startswith("sqlite"):
        embedded.append("database")
    if not embedded:
        return
    if len(embedded) == len(names):
        _log.info(
            "running on embedded defaults: %s, in-memory cache and queue, fake LLM."
            " Set DATABASE_URL, REDIS_URL and OPENAI_API_KEY or OPENAI_BASE_URL to use real"
            " services.",
            names["database"],
        )
    else:
        _log.info(
            "embedded %s (%s); the rest as configured",
            ", ".join(sorted(embedded)),
            ", ".join(f"{p}={names[p]}" for p in sorted(embedded)),
        )


_lock = threading.Lock()
_services: Services | None = None


def get_services() -> Services:
    """The process-wide services, built on first use from the environment. Thread-safe."""
    global _services
    services = _services
    if services is not None:
        return services
    with _lock:
        if _services is None:
            _services = build_services()
        return _services


def reset_services() -> None:
    """Close and forget the process-wide services and raw clients (for tests)."""
    global _services
    with _lock:
        services, _services = _services, None
    if services is not None:
        services.close()
    close_clients()
