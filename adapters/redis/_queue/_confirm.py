"""Durable publish: a write and the step that confirms it reached disk or a replica.

The confirmation must run on the connection that wrote (``WAIT`` and ``WAITAOF``
count that client's writes), so the write and its confirmation go in one pipeline:
one round trip, one connection. On a cluster that pipeline goes to the primary holding
the topic's slot (a slot that moved meanwhile answers ``MOVED``: an error, not a
retry). Which step follows the write depends on the server
(``QueueDurability.confirmation``): ``WAIT 1`` with a replica (what survives a
failover), else ``WAITAOF 1 0`` on Redis 7.2+, nothing with ``appendfsync always``
(the server fsyncs before it answers). Without any of them the write is stored but
unconfirmed: ``TimedOut``. A write a demoted primary refused (``READONLY``, after a
Sentinel failover) was not stored: it is sent once more, to the new primary.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from returns.result import Failure, Result, Success

from portside.adapters.redis._client import REDIS_ERRORS, map_error, refused_by_replica
from portside.adapters.redis._queue._durability import Confirmation
from portside.adapters.redis._queue._layout import SERVICE
from portside.adapters.redis._queue._nodes import QueueClient, node_for
from portside.domain._errors import ServiceError, TimedOut

__all__ = ["write_confirmed"]


def write_confirmed(
    client: QueueClient,
    key: bytes,
    how: Confirmation,
    timeout: float,
    write: Callable[[Any], None],
    operation: str,
) -> Result[Any, ServiceError]:
    """The reply of the command ``write`` adds to a pipeline, once the server confirmed it.

    ``key`` is the key written: on a cluster the pipeline goes to the node holding it.

    ``TimedOut`` (the write may be stored) when the confirmation did not come within
    ``timeout`` seconds or this server has no way to give one; the connection errors
    of any command otherwise.
    """
    milliseconds = max(1, int(timeout * 1000))
    try:
        try:
            replies = _send(client, key, how, milliseconds, write)
        except REDIS_ERRORS as exc:
            if not refused_by_replica(exc):
                raise
            replies = _send(client, key, how, milliseconds, write)
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


def _send(
    client: QueueClient,
    key: bytes,
    how: Confirmation,
    milliseconds: int,
    write: Callable[[Any], None],
) -> list[Any]:
    """The replies of the write and its confirmation step, sent in one pipeline."""
    with node_for(client, key).pipeline(transaction=False) as pipe:
        write(pipe)
        if how is Confirmation.WAITAOF:
            pipe.execute_command("WAITAOF", 1, 0, milliseconds)  # type: ignore[no-untyped-call]
        elif how is Confirmation.REPLICA:
            pipe.execute_command("WAIT", 1, milliseconds)  # type: ignore[no-untyped-call]
        replies: list[Any] = pipe.execute()
    return replies
