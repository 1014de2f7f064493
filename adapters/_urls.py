"""Service URLs checked and normalised once, when the settings load.

A URL that would fail later (an unknown scheme, a driver that is not installed, a port
that is not a number, a password with a raw reserved character) is refused here with
one sentence saying what is wrong and what is accepted. No message repeats any part of
the URL: it may hold a password.
"""

from __future__ import annotations

import importlib.util
from typing import Final, NamedTuple
from urllib.parse import unquote, urlsplit

__all__ = [
    "DATABASE_ACCEPTS",
    "HTTP_ACCEPTS",
    "REDIS_ACCEPTS",
    "SENTINEL_ACCEPTS",
    "SentinelAddress",
    "URLProblem",
    "normalise_database_url",
    "normalise_http_url",
    "normalise_redis_url",
    "parse_sentinel_url",
]

DATABASE_ACCEPTS: Final = (
    "sqlite:///PATH, sqlite:// (in memory), postgresql:// or postgres:// (psycopg),"
    " mysql:// or mariadb:// (PyMySQL)"
)
REDIS_ACCEPTS: Final = (
    "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], rediss://... (TLS), unix://PATH,"
    " redis+cluster://[[USER]:PASSWORD@]HOST[:PORT] (any node of a Redis Cluster),"
    " rediss+cluster://... (TLS),"
    " redis+sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/SERVICE[/DB] (Sentinel)"
)
SENTINEL_ACCEPTS: Final = (
    "redis+sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/SERVICE[/DB]"
    " (sentinel port 26379 by default), rediss+sentinel://... (TLS)"
)
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
    """``url`` if it is a valid ``redis://``, ``rediss://``, ``unix://``, Sentinel or cluster URL.

    ``redis+cluster://`` and ``rediss+cluster://`` name any node of a Redis Cluster
    (database 0 only). Raises ``URLProblem`` otherwise.
    """
    scheme, rest = _split(url)
    if scheme in ("redis+sentinel", "rediss+sentinel"):
        parse_sentinel_url(url)
        return scheme + "://" + rest
    if scheme in ("redis+cluster", "rediss+cluster"):
        path = urlsplit("//" + _check_authority(rest, what="Redis")).path
        if path.strip("/") not in ("", "0"):
            raise URLProblem("a Redis Cluster has database 0 only: give no path (or /0)")
        return scheme + "://" + rest
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


class SentinelAddress(NamedTuple):
    """A ``redis+sentinel://`` URL taken apart: where to ask, for what, and how to log in."""

    #: The sentinels to ask for the primary, ``(host, port)`` in the URL's order.
    sentinels: tuple[tuple[str, int], ...]
    #: The monitored service's name (``sentinel monitor <name> ...``).
    service: str
    db: int
    #: Credentials of the primary and its replicas (the sentinels are asked without).
    username: str | None
    password: str | None
    #: ``rediss+sentinel://``: TLS to the sentinels and to the servers.
    tls: bool


_SENTINEL_PORT: Final = 26379


def parse_sentinel_url(url: str) -> SentinelAddress:
    """The parts of ``redis+sentinel://[[user]:password@]h1[:p1][,h2[:p2]...]/service[/db]``.

    Raises ``URLProblem`` (naming no part of the URL) when it is not of that form.
    """
    scheme, rest = _split(url)
    if scheme not in ("redis+sentinel", "rediss+sentinel"):
        raise URLProblem("is not a redis+sentinel:// or rediss+sentinel:// URL")
    if any(mark in rest for mark in "?#"):
        raise URLProblem(f"a Sentinel URL takes no query or fragment; accepted: {SENTINEL_ACCEPTS}")
    authority, _, path = rest.partition("/")
    if "@" in path or authority.count("@") > 1:
        raise URLProblem(f"the Sentinel URL's user name or password is not encoded: {_ENCODE}")
    creds, _, hosts = authority.rpartition("@")
    sentinels = tuple(_sentinel_host(part) for part in hosts.split(","))
    service, _, database = path.partition("/")
    if not service:
        raise URLProblem(f"the Sentinel URL must name the service: {SENTINEL_ACCEPTS}")
    database = database.rstrip("/")
    if database and not database.isdigit():
        raise URLProblem("the Sentinel URL's path must be /SERVICE or /SERVICE/DB (a number)")
    user, has_password, password = creds.partition(":")
    return SentinelAddress(
        sentinels,
        unquote(service),
        int(database or 0),
        unquote(user) or None,
        unquote(password) if has_password else None,
        scheme == "rediss+sentinel",
    )


def _sentinel_host(part: str) -> tuple[str, int]:
    """``(host, port)`` of one ``host[:port]`` of a Sentinel URL; raises ``URLProblem``."""
    try:
        parts = urlsplit("//" + part)
        port = parts.port
    except ValueError:
        raise URLProblem("each Sentinel port must be a number from 1 to 65535") from None
    if not parts.hostname or parts.username is not None:
        raise URLProblem(f"the Sentinel URL must name a host in every place: {SENTINEL_ACCEPTS}")
    if port == 0:
        raise URLProblem("each Sentinel port must be a number from 1 to 65535")
    return parts.hostname, _SENTINEL_PORT if port is None else port


def normalise_http_url(url: str) -> str:
    """``url`` without a trailing ``/`` if it is a valid http(s) URL; raises ``URLProblem``."""
    scheme, rest = _split(url)
    if scheme not in ("http", "https"):
        raise URLProblem("has a scheme portside does not support")
    _check_authority(rest, what="base")
    return (scheme + "://" + rest).rstrip("/")
