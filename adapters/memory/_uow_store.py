"""The committed side of the in-memory unit of work: rows, constraints and one lock. For tests.

Rows are per-entity snapshots (dicts of copied values). A commit applies its changes in
the order the SQL adapter sends them (parents before children for inserts and updates,
children before parents for deletes; within a table updates, then inserts), checking
each against the state the earlier ones left, exactly as a database checks each
statement. The first refused change undoes the ones before it, so a commit is whole or
absent. Unique values and foreign-key references are indexed, so a check costs the
same whatever the store's size.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol

import attrs

from portside.adapters._columns import missing_parent, still_referenced, taken
from portside.adapters._outbox_table import OutboxRecord
from portside.adapters._unit import StagedMessage
from portside.adapters.entities import Entities, EntitySpec, Reference, copy_value, out_of_range
from portside.domain._errors import Conflict, InvalidRequest, ServiceError

__all__ = ["Change", "Row", "RowStore", "Stager", "ordered"]

Row = dict[str, Any]
_Undo = tuple[type, Any, Row | None]


@attrs.frozen
class Change:
    """One write a commit will make: what, to which row, and what it expects there."""

    kind: Literal["insert", "update", "delete"]
    spec: EntitySpec[Any]
    key: Any
    values: Row
    expected_version: int | None = None
    #: the unit's object, for an insert whose key was generated at this commit
    entity: Any = attrs.field(default=None, eq=False, repr=False)


class Stager(Protocol):
    """What the store asks of a unit of work that stages new objects."""

    def holds(self, entity: Any) -> bool:
        """Whether the unit still has ``entity`` staged."""
        ...


def ordered(changes: list[Change], entities: Entities) -> list[Change]:
    """``changes`` in the order a SQL backend applies them (see the module docstring)."""
    rank = entities.table_order()
    saves = [c for c in changes if c.kind != "delete"]
    updates = sorted((c for c in saves if c.kind == "update"), key=lambda c: c.key)
    inserts = [c for c in saves if c.kind == "insert"]
    by_table = sorted([*updates, *inserts], key=lambda c: rank[c.spec.table])
    deletes = sorted(
        (c for c in changes if c.kind == "delete"), key=lambda c: (-rank[c.spec.table], c.key)
    )
    return [*by_table, *deletes]


def _values(row: Row, fields: tuple[str, ...]) -> tuple[Any, ...] | None:
    """The row's values for ``fields``; ``None`` when any is NULL (never indexed)."""
    values = tuple(row.get(field) for field in fields)
    return None if any(value is None for value in values) else values


