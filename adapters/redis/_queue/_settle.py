"""What the Redis queue's settle operations send, and how it reads their refusals.

``nack`` and ``extend`` check their input here and get back the script arguments
(computed on the adapter's clock only once the input is valid); every settle script's
answer is a ``Settled`` outcome, and ``refused_by`` turns a refusal into the
``InvalidRequest`` the port promises. ``ack_many`` groups its checked deliveries here.
"""

from __future__ import annotations

from typing import Any

from returns.result import Failure, Result, Success

from portside.adapters.redis._queue._layout import SERVICE
from portside.adapters.redis._queue._scripts import Settled
from portside.domain._errors import ServiceError
from portside.domain._queue import Delivery
from portside.ports._clock import Clock
from portside.ports.queue_rules import check_delay, check_deliveries, check_delivery, refused

__all__ = ["ack_batches", "extend_args", "nack_args", "refused_by"]


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
