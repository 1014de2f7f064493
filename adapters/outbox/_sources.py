"""Where a relay claims committed outbox messages: the fake's store or a SQL table.

A claim takes the oldest unclaimed messages and keeps, per topic, only those with no
older message of the topic claimed by another relay, so relays running at once never
publish one message twice nor a topic out of order. PostgreSQL and MariaDB lock the
rows (``SELECT ... FOR UPDATE SKIP LOCKED``) for the length of the claim; SQLite and
the fake, which have no row locks, write a lease on them instead. A relay killed in
the middle of a claim (any ``BaseException`` that is not an ``Exception``) writes
nothing more: its row locks go with its connection, its lease runs out.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import attrs
from sqlalchemy import Connection, Row, Table, delete, func, or_, select, update
from sqlalchemy.engine import Engine

from portside.adapters._outbox_table import OutboxRecord
from portside.adapters.memory import MemoryDatabase

__all__ = ["Claim", "MemorySource", "Source", "SqlSource", "in_topic_order"]


class Claim(Protocol):
    """Messages one relay holds; ``delivered`` removes those it published."""

    records: list[OutboxRecord]
    held_back: int

    def delivered(self, ids: Sequence[int]) -> None:
        """Remove the published messages (the rest are released when the claim ends)."""
        ...


class Source(Protocol):
    """An outbox a relay reads."""

    def claim(self, limit: int, now: float, lease: float, token: str) -> Any:
        """A context manager giving a ``Claim`` of at most ``limit`` messages."""
        ...

    def oldest(self) -> float | None:
        """When the oldest message still in the outbox was committed, or ``None``."""
        ...


def in_topic_order(
    candidates: Sequence[OutboxRecord], others: Sequence[tuple[int, str]]
) -> list[OutboxRecord]:
    """``candidates`` minus, per topic, every one after a message claimed elsewhere.

    ``others`` are ``(id, topic)`` of messages of the same topics that this relay does
    not hold: a candidate younger than one of them must wait for it.
    """
    first_foreign: dict[str, int] = {}
    for message_id, topic in others:
        if message_id < first_foreign.get(topic, message_id + 1):
            first_foreign[topic] = message_id
    return [
        record
        for record in candidates
        if record.id < first_foreign.get(record.topic, record.id + 1)
    ]


@attrs.define
class _Held:
    records: list[OutboxRecord]
    held_back: int
    done: list[int] = attrs.field(factory=list)

    def delivered(self, ids: Sequence[int]) -> None:
        self.done.extend(ids)


@attrs.define
class MemorySource:
    """The fake's outbox (``MemoryDatabase.outbox``), claimed with leases."""

    database: MemoryDatabase

    @contextmanager
    def claim(self, limit: int, now: float, lease: float, token: str) -> Iterator[_Held]:
        outbox = self.database.outbox
        with self.database.lock:
            leased: list[tuple[int, str]] = []
            free: list[OutboxRecord] = []
            for record in outbox.values():  # dicts keep insertion order: commit order
                if record.leased_until is not None and record.leased_until > now:
                    leased.append((record.id, record.topic))
                elif len(free) < limit:
                    free.append(record)
            kept = in_topic_order(free, leased)
            for record in kept:
                record.leased_until, record.lease_token = now + lease, token
            held = _Held(
                [attrs.evolve(r, headers=dict(r.headers)) for r in kept], len(free) - len(kept)
            )
        try:
            yield held
        except Exception:
            self._finish(held, token)
            raise
        # Any other BaseException is the process going away: it leaves its lease to
        # run out, as a killed relay does.
        self._finish(held, token)

    def _finish(self, held: _Held, token: str) -> None:
        """Remove the published messages, then release the rest of the claim."""
        outbox = self.database.outbox
        with self.database.lock:
            for message_id in held.done:
                done = outbox.get(message_id)
                if done is not None and done.lease_token == token:
                    del outbox[message_id]
            for claimed in held.records:
                current = outbox.get(claimed.id)
                if current is not None and current.lease_token == token:
                    current.leased_until = current.lease_token = None

    def oldest(self) -> float | None:
        with self.database.lock:
            first = next(iter(self.database.outbox.values()), None)
            return None if first is None else first.created_at


