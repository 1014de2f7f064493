"""What a mapped column accepts: the one check every unit of work applies before sending.

The fake and every SQL backend refuse the same field values, with the same message,
before anything is written: a value of the wrong type, a string longer than its
``String(n)``, an integer beyond its column's range, a NUL character or a lone surrogate
in text (PostgreSQL refuses the first, every driver chokes on the second), a non-finite
float, a ``None`` in a NOT NULL column. Messages name the entity and the field and never
quote the value (it may be personal data).

The rules are the intersection of what SQLite, PostgreSQL and MariaDB store faithfully,
so a value accepted here reads back equal on each of them (see ``docs/reference/uow.md``
for the few documented exceptions, such as MariaDB's whole-second ``DATETIME``).
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import math
import uuid
from collections.abc import Callable
from typing import Any, Final

from sqlalchemy import Column
from sqlalchemy import types as sqltypes

__all__ = [
    "Check",
    "describe",
    "missing_parent",
    "query_rule_for",
    "rule_for",
    "still_referenced",
    "taken",
]

_RANGES: Final[tuple[tuple[type, int], ...]] = (
    (sqltypes.SmallInteger, 15),
    (sqltypes.BigInteger, 63),
    (sqltypes.Integer, 31),
)


def describe(value: object) -> str:
    """A value's type for a message; never the value itself."""
    return type(value).__name__


def _bits(kind: sqltypes.TypeEngine[Any]) -> int:
    return next(bits for cls, bits in _RANGES if isinstance(kind, cls))


def _integer(kind: sqltypes.TypeEngine[Any], value: object) -> str | None:
    if type(value) is bool or not isinstance(value, int):
        return f"must be an int, not {describe(value)}"
    bits = _bits(kind)
    if not -(2**bits) <= value < 2**bits:
        return f"is beyond the range of a {bits + 1}-bit integer column"
    return None


def _text(kind: sqltypes.TypeEngine[Any], value: object) -> str | None:
    if not isinstance(value, str):
        return f"must be a str, not {describe(value)}"
    length = getattr(kind, "length", None)
    if length is not None and len(value) > length:
        return f"is longer than its {length} characters"
    if "\x00" in value:
        return "contains a NUL character, which PostgreSQL cannot store"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid Unicode (it contains a lone surrogate)"
    return None


def _enum(kind: sqltypes.TypeEngine[Any], value: object) -> str | None:
    assert isinstance(kind, sqltypes.Enum)
    enum_class = kind.enum_class
    if enum_class is not None:
        if isinstance(value, enum_class):
            return None
        return f"must be a {enum_class.__name__}, not {describe(value)}"
    if isinstance(value, str) and value in kind.enums:
        return None
    return "must be one of the column's enum values"


def _boolean(_kind: sqltypes.TypeEngine[Any], value: object) -> str | None:
    return None if type(value) is bool else f"must be a bool, not {describe(value)}"


def _float(_kind: sqltypes.TypeEngine[Any], value: object) -> str | None:
    if type(value) is bool or not isinstance(value, int | float):
        return f"must be a float, not {describe(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number (SQLite, PostgreSQL and MariaDB differ on NaN)"
    if isinstance(value, int) and abs(value) > 2**53:
        return "is an int too large to store exactly as a float"
    return None


def _numeric(kind: sqltypes.TypeEngine[Any], value: object) -> str | None:
    assert isinstance(kind, sqltypes.Numeric)
    if type(value) is bool or not isinstance(value, int | decimal.Decimal):
        return f"must be a Decimal, not {describe(value)}"
    number = decimal.Decimal(value)
    if not number.is_finite():
        return "must be a finite number"
    if kind.precision is None:
        return None
    scale = kind.scale or 0
    _, digits, exponent = number.normalize().as_tuple()
    assert isinstance(exponent, int)
    if -exponent > scale:
        return f"has more than {scale} decimal places"
    if len(digits) + exponent > kind.precision - scale:
        return f"does not fit NUMERIC({kind.precision}, {scale})"
    return None


def _datetime(kind: sqltypes.TypeEngine[Any], value: object) -> str | None:
    if not isinstance(value, datetime.datetime):
        return f"must be a datetime, not {describe(value)}"
    aware = value.utcoffset() is not None
    wants_aware = bool(getattr(kind, "timezone", False))
    if aware != wants_aware:
        needed = "timezone-aware" if wants_aware else "naive (the column has no time zone)"
        return f"must be a {needed} datetime"
    return None


def _date(_kind: sqltypes.TypeEngine[Any], value: object) -> str | None:
    if isinstance(value, datetime.datetime) or not isinstance(value, datetime.date):
        return f"must be a date, not {describe(value)}"
    return None


def _time(_kind: sqltypes.TypeEngine[Any], value: object) -> str | None:
    if not isinstance(value, datetime.time):
        return f"must be a time, not {describe(value)}"
    if value.tzinfo is not None:
        return "must be a naive time"
    return None


def _interval(_kind: sqltypes.TypeEngine[Any], value: object) -> str | None:
    ok = isinstance(value, datetime.timedelta)
    return None if ok else f"must be a timedelta, not {describe(value)}"


def _binary(kind: sqltypes.TypeEngine[Any], value: object) -> str | None:
    if not isinstance(value, bytes):
        return f"must be bytes, not {describe(value)}"
    length = getattr(kind, "length", None)
    if length is not None and len(value) > length:
        return f"is longer than its {length} bytes"
    return None


