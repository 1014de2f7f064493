"""From what the openai SDK raises (or lets through) to the error taxonomy.

Every SDK exception class has a row here, and so do the failures the SDK does not turn
into its own exceptions: a raw ``json.JSONDecodeError`` from a malformed body or SSE
chunk, and transport errors raised while a stream is read. Messages are safe to show:
the server's own message is kept (it names what was wrong) with anything that looks
like an API key masked, and a cause whose text contains the key is replaced by a
redacted stand-in.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
from collections.abc import Mapping
from typing import Any, Final

import httpx2
import openai

from portside.domain._errors import (
    Conflict,
    ContentFiltered,
    InvalidRequest,
    NotFound,
    ProtocolError,
    QuotaExceeded,
    RateLimited,
    ServiceError,
    TimedOut,
    Unauthorized,
    Unavailable,
)

__all__ = [
    "SDK_ERRORS",
    "RedactedCause",
    "is_final",
    "map_error",
    "map_error_event",
    "parse_retry_after",
    "redact",
]

#: What a call through the SDK can raise for reasons outside the program: catch exactly
#: these. The SDK raises a bare ``JSONDecodeError`` on a malformed body or SSE chunk,
#: and a body that is not UTF-8 fails to decode before that.
SDK_ERRORS: Final = (openai.OpenAIError, json.JSONDecodeError, UnicodeDecodeError, httpx2.HTTPError)

SERVICE: Final = "openai"

_KEYLIKE: Final = re.compile(r"\b(sk|key|token)-[A-Za-z0-9_*.\-]{6,}", re.IGNORECASE)
_CONTENT_FILTER_CODES: Final = frozenset(
    ("content_filter", "content_policy_violation", "content_filtered", "responsible_ai_policy")
)
_QUOTA_CODES: Final = frozenset(
    ("insufficient_quota", "billing_hard_limit_reached", "billing_not_active", "quota_exceeded")
)


class RedactedCause(Exception):
    """Stands in as ``__cause__`` for an SDK exception whose text held the API key."""


def redact(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` and anything shaped like an API key masked."""
    if secret:
        text = text.replace(secret, "***")
    return _KEYLIKE.sub(lambda m: f"{m.group(1)}-***", text)


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the server asked to wait: ``retry-after-ms``, then ``retry-after``.

    ``retry-after`` may be seconds or an HTTP date (measured from ``now``, seconds
    since the epoch). Unparseable, negative or non-finite values count as not said.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            value = float(raw_ms) / 1000.0
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        value = max(0.0, when.timestamp() - now)
    return value if math.isfinite(value) and value >= 0 else None


def _body_code(body: object) -> str:
    """The error's ``code``, lower-cased; its ``type`` when only that names a quota or filter.

    OpenAI puts ``insufficient_quota`` in ``code`` and sometimes only in ``type``;
    compatible servers vary, so both are read.
    """
    inner = body.get("error", body) if isinstance(body, Mapping) else None
    if not isinstance(inner, Mapping):
        return ""
    code, kind = inner.get("code"), inner.get("type")
    code = code.lower() if isinstance(code, str) else ""
    kind = kind.lower() if isinstance(kind, str) else ""
    if not (code in _CONTENT_FILTER_CODES or code in _QUOTA_CODES) and (
        kind in _CONTENT_FILTER_CODES or kind in _QUOTA_CODES
    ):
        return kind
    return code


def _server_message(exc: openai.APIError, secret: str | None) -> str:
    body = exc.body
    message: object = None
    if isinstance(body, Mapping):
        message = body.get("message")
    if not isinstance(message, str) or not message:
        message = exc.message
    return redact(message, secret)[:200]


def _status_error(
    exc: openai.APIStatusError, *, operation: str, now: float, secret: str | None
) -> ServiceError:
    status = exc.status_code
    code = _body_code(exc.body)
    said = _server_message(exc, secret)
    where: dict[str, Any] = {"service": SERVICE, "operation": operation}
    # Any status may carry Retry-After (429, and 503/504/529 from overloaded servers).
    retry_after = parse_retry_after(exc.response.headers, now)
    if code in _QUOTA_CODES or status == 402:
        return QuotaExceeded(**where, message=f"quota exhausted ({status}): {said}")
    if code in _CONTENT_FILTER_CODES:
        return ContentFiltered(**where, message=f"refused by the content filter: {said}")
    if status == 429:
        return RateLimited(**where, message=f"rate limited: {said}", retry_after=retry_after)
    if status in (401, 403):
        # The server's wording for a bad key may quote part of it: say nothing of it.
        return Unauthorized(**where, message=f"the server refused the credentials ({status})")
    if status == 404:
        return NotFound(**where, message=f"not found (404): {said}")
    if status == 409:
        return Conflict(**where, message=f"conflict (409): {said}")
    if status in (408, 504):
        return TimedOut(
            **where, message=f"the server timed out ({status})", retry_after=retry_after
        )
    if status >= 500:
        return Unavailable(
            **where, message=f"server error ({status}): {said}", retry_after=retry_after
        )
    if 400 <= status < 500:
        return InvalidRequest(**where, message=f"rejected ({status}): {said}")
    return ProtocolError(**where, message=f"unexpected status {status}")


