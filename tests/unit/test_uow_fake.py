"""The in-memory unit of work: the nine behaviours of DESIGN §3, nesting and versions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from returns.result import Success

from portside.adapters.entities import Entities
from portside.adapters.memory import MemoryDatabase
from portside.adapters.testing import kit_entities


@pytest.fixture(name="shop")
def _shop() -> Iterator[tuple[MemoryDatabase, Any]]:
    entities, item = kit_entities("items")
    yield MemoryDatabase(entities), item
    entities.dispose()


def _store(db: MemoryDatabase, *entities: Any) -> None:
    with db.unit_of_work() as uow:
        for entity in entities:
            assert uow.repository(type(entity)).add(entity) == Success(None)
        assert uow.commit() == Success(None)


def _names(db: MemoryDatabase, item: Any) -> dict[int, str]:
    with db.unit_of_work() as uow:
        return {e.id: e.name for e in uow.repository(item).list().unwrap()}


def test_leaving_without_commit_discards_everything(shop: tuple[MemoryDatabase, Any]) -> None:
    """Adds, changes and removals made without commit() are gone after the block."""
    db, item = shop
    _store(db, item(1, "ash"), item(2, "elm"))
    with db.unit_of_work() as uow:
        repo = uow.repository(item)
        repo.add(item(3, "oak"))
        repo.get(1).unwrap().name = "changed"
        repo.remove(repo.get(2).unwrap())
    assert _names(db, item) == {1: "ash", 2: "elm"}


def test_an_exception_rolls_back_and_propagates(shop: tuple[MemoryDatabase, Any]) -> None:
    """An exception in the block discards the unit's work and reaches the caller."""
    db, item = shop

    def fail() -> None:
        with db.unit_of_work() as uow:
            uow.repository(item).add(item(1, "ash"))
            raise KeyError("boom")

    with pytest.raises(KeyError):
        fail()
    assert _names(db, item) == {}


def test_loaded_objects_are_copies(shop: tuple[MemoryDatabase, Any]) -> None:
    """Mutating a loaded or committed object never changes the store behind it."""
    db, item = shop
    kept = item(1, "ash")
    _store(db, kept)
    kept.name = "after commit"
    with db.unit_of_work() as uow:
        loaded = uow.repository(item).get(1).unwrap()
    loaded.name = "after exit"
    assert _names(db, item) == {1: "ash"}


def test_identity_map_within_a_unit_only(shop: tuple[MemoryDatabase, Any]) -> None:
    """get(k) twice in one unit is one object; two units never share one."""
    db, item = shop
    _store(db, item(1, "ash"))
    with db.unit_of_work() as one, db.unit_of_work() as two:
        first = one.repository(item).get(1).unwrap()
        assert one.repository(item).get(1).unwrap() is first
        assert one.repository(item).list().unwrap()[0] is first
        assert two.repository(item).get(1).unwrap() is not first


def test_reads_see_the_units_own_writes(shop: tuple[MemoryDatabase, Any]) -> None:
    """Staged adds, changes and removals are visible to get and list in the same unit."""
    db, item = shop
    _store(db, item(1, "ash"), item(2, "elm"))
    with db.unit_of_work() as uow:
        repo = uow.repository(item)
        added = item(3, "ash")
        repo.add(added)
        assert repo.get(3).unwrap() is added
        repo.get(2).unwrap().name = "ash"
        repo.remove(repo.get(1).unwrap())
        assert repo.get(1).failure().kind == "NotFound"
        assert [e.id for e in repo.list(where={"name": "ash"}).unwrap()] == [2, 3]


def test_other_units_do_not_see_uncommitted_data(shop: tuple[MemoryDatabase, Any]) -> None:
    """A unit sees another unit's changes only once they are committed."""
    db, item = shop
    with db.unit_of_work() as writer, db.unit_of_work() as reader:
        writer.repository(item).add(item(1, "ash"))
        assert reader.repository(item).get(1).failure().kind == "NotFound"
        writer.commit()
        assert reader.repository(item).get(1).unwrap().name == "ash"


