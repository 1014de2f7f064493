"""Constraint violations a database reported, said the way the fake says them.

The fake checks unique values and foreign keys itself; the databases check them too and
report them each in their own words (PostgreSQL by constraint name and a detail line,
MariaDB by key name inside its message, SQLite by ``table.column`` or not at all). This
module reads the names of the columns out of those reports, never the values, and
builds the same message the fake gives (``portside.adapters._columns``). The failed
statement (parameterised SQL, no values) says which table was being written.
"""

from __future__ import annotations

import re
from typing import Any, Final, Literal

import sqlalchemy.exc as sa_exc
from sqlalchemy import ForeignKeyConstraint, Table, UniqueConstraint

from portside.adapters._columns import missing_parent, still_referenced, taken
from portside.adapters.entities import Entities, EntitySpec
from portside.domain._errors import Conflict, InvalidRequest, ServiceError

__all__ = ["Phase", "constraint_error"]

Phase = Literal["save", "delete"]

_PG_KEY: Final = re.compile(r"Key \(([^)]*)\)=")
_PG_TABLE: Final = re.compile(r'table "([^"]+)"')
_MYSQL_KEY: Final = re.compile(r"for key '(?:[^'.]*\.)?([^']+)'")
_MYSQL_FK: Final = re.compile(r"`([^`]+)`, CONSTRAINT `([^`]+)` FOREIGN KEY \(([^)]*)\)")
_SQLITE: Final = re.compile(r"(UNIQUE|NOT NULL|CHECK|FOREIGN KEY) constraint failed(?:: (.+))?")
_MYSQL_NULL: Final = re.compile(r"Column '([^']+)' cannot be null")


def _columns(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip('`"').split(".")[-1] for part in text.split(",") if part)


def _named(table: Table, name: str | None) -> tuple[str, ...] | None:
    """Columns of the unique constraint, index or primary key of ``table`` called ``name``."""
    if name is None:
        return None
    if name in {"PRIMARY", f"{table.name}_pkey"}:
        return tuple(column.name for column in table.primary_key.columns)
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint | ForeignKeyConstraint) and (
            constraint.name == name
        ):
            return tuple(column.name for column in constraint.columns)
    for index in table.indexes:
        if index.name == name:
            return tuple(column.name for column in index.columns)
    if name in table.c:  # MariaDB names an unnamed unique index after its column
        return (name,)
    return None


def _kind(exc: sa_exc.IntegrityError) -> tuple[str, str | None, str | None]:
    """(``unique``/``fk``/``null``/``check``, constraint or column name, SQLite's detail)."""
    orig: Any = exc.orig
    state = getattr(orig, "sqlstate", None)
    diag = getattr(orig, "diag", None)  # psycopg; PyMySQL has a sqlstate too, a generic one
    if isinstance(state, str) and diag is not None:
        kinds = {"23505": "unique", "23503": "fk", "23502": "null", "23514": "check"}
        name = getattr(diag, "constraint_name", None) or getattr(diag, "column_name", None)
        return kinds.get(state, "check"), name, None
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        code = args[0]
        kinds_by_code = {1062: "unique", 1586: "unique", 1451: "fk", 1452: "fk", 1048: "null"}
        return kinds_by_code.get(code, "check"), None, None
    match = _SQLITE.search(str(orig))
    if match is None:
        return "check", None, None
    kinds_sqlite = {"UNIQUE": "unique", "FOREIGN KEY": "fk", "NOT NULL": "null"}
    return kinds_sqlite.get(match.group(1), "check"), None, match.group(2)


_STATEMENT: Final = re.compile(
    r"^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+[`\"]?([^`\"\s(]+)", re.IGNORECASE
)


