"""The Redis queue's settle operations (as steps), what they send, how they read refusals.

``nack`` and ``extend`` check their input here and get back the script arguments
(computed on the adapter's clock only once the input is valid); every settle script's
answer is a ``Settled`` outcome, and ``refused_by`` turns a refusal into the
``InvalidRequest`` the port promises. ``ack_many`` groups its checked deliveries here.
``ack``, ``ack_many``, ``nack`` and ``extend`` are the operations both adapters drive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import redis
from returns.result import Failure, Result, Success

from portside.adapters.redis._client import REDIS_ERRORS
from portside.adapters.redis._queue._core import QueueCore, nogroup
from portside.adapters.redis._queue._layout import SERVICE
from portside.adapters.redis._queue._scripts import Settled
from portside.adapters.redis._queue._steps import Batch, Call, Op
from portside.domain._errors import ServiceError
from portside.domain._queue import Delivery
from portside.ports._clock import Clock
from portside.ports.queue_rules import check_delay, check_deliveries, check_delivery, refused

__all__ = [
    "ack",
    "ack_batches",
    "ack_many",
    "extend",
    "extend_args",
    "nack",
    "nack_args",
    "refused_by",
]


def refused_by(outcome: Settled, delivery: Delivery, operation: str) -> Failure[ServiceError]:
    """The ``InvalidRequest`` for a settle script's refusal (``STALE`` or ``NOT_PENDING``)."""
    stale = outcome is Settled.STALE
    return refused(delivery, stale=stale, operation=operation, service=SERVICE)


def nack_args(
    delivery: Delivery, delay: float, clock: Clock, max_deliveries: int
) -> Result[list[Any], ServiceError]:
    """The NACK script's arguments after the group keys: group, id, receipt, now, due, max.

    A negative or non-finite ``delay``, or anything but a ``Delivery`` with valid
    names, is ``Failure(InvalidRequest)``.
    """
    waited = check_delay("delay", delay, operation="nack", service=SERVICE)
    if type(waited) is Failure:
        return waited
    checked = check_delivery(delivery, operation="nack", service=SERVICE)
    if type(checked) is Failure:
        return checked
    now = clock.now()
    return Success(
        [
            delivery.group,
            delivery.message.id,
            delivery.receipt,
            repr(now),
            repr(now + waited.unwrap()),
            max_deliveries,
        ]
    )


def extend_args(
    delivery: Delivery, by: float, clock: Clock, max_deliveries: int
) -> Result[tuple[list[Any], float], ServiceError]:
    """The EXTEND script's arguments (group, id, receipt, due, max) and the new due time.

    A ``by`` that is not positive and finite, or anything but a ``Delivery`` with
    valid names, is ``Failure(InvalidRequest)``.
    """
    longer = check_delay("by", by, operation="extend", service=SERVICE, positive=True)
    if type(longer) is Failure:
        return longer
    checked = check_delivery(delivery, operation="extend", service=SERVICE)
    if type(checked) is Failure:
        return checked
    due = clock.now() + longer.unwrap()
    args = [delivery.group, delivery.message.id, delivery.receipt, repr(due), max_deliveries]
    return Success((args, due))


def ack_batches(
    deliveries: object,
) -> Result[dict[tuple[str, str], list[str]], ServiceError]:
    """The ACK_MANY script's arguments per (topic, group): the group, then id and receipt pairs.

    Anything but a sequence of ``Delivery`` with valid names is
    ``Failure(InvalidRequest)`` for the whole batch.
    """
    checked = check_deliveries(deliveries, operation="ack_many", service=SERVICE)
    if type(checked) is Failure:
        return checked
    # One script call per (topic, group): the per-call cost of Lua is paid once.
    batches: dict[tuple[str, str], list[str]] = {}
    for delivery in checked.unwrap():
        message = delivery.message
        args = batches.get((message.topic, delivery.group))
        if args is None:
            args = batches[message.topic, delivery.group] = [delivery.group]
        args.append(message.id)
        args.append(delivery.receipt)
    return Success(batches)