def test_second_commit_of_version_one_conflicts(shop: tuple[MemoryDatabase, Any]) -> None:
    """Two units load version 1; the later commit is Conflict and writes none of its changes."""
    db, item = shop
    _store(db, item(1, "ash"))
    with db.unit_of_work() as one, db.unit_of_work() as two:
        mine = one.repository(item).get(1).unwrap()
        theirs = two.repository(item).get(1).unwrap()
        one.repository(item).add(item(2, "new"))
        theirs.name = "theirs"
        assert two.commit() == Success(None)
        mine.name = "mine"
        assert one.commit().failure().kind == "Conflict"
    assert _names(db, item) == {1: "theirs"}


def test_versions_count_real_updates(shop: tuple[MemoryDatabase, Any]) -> None:
    """Version is 1 on insert, +1 per commit that changed the entity, unchanged otherwise."""
    db, item = shop
    entity = item(1, "ash")
    with db.unit_of_work() as uow:
        uow.repository(item).add(entity)
        uow.commit()
        assert entity.version == 1
        uow.commit()
        assert entity.version == 1
        entity.name = "elm"
        uow.commit()
        assert entity.version == 2
    with db.unit_of_work() as uow:
        assert uow.repository(item).get(1).unwrap().version == 2


def test_commit_twice_and_after_rollback(shop: tuple[MemoryDatabase, Any]) -> None:
    """A second commit writes what changed since; rollback drops what was staged before it."""
    db, item = shop
    with db.unit_of_work() as uow:
        repo = uow.repository(item)
        repo.add(item(1, "ash"))
        assert uow.commit() == Success(None)
        repo.add(item(2, "elm"))
        uow.rollback()
        assert uow.commit() == Success(None)
        repo.add(item(3, "oak"))
        assert uow.commit() == Success(None)
    assert _names(db, item) == {1: "ash", 3: "oak"}


def test_use_after_exit_raises(shop: tuple[MemoryDatabase, Any]) -> None:
    """commit, rollback, repository and a kept repository all raise after the block."""
    db, item = shop
    uow = db.unit_of_work()
    with uow:
        repo = uow.repository(item)
    for call in (uow.commit, uow.rollback, lambda: uow.repository(item), lambda: repo.get(1)):
        with pytest.raises(RuntimeError, match="outside its `with` block"):
            call()
    with uow:  # a new block is a new unit; the old repository stays dead
        with pytest.raises(RuntimeError):
            repo.list()
        assert uow.repository(item).list() == Success([])


def test_nested_block_joins_the_outer_one(shop: tuple[MemoryDatabase, Any]) -> None:
    """An inner commit commits nothing; the outer block decides."""
    db, item = shop
    with db.unit_of_work() as uow:
        with uow as inner:
            assert inner is uow
            uow.repository(item).add(item(1, "ash"))
            assert uow.commit() == Success(None)
        assert _names(db, item) == {}
        assert uow.commit() == Success(None)
    assert _names(db, item) == {1: "ash"}


def test_a_failed_inner_block_dooms_the_outer_commit(shop: tuple[MemoryDatabase, Any]) -> None:
    """After an inner block raised, the outer commit is InvalidRequest and writes nothing."""
    db, item = shop
    with db.unit_of_work() as uow:
        uow.repository(item).add(item(1, "ash"))
        with pytest.raises(ValueError), uow:
            raise ValueError("inner")
        uow.repository(item).add(item(2, "elm"))
        error = uow.commit().failure()
        assert error.kind == "InvalidRequest"
        assert "inner block failed" in error.message
    assert _names(db, item) == {}
    with db.unit_of_work() as uow:  # the doom ends with the block
        uow.repository(item).add(item(3, "oak"))
        assert uow.commit() == Success(None)


class _NoScan(dict[Any, Any]):
    """A table that fails any whole-table operation."""

    def _refuse(self, *_: Any) -> Any:
        raise AssertionError("commit walked the whole table")

    __iter__ = keys = values = items = copy = __len__ = _refuse


def test_commit_touches_only_what_the_unit_touched(shop: tuple[MemoryDatabase, Any]) -> None:
    """A commit reads and writes only the rows of its own entities, never the whole table."""
    db, item = shop
    _store(db, *(item(k, "ash") for k in range(1000)))
    table = db._tables[item]  # the committed rows, replaced by a guarded copy
    db._tables[item] = _NoScan(table)
    with db.unit_of_work() as uow:
        repo = uow.repository(item)
        repo.get(5).unwrap().name = "elm"
        repo.remove(repo.get(6).unwrap())
        repo.add(item(5000, "oak"))
        assert uow.commit() == Success(None)
    db._tables[item] = dict(dict.items(db._tables[item]))
    names = _names(db, item)
    assert (names[5], 6 in names, names[5000], len(names)) == ("elm", False, "oak", 1000)