def _classify(
    exc: BaseException, *, operation: str, now: float, secret: str | None
) -> ServiceError:
    where: dict[str, Any] = {"service": SERVICE, "operation": operation}
    root = _transport_cause(exc)
    if isinstance(root, httpx2.TooManyRedirects):
        return ProtocolError(**where, message="the server redirected too often (a loop?)")
    if isinstance(root, httpx2.DecodingError):
        return ProtocolError(**where, message="the body could not be decoded (corrupt gzip?)")
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return TimedOut(**where, message="the server did not answer in time")
    if isinstance(exc, openai.APIConnectionError | httpx2.TransportError):
        return Unavailable(**where, message="the server could not be reached or hung up")
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc, operation=operation, now=now, secret=secret)
    if isinstance(exc, openai.APIResponseValidationError):
        return ProtocolError(**where, message="the answer does not have the expected shape")
    if isinstance(exc, openai.APIError):
        # An error event inside a stream, as the SDK reports it.
        return _event_error(exc.body, _server_message(exc, secret), where)
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        return ProtocolError(**where, message="the server sent malformed JSON")
    return ProtocolError(**where, message=f"the SDK failed: {type(exc).__name__}")


def _transport_cause(exc: BaseException) -> BaseException:
    """The httpx error under the SDK's ``APIConnectionError`` wrapper, else ``exc``."""
    if isinstance(exc, openai.APIConnectionError) and isinstance(exc.__cause__, httpx2.HTTPError):
        return exc.__cause__
    return exc


def is_final(error: ServiceError) -> bool:
    """Whether repeating the call cannot help although ``error`` is retryable in general.

    A redirect loop answers the same way every time; retrying it multiplies the
    requests (3 attempts of 21 redirects each).
    """
    cause = error.__cause__
    return cause is not None and isinstance(_transport_cause(cause), httpx2.TooManyRedirects)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception it was caused by or raised during, once each."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and not any(current is s for s in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _leaks(exc: BaseException, secret: str) -> bool:
    for link in _chain(exc):
        try:
            text = f"{link!s} {link.args!r}"
        except Exception:  # a __str__ that fails must not hide a leak
            return True
        if secret in text:
            return True
    return False


def _event_error(body: object, said: str, where: dict[str, Any]) -> ServiceError:
    code = _body_code(body)
    if code in _CONTENT_FILTER_CODES:
        return ContentFiltered(**where, message=f"refused by the content filter: {said}")
    if code in _QUOTA_CODES:
        return QuotaExceeded(**where, message=f"quota exhausted: {said}")
    if code in ("rate_limit_exceeded", "rate_limit"):
        return RateLimited(**where, message=f"rate limited: {said}")
    if code in ("server_error", "overloaded", "service_unavailable"):
        return Unavailable(**where, message=f"server error in stream: {said}")
    return ProtocolError(**where, message=f"error event: {said}")


def map_error_event(body: Mapping[str, Any], *, operation: str, secret: str | None) -> ServiceError:
    """The taxonomy error for an ``error`` object the server sent inside a stream."""
    message = body.get("message")
    said = redact(message if isinstance(message, str) else "no message", secret)[:200]
    return _event_error(body, said, {"service": SERVICE, "operation": operation})


def map_error(
    exc: BaseException, *, operation: str, now: float, secret: str | None
) -> ServiceError:
    """The taxonomy error for ``exc`` (one of ``SDK_ERRORS``), with the cause kept.

    ``now`` (seconds since the epoch) dates a ``Retry-After`` given as an HTTP date;
    ``secret`` is the API key, masked wherever it would show: when it appears anywhere
    in ``exc``'s chain of causes and contexts, the cause kept is a ``RedactedCause``
    that names the exception's type only.
    """
    error = _classify(exc, operation=operation, now=now, secret=secret)
    cause: BaseException = exc
    # The whole chain is checked, not only the outer text: a header error several
    # causes down quotes the Authorization header.
    if secret and _leaks(exc, secret):
        cause = RedactedCause(f"{type(exc).__name__} (its text held the API key; hidden)")
    return error.caused_by(cause)
