"""Queue rules shared by the in-memory fake and the Redis adapter.

Both adapters validate input here, before touching any state, so bad input fails the
same way everywhere and nothing is published or changed. Results built here are tested
with ``type(result) is Failure``: they are never subclassed, and an ``isinstance``
through the ``returns`` ABCs is several times slower on paths every message takes.
The dead-letter reasons live here too: the contract kit compares them between the
fake and the real adapter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, NamedTuple

import attrs
from returns.result import Failure, Result, Success

from portside.domain._errors import InvalidRequest
from portside.domain._queue import Delivery, QueueMessage

__all__ = [
    "MAX_BATCH",
    "MAX_NAME_LENGTH",
    "MAX_TOKEN_LENGTH",
    "REASON_LEASE_EXPIRED",
    "REASON_NACKED",
    "CheckedHeaders",
    "QueueOptions",
    "check_body",
    "check_delay",
    "check_deliveries",
    "check_delivery",
    "check_headers",
    "check_name",
    "check_publish_batch",
    "check_receive",
    "refused",
]

#: Topic, group, consumer and dedupe-key names are 1 to this many printable characters.
MAX_NAME_LENGTH: Final = 200
#: The longest message id or receipt a delivery may carry (both are made by adapters).
MAX_TOKEN_LENGTH: Final = 1024
#: The most messages one ``receive`` or ``publish_many`` call may move.
MAX_BATCH: Final = 1000
#: The dead-letter reason when the last allowed delivery's lease ran out.
REASON_LEASE_EXPIRED: Final = "lease expired"
#: The dead-letter reason when the last allowed delivery was nacked.
REASON_NACKED: Final = "nacked"


@attrs.frozen
class QueueOptions:
    """Tuning shared by every queue adapter; the defaults suit a work queue.

    ``lease_timeout`` is the visibility timeout in seconds; ``max_deliveries`` how
    many deliveries a message gets before it is dead-lettered; ``max_body_bytes`` the
    largest message ``publish`` accepts (the body plus its header names and values, in
    UTF-8 bytes); ``dedupe_window`` how long, in seconds, a
    ``dedupe_key`` is remembered.
    """

    lease_timeout: float = 30.0
    max_deliveries: int = 5
    max_body_bytes: int = 1024 * 1024
    dedupe_window: float = 3600.0

    def __attrs_post_init__(self) -> None:
        # Options are programming input, not request data: a wrong value raises.
        if not (math.isfinite(self.lease_timeout) and self.lease_timeout > 0):
            raise ValueError("lease_timeout must be a positive number of seconds")
        if self.max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes must be at least 1")
        if not (math.isfinite(self.dedupe_window) and self.dedupe_window > 0):
            raise ValueError("dedupe_window must be a positive number of seconds")


#: Names found valid, with their result (bounded: a process may keep inventing names).
_VALID_NAMES: dict[str, Success[str]] = {}
_MAX_VALID_NAMES: Final = 4096


def _invalid(operation: str, message: str, service: str) -> Failure[InvalidRequest]:
    return Failure(InvalidRequest(service=service, operation=operation, message=message))


def check_name(
    kind: str, name: object, *, operation: str, service: str
) -> Result[str, InvalidRequest]:
    """``name`` when it is a str of 1 to 200 printable characters, else ``InvalidRequest``."""
    if type(name) is str:
        # Results are immutable: a name found valid before gets the same Success again
        # (every receive and ack checks three names; building their results was most of
        # the cost of checking them).
        known = _VALID_NAMES.get(name)
        if known is not None:
            return known
    if not isinstance(name, str):
        return _invalid(operation, f"{kind} name must be a str", service)
    if not name:
        return _invalid(operation, f"{kind} name is empty", service)
    if len(name) > MAX_NAME_LENGTH:
        return _invalid(
            operation, f"{kind} name is longer than {MAX_NAME_LENGTH} characters", service
        )
    if not name.isprintable():
        return _invalid(operation, f"{kind} name has a non-printable character", service)
    valid = Success(name)
    if type(name) is str:
        if len(_VALID_NAMES) >= _MAX_VALID_NAMES:
            _VALID_NAMES.clear()
        _VALID_NAMES[name] = valid
    return valid


def check_body(
    body: object, options: QueueOptions, *, operation: str, service: str, reserved: int = 0
) -> Result[bytes, InvalidRequest]:
    """``body`` as bytes when it is bytes and fits the message limit.

    The limit is ``max_body_bytes`` for the whole message: ``reserved`` is what the
    message's headers already take (``CheckedHeaders.size``).
    """
    if not isinstance(body, bytes | bytearray | memoryview):
        return _invalid(operation, "body must be bytes", service)
    size = body.nbytes if isinstance(body, memoryview) else len(body)
    limit = options.max_body_bytes
    if size + reserved > limit:  # before the copy below
        what = f"body is {size} bytes" + (f" and headers {reserved}" if reserved else "")
        return _invalid(operation, f"{what}, over the maximum of {limit}", service)
    return Success(bytes(body))


class CheckedHeaders(NamedTuple):
    """Headers that passed ``check_headers``: a copy, and the bytes they take."""

    values: dict[str, str]
    #: The UTF-8 size of every name and value: counted against ``max_body_bytes``.
    size: int


def check_headers(
    headers: object, options: QueueOptions, *, operation: str, service: str
) -> Result[CheckedHeaders, InvalidRequest]:
    """A copy of ``headers`` when every name is a valid name and every value valid text.

    A value must be a str that encodes as UTF-8 (no lone surrogates); the names and
    values together must fit in ``max_body_bytes``, checked before anything is copied.
    """
    if headers is None:
        return Success(CheckedHeaders({}, 0))
    if not isinstance(headers, Mapping):
        return _invalid(operation, "headers must be a mapping of str to str", service)
    limit = options.max_body_bytes
    copy: dict[str, str] = {}
    size = 0
    items: Iterable[tuple[object, object]] = headers.items()
    for key, value in items:
        checked = check_name("header", key, operation=operation, service=service)
        if type(checked) is Failure:
            return checked
        if not isinstance(value, str):
            return _invalid(operation, f"header {key!r} value must be a str", service)
        # A character is at least one byte: a value longer than the limit is refused
        # before it is encoded.
        if size + len(value) > limit:
            return _invalid(operation, f"headers are over the maximum of {limit} bytes", service)
        try:
            size += len(checked.unwrap().encode()) + len(value.encode())
        except UnicodeEncodeError:
            return _invalid(operation, f"header {key!r} value is not valid text", service)
        if size > limit:
            return _invalid(operation, f"headers are over the maximum of {limit} bytes", service)
        copy[checked.unwrap()] = value
    return Success(CheckedHeaders(copy, size))


def check_delay(
    what: str, seconds: object, *, operation: str, service: str, positive: bool = False
) -> Result[float, InvalidRequest]:
    """``seconds`` as a float when finite and not negative (or positive when asked)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return _invalid(operation, f"{what} must be a number of seconds", service)
    try:
        value = float(seconds)
    except OverflowError:  # an int beyond the float range
        return _invalid(operation, f"{what} must be finite", service)
    if not math.isfinite(value):
        return _invalid(operation, f"{what} must be finite", service)
    if value < 0 or (positive and value == 0):
        sign = "positive" if positive else "zero or more"
        return _invalid(operation, f"{what} must be {sign}, got {value!r}", service)
    return Success(value)


