"""Rows ``async_uow_*``: the async unit of work against a raw ``AsyncSession`` doing the same.

- ``async_uow_single_sqlite`` / ``async_uow_single_postgres``: one entity added and
  committed per unit of work, against a raw ``AsyncSession`` (add, commit, close) on the
  same async engine (aiosqlite; psycopg async).
- ``async_uow_batch_sqlite`` / ``async_uow_batch_postgres``: 100 entities added in one
  unit of work and committed, against ``add_all`` and a commit.

The harness times sync callables, so each timed call runs its awaited units of work one
after another on one event loop; the loop's own cost is on both sides.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from benchmarks._harness import Case
from benchmarks.bench_uow import _entities, _postgres_url
from portside.adapters.sqlalchemy import AsyncDatabase

NAMES = (
    "async_uow_single_sqlite",
    "async_uow_single_postgres",
    "async_uow_batch_sqlite",
    "async_uow_batch_postgres",
)
#: Units of work per timed call of a single-entity row.
CALLS = 10
BATCH = 100


@asynccontextmanager
async def _database(url: str) -> AsyncIterator[tuple[AsyncDatabase, type[Any]]]:
    entities, order = _entities()
    database = AsyncDatabase.from_url(entities, url)
    await database.create_all()
    try:
        yield database, order
    finally:
        assert database.engine is not None
        async with database.engine.begin() as connection:
            await connection.run_sync(entities.drop_all)
        await database.close()
        entities.dispose()


def _rows(
    suffix: str, database: AsyncDatabase, order: type[Any], run: Callable[[Awaitable[Any]], Any]
) -> list[Case]:
    keys = itertools.count(1)
    raw: async_sessionmaker[AsyncSession] = async_sessionmaker(
        database.engine, expire_on_commit=False
    )

    async def ours(count: int, size: int) -> None:
        for _ in range(count):
            async with database.unit_of_work() as uow:
                orders = uow.repository(order)
                for _ in range(size):
                    (await orders.add(order(next(keys), "tea"))).unwrap()
                (await uow.commit()).unwrap()

    async def baseline(count: int, size: int) -> None:
        for _ in range(count):
            async with raw() as session:
                session.add_all([order(next(keys), "tea") for _ in range(size)])
                await session.commit()

    return [
        Case(
            f"async_uow_single_{suffix}",
            lambda: run(ours(CALLS, 1)),
            lambda: run(baseline(CALLS, 1)),
            goal=0.9,
            unit="commits/s",
            ops=CALLS,
        ),
        Case(
            f"async_uow_batch_{suffix}",
            lambda: run(ours(1, BATCH)),
            lambda: run(baseline(1, BATCH)),
            goal=0.9,
            unit="entities/s",
            ops=BATCH,
        ),
    ]


@contextmanager
def cases(quick: bool) -> Iterator[list[Case]]:
    loop = asyncio.new_event_loop()
    opened: list[Any] = []

    def enter(url: str) -> tuple[AsyncDatabase, type[Any]]:
        manager = _database(url)
        opened.append(manager)
        return loop.run_until_complete(manager.__aenter__())

    try:
        with tempfile.TemporaryDirectory() as folder:
            sqlite, order = enter(f"sqlite:///{Path(folder) / 'bench.sqlite3'}")
            found = _rows("sqlite", sqlite, order, loop.run_until_complete)
            pg_url, problem = _postgres_url()
            if problem is None:
                pg, pg_order = enter(pg_url)
                found += _rows("postgres", pg, pg_order, loop.run_until_complete)
            else:
                print(f"skipped: async_uow_*_postgres ({problem})", file=sys.stderr)
            try:
                yield found
            finally:
                for manager in reversed(opened):
                    loop.run_until_complete(manager.__aexit__(None, None, None))
    finally:
        loop.close()
