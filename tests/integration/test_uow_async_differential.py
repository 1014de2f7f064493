"""Differential: the async SQLAlchemy unit and the sync one on the same database agree.

Hypothesis generates a program of unit-of-work steps on the kit's ``Part`` entity (a
column of every common type, a unique code): adds and changes with good and bad values,
gets, removals, queries with conditions, orderings and pages, counts, commits and
rollbacks. It runs once through a sync ``Database`` unit and once through an
``AsyncDatabase`` unit on the same server and tables (reset in between); every step's
outcome, error message and values, and the rows stored at the end, must be equal.
Then each side reads what the other committed, and the two race on one row.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from returns.result import Failure, Result, Success
from sqlalchemy import select

from portside.adapters.sqlalchemy import AsyncDatabase, Database
from portside.adapters.testing import EventLoopThread, kit_schema
from portside.adapters.testing._async_uow_bridge import BlockingUnitOfWork
from portside.adapters.testing._uow_backends import delete_rows
from portside.adapters.testing._uow_kit_data import BAD_VALUES, GOOD_VALUES
from portside.domain import Conflict
from portside.ports import UnitOfWork, field

KEYS = st.integers(0, 3)
VALUE_FIELDS = sorted(GOOD_VALUES)


@st.composite
def _value(draw: st.DrawFn) -> tuple[str, Any]:
    name = draw(st.sampled_from([n for n in VALUE_FIELDS if n in BAD_VALUES]))
    bad = draw(st.booleans())
    return name, draw(BAD_VALUES[name] if bad else GOOD_VALUES[name])


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), KEYS, st.sampled_from(["c0", "c1", "c2"]), _value()),
        st.tuples(st.just("get"), KEYS),
        st.tuples(st.just("set"), KEYS, _value()),
        st.tuples(st.just("remove"), KEYS),
        st.tuples(st.just("list"), st.integers(-3, 3), st.booleans(), st.none() | KEYS, KEYS),
        st.tuples(st.just("count"), st.integers(-3, 3)),
        st.tuples(st.just("commit")),
        st.tuples(st.just("rollback")),
    ),
    max_size=14,
)


def _outcome(result: Result[Any, Any], fields: Any) -> Any:
    if isinstance(result, Failure):
        return (result.failure().kind, result.failure().message)
    value = result.unwrap()
    if isinstance(value, list):
        return [fields(e) for e in value]
    return value if value is None or isinstance(value, int) else fields(value)


def _run(uow: UnitOfWork, part: type[Any], steps: list[tuple[Any, ...]], fields: Any) -> list[Any]:
    """Every step's outcome, in a single block that ends without a last commit."""
    seen: list[Any] = []
    with uow:
        repo = uow.repository(part)
        held: dict[int, Any] = {}
        for step in steps:
            kind = step[0]
            if kind == "add":
                _, key, code, (name, value) = step
                entity = part(key, code, **{name: value})
                result = repo.add(entity)
                if isinstance(result, Success):
                    held[key] = entity
                seen.append(_outcome(result, fields))
            elif kind in {"get", "set"}:
                found = repo.get(step[1])
                seen.append(_outcome(found, fields))
                if isinstance(found, Success):
                    held[step[1]] = found.unwrap()
                    if kind == "set":
                        setattr(found.unwrap(), *step[2])
            elif kind == "remove" and step[1] in held:
                seen.append(_outcome(repo.remove(held.pop(step[1])), fields))
            elif kind == "list":
                _, floor, descending, limit, offset = step
                order = field("qty").desc() if descending else field("qty").asc()
                seen.append(
                    _outcome(
                        repo.list(
                            where=field("qty").ge(floor), order_by=order, limit=limit, offset=offset
                        ),
                        fields,
                    )
                )
            elif kind == "count":
                seen.append(_outcome(repo.count(where=field("qty").lt(step[1])), fields))
            elif kind == "commit":
                seen.append(_outcome(uow.commit(), fields))
                held.clear()  # a failed commit forgot them; a good one keeps them: reload
            elif kind == "rollback":
                uow.rollback()
                held.clear()
    with uow:
        seen.append(_outcome(uow.repository(part).list(), fields))
    return seen


