"""The in-memory unit of work: an honest fake of the SQLAlchemy adapter. For tests.

It keeps committed rows as per-entity snapshots (dicts of copied values) and hands out
fresh objects built from them, never a stored object; each unit of work stages its
changes in its own identity map and applies them at commit, all or nothing, under one
lock. A commit compares only the entities the unit touched against their snapshots,
so its cost grows with the unit, not with the store. Versions follow SQLAlchemy's
``version_id_col``: 1 on insert, +1 on each update that changed something.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import attrs
from returns.result import Failure, Result, Success

from portside.adapters._query import Query, build_query
from portside.adapters._unit import UnitLifecycle, identity_of
from portside.adapters.entities import EntitySpec, copy_value
from portside.adapters.memory._uow_async import AsyncMemoryUnitOfWork
from portside.adapters.memory._uow_store import Change, Row, RowStore
from portside.domain._errors import Conflict, InvalidRequest, NotFound, ServiceError
from portside.ports._query import Ordering, Where
from portside.ports._uow import Repository

__all__ = ["Change", "MemoryDatabase", "MemoryRepository", "MemoryUnitOfWork", "Row"]

E = TypeVar("E")
_Identity = tuple[type, Any]
_MISSING: Any = object()
_FOREIGN = "the entity belongs to another unit of work; get it again in this one"


@attrs.define
class MemoryDatabase(RowStore):
    """Committed rows of every registered entity, shared by the units of work it opens.

    For tests and the embedded default. ``commits`` counts successful commits.
    """

    def unit_of_work(self) -> MemoryUnitOfWork:
        """A new unit of work over this database."""
        return MemoryUnitOfWork(self)

    def async_unit_of_work(self) -> AsyncMemoryUnitOfWork:
        """A new async unit of work over this database (the same rows and rules)."""
        return AsyncMemoryUnitOfWork(self.unit_of_work())


@attrs.define
class MemoryUnitOfWork(UnitLifecycle):
    """A unit of work over a ``MemoryDatabase``. For tests.

    Objects it returns are its own copies: mutating one changes nothing durable until
    ``commit()``, and no other unit of work ever sees it.
    """

    database: MemoryDatabase
    _objects: dict[_Identity, Any] = attrs.field(factory=dict, init=False, repr=False)
    _snapshots: dict[_Identity, Row | None] = attrs.field(factory=dict, init=False, repr=False)
    _removed: set[_Identity] = attrs.field(factory=set, init=False, repr=False)
    # New entities whose key is generated at commit: they have no identity until then.
    _pending: list[tuple[EntitySpec[Any], Any]] = attrs.field(factory=list, init=False, repr=False)

    def _begin(self) -> None:
        self._forget()

    def _end(self) -> None:
        self._forget()

    def _discard(self) -> None:
        self._forget()

    def _forget(self) -> None:
        for entity in [*self._objects.values(), *(e for _, e in self._pending)]:
            self.database.release(entity, self)
        self._objects.clear()
        self._pending.clear()
        self._snapshots.clear()
        self._removed.clear()

    def _mark(self) -> _Mark:
        specs = self.database.entities
        held = [*self._objects.values(), *(entity for _, entity in self._pending)]
        return _Mark(
            objects=dict(self._objects),
            snapshots=dict(self._snapshots),
            removed=set(self._removed),
            pending=list(self._pending),
            values={id(e): specs.spec(type(e)).values(e) for e in held},
        )

    def _restore(self, mark: _Mark) -> None:
        """Put back the values, additions and removals of ``mark``; keep later loads."""
        for identity, entity in list(self._objects.items()):
            if identity in mark.objects:
                continue
            snapshot = self._snapshots[identity]
            if snapshot is None:  # added inside the savepoint
                self.database.release(entity, self)
                del self._objects[identity]
                del self._snapshots[identity]
            else:  # loaded inside it: back to the loaded values
                _assign(entity, snapshot)
        for _, entity in self._pending:
            if id(entity) not in mark.values:
                self.database.release(entity, self)
        self._pending = list(mark.pending)
        self._removed = set(mark.removed)
        for identity, entity in mark.objects.items():
            if identity not in self._objects:  # a new entity removed inside the savepoint
                self._objects[identity] = entity
                self._snapshots[identity] = mark.snapshots[identity]
                self.database.claim(entity, self)
        for _, entity in mark.pending:
            self.database.claim(entity, self)
        for entity in [*mark.objects.values(), *(e for _, e in mark.pending)]:
            _assign(entity, mark.values[id(entity)])

    def _repository(self, entity_type: type[E]) -> Repository[E]:
        spec = self.database.entities.spec(entity_type)
        return MemoryRepository(self, spec, self.generation)

    def changes(self) -> list[Change] | ServiceError:
        """What a commit would write now, or why it cannot (a changed key, a bad value)."""
        changes: list[Change] = []
        specs = self.database.entities
        for new_spec, new in self._pending:
            values = self._insert_values(new_spec, new)
            if isinstance(values, ServiceError):
                return values
            values[new_spec.key] = self.database.next_key(new_spec)
            changes.append(Change("insert", new_spec, values[new_spec.key], values, entity=new))
        for identity, entity in self._objects.items():
            spec: EntitySpec[Any] = specs.spec(identity[0])
            key = identity[1]
            snapshot = self._snapshots[identity]
            if getattr(entity, spec.key) != key:
                return self._invalid(
                    f"the key of a stored {spec.entity_type.__name__} cannot change"
                )
            if identity in self._removed:
                version = None if snapshot is None else snapshot.get(spec.version or "")
                changes.append(Change("delete", spec, key, {}, version))
                continue
            if snapshot is None:
                values = self._insert_values(spec, entity)
                if isinstance(values, ServiceError):
                    return values
                changes.append(Change("insert", spec, key, values))
                continue
            # The version counts too: an application that bumps it itself (as SQLAlchemy
            # allows) writes its own number, still guarded by the version it loaded.
            changed = {
                name: copy_value(value)
                for name in spec.fields
                if (value := getattr(entity, name, None)) != snapshot.get(name, _MISSING)
            }
            if changed:
                problem = self.row_problem(spec, changed, insert=False)
                if problem is not None:
                    return self._invalid(problem)
                version = snapshot.get(spec.version) if spec.version else None
                changes.append(Change("update", spec, key, changed, version))
        return changes

    def _insert_values(self, spec: EntitySpec[Any], entity: Any) -> Row | ServiceError:
        """The row an insert writes: the fields, column defaults for those left ``None``."""
        values = spec.values(entity)
        for name, value in values.items():
            if value is None and name != spec.key:
                has_default, default = spec.default(name)
                if has_default:
                    values[name] = default
        problem = self.row_problem(spec, values, insert=True)
        return values if problem is None else self._invalid(problem)

    def row_problem(self, spec: EntitySpec[Any], values: Row, *, insert: bool) -> str | None:
        """The column check every backend applies before sending (see ``EntitySpec``)."""
        return spec.row_problem(values, insert=insert)

    def _invalid(self, message: str) -> ServiceError:
        return InvalidRequest(service=self.service, operation="commit", message=message)

    def _commit(self) -> Result[None, ServiceError]:
        changes = self.changes()
        if isinstance(changes, ServiceError):
            self._forget()
            return Failure(changes)
        problem = self.database.write(changes, self.staged_messages)
        if problem is not None:
            self._forget()
            return Failure(problem)
        for change in changes:
            self._committed(change)
        self._removed.clear()
        self._pending.clear()
        return Success(None)

    def _committed(self, change: Change) -> None:
        """Bring the unit's object and snapshot up to what the commit wrote."""
        spec = change.spec
        identity = (spec.entity_type, change.key)
        if change.kind == "delete":
            del self._objects[identity]
            del self._snapshots[identity]
            return
        if change.entity is not None:  # its key was generated: now it has an identity
            self._objects[identity] = change.entity
            self._snapshots[identity] = None
        if change.kind == "insert":
            entity = self._objects[identity]
            for name, value in change.values.items():
                if getattr(entity, name, None) is None and value is not None:
                    setattr(entity, name, copy_value(value))  # generated key, defaults
            self.database.mark_persisted(entity)
        snapshot = self._snapshots[identity] or {}
        snapshot = {**snapshot, **{k: copy_value(v) for k, v in change.values.items()}}
        if spec.version is not None:
            if change.kind == "insert":
                version = 1
            elif spec.version in change.values:
                version = change.values[spec.version]
            else:
                version = (change.expected_version or 0) + 1
            snapshot[spec.version] = version
            setattr(self._objects[identity], spec.version, version)
        self._snapshots[identity] = snapshot

    # Helpers for MemoryRepository: the unit's identity map.

    def local(self, identity: _Identity) -> Any:
        """The unit's object for ``identity`` (``None`` when absent or removed)."""
        if identity in self._removed:
            return None
        return self._objects.get(identity)

    def holds(self, entity: Any) -> bool:
        """Whether ``entity`` is one of this unit's objects."""
        return any(held is entity for held in self._objects.values()) or self.pending(entity)

    def pending(self, entity: Any) -> bool:
        """Whether ``entity`` is staged to get a generated key at commit."""
        return any(held is entity for _, held in self._pending)

    def stage_pending(self, spec: EntitySpec[Any], entity: Any) -> None:
        """Record a new ``entity`` whose key is generated at commit."""
        self._pending.append((spec, entity))

    def unstage_pending(self, entity: Any) -> None:
        """Forget a pending ``entity`` (removed before it was ever written)."""
        self._pending = [(s, held) for s, held in self._pending if held is not entity]
        self.database.release(entity, self)

    def is_removed(self, identity: _Identity) -> bool:
        """Whether the unit removed the entity with ``identity``."""
        return identity in self._removed

    def load(self, spec: EntitySpec[E], key: Any, row: Row) -> E:
        """Adopt a committed row into the unit: build a fresh object and snapshot it."""
        entity = spec.build(row)
        self.database.mark_persisted(entity)
        identity = (spec.entity_type, key)
        self._objects[identity] = entity
        self._snapshots[identity] = row
        return entity

    def stage_add(self, identity: _Identity, entity: Any) -> None:
        """Record ``entity`` as new."""
        self._objects[identity] = entity
        self._snapshots[identity] = None

    def stage_remove(self, identity: _Identity) -> None:
        """Record the removal of the unit's object for ``identity``."""
        if self._snapshots[identity] is None:
            self.database.release(self._objects[identity], self)
            del self._objects[identity]
            del self._snapshots[identity]
        else:
            self._removed.add(identity)

    def local_of(self, entity_type: type) -> tuple[dict[Any, Any], set[Any]]:
        """The unit's live objects of ``entity_type`` by key, and every key it holds."""
        live: dict[Any, Any] = {}
        held: set[Any] = set()
        for (cls, key), entity in self._objects.items():
            if cls is entity_type:
                held.add(key)
                if (cls, key) not in self._removed:
                    live[key] = entity
        return live, held


