"""Declaring entities once for both worlds: the in-memory fake and SQLAlchemy.

Entities are the application's own classes. An ``Entities`` registry maps each one to a
table (imperatively for plain or attrs classes, or by reading a declarative model) and
records what every unit of work needs to know about it: the identity key, the persistent
fields and the optional version column used for optimistic concurrency.

attrs classes must be declared with ``slots=False`` (SQLAlchemy keeps its state in the
instance ``__dict__``), exactly as SQLAlchemy's own documentation asks.
"""

from __future__ import annotations

import copy
import datetime
import decimal
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final, Generic, TypeVar

import attrs
from sqlalchemy import Column, ForeignKeyConstraint, MetaData, Table, UniqueConstraint
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapper, registry
from sqlalchemy.orm.instrumentation import ClassManager
from sqlalchemy.schema import sort_tables

from portside.adapters._columns import Check, query_rule_for, rule_for
from portside.adapters._outbox_table import outbox_table

__all__ = ["INT64_MAX", "Entities", "EntitySpec", "Reference", "copy_value", "out_of_range"]

#: Databases store integers in at most 64 bits; larger Python ints are refused up front.
INT64_MAX: Final = 2**63 - 1


def out_of_range(value: object) -> bool:
    """Whether ``value`` is an int no 64-bit integer column can hold."""
    return isinstance(value, int) and not -INT64_MAX - 1 <= value <= INT64_MAX


E = TypeVar("E")

# Values of these types cannot be mutated in place, so a snapshot may share them.
_IMMUTABLE: Final = frozenset(
    {
        int,
        str,
        float,
        bool,
        bytes,
        type(None),
        decimal.Decimal,
        datetime.datetime,
        datetime.date,
        datetime.time,
        datetime.timedelta,
        uuid.UUID,
    }
)


def copy_value(value: Any) -> Any:
    """``value`` itself when immutable, else a deep copy (JSON columns, lists)."""
    return value if type(value) in _IMMUTABLE else copy.deepcopy(value)


@attrs.frozen
class Reference:
    """A foreign key of an entity: its fields and the parent table's columns they name."""

    name: str | None
    fields: tuple[str, ...]
    parent: Table
    parent_columns: tuple[str, ...]


