"""The awaiting driver: runs a queue operation's steps (``_steps``) on a ``redis.asyncio`` client.

The twin of ``_drive``: the same steps, replies and thrown errors, awaited. Each step
waits for its turn at the pool (``CallGate``): no turn within the pool's timeout is the
``ConnectionError`` a full blocking pool raises, so the operation maps it to
``Unavailable``. Cancellation: redis-py closes a connection whose reply was not read
when the task awaiting it is cancelled, and a ``Block`` step disconnects its own
connection, so a cancelled step never hands the pool a connection with a stray reply.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis

from portside.adapters.redis._async_client import CallGate
from portside.adapters.redis._client import REDIS_ERRORS, refused_by_replica
from portside.adapters.redis._queue._durability import read_durability
from portside.adapters.redis._queue._steps import Batch, Block, Call, ReadDurability, Step

__all__ = ["drive_async"]

R = TypeVar("R")


async def drive_async(
    client: aioredis.Redis,
    scripts: Mapping[str, Any],
    gate: CallGate,
    op: Generator[Step, Any, R],
) -> R:
    """Run ``op`` to its end on ``client``; its return value (see ``_drive.drive``)."""
    reply: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = op.send(reply) if error is None else op.throw(error)
        except StopIteration as done:
            result: R = done.value
            return result
        reply = error = None
        if type(step) is ReadDurability:
            # Its own steps take their turns (holding one here could starve them).
            reply = await drive_async(client, scripts, gate, read_durability())
            continue
        if not await gate.enter():
            error = redis.exceptions.ConnectionError("no Redis connection free in time")
            continue
        try:
            try:
                reply = await _send(client, scripts, step)
            except REDIS_ERRORS as exc:
                if not refused_by_replica(exc):
                    raise
                reply = await _send(client, scripts, step)  # as in _drive: not applied
        except REDIS_ERRORS as exc:
            error = exc
        finally:
            gate.leave()


async def _send(client: aioredis.Redis, scripts: Mapping[str, Any], step: Step) -> Any:
    if type(step) is Call:
        try:
            return await client.execute_command(*step.command)  # type: ignore[no-untyped-call]
        except redis.exceptions.NoScriptError:
            # As in _drive: every script is loaded again, its SHA unchanged.
            for script in scripts.values():
                await client.script_load(script.script)
            return await client.execute_command(*step.command)  # type: ignore[no-untyped-call]
    if type(step) is Batch:
        async with client.pipeline(transaction=False) as pipe:
            for name in step.scripts:
                pipe.scripts.add(scripts[name])  # loaded by the pipeline if missing
            for command in step.commands:
                pipe.execute_command(*command)
            return await pipe.execute(raise_on_error=step.raise_on_error)
    assert type(step) is Block  # ReadDurability is run by drive_async itself
    return await _block(client, step)


async def _block(client: aioredis.Redis, step: Block) -> Any:
    # As in _drive: the blocking read may stay silent for `pause`, so its one reply is
    # read with that much more than the socket timeout.
    pool = client.connection_pool
    connection: Any = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        milliseconds = max(1, int(step.pause * 1000))
        await connection.send_command(
            "XREAD", "COUNT", 1, "BLOCK", milliseconds, "STREAMS", step.stream, step.newest_id
        )
        return await connection.read_response(timeout=step.pause + 0.25 + step.read_timeout)
    except BaseException:
        # Cancelled or failed mid-read: the reply may still come, so never reuse it.
        await connection.disconnect(nowait=True)
        raise
    finally:
        await pool.release(connection)
