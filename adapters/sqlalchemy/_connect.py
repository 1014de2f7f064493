"""How connections to database servers are bounded in time, and where passwords go.

Every call of a unit of work ends within its bound: a server that accepts the TCP
connection and never answers, a network that stalls in the middle of a query or of the
COMMIT, all come back as ``TimedOut``.

- PostgreSQL: ``connect_timeout`` (libpq's own, whole seconds, at least 2) bounds the
  connection; the server cancels a statement after ``statement_timeout``; and because
  libpq has no read timeout, each wait for the server (a query, a fetch, the COMMIT) is
  bounded in psycopg itself: past ``statement_timeout`` + ``_GRACE`` the connection is
  closed (its protocol state is unknown) and the call fails with "timed out".
- MariaDB/MySQL: PyMySQL's socket timeouts. Its handshake reads with the read timeout,
  so the connection is opened with every timeout at ``connect_timeout`` and given the
  statement bound once it is established; the server stops a statement after
  ``max_statement_time``.

Async engines get the same bounds from their drivers: psycopg's ``AsyncConnection``
(the same driver, the same server options, each wait bounded the same way) and asyncmy
(``connect_timeout`` for the TCP connection, ``read_timeout`` at the statement bound for
every read, handshake included; it has no write timeout). ``async_driver_url`` turns
a URL of a sync driver into the async driver's, so one ``DATABASE_URL`` serves both.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url

__all__ = [
    "CONNECT_TIMEOUT",
    "STATEMENT_TIMEOUT",
    "async_driver_url",
    "bound_connections",
    "password_in_authority",
    "server_options",
]

#: Seconds to open a connection (TCP, TLS, authentication), by default.
CONNECT_TIMEOUT: Final = 5.0
#: Seconds a statement (or the COMMIT) may take, by default.
STATEMENT_TIMEOUT: Final = 30.0
# The client-side bound waits a little longer than the server's own, so a slow statement
# is cancelled cleanly by the server and only a silent one is cut by the client.
_GRACE: Final = 0.5


def password_in_authority(url: str | URL) -> URL:
    """``url`` with a ``?password=`` query argument moved to the URL's password.

    SQLAlchemy masks the password of a URL in ``repr(engine)`` and ``str(url)``, but not
    a query argument that the driver also reads as the password.
    """
    parsed = make_url(url)
    password = parsed.query.get("password")
    if password is None:
        return parsed
    value = password if isinstance(password, str) else password[-1]
    return parsed.set(password=value).difference_update_query(["password"])


# The async driver that takes the place of each sync one (``None``: the dialect's
# default driver). psycopg is one driver for both; SQLAlchemy picks its async form.
_ASYNC_DRIVERS: Final = {"sqlite": "aiosqlite", "postgresql": "psycopg", "mysql": "asyncmy"}
_SYNC_DRIVERS: Final = frozenset({"", "pysqlite", "psycopg", "psycopg2", "pymysql", "mysqldb"})


def async_driver_url(url: str | URL) -> URL:
    """``url`` with a sync driver replaced by its async twin; other drivers unchanged.

    ``sqlite`` -> ``sqlite+aiosqlite``, ``mysql+pymysql`` -> ``mysql+asyncmy``;
    ``postgresql+psycopg`` stays (psycopg is both, SQLAlchemy picks its async form).
    """
    parsed = make_url(url)
    backend = "mysql" if parsed.get_backend_name() == "mariadb" else parsed.get_backend_name()
    driver = _ASYNC_DRIVERS.get(backend)
    if driver is None or parsed.drivername.partition("+")[2] not in _SYNC_DRIVERS:
        return parsed
    return parsed.set(drivername=f"{parsed.get_backend_name()}+{driver}")


def server_options(
    dialect: str, connect_timeout: float, statement_timeout: float, *, driver: str = ""
) -> dict[str, Any]:
    """``connect_args`` that set the server-side and socket bounds for ``dialect``."""
    if dialect in {"mysql", "mariadb"}:
        # max_statement_time is MariaDB's (MySQL 8 calls it max_execution_time, in ms):
        # on MySQL pass your own init_command in connect_args.
        options: dict[str, Any] = {
            "connect_timeout": max(1, round(connect_timeout)),
            "init_command": f"SET SESSION max_statement_time={statement_timeout:g}",
        }
        if driver == "asyncmy":
            # asyncmy's read timeout cannot be changed once connected: the handshake
            # waits as long as a statement may.
            options["read_timeout"] = statement_timeout + _GRACE
        else:
            options["read_timeout"] = options["write_timeout"] = connect_timeout
        return options
    if dialect == "postgresql":
        return {
            "connect_timeout": max(2, round(connect_timeout)),
            "options": f"-c statement_timeout={round(statement_timeout * 1000)}",
            # A peer that vanished (no RST) is noticed even between calls.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "tcp_user_timeout": 30_000,
        }
    return {}


def bound_connections(engine: Engine, statement_timeout: float) -> None:
    """Install the client-side bounds on ``engine``'s new connections (servers only)."""
    name = engine.dialect.name
    driver = engine.dialect.driver
    if name == "postgresql" and driver == "psycopg" and engine.dialect.is_async:
        async_class = _bounded_psycopg_async(statement_timeout + _GRACE)

        @event.listens_for(engine, "do_connect")
        def _connect_async(_dialect: Any, _record: Any, _cargs: Any, cparams: Any) -> None:
            # SQLAlchemy's psycopg async dialect connects through this creator.
            cparams["async_creator_fn"] = async_class.connect

    elif name == "postgresql" and driver == "psycopg":
        connection_class = _bounded_psycopg(statement_timeout + _GRACE)

        @event.listens_for(engine, "do_connect")
        def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
            return connection_class.connect(*cargs, **cparams)

    elif name in {"mysql", "mariadb"} and driver == "pymysql":
        read = statement_timeout + _GRACE

        @event.listens_for(engine, "connect")
        def _established(dbapi_connection: Any, _record: Any) -> None:
            # PyMySQL reads these before every socket operation (stable since 0.9).
            dbapi_connection._read_timeout = read
            dbapi_connection._write_timeout = read


def _bounded_psycopg(seconds: float) -> Any:
    """A psycopg ``Connection`` class whose every wait for the server ends in ``seconds``."""
    import psycopg
    from psycopg import errors

    class BoundedConnection(psycopg.Connection[Any]):
        """Waits for the server at most ``seconds``; then closes and reports a timeout."""

        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            try:
                return super().wait(gen, interval=interval, timeout=timeout or seconds)
            except errors._WaitTimeout as exc:
                raise _timed_out(self, seconds) from exc

    return BoundedConnection


def _bounded_psycopg_async(seconds: float) -> Any:
    """The ``AsyncConnection`` twin of ``_bounded_psycopg``: each wait ends in ``seconds``."""
    import psycopg
    from psycopg import errors

    class BoundedAsyncConnection(psycopg.AsyncConnection[Any]):
        """Waits for the server at most ``seconds``; then closes and reports a timeout."""

        async def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            try:
                return await super().wait(gen, interval=interval, timeout=timeout or seconds)
            except errors._WaitTimeout as exc:
                raise _timed_out(self, seconds) from exc

    return BoundedAsyncConnection


def _timed_out(connection: Any, seconds: float) -> Exception:
    """Close a psycopg connection that did not answer in time; the error to raise."""
    import psycopg

    # The server may be half-way through the reply: the connection cannot be used
    # again. Closed, it is a disconnect to SQLAlchemy (discarded).
    connection.pgconn.finish()
    return psycopg.OperationalError(f"the server did not answer within {seconds:g} s (timed out)")
