"""What every cache adapter accepts: the key, value, TTL and namespace rules, in one place.

The fake and the real adapters call these same checks before touching any state, so a
bad request is the same ``Failure(InvalidRequest)`` everywhere and nothing is written.
The checks are on the hot path of every call: the common case (a short printable ASCII
key, ``bytes``, no TTL) costs a few attribute lookups.

Any argument of any type is checked without raising: a wrong type, a number beyond the
float range (``ttl=10**400``), a batch that is not a collection of the right kind, or
an absurd size is an ``InvalidRequest`` naming the argument. Sizes are read before
anything is copied: a batch longer than ``MAX_BATCH`` is refused from its length (or
after reading one item past the limit, for a one-shot iterator).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any, Final

from portside.domain._errors import InvalidRequest

__all__ = [
    "MAX_BATCH",
    "MAX_INCR",
    "MAX_KEY_BYTES",
    "MAX_TTL",
    "MAX_VALUE_BYTES",
    "MIN_INCR",
    "check_by",
    "check_items",
    "check_key",
    "check_keys",
    "check_lock",
    "check_namespace",
    "check_ttl",
    "check_value",
    "parse_counter",
]

#: Longest key in UTF-8 bytes, before the namespace prefix.
MAX_KEY_BYTES: Final = 1024
#: Largest value Redis can hold in one string.
MAX_VALUE_BYTES: Final = 512 * 1024 * 1024
#: Longest TTL in seconds (about 68 years); larger numbers are almost surely unit bugs.
MAX_TTL: Final = float(2**31 - 1)
#: Most keys (``get_many``) or items (``set_many``) in one batch.
MAX_BATCH: Final = 1_000_000
#: The range of a counter, as Redis stores it (signed 64-bit).
MIN_INCR: Final = -(2**63)
#: The largest counter value (signed 64-bit).
MAX_INCR: Final = 2**63 - 1

# Letters, digits and ``_ . : -``. No ``|`` (the separator between namespace and key,
# so no namespace is a prefix of another's keys) and no glob characters (``clear()``
# matches ``<namespace>|*``).
_NAMESPACE: Final = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
# Redis's own notion of an integer value (string2ll): no sign on zero, no leading
# zeros, no spaces, no plus sign.
_COUNTER: Final = re.compile(rb"0|-?[1-9][0-9]{0,18}")


def _invalid(operation: str, message: str) -> InvalidRequest:
    return InvalidRequest(service="cache", operation=operation, message=message)


def check_namespace(namespace: object) -> str:
    """``namespace`` if valid; raises ``ValueError`` (a configuration error) otherwise."""
    if not isinstance(namespace, str) or _NAMESPACE.fullmatch(namespace) is None:
        raise ValueError(
            "a cache namespace is 1-128 characters of letters, digits and '_.:-', "
            f"got {namespace!r}"
        )
    return namespace


def check_key(key: object, operation: str) -> InvalidRequest | None:
    """``None`` for a valid key, else the error naming what is wrong with it."""
    # Printable ASCII (isprintable rejects the ASCII control range) is one byte per
    # character, so its length is its UTF-8 size; anything else is checked per character.
    if type(key) is str and key.isascii() and key.isprintable() and 0 < len(key) <= MAX_KEY_BYTES:
        return None
    return _slow_key(key, operation)


def _slow_key(key: object, operation: str) -> InvalidRequest | None:
    if not isinstance(key, str):
        return _invalid(operation, f"a cache key must be str, got {type(key).__name__}")
    if not key:
        return _invalid(operation, "a cache key must not be empty")
    for char in key:
        category = unicodedata.category(char)
        if category == "Cc":
            return _invalid(operation, f"a cache key must not contain control character {char!r}")
        if category == "Cs":
            return _invalid(operation, "a cache key must be valid Unicode (lone surrogate)")
    size = len(key.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        return _invalid(
            operation, f"a cache key is at most {MAX_KEY_BYTES} UTF-8 bytes, got {size}"
        )
    return None


def check_value(value: object, operation: str) -> InvalidRequest | None:
    """``None`` for ``bytes`` within Redis's size limit, else the error."""
    if not isinstance(value, bytes):
        return _invalid(
            operation,
            f"a cache value must be bytes, got {type(value).__name__} "
            "(use TypedCache for other types)",
        )
    if len(value) > MAX_VALUE_BYTES:
        return _invalid(operation, f"a cache value is at most {MAX_VALUE_BYTES} bytes")
    return None


