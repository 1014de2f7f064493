"""A checked repository ``Query`` as a SQLAlchemy statement: bound parameters only.

NULLs sort first ascending and last descending on every backend: SQLite and MariaDB
do so by themselves, PostgreSQL is told (``NULLS FIRST``/``NULLS LAST``), so the
database's order is the order the fake and ``Query.sort`` give.

A statement depends on the query's shape (fields, operators, orderings, paging), not on
its values, which are bound parameters; each shape is built once per entity registry
and reused, so a repeated ``list`` costs what a prepared ``select()`` costs.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, Final

from sqlalchemy import BigInteger, ColumnElement, Select, bindparam, false, func, inspect, select
from sqlalchemy.sql.elements import UnaryExpression

from portside.adapters._query import Query
from portside.ports._query import Condition

__all__ = ["count_statement", "list_statement", "sql_order"]

# Shapes kept per entity registry; past this many the cache starts again (a program's
# queries have few shapes, generated ones many).
_CACHE_SIZE: Final = 1024

_OPERATORS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


def _condition(cls: Any, condition: Condition) -> ColumnElement[bool]:
    column: ColumnElement[Any] = getattr(cls, condition.field)
    op, value = condition.operator, condition.value
    if op == "is_none" or (op == "eq" and value is None):
        return column.is_(None)
    if op == "not_none" or (op == "ne" and value is None):
        return column.is_not(None)
    if op == "in":
        choices = [choice for choice in value if choice is not None]
        return column.in_(choices) if choices else false()
    clause: ColumnElement[bool] = _OPERATORS[op](column, value)
    return clause


def sql_order(cls: Any, query: Query, dialect: str) -> list[UnaryExpression[Any]]:
    """The ``ORDER BY`` clauses of ``query``, NULLs placed alike on every backend."""
    clauses: list[UnaryExpression[Any]] = []
    for ordering in query.orderings:
        column = getattr(cls, ordering.field)
        clause = column.desc() if ordering.descending else column.asc()
        if dialect == "postgresql":
            clause = clause.nulls_last() if ordering.descending else clause.nulls_first()
        clauses.append(clause)
    return clauses


def _shape(condition: Condition) -> tuple[str, str, bool]:
    op, value = condition.operator, condition.value
    empty = op == "in" and all(choice is None for choice in value)
    none = value is None and op in {"eq", "ne"}
    return (condition.field, op, empty or none)


def _bound(cls: Any, query: Query) -> tuple[list[ColumnElement[bool]], dict[str, Any]]:
    """Conditions with a bound parameter for each value, and those parameters."""
    clauses: list[ColumnElement[bool]] = []
    params: dict[str, Any] = {}
    for index, condition in enumerate(query.conditions):
        column = getattr(cls, condition.field)
        op, value, name = condition.operator, condition.value, f"w{index}"
        if op in {"is_none", "not_none"} or (op in {"eq", "ne"} and value is None):
            clauses.append(_condition(cls, condition))
        elif op == "in":
            choices = [choice for choice in value if choice is not None]
            if not choices:
                clauses.append(false())
                continue
            clauses.append(column.in_(bindparam(name, expanding=True)))
            params[name] = choices
        else:
            clauses.append(_OPERATORS[op](column, bindparam(name, type_=column.type)))
            params[name] = value
    return clauses, params


def _params(query: Query) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for index, condition in enumerate(query.conditions):
        op, value = condition.operator, condition.value
        if op == "in":
            choices = [choice for choice in value if choice is not None]
            if choices:
                params[f"w{index}"] = choices
        elif op not in {"is_none", "not_none"} and value is not None:
            params[f"w{index}"] = value
    return params


def _cached(cache: dict[object, Any], key: object, build: Callable[[], Any]) -> Any:
    found = cache.get(key)
    if found is None:
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        found = cache[key] = build()
    return found


def list_statement(
    cls: Any,
    query: Query,
    dialect: str,
    cache: dict[object, Any],
    *,
    limit: int | None,
    offset: int | None,
) -> tuple[Select[Any], dict[str, Any]]:
    """``SELECT`` of the entities matching ``query`` in its order, paged by ``limit``/``offset``."""
    key = (
        "list",
        cls,
        dialect,
        tuple(_shape(c) for c in query.conditions),
        query.orderings,
        limit is not None,
        bool(offset),
    )

    def build() -> Select[Any]:
        clauses, _ = _bound(cls, query)
        statement = select(cls).where(*clauses).order_by(*sql_order(cls, query, dialect))
        if offset:
            statement = statement.offset(bindparam("page_offset", type_=BigInteger()))
        if limit is not None:
            statement = statement.limit(bindparam("page_limit", type_=BigInteger()))
        return statement

    statement = _cached(cache, key, build)
    params = _params(query)
    if offset:
        params["page_offset"] = offset
    if limit is not None:
        params["page_limit"] = limit
    return statement, params


def count_statement(
    cls: Any, query: Query, cache: dict[object, Any], *, exclude: list[Any]
) -> tuple[Select[Any], dict[str, Any]]:
    """``SELECT count(*)`` of the rows matching ``query`` whose keys are not in ``exclude``."""
    key_name = inspect(cls).primary_key[0].key
    shape = ("count", cls, tuple(_shape(c) for c in query.conditions), bool(exclude))

    def build() -> Select[Any]:
        clauses, _ = _bound(cls, query)
        statement = select(func.count()).select_from(cls).where(*clauses)
        if exclude:
            key = getattr(cls, key_name)
            statement = statement.where(key.not_in(bindparam("held", expanding=True)))
        return statement

    statement = _cached(cache, shape, build)
    params = _params(query)
    if exclude:
        params["held"] = exclude
    return statement, params
