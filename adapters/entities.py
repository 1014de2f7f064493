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
from collections.abc import Iterator
from typing import Any, Final, Generic, TypeVar

import attrs
from sqlalchemy import MetaData, Table
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapper, registry
from sqlalchemy.orm.instrumentation import ClassManager

__all__ = ["INT64_MAX", "Entities", "EntitySpec", "copy_value", "out_of_range"]

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

    def key_problem(self, key: object) -> str | None:
        """Why ``key`` cannot identify this entity (wrong type), or ``None`` when it can."""
        # bool is an int subclass, but True is never meant as a row id.
        if isinstance(key, self.key_type) and not (
            isinstance(key, bool) and self.key_type is not bool
        ):
            return "the key is beyond the 64-bit integer range" if out_of_range(key) else None
        return (
            f"a {self.entity_type.__name__} key must be {self.key_type.__name__}, "
            f"not {type(key).__name__}"
        )

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
        )
        self._specs[cls] = spec
        return spec

    def spec(self, entity_type: type[E]) -> EntitySpec[E]:
        """The spec of ``entity_type``; ``TypeError`` when it was never registered."""
        try:
            return self._specs[entity_type]
        except KeyError:
            raise TypeError(
                f"{getattr(entity_type, '__name__', entity_type)!r} is not a registered entity"
            ) from None

    def __iter__(self) -> Iterator[EntitySpec[Any]]:
        return iter(self._specs.values())

    def create_all(self, engine: Engine) -> None:
        """Create the registered tables that do not exist yet."""
        for metadata, tables in self._tables_by_metadata().items():
            metadata.create_all(engine, tables=tables)

    def drop_all(self, engine: Engine) -> None:
        """Drop the registered tables (tests and throwaway databases)."""
        for metadata, tables in self._tables_by_metadata().items():
            metadata.drop_all(engine, tables=tables)

    def _tables_by_metadata(self) -> dict[MetaData, list[Table]]:
        # Declarative models carry their own MetaData; imperative ones share ours.
        grouped: dict[MetaData, list[Table]] = {}
        for spec in self._specs.values():
            grouped.setdefault(spec.table.metadata, []).append(spec.table)
        return grouped

    def dispose(self) -> None:
        """Forget the class mappings (lets a test map fresh classes again)."""
        self.orm_registry.dispose()
        self._specs.clear()
