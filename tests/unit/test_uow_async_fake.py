"""The async in-memory unit of work: the sync fake's rules and state, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from returns.result import Failure, Success

from portside.adapters.memory import AsyncMemoryUnitOfWork, MemoryDatabase
from portside.adapters.testing import kit_entities
from portside.domain import Conflict, InvalidRequest, NotFound


@pytest.fixture(name="shop")
def _shop() -> Iterator[tuple[MemoryDatabase, Any]]:
    entities, item = kit_entities("items")
    yield MemoryDatabase(entities), item
    entities.dispose()


async def _store(db: MemoryDatabase, *entities: Any) -> None:
    async with db.async_unit_of_work() as uow:
        for entity in entities:
            assert await uow.repository(type(entity)).add(entity) == Success(None)
        assert await uow.commit() == Success(None)


def _names(db: MemoryDatabase, item: Any) -> dict[int, str]:
    with db.unit_of_work() as uow:
        return {e.id: e.name for e in uow.repository(item).list().unwrap()}


def test_async_and_sync_units_share_one_database(shop: tuple[MemoryDatabase, Any]) -> None:
    """What an async unit commits, a sync unit over the same database reads, and back."""
    db, item = shop
    asyncio.run(_store(db, item(1, "ash")))
    with db.unit_of_work() as uow:
        uow.repository(item).add(item(2, "elm"))
        uow.commit().unwrap()

    async def read() -> list[str]:
        async with db.async_unit_of_work() as uow:
            found = await uow.repository(item).list()
            return [e.name for e in found.unwrap()]

    assert asyncio.run(read()) == ["ash", "elm"]
    assert isinstance(db.async_unit_of_work(), AsyncMemoryUnitOfWork)


def test_leaving_without_commit_discards_everything(shop: tuple[MemoryDatabase, Any]) -> None:
    """Adds, changes and removals made without commit() are gone after the block."""
    db, item = shop
    asyncio.run(_store(db, item(1, "ash"), item(2, "elm")))

    async def work() -> None:
        async with db.async_unit_of_work() as uow:
            repo = uow.repository(item)
            await repo.add(item(3, "oak"))
            (await repo.get(1)).unwrap().name = "changed"
            await repo.remove((await repo.get(2)).unwrap())
            assert await repo.count() == Success(2)  # read-your-writes

    asyncio.run(work())
    assert _names(db, item) == {1: "ash", 2: "elm"}


def test_an_exception_rolls_back_and_propagates(shop: tuple[MemoryDatabase, Any]) -> None:
    """An exception in the block discards the unit's work and reaches the caller."""
    db, item = shop

    async def fail() -> None:
        async with db.async_unit_of_work() as uow:
            await uow.repository(item).add(item(1, "ash"))
            raise KeyError("boom")

    with pytest.raises(KeyError):
        asyncio.run(fail())
    assert _names(db, item) == {}


def test_a_sync_and_an_async_unit_conflict(shop: tuple[MemoryDatabase, Any]) -> None:
    """Of a sync and an async unit that loaded version 1, the later commit is Conflict."""
    db, item = shop
    asyncio.run(_store(db, item(1, "ash")))

    async def race() -> Any:
        async with db.async_unit_of_work() as uow:
            mine = (await uow.repository(item).get(1)).unwrap()
            with db.unit_of_work() as other:
                other.repository(item).get(1).unwrap().name = "elm"
                other.commit().unwrap()
            mine.name = "oak"
            return await uow.commit()

    result = asyncio.run(race())
    assert isinstance(result, Failure)
    assert isinstance(result.failure(), Conflict)
    assert _names(db, item) == {1: "elm"}


def test_identity_map_and_not_found(shop: tuple[MemoryDatabase, Any]) -> None:
    """get(k) twice is one object; a missing key is NotFound; a bad key InvalidRequest."""
    db, item = shop
    asyncio.run(_store(db, item(1, "ash")))

    async def work() -> None:
        async with db.async_unit_of_work() as uow:
            repo = uow.repository(item)
            assert (await repo.get(1)).unwrap() is (await repo.get(1)).unwrap()
            missing = await repo.get(9)
            assert isinstance(missing, Failure)
            assert isinstance(missing.failure(), NotFound)
            bad = await repo.get("one")
            assert isinstance(bad, Failure)
            assert isinstance(bad.failure(), InvalidRequest)

    asyncio.run(work())


def test_a_failed_savepoint_undoes_only_its_part(shop: tuple[MemoryDatabase, Any]) -> None:
    """Async with uow.savepoint(): an exception undoes what it staged; the rest commits."""
    db, item = shop

    async def work() -> None:
        async with db.async_unit_of_work() as uow:
            repo = uow.repository(item)
            await repo.add(item(1, "ash"))

            async def part() -> None:
                async with uow.savepoint():
                    await repo.add(item(2, "elm"))
                    raise KeyError("part failed")

            with pytest.raises(KeyError):
                await part()
            assert await uow.commit() == Success(None)

    asyncio.run(work())
    assert _names(db, item) == {1: "ash"}


def test_use_after_exit_raises(shop: tuple[MemoryDatabase, Any]) -> None:
    """A unit of work or repository used after its block raises RuntimeError."""
    db, item = shop

    async def work() -> None:
        uow = db.async_unit_of_work()
        async with uow:
            repo = uow.repository(item)
        with pytest.raises(RuntimeError):
            await uow.commit()
        with pytest.raises(RuntimeError):
            await repo.get(1)
        with pytest.raises(RuntimeError):
            uow.publish("jobs", b"x")

    asyncio.run(work())


def test_publish_is_stored_if_and_only_if_the_unit_commits(
    shop: tuple[MemoryDatabase, Any],
) -> None:
    """A message staged by publish() reaches the outbox with the commit, never without."""
    db, item = shop

    async def work(commit: bool) -> None:
        async with db.async_unit_of_work() as uow:
            await uow.repository(item).add(item(len(db.outbox) + 1, "ash"))
            assert uow.publish("jobs", b"hello", headers={"k": "v"}) == Success(None)
            bad = uow.publish("", b"x")
            assert isinstance(bad, Failure)
            assert isinstance(bad.failure(), InvalidRequest)
            if commit:
                (await uow.commit()).unwrap()

    asyncio.run(work(commit=False))
    assert not db.outbox
    asyncio.run(work(commit=True))
    assert [(m.topic, m.body) for m in db.outbox.values()] == [("jobs", b"hello")]
