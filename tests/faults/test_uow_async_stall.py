"""A stalled database connection ends every async unit-of-work call as TimedOut in its bound.

The async twin of ``test_uow_stall.py``: the same proxy stalls PostgreSQL (psycopg async,
each wait bounded by the same connection subclass, awaited) or MariaDB (asyncmy's read
timeout) during a query and a commit. Each call is ``Failure(TimedOut)`` within the
statement bound plus one second, writes nothing, and the next unit works once healed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import attrs
import pytest
from returns.result import Success
from sqlalchemy import Column, Integer, MetaData, String, Table

from portside.adapters.entities import Entities
from portside.adapters.sqlalchemy import AsyncDatabase, make_engine
from portside.adapters.testing import TcpFaultProxy
from tests.faults.test_uow_stall import Note, _through, _timed_out

pytestmark = [pytest.mark.faults, pytest.mark.services]

STATEMENT = 1.0
CONNECT = 2.0


@attrs.frozen
class Rig:
    """The proxied async database and its proxy."""

    url: str
    proxy: TcpFaultProxy
    entities: Entities

    def database(self) -> AsyncDatabase:
        return AsyncDatabase.from_url(
            self.entities, self.url, statement_timeout=STATEMENT, connect_timeout=CONNECT
        )


@pytest.fixture(name="rig", params=["postgres", "mariadb"])
def _rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    url: str = request.getfixturevalue(f"{request.param}_url")
    metadata = MetaData()
    table = Table(
        f"ps_astall_{uuid.uuid4().hex[:10]}",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("text", String(40), nullable=False),
    )
    entities = Entities(metadata=metadata)
    entities.map(Note, table)
    direct = make_engine(url)
    metadata.create_all(direct)
    parts = urlsplit(url)
    default_port = 5432 if request.param == "postgres" else 3306
    try:
        with TcpFaultProxy(parts.hostname or "127.0.0.1", parts.port or default_port) as proxy:
            yield Rig(_through(url, proxy.port), proxy, entities)
            proxy.heal()
    finally:
        metadata.drop_all(direct)
        direct.dispose()
        entities.dispose()


async def _seeded(rig: Rig) -> AsyncDatabase:
    database = rig.database()
    async with database.unit_of_work() as uow:
        await uow.repository(Note).add(Note(1, "kept"))
        assert await uow.commit() == Success(None)
    return database


async def _stored(database: AsyncDatabase) -> list[tuple[int, str]]:
    async with database.unit_of_work() as uow:
        return [(n.id, n.text) for n in (await uow.repository(Note).list()).unwrap()]


def test_an_async_query_on_a_stalled_connection_times_out(rig: Rig) -> None:
    """Await get() on a connection that stalls mid-unit is TimedOut within the bound."""

    async def main() -> None:
        database = await _seeded(rig)
        try:
            async with database.unit_of_work() as uow:
                notes = uow.repository(Note)
                assert (await notes.get(1)).map(lambda n: n.id) == Success(1)
                rig.proxy.stall()
                started = time.monotonic()
                _timed_out(started, await notes.get(2), STATEMENT)
            rig.proxy.heal()
            assert await _stored(database) == [(1, "kept")], "the pool did not recover"
        finally:
            rig.proxy.heal()
            await database.close()

    asyncio.run(main())


def test_an_async_commit_on_a_stalled_connection_times_out_and_writes_nothing(rig: Rig) -> None:
    """Await commit() on a stalled connection is TimedOut in the bound; nothing half-written."""

    async def main() -> None:
        database = await _seeded(rig)
        try:
            async with database.unit_of_work() as uow:
                notes = uow.repository(Note)
                (await notes.get(1)).unwrap().text = "changed"
                await notes.add(Note(2, "new"))
                rig.proxy.stall()
                started = time.monotonic()
                _timed_out(started, await uow.commit(), STATEMENT)
            rig.proxy.heal()
            assert await _stored(database) == [(1, "kept")]
        finally:
            rig.proxy.heal()
            await database.close()

    asyncio.run(main())
