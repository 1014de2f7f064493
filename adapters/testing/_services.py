"""Reaching the real servers the integration tests use, or saying clearly why not.

Tests that need Redis, PostgreSQL or MariaDB skip with a one-line reason when the server
is unreachable, unless ``PORTSIDE_REQUIRE_SERVICES=1`` (set by CI), which turns the skip
into a failure.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit, urlunsplit

import pytest

__all__ = [
    "DEFAULT_MARIADB_URL",
    "DEFAULT_POSTGRES_URL",
    "DEFAULT_REDIS_URL",
    "proxied_url",
    "require_server",
    "services_required",
    "unreachable_reason",
]

#: The Redis the tests use when ``REDIS_URL`` is not set.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: The PostgreSQL the tests use when ``PORTSIDE_TEST_POSTGRES_URL`` is not set.
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
#: The MariaDB the tests use when ``PORTSIDE_TEST_MARIADB_URL`` is not set.
DEFAULT_MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/test"


def services_required() -> bool:
    """Whether an unreachable server fails the test instead of skipping it."""
    return os.environ.get("PORTSIDE_REQUIRE_SERVICES", "") not in ("", "0", "false", "no")


def unreachable_reason(url: str, timeout: float = 1.0) -> str | None:
    """``None`` when a TCP connection to ``url``'s host and port succeeds, else why not."""
    parts = urlsplit(url)
    if parts.scheme.startswith("unix"):
        return None if os.path.exists(parts.path) else f"no socket at {parts.path}"
    host = parts.hostname or "127.0.0.1"
    port = parts.port
    if port is None:
        return None
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"{host}:{port} unreachable ({exc.strerror or exc})"


def require_server(name: str, env_var: str, default: str) -> str:
    """The server's URL from ``env_var`` (or ``default``), skipping or failing if down."""
    url = os.environ.get(env_var) or default
    problem = unreachable_reason(url)
    if problem is not None:
        message = f"{name} not available: {problem}; set {env_var} or start the server"
        if services_required():
            pytest.fail(message + " (PORTSIDE_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(message)
    return url


def proxied_url(url: str, port: int, host: str = "127.0.0.1") -> str:
    """``url`` with its host and port replaced by a proxy's, everything else kept.

    Scheme, credentials, database number or name and query stay as given, so a test
    behind a proxy writes where the suite's variables say (``REDIS_URL``'s database
    number included), never to a default database.
    """
    parts = urlsplit(url)
    credentials, at, _ = parts.netloc.rpartition("@")
    where = f"[{host}]" if ":" in host else host
    return urlunsplit(parts._replace(netloc=f"{credentials}{at}{where}:{port}"))
