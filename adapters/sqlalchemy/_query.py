"""A checked repository ``Query`` as SQLAlchemy expressions: bound parameters only.

NULLs sort first ascending and last descending on every backend: SQLite and MariaDB
do so by themselves, PostgreSQL is told (``NULLS FIRST``/``NULLS LAST``), so the
database's order is the order the fake and ``Query.sort`` give.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, Final

from sqlalchemy import ColumnElement, false
from sqlalchemy.sql.elements import UnaryExpression

from portside.adapters._query import Query
from portside.ports._query import Condition

__all__ = ["sql_conditions", "sql_order"]

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


def sql_conditions(cls: Any, query: Query) -> list[ColumnElement[bool]]:
    """The ``WHERE`` clauses of ``query`` for the mapped class ``cls``."""
    return [_condition(cls, condition) for condition in query.conditions]


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
