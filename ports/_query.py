"""A small typed query for repositories: conditions on fields, and an ordering.

No SQL text crosses the port: a query is a value built from field names, operators
and bound values, which every adapter answers the same way (the fake in Python, the
SQL adapter with bound parameters)::

    from portside.ports import field

    orders.list(
        where=[field("qty").ge(3), field("item").in_(["tea", "coffee"]), field("note").is_none()],
        order_by=[field("qty").desc(), "item"],
        limit=20,
    )
    orders.count(where=field("qty").lt(3))

Semantics are SQL's: a comparison with a NULL field is false (``ne`` included), ``eq(None)``
is ``is_none()``, ``None`` inside ``in_`` matches nothing; ascending order puts NULLs
first and descending order puts them last, on every backend; ties are broken by the
identity key. Keyset pagination is a condition on the key (``field("id").gt(last_id)``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypeAlias

import attrs

__all__ = ["Condition", "Field", "Operator", "Ordering", "Where", "field"]

Operator: TypeAlias = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "is_none", "not_none"]


@attrs.frozen
class Condition:
    """``field <operator> value``; build one with ``field(name)``'s methods."""

    field: str
    operator: Operator
    value: Any = None


@attrs.frozen
class Ordering:
    """Order by ``field``, ascending unless ``descending``."""

    field: str
    descending: bool = False


@attrs.frozen
class Field:
    """A field of an entity, by attribute name, to build conditions and orderings from."""

    name: str

    def eq(self, value: Any) -> Condition:
        """Equal to ``value`` (``eq(None)`` is ``is_none()``)."""
        return Condition(self.name, "eq", value)

    def ne(self, value: Any) -> Condition:
        """Not equal to ``value``, and not NULL (as in SQL)."""
        return Condition(self.name, "ne", value)

    def lt(self, value: Any) -> Condition:
        """Less than ``value``."""
        return Condition(self.name, "lt", value)

    def le(self, value: Any) -> Condition:
        """Less than or equal to ``value``."""
        return Condition(self.name, "le", value)

    def gt(self, value: Any) -> Condition:
        """Greater than ``value``."""
        return Condition(self.name, "gt", value)

    def ge(self, value: Any) -> Condition:
        """Greater than or equal to ``value``."""
        return Condition(self.name, "ge", value)

    def in_(self, values: Iterable[Any]) -> Condition:
        """Equal to one of ``values`` (a ``None`` among them matches nothing)."""
        return Condition(self.name, "in", values)

    def is_none(self) -> Condition:
        """NULL."""
        return Condition(self.name, "is_none")

    def is_not_none(self) -> Condition:
        """Not NULL."""
        return Condition(self.name, "not_none")

    def asc(self) -> Ordering:
        """Ascending order, NULLs first."""
        return Ordering(self.name)

    def desc(self) -> Ordering:
        """Descending order, NULLs last."""
        return Ordering(self.name, descending=True)


def field(name: str) -> Field:
    """The field ``name`` of an entity, to write ``field("qty").gt(3)``."""
    return Field(name)


#: What ``Repository.list``/``count`` take as ``where``: equalities by field name, one
#: condition, or conditions that must all hold.
Where: TypeAlias = Mapping[str, Any] | Condition | Sequence[Condition]