def _record(row: Row[Any]) -> OutboxRecord:
    return OutboxRecord(
        row.id, row.topic, bytes(row.body), json.loads(row.headers), row.dedupe_key, row.created_at
    )


@attrs.define
class SqlSource:
    """A SQL outbox table: row locks where the database skips them, leases on SQLite."""

    engine: Engine
    table: Table

    @property
    def locks_rows(self) -> bool:
        """Whether the database has ``FOR UPDATE SKIP LOCKED`` (PostgreSQL, MariaDB 10.6+)."""
        return self.engine.dialect.name != "sqlite"

    def _others(
        self,
        connection: Connection,
        records: list[OutboxRecord],
        mine: set[int],
        *,
        now: float | None,
    ) -> list[tuple[int, str]]:
        """Messages of the candidates' topics, older than the youngest, not ours."""
        if not records:
            return []
        t = self.table
        query = select(t.c.id, t.c.topic).where(
            t.c.topic.in_({r.topic for r in records}), t.c.id <= max(r.id for r in records)
        )
        if now is not None:  # leases: only a live lease of another relay counts
            query = query.where(t.c.leased_until > now)
        return [(row.id, row.topic) for row in connection.execute(query) if row.id not in mine]

    @contextmanager
    def claim(self, limit: int, now: float, lease: float, token: str) -> Iterator[_Held]:
        if self.locks_rows:
            with self._locked(limit) as held:
                yield held
        else:
            with self._leased(limit, now, lease, token) as held:
                yield held

    @contextmanager
    def _locked(self, limit: int) -> Iterator[_Held]:
        t = self.table
        with self.engine.connect() as connection, connection.begin():
            rows = connection.execute(
                select(t).order_by(t.c.id).limit(limit).with_for_update(skip_locked=True)
            ).all()
            free = [_record(row) for row in rows]
            # Rows other relays hold are locked, but a plain read still sees them.
            others = self._others(connection, free, {r.id for r in free}, now=None)
            kept = in_topic_order(free, others)
            held = _Held(kept, len(free) - len(kept))
            yield held
            # Published rows go in the same transaction that held their locks; a relay
            # that dies before this commit leaves them for the next (deduped) publish.
            if held.done:
                connection.execute(delete(t).where(t.c.id.in_(held.done)))

    @contextmanager
    def _leased(self, limit: int, now: float, lease: float, token: str) -> Iterator[_Held]:
        t = self.table
        unleased = or_(t.c.leased_until.is_(None), t.c.leased_until <= now)
        with self.engine.begin() as connection:
            rows = connection.execute(select(t).where(unleased).order_by(t.c.id).limit(limit)).all()
            free = [_record(row) for row in rows]
            others = self._others(connection, free, {r.id for r in free}, now=now)
            kept = in_topic_order(free, others)
            if kept:
                connection.execute(
                    update(t)
                    .where(t.c.id.in_([r.id for r in kept]), unleased)
                    .values(leased_until=now + lease, lease_token=token)
                )
        held = _Held(kept, len(free) - len(kept))
        try:
            yield held
        except Exception:
            self._finish(held, token)
            raise
        # As in MemorySource: a process going away leaves its lease to run out.
        self._finish(held, token)

    def _finish(self, held: _Held, token: str) -> None:
        """Remove the published messages, then release the rest of the lease."""
        t = self.table
        with self.engine.begin() as connection:
            if held.done:
                connection.execute(delete(t).where(t.c.id.in_(held.done), t.c.lease_token == token))
            connection.execute(
                update(t)
                .where(t.c.lease_token == token)
                .values(leased_until=None, lease_token=None)
            )

    def oldest(self) -> float | None:
        with self.engine.connect() as connection:
            value = connection.execute(select(func.min(self.table.c.created_at))).scalar()
            return None if value is None else float(value)
