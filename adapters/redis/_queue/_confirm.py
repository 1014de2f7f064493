"""Durable publish: a write and the step that confirms it reached disk or a replica.

The confirmation must run on the connection that wrote (``WAIT`` and ``WAITAOF`` count
that client's writes), so the write and its confirmation go in one pipeline: one round
trip, one connection. On a cluster that pipeline goes to the primary holding the topic's
slot. A slot that moved meanwhile (a failover the client has not heard of) answers
``MOVED``: nothing was written, the call is ``Unavailable``, and the driver notes the
slot's new primary, so the next call goes there. Which step follows the write depends on
the server (``QueueDurability.confirmation``): ``WAIT 1`` with a replica (what survives
a failover), else ``WAITAOF 1 0`` on Redis 7.2+, nothing with ``appendfsync always``
(the server fsyncs before it answers). Without any of them the write is stored but
unconfirmed: ``TimedOut``. A write a demoted primary refused (``READONLY``, after a
Sentinel failover) was not stored: the driver sends it once more, to the new primary.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from returns.result import Failure, Result, Success

from portside.adapters.redis._client import REDIS_ERRORS, map_error
from portside.adapters.redis._queue._durability import Confirmation
from portside.adapters.redis._queue._layout import SERVICE
from portside.adapters.redis._queue._steps import Batch, Call, Step
from portside.domain._errors import ServiceError, TimedOut

__all__ = ["write_confirmed"]


def write_confirmed(
    key: bytes,
    how: Confirmation,
    timeout: float,
    write: Call,
    operation: str,
    scripts: tuple[str, ...] = (),
) -> Generator[Step, Any, Result[Any, ServiceError]]:
    """The reply of ``write`` (one command writing ``key``), once the server confirmed it.

    ``scripts`` names the queue scripts ``write`` runs; on a cluster the pipeline goes
    to the node holding ``key``. ``TimedOut`` (the write may be
    stored) when the confirmation did not come within ``timeout`` seconds or this
    server has no way to give one; the connection errors of any command otherwise.
    """
    milliseconds = max(1, int(timeout * 1000))
    commands: tuple[tuple[Any, ...], ...] = (write.command,)
    if how is Confirmation.WAITAOF:
        commands += (("WAITAOF", 1, 0, milliseconds),)
    elif how is Confirmation.REPLICA:
        commands += (("WAIT", 1, milliseconds),)
    try:
        replies: list[Any] = yield Batch(commands, True, scripts, key)
    except REDIS_ERRORS as exc:
        return Failure(map_error(exc, service=SERVICE, operation=operation))
    if how is Confirmation.NONE:
        return Failure(
            TimedOut(
                service=SERVICE,
                operation=operation,
                message="stored, but this server cannot confirm it: no append-only file "
                "synced on every write, no WAITAOF and no replica",
            )
        )
    if how is Confirmation.WAITAOF:
        confirmed = int(replies[1][0]) >= 1
    elif how is Confirmation.REPLICA:
        confirmed = int(replies[1]) >= 1
    else:
        confirmed = True
    if not confirmed:
        return Failure(
            TimedOut(
                service=SERVICE,
                operation=operation,
                message=f"stored, but not confirmed on disk or a replica within {timeout} s",
            )
        )
    return Success(replies[0])
