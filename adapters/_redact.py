"""The one place that hides secrets inside connection URLs."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MASK", "redact_url"]

MASK: Final = "***"

# Query arguments that clients accept as credentials (redis-py takes ?password=,
# libpq takes ?password= too; tokens appear in HTTP endpoints).
_QUERY_SECRET: Final = re.compile(
    r"(?i)([?&;](?:password|passwd|pwd|pass|secret|token|access_token|api_key|apikey)=)[^&;#]*"
)


def redact_url(url: str) -> str:
    """``url`` with the password of its authority and credential query arguments masked.

    A password typed raw (with ``@``, ``:`` or ``/`` in it) is hidden whole: the
    credentials end at the last ``@``, which is how URL parsers read them too.
    """
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        creds, _, host = rest.rpartition("@")
        user, has_password, _ = creds.partition(":")
        rest = f"{user}:{MASK}@{host}" if has_password else f"{user}@{host}"
    return _QUERY_SECRET.sub(rf"\g<1>{MASK}", f"{scheme}{sep}{rest}")