@attrs.define
class RowStore:
    """Committed rows of every registered entity (``MemoryDatabase`` opens units on it).

    For tests and the embedded default. ``commits`` counts successful commits.
    """

    entities: Entities
    commits: int = attrs.field(default=0, init=False)
    _tables: dict[type, dict[Any, Row]] = attrs.field(factory=dict, init=False, repr=False)
    # (entity, unique fields) -> values -> key of the row holding them
    _unique: dict[tuple[type, tuple[str, ...]], dict[tuple[Any, ...], Any]] = attrs.field(
        factory=dict, init=False, repr=False
    )
    # (child entity, reference) -> parent values -> how many child rows point at them
    _refs: dict[tuple[type, Reference], dict[tuple[Any, ...], int]] = attrs.field(
        factory=dict, init=False, repr=False
    )
    # entity -> the highest integer key ever stored (what an autoincrement goes past)
    _high: dict[type, int] = attrs.field(factory=dict, init=False, repr=False)
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
    #: committed outbox messages by id (ids are never reused), in commit order
    outbox: dict[int, OutboxRecord] = attrs.field(factory=dict, init=False, repr=False)
    _outbox_id: int = attrs.field(default=0, init=False, repr=False)
    #: the clock outbox messages are stamped with (seconds)
    clock: Callable[[], float] = attrs.field(default=time.time, kw_only=True, repr=False)

    def close(self) -> None:
        """Nothing to release; present so either database can be closed alike."""

    def clear(self) -> None:
        """Forget every committed row."""
        with self._lock:
            self._tables.clear()
            self._unique.clear()
            self._refs.clear()
            self._high.clear()
            self.outbox.clear()

    def create_all(self) -> None:
        """Check that every registered entity can be stored; tables exist from the start.

        Present so a fake and a SQL ``Database`` are set up alike. Raises ``ValueError``
        for a foreign key to a table no registered entity is stored in (the fake could
        not check it).
        """
        tables = {spec.table for spec in self.entities}
        for spec in self.entities:
            for reference in spec.references:
                if reference.parent not in tables:
                    raise ValueError(
                        f"{spec.entity_type.__name__} refers to {reference.parent.name}, "
                        "which no registered entity is stored in"
                    )

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

    def next_key(self, spec: EntitySpec[Any]) -> Any:
        """A new key for ``spec``: its column default's value, else past every key used.

        Like a database sequence, a key handed out is never handed out again, even when
        the commit that asked for it fails.
        """
        has_default, value = spec.default(spec.key)
        if has_default:
            return value
        with self._lock:
            key = self._high.get(spec.entity_type, 0) + 1
            self._high[spec.entity_type] = key
            return key

    def read(self, spec: EntitySpec[Any], key: Any) -> Row | None:
        """A copy of the committed row of ``key``, or ``None``."""
        with self._lock:
            row = self._tables.get(spec.entity_type, {}).get(key)
            return None if row is None else {k: copy_value(v) for k, v in row.items()}

    def rows(self, spec: EntitySpec[Any], skip: set[Any]) -> list[tuple[Any, Row]]:
        """Every committed row of ``spec`` whose key is not in ``skip`` (shared, not copied)."""
        with self._lock:
            table = self._tables.get(spec.entity_type, {})
            return [(key, row) for key, row in table.items() if key not in skip]

    def scan(
        self, spec: EntitySpec[Any], where: Mapping[str, Any], skip: set[Any]
    ) -> list[tuple[Any, Row]]:
        """Committed rows whose fields equal ``where`` and keys are not in ``skip``."""
        return [
            (key, row)
            for key, row in self.rows(spec, skip)
            if all(row.get(f) == v for f, v in where.items())
        ]

    def write(
        self, changes: list[Change], messages: Sequence[StagedMessage] = ()
    ) -> ServiceError | None:
        """Apply every change in SQL order and store ``messages``, or none; say why."""
        with self._lock:
            undo: list[_Undo] = []
            for change in self.order(changes):
                problem = self.check(change)
                if problem is not None:
                    for entity_type, key, row in reversed(undo):
                        self._put(entity_type, key, row)
                    return problem
                undo.append(self.apply(change))
            now = self.clock()
            for message in messages:
                self._outbox_id += 1
                self.outbox[self._outbox_id] = OutboxRecord(
                    self._outbox_id,
                    message.topic,
                    message.body,
                    dict(message.headers),
                    message.dedupe_key,
                    now,
                )
            self.commits += 1
        return None

    @property
    def lock(self) -> threading.Lock:
        """The lock every commit holds (the relay claims outbox rows under it)."""
        return self._lock

    def order(self, changes: list[Change]) -> list[Change]:
        """The order a SQL backend sends ``changes`` in (see ``ordered``)."""
        return ordered(changes, self.entities)

    def check(self, change: Change) -> ServiceError | None:
        """Why ``change`` cannot be applied to the rows as they stand, or ``None``."""
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
                return Conflict(service="uow", operation="commit", message=taken(name, (spec.key,)))
            return self._constraints(spec, change.key, None, change.values)
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
        if change.kind == "delete":
            return self._still_referenced(spec, current, None)
        return self._constraints(spec, change.key, current, {**current, **change.values})

    def _constraints(
        self, spec: EntitySpec[Any], key: Any, current: Row | None, row: Row
    ) -> ServiceError | None:
        """Unique values free, parents present, and no child left dangling by an update."""
        name = spec.entity_type.__name__
        for fields in spec.uniques:
            values = _values(row, fields)
            holder = None if values is None else self._unique_index(spec, fields).get(values)
            if holder is not None and holder != key:
                return Conflict(service="uow", operation="commit", message=taken(name, fields))
        for reference in spec.references:
            values = _values(row, reference.fields)
            if values is not None and not self._parent_exists(reference, values):
                return InvalidRequest(
                    service="uow",
                    operation="commit",
                    message=missing_parent(name, reference.fields),
                )
        return None if current is None else self._still_referenced(spec, current, row)

    def _still_referenced(
        self, spec: EntitySpec[Any], current: Row, row: Row | None
    ) -> ServiceError | None:
        """A parent row that children point at cannot go or change the values they use."""
        for child in self.entities:
            for reference in child.references:
                if reference.parent is not spec.table:
                    continue
                fields = tuple(spec.attr_of(column) for column in reference.parent_columns)
                values = _values(current, fields)
                if values is None or (row is not None and _values(row, fields) == values):
                    continue
                if self._refs.get((child.entity_type, reference), {}).get(values, 0) > 0:
                    return InvalidRequest(
                        service="uow",
                        operation="commit",
                        message=still_referenced(
                            spec.entity_type.__name__, child.entity_type.__name__, reference.fields
                        ),
                    )
        return None

    def _parent_exists(self, reference: Reference, values: tuple[Any, ...]) -> bool:
        parent = self.entities.spec_of_table(reference.parent)
        if parent is None:
            return True  # a table no entity is stored in: the fake cannot know its rows
        fields = tuple(parent.attr_of(column) for column in reference.parent_columns)
        if fields == (parent.key,):
            return values[0] in self._tables.get(parent.entity_type, {})
        return values in self._unique_index(parent, fields)

    def _unique_index(
        self, spec: EntitySpec[Any], fields: tuple[str, ...]
    ) -> dict[tuple[Any, ...], Any]:
        return self._unique.setdefault((spec.entity_type, fields), {})

    def apply(self, change: Change) -> _Undo:
        """Apply a checked change, copying only the row it touches; how to undo it."""
        spec = change.spec
        table = self._tables.setdefault(spec.entity_type, {})
        previous = table.get(change.key)
        if change.kind == "delete":
            self._put(spec.entity_type, change.key, None)
            return (spec.entity_type, change.key, previous)
        row = dict(change.values) if change.kind == "insert" else {**table[change.key]}
        if change.kind == "update":
            row.update(change.values)
        if spec.version is not None:
            if change.kind == "insert":
                row[spec.version] = 1
            elif spec.version not in change.values:
                row[spec.version] = row[spec.version] + 1
        self._put(spec.entity_type, change.key, row)
        return (spec.entity_type, change.key, previous)

    def _put(self, entity_type: type, key: Any, row: Row | None) -> None:
        """Store (or with ``None`` drop) one row, keeping the indexes in step."""
        spec: EntitySpec[Any] = self.entities.spec(entity_type)
        table = self._tables.setdefault(entity_type, {})
        old = table.get(key)
        for fields in spec.uniques:
            index = self._unique_index(spec, fields)
            before = None if old is None else _values(old, fields)
            if before is not None and index.get(before) == key:
                del index[before]
            after = None if row is None else _values(row, fields)
            if after is not None:
                index[after] = key
        for reference in spec.references:
            counts = self._refs.setdefault((entity_type, reference), {})
            before = None if old is None else _values(old, reference.fields)
            if before is not None:
                counts[before] -= 1
                if counts[before] == 0:
                    del counts[before]
            after = None if row is None else _values(row, reference.fields)
            if after is not None:
                counts[after] = counts.get(after, 0) + 1
        if row is None:
            table.pop(key, None)
        else:
            table[key] = row
            if type(key) is int and key > self._high.get(entity_type, 0):
                self._high[entity_type] = key