@attrs.frozen(eq=False)
class EntitySpec(Generic[E]):
    """What both unit-of-work implementations know about one entity class.

    ``key`` and ``version`` are attribute names (not column names); ``fields`` are every
    persistent attribute, the key and the version included.
    """

    entity_type: type[E]
    key: str
    key_type: type
    fields: tuple[str, ...]
    version: str | None
    table: Table
    mapper: Mapper[E] = attrs.field(repr=False)
    identity_class: type = attrs.field(repr=False)
    _manager: ClassManager[E] = attrs.field(repr=False, alias="manager")
    #: attribute name -> mapped column
    columns: dict[str, Column[Any]] = attrs.field(factory=dict, repr=False)
    #: unique constraints other than the key, as attribute-name tuples
    uniques: tuple[tuple[str, ...], ...] = ()
    references: tuple[Reference, ...] = ()
    #: whether the database (autoincrement) or a column default makes the key
    generated_key: bool = False
    #: field -> the check of a stored value / of a value compared in a query
    _checks: dict[str, Check] = attrs.field(factory=dict, repr=False, alias="checks")
    _query_checks: dict[str, Check] = attrs.field(factory=dict, repr=False, alias="query_checks")
    # fields whose column refuses NULL
    _required: frozenset[str] = attrs.field(default=frozenset(), repr=False, alias="required")
    # Fields whose None at insert is filled in by a default (SQLAlchemy leaves a None
    # out of the INSERT, so the column default or the version counter applies).
    _filled: frozenset[str] = attrs.field(default=frozenset(), repr=False, alias="filled")

    def key_problem(self, key: object) -> str | None:
        """Why ``key`` cannot identify this entity (wrong type), or ``None`` when it can."""
        # bool is an int subclass, but True is never meant as a row id.
        if isinstance(key, self.key_type) and not (
            isinstance(key, bool) and self.key_type is not bool
        ):
            if out_of_range(key):
                return "the key is beyond the 64-bit integer range"
            problem = self.value_problem(self.key, key)
            return None if problem is None else f"the key {problem}"
        return (
            f"a {self.entity_type.__name__} key must be {self.key_type.__name__}, "
            f"not {type(key).__name__}"
        )

    def attr_of(self, column_name: str) -> str:
        """The attribute that maps the column named ``column_name``."""
        for name, column in self.columns.items():
            if column.name == column_name:
                return name
        return column_name

    def value_problem(self, name: str, value: object) -> str | None:
        """Why the column of field ``name`` cannot hold ``value`` (not naming them)."""
        check = self._checks.get(name)
        return None if check is None or value is None else check(value)

    def query_problem(self, name: str, value: object) -> str | None:
        """Why ``value`` cannot be compared with field ``name`` in a query."""
        check = self._query_checks.get(name)
        return None if check is None or value is None else check(value)

    def field_problem(self, name: str, value: object, *, insert: bool) -> str | None:
        """``"Entity.field ..."`` when the value cannot be stored, else ``None``."""
        if value is None:
            if name in self._required and not (insert and name in self._filled):
                return f"{self.entity_type.__name__}.{name} must not be null"
            return None
        problem = self.value_problem(name, value)
        return None if problem is None else f"{self.entity_type.__name__}.{name} {problem}"

    def row_problem(
        self, values: Mapping[str, Any], *, insert: bool, fields: Iterable[str] | None = None
    ) -> str | None:
        """The first field of ``values`` its column cannot store, as ``field_problem``.

        ``fields`` (default: those of ``values``) are the ones checked; a field missing
        from ``values`` is ``None``.
        """
        checks = self._checks
        for name in values if fields is None else fields:
            check = checks.get(name)
            if check is None:
                continue
            value = values.get(name)
            if value is None or check(value) is not None:
                problem = self.field_problem(name, value, insert=insert)
                if problem is not None:
                    return problem
        return None

    def default(self, name: str) -> tuple[bool, Any]:
        """``(True, value)`` of the Python-side column default of ``name``, if it has one."""
        column = self.columns.get(name)
        default = None if column is None else column.default
        if default is None or not (default.is_scalar or default.is_callable):
            return False, None
        arg: Any = default.arg  # type: ignore[attr-defined]
        return True, (arg(None) if default.is_callable else arg)

    def identity(self, key: Any) -> tuple[type, tuple[Any, ...], None]:
        """The SQLAlchemy identity-map key of the entity with identity ``key``."""
        return (self.identity_class, (key,), None)

    def values(self, entity: E) -> dict[str, Any]:
        """A detached copy of every persistent field of ``entity``."""
        return {name: copy_value(getattr(entity, name, None)) for name in self.fields}

    def build(self, values: dict[str, Any]) -> E:
        """A new transient instance holding copies of ``values``.

        Built the way SQLAlchemy loads rows: without calling ``__init__``, so validators
        and defaults of the user's constructor do not run twice.
        """
        entity = self._manager.new_instance()
        for name, value in values.items():
            setattr(entity, name, copy_value(value))
        return entity


