"""The committed side of the in-memory unit of work: rows, versions and one lock. For tests.

Rows are per-entity snapshots (dicts of copied values). A commit checks every change
and then applies them all under the lock, touching only the rows it names.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from typing import Any, Literal, Protocol

import attrs

from portside.adapters.entities import Entities, EntitySpec, copy_value, out_of_range
from portside.domain._errors import Conflict, InvalidRequest, ServiceError

__all__ = ["Change", "Row", "RowStore", "Stager"]

Row = dict[str, Any]


@attrs.frozen
class Change:
    """One write a commit will make: what, to which row, and what it expects there."""

    kind: Literal["insert", "update", "delete"]
    spec: EntitySpec[Any]
    key: Any
    values: Row
    expected_version: int | None = None


class Stager(Protocol):
    """What the store asks of a unit of work that stages new objects."""

    def holds(self, entity: Any) -> bool:
        """Whether the unit still has ``entity`` staged."""
        ...


@attrs.define
class RowStore:
    """Committed rows of every registered entity (``MemoryDatabase`` opens units on it).

    For tests and the embedded default. ``commits`` counts successful commits.
    """

    entities: Entities
    commits: int = attrs.field(default=0, init=False)
    _tables: dict[type, dict[Any, Row]] = attrs.field(factory=dict, init=False, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)
    # Objects that were loaded or committed by some unit, as SQLAlchemy marks them with an
    # identity key: adding one to another unit is refused, like a detached instance.
    _persisted: weakref.WeakValueDictionary[int, Any] = attrs.field(
        factory=weakref.WeakValueDictionary, init=False, repr=False
    )

    # New objects staged by an open unit, as a SQLAlchemy session owns its pending
    # instances: another unit may not stage the same object.
    _staged: dict[int, tuple[weakref.ref[Any], Stager]] = attrs.field(
        factory=dict, init=False, repr=False
    )

    def close(self) -> None:
        """Nothing to release; present so either database can be closed alike."""

    def clear(self) -> None:
        """Forget every committed row."""
        with self._lock:
            self._tables.clear()

    def mark_persisted(self, entity: Any) -> None:
        """Remember that ``entity`` stands for a stored row."""
        self._persisted[id(entity)] = entity

    def was_persisted(self, entity: Any) -> bool:
        """Whether ``entity`` was loaded or committed by a unit of work."""
        return self._persisted.get(id(entity)) is entity

    def claim(self, entity: Any, unit: Stager) -> bool:
        """Record ``unit`` as the owner of new ``entity``; ``False`` if another unit has it."""
        entry = self._staged.get(id(entity))
        if (
            entry is not None
            and entry[0]() is entity
            and entry[1] is not unit
            and entry[1].holds(entity)
        ):
            return False
        self._staged[id(entity)] = (weakref.ref(entity), unit)
        return True

    def release(self, entity: Any, unit: Stager) -> None:
        """Forget that ``unit`` owns ``entity``."""
        entry = self._staged.get(id(entity))
        if entry is not None and entry[1] is unit:
            del self._staged[id(entity)]

    def read(self, spec: EntitySpec[Any], key: Any) -> Row | None:
        """A copy of the committed row of ``key``, or ``None``."""
        with self._lock:
            row = self._tables.get(spec.entity_type, {}).get(key)
            return None if row is None else {k: copy_value(v) for k, v in row.items()}

    def scan(
        self, spec: EntitySpec[Any], where: Mapping[str, Any], skip: set[Any]
    ) -> list[tuple[Any, Row]]:
        """Committed rows matching ``where`` whose keys are not in ``skip``, unordered."""
        with self._lock:
            table = self._tables.get(spec.entity_type, {})
            return [
                (key, row)
                for key, row in table.items()
                if key not in skip and all(row.get(f) == v for f, v in where.items())
            ]

    def write(self, changes: list[Change]) -> ServiceError | None:
        """Check every change, then apply them all; or apply none and say why."""
        with self._lock:
            for change in changes:
                problem = self.check(change)
                if problem is not None:
                    return problem
            for change in changes:
                self.apply(change)
            self.commits += 1
        return None

    def check(self, change: Change) -> ServiceError | None:
        """Why ``change`` cannot be applied to the committed rows, or ``None``."""
        spec = change.spec
        name = spec.entity_type.__name__
        current = self._tables.get(spec.entity_type, {}).get(change.key)
        for field, value in change.values.items():
            if out_of_range(value):
                return InvalidRequest(
                    service="uow",
                    operation="commit",
                    message=f"{name}.{field} is beyond what the database can store",
                )
        if change.kind == "insert":
            if current is not None:
                return Conflict(
                    service="uow",
                    operation="commit",
                    message=f"{name} key already exists (constraint {spec.table.name}_pkey)",
                )
            for column in spec.table.columns:
                if (
                    not column.nullable
                    and column.key != spec.version
                    and change.values.get(column.key) is None
                    and column.default is None
                    and column.server_default is None
                ):
                    return InvalidRequest(
                        service="uow",
                        operation="commit",
                        message=f"{name}.{column.key} must not be null",
                    )
            return None
        if current is None:
            if change.kind == "delete" and spec.version is None:
                return None  # deleting an already deleted, unversioned row is harmless
            return Conflict(
                service="uow",
                operation="commit",
                message=f"{name} was removed by another unit of work",
            )
        if spec.version is not None and current[spec.version] != change.expected_version:
            return Conflict(
                service="uow",
                operation="commit",
                message=f"{name} was changed by another unit of work",
            )
        return None

    def apply(self, change: Change) -> None:
        """Apply a checked change, copying only the row it touches."""
        spec = change.spec
        table = self._tables.setdefault(spec.entity_type, {})
        if change.kind == "delete":
            table.pop(change.key, None)
            return
        row = dict(change.values) if change.kind == "insert" else {**table[change.key]}
        if change.kind == "update":
            row.update(change.values)
        if spec.version is not None:
            row[spec.version] = 1 if change.kind == "insert" else row[spec.version] + 1
        table[change.key] = row