def ack(queue: QueueCore[Any], delivery: Delivery) -> Op[None]:
    """``QueuePort.ack``: the ACK script; deletes the entry once every group is done."""
    checked = check_delivery(delivery, operation="ack", service=SERVICE)
    if type(checked) is Failure:
        return checked
    message = delivery.message
    calls = queue._calls_for(message.topic, delivery.group, delivery.consumer)
    step = Call((*calls.ack, message.id, delivery.receipt))
    settled = yield from queue._settled(delivery, "ack", step)
    if type(settled) is Failure:
        return settled
    outcome = settled.unwrap()
    return refused_by(outcome, delivery, "ack") if outcome.refused else Success(None)


def ack_many(queue: QueueCore[Any], deliveries: Sequence[Delivery]) -> Op[int]:
    """``QueuePort.ack_many``: one ACK_MANY call per (topic, group), pipelined when several."""
    grouped = ack_batches(deliveries)
    if type(grouped) is Failure:
        return grouped
    batches = grouped.unwrap()
    steps = [
        queue._script("ack_many", queue._topic_keys(topic).group(group).settle, args)
        for (topic, group), args in batches.items()
    ]
    try:
        if len(steps) == 1:
            counts: list[Any] = [(yield steps[0])]
        else:
            # Plain EVALSHA commands, nothing loaded first: redis-py's cluster pipeline
            # refuses its script methods (and sends each node its own calls). A call
            # answered NOSCRIPT did nothing: it is sent again alone, which loads them.
            counts = yield Batch(tuple(step.command for step in steps), False)
            for i, count in enumerate(counts):
                if isinstance(count, redis.exceptions.NoScriptError):
                    try:
                        counts[i] = yield steps[i]
                    except redis.exceptions.ResponseError as again:
                        counts[i] = again
    except redis.exceptions.ResponseError as exc:
        if not nogroup(exc):
            return queue._fail(exc, "ack_many")
        counts = [exc]
    except REDIS_ERRORS as exc:
        return queue._fail(exc, "ack_many")
    acked = 0
    for (topic, group), count in zip(batches, counts, strict=True):
        if isinstance(count, redis.exceptions.ResponseError) and nogroup(count):
            # The group vanished: nothing of it is pending any more, nothing acked.
            queue._group_vanished(topic, group, "ack_many")
        elif isinstance(count, BaseException):
            return queue._fail(count, "ack_many")
        else:
            acked += int(count)
    return Success(acked)


def nack(queue: QueueCore[Any], delivery: Delivery, delay: float) -> Op[None]:
    """``QueuePort.nack``: the NACK script (due again after ``delay``, or a dead letter)."""
    args = nack_args(delivery, delay, queue.clock, queue.options.max_deliveries)
    if type(args) is Failure:
        return args
    keys = queue._topic_keys(delivery.message.topic).group(delivery.group)
    step = queue._script("nack", keys.every, args.unwrap())
    settled = yield from queue._settled(delivery, "nack", step)
    if type(settled) is Failure:
        return settled
    outcome = settled.unwrap()
    return refused_by(outcome, delivery, "nack") if outcome.refused else Success(None)


def extend(queue: QueueCore[Any], delivery: Delivery, by: float) -> Op[Delivery]:
    """``QueuePort.extend``: the EXTEND script; the delivery with its new lease."""
    checked = extend_args(delivery, by, queue.clock, queue.options.max_deliveries)
    if type(checked) is Failure:
        return checked
    args, due = checked.unwrap()
    keys = queue._topic_keys(delivery.message.topic).group(delivery.group)
    step = queue._script("extend", keys.settle, args)
    settled = yield from queue._settled(delivery, "extend", step)
    if type(settled) is Failure:
        return settled
    outcome = settled.unwrap()
    if outcome.refused:
        return refused_by(outcome, delivery, "extend")
    return Success(attrs.evolve(delivery, lease_expires_at=due))
