"""The Redis queue's state and plumbing: its settings, scripts and per-name caches.

``RedisQueue`` (in ``_adapter``) is this plus the port's operations. Here live what every
operation leans on: the attrs fields, script registration and the EVALSHA call that
reloads scripts after a NOSCRIPT, the error mapping, and the caches that turn (already
validated) names into encoded keys and ready-made hot calls once per name.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final

import attrs
import redis
from redis.commands.core import Script
from returns.result import Failure

from portside.adapters.clock import SystemClock
from portside.adapters.redis._client import map_error, refused_by_replica
from portside.adapters.redis._queue._durability import (
    QueueDurability,
    QueueNotDurable,
    queue_durability,
)
from portside.adapters.redis._queue._layout import SERVICE, GroupCalls, TopicKeys, receive_flags
from portside.adapters.redis._queue._nodes import QueueClient, encoder_of, socket_timeout
from portside.adapters.redis._queue._scripts import SCRIPTS, script_text
from portside.domain._errors import ServiceError
from portside.ports._clock import Clock
from portside.ports.queue_rules import QueueOptions

__all__ = ["QueueCore", "check_namespace"]

_LOG: Final = logging.getLogger("portside.queue.redis")
#: Bounds the per-name caches of a process that keeps inventing names.
_MAX_CACHED: Final = 4096


#: Characters a namespace may not hold: ``|`` ends a cache namespace (``RedisCache``
#: deletes ``<its namespace>|*``), the others are glob syntax for SCAN MATCH patterns.
_NOT_IN_NAMESPACE: Final = frozenset("|*?[]\\{}")


def check_namespace(namespace: object) -> None:
    """Raise ``ValueError`` when ``namespace`` cannot name a queue's keys.

    Construction input, like ``QueueOptions``, so a wrong value raises. A queue named
    ``x|q`` would be wiped by ``RedisCache(namespace="x").clear()``.
    """
    if not isinstance(namespace, str) or not namespace or len(namespace) > 200:
        raise ValueError("queue namespace must be a str of 1 to 200 characters")
    if not namespace.isprintable() or _NOT_IN_NAMESPACE.intersection(namespace):
        raise ValueError("queue namespace must be printable and hold none of | * ? [ ] \\ { }")


@attrs.define
class QueueCore:
    """The fields and shared machinery of ``RedisQueue`` (see there); not a queue itself.

    Building one registers the queue scripts and checks the server's eviction policy.
    """

    # The client's repr names the server; kept out of ours all the same. A
    # ``RedisCluster`` routes every call by its keys: a topic's keys share one slot.
    client: QueueClient = attrs.field(repr=False)
    clock: Clock = attrs.field(factory=SystemClock)
    options: QueueOptions = attrs.field(factory=QueueOptions)
    namespace: str = "portside:queue"
    #: How often a ``publish`` that carries a dedupe key is repeated after a
    #: connection failure or timeout (safe: the key makes it idempotent).
    dedupe_retries: int = 1
    owns_client: bool = False
    #: Refuse to start (``QueueNotDurable``) on a server that can lose acknowledged
    #: messages across a restart or to eviction, instead of logging a warning.
    require_durable: bool = False
    #: Confirm every publish reached the disk or a replica before it returns
    #: (``TimedOut`` when that cannot be confirmed within ``confirm_timeout``).
    durable_publish: bool = False
    confirm_timeout: float = 1.0
    #: What the server promised at start-up (``None`` when it could not be read).
    durability: QueueDurability | None = attrs.field(default=None, init=False, repr=False)
    _keys: dict[str, TopicKeys] = attrs.field(factory=dict, init=False, repr=False)
    #: (topic, group) -> when (adapter clock) this process next pages through the
    #: group's pending entries for orphans; absent until its first receive here.
    _next_adoption: dict[tuple[str, str], float] = attrs.field(factory=dict, init=False, repr=False)
    #: Groups found missing on the server and not yet created again (logged once).
    _vanished: set[tuple[str, str]] = attrs.field(factory=set, init=False, repr=False)
    _scripts: dict[str, Script] = attrs.field(factory=dict, init=False, repr=False)
    _receive_flags: dict[tuple[bool, bool], bytes] = attrs.field(
        factory=dict, init=False, repr=False
    )
    # Validated (topic, group, consumer) -> their script calls, constants encoded.
    _calls: dict[tuple[str, str, str], GroupCalls] = attrs.field(
        factory=dict, init=False, repr=False
    )

    _read_timeout: float = attrs.field(default=1.0, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        check_namespace(self.namespace)
        self._read_timeout = socket_timeout(self.client) or 1.0
        for name in SCRIPTS:
            self._scripts[name] = self.client.register_script(script_text(name))
        # Encoded once: the receive script takes its settings as one argument.
        self._receive_flags.update(receive_flags(self.options))
        self._check_durability()

    def _check_durability(self) -> None:
        """Read what the server promises; warn (or refuse to start) when it can lose work."""
        report = queue_durability(self.client)
        if type(report) is Failure:
            if self.require_durable:
                raise QueueNotDurable(f"cannot check the Redis queue's durability: {report}")
            _LOG.info("could not read the Redis queue's durability: %s", report.failure())
            return
        self.durability = found = report.unwrap()
        if found.durable:
            _LOG.info("%s", found.summary)
            return
        advice = "; ".join(found.problems)
        if self.require_durable:
            raise QueueNotDurable(f"{found.summary} ({advice})")
        _LOG.warning("%s (%s)", found.summary, advice)

    def _topic_keys(self, topic: str) -> TopicKeys:
        """The encoded keys of ``topic`` (a cache of encoding, not of validation)."""
        keys = self._keys.get(topic)
        if keys is None:
            if len(self._keys) >= _MAX_CACHED:
                self._keys.clear()
            keys = self._keys[topic] = TopicKeys.of(self.namespace, topic)
        return keys

    def _calls_for(self, topic: str, group: str, consumer: str) -> GroupCalls:
        """The hot calls of valid names, built once (callers validate first)."""
        calls = self._calls.get((topic, group, consumer))
        if calls is None:
            if len(self._calls) >= _MAX_CACHED:
                self._calls.clear()
            keys = self._topic_keys(topic).group(group)
            # The client's own encoder, so the bytes are what redis-py would send.
            encoder = encoder_of(self.client)
            name, member = encoder.encode(group), encoder.encode(consumer)
            receive, ack = (self._scripts[s].sha.encode() for s in ("receive", "ack"))
            calls = GroupCalls.of(keys, name, member, receive, ack)
            self._calls[topic, group, consumer] = calls
        return calls

    def _call(self, command: tuple[Any, ...]) -> Any:
        """Send one EVALSHA command; on NOSCRIPT load every script and send it again.

        A command a demoted primary refused (``READONLY``, after a Sentinel failover)
        was not applied: it is sent once more, on a connection to the new primary.
        """
        try:
            return self._send(command)
        except redis.exceptions.ConnectionError as exc:
            if not refused_by_replica(exc):
                raise
        return self._send(command)

    def _send(self, command: tuple[Any, ...]) -> Any:
        try:
            return self.client.execute_command(*command)  # type: ignore[no-untyped-call]
        except redis.exceptions.NoScriptError:
            self._load_scripts()
            return self.client.execute_command(*command)  # type: ignore[no-untyped-call]

    def _load_scripts(self) -> None:
        """Load every queue script (on a cluster redis-py sends each to every primary).

        A restarted server or a SCRIPT FLUSH lost them all; a script's SHA is its
        text's, so loading gives the same SHA back and cached calls stay valid.
        """
        for script in self._scripts.values():
            self.client.script_load(script.script)

    def _run(self, name: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """EVALSHA the named script, loading it first if the server does not know it."""
        return self._call(("EVALSHA", self._scripts[name].sha, len(keys), *keys, *args))

    def _group_vanished(self, topic: str, group: str, operation: str) -> None:
        """Log, once, that the server lost a group this process used, and recreate it.

        The next ``receive`` creates the group again and adopts what is pending.
        """
        self._next_adoption.pop((topic, group), None)
        if (topic, group) in self._vanished:
            return
        self._vanished.add((topic, group))
        _LOG.error(
            "queue group %r of topic %r vanished from Redis (seen by %s): its leases, "
            "unread and unacked messages may be lost (a restart without persistence, "
            "eviction, or deleted keys); creating it again and adopting what is left",
            group,
            topic,
            operation,
        )

    def _fail(self, exc: BaseException, operation: str) -> Failure[ServiceError]:
        return Failure(map_error(exc, service=SERVICE, operation=operation))

    def _flags(self, create: bool, waiting: float) -> bytes:
        """The receive script's last argument: settings and switches in one string."""
        return self._receive_flags[create, waiting > 0]
