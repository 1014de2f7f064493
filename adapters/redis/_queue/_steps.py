"""The Redis queue's operations without I/O: generators that yield what to send.

Every queue operation is written once, as a generator (in ``_publish``, ``_receive``,
``_settle`` and ``_durability``): it checks its input, builds the commands, yields each
round trip as a step and gets the reply back (or the redis-py exception thrown in at the
``yield``, where its own ``except`` maps it), decodes it and returns the ``Result``.
``RedisQueue`` runs these with a blocking driver (``_drive``), ``AsyncRedisQueue`` with
an awaiting one (``_async_drive``): the rules, keys, scripts, retries, replies and error
mapping are the same code, and the two adapters differ only in how a step is sent.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, NamedTuple, TypeAlias, TypeVar

from returns.result import Result

from portside.domain._errors import ServiceError

__all__ = ["Batch", "Block", "Call", "Op", "ReadDurability", "Step"]

T = TypeVar("T")


class Call(NamedTuple):
    """One command and its reply; an ``EVALSHA`` the server lost is loaded and sent again."""

    command: tuple[Any, ...]


class Batch(NamedTuple):
    """Several commands in one pipelined round trip (no transaction); the replies, in order.

    With ``raise_on_error`` the first error reply is raised, otherwise error replies come
    back in place as exceptions. ``scripts`` names the queue scripts its ``EVALSHA``
    commands run: the pipeline makes sure the server has them first.
    """

    commands: tuple[tuple[Any, ...], ...]
    raise_on_error: bool = True
    scripts: tuple[str, ...] = ()
    #: On a cluster, the pipeline goes to the node holding this key (``None``: routed
    #: per command by the client).
    node_key: bytes | None = None


class Block(NamedTuple):
    """Wait (``XREAD BLOCK``) up to ``pause`` seconds for an entry after ``newest_id``.

    Sent on a connection of its own (of the node holding ``stream``, on a cluster) and
    read with a timeout of ``pause`` plus the ``read_timeout``; the reply (``None`` or
    the entry) is not used, only the waking.
    """

    stream: bytes
    newest_id: bytes
    pause: float
    read_timeout: float


class ReadDurability(NamedTuple):
    """Read what the server (every primary, on a cluster) can promise: a ``Result``.

    The reply is ``queue_durability``'s; it maps its own errors, so none is thrown in.
    """


Step: TypeAlias = Call | Batch | Block | ReadDurability
#: A queue operation: yields steps, gets their replies, returns the operation's result.
Op: TypeAlias = Generator[Step, Any, Result[T, ServiceError]]
