"""What the Redis queue's settle operations send, and how it reads their refusals.

``nack`` and ``extend`` check their input here and get back the script arguments
(computed on the adapter's clock only once the input is valid); every settle script
answers 1 for done, 0 for "not pending in the group" and -1 for "stale", and
``refused_by`` turns the last two into the ``InvalidRequest`` the port promises.
``ack_many`` groups its deliveries here, once per batch; ``ack`` builds its hot call in
place and only shares ``refused_by``.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from typing import Any

from returns.result import Failure, Result, Success

from portside.adapters.redis._queue_layout import SERVICE, names_of
from portside.domain._errors import ServiceError
from portside.domain._queue import Delivery
from portside.ports._clock import Clock
from portside.ports.queue_rules import check_delay, check_delivery, refused

__all__ = ["ack_batches", "extend_args", "nack_args", "refused_by"]


def refused_by(code: int, delivery: Delivery, operation: str) -> Failure[ServiceError]:
    """The ``InvalidRequest`` for a settle script's refusal ``code`` (0 or -1)."""
    return refused(delivery, stale=code != 0, operation=operation, service=SERVICE)


def nack_args(
    delivery: Delivery, delay: float, clock: Clock, max_deliveries: int
) -> Result[list[Any], ServiceError]:
    """The NACK script's arguments after the group keys: group, id, receipt, now, due, max.

    A negative or non-finite ``delay``, or anything but a ``Delivery`` with valid
    names, is ``Failure(InvalidRequest)``.
    """
    waited = check_delay("delay", delay, operation="nack", service=SERVICE)
    if isinstance(waited, Failure):
        return waited
    checked = check_delivery(delivery, operation="nack", service=SERVICE)
    if isinstance(checked, Failure):
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
    delivery: Delivery, by: float, clock: Clock
) -> Result[tuple[list[Any], float], ServiceError]:
    """The EXTEND script's arguments (group, id, receipt, due) and the new due time.

    A ``by`` that is not positive and finite, or anything but a ``Delivery`` with
    valid names, is ``Failure(InvalidRequest)``.
    """
    longer = check_delay("by", by, operation="extend", service=SERVICE, positive=True)
    if isinstance(longer, Failure):
        return longer
    checked = check_delivery(delivery, operation="extend", service=SERVICE)
    if isinstance(checked, Failure):
        return checked
    due = clock.now() + longer.unwrap()
    return Success(([delivery.group, delivery.message.id, delivery.receipt, repr(due)], due))


def ack_batches(
    deliveries: Iterable[Delivery],
    known: Container[tuple[str, str, str]],
    remember: Callable[[str, str, str], object],
) -> Result[dict[tuple[str, str], list[str]], ServiceError]:
    """The ACK_MANY script's arguments per (topic, group): the group, then id and receipt pairs.

    Names in ``known`` were checked before; others are checked here and passed to
    ``remember``. Anything but a ``Delivery`` with valid names is
    ``Failure(InvalidRequest)`` for the whole batch.
    """
    # One script call per (topic, group): the per-call cost of Lua is paid once.
    batches: dict[tuple[str, str], list[str]] = {}
    last: tuple[str, str, str] | None = None
    args: list[str] = []
    for delivery in deliveries:
        names = names_of(delivery)
        if names != last:  # a batch usually repeats one topic, group and consumer
            if names is None or names not in known:
                checked = check_delivery(delivery, operation="ack_many", service=SERVICE)
                if isinstance(checked, Failure):
                    return checked
                names = (delivery.message.topic, delivery.group, delivery.consumer)
                remember(*names)
            last = names
            args = batches.setdefault((delivery.message.topic, delivery.group), [])
            if not args:
                args.append(delivery.group)
        args += (delivery.message.id, delivery.receipt)
    return Success(batches)
