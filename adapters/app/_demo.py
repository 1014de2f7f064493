"""``portside demo``: one short tour of every port through the configured adapters.

The demo leaves nothing behind: its cache entries (LLM answers included) and queue
keys live in a namespace of their own that it removes at the end, and it drops the
table it created (a table that already existed is kept, with the demo's rows removed).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable
from typing import Any, TextIO

import attrs
from returns.result import Failure, Result, Success
from sqlalchemy import Column, Integer, String, Table, Text

from portside.adapters.app._services import Services, build_services
from portside.adapters.app._settings import Settings
from portside.adapters.entities import Entities
from portside.domain._errors import NotFound, ServiceError
from portside.domain._llm import ChatMessage, ChatRequest

__all__ = ["Note", "demo_entities", "run_demo"]


@attrs.define(slots=False)
class Note:
    """The demo's entity: a note with optimistic concurrency."""

    id: str
    text: str
    version: int = 0


_entities: Entities | None = None
_TABLE = "portside_demo_notes"
_log = logging.getLogger("portside")


def demo_entities() -> Entities:
    """The registry holding ``Note`` (mapped once per process)."""
    global _entities
    if _entities is None:
        entities = Entities()
        table = Table(
            _TABLE,
            entities.metadata,
            Column("id", String(64), primary_key=True),
            Column("text", Text, nullable=False),
            Column("version", Integer, nullable=False),
        )
        entities.map(Note, table, version="version")
        _entities = entities
    return _entities