class Pair:
    """A sync and an async database on one URL, and the event loop the async one runs on."""

    def __init__(self, url: str) -> None:
        self.schema = kit_schema(f"ps_diff_{next(_names)}")
        self.sync = Database.from_url(self.schema.entities, url)
        self.runner = EventLoopThread()
        self.asynchronous = AsyncDatabase.from_url(self.schema.entities, url)
        self.sync.create_all()

    def fields(self, entity: Any) -> dict[str, Any]:
        spec = self.schema.entities.spec(type(entity))
        return {name: getattr(entity, name, None) for name in spec.fields}

    def reset(self) -> None:
        assert self.sync.engine is not None
        with self.sync.engine.begin() as connection:
            delete_rows(connection, self.schema.entities)

    def async_unit(self) -> UnitOfWork:
        return BlockingUnitOfWork(self.asynchronous.unit_of_work(), self.runner)

    def close(self) -> None:
        try:
            assert self.sync.engine is not None
            self.schema.entities.drop_all(self.sync.engine)
            self.runner.run(self.asynchronous.close())
            self.sync.close()
        finally:
            self.runner.close()
            self.schema.entities.dispose()


_names = itertools.count(1)


@pytest.fixture(name="pair", params=["sqlite", "postgres", "mariadb"])
def _pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'diff.sqlite3'}"
    else:
        request.applymarker(pytest.mark.services)
        url = request.getfixturevalue(f"{request.param}_url")
    pair = Pair(url)
    yield pair
    pair.close()


@pytest.mark.slow
def test_async_and_sync_units_give_the_same_answers(pair: Pair) -> None:
    """Every generated program has the same outcomes, messages and stored rows on both."""

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(steps=STEPS)
    def check(steps: list[tuple[Any, ...]]) -> None:
        pair.reset()
        synchronous = _run(pair.sync.unit_of_work(), pair.schema.part, steps, pair.fields)
        pair.reset()
        asynchronous = _run(pair.async_unit(), pair.schema.part, steps, pair.fields)
        assert asynchronous == synchronous

    check()


def test_each_side_reads_and_races_the_other(pair: Pair) -> None:
    """What one side commits the other reads; of two units on version 1, the later conflicts."""
    item = pair.schema.item
    with pair.sync.unit_of_work() as uow:
        uow.repository(item).add(item(1, "ash")).unwrap()
        uow.commit().unwrap()

    async def race() -> Result[None, Any]:
        async with pair.asynchronous.unit_of_work() as uow:
            mine = (await uow.repository(item).get(1)).unwrap()
            assert mine.name == "ash"
            with pair.sync.unit_of_work() as other:
                other.repository(item).get(1).unwrap().name = "elm"
                other.commit().unwrap()
            mine.name = "oak"
            return await uow.commit()

    result = pair.runner.run(race())
    assert isinstance(result, Failure)
    assert isinstance(result.failure(), Conflict)
    with pair.sync.unit_of_work() as uow:
        assert uow.repository(item).get(1).unwrap().name == "elm"


def test_an_async_unit_publishes_if_and_only_if_it_commits(pair: Pair) -> None:
    """A message staged in an async unit is in the outbox table after commit, never without."""
    item = pair.schema.item
    outbox = pair.schema.entities.outbox
    topic = f"jobs.{next(_names)}"  # the outbox table may hold other tests' messages

    async def work(commit: bool) -> None:
        async with pair.asynchronous.unit_of_work() as uow:
            await uow.repository(item).add(item(10 if commit else 11, "ash"))
            assert uow.publish(topic, b"hello", headers={"k": "v"}) == Success(None)
            if commit:
                assert await uow.commit() == Success(None)

    pair.runner.run(work(commit=False))
    pair.runner.run(work(commit=True))
    assert pair.sync.engine is not None
    with pair.sync.engine.connect() as connection:
        rows = connection.execute(select(outbox.c.body).where(outbox.c.topic == topic)).all()
    assert [bytes(body) for (body,) in rows] == [b"hello"]
