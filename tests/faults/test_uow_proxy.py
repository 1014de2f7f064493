"""The SQLAlchemy unit of work on PostgreSQL, through a proxy that cuts it at every point.

Each run is one transfer: two account rows updated and a ledger row inserted in one
unit of work. The proxy resets the connection after ``k`` bytes (client to server, or
server to client), for offsets spread over the whole exchange from the first query to
the reply to COMMIT. Invariants after every run: the balances still add up, and the
ledger matches the balances (the transfer is in the database whole, or not at all).
The run after a cut must succeed: the pool recovers by itself.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import attrs
import pytest
from returns.result import Failure, Result, Success

from portside.adapters.testing import Direction, TcpFaultProxy, proxied_url
from portside.domain import ServiceError
from tests.faults.conftest import Campaign

sqlalchemy_adapter = pytest.importorskip("portside.adapters.sqlalchemy")
entities_module = pytest.importorskip("portside.adapters.entities")

from sqlalchemy import Column, Integer, MetaData, String, Table, select  # noqa: E402

pytestmark = pytest.mark.faults

START = 1000
RUNS_PER_DIRECTION = 40
TAIL = 24


@attrs.define(slots=False)  # SQLAlchemy instruments mapped instances
class Account:
    id: str
    balance: int
    version: int = 0


@attrs.define(slots=False)
class Transfer:
    id: str
    amount: int


@attrs.frozen
class _Bank:
    database: Any
    accounts: Table
    transfers: Table


@pytest.fixture(name="bank")
def _bank(postgres_url: str) -> Iterator[tuple[_Bank, TcpFaultProxy, Any]]:
    suffix = uuid.uuid4().hex[:10]
    metadata = MetaData()
    accounts = Table(
        f"ps_faults_accounts_{suffix}",
        metadata,
        Column("id", String(20), primary_key=True),
        Column("balance", Integer, nullable=False),
        Column("version", Integer, nullable=False),
    )
    transfers = Table(
        f"ps_faults_transfers_{suffix}",
        metadata,
        Column("id", String(40), primary_key=True),
        Column("amount", Integer, nullable=False),
    )
    entities = entities_module.Entities(metadata=metadata)
    entities.map(Account, accounts, version="version")
    entities.map(Transfer, transfers)
    parts = urlsplit(postgres_url)
    direct = sqlalchemy_adapter.make_engine(postgres_url)
    metadata.create_all(direct)
    with direct.begin() as conn:
        conn.execute(accounts.insert(), [{"id": "a", "balance": START, "version": 1}])
        conn.execute(accounts.insert(), [{"id": "b", "balance": START, "version": 1}])
    with TcpFaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        proxied = proxied_url(postgres_url, proxy.port)
        database = sqlalchemy_adapter.Database.from_url(
            entities, proxied, pool_size=2, connect_args={"connect_timeout": 3}
        )
        try:
            yield _Bank(database, accounts, transfers), proxy, direct
        finally:
            database.close()
            metadata.drop_all(direct)
            direct.dispose()
            entities.dispose()


def _transfer(database: Any, ident: str, amount: int) -> Result[None, ServiceError]:
    """Move ``amount`` from a to b and record it, in one unit of work."""
    uow = database.unit_of_work()
    with uow:
        accounts = uow.repository(Account)
        loaded: list[Account] = []
        for key in ("a", "b"):
            got = accounts.get(key)
            if isinstance(got, Failure):
                return got
            loaded.append(got.unwrap())
        loaded[0].balance -= amount
        loaded[1].balance += amount
        added = uow.repository(Transfer).add(Transfer(ident, amount))
        if isinstance(added, Failure):
            return added
        result: Result[None, ServiceError] = uow.commit()
        return result


def _check_invariants(direct: Any, bank: _Bank) -> tuple[set[str], int]:
    with direct.connect() as conn:
        rows = conn.execute(select(bank.accounts.c.id, bank.accounts.c.balance)).all()
        balances: dict[str, int] = {row[0]: row[1] for row in rows}
        rows = conn.execute(select(bank.transfers.c.id, bank.transfers.c.amount)).all()
        ledger: dict[str, int] = {row[0]: row[1] for row in rows}
    assert balances["a"] + balances["b"] == 2 * START, balances
    assert balances["b"] - START == sum(ledger.values()), (balances, ledger)
    return set(ledger), balances["b"] - START


@pytest.mark.services
def test_a_cut_unit_of_work_commits_whole_or_not_at_all_and_the_pool_recovers(
    bank: tuple[_Bank, TcpFaultProxy, Any], campaign: Campaign
) -> None:
    """Cut at any byte of any run: Failure(Unavailable), invariants hold, next run succeeds."""
    store, proxy, direct = bank
    assert _transfer(store.database, "warm", 1) == Success(None)  # the pooled connection
    before = proxy.stats()
    assert _transfer(store.database, "measure", 1) == Success(None)
    after = proxy.stats()
    up = after.upstream_bytes - before.upstream_bytes
    down = after.downstream_bytes - before.downstream_bytes
    assert up > 0
    assert down > 0
    failures: dict[str, int] = {}
    ambiguous = 0
    runs = 0
    directions: list[tuple[Direction, int]] = [("upstream", up), ("downstream", down)]
    for direction, total in directions:
        # Evenly over the exchange, then every byte of its end: the COMMIT and its reply.
        offsets = {max(1, total * n // RUNS_PER_DIRECTION) for n in range(RUNS_PER_DIRECTION)}
        offsets |= set(range(max(1, total - TAIL), total))
        for offset in sorted(offsets):
            ident = f"{direction}-{offset}"
            proxy.close_after(offset, direction=direction)
            outcome = _transfer(store.database, ident, 7)
            proxy.heal()
            runs += 1
            committed, _ = _check_invariants(direct, store)
            if isinstance(outcome, Failure):
                kind = outcome.failure().kind
                failures[kind] = failures.get(kind, 0) + 1
                assert kind == "Unavailable", outcome
                assert ident not in committed or direction == "downstream"
                ambiguous += ident in committed  # COMMIT applied, its reply lost
            else:
                assert ident in committed
            started = time.monotonic()
            recovered = _transfer(store.database, f"{ident}-next", 1)
            campaign.recovered(time.monotonic() - started)
            assert recovered == Success(None), f"the pool did not recover: {recovered}"
            runs += 1
    _check_invariants(direct, store)
    campaign.name = "unit of work on PostgreSQL behind a cutting proxy"
    campaign.count(runs)
    campaign.fault(f"reset after k bytes, {runs // 2} offsets over both directions")
    campaign.failures.update(failures)
    campaign.notes = (
        f"{ambiguous} commits applied with their reply lost (reported Unavailable); "
        "ledger and balances always agree"
    )
    assert sum(failures.values()) >= RUNS_PER_DIRECTION  # the cuts really cut
