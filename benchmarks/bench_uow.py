"""Rows ``uow_*``: the unit of work against a raw SQLAlchemy Session doing the same work.

- ``uow_single_sqlite`` / ``uow_single_postgres``: one entity added and committed per
  unit of work (a raw ``Session``: add, commit, close), same engine.
- ``uow_bulk``: 1 000 entities added in one unit of work and committed (SQLite).
- ``uow_list_sqlite`` / ``uow_list_postgres``: ``list`` with a condition and an
  ordering returning 100 of 1 000 stored entities, in a fresh unit each time, against a
  raw ``Session`` running the same ``select()`` (``where``, ``order_by``, ``limit``).
- ``uow_fake_scaling``: the in-memory fake committing one change with 100 000 entities
  stored, against the same commit with 10 stored; the ratio is time(10) / time(100 000).
"""

from __future__ import annotations

import itertools
import os
import socket
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
from sqlalchemy import Column, Integer, String, Table, select
from sqlalchemy.orm import Session, sessionmaker

from benchmarks._harness import Case
from portside.adapters.entities import Entities
from portside.adapters.memory import MemoryDatabase
from portside.adapters.sqlalchemy import Database
from portside.adapters.testing import DEFAULT_POSTGRES_URL
from portside.ports import field

NAMES = (
    "uow_single_sqlite",
    "uow_single_postgres",
    "uow_bulk",
    "uow_list_sqlite",
    "uow_list_postgres",
    "uow_fake_scaling",
)
BULK = 1_000
LISTED = 1_000
PAGE = 100


def _postgres_url() -> tuple[str, str | None]:
    """The PostgreSQL URL the tests use, and why it cannot be reached (``None`` if it can)."""
    url = os.environ.get("PORTSIDE_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), 1.0):
            return url, None
    except OSError as exc:
        return url, str(exc)


def _entities() -> tuple[Entities, type[Any]]:
    @attrs.define(slots=False, eq=False)
    class Order:
        id: int
        item: str
        version: int | None = None
        qty: int = 0

    entities = Entities()
    table = Table(
        f"ps_bench_{uuid.uuid4().hex[:10]}",
        entities.metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("item", String(40), nullable=False),
        Column("version", Integer, nullable=False),
        Column("qty", Integer, nullable=False),
    )
    entities.map(Order, table, version="version")
    return entities, Order


@contextmanager
def _database(url: str) -> Iterator[tuple[Database, type[Any]]]:
    entities, order = _entities()
    database = Database.from_url(entities, url)
    database.create_all()
    try:
        yield database, order
    finally:
        assert database.engine is not None
        entities.drop_all(database.engine)
        database.close()
        entities.dispose()


def _single(name: str, database: Database, order: type[Any]) -> Case:
    keys = itertools.count(1)
    raw: sessionmaker[Session] = sessionmaker(database.engine, expire_on_commit=False)

    def ours() -> object:
        with database.unit_of_work() as uow:
            uow.repository(order).add(order(next(keys), "tea"))
            return uow.commit().unwrap()

    def baseline() -> object:
        with raw() as session:
            session.add(order(next(keys), "tea"))
            session.commit()
        return None

    return Case(name, ours, baseline, goal=0.9, unit="commits/s")


def _bulk(database: Database, order: type[Any]) -> Case:
    keys = itertools.count(1)
    raw: sessionmaker[Session] = sessionmaker(database.engine, expire_on_commit=False)

    def ours() -> object:
        with database.unit_of_work() as uow:
            orders = uow.repository(order)
            for _ in range(BULK):
                orders.add(order(next(keys), "tea"))
            return uow.commit().unwrap()

    def baseline() -> object:
        with raw() as session:
            session.add_all([order(next(keys), "tea") for _ in range(BULK)])
            session.commit()
        return None

    return Case("uow_bulk", ours, baseline, goal=0.9, unit="entities/s", ops=BULK)


def _listing(name: str, database: Database, order: type[Any]) -> Case:
    """A filtered, ordered page of 100 of 1 000 entities: ours against a raw select()."""
    with database.unit_of_work() as uow:
        orders = uow.repository(order)
        for key in range(LISTED):
            orders.add(order(key, f"item-{key % 37:02d}", qty=key % 10))
        uow.commit().unwrap()
    raw: sessionmaker[Session] = sessionmaker(database.engine, expire_on_commit=False)
    statement = select(order).where(order.qty >= 2).order_by(order.item, order.id).limit(PAGE)

    def ours() -> object:
        with database.unit_of_work() as uow:
            found = uow.repository(order).list(
                where=field("qty").ge(2), order_by="item", limit=PAGE
            )
            assert len(found.unwrap()) == PAGE
            return found

    def baseline() -> object:
        with raw() as session:
            found = session.scalars(statement).all()
            assert len(found) == PAGE
            return found

    return Case(name, ours, baseline, goal=0.85, unit="queries/s")


def _fake_commit(stored: int) -> Callable[[], object]:
    """One change committed to a fake holding ``stored`` entities.

    The store is filled on the first call (the harness's warm-up), not when the rows
    are listed: 100 000 live objects on the heap would make every garbage collection
    of the rows measured before it slower, which is no property of those rows.
    """
    entities, order = _entities()
    database = MemoryDatabase(entities)
    keys = itertools.cycle(range(stored))
    filled = False

    def commit_one_change() -> object:
        nonlocal filled
        if not filled:
            with database.unit_of_work() as uow:
                orders = uow.repository(order)
                for key in range(stored):
                    orders.add(order(key, "tea"))
                uow.commit().unwrap()
            filled = True
        with database.unit_of_work() as uow:
            entity = uow.repository(order).get(next(keys)).unwrap()
            entity.item = "coffee" if entity.item == "tea" else "tea"
            return uow.commit().unwrap()

    return commit_one_change


@contextmanager
def cases(quick: bool) -> Iterator[list[Case]]:
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        sqlite, order = stack.enter_context(_database(f"sqlite:///{folder / 'bench.sqlite3'}"))
        bulk_db, bulk_order = stack.enter_context(_database(f"sqlite:///{folder / 'bulk.sqlite3'}"))
        listed, listed_order = stack.enter_context(
            _database(f"sqlite:///{folder / 'list.sqlite3'}")
        )
        found = [_single("uow_single_sqlite", sqlite, order)]
        pg_url, problem = _postgres_url()
        pg_list: list[Case] = []
        if problem is None:
            pg, pg_order = stack.enter_context(_database(pg_url))
            found.append(_single("uow_single_postgres", pg, pg_order))
            pg_listed, pg_listed_order = stack.enter_context(_database(pg_url))
            pg_list.append(_listing("uow_list_postgres", pg_listed, pg_listed_order))
        else:
            print(f"skipped: uow_single_postgres, uow_list_postgres ({problem})", file=sys.stderr)
        found.append(_bulk(bulk_db, bulk_order))
        found.append(_listing("uow_list_sqlite", listed, listed_order))
        found.extend(pg_list)
        found.append(
            Case(
                "uow_fake_scaling",
                _fake_commit(100_000),
                _fake_commit(10),
                goal=0.8,
                unit="commits/s",
                note="100 000 stored vs 10 stored",
            )
        )
        yield found
