"""The Redis queue's reading operations (as steps): ``receive``, ``dead_letters``, ``stored``.

``receive`` is one RECEIVE script call in the common case. Around it: the first receive
of a group in this process makes sure the group exists, every ``lease_timeout`` each
process adopts the group's orphans (``QueueCore._adopt``), a group that vanished is
created again, and a ``receive(wait=)`` that found nothing blocks (a ``Block`` step,
in chunks well inside the socket timeout) until a message arrives or a lease falls due.
"""

from __future__ import annotations

import time
from random import getrandbits as _random_bits
from typing import Any, Final

import redis
from returns.result import Failure, Success

from portside.adapters.redis._client import REDIS_ERRORS
from portside.adapters.redis._queue._core import QueueCore, nogroup
from portside.adapters.redis._queue._layout import (
    SERVICE,
    decode_dead_letters,
    decode_deliveries,
)
from portside.adapters.redis._queue._scripts import ReceiveReply, WakeUp
from portside.adapters.redis._queue._steps import Block, Call, Op
from portside.domain._queue import DeadLetter, Delivery
from portside.ports.queue_rules import check_name, check_receive

__all__ = ["block_pause", "dead_letters", "receive", "stored"]

#: Blocking reads are cut into chunks well inside the socket timeout.
_BLOCK_CHUNK: Final = 1.0


def block_pause(wake: WakeUp, left: float, now: float) -> float | None:
    """How long to block for a message newer than ``wake.newest_id``; ``None``: look again now.

    At most ``left`` (the wait's remaining time) and one chunk, and no later than the
    group's next lease or delay falls due.
    """
    pause = min(left, _BLOCK_CHUNK)
    if wake.next_due is not None:
        pause = min(pause, max(0.0, wake.next_due - now))
    return None if pause <= 0.001 else pause


def receive(
    queue: QueueCore[Any], topic: str, group: str, consumer: str, max_messages: int, wait: float
) -> Op[list[Delivery]]:
    """``QueuePort.receive``: own due messages, others' due ones, then new ones.

    Creates the group on first use: the topic's first group starts with the
    messages kept before it, a later one after the messages already published.
    """
    checked = check_receive(topic, group, consumer, max_messages, wait, service=SERVICE)
    if type(checked) is Failure:
        return checked
    count, waiting = checked.unwrap()
    calls = queue._calls_for(topic, group, consumer)
    try:
        # The first receive of a group in this process makes sure the group exists;
        # later ones skip that (a NOGROUP reply, after the group vanished, brings
        # it back). Every lease_timeout each process pages through the group's
        # pending entries and adopts those whose lease was lost.
        key = (topic, group)
        create = key not in queue._next_adoption
        if queue._due_for_adoption(topic, group):
            yield from queue._adopt(topic, group)
        deadline = time.monotonic() + waiting if waiting else 0.0
        while True:
            now = queue.clock.now()
            # Random, so no two receives anywhere share a receipt (the module's
            # generator is reseeded in a forked child; a receipt is no secret).
            head = (*calls.receive, count, repr(now), f"{_random_bits(48):012x}.")
            try:
                reply = ReceiveReply.of((yield Call((*head, queue._flags(create, waiting)))))
            except redis.exceptions.ResponseError as exc:
                if create or not nogroup(exc):
                    raise
                queue._group_vanished(topic, group, "receive")
                create = True
                reply = ReceiveReply.of((yield Call((*head, queue._flags(True, waiting)))))
                yield from queue._adopt(topic, group)
            queue._vanished.discard(key)
            if reply.delivered or reply.wake is None:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            pause = block_pause(reply.wake, remaining, now)
            if pause is not None:
                stream = queue._topic_keys(topic).stream
                yield Block(stream, reply.wake.newest_id, pause, queue._read_timeout)
    except REDIS_ERRORS as exc:
        return queue._fail(exc, "receive")
    return decode_deliveries(topic, group, consumer, reply, now + queue.options.lease_timeout)


def dead_letters(queue: QueueCore[Any], topic: str, group: str) -> Op[list[DeadLetter]]:
    """``QueuePort.dead_letters``: sweep spent leases, then read the dead-letter stream."""
    for kind, name in (("topic", topic), ("group", group)):
        checked = check_name(kind, name, operation="dead_letters", service=SERVICE)
        if type(checked) is Failure:
            return checked
    group_keys = queue._topic_keys(topic).group(group)
    now = queue.clock.now()
    try:
        # A receive of zero messages that does not create the group: only the sweep.
        args = [group, "-", 0, repr(now), "x.", queue._flags(False, 0.0)]
        try:
            yield queue._script("receive", group_keys.every, args)
        except redis.exceptions.ResponseError as exc:
            if not nogroup(exc):
                raise
            # The group vanished with its leases: nothing to sweep, its dead
            # letters (if they survived) are still listed.
            queue._group_vanished(topic, group, "dead_letters")
        entries: Any = yield Call(("XRANGE", group_keys.dead, "-", "+"))
    except REDIS_ERRORS as exc:
        return queue._fail(exc, "dead_letters")
    return decode_dead_letters(topic, group, entries)


def stored(queue: QueueCore[Any], topic: str) -> Op[int]:
    """How many entries the topic's stream holds; a bad topic name is ``InvalidRequest``."""
    checked = check_name("topic", topic, operation="stored", service=SERVICE)
    if type(checked) is Failure:
        return checked
    try:
        return Success(int((yield Call(("XLEN", queue._topic_keys(topic).stream)))))
    except REDIS_ERRORS as exc:
        return queue._fail(exc, "stored")
