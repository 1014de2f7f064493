"""What the OpenAI adapter refuses when it is built: keys and URLs no request could use.

A key with a newline (read from a file), a zero-width space (a paste) or any other
character an HTTP header cannot carry would fail every call, and the failure would
quote the header, key included. A base URL with a bad port, another scheme or no host
would be retried as if the server were down. Both are configuration errors: they raise
``ValueError`` at build time with a message that never repeats the value.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from portside.ports.llm_rules import MAX_SECONDS

__all__ = ["check_api_key", "check_base_url", "check_counts", "check_seconds"]

# Printable ASCII without the space: what a bearer token is made of (RFC 6750 b64token
# is narrower; compatible servers use other punctuation too).
_KEY_CHARS: Final = frozenset(chr(c) for c in range(0x21, 0x7F))


def check_api_key(key: str) -> None:
    """Raise ``ValueError`` unless ``key`` can be sent in an ``Authorization`` header."""
    if not isinstance(key, str):
        raise ValueError(f"the API key must be a str, not {type(key).__name__}")
    for position, char in enumerate(key):
        if char not in _KEY_CHARS:
            kind = (
                "whitespace or a control character"
                if char.isspace() or not char.isprintable()
                else "a non-ASCII character"
            )
            raise ValueError(
                f"the API key holds {kind} at position {position} of {len(key)} "
                "(a trailing newline from a file, or a zero-width space from a paste?)"
            )


def check_base_url(url: str) -> None:
    """Raise ``ValueError`` unless ``url`` is an ``http(s)://host[:port]/...`` URL."""
    if not isinstance(url, str):
        raise ValueError(f"base_url must be a str, not {type(url).__name__}")
    if any(char.isspace() or not char.isprintable() for char in url):
        raise ValueError("base_url holds whitespace or a control character")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        shown = parts.scheme[:10] if parts.scheme.isalnum() else ""
        said = f"{shown!r}" if shown else "no scheme"
        raise ValueError(f"base_url must start with http:// or https:// (it has {said})")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("base_url has a port outside 1-65535 or not a number") from None
    if not parts.hostname:
        raise ValueError("base_url has no host")
    if port == 0:
        raise ValueError("base_url has a port outside 1-65535 or not a number")


def check_seconds(*values: object) -> None:
    """Raise ``ValueError`` unless each timeout or deadline is in (0, ``MAX_SECONDS``]."""
    for value in values:
        if not (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and 0 < value <= MAX_SECONDS
        ):
            raise ValueError(f"timeouts and the deadline must be in (0, {MAX_SECONDS}] s")


def check_counts(*values: object) -> None:
    """Raise ``ValueError`` unless each count (batch size, redirects) is a positive int."""
    for value in values:
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError("embed_batch_size and max_redirects must be positive integers")