@attrs.define
class Entities:
    """The registry of entity classes a unit of work can store.

    Declare every entity once, then give the same registry to ``MemoryDatabase`` (the
    fake) and to ``portside.adapters.sqlalchemy.Database``::

        entities = Entities()
        entities.map(Order, orders_table, version="version")
        entities.declared(Customer)   # a DeclarativeBase model

    Entities need a single-column identity key assigned by the application; the
    optional version column is SQLAlchemy's ``version_id_col``: 1 on insert, +1 on
    every update, and an update or delete of a row whose version moved on is
    ``Conflict``.
    """

    metadata: MetaData = attrs.field(factory=MetaData)
    orm_registry: registry = attrs.field(
        default=attrs.Factory(lambda self: registry(metadata=self.metadata), takes_self=True),
        repr=False,
    )
    _specs: dict[type, EntitySpec[Any]] = attrs.field(factory=dict, init=False, repr=False)
    _order: dict[Table, int] | None = attrs.field(default=None, init=False, repr=False)
    #: statements adapters build once per query shape (see ``sqlalchemy._query``)
    statements: dict[object, Any] = attrs.field(factory=dict, init=False, repr=False)
    #: the outbox table ``uow.publish`` writes to, created by ``create_all`` with the rest
    outbox: Table = attrs.field(
        default=attrs.Factory(lambda self: outbox_table(self.metadata), takes_self=True),
        init=False,
        repr=False,
    )

    def map(
        self, entity_type: type[E], table: Table, *, version: str | None = None
    ) -> EntitySpec[E]:
        """Map a plain or attrs class to ``table`` (``registry.map_imperatively``).

        ``version`` names the integer column used for optimistic concurrency.
        Raises ``TypeError`` for a slotted class and ``ValueError`` when the table has no
        single-column primary key or ``version`` is not one of its columns.
        """
        if "__dict__" not in dir(entity_type) and hasattr(entity_type, "__slots__"):
            raise TypeError(
                f"{entity_type.__name__} uses __slots__; declare attrs classes with slots=False"
            )
        kw: dict[str, Any] = {}
        if version is not None:
            if version not in table.c:
                raise ValueError(f"{table.name} has no column {version!r} to use as version")
            kw["version_id_col"] = table.c[version]
        mapper = self.orm_registry.map_imperatively(entity_type, table, **kw)
        return self._register(mapper)

    def declared(self, model: type[E]) -> EntitySpec[E]:
        """Register a declarative model (its ``__mapper_args__`` may set ``version_id_col``).

        Raises ``TypeError`` when ``model`` is not mapped.
        """
        from sqlalchemy import inspect
        from sqlalchemy.exc import NoInspectionAvailable

        try:
            mapper: Mapper[E] = inspect(model)
        except NoInspectionAvailable as exc:
            raise TypeError(f"{model.__name__} is not a mapped class") from exc
        return self._register(mapper)

    def _register(self, mapper: Mapper[E]) -> EntitySpec[E]:
        cls = mapper.class_
        if len(mapper.primary_key) != 1:
            raise ValueError(f"{cls.__name__} needs a single-column primary key")
        table = mapper.local_table
        if not isinstance(table, Table):
            raise TypeError(f"{cls.__name__} must be mapped to a Table")
        pk = mapper.primary_key[0]
        key = mapper.get_property_by_column(pk).key
        try:
            key_type: type = pk.type.python_type
        except NotImplementedError:
            key_type = object
        version: str | None = None
        if mapper.version_id_col is not None:
            version = mapper.get_property_by_column(mapper.version_id_col).key
        fields = tuple(prop.key for prop in mapper.column_attrs)
        identity_class = mapper.identity_key_from_primary_key((None,))[0]
        columns: dict[str, Column[Any]] = {}
        for prop in mapper.column_attrs:
            column = prop.columns[0]
            if isinstance(column, Column):
                columns[prop.key] = column
        attr_of = {column.name: name for name, column in columns.items()}
        generated = table.autoincrement_column is pk or (
            isinstance(pk, Column) and pk.default is not None
        )
        filled = {
            name
            for name, column in columns.items()
            if column.default is not None or column.server_default is not None
        }
        if version is not None:
            filled.add(version)
        if generated:
            filled.add(key)
        spec = EntitySpec(
            entity_type=cls,
            key=key,
            key_type=key_type,
            fields=fields,
            version=version,
            table=table,
            mapper=mapper,
            identity_class=identity_class,
            manager=mapper.class_manager,
            columns=columns,
            uniques=_uniques(table, attr_of),
            references=_references(table, attr_of),
            generated_key=generated,
            checks={name: rule_for(column) for name, column in columns.items()},
            query_checks={name: query_rule_for(column) for name, column in columns.items()},
            required=frozenset(name for name, column in columns.items() if not column.nullable),
            filled=frozenset(filled),
        )
        self._specs[cls] = spec
        self._order = None
        self._link(spec)
        return spec

    def _link(self, spec: EntitySpec[Any]) -> None:
        """Tell SQLAlchemy's flush about foreign keys between registered entities.

        Without a ``relationship()`` SQLAlchemy orders a flush by class name, so a child
        could be inserted before its parent (or a parent deleted before its child). A
        private many-to-one relationship per foreign key, never loaded and never set,
        gives its unit of work the dependency and nothing else.
        """
        from sqlalchemy import and_
        from sqlalchemy.orm import relationship

        pairs = [(spec, ref) for ref in spec.references]
        pairs += [
            (child, ref)
            for child in self._specs.values()
            if child is not spec
            for ref in child.references
            if ref.parent is spec.table
        ]
        for child, reference in pairs:
            parent = self.spec_of_table(reference.parent)
            if parent is None:
                continue
            name = f"_portside_ref_{'_'.join(reference.fields)}"
            columns = [child.columns[field] for field in reference.fields]
            if name in child.mapper.attrs or _related(child, parent, columns):
                continue
            targets = [reference.parent.c[column] for column in reference.parent_columns]
            child.mapper.add_property(
                name,
                relationship(
                    parent.mapper,
                    primaryjoin=and_(*(c == t for c, t in zip(columns, targets, strict=True))),
                    foreign_keys=columns,
                    remote_side=targets,
                    lazy="raise",
                    cascade="",
                ),
            )

    def table_order(self) -> dict[Table, int]:
        """Each registered table's rank in foreign-key order (parents before children)."""
        if self._order is None:
            tables = [spec.table for spec in self._specs.values()]
            self._order = {table: rank for rank, table in enumerate(sort_tables(tables))}
        return self._order

    def spec_of_table(self, table: Table) -> EntitySpec[Any] | None:
        """The registered entity stored in ``table``, if any."""
        for spec in self._specs.values():
            if spec.table is table:
                return spec
        return None

    def spec(self, entity_type: type[E]) -> EntitySpec[E]:
        """The spec of ``entity_type``; ``TypeError`` when it was never registered."""
        try:
            return self._specs[entity_type]
        except KeyError:
            raise TypeError(
                f"{getattr(entity_type, '__name__', entity_type)!r} is not a registered entity"
            ) from None

    def spec_of_table_named(self, name: str) -> EntitySpec[Any] | None:
        """The registered entity stored in the table called ``name``, if any."""
        for spec in self._specs.values():
            if spec.table.name == name:
                return spec
        return None

    def __iter__(self) -> Iterator[EntitySpec[Any]]:
        return iter(self._specs.values())

    def create_all(self, engine: Engine | Connection) -> None:
        """Create the registered tables that do not exist yet (on an engine or a connection)."""
        for metadata, tables in self._tables_by_metadata().items():
            metadata.create_all(engine, tables=tables)

    def drop_all(self, engine: Engine | Connection) -> None:
        """Drop the registered tables (tests and throwaway databases)."""
        for metadata, tables in self._tables_by_metadata().items():
            metadata.drop_all(engine, tables=tables)

    def _tables_by_metadata(self) -> dict[MetaData, list[Table]]:
        # Declarative models carry their own MetaData; imperative ones share ours.
        grouped: dict[MetaData, list[Table]] = {self.outbox.metadata: [self.outbox]}
        for spec in self._specs.values():
            grouped.setdefault(spec.table.metadata, []).append(spec.table)
        return grouped

    def dispose(self) -> None:
        """Forget the class mappings (lets a test map fresh classes again)."""
        self.orm_registry.dispose()
        self._specs.clear()
        self._order = None
        self.statements.clear()


