"""The SQLAlchemy unit of work and its repositories.

A unit of work is one ``Session`` that never flushes before ``commit()``: reads see
committed rows plus the unit's own staged changes (merged here, in Python), and no row
or table lock is taken until the commit writes everything in one transaction. So two
units of work never wait for each other in the middle of a block, on any backend.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, Generic, TypeVar, cast

import attrs
import sqlalchemy.exc as sa_exc
from returns.result import Failure, Result, Success
from sqlalchemy import Insert, insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.orm.base import NO_VALUE

from portside.adapters._query import build_query
from portside.adapters._unit import UnitLifecycle, identity_of
from portside.adapters.entities import INT64_MAX, Entities, EntitySpec, copy_value
from portside.adapters.sqlalchemy._constraints import constraint_error
from portside.adapters.sqlalchemy._errors import SQL_ERRORS, map_error
from portside.adapters.sqlalchemy._query import count_statement, list_statement
from portside.domain._errors import Conflict, InvalidRequest, NotFound, ServiceError
from portside.ports._query import Ordering, Where
from portside.ports._uow import Repository

__all__ = ["SqlAlchemyRepository", "SqlAlchemyUnitOfWork"]

E = TypeVar("E")
_Identity = tuple[type, Any]
_FOREIGN = "the entity belongs to another unit of work; get it again in this one"
# Results are immutable: one success value serves every call that has nothing to return.
_DONE: Result[None, ServiceError] = Success(None)
#: The key of the outbox INSERT in ``Entities.statements``.
_OUTBOX_INSERT: Final = "portside outbox insert"


@attrs.define
class SqlAlchemyUnitOfWork(UnitLifecycle):
    """A unit of work over one SQLAlchemy ``Session`` per outermost block.

    ``commit()`` returns ``Failure(Conflict)`` on a version clash, a uniqueness
    violation or a serialization failure, ``Failure(InvalidRequest)`` naming any other
    violated constraint, and ``Failure(Unavailable)`` when the connection was lost.
    The unit is rolled back after every failure and nothing is ever half-written; only
    when the reply to the COMMIT itself is lost may the whole transaction have been
    applied (see ``UnitOfWork.commit``).
    """

    #: a ``sessionmaker``, or any callable giving a new ``Session`` (the async unit's
    #: gives the sync session of a new ``AsyncSession``)
    session_factory: Callable[[], Session] = attrs.field(repr=False)
    entities: Entities = attrs.field(repr=False)
    _session: Session | None = attrs.field(default=None, init=False, repr=False)
    new: dict[_Identity, Any] = attrs.field(factory=dict, init=False, repr=False)
    removed: set[_Identity] = attrs.field(factory=set, init=False, repr=False)
    # SQLAlchemy's identity map is weak: an unchanged object nobody references vanishes
    # from it, and then a second object with its key could be added. Holding every
    # loaded object keeps "one key, one object" true for the whole unit, like the fake.
    loaded: dict[_Identity, Any] = attrs.field(factory=dict, init=False, repr=False)
    # New entities whose key the database or a column default makes at commit.
    pending: list[Any] = attrs.field(factory=list, init=False, repr=False)

    @property
    def dialect(self) -> str:
        """The name of the database's dialect (``sqlite``, ``postgresql``, ``mysql``)."""
        return self.session.get_bind().dialect.name

    @property
    def session(self) -> Session:
        """The session of the open block (``RuntimeError`` outside one)."""
        if self._session is None:
            raise RuntimeError("unit of work used outside its `with` block")
        return self._session

    def _begin(self) -> None:
        session = self.session_factory()
        # Also for factories handed in by the application: writes wait for commit().
        session.autoflush = False
        session.expire_on_commit = False
        self._session = session

    def _commit(self) -> Result[None, ServiceError]:
        session = self.session
        problem = self._staged_problem()
        if problem is not None:
            self._discard()
            return Failure(
                InvalidRequest(service=self.service, operation="commit", message=problem)
            )
        try:
            messages = self.staged_messages
            if messages:
                # After the entities, just before COMMIT: in one transaction with them,
                # and as late as possible so ids follow commit order closely. Core on the
                # session's connection: the ORM's execute adds nothing for a plain table,
                # and a statement built once runs faster than a new insert() each time.
                session.flush()
                now = time.time()
                rows = [
                    {
                        "topic": m.topic,
                        "body": m.body,
                        "headers": json.dumps(m.headers),
                        "dedupe_key": m.dedupe_key,
                        "created_at": now,
                    }
                    for m in messages
                ]
                session.connection().execute(
                    self._outbox_insert(), rows[0] if len(rows) == 1 else rows
                )
            session.commit()
        except sa_exc.IntegrityError as exc:
            self._discard()
            return Failure(constraint_error(exc, self.entities, service=self.service))
        except SQL_ERRORS as exc:
            self._discard()
            return Failure(map_error(exc, service=self.service, operation="commit"))
        for entity in self.pending:  # keys are known now: hold them like loaded ones
            self.loaded[(type(entity), getattr(entity, self.entities.spec(type(entity)).key))] = (
                entity
            )
        self.loaded.update(self.new)  # committed: now held like loaded ones
        self.new.clear()
        self.removed.clear()
        self.pending.clear()
        return Success(None)

    def _outbox_insert(self) -> Insert:
        """The INSERT of outbox rows, built once per registry."""
        statements = self.entities.statements
        statement = statements.get(_OUTBOX_INSERT)
        if statement is None:
            statement = statements[_OUTBOX_INSERT] = insert(self.entities.outbox)
        return cast("Insert", statement)

    def _staged_problem(self) -> str | None:
        """The first staged value no column can store (checked as the fake checks it)."""
        session = self.session
        specs: dict[type, EntitySpec[Any]] = {}
        for entity in session.new:
            kind = type(entity)
            spec = specs.get(kind) or specs.setdefault(kind, self.entities.spec(kind))
            # SQLAlchemy keeps a mapped instance's values in its __dict__ (an unset
            # field is absent, which an insert treats like None).
            problem = spec.row_problem(vars(entity), insert=True, fields=spec.fields)
            if problem is not None:
                return problem
        for entity in session.dirty:
            spec = self.entities.spec(type(entity))
            changed = instance_state(entity).committed_state
            if spec.key in changed and changed[spec.key] != getattr(entity, spec.key):
                return f"the key of a stored {spec.entity_type.__name__} cannot change"
            values = {name: getattr(entity, name, None) for name in changed if name in spec.columns}
            problem = spec.row_problem(values, insert=False)
            if problem is not None:
                return problem
        return None

    def _mark(self) -> _Mark:
        session = self.session
        held = [*session.identity_map.values(), *self.new.values(), *self.pending]
        return _Mark(
            new=dict(self.new),
            pending=list(self.pending),
            removed=set(self.removed),
            values={id(e): (e, self.entities.spec(type(e)).values(e)) for e in held},
        )

    def _restore(self, mark: _Mark) -> None:
        """Undo what was staged since ``mark``, in Python: nothing was flushed yet."""
        session = self.session
        kept = {id(entity) for entity in [*mark.new.values(), *mark.pending]}
        for entity in [*self.new.values(), *self.pending]:
            if id(entity) not in kept:  # added inside the savepoint
                session.expunge(entity)
        for entity in [*mark.new.values(), *mark.pending]:
            if entity not in session:  # a new entity removed inside the savepoint
                session.add(entity)
        for kind, key in self.removed - mark.removed:
            # expunge + add is how SQLAlchemy takes back a delete not flushed yet
            entity = session.identity_map.get(self.entities.spec(kind).identity(key))
            session.expunge(entity)
            session.add(entity)
        for entity in session.identity_map.values():
            if id(entity) not in mark.values:  # loaded inside: back to its loaded values
                for name, value in instance_state(entity).committed_state.items():
                    if value is not NO_VALUE:
                        setattr(entity, name, value)
        for entity, values in mark.values.values():
            for name, value in values.items():
                setattr(entity, name, copy_value(value))
        self.new, self.pending, self.removed = dict(mark.new), list(mark.pending), set(mark.removed)

    def read_failed(self, exc: BaseException) -> None:
        """A read failed: end the database transaction, keep everything the unit staged.

        Nothing is written before ``commit()``, so ending the read transaction loses
        nothing, and PostgreSQL would otherwise refuse every later statement of it
        (``InFailedSqlTransaction``) and lose the unit's good work.
        """
        if (
            not isinstance(exc, sa_exc.DBAPIError)
            or exc.connection_invalidated
            or exc.statement is None  # no connection was opened: nothing to end
        ):
            return
        session = self.session
        driver_error = session.get_bind().dialect.loaded_dbapi.Error
        try:
            session.connection().connection.dbapi_connection.rollback()  # type: ignore[union-attr]
        except (*SQL_ERRORS, driver_error):
            return  # the next statement reports the broken connection

    def _discard(self) -> None:
        self.pending.clear()
        self.new.clear()
        self.removed.clear()
        self.loaded.clear()
        session = self._session
        if session is None:
            return
        # Detach first so objects the caller still holds keep their values instead of
        # being expired (an expired detached object cannot be read at all).
        session.expunge_all()
        try:
            session.rollback()
        except SQL_ERRORS:
            # The connection is gone, and with it the transaction: nothing to undo.
            session.invalidate()

    def _end(self) -> None:
        self.pending.clear()
        self.new.clear()
        self.removed.clear()
        self.loaded.clear()
        session, self._session = self._session, None
        if session is not None:
            # close() detaches every object first (so the caller's keep their values),
            # then ends the transaction.
            try:
                session.close()
            except SQL_ERRORS:
                session.invalidate()

    def _repository(self, entity_type: type[E]) -> Repository[E]:
        return SqlAlchemyRepository(self, self.entities.spec(entity_type), self.generation)


