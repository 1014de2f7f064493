"""The outbox table: messages a unit of work publishes, stored in its own transaction.

It lives in the entities' ``MetaData`` (``Entities.outbox``), so ``create_all()`` and
an Alembic ``env.py`` over ``entities.metadata`` create it beside the application's
tables. Ids are never reused (SQLite ``AUTOINCREMENT``, sequences elsewhere): the relay
derives each message's queue dedupe key from its id, and a reused id would be dropped
as a duplicate within the dedupe window.
"""

from __future__ import annotations

from typing import Final

import attrs
from sqlalchemy import (
    BigInteger,
    Column,
    Double,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = ["OUTBOX_TABLE", "OutboxRecord", "outbox_table"]

#: The name of the portside-owned outbox table.
OUTBOX_TABLE: Final = "portside_outbox"
# The largest value a MySQL/MariaDB LONGBLOB holds.
_LONGBLOB: Final = 2**32 - 1


def outbox_table(metadata: MetaData) -> Table:
    """The outbox table in ``metadata`` (defined once per ``MetaData``)."""
    existing = metadata.tables.get(OUTBOX_TABLE)
    if existing is not None:
        return existing
    return Table(
        OUTBOX_TABLE,
        metadata,
        # SQLite autoincrements only an INTEGER PRIMARY KEY.
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        # No index on topic: the relay reads by id, and the table holds only what is
        # not relayed yet; an index would cost every commit and every removal a write.
        Column("topic", String(200), nullable=False),
        # MariaDB's BLOB holds 64 KiB and a queue message may be 1 MiB: with a length,
        # MySQL and MariaDB create the smallest BLOB type that holds it (LONGBLOB), so
        # importing the unit of work does not load the MySQL dialect.
        Column("body", LargeBinary(_LONGBLOB), nullable=False),
        Column("headers", Text, nullable=False),
        Column("dedupe_key", String(200), nullable=True),
        # Seconds since the epoch need a double: MariaDB's FLOAT is single precision,
        # which rounds today's time to 128 s and made the relay's lag read 0 or a minute.
        Column("created_at", Double, nullable=False),
        # The lease a relay holds on a row where the database has no SKIP LOCKED.
        Column("leased_until", Double, nullable=True),
        Column("lease_token", String(64), nullable=True),
        sqlite_autoincrement=True,
    )


@attrs.define
class OutboxRecord:
    """One stored outbox message (a row of the table, or of the fake's outbox)."""

    id: int
    topic: str
    body: bytes
    headers: dict[str, str]
    dedupe_key: str | None
    created_at: float
    leased_until: float | None = None
    lease_token: str | None = None
