"""A stalled database connection ends every unit-of-work call as TimedOut within its bound.

A loopback proxy in front of PostgreSQL or MariaDB stops forwarding (or, for a new
connection, accepts it and never answers) in the middle of a query, of a commit and of a
connect. Each call must come back as ``Failure(TimedOut)`` within the configured bound
plus one second, write nothing, and the next unit must work once the network heals.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import attrs
import pytest
from returns.result import Failure, Success
from sqlalchemy import Column, Integer, MetaData, String, Table

from portside.adapters.entities import Entities
from portside.adapters.sqlalchemy import Database, make_engine
from portside.adapters.testing import TcpFaultProxy

pytestmark = [pytest.mark.faults, pytest.mark.services]

STATEMENT = 1.0
CONNECT = 2.0  # libpq's smallest connect_timeout


@attrs.define(slots=False, eq=False)
class Note:
    id: int
    text: str


@attrs.frozen
class Rig:
    database: Database
    proxy: TcpFaultProxy
    url: str
    entities: Entities


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return url.replace(parts.netloc, f"{user}127.0.0.1:{port}")


@pytest.fixture(name="rig", params=["postgres", "mariadb"])
def _rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    url: str = request.getfixturevalue(f"{request.param}_url")
    metadata = MetaData()
    table = Table(
        f"ps_stall_{uuid.uuid4().hex[:10]}",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("text", String(40), nullable=False),
    )
    entities = Entities(metadata=metadata)
    entities.map(Note, table)
    direct = make_engine(url)
    metadata.create_all(direct)
    parts = urlsplit(url)
    default_port = 5432 if request.param == "postgres" else 3306
    with TcpFaultProxy(parts.hostname or "127.0.0.1", parts.port or default_port) as proxy:
        proxied = _through(url, proxy.port)
        database = Database.from_url(
            entities, proxied, statement_timeout=STATEMENT, connect_timeout=CONNECT
        )
        try:
            with database.unit_of_work() as uow:
                uow.repository(Note).add(Note(1, "kept"))
                assert uow.commit() == Success(None)
            yield Rig(database, proxy, proxied, entities)
        finally:
            proxy.heal()
            database.close()
            metadata.drop_all(direct)
            direct.dispose()
            entities.dispose()


def _timed_out(started: float, result: Any, bound: float) -> None:
    elapsed = time.monotonic() - started
    assert isinstance(result, Failure), result
    assert result.failure().kind == "TimedOut", result
    assert elapsed <= bound + 1.0, f"took {elapsed:.2f} s against a bound of {bound} s"


def _recovers(rig: Rig) -> None:
    rig.proxy.heal()
    with rig.database.unit_of_work() as uow:
        note = uow.repository(Note).get(1)
        assert note.map(lambda n: n.text) == Success("kept"), "the pool did not recover"


def test_a_query_on_a_stalled_connection_times_out(rig: Rig) -> None:
    """get() on a connection that stalls mid-unit is TimedOut within the statement bound."""
    with rig.database.unit_of_work() as uow:
        notes = uow.repository(Note)
        assert notes.get(1).map(lambda n: n.id) == Success(1)  # the connection is in use
        rig.proxy.stall()
        started = time.monotonic()
        _timed_out(started, notes.get(2), STATEMENT)
    _recovers(rig)


def test_a_commit_on_a_stalled_connection_times_out_and_writes_nothing(rig: Rig) -> None:
    """commit() on a stalled connection is TimedOut within the bound; nothing is half-written."""
    with rig.database.unit_of_work() as uow:
        notes = uow.repository(Note)
        notes.get(1).unwrap().text = "changed"
        notes.add(Note(2, "new"))
        rig.proxy.stall()
        started = time.monotonic()
        _timed_out(started, uow.commit(), STATEMENT)
    _recovers(rig)
    with rig.database.unit_of_work() as uow:
        stored = [(n.id, n.text) for n in uow.repository(Note).list().unwrap()]
    # The COMMIT never reached the server, so the transaction was rolled back whole.
    assert stored == [(1, "kept")]


def test_a_connect_to_a_silent_server_times_out(rig: Rig) -> None:
    """A server that accepts and never answers holds a new connection only for connect_timeout."""
    rig.proxy.blackhole()
    fresh = Database.from_url(
        rig.entities, rig.url, statement_timeout=STATEMENT, connect_timeout=CONNECT
    )
    try:
        with fresh.unit_of_work() as uow:
            started = time.monotonic()
            _timed_out(started, uow.repository(Note).get(1), CONNECT)
    finally:
        fresh.close()
    _recovers(rig)
