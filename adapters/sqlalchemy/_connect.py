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
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url

__all__ = ["CONNECT_TIMEOUT", "STATEMENT_TIMEOUT", "bound_connections", "password_in_authority"]

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


def server_options(
    dialect: str, connect_timeout: float, statement_timeout: float
) -> dict[str, Any]:
    """``connect_args`` that set the server-side and socket bounds for ``dialect``."""
    if dialect in {"mysql", "mariadb"}:
        # max_statement_time is MariaDB's (MySQL 8 calls it max_execution_time, in ms):
        # on MySQL pass your own init_command in connect_args.
        return {
            "connect_timeout": max(1, round(connect_timeout)),
            "read_timeout": connect_timeout,
            "write_timeout": connect_timeout,
            "init_command": f"SET SESSION max_statement_time={statement_timeout:g}",
        }
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
    if name == "postgresql" and driver == "psycopg":
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
                # The server may be half-way through the reply: the connection cannot be
                # used again. Closed, it is a disconnect to SQLAlchemy (discarded).
                self.pgconn.finish()
                raise psycopg.OperationalError(
                    f"the server did not answer within {seconds:g} s (timed out)"
                ) from exc

    return BoundedConnection
