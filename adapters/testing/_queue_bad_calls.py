"""The queue kit's bad input: every call any queue adapter must answer ``InvalidRequest``.

Each entry is made on the adapter under test and on the model with the latest delivery
each of them handed out (or a forged one, never live), and both must refuse it alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import attrs
from returns.result import Result

from portside.domain._errors import ServiceError
from portside.domain._queue import Delivery, QueueMessage
from portside.ports._queue import QueuePort

__all__ = ["BAD_CALLS", "CONSUMERS", "GROUPS", "MAX_BODY", "TOPICS"]

#: ``t0`` has both groups before anything is published; ``t1`` gets its groups from
#: the receives the machine draws, so messages published to it first are a backlog.
TOPICS: Final = ("t0", "t1")
GROUPS: Final = ("g0", "g1")
CONSUMERS: Final = ("c0", "c1")
#: The kit's ``max_body_bytes`` (see ``KIT_OPTIONS``).
MAX_BODY: Final = 64


def _forged(delivery: Delivery | None) -> Delivery:
    """A delivery to hand in when the machine has none yet (never a live one)."""
    if delivery is not None:
        return delivery
    message = QueueMessage("0-1", TOPICS[0], b"", {}, 0.0)
    return Delivery(message, GROUPS[0], CONSUMERS[0], 1, "no-such-receipt")


#: Each bad call, made on the adapter under test and on the model with the latest
#: delivery each of them handed out (or a forged one).
BAD_CALLS: Final[dict[str, Callable[[QueuePort, Delivery | None], Result[Any, ServiceError]]]] = {
    "empty topic": lambda q, _: q.publish("", b"bad"),
    "long topic": lambda q, _: q.publish("t" * 201, b"bad"),
    "big body": lambda q, _: q.publish(TOPICS[0], b"x" * (MAX_BODY + 1)),
    "empty dedupe key": lambda q, _: q.publish(TOPICS[0], b"bad", dedupe_key=""),
    "negative publish delay": lambda q, _: q.publish(TOPICS[0], b"bad", delay=-1.0),
    "publish delay beyond the float range": lambda q, _: q.publish(
        TOPICS[0], b"bad", delay=10**400
    ),
    "lone surrogate in a header value": lambda q, _: q.publish(
        TOPICS[0], b"bad", headers={"h": "\ud800"}
    ),
    "header value not a str": lambda q, _: q.publish(
        TOPICS[0],
        b"bad",
        headers={"h": 1},  # type: ignore[dict-item]
    ),
    "headers over the message limit": lambda q, _: q.publish(
        TOPICS[0], b"", headers={"h": "x" * MAX_BODY}
    ),
    "bad headers on an empty batch": lambda q, _: q.publish_many(
        TOPICS[0], [], headers={"h": "\udfff"}
    ),
    "batch headers over the limit": lambda q, _: q.publish_many(
        TOPICS[0], [b"m"], headers={"h": "x" * (MAX_BODY - 1)}
    ),
    "bodies not an iterable": lambda q, _: q.publish_many(TOPICS[0], None),  # type: ignore[arg-type]
    "empty group": lambda q, _: q.receive(TOPICS[0], "", CONSUMERS[0]),
    "long consumer": lambda q, _: q.receive(TOPICS[0], GROUPS[0], "c" * 201),
    "zero count": lambda q, _: q.receive(TOPICS[0], GROUPS[0], CONSUMERS[0], max_messages=0),
    "negative wait": lambda q, _: q.receive(TOPICS[0], GROUPS[0], CONSUMERS[0], wait=-1.0),
    "wait beyond the float range": lambda q, _: q.receive(
        TOPICS[0], GROUPS[0], CONSUMERS[0], wait=10**400
    ),
    "delay beyond the float range": lambda q, d: q.nack(_forged(d), delay=10**400),
    "extension beyond the float range": lambda q, d: q.extend(_forged(d), by=-(10**400)),
    "ack_many of None": lambda q, _: q.ack_many(None),  # type: ignore[arg-type]
    "ack_many of [None]": lambda q, _: q.ack_many([None]),  # type: ignore[list-item]
    "ack_many of [object()]": lambda q, _: q.ack_many([object()]),  # type: ignore[list-item]
    "ack_many with a bad item after a good one": lambda q, d: q.ack_many(
        [_forged(d), "x"]  # type: ignore[list-item]
    ),
    "ack of a forged message": lambda q, d: q.ack(
        attrs.evolve(_forged(d), message=None)  # type: ignore[arg-type]
    ),
}
