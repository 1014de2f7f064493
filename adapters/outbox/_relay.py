"""The relay: committed outbox messages to a queue, once, in commit order per topic."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Final, Literal

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.memory import MemoryDatabase
from portside.adapters.outbox._sources import MemorySource, Source, SqlSource
from portside.adapters.sqlalchemy import SQL_ERRORS, Database, map_error
from portside.domain._errors import InvalidRequest, ServiceError
from portside.ports._queue import QueuePort
from portside.ports.queue_rules import MAX_BATCH

__all__ = ["OutboxRelay", "RelayReport", "RelayStep", "dedupe_key_of"]

_SERVICE: Final = "outbox"

#: The steps of a relay round, in order: ``claimed`` (messages held, none published),
#: ``published`` (one more message handed to the queue, not yet removed; once per
#: message) and ``marked`` (the round's published messages removed from the outbox).
RelayStep = Literal["claimed", "published", "marked"]


def _no_step(step: RelayStep) -> None:
    """The default ``on_step``: a round goes on."""


def dedupe_key_of(message_id: int, dedupe_key: str | None) -> str:
    """The queue dedupe key of an outbox message: the application's, else from its id.

    The same on every attempt, so a relay that dies after publishing and before
    removing the message causes no second delivery within the queue's dedupe window.
    """
    return dedupe_key if dedupe_key is not None else f"portside-outbox:{message_id}"


@attrs.frozen
class RelayReport:
    """What one ``relay_once`` did.

    ``published``: messages handed to the queue and removed from the outbox;
    ``held_back``: messages left because an older one of their topic is claimed by
    another relay (they go in a later round, in order).
    """

    published: int
    held_back: int


@attrs.define
class OutboxRelay:
    """Moves committed outbox messages of ``database`` to ``queue``.

    ``database`` is a ``MemoryDatabase`` (the fake) or a SQL ``Database`` with an
    engine. Several relays may run at once over one outbox: no message is published
    twice and each topic keeps its order. ``lease`` (seconds) is how long a relay on
    SQLite or the fake holds the messages it claimed; one that dies frees them when its
    lease runs out. ``clock`` gives wall-clock seconds (commit stamps use the same).

    ``on_step`` is called at each ``RelayStep`` of a round, for fault tests: raising
    from it is how a test kills the relay at that step (a ``BaseException`` that is not
    an ``Exception`` is taken for the process going away: nothing more is written, and
    leases are left to run out as a killed process leaves them).
    """

    database: MemoryDatabase | Database
    queue: QueuePort
    lease: float = 30.0
    clock: Callable[[], float] = attrs.field(default=time.time, repr=False)
    on_step: Callable[[RelayStep], None] = attrs.field(default=_no_step, kw_only=True, repr=False)
    _source: Source = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if isinstance(self.database, MemoryDatabase):
            self._source = MemorySource(self.database)
        else:
            if self.database.engine is None:
                raise ValueError("the relay needs a Database built with an engine")
            self._source = SqlSource(self.database.engine, self.database.entities.outbox)

    def relay_once(self, *, max_messages: int = 100) -> Result[RelayReport, ServiceError]:
        """Publish up to ``max_messages`` committed messages, oldest first, then remove them.

        Stops at the first message the queue refuses, so no topic is ever reordered:
        messages published before it are removed, the rest stay for the next round, and
        the queue's error is returned. ``Failure(InvalidRequest)`` for a
        ``max_messages`` that is not an int from 1 to 1000; ``Failure(Unavailable)`` or
        ``Failure(TimedOut)`` when the database cannot be reached (a message published
        but not removed is deduped by the queue when published again).
        """
        if type(max_messages) is not int or not 1 <= max_messages <= MAX_BATCH:
            return Failure(
                InvalidRequest(
                    service=_SERVICE,
                    operation="relay_once",
                    message=f"max_messages must be an int from 1 to {MAX_BATCH}",
                )
            )
        token = uuid.uuid4().hex
        problem: ServiceError | None = None
        try:
            with self._source.claim(max_messages, self.clock(), self.lease, token) as claim:
                self.on_step("claimed")
                published: list[int] = []
                for record in claim.records:
                    sent = self.queue.publish(
                        record.topic,
                        record.body,
                        headers=record.headers,
                        dedupe_key=dedupe_key_of(record.id, record.dedupe_key),
                    )
                    if isinstance(sent, Failure):
                        problem = sent.failure()
                        break
                    published.append(record.id)
                    self.on_step("published")
                claim.delivered(published)
                held_back = claim.held_back
        except SQL_ERRORS as exc:
            return Failure(map_error(exc, service=_SERVICE, operation="relay_once"))
        self.on_step("marked")
        if problem is not None:
            return Failure(problem)
        return Success(RelayReport(published=len(published), held_back=held_back))

    def lag(self) -> Result[float, ServiceError]:
        """Seconds since the oldest undelivered message was committed (0.0 when none).

        ``Failure(Unavailable)`` or ``Failure(TimedOut)`` when the database cannot answer.
        """
        try:
            oldest = self._source.oldest()
        except SQL_ERRORS as exc:
            return Failure(map_error(exc, service=_SERVICE, operation="lag"))
        return Success(0.0 if oldest is None else max(0.0, self.clock() - oldest))