def test_a_fresh_registry_works_without_the_kit() -> None:
    """The fake needs nothing but an Entities registry; its commits are counted."""
    entities, item = kit_entities()
    db = MemoryDatabase(entities)
    _store(db, item(1, "ash"))
    assert db.commits == 1
    assert isinstance(db.entities, Entities)
    entities.dispose()


def test_concurrent_increments_are_never_lost(shop: tuple[MemoryDatabase, Any]) -> None:
    """Threads incrementing one entity with retry on Conflict lose no update (one lock)."""
    import threading

    db, item = shop
    _store(db, item(1, "0"))

    def bump(times: int) -> None:
        done = 0
        while done < times:
            with db.unit_of_work() as uow:
                entity = uow.repository(item).get(1).unwrap()
                entity.name = str(int(entity.name) + 1)
                if isinstance(uow.commit(), Success):
                    done += 1

    threads = [threading.Thread(target=bump, args=(50,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with db.unit_of_work() as uow:
        final = uow.repository(item).get(1).unwrap()
    assert (final.name, final.version) == ("200", 201)


def test_objects_of_another_unit_cannot_be_added(shop: tuple[MemoryDatabase, Any]) -> None:
    """A loaded or committed object belongs to its unit; adding it elsewhere is InvalidRequest."""
    db, item = shop
    committed = item(1, "ash")
    _store(db, committed)
    with db.unit_of_work() as uow:
        loaded = uow.repository(item).get(1).unwrap()
    with db.unit_of_work() as uow:
        for stale in (committed, loaded):
            error = uow.repository(item).add(stale).failure()
            assert (error.kind, "get it again" in error.message) == ("InvalidRequest", True)
        never_stored = item(2, "elm")
    with db.unit_of_work() as uow:
        assert uow.repository(item).add(never_stored) == Success(None)


def test_a_new_object_belongs_to_one_open_unit(shop: tuple[MemoryDatabase, Any]) -> None:
    """An object staged in one open unit is InvalidRequest in another until the first lets go."""
    db, item = shop
    fresh = item(1, "ash")
    with db.unit_of_work() as first:
        assert first.repository(item).add(fresh) == Success(None)
        with db.unit_of_work() as second:
            assert second.repository(item).add(fresh).failure().kind == "InvalidRequest"
    with db.unit_of_work() as third:  # the first unit ended without commit: it is free
        assert third.repository(item).add(fresh) == Success(None)


def test_integers_beyond_64_bits_are_invalid_requests(shop: tuple[MemoryDatabase, Any]) -> None:
    """The fake refuses what no 64-bit column holds, as the databases do; nothing is written."""
    db, item = shop
    with db.unit_of_work() as uow:
        assert uow.repository(item).add(item(2**64, "ash")).failure().kind == "InvalidRequest"
        uow.repository(item).add(item(1, 2**64))
        assert uow.repository(item).list(where={"id": -(2**63) - 1}).failure().kind == (
            "InvalidRequest"
        )
        assert uow.repository(item).list(offset=2**63).failure().kind == "InvalidRequest"
        error = uow.commit().failure()
        assert (error.kind, error.message) == ("InvalidRequest", "Item.name must be a str, not int")
    assert _names(db, item) == {}


def test_create_all_refuses_a_foreign_key_the_fake_cannot_check() -> None:
    """create_all() on the fake accepts the kit's schema and refuses an unregistered parent."""
    from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table

    entities, _ = kit_entities()
    MemoryDatabase(entities).create_all()
    entities.dispose()
    outside = MetaData()
    Table("ps_outside", outside, Column("id", Integer, primary_key=True))
    lonely = Entities(metadata=outside)

    class Child:
        pass

    table = Table(
        "ps_child",
        outside,
        Column("id", Integer, primary_key=True),
        Column("parent_id", Integer, ForeignKey("ps_outside.id")),
    )
    lonely.map(Child, table)
    with pytest.raises(ValueError, match="ps_outside"):
        MemoryDatabase(lonely).create_all()
    lonely.dispose()
