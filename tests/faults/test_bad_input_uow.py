"""Bad input fuzzing of the unit-of-work port: the fake and SQLAlchemy on SQLite answer alike.

Keys and filter values of the right type but hostile content (NUL characters, huge
strings, unicode of every kind, NaN, negative or huge pages), and entities with hostile
field values: each call returns a result or a clear Failure, none raises, the fake and
SQLite agree, and a failed commit writes nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from returns.result import Failure, Result, Success
from sqlalchemy import Column, Float, Integer, MetaData, String, Table

from portside.adapters.entities import Entities
from portside.adapters.memory import MemoryDatabase
from portside.adapters.sqlalchemy import Database
from portside.domain import ServiceError
from tests.faults.conftest import Campaign

pytestmark = pytest.mark.faults

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
# Integers no 64-bit column can hold are InvalidRequest on every backend.
HUGE = st.integers(min_value=2**63, max_value=2**70) | st.integers(max_value=-(2**63) - 1)
strings = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", "\x00", "a\x00b", "' OR 1=1 --", "%", "_", "\u202e", "x" * 5000]),
)
floats = st.floats(allow_nan=True, allow_infinity=True)


@attrs.define(slots=False)  # SQLAlchemy instruments mapped instances
class Item:
    id: str
    name: str
    count: int = 0
    weight: float = 0.0


@pytest.fixture(name="databases", scope="module")
def _databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    metadata = MetaData()
    table = Table(
        "ps_fuzz_items",
        metadata,
        Column("id", String(6000), primary_key=True),
        Column("name", String(6000), nullable=False),
        Column("count", Integer, nullable=False),
        Column("weight", Float, nullable=False),
    )
    entities = Entities(metadata=metadata)
    entities.map(Item, table)
    path: Path = tmp_path_factory.mktemp("fuzz") / "items.db"
    sqlite = Database.from_url(entities, f"sqlite:///{path}")
    sqlite.create_all()
    fake = MemoryDatabase(entities)
    for database in (fake, sqlite):
        uow = database.unit_of_work()
        with uow:
            uow.repository(Item).add(Item("seed", "seed", 1, 1.0))
            assert uow.commit() == Success(None)
    yield fake, sqlite
    sqlite.close()
    entities.dispose()


def _kind(result: Result[Any, ServiceError]) -> str:
    return result.failure().kind if isinstance(result, Failure) else "ok"


def _names(database: Any) -> list[str]:
    uow = database.unit_of_work()
    with uow:
        return sorted(item.id for item in uow.repository(Item).list().unwrap())


calls: st.SearchStrategy[tuple[str, Any]] = st.one_of(
    st.tuples(st.just("get"), strings.map(lambda k: ((k,), {}))),
    st.tuples(
        st.just("list"),
        st.fixed_dictionaries(
            {},
            optional={
                "where": st.dictionaries(st.sampled_from(["id", "name"]), strings, max_size=2)
                | st.fixed_dictionaries({"count": INT64 | HUGE})
                | st.fixed_dictionaries({"weight": floats}),
                "limit": st.none() | st.integers(-3, 5) | INT64 | HUGE,
                "offset": st.integers(-3, 5) | st.integers(0, 2**63 - 1) | HUGE,
            },
        ).map(lambda kw: ((), kw)),
    ),
    st.tuples(
        st.just("add"),
        # NaN is left out of stored fields: SQLite stores it as NULL (a NOT NULL
        # violation) while PostgreSQL and the fake keep it; the backends themselves differ.
        st.builds(Item, strings, strings, INT64 | HUGE, st.floats(allow_nan=False)).map(
            lambda item: ((item,), {})
        ),
    ),
)


@pytest.fixture(name="tally", scope="module")
def _tally() -> dict[str, float]:
    return {"_started": time.monotonic()}


@settings(max_examples=200)
@given(call=calls)
def test_hostile_repository_calls_answer_alike(
    databases: tuple[Any, Any], tally: dict[str, float], call: tuple[str, Any]
) -> None:
    """get/list/add with hostile content: a result or clear Failure, the same on both."""
    operation, (args, kwargs) = call
    outcomes = []
    for database in databases:
        before = _names(database)
        uow = database.unit_of_work()
        with uow:
            result = getattr(uow.repository(Item), operation)(*args, **kwargs)
            if operation == "add" and isinstance(result, Success):
                result = uow.commit()
        assert isinstance(result, Success | Failure), result
        if isinstance(result, Failure):
            assert _names(database) == before, "a failed call changed the store"
        outcomes.append(_kind(result))
        if operation == "add" and isinstance(result, Success):
            cleanup = database.unit_of_work()
            with cleanup:
                repo = cleanup.repository(Item)
                repo.remove(repo.get(args[0].id).unwrap())
                assert cleanup.commit() == Success(None)
    assert outcomes[0] == outcomes[1], (operation, args, kwargs, outcomes)
    tally[outcomes[0]] = tally.get(outcomes[0], 0) + 2


def test_zz_record_the_uow_campaign(tally: dict[str, float], campaign: Campaign) -> None:
    """The campaign above ran and hit accepted calls."""
    campaign.name = "bad input: unit of work (fake and SQLite, differential)"
    started = tally.pop("_started")
    campaign.elapsed = time.monotonic() - started
    campaign.count(int(sum(tally.values())))
    campaign.failures.update({k: int(v) for k, v in tally.items() if k != "ok"})
    campaign.fault("hypothesis: NUL and huge strings, NaN/inf floats, extreme pages")
    assert tally.get("ok", 0) > 0


@pytest.mark.parametrize("where", ["filter", "limit", "field"])
def test_an_int_beyond_64_bits_is_a_clear_failure(databases: tuple[Any, Any], where: str) -> None:
    """A Python int no column can hold is Failure(InvalidRequest) on SQLite; nothing is written."""
    _, sqlite = databases
    before = _names(sqlite)
    uow = sqlite.unit_of_work()
    with uow:
        repo = uow.repository(Item)
        if where == "filter":
            result = repo.list(where={"count": 2**64})
        elif where == "limit":
            result = repo.list(limit=2**64)
        else:
            repo.add(Item("big", "big", 2**64, math.pi))
            result = uow.commit()
    assert isinstance(result, Failure), result
    assert result.failure().kind == "InvalidRequest"
    assert _names(sqlite) == before


def test_a_page_near_the_int64_limit_is_served(databases: tuple[Any, Any]) -> None:
    """limit=2**63-1 with an offset is a valid page on both backends, not an overflow."""
    pages = []
    for database in databases:
        uow = database.unit_of_work()
        with uow:
            pages.append(uow.repository(Item).list(limit=2**63 - 1, offset=1))
    assert pages[0] == pages[1] == Success([])
