"""The one error taxonomy every port returns inside ``Failure``.

Each error carries the service and operation it came from and a message that is safe
to show (no secrets, no payloads). The vendor exception that caused it, if any, is kept
as ``__cause__`` so a traceback still leads to the root. ``retryable`` says whether
trying the same call again later can succeed.
"""

from __future__ import annotations

from typing import ClassVar, Self

import attrs

__all__ = [
    "Conflict",
    "ContentFiltered",
    "InvalidRequest",
    "NotFound",
    "ProtocolError",
    "QuotaExceeded",
    "RateLimited",
    "SerializationError",
    "ServiceError",
    "TimedOut",
    "Unauthorized",
    "Unavailable",
]


# The subclasses that add no field are plain subclasses (with empty __slots__): they
# inherit the generated __init__, __repr__ (which prints the instance's own class name)
# and the frozen __setattr__, and importing the taxonomy does not pay attrs' code
# generation twelve times (about half of this module's import time).
@attrs.frozen(auto_exc=True, kw_only=True, eq=False)
class ServiceError(Exception):
    """Base of every error a port returns.

    Errors are values: ports return them inside ``returns.result.Failure``; they are
    exceptions only so that ``Result.unwrap()`` can raise them and so that the
    original vendor exception survives as ``__cause__``.
    """

    service: str = "portside"
    operation: str = "unknown"
    message: str = ""

    retryable: ClassVar[bool] = False

    def __str__(self) -> str:
        return (
            f"{self.service}.{self.operation}: {self.message}"
            if self.message
            else (f"{self.service}.{self.operation}: {type(self).__name__}")
        )

    def caused_by(self, cause: BaseException | None) -> Self:
        """Return this error with ``cause`` recorded as its ``__cause__``."""
        # The class is frozen; __cause__ is BaseException's own slot, set the way
        # ``raise ... from cause`` would set it.
        object.__setattr__(self, "__cause__", cause)
        return self

    @property
    def kind(self) -> str:
        """The class name, e.g. ``"RateLimited"``; stable across versions."""
        return type(self).__name__


@attrs.frozen(auto_exc=True, kw_only=True, eq=False)
class Unavailable(ServiceError):
    """The service could not be reached or refused the connection.

    ``retry_after`` is the number of seconds the service asked to wait (a 503 with
    ``Retry-After``), when it said.
    """

    retry_after: float | None = None

    retryable: ClassVar[bool] = True


@attrs.frozen(auto_exc=True, kw_only=True, eq=False)
class TimedOut(ServiceError):
    """The service did not answer within the configured timeout.

    The call may or may not have been applied; each port documents what a caller can
    assume for each operation. ``retry_after`` is the wait the service asked for (a 504
    with ``Retry-After``), when it said.
    """

    retry_after: float | None = None

    retryable: ClassVar[bool] = True


@attrs.frozen(auto_exc=True, kw_only=True, eq=False)
class RateLimited(ServiceError):
    """The service asked the caller to slow down.

    ``retry_after`` is the number of seconds the service asked to wait, when it said.
    """

    retry_after: float | None = None

    retryable: ClassVar[bool] = True


class Unauthorized(ServiceError):
    """The credentials were missing, wrong or not allowed to do this."""

    __slots__ = ()


class InvalidRequest(ServiceError):
    """The request was rejected as malformed; ``message`` names what was wrong.

    Nothing was written. Repeating the same request cannot succeed.
    """

    __slots__ = ()


class NotFound(ServiceError):
    """The thing asked for does not exist."""

    __slots__ = ()


class Conflict(ServiceError):
    """A concurrent change or a uniqueness rule prevented the write.

    Nothing was written. Reloading and trying again may succeed.
    """

    __slots__ = ()

    retryable: ClassVar[bool] = True


class QuotaExceeded(ServiceError):
    """A hard quota (billing, storage) is exhausted; waiting a little will not help."""

    __slots__ = ()


class ContentFiltered(ServiceError):
    """The provider refused or cut the answer for content policy reasons."""

    __slots__ = ()


class ProtocolError(ServiceError):
    """The other side answered something malformed or incomplete."""

    __slots__ = ()

    retryable: ClassVar[bool] = True


class SerializationError(ServiceError):
    """A value could not be encoded, or stored bytes could not be decoded.

    Callers reading a cache treat a decoding error as a miss.
    """

    __slots__ = ()