def check_receive(
    topic: str,
    group: str,
    consumer: str,
    max_messages: object,
    wait: object,
    *,
    service: str,
) -> Result[tuple[int, float], InvalidRequest]:
    """``(max_messages, wait)`` when every argument of ``receive`` is valid."""
    for kind, name in (("topic", topic), ("group", group), ("consumer", consumer)):
        checked = check_name(kind, name, operation="receive", service=service)
        if type(checked) is Failure:
            return checked
    if (
        isinstance(max_messages, bool)
        or not isinstance(max_messages, int)
        or not 1 <= max_messages <= MAX_BATCH
    ):
        return _invalid("receive", f"max_messages must be an int from 1 to {MAX_BATCH}", service)
    waiting = check_delay("wait", wait, operation="receive", service=service)
    if type(waiting) is Failure:
        return waiting
    return Success((max_messages, waiting.unwrap()))


def check_delivery(
    delivery: object, *, operation: str, service: str
) -> Result[Delivery, InvalidRequest]:
    """``delivery`` when it is a ``Delivery`` with valid topic, group and consumer names."""
    if not isinstance(delivery, Delivery):
        return _invalid(operation, "expected a Delivery", service)
    # A Delivery's fields are not checked at construction: a forged one may hold anything.
    message: object = delivery.message
    if not isinstance(message, QueueMessage):
        return _invalid(operation, "the delivery's message must be a QueueMessage", service)
    tokens: tuple[tuple[str, object], ...] = (
        ("message id", message.id),
        ("receipt", delivery.receipt),
    )
    for what, text in tokens:
        if not isinstance(text, str) or not 0 < len(text) <= MAX_TOKEN_LENGTH:
            return _invalid(
                operation, f"{what} must be a str of 1 to {MAX_TOKEN_LENGTH} characters", service
            )
    for kind, name in (
        ("topic", message.topic),
        ("group", delivery.group),
        ("consumer", delivery.consumer),
    ):
        checked = check_name(kind, name, operation=operation, service=service)
        if type(checked) is Failure:
            return checked
    return Success(delivery)


