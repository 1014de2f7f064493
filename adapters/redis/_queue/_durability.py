"""What the Redis queue can promise on a given server: persistence, eviction, replicas.

``queue_durability(client)`` (in ``_drive``: it sends the steps of ``read_server`` to
every primary) reads ``appendonly``, ``appendfsync``, ``save`` and
``maxmemory-policy`` (``CONFIG GET``), the replicas (``INFO replication``) and whether
the server has ``WAITAOF`` (Redis 7.2+), and says in one sentence what survives a
restart (``read_server`` is one server's read as steps, for either driver; the
asyncio queue reads its one server with ``read_durability``). ``RedisQueue`` runs it
at start-up (a WARNING when the answer is not
"everything acknowledged survives", or ``QueueNotDurable`` when asked to refuse), and
its durable publish uses it to choose how to confirm a write.

On Redis Cluster every primary is read (a topic lives on whichever primary holds its
slot, so each one's settings matter) and the weakest is reported: each setting as the
least any primary promises, each problem named with its node.
"""

from __future__ import annotations

import enum
from collections.abc import Generator
from typing import Any

import attrs
import redis
from returns.result import Failure, Result, Success

from portside.adapters.redis._client import REDIS_ERRORS, map_error
from portside.adapters.redis._queue._steps import Call, Step
from portside.domain._errors import ServiceError

__all__ = [
    "Confirmation",
    "QueueDurability",
    "QueueNotDurable",
    "read_durability",
    "read_server",
    "weakest_of",
]


class QueueNotDurable(RuntimeError):
    """Raised by ``RedisQueue(..., require_durable=True)`` on a server that can lose messages."""


class Confirmation(enum.Enum):
    """How a durable publish confirms its write on this server."""

    #: ``WAITAOF 1 0``: the local append-only file was fsynced (Redis 7.2+).
    WAITAOF = "waitaof"
    #: ``appendfsync always``: the server fsyncs before it answers; the reply confirms.
    FSYNC_ALWAYS = "appendfsync always"
    #: ``WAIT 1``: at least one replica has the write (chosen whenever there is one).
    REPLICA = "replica"
    #: Nothing can confirm it: a durable publish is ``TimedOut``.
    NONE = "none"


@attrs.frozen
class QueueDurability:
    """What a Redis server keeps of the queue across a restart and under memory pressure.

    ``None`` fields could not be read (a managed server refusing ``CONFIG``).
    ``durable`` is the at-least-once promise across a restart: the append-only file on
    and synced on every write, and no eviction.
    """

    appendonly: bool | None
    appendfsync: str | None
    save: str | None
    maxmemory_policy: str | None
    replicas: int
    has_waitaof: bool
    #: One sentence: what survives a restart and what eviction can do.
    summary: str
    #: Each setting that can lose acknowledged messages, as advice to fix it.
    problems: tuple[str, ...] = ()

    @property
    def durable(self) -> bool:
        """Whether every message the queue acknowledged survives a restart and eviction."""
        return not self.problems

    @property
    def confirmation(self) -> Confirmation:
        """How a durable publish confirms a write on this server.

        A primary with replicas waits for one (``WAIT 1``) before anything else: a
        failover (Sentinel, Cluster) promotes a replica, and what only the old
        primary's disk held is gone from the new one.
        """
        if self.replicas > 0:
            return Confirmation.REPLICA
        if self.has_waitaof and self.appendonly:
            return Confirmation.WAITAOF
        if self.appendonly and self.appendfsync == "always":
            return Confirmation.FSYNC_ALWAYS
        return Confirmation.NONE


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _config(name: str) -> Generator[Step, Any, str | None]:
    """One ``CONFIG GET`` value, ``None`` when the server refuses ``CONFIG``."""
    try:
        reply: Any = yield Call(("CONFIG GET", name))
    except redis.exceptions.ResponseError:
        return None  # managed services often refuse CONFIG
    return _text(reply.get(name, reply.get(name.encode())))


def read_durability() -> Generator[Step, Any, Result[QueueDurability, ServiceError]]:
    """``queue_durability`` of one server, as steps (for the asyncio driver)."""
    try:
        return Success((yield from read_server()))
    except REDIS_ERRORS as exc:
        return Failure(map_error(exc, service="redis-queue", operation="durability"))


