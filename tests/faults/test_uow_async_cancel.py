"""Cancelling an async unit of work at every await point leaves nothing behind.

One scenario enters a unit, reads (get, list, count), stages an add, a change and a
removal, commits, stages more, rolls back, reads again and leaves without committing.
A first run counts the times the task suspends; then, for each of those points in
turn, a fresh run is cancelled exactly there (the task cancels itself as it suspends,
so the cancellation lands at that await). After each one: the stored rows are the
state before the unit or the state its commit wrote, never a mix; no connection is
checked out of the pool; no transaction is left open (PostgreSQL's
``pg_stat_activity`` and MariaDB's ``innodb_trx`` show none for the database, and a
second unit updates the same rows at once); and the unit works again.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator
from pathlib import Path
from typing import Any

import attrs
import pytest
from sqlalchemy import text

from portside.adapters.memory import MemoryDatabase
from portside.adapters.sqlalchemy import AsyncDatabase
from portside.adapters.testing import kit_entities
from portside.ports import AsyncUnitOfWork

BEFORE = {1: "ash", 3: "ash"}
COMMITTED = {1: "elm", 2: "oak"}


@types.coroutine
def _cancel_at(
    coro: Coroutine[Any, Any, Any], point: int, seen: list[int]
) -> Generator[Any, Any, Any]:
    """Drive ``coro``, cancelling the running task when it suspends for the ``point``-th time."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            yielded = coro.throw(error) if error is not None else coro.send(value)
        except StopIteration as stop:
            return stop.value
        seen[0] += 1
        if seen[0] == point:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()  # lands on the await the coroutine is suspending at
        value, error = None, None
        try:
            value = yield yielded
        except BaseException as exc:
            error = exc


async def _scenario(uow: AsyncUnitOfWork, item: type[Any]) -> None:
    async with uow:
        repo = uow.repository(item)
        (await repo.get(1)).unwrap().name = "elm"
        assert (await repo.list(where={"name": "ash"})).unwrap()
        assert (await repo.count()).unwrap() == 2
        (await repo.add(item(2, "oak"))).unwrap()
        (await repo.remove((await repo.get(3)).unwrap())).unwrap()
        (await uow.commit()).unwrap()
        (await repo.get(2)).unwrap().name = "ash"
        await uow.rollback()
        (await repo.get(1)).unwrap().name = "pine"  # a read transaction, left open


@attrs.define
class Target:
    """One backend: how to open units, and how to look at what they left behind."""

    open_unit: Callable[[], AsyncUnitOfWork]
    item: type[Any]
    #: connections checked out of the pool (0 for the fake)
    checked_out: Callable[[], int]
    #: transactions of this database still open on the server (0 for the fake)
    open_transactions: Callable[[], Awaitable[int]]

    async def stored(self) -> dict[int, str]:
        """The committed rows, read by a fresh unit."""
        async with self.open_unit() as uow:
            return {e.id: e.name for e in (await uow.repository(self.item).list()).unwrap()}

    async def seed(self) -> None:
        """Bring the rows back to ``BEFORE`` with a fresh unit."""
        async with self.open_unit() as uow:
            repo = uow.repository(self.item)
            for entity in (await repo.list()).unwrap():
                (await repo.remove(entity)).unwrap()
            (await uow.commit()).unwrap()
            for key, name in BEFORE.items():
                (await repo.add(self.item(key, name))).unwrap()
            (await uow.commit()).unwrap()

    async def check_clean(self, point: int) -> None:
        """Nothing half-written, no connection out, no transaction open, rows writable."""
        stored = await self.stored()
        assert stored in (BEFORE, COMMITTED), f"cancelled at {point}: half-committed {stored}"
        assert self.checked_out() == 0, f"cancelled at {point}: a connection is still out"
        for _ in range(50):  # a closed connection's server session ends a moment later
            if await self.open_transactions() == 0:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError(f"cancelled at {point}: a transaction is still open")
        async with asyncio.timeout(5):  # a row lock left behind would make this wait
            async with self.open_unit() as uow:
                repo = uow.repository(self.item)
                for entity in (await repo.list()).unwrap():
                    entity.name = "fir"
                (await uow.commit()).unwrap()