@attrs.frozen
class _Mark:
    """A savepoint: what the unit had staged, and every held object's values."""

    new: dict[_Identity, Any]
    pending: list[Any]
    removed: set[_Identity]
    values: dict[int, tuple[Any, dict[str, Any]]]


@attrs.define
class SqlAlchemyRepository(Repository[E], Generic[E]):
    """Entities of one type inside one ``SqlAlchemyUnitOfWork`` block."""

    _uow: SqlAlchemyUnitOfWork
    _spec: EntitySpec[E]
    _generation: int

    def _error(self, kind: type[ServiceError], operation: str, message: str) -> ServiceError:
        return kind(service=self._uow.service, operation=operation, message=message)

    def _identity_of(self, entity: E, operation: str) -> _Identity | ServiceError:
        return identity_of(self._spec, entity, service=self._uow.service, operation=operation)

    def _loaded(self, key: Any) -> Any:
        return self._uow.session.identity_map.get(self._spec.identity(key))

    def add(self, entity: E) -> Result[None, ServiceError]:
        """Stage ``entity`` for insertion at the next commit.

        ``Failure(InvalidRequest)`` when its key is unset or of the wrong type or it
        belongs to another session, ``Failure(Conflict)`` when this unit already holds
        or removed that key. A key already in the database is ``Conflict`` at commit.
        """
        uow = self._uow
        uow.ensure_open(self._generation)
        identity = self._identity_of(entity, "add")
        if isinstance(identity, ServiceError):
            return Failure(identity)
        key = identity[1]
        if key is None:  # the database or a default makes the key at commit
            if any(held is entity for held in uow.pending):
                return _DONE
        elif uow.removed and identity in uow.removed:
            return Failure(
                self._error(Conflict, "add", "this key was removed in this unit; commit first")
            )
        held = None if key is None else (uow.new.get(identity) or self._loaded(key))
        if held is entity:
            return _DONE
        if held is not None:
            return Failure(
                self._error(Conflict, "add", "another entity with this key is in this unit")
            )
        # An identity key means a row stands behind the object: it was loaded or committed
        # by another unit (SQLAlchemy would silently re-attach it and UPDATE).
        if instance_state(entity).key is not None:
            return Failure(self._error(InvalidRequest, "add", _FOREIGN))
        try:
            uow.session.add(entity)
        except sa_exc.InvalidRequestError as exc:  # attached to another open session
            return Failure(self._error(InvalidRequest, "add", _FOREIGN).caused_by(exc))
        if key is None:
            uow.pending.append(entity)
        else:
            uow.new[identity] = entity
        return _DONE

    def get(self, key: Any) -> Result[E, ServiceError]:
        """The entity with identity ``key``; the same object on every call in this block.

        ``Failure(NotFound)`` when absent, ``Failure(InvalidRequest)`` for a key of the
        wrong type, ``Failure(Unavailable)`` when the database cannot be reached.
        """
        uow = self._uow
        uow.ensure_open(self._generation)
        spec = self._spec
        problem = spec.key_problem(key)
        if problem is not None:
            return Failure(self._error(InvalidRequest, "get", problem))
        identity = (spec.entity_type, key)
        if identity in uow.removed:
            return Failure(self._error(NotFound, "get", f"no {spec.entity_type.__name__}"))
        found = uow.new.get(identity)
        if found is None:
            try:
                found = uow.session.get(spec.entity_type, key)
            except SQL_ERRORS as exc:
                uow.read_failed(exc)
                return Failure(map_error(exc, service=uow.service, operation="get"))
            if found is None:
                return Failure(self._error(NotFound, "get", f"no {spec.entity_type.__name__}"))
            uow.loaded[identity] = found
        return Success(found)

    def list(
        self,
        *,
        where: Where | None = None,
        order_by: Sequence[Ordering | str] | Ordering | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> Result[list[E], ServiceError]:
        """Entities matching ``where``, in ``order_by`` order then by key, paginated.

        The query runs in the database for committed rows (bound parameters, never SQL
        text) and in Python for entities this unit holds, judged by their current
        values; when the unit holds none, the database pages by itself.
        ``Failure(InvalidRequest)`` naming the argument that is wrong, before any SQL;
        ``Failure(Unavailable)``/``Failure(TimedOut)`` when the database cannot answer.
        """
        uow = self._uow
        uow.ensure_open(self._generation)
        spec = self._spec
        query = build_query(spec, where, order_by, limit, offset)
        if isinstance(query, str):
            return Failure(self._error(InvalidRequest, "list", query))
        live, held = self._local()
        cls: Any = spec.entity_type
        fetch_limit, fetch_offset = limit, offset
        if held:
            # Rows this unit holds are judged locally, so fetch enough to replace them.
            fetch = None if limit is None else offset + limit + len(held)
            fetch_limit = fetch if fetch is not None and fetch <= INT64_MAX else None
            fetch_offset = 0
        statement, params = list_statement(
            cls, query, uow.dialect, uow.entities.statements, limit=fetch_limit, offset=fetch_offset
        )
        try:
            found = uow.session.scalars(statement, params)
            stored = [e for e in found if getattr(e, spec.key) not in held]
        except SQL_ERRORS as exc:
            uow.read_failed(exc)
            return Failure(map_error(exc, service=uow.service, operation="list"))
        page = stored
        if held:
            page = [entity for entity in live.values() if query.matches(entity, getattr)]
            page.extend(stored)
            query.sort(page, getattr)
            page = query.page(page)
            # Rows fetched only to fill the page around the unit's own stay unloaded,
            # as the fake loads only what it returns.
            kept = {id(entity) for entity in page}
            for entity in stored:
                if id(entity) not in kept:
                    uow.session.expunge(entity)
        for entity in page:
            uow.loaded[(cls, getattr(entity, spec.key))] = entity
        return Success(page)

    def count(self, *, where: Where | None = None) -> Result[int, ServiceError]:
        """How many entities match ``where``, the unit's own changes included.

        Errors as ``list``.
        """
        uow = self._uow
        uow.ensure_open(self._generation)
        spec = self._spec
        query = build_query(spec, where, None, None, 0)
        if isinstance(query, str):
            return Failure(self._error(InvalidRequest, "count", query))
        live, held = self._local()
        cls: Any = spec.entity_type
        statement, params = count_statement(cls, query, uow.entities.statements, exclude=list(held))
        try:
            stored = uow.session.scalar(statement, params) or 0
        except SQL_ERRORS as exc:
            uow.read_failed(exc)
            return Failure(map_error(exc, service=uow.service, operation="count"))
        return Success(stored + sum(query.matches(entity, getattr) for entity in live.values()))

    def _local(self) -> tuple[dict[Any, Any], set[Any]]:
        """This unit's live objects of the entity by key, and every key it holds."""
        uow = self._uow
        spec = self._spec
        cls = spec.entity_type
        live: dict[Any, Any] = {}
        held: set[Any] = set()
        for state in uow.session.identity_map.all_states():
            entity = state.obj()
            if type(entity) is cls and state.key is not None:
                key = state.key[1][0]
                held.add(key)
                if (cls, key) not in uow.removed:
                    live[key] = entity
        for (kind, key), entity in uow.new.items():
            if kind is cls:
                held.add(key)
                live[key] = entity
        return live, held

    def remove(self, entity: E) -> Result[None, ServiceError]:
        """Stage the removal of ``entity``, which must have been loaded or added here.

        ``Failure(InvalidRequest)`` for an entity this unit does not hold.
        """
        uow = self._uow
        uow.ensure_open(self._generation)
        identity = self._identity_of(entity, "remove")
        if isinstance(identity, ServiceError):
            return Failure(identity)
        if identity[1] is None and any(held is entity for held in uow.pending):
            uow.pending = [held for held in uow.pending if held is not entity]
            uow.session.expunge(entity)
            return Success(None)
        if identity in uow.removed:
            return Success(None)
        if uow.new.get(identity) is entity:
            del uow.new[identity]
            uow.session.expunge(entity)
            return Success(None)
        if self._loaded(identity[1]) is not entity:
            return Failure(
                self._error(
                    InvalidRequest, "remove", "the entity was not loaded or added in this unit"
                )
            )
        uow.session.delete(entity)
        uow.removed.add(identity)
        return Success(None)
