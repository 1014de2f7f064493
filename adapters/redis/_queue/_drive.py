"""The blocking driver: a queue operation's steps (``_steps``), sent on a blocking client.

The client is a ``redis.Redis`` or a ``RedisCluster``; ``queue_durability`` (the
start-up read of every primary) lives here too. Each step is sent and its reply
handed back to the operation; a redis-py error is thrown into the operation at the
step that raised it, where the operation maps it (so the mapping is the operation's,
shared with the asyncio driver). Errors of any other kind are bugs and propagate. On
a cluster the client routes each command by its keys; a pipeline with a ``node_key``
and a blocking read go to the node holding their key.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any, TypeVar

import redis
from returns.result import Failure, Result, Success

from portside.adapters.redis._client import REDIS_ERRORS, map_error, refused_by_replica
from portside.adapters.redis._queue._durability import QueueDurability, read_server, weakest_of
from portside.adapters.redis._queue._nodes import QueueClient, follow_moved, node_for, primaries
from portside.adapters.redis._queue._steps import Batch, Block, Call, ReadDurability, Step
from portside.domain._errors import ServiceError

__all__ = ["drive", "queue_durability"]

R = TypeVar("R")


def drive(client: QueueClient, scripts: Mapping[str, Any], op: Generator[Step, Any, R]) -> R:
    """Run ``op`` to its end on ``client``; its return value.

    ``scripts`` are the queue's registered ``Script`` objects, loaded again when the
    server lost them (a restart or ``SCRIPT FLUSH``).
    """
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = op.send(reply) if error is None else op.throw(error)
        except StopIteration as done:
            result: R = done.value
            return result
        reply = error = None
        try:
            try:
                reply = _send(client, scripts, step)
            except REDIS_ERRORS as exc:
                if not refused_by_replica(exc):
                    raise
                # A demoted primary refused it (READONLY after a Sentinel failover): it
                # was not applied, and the next connection goes to the new primary.
                reply = _send(client, scripts, step)
        except REDIS_ERRORS as exc:
            follow_moved(client, exc)
            error = exc


def queue_durability(client: QueueClient) -> Result[QueueDurability, ServiceError]:
    """Read what the server (or every primary of the cluster) behind ``client`` can promise.

    ``Failure(Unavailable)`` / ``Failure(TimedOut)`` when a server cannot be reached or
    does not answer; settings a server will not show are reported as unknown. On a
    cluster the report is the weakest primary's (see ``_durability``).
    """
    found: list[tuple[str, QueueDurability]] = []
    try:
        for name, node in primaries(client):
            found.append((name, drive(node, {}, read_server())))
    except REDIS_ERRORS as exc:
        return Failure(map_error(exc, service="redis-queue", operation="durability"))
    if len(found) == 1:
        return Success(found[0][1])
    return Success(weakest_of(found))


def _send(client: QueueClient, scripts: Mapping[str, Any], step: Step) -> Any:
    if type(step) is Call:
        try:
            return client.execute_command(*step.command)  # type: ignore[no-untyped-call]
        except redis.exceptions.NoScriptError:
            # A restarted server or a SCRIPT FLUSH lost them all; a script's SHA is its
            # text's, so loading gives the same SHA back and cached calls stay valid
            # (on a cluster redis-py sends each to every primary).
            for script in scripts.values():
                client.script_load(script.script)
            return client.execute_command(*step.command)  # type: ignore[no-untyped-call]
    if type(step) is Batch:
        target = client if step.node_key is None else node_for(client, step.node_key)
        with target.pipeline(transaction=False) as pipe:
            for name in step.scripts:
                pipe.scripts.add(scripts[name])  # loaded by the pipeline if missing
            for command in step.commands:
                pipe.execute_command(*command)
            return pipe.execute(raise_on_error=step.raise_on_error)
    if type(step) is ReadDurability:
        return queue_durability(client)
    assert type(step) is Block
    return _block(client, step)


def _block(client: QueueClient, step: Block) -> Any:
    # A blocking read legitimately stays silent for `pause` (and Redis wakes blocked
    # clients on its ~100 ms timer), so this one reply may take that much longer than
    # the socket timeout; an idle but healthy server must not look like TimedOut.
    # On a cluster that is a connection of the node holding the stream.
    pool = node_for(client, step.stream).connection_pool
    connection: Any = pool.get_connection()  # redis-py leaves these methods untyped
    try:
        milliseconds = max(1, int(step.pause * 1000))
        connection.send_command(
            "XREAD", "COUNT", 1, "BLOCK", milliseconds, "STREAMS", step.stream, step.newest_id
        )
        return connection.read_response(timeout=step.pause + 0.25 + step.read_timeout)
    except BaseException:
        connection.disconnect()  # the reply may still be on its way: never reuse it
        raise
    finally:
        pool.release(connection)