def check_deliveries(
    deliveries: object, *, operation: str, service: str
) -> Result[list[Delivery], InvalidRequest]:
    """The deliveries of an ``ack_many`` call when each one ``check_delivery`` accepts.

    The names of each distinct (topic, group, consumer) are checked once per batch:
    a batch usually repeats one of them.
    """
    if isinstance(deliveries, str | bytes | bytearray) or not isinstance(deliveries, Sequence):
        return _invalid(operation, "deliveries must be a sequence of Delivery", service)
    out: list[Delivery] = []
    seen: set[tuple[str, str, str]] = set()
    for index, delivery in enumerate(deliveries):
        if not isinstance(delivery, Delivery):
            return _invalid(operation, f"item {index}: expected a Delivery", service)
        topic, group, consumer = names = (delivery.message.topic, delivery.group, delivery.consumer)
        # Only str names are ever added to `seen`; others fail the check below.
        if (
            type(topic) is not str
            or type(group) is not str
            or type(consumer) is not str
            or (names not in seen)
        ):
            checked = check_delivery(delivery, operation=operation, service=service)
            if type(checked) is Failure:
                return checked
            seen.add(names)
        out.append(delivery)
    return Success(out)


def check_publish_batch(
    topic: str,
    bodies: object,
    options: QueueOptions,
    *,
    service: str,
    reserved: int = 0,
) -> Result[list[bytes], InvalidRequest]:
    """The bodies of a ``publish_many`` call, each checked, when the batch is valid.

    ``reserved`` is what the batch's headers take in each message (see ``check_body``).
    """
    checked_topic = check_name("topic", topic, operation="publish_many", service=service)
    if type(checked_topic) is Failure:
        return checked_topic
    if isinstance(bodies, str | bytes | bytearray | memoryview | Mapping) or not isinstance(
        bodies, Iterable
    ):
        return _invalid("publish_many", "bodies must be an iterable of bytes", service)
    out: list[bytes] = []
    limit = options.max_body_bytes - reserved
    for index, body in enumerate(bodies):
        if index >= MAX_BATCH:
            return _invalid("publish_many", f"more than {MAX_BATCH} bodies in one batch", service)
        if type(body) is bytes and len(body) <= limit:
            out.append(body)  # the common case, immutable already: no copy, no Result
            continue
        checked = check_body(
            body, options, operation="publish_many", service=service, reserved=reserved
        )
        if type(checked) is Failure:
            return _invalid("publish_many", f"body {index}: {checked.failure().message}", service)
        out.append(checked.unwrap())
    return Success(out)


def refused(
    delivery: Delivery, *, stale: bool, operation: str, service: str
) -> Failure[InvalidRequest]:
    """The ``InvalidRequest`` for settling a delivery that is no longer live.

    ``stale``: the message is still pending but this delivery was nacked or superseded
    by a later delivery; otherwise the message is not pending in the group at all.
    """
    message_id, group = delivery.message.id, delivery.group
    if stale:
        text = f"delivery of message {message_id} is stale: it was nacked or delivered again"
    else:
        text = (
            f"message {message_id} is not pending in group {group!r}: "
            "already acked, dead-lettered, or never delivered to it"
        )
    return _invalid(operation, text, service)
