"""The Redis queue's cold paths around ``receive``: adoption and waiting.

None of these runs per message: orphan
adoption once per group, process and lease timeout, and the blocking wait only when a
``receive(wait=)`` found nothing ready (it then sleeps anyway). They live apart from the hot calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Final

import redis

from portside.adapters.redis._queue._layout import GroupKeys
from portside.adapters.redis._queue._nodes import QueueClient, node_for
from portside.adapters.redis._queue._scripts import AdoptPage, WakeUp
from portside.ports._clock import Clock

__all__ = ["adopt_orphans", "block"]

_LOG: Final = logging.getLogger("portside.queue.redis")
#: Blocking reads are cut into chunks well inside the socket timeout.
_BLOCK_CHUNK: Final = 1.0


def adopt_orphans(
    client: QueueClient,
    run: Callable[[str, Sequence[Any], Sequence[Any]], Any],
    clock: Clock,
    group: str,
    group_keys: GroupKeys,
) -> None:
    """Page XAUTOCLAIM to the end: pending entries with no lease become due now.

    Every entry this adapter reads gets its lease in the same script, so an entry
    pending with neither a record nor a live batch lease lost it (eviction, deleted
    keys, a partial restore) or was read by a client outside the adapter: it is
    adopted whatever its idle time. ``run`` sends a named queue script. Redis errors
    other than a missing group propagate (the caller maps them).
    """
    if not client.exists(group_keys.stream):
        return
    cursor: bytes | str = "0-0"
    while True:
        try:
            page = AdoptPage.of(
                run("adopt", group_keys.settle, [group, 0, cursor, repr(clock.now())])
            )
        except redis.exceptions.ResponseError as exc:
            if "NOGROUP" in str(exc):
                return  # the group does not exist yet: nothing to adopt
            raise
        if page.adopted:
            _LOG.warning(
                "adopted %d pending messages of group %r without a lease record",
                page.adopted,
                group,
            )
        if page.last:
            return
        cursor = page.cursor


def block(
    client: QueueClient,
    stream: bytes,
    wake: WakeUp,
    left: float,
    now: float,
    read_timeout: float,
) -> None:
    """Sleep until a message newer than ``wake.newest_id`` arrives, a lease falls due, or ``left``.

    Redis errors propagate (the caller maps them); the connection is then dropped.
    """
    pause = min(left, _BLOCK_CHUNK)
    if wake.next_due is not None:
        pause = min(pause, max(0.0, wake.next_due - now))
    if pause <= 0.001:
        return
    # A blocking read legitimately stays silent for `pause` (and Redis wakes blocked
    # clients on its ~100 ms timer), so this one reply may take that much longer than
    # the socket timeout; an idle but healthy server must not look like TimedOut.
    # On a cluster that is a connection of the node holding the stream.
    pool = node_for(client, stream).connection_pool
    connection: Any = pool.get_connection()  # redis-py leaves these methods untyped
    try:
        milliseconds = max(1, int(pause * 1000))
        connection.send_command(
            "XREAD", "COUNT", 1, "BLOCK", milliseconds, "STREAMS", stream, wake.newest_id
        )
        connection.read_response(timeout=pause + 0.25 + read_timeout)
    except BaseException:
        connection.disconnect()  # the reply may still be on its way: never reuse it
        raise
    finally:
        pool.release(connection)
