"""Service URLs checked and normalised once, when the settings load.

A URL that would fail later (an unknown scheme, a driver that is not installed, a port
that is not a number, a password with a raw reserved character) is refused here with
one sentence saying what is wrong and what is accepted. No message repeats any part of
the URL: it may hold a password.
"""

from __future__ import annotations

import importlib.util
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "DATABASE_ACCEPTS",
    "HTTP_ACCEPTS",
    "REDIS_ACCEPTS",
    "URLProblem",
    "normalise_database_url",
    "normalise_http_url",
    "normalise_redis_url",
]

DATABASE_ACCEPTS: Final = (
    "sqlite:///PATH, sqlite:// (in memory), postgresql:// or postgres:// (psycopg),"
    " mysql:// or mariadb:// (PyMySQL)"
)
REDIS_ACCEPTS: Final = "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], rediss://... (TLS), unix://PATH"
HTTP_ACCEPTS: Final = "http://HOST[:PORT][/PATH] or https://..."

# dialect -> (the one driver portside installs for it, the extra that installs it)
_DRIVERS: Final = {
    "postgresql": ("psycopg", "postgres"),
    "mysql": ("pymysql", "mysql"),
    "mariadb": ("pymysql", "mysql"),
}
_ALIASES: Final = {"postgres": "postgresql"}
_ENCODE: Final = (
    "percent-encode reserved characters (@ : / ? # %) in the user name and password,"
    " e.g. urllib.parse.quote(password, safe='')"
)


class URLProblem(ValueError):
    """What is wrong with a URL, in words that never repeat the URL."""


def _split(url: str) -> tuple[str, str]:
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise URLProblem("must be a URL (SCHEME://...)")
    return scheme.lower(), rest


def _check_authority(rest: str, *, what: str) -> str:
    """The path after a valid ``[user[:password]@]host[:port]``; raises ``URLProblem``."""
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, after = rest[:end], rest[end:]
    # A raw '/', '?' or '#' in a password ends the authority early, leaving the '@' in
    # the path; a raw '@' leaves two of them. Either way the host read would be wrong.
    if "@" in after or authority.count("@") > 1:
        raise URLProblem(f"the {what} URL's user name or password is not encoded: {_ENCODE}")
    try:
        parts = urlsplit("//" + authority)
        port = parts.port
    except ValueError:
        raise URLProblem(f"the {what} URL's port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise URLProblem(f"the {what} URL must name a host")
    if port == 0:
        raise URLProblem(f"the {what} URL's port must be a number from 1 to 65535")
    return after


def normalise_database_url(url: str) -> str:
    """``url`` with its scheme spelled for the installed driver; raises ``URLProblem``.

    ``postgres://`` and ``postgresql://`` become ``postgresql+psycopg://``, ``mysql://``
    ``mysql+pymysql://`` and ``mariadb://`` ``mariadb+pymysql://``.
    """
    scheme, rest = _split(url)
    dialect, _, driver = scheme.partition("+")
    dialect = _ALIASES.get(dialect, dialect)
    if dialect == "sqlite":
        if driver not in ("", "pysqlite"):
            raise URLProblem("sqlite URLs use the standard library's sqlite3 driver")
        return "sqlite://" + rest
    if dialect not in _DRIVERS:
        raise URLProblem("has a scheme portside does not support")
    module, extra = _DRIVERS[dialect]
    if driver not in ("", module):
        raise URLProblem(f"{dialect} runs on the {module} driver ({dialect}+{module}://)")
    if importlib.util.find_spec(module) is None:
        raise URLProblem(f"{dialect} needs the {module} driver: pip install 'portside[{extra}]'")
    _check_authority(rest, what="database")
    return f"{dialect}+{module}://{rest}"


def normalise_redis_url(url: str) -> str:
    """``url`` if it is a valid ``redis://``, ``rediss://`` or ``unix://`` URL.

    Raises ``URLProblem`` otherwise.
    """
    scheme, rest = _split(url)
    if scheme == "unix":
        if not urlsplit(url).path:
            raise URLProblem("a unix:// Redis URL must name the socket's path")
        return url
    if scheme not in ("redis", "rediss"):
        raise URLProblem("has a scheme portside does not support")
    path = urlsplit("//" + _check_authority(rest, what="Redis")).path
    database = path.strip("/")
    if database and not database.isdigit():
        raise URLProblem("the Redis URL's path must be a database number (/0, /1, ...)")
    return scheme + "://" + rest


def normalise_http_url(url: str) -> str:
    """``url`` without a trailing ``/`` if it is a valid http(s) URL; raises ``URLProblem``."""
    scheme, rest = _split(url)
    if scheme not in ("http", "https"):
        raise URLProblem("has a scheme portside does not support")
    _check_authority(rest, what="base")
    return (scheme + "://" + rest).rstrip("/")