def _uuid(kind: sqltypes.TypeEngine[Any], value: object) -> str | None:
    if getattr(kind, "as_uuid", True):
        if not isinstance(value, uuid.UUID):
            return f"must be a UUID, not {describe(value)}"
        raw = value.bytes
        # MariaDB's UUID type (10.7+) refuses a version nibble of 8-f together with a
        # variant byte of 0x01-0x80 (measured over every combination); uuid4 is never one.
        if raw[6] >> 4 >= 8 and 0 < raw[8] <= 0x80:
            return "is a UUID MariaDB's UUID type refuses (version 8-f with variant byte 01-80)"
        return None
    if not isinstance(value, str):
        return f"must be a str holding a UUID, not {describe(value)}"
    try:
        uuid.UUID(value)
    except ValueError:
        return "must be a str holding a UUID"
    return None


def _json(_kind: sqltypes.TypeEngine[Any], value: object) -> str | None:
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return "must be JSON data (dicts with str keys, lists, str, finite numbers, bool, None)"
    if "\\u0000" in text:
        return "contains a NUL character, which PostgreSQL cannot store"
    if _has_wide_int(value):
        # The fake stores JSON through orjson (64-bit integers); SQLite and PostgreSQL
        # would keep more, MariaDB rounds: refused alike everywhere.
        return "holds an integer beyond the signed 64-bit range"
    if not text.isascii():
        # A lone surrogate is valid in a Python str and as a \ud800 escape in JSON, but
        # no database stores it alike: MariaDB refuses it, PostgreSQL and SQLite keep it.
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid Unicode (it contains a lone surrogate)"
    return None


def _has_wide_int(value: object) -> bool:
    """Whether a JSON value holds an integer outside the signed 64-bit range."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, int) and not isinstance(item, bool):
            if not -(2**63) <= item < 2**63:
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def _python_type(kind: sqltypes.TypeEngine[Any], value: object) -> str | None:
    """Types portside has no rule for: at least the Python type the column declares."""
    try:
        expected = kind.python_type
    except NotImplementedError:
        return None
    if isinstance(value, expected) and not (type(value) is bool and expected is not bool):
        return None
    return f"must be a {expected.__name__}, not {describe(value)}"


_TypeRule = Callable[[sqltypes.TypeEngine[Any], object], str | None]
#: The check of one column's values, bound to its type: ``None`` when storable.
Check = Callable[[object], str | None]
# Most specific first: Enum is a String, Float a Numeric, DateTime unrelated to Date.
_RULES: Final[tuple[tuple[type, _TypeRule], ...]] = (
    (sqltypes.Boolean, _boolean),
    (sqltypes.Integer, _integer),
    (sqltypes.Enum, _enum),
    (sqltypes.String, _text),
    (sqltypes.Float, _float),
    (sqltypes.Numeric, _numeric),
    (sqltypes.DateTime, _datetime),
    (sqltypes.Date, _date),
    (sqltypes.Time, _time),
    (sqltypes.Interval, _interval),
    (sqltypes._Binary, _binary),
    (sqltypes.Uuid, _uuid),
    (sqltypes.JSON, _json),
)


def _type_rule(column: Column[Any]) -> _TypeRule:
    kind = column.type
    if isinstance(kind, sqltypes.TypeDecorator):
        # The decorator converts the application's values; only it knows their type.
        return _python_type
    for cls, rule in _RULES:
        if isinstance(kind, cls):
            return rule
    return _python_type


def _bound(kind: sqltypes.TypeEngine[Any], rule: _TypeRule) -> Check:
    """``rule`` bound to ``kind``, refusing enum members outside an ``Enum`` column."""
    plain = rule is not _enum

    def check(value: object) -> str | None:
        if plain and isinstance(value, enum.Enum):
            return f"must not be an enum member ({describe(value)}) in a {kind} column"
        return rule(kind, value)

    # The two commonest columns answer their commonest values without the general
    # walk (the same rule: an exact int in range, a short ASCII str without NUL).
    if rule is _integer:
        low, high = -(2 ** _bits(kind)), 2 ** _bits(kind)

        def integer(value: object) -> str | None:
            if type(value) is int and low <= value < high:
                return None
            return check(value)

        return integer
    if rule is _text:
        length = getattr(kind, "length", None) or 2**62

        def text(value: object) -> str | None:
            if type(value) is str and len(value) <= length and value.isascii():
                return None if "\x00" not in value else check(value)
            return check(value)

        return text
    return check


def rule_for(column: Column[Any]) -> Check:
    """The check of ``column``'s values, decided once per column."""
    return _bound(column.type, _type_rule(column))


def query_rule_for(column: Column[Any]) -> Check:
    """The check of a value compared with ``column``: as stored, but of any length.

    A string longer than the column matches nothing; it is not an error.
    """
    rule = _type_rule(column)
    if rule is _text:
        return _bound(sqltypes.String(), _text)
    if rule is _binary:
        return _bound(sqltypes.LargeBinary(), _binary)
    return _bound(column.type, rule)


# The messages of constraint violations: the fake and the SQL error map say the same.


def taken(entity: str, fields: tuple[str, ...]) -> str:
    """A unique value (or key) another row already holds."""
    return f"{entity}.{', '.join(fields)}: another row already has this value"


def missing_parent(entity: str, fields: tuple[str, ...]) -> str:
    """A foreign key naming a row that does not exist."""
    return f"{entity}.{', '.join(fields)} refers to a row that does not exist"


def still_referenced(parent: str, child: str, fields: tuple[str, ...]) -> str:
    """A parent row removed (or its key changed) while children still point at it."""
    return f"{parent} is still referred to by {child}.{', '.join(fields)}"