def _related(child: EntitySpec[Any], parent: EntitySpec[Any], columns: list[Column[Any]]) -> bool:
    """Whether the application's own ``relationship()`` already writes these columns.

    Such a relationship orders the flush already; a second one over the same columns
    would only make SQLAlchemy warn that the two overlap.
    """
    wanted = set(columns)
    for mapper, other in ((child.mapper, parent.mapper), (parent.mapper, child.mapper)):
        for relation in mapper.relationships:
            if relation.mapper is other and wanted & {
                *relation.local_columns,
                *relation.remote_side,
            }:
                return True
    return False


def _uniques(table: Table, attr_of: dict[str, str]) -> tuple[tuple[str, ...], ...]:
    """Unique constraints and unique indexes of ``table`` other than its primary key."""
    found: list[tuple[str, ...]] = []
    groups = [c.columns for c in table.constraints if isinstance(c, UniqueConstraint)]
    groups += [index.columns for index in table.indexes if index.unique]
    for columns in groups:
        names = tuple(attr_of[column.name] for column in columns if column.name in attr_of)
        if names and names not in found:
            found.append(names)
    return tuple(found)


def _references(table: Table, attr_of: dict[str, str]) -> tuple[Reference, ...]:
    found: list[Reference] = []
    for constraint in table.constraints:
        if not isinstance(constraint, ForeignKeyConstraint):
            continue
        parent = constraint.referred_table
        found.append(
            Reference(
                name=constraint.name if isinstance(constraint.name, str) else None,
                fields=tuple(attr_of[column.name] for column in constraint.columns),
                parent=parent,
                parent_columns=tuple(element.column.name for element in constraint.elements),
            )
        )
    return tuple(found)