def check_ttl(ttl: object, operation: str) -> InvalidRequest | None:
    """``None`` for ``None`` or a positive finite number of seconds, else the error."""
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        return _invalid(operation, f"ttl must be seconds as a number, got {type(ttl).__name__}")
    # An int is compared as an int: math.isfinite(10**400) would raise OverflowError.
    if (type(ttl) is not int and not math.isfinite(ttl)) or ttl <= 0:
        return _invalid(operation, "ttl must be positive seconds or None")
    if ttl > MAX_TTL:
        # No echo of the number: str() of a huge int can itself raise.
        return _invalid(operation, f"ttl must be at most {MAX_TTL:.0f} seconds")
    return None


def check_lock(lock: object, token: object, ttl: object, operation: str) -> InvalidRequest | None:
    """``None`` for a valid fill lock (``LockedFill``), else the error naming the argument.

    The lock is a key, the token bytes, and the TTL a number of seconds: never ``None``,
    since a lock whose owner crashed must free itself.
    """
    if ttl is None:
        return _invalid(operation, "lock ttl must be positive seconds, got None")
    problem = check_key(lock, operation) or check_value(token, operation)
    if problem is not None:
        return _invalid(operation, f"lock: {problem.message}")
    return check_ttl(ttl, operation)


def check_by(by: object, operation: str = "incr") -> InvalidRequest | None:
    """``None`` for an ``int`` increment in the signed 64-bit range, else the error."""
    if isinstance(by, bool) or not isinstance(by, int):
        return _invalid(operation, f"incr needs an int, got {type(by).__name__}")
    if not MIN_INCR <= by <= MAX_INCR:
        return _invalid(operation, "incr amount is outside the signed 64-bit range")
    return None


def _batch_problem(batch: object, operation: str) -> InvalidRequest | None:
    """The error for a batch longer than ``MAX_BATCH``, read from its length if it has one."""
    try:
        size = len(batch)  # type: ignore[arg-type]
    except TypeError:
        return None  # no length (an iterator): counted while reading
    except (OverflowError, ValueError):
        size = MAX_BATCH + 1  # a length beyond the machine's integers
    if size > MAX_BATCH:
        return _invalid(operation, f"a batch holds at most {MAX_BATCH} items")
    return None


def check_keys(keys: object, operation: str) -> tuple[list[str], InvalidRequest | None]:
    """The keys as a list (duplicates kept) and the first problem among them, if any."""
    if isinstance(keys, str | bytes | bytearray | memoryview):
        # A lone str is an iterable of one-character keys: almost surely a bug.
        return [], _invalid(operation, "keys must be an iterable of str, not a single value")
    if not isinstance(keys, Iterable):
        return [], _invalid(
            operation, f"keys must be an iterable of str, got {type(keys).__name__}"
        )
    too_many = _batch_problem(keys, operation)
    if too_many is not None:
        return [], too_many
    listed: list[Any] = list(islice(keys, MAX_BATCH + 1))
    if len(listed) > MAX_BATCH:
        return [], _invalid(operation, f"a batch holds at most {MAX_BATCH} items")
    # Fast path for a batch of short printable ASCII keys: a handful of C-level passes
    # over all of them instead of one Python call per key (it matters for get_many).
    try:
        joined = "".join(listed)
    except TypeError:
        joined = None  # a key that is not a str: the per-key check below names it
    if (
        joined is not None
        and joined.isascii()
        and joined.isprintable()
        and (not listed or (min(map(len, listed)) > 0 and max(map(len, listed)) <= MAX_KEY_BYTES))
    ):
        return listed, None
    for key in listed:
        error = check_key(key, operation)
        if error is not None:
            return listed, error
    return listed, None


def check_items(items: object, operation: str) -> InvalidRequest | None:
    """The first problem among the keys and values of ``items``, if any.

    ``items`` must be a ``Mapping`` (a list of pairs is refused, not guessed at).
    """
    if not isinstance(items, Mapping):
        return _invalid(
            operation, f"items must be a mapping of str to bytes, got {type(items).__name__}"
        )
    too_many = _batch_problem(items, operation)
    if too_many is not None:
        return too_many
    for key, value in items.items():
        error = check_key(key, operation) or check_value(value, operation)
        if error is not None:
            return error
    return None


def parse_counter(value: bytes) -> int | None:
    """The integer ``value`` holds as Redis reads it, or ``None`` if it is not one."""
    if _COUNTER.fullmatch(value) is None:
        return None
    number = int(value)
    return number if MIN_INCR <= number <= MAX_INCR else None