def read_server() -> Generator[Step, Any, QueueDurability]:
    """One server's report, as steps (its Redis errors propagate)."""
    appendonly = yield from _config("appendonly")
    appendfsync = yield from _config("appendfsync")
    save = yield from _config("save")
    policy = yield from _config("maxmemory-policy")
    info: Any = yield Call(("INFO", "replication"))
    server: Any = yield Call(("INFO", "server"))
    version = server.get("redis_version", "0")
    major_minor = tuple(int(part) for part in str(version).split(".")[:2] if part.isdigit())
    return _report(
        None if appendonly is None else appendonly == "yes",
        appendfsync,
        save,
        policy,
        int(info.get("connected_slaves", 0)),
        major_minor >= (7, 2),
    )


def weakest_of(found: list[tuple[str, QueueDurability]]) -> QueueDurability:
    """One report for several primaries: every setting at the least any of them promises.

    A durable publish may land on any primary, so its confirmation (derived from these
    fields) is one that every primary can give.
    """
    reports = [report for _, report in found]
    unknown = any(r.appendonly is None for r in reports)
    off = [r for r in reports if r.appendonly is False]
    lazy = [r for r in reports if r.appendonly and r.appendfsync != "always"]
    # The weakest persistence decides what a restart loses: no append-only file (no
    # snapshots either first), then an append-only file not synced on every write.
    weakest = min(off, key=lambda r: bool(r.save)) if off else (lazy or reports)[0]
    policies = [r.maxmemory_policy for r in reports]
    evicting = [p for p in policies if p != "noeviction"]
    combined = _report(
        None if unknown else not off,
        weakest.appendfsync,
        weakest.save,
        None if None in policies else (evicting[0] if evicting else "noeviction"),
        min(r.replicas for r in reports),
        all(r.has_waitaof for r in reports),
    )
    weak = [name for name, report in found if not report.durable]
    named = tuple(
        dict.fromkeys(f"{name}: {problem}" for name, r in found for problem in r.problems)
    )
    where = f"Redis queue on {len(found)} primaries"
    if weak:
        where += f", the weakest ({', '.join(weak)})"
    return attrs.evolve(
        combined, summary=combined.summary.replace("Redis queue", where, 1), problems=named
    )


def _report(
    appendonly: bool | None,
    appendfsync: str | None,
    save: str | None,
    policy: str | None,
    replicas: int,
    has_waitaof: bool,
) -> QueueDurability:
    problems: list[str] = []
    if appendonly is None:
        restart = "unknown (the server does not show its persistence settings)"
        problems.append("persistence unknown: CONFIG is refused")
    elif appendonly and appendfsync == "always":
        restart = "everything acknowledged survives (append-only file, fsync on every write)"
    elif appendonly:
        restart = f"the last second or so of writes can be lost (appendfsync {appendfsync})"
        problems.append(f"appendfsync is {appendfsync}: set appendfsync always")
    elif save:
        restart = f"everything since the last snapshot is lost (no append-only file, save {save!r})"
        problems.append("appendonly is no: set appendonly yes and appendfsync always")
    else:
        restart = "every message is lost (nothing is written to disk)"
        problems.append("appendonly is no and save is empty: set appendonly yes")
    if policy is None:
        evict = "eviction unknown"
        problems.append("maxmemory-policy unknown: CONFIG is refused")
    elif policy == "noeviction":
        evict = "nothing is evicted"
    elif policy.startswith("volatile"):
        evict = f"maxmemory-policy {policy} can evict dedupe keys, letting duplicates through"
        problems.append(f"maxmemory-policy is {policy}: set noeviction")
    else:
        evict = f"maxmemory-policy {policy} can evict streams and leases, losing messages"
        problems.append(f"maxmemory-policy is {policy}: set noeviction")
    summary = f"Redis queue: across a restart {restart}; {evict}"
    return QueueDurability(
        appendonly, appendfsync, save, policy, replicas, has_waitaof, summary, tuple(problems)
    )
