"""Repository queries checked and answered once for every unit of work.

``build_query`` turns what ``list``/``count`` were given into a checked ``Query`` (or
says which argument is wrong); ``Query.matches`` and ``Query.sort`` answer it in Python
with SQL's semantics. The fake answers every query this way; the SQL adapter sends it
as bound parameters and judges the entities its unit holds this way, so both agree.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs
from sqlalchemy import types as sqltypes

from portside.adapters.entities import INT64_MAX, EntitySpec, out_of_range
from portside.ports._query import Condition, Ordering

__all__ = ["MAX_IN", "Query", "build_query"]

#: Most values one ``in_`` may hold (every backend binds them as parameters).
MAX_IN: Final = 10_000

Getter = Callable[[Any, str], Any]

_COMPARE: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


@attrs.frozen
class Query:
    """A checked query: conditions that must all hold, then order, then a page."""

    conditions: tuple[Condition, ...]
    #: the caller's orderings, then the key ascending as the tie-break
    orderings: tuple[Ordering, ...]
    limit: int | None
    offset: int

    def matches(self, item: Any, get: Getter) -> bool:
        """Whether ``item`` (read with ``get(item, field)``) meets every condition."""
        return all(_holds(condition, get(item, condition.field)) for condition in self.conditions)

    def sort(self, items: list[Any], get: Getter) -> None:
        """Sort ``items`` in place: NULLs first ascending, last descending."""
        for ordering in reversed(self.orderings):
            items.sort(key=_sort_key(get, ordering.field), reverse=ordering.descending)

    def page(self, items: list[Any]) -> list[Any]:
        """The ``offset``/``limit`` slice of sorted ``items``."""
        end = None if self.limit is None else self.offset + self.limit
        return items[self.offset : end]


def _sort_key(get: Getter, name: str) -> Callable[[Any], tuple[bool, Any]]:
    """NULL sorts below every value (first ascending, last descending)."""

    def key(item: Any) -> tuple[bool, Any]:
        value = get(item, name)
        return (value is not None, value)

    return key


def _holds(condition: Condition, value: Any) -> bool:
    """SQL's answer for one condition: a NULL field satisfies only ``is_none``."""
    op, wanted = condition.operator, condition.value
    if op == "is_none" or (op == "eq" and wanted is None):
        return value is None
    if op == "not_none" or (op == "ne" and wanted is None):
        return value is not None
    if value is None:
        return False
    if op == "eq":
        return bool(value == wanted)
    if op == "ne":
        return bool(value != wanted)
    if op == "in":
        return any(value == choice for choice in wanted if choice is not None)
    return _COMPARE[op](value, wanted)


def _field_problem(spec: EntitySpec[Any], label: str, name: object) -> str | None:
    entity = spec.entity_type.__name__
    if not isinstance(name, str):
        return f"{label}: a field name must be a str, not {type(name).__name__}"
    if name not in spec.fields:
        return f"{label}: {entity} has no field {name!r}"
    column = spec.columns.get(name)
    if column is not None and isinstance(column.type, sqltypes.JSON):
        return f"{label}: {entity}.{name} is JSON, which the databases cannot compare alike"
    return None


def _value_problem(spec: EntitySpec[Any], name: str, value: object) -> str | None:
    if out_of_range(value):
        return f"where: the value for {name!r} is beyond the 64-bit integer range"
    problem = spec.query_problem(name, value)
    return (
        None
        if problem is None
        else f"where: the value for {spec.entity_type.__name__}.{name} {problem}"
    )


def _condition_problem(spec: EntitySpec[Any], condition: Condition) -> str | None:
    problem = _field_problem(spec, "where", condition.field)
    if problem is not None:
        return problem
    name, op, value = condition.field, condition.operator, condition.value
    if op in {"is_none", "not_none"}:
        return None
    if op == "in":
        if not isinstance(value, list | tuple | set | frozenset):
            return (
                f"where: in_() for {name!r} takes a list, tuple or set, not {type(value).__name__}"
            )
        if len(value) > MAX_IN:
            return f"where: in_() for {name!r} holds more than {MAX_IN} values"
        for choice in value:
            problem = _value_problem(spec, name, choice)
            if problem is not None:
                return problem
        return None
    if op in _COMPARE and value is None:
        return f"where: {name!r} cannot be compared with None; use is_none()"
    if op not in _COMPARE and op not in {"eq", "ne"}:
        return f"where: unknown operator {op!r}"
    return _value_problem(spec, name, value)


def _conditions(where: object) -> tuple[Condition, ...] | str:
    if where is None:
        return ()
    if isinstance(where, Condition):
        return (where,)
    if isinstance(where, Mapping):
        return tuple(Condition(name, "eq", value) for name, value in where.items())
    if (
        isinstance(where, Sequence)
        and not isinstance(where, str | bytes)
        and all(isinstance(item, Condition) for item in where)
    ):
        return tuple(where)
    return (
        "where must be a mapping of field to value, a Condition or a sequence of "
        f"Conditions, not {type(where).__name__}"
    )


def _orderings(order_by: object) -> tuple[Ordering, ...] | str:
    if order_by is None:
        return ()
    items = [order_by] if isinstance(order_by, str | Ordering) else order_by
    if not isinstance(items, Sequence) or isinstance(items, bytes):
        return f"order_by must be field names or Orderings, not {type(order_by).__name__}"
    found: list[Ordering] = []
    for item in items:
        if isinstance(item, str):
            found.append(Ordering(item))
        elif isinstance(item, Ordering):
            found.append(item)
        else:
            return f"order_by must be field names or Orderings, not {type(item).__name__}"
    return tuple(found)


def _page_problem(label: str, number: object, *, optional: bool) -> str | None:
    if number is None and optional:
        return None
    if type(number) is not int:
        return f"{label} must be an int, not {type(number).__name__}"
    if not 0 <= number <= INT64_MAX:
        return f"{label} must be between 0 and 2**63 - 1"
    return None


def build_query(
    spec: EntitySpec[Any], where: object, order_by: object, limit: object, offset: object
) -> Query | str:
    """The checked query, or what is wrong with it (naming the argument).

    Values are checked as their column would check them, so nothing the database would
    refuse is ever sent (a refused statement breaks a PostgreSQL transaction).
    """
    conditions = _conditions(where)
    if isinstance(conditions, str):
        return conditions
    for condition in conditions:
        problem = _condition_problem(spec, condition)
        if problem is not None:
            return problem
    orderings = _orderings(order_by)
    if isinstance(orderings, str):
        return orderings
    for ordering in orderings:
        problem = _field_problem(spec, "order_by", ordering.field)
        if problem is not None:
            return problem
    problem = _page_problem("limit", limit, optional=True) or _page_problem(
        "offset", offset, optional=False
    )
    if problem is not None:
        return problem
    assert limit is None or isinstance(limit, int)
    assert isinstance(offset, int)
    if spec.key not in {ordering.field for ordering in orderings}:
        orderings = (*orderings, Ordering(spec.key))
    return Query(conditions, orderings, limit, offset)
