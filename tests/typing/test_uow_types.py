"""Type-level checks of the unit-of-work query API (run by mypy --strict, imported by pytest)."""

from __future__ import annotations

from typing import assert_type

from returns.result import Result

from portside.domain import ServiceError
from portside.ports import (
    AsyncRepository,
    AsyncUnitOfWork,
    Condition,
    Field,
    Ordering,
    Repository,
    field,
)
from portside.ports._query import Where


def test_query_values_are_typed() -> None:
    """field() builds typed conditions and orderings; they fit Where and order_by."""
    qty = field("qty")
    assert_type(qty, Field)
    assert_type(qty.ge(3), Condition)
    assert_type(qty.desc(), Ordering)
    where: Where = [qty.ge(3), field("note").is_none()]
    assert isinstance(where, list)


def list_with_a_query(repo: Repository[int]) -> None:
    """list() and count() take the query values and return typed results."""
    found = repo.list(where=[field("qty").gt(1)], order_by=[field("qty").desc(), "id"], limit=5)
    assert_type(found.unwrap(), list[int])
    assert_type(repo.count(where=field("qty").lt(3)).unwrap(), int)


async def async_unit_of_work_is_typed(uow: AsyncUnitOfWork, kind: type[int]) -> None:
    """The async unit's calls are awaited and give the sync unit's result types."""
    async with uow as entered:
        assert_type(entered, AsyncUnitOfWork)
        repo = uow.repository(kind)
        assert_type(repo, AsyncRepository[int])
        assert_type(await repo.get(1), Result[int, ServiceError])
        assert_type((await repo.list(where=field("qty").gt(1), limit=5)).unwrap(), list[int])
        assert_type((await repo.count()).unwrap(), int)
        assert_type(uow.publish("jobs", b"x"), Result[None, ServiceError])
        async with uow.savepoint():
            assert_type(await uow.commit(), Result[None, ServiceError])
        await uow.rollback()