def _cosine(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _describe(result: Result[Any, ServiceError], ok: Callable[[Any], str]) -> tuple[bool, str]:
    match result:
        case Success(value):
            return True, ok(value)
        case Failure(error):
            return False, f"{type(error).__name__}: {error}"
    return False, "unexpected result"  # pragma: no cover - Result has two cases


def run_demo(settings: Settings, out: TextIO) -> int:
    """Run every port once, print which adapter served each step, then clean up.

    Returns 0 when every step succeeded, 1 otherwise (a database that cannot be reached
    is one line, not a traceback).
    """
    run = uuid.uuid4().hex[:8]
    given: Any = settings.tuning  # typed-settings classes are attrs classes mypy does not see
    tuning = attrs.evolve(given, namespace=f"{settings.tuning.namespace}-demo-{run}")
    services = build_services(attrs.evolve(settings, tuning=tuning), entities=demo_entities())
    try:
        created = _create_table(services)
        if isinstance(created, Failure):
            error = created.failure()
            print(
                f"portside demo: the database is down ({type(error).__name__}: {error.message})",
                file=out,
            )
            return 1
        try:
            return _tour(services, run, out)
        finally:
            _clean_up(services, dropping=created.unwrap())
    finally:
        services.close()


def _create_table(services: Services) -> Result[bool, ServiceError]:
    """Create the demo's table; ``True`` if this run created it (and must drop it)."""
    engine = getattr(services.database, "engine", None)
    if engine is None:
        return Success(False)  # the in-memory database keeps nothing after the process
    from sqlalchemy import inspect

    from portside.adapters.sqlalchemy import SQL_ERRORS, map_error

    try:
        existed = inspect(engine).has_table(_TABLE)
        # Only the demo's own table: it uses no outbox, and drops what it created.
        services.entities.metadata.tables[_TABLE].create(engine, checkfirst=True)
    except SQL_ERRORS as exc:
        return Failure(map_error(exc, service="database", operation="create_all"))
    return Success(not existed)


def _clean_up(services: Services, *, dropping: bool) -> None:
    """Remove what the demo wrote: its namespace's cache and queue keys, its table."""
    services.cache.clear()
    client = getattr(services.queue, "client", None)
    namespace = getattr(services.queue, "namespace", None)
    if client is not None and isinstance(namespace, str):
        # The queue port has no "drop a topic": remove the demo namespace's keys, which
        # hold only the demo's stream (the namespace is unique to this run).
        from portside.adapters.redis._client import REDIS_ERRORS

        try:
            keys = list(client.scan_iter(match=namespace + ":*", count=500))
            if keys:
                client.unlink(*keys)
        except REDIS_ERRORS:
            _log.warning("the demo could not remove its queue keys under %s", namespace)
    engine = getattr(services.database, "engine", None)
    if dropping and engine is not None:
        from portside.adapters.sqlalchemy import SQL_ERRORS

        try:
            services.entities.metadata.tables[_TABLE].drop(engine)
        except SQL_ERRORS:
            _log.warning("the demo could not drop its table %s", _TABLE)


def _tour(services: Services, run: str, out: TextIO) -> int:
    rows: list[tuple[str, str, str, str]] = []
    failures = 0

    def step(name: str, port: str, fn: Callable[[], tuple[bool, str]]) -> None:
        nonlocal failures
        start = time.perf_counter()
        ok, detail = fn()
        elapsed = (time.perf_counter() - start) * 1000
        failures += not ok
        rows.append((name, services.adapters.get(port, port), f"{elapsed:8.2f} ms", detail))

    question = ChatRequest(
        (ChatMessage.system("Answer in one sentence."), ChatMessage.user("What is a port?")),
        temperature=0.0,
        seed=7,
    )

    def complete() -> tuple[bool, str]:
        return _describe(
            services.llm.complete(question),
            lambda c: f"{c.text[:48]!r} (cache {'hit' if c.cache and c.cache.hit else 'miss'})",
        )

    def embed() -> tuple[bool, str]:
        texts = ["ports and adapters", "adapters and ports", "banana bread recipe"]
        return _describe(
            services.llm.embed(texts),
            lambda e: (
                f"{len(e.vectors)} x {e.dimensions} floats; similar "
                f"{_cosine(e.vectors[0], e.vectors[1]):.2f}, unrelated "
                f"{_cosine(e.vectors[0], e.vectors[2]):.2f}"
            ),
        )

    def cache_round_trip() -> tuple[bool, str]:
        key = f"demo:{run}"
        written = services.cache.set(key, b"hello", ttl=60)
        read = written.bind(lambda _: services.cache.get(key))
        services.cache.delete(key)
        return _describe(read, lambda v: f"set, got {v!r}, deleted")

    def queue_round_trip() -> tuple[bool, str]:
        queue, topic = services.queue, f"demo.{run}"
        group = "demo"
        queue.receive(topic, group, "demo-1")  # creates the group before publishing
        published = queue.publish(topic, b"ticket #1")
        received = published.bind(lambda _: queue.receive(topic, group, "demo-1", wait=1.0))
        match received:
            case Success([delivery, *_]):
                acked = queue.ack(delivery)
                return _describe(
                    acked,
                    lambda _: (
                        f"published, received {delivery.message.body!r} "
                        f"(attempt {delivery.attempt}), acked"
                    ),
                )
            case Success([]):
                return False, "published but nothing was received"
        return _describe(received, str)

    def unit_of_work() -> tuple[bool, str]:
        kept, dropped = Note(f"kept-{run}", "committed"), Note(f"dropped-{run}", "rolled back")
        with services.unit_of_work() as uow:
            uow.repository(Note).add(kept)
            committed = uow.commit()
        if isinstance(committed, Failure):
            return _describe(committed, str)
        with services.unit_of_work() as uow:
            uow.repository(Note).add(dropped)  # left without commit: rolled back
        with services.unit_of_work() as uow:
            notes = uow.repository(Note)
            found = notes.get(kept.id)
            gone = notes.get(dropped.id)
            # leave the database as it was: remove the note this run committed
            cleanup = found.bind(notes.remove).bind(lambda _: uow.commit())
        ok = (
            isinstance(found, Success)
            and isinstance(gone, Failure)
            and isinstance(gone.failure(), NotFound)
            and isinstance(cleanup, Success)
        )
        return ok, "one committed and read back, one rolled back and absent" if ok else (
            f"unexpected: found={found}, rolled back={gone}, cleanup={cleanup}"
        )

    step("chat completion", "llm", complete)
    step("same completion again", "llm", complete)
    step("embeddings", "llm", embed)
    step("cache round trip", "cache", cache_round_trip)
    step("queue publish/receive/ack", "queue", queue_round_trip)
    step("unit of work commit/rollback", "database", unit_of_work)

    width = [max(len(r[i]) for r in rows) for i in range(3)]
    print("portside demo", file=out)
    for name, adapter, elapsed, detail in rows:
        print(
            f"  {name:<{width[0]}}  {adapter:<{width[1]}}  {elapsed:>{width[2]}}  {detail}",
            file=out,
        )
    print("all steps succeeded" if not failures else f"{failures} step(s) failed", file=out)
    return 0 if not failures else 1