@attrs.frozen
class _Mark:
    """A savepoint of the fake: who was held, staged or removed, with what values."""

    objects: dict[_Identity, Any]
    snapshots: dict[_Identity, Row | None]
    removed: set[_Identity]
    pending: list[tuple[EntitySpec[Any], Any]]
    values: dict[int, Row]


def _assign(entity: Any, values: Row) -> None:
    for name, value in values.items():
        setattr(entity, name, copy_value(value))


@attrs.frozen
class _Found:
    """A query's match: the unit's own entity, or a committed row (loaded if paged)."""

    key: Any
    entity: Any
    row: Row


def _field_of(found: _Found, name: str) -> Any:
    return getattr(found.entity, name, None) if found.entity is not None else found.row.get(name)


@attrs.define
class MemoryRepository(Repository[E], Generic[E]):
    """Entities of one type inside one ``MemoryUnitOfWork`` block. For tests."""

    _uow: MemoryUnitOfWork
    _spec: EntitySpec[E]
    _generation: int

    def _error(self, kind: type[ServiceError], operation: str, message: str) -> ServiceError:
        return kind(service=self._uow.service, operation=operation, message=message)

    def _identity_of(self, entity: E, operation: str) -> _Identity | ServiceError:
        return identity_of(self._spec, entity, service=self._uow.service, operation=operation)

    def add(self, entity: E) -> Result[None, ServiceError]:
        """Stage ``entity`` for insertion.

        ``Failure(InvalidRequest)`` when its key is unset or of the wrong type,
        ``Failure(Conflict)`` when the unit already holds or removed that key.
        """
        self._uow.ensure_open(self._generation)
        identity = self._identity_of(entity, "add")
        if isinstance(identity, ServiceError):
            return Failure(identity)
        if identity[1] is None:
            return self._add_pending(entity)
        if self._uow.is_removed(identity):
            return Failure(
                self._error(Conflict, "add", "this key was removed in this unit; commit first")
            )
        held = self._uow.local(identity)
        if held is entity:
            return Success(None)
        if held is not None:
            return Failure(
                self._error(Conflict, "add", "another entity with this key is in this unit")
            )
        database = self._uow.database
        if database.was_persisted(entity) or not database.claim(entity, self._uow):
            return Failure(self._error(InvalidRequest, "add", _FOREIGN))
        self._uow.stage_add(identity, entity)
        return Success(None)

    def _add_pending(self, entity: E) -> Result[None, ServiceError]:
        """Stage an entity whose key is generated at commit (it has no identity yet)."""
        if self._uow.pending(entity):
            return Success(None)
        database = self._uow.database
        if database.was_persisted(entity) or not database.claim(entity, self._uow):
            return Failure(self._error(InvalidRequest, "add", _FOREIGN))
        self._uow.stage_pending(self._spec, entity)
        return Success(None)

    def get(self, key: Any) -> Result[E, ServiceError]:
        """The entity with identity ``key``.

        ``Failure(NotFound)`` when absent, ``Failure(InvalidRequest)`` for a key of the
        wrong type.
        """
        self._uow.ensure_open(self._generation)
        problem = self._spec.key_problem(key)
        if problem is not None:
            return Failure(self._error(InvalidRequest, "get", problem))
        identity = (self._spec.entity_type, key)
        if self._uow.is_removed(identity):
            return Failure(self._error(NotFound, "get", f"no {self._spec.entity_type.__name__}"))
        held = self._uow.local(identity)
        if held is not None:
            return Success(held)
        row = self._uow.database.read(self._spec, key)
        if row is None:
            return Failure(self._error(NotFound, "get", f"no {self._spec.entity_type.__name__}"))
        return Success(self._uow.load(self._spec, key, row))

    def list(
        self,
        *,
        where: Where | None = None,
        order_by: Sequence[Ordering | str] | Ordering | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> Result[list[E], ServiceError]:
        """Entities matching ``where``, in ``order_by`` order then by key, paginated.

        Entities this unit already holds are judged by their current values.
        ``Failure(InvalidRequest)`` naming the argument that is wrong.
        """
        self._uow.ensure_open(self._generation)
        query = build_query(self._spec, where, order_by, limit, offset)
        if isinstance(query, str):
            return Failure(self._error(InvalidRequest, "list", query))
        found = self._matching(query)
        query.sort(found, _field_of)
        result: list[E] = [
            item.entity
            if item.entity is not None
            else self._uow.load(
                self._spec, item.key, {k: copy_value(v) for k, v in item.row.items()}
            )
            for item in query.page(found)
        ]
        return Success(result)

    def count(self, *, where: Where | None = None) -> Result[int, ServiceError]:
        """How many entities match ``where``, the unit's own changes included.

        ``Failure(InvalidRequest)`` naming the argument that is wrong.
        """
        self._uow.ensure_open(self._generation)
        query = build_query(self._spec, where, None, None, 0)
        if isinstance(query, str):
            return Failure(self._error(InvalidRequest, "count", query))
        return Success(len(self._matching(query)))

    def _matching(self, query: Query) -> builtins.list[_Found]:
        """The unit's live entities and the other committed rows that match ``query``."""
        live, held = self._uow.local_of(self._spec.entity_type)
        found = [
            _Found(key, entity, {})
            for key, entity in live.items()
            if query.matches(entity, getattr)
        ]
        found.extend(
            _Found(key, None, row)
            for key, row in self._uow.database.rows(self._spec, held)
            if query.matches(row, dict.get)
        )
        return found

    def remove(self, entity: E) -> Result[None, ServiceError]:
        """Stage the removal of ``entity``, which must have been loaded or added here.

        ``Failure(InvalidRequest)`` for an entity this unit does not hold.
        """
        self._uow.ensure_open(self._generation)
        identity = self._identity_of(entity, "remove")
        if isinstance(identity, ServiceError):
            return Failure(identity)
        if identity[1] is None and self._uow.pending(entity):
            self._uow.unstage_pending(entity)
            return Success(None)
        if self._uow.is_removed(identity):
            return Success(None)
        if self._uow.local(identity) is not entity:
            return Failure(
                self._error(
                    InvalidRequest, "remove", "the entity was not loaded or added in this unit"
                )
            )
        self._uow.stage_remove(identity)
        return Success(None)