def constraint_error(
    exc: sa_exc.IntegrityError, entities: Entities, *, service: str
) -> ServiceError:
    """The taxonomy error for a constraint ``exc`` reported while writing an entity."""
    statement = _STATEMENT.match(exc.statement or "")
    spec = None if statement is None else entities.spec_of_table_named(statement.group(2))
    if spec is None:
        from portside.adapters.sqlalchemy._errors import map_error

        return map_error(exc, service=service, operation="commit")
    phase: Phase = (
        "delete" if statement and statement.group(1).upper().startswith("DELETE") else "save"
    )
    kind, name, detail = _kind(exc)
    text = str(exc.orig)
    entity = spec.entity_type.__name__
    table = spec.table
    error: ServiceError
    if kind == "unique":
        columns = _named(table, name)
        if columns is None:
            found = _PG_KEY.search(text) or _MYSQL_KEY.search(text)
            columns = _columns(found.group(1) if found else detail or "")
            columns = _named(table, columns[0]) if len(columns) == 1 else columns
        fields = tuple(spec.attr_of(column) for column in columns or ())
        error = Conflict(service=service, operation="commit", message=taken(entity, fields))
    elif kind == "fk":
        error = _foreign_key(spec, phase, entities, name, text, service)
    elif kind == "null":
        found_null = _MYSQL_NULL.search(text)
        column = name or (found_null.group(1) if found_null else (detail or "?"))
        field = spec.attr_of(column.split(".")[-1])
        error = InvalidRequest(
            service=service, operation="commit", message=f"{entity}.{field} must not be null"
        )
    else:
        error = InvalidRequest(
            service=service,
            operation="commit",
            message=f"{entity}: constraint {name or detail or 'unnamed'} violated",
        )
    return error.caused_by(exc)


def _foreign_key(
    spec: EntitySpec[Any],
    phase: Phase,
    entities: Entities,
    name: str | None,
    text: str,
    service: str,
) -> ServiceError:
    """A missing parent (writing a child) or a parent still referred to (removing it)."""
    entity = spec.entity_type.__name__
    mysql = _MYSQL_FK.search(text)
    if mysql is not None:
        name = mysql.group(2)
    # Which child table owns the violated constraint: by name, else by the report.
    owner: EntitySpec[Any] | None = None
    reference_fields: tuple[str, ...] = ()
    for candidate in entities:
        for constraint in candidate.table.constraints:
            if isinstance(constraint, ForeignKeyConstraint) and name and constraint.name == name:
                owner = candidate
                reference_fields = tuple(
                    candidate.attr_of(column.name) for column in constraint.columns
                )
    if owner is None and mysql is not None:
        owner = entities.spec_of_table_named(mysql.group(1).split("`")[-1])
        reference_fields = tuple(owner.attr_of(c) if owner else c for c in _columns(mysql.group(3)))
    parent_side = phase == "delete" or (owner is not None and owner is not spec)
    if not parent_side:
        if not reference_fields:
            found = _PG_KEY.search(text)
            if found:
                reference_fields = tuple(spec.attr_of(c) for c in _columns(found.group(1)))
            elif len(spec.references) == 1:
                reference_fields = spec.references[0].fields
            else:
                reference_fields = tuple(f for ref in spec.references for f in ref.fields)
        return InvalidRequest(
            service=service, operation="commit", message=missing_parent(entity, reference_fields)
        )
    if owner is None:
        pg_table = _PG_TABLE.findall(text)
        owner = entities.spec_of_table_named(pg_table[-1]) if len(pg_table) > 1 else None
    if owner is None:
        children = [
            (child, ref)
            for child in entities
            for ref in child.references
            if ref.parent is spec.table
        ]
        if len(children) == 1:
            owner, reference = children[0]
            reference_fields = reference.fields
    if owner is not None and not reference_fields:
        refs = [ref for ref in owner.references if ref.parent is spec.table]
        reference_fields = refs[0].fields if len(refs) == 1 else ()
    child = owner.entity_type.__name__ if owner is not None else "another table"
    return InvalidRequest(
        service=service,
        operation="commit",
        message=still_referenced(entity, child, reference_fields or ("?",)),
    )