async def _points(target: Target) -> int:
    """How many times the scenario's task suspends in one uncancelled run."""
    await target.seed()
    seen = [0]
    await asyncio.create_task(_cancel_at(_scenario(target.open_unit(), target.item), 0, seen))
    assert await target.stored() == COMMITTED
    return seen[0]


async def _cancel_everywhere(target: Target) -> int:
    points = await _points(target)
    for point in range(1, points + 1):
        await target.seed()
        seen = [0]
        task = asyncio.create_task(
            _cancel_at(_scenario(target.open_unit(), target.item), point, seen)
        )
        try:
            await task
        except asyncio.CancelledError:
            pass
        else:
            # A read whose answer was already there does not suspend, so a run may
            # suspend once less than the counted one and never reach the last point.
            assert seen[0] < point, f"cancelled at {point}: the cancellation was lost"
        await target.check_clean(point)
    await target.seed()
    await _scenario(target.open_unit(), target.item)  # and the unit works again
    assert await target.stored() == COMMITTED
    return points


async def _no_transactions() -> int:
    return 0


def test_the_async_fake_leaves_nothing_behind_at_any_cancellation() -> None:
    """A task cancelled at any await point of the async fake leaves the store consistent."""
    entities, item = kit_entities()
    database = MemoryDatabase(entities)
    target = Target(database.async_unit_of_work, item, lambda: 0, _no_transactions)
    try:
        points = asyncio.run(_cancel_everywhere(target))
        # every call that may wait is one point: get, list, count, get, remove, commit,
        # get, rollback, get, exit (entering and add stage in memory and never wait)
        assert points == 10
        assert not database.lock.locked()
    finally:
        entities.dispose()


async def _sql_target(url: str) -> AsyncIterator[Target]:
    entities, item = kit_entities()
    database = AsyncDatabase.from_url(entities, url)
    assert database.engine is not None
    engine = database.engine
    await database.create_all()
    dialect = engine.dialect.name
    if dialect == "postgresql":
        query = text(
            "select count(*) from pg_stat_activity where datname = current_database()"
            " and state like 'idle in transaction%' and pid <> pg_backend_pid()"
        )
    elif dialect == "mysql":
        query = text(
            "select count(*) from information_schema.innodb_trx t join"
            " information_schema.processlist p on p.id = t.trx_mysql_thread_id"
            " where p.db = database() and p.id <> connection_id()"
        )
    else:
        query = None

    async def open_transactions() -> int:
        if query is None:  # SQLite: the row-update check below is the proof
            return 0
        async with engine.connect() as connection:  # back in the pool when done
            count = (await connection.execute(query)).scalar_one()
        return int(count)

    try:
        yield Target(database.unit_of_work, item, engine.pool.checkedout, open_transactions)
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(entities.drop_all)
        await database.close()
        entities.dispose()


def _run_sql(url: str) -> int:
    async def main() -> int:
        targets = _sql_target(url)
        target = await anext(targets)
        try:
            return await _cancel_everywhere(target)
        finally:
            await targets.aclose()

    return asyncio.run(main())


def test_async_sqlite_leaves_nothing_behind_at_any_cancellation(tmp_path: Path) -> None:
    """A task cancelled at any await point on SQLite leaves no transaction or connection."""
    assert _run_sql(f"sqlite:///{tmp_path / 'cancel.sqlite3'}") >= 9


@pytest.mark.services
@pytest.mark.slow
def test_async_postgres_leaves_nothing_behind_at_any_cancellation(postgres_url: str) -> None:
    """On PostgreSQL: no idle-in-transaction session, no checked-out connection, no half commit."""
    assert _run_sql(postgres_url) >= 9


@pytest.mark.services
@pytest.mark.slow
def test_async_mariadb_leaves_nothing_behind_at_any_cancellation(mariadb_url: str) -> None:
    """On MariaDB: no open InnoDB transaction, no checked-out connection, no half commit."""
    assert _run_sql(mariadb_url) >= 9
