"""How the Redis queue lays out keys and stream fields, and how it reads them back.

Keys are ``<namespace>:<len(topic)>:{<topic>}:<kind>`` and, per group,
``...:g:<len(group)>:<group>:<kind>``: the lengths make every key decode to one (topic,
group) pair whatever the names contain; the braces keep a topic in one cluster slot.
A message is a stream entry with fields ``b`` (body), ``t`` (publish time on the
adapter's clock), and when present ``h`` (headers, through the codec) and ``d`` (the
dedupe key). A dead letter is an entry of the group's dead-letter stream with the same
fields plus ``id``, ``reason``, ``attempts`` and ``dead_at``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.codec import decode
from portside.domain._errors import ServiceError
from portside.domain._queue import DeadLetter, Delivery, QueueMessage
from portside.ports.queue_rules import QueueOptions

__all__ = [
    "SERVICE",
    "GroupCalls",
    "TopicKeys",
    "decode_dead_letter",
    "decode_dead_letters",
    "decode_deliveries",
    "decode_message",
    "fields_of",
    "names_of",
    "receive_flags",
]

#: The service the queue's errors name.
SERVICE: Final = "redis-queue"


@attrs.define
class TopicKeys:
    """A topic's keys, encoded once: redis-py re-encodes every str argument per call."""

    stream: bytes
    groups: bytes
    base: str
    _by_group: dict[str, list[bytes]] = attrs.field(factory=dict)

    @classmethod
    def of(cls, namespace: str, topic: str) -> TopicKeys:
        """The keys of ``topic`` under ``namespace``."""
        # The length prefix makes every key decode to one (topic, group) pair even
        # when names contain braces or colons; the braces keep a topic in one slot.
        base = f"{namespace}:{len(topic)}:{{{topic}}}"
        return cls((base + ":s").encode(), (base + ":groups").encode(), base)

    def group(self, name: str) -> list[bytes]:
        """The five keys the group scripts take: S G L H D (built once per group)."""
        keys = self._by_group.get(name)
        if keys is None:
            # Length-prefixed like the topic: no group name can end where another's
            # keys begin, whatever characters it holds.
            prefix = f"{self.base}:g:{len(name)}:{name}:"
            keys = [self.stream, self.groups]
            keys += [(prefix + kind).encode() for kind in ("lease", "rec", "dead")]
            self._by_group[name] = keys
        return keys


@attrs.frozen
class GroupCalls:
    """The constant head of one (topic, group, consumer)'s hot script calls.

    ``receive`` is ``EVALSHA sha 5 S G L H D group consumer`` and ``ack`` is ``EVALSHA
    sha 4 S G L H group``, every argument already bytes: redis-py would otherwise encode
    each one again on every call. The caller appends the per-call arguments.
    """

    receive: tuple[Any, ...]
    ack: tuple[Any, ...]

    @classmethod
    def of(
        cls, keys: list[bytes], group: bytes, consumer: bytes, receive: bytes, ack: bytes
    ) -> GroupCalls:
        """The calls of a group's five ``keys``, its encoded names and the scripts' SHAs."""
        return cls(
            ("EVALSHA", receive, b"5", *keys, group, consumer),
            ("EVALSHA", ack, b"4", *keys[:4], group),
        )


def receive_flags(options: QueueOptions) -> dict[tuple[bool, bool], bytes]:
    """The receive script's last argument by (create the group, wake on a wait), encoded.

    It carries ``max_deliveries``, ``lease_timeout`` and the two switches in one string.
    """
    settings = f"{options.max_deliveries} {options.lease_timeout!r}"
    return {
        (create, wake): f"{settings} {int(create)} {int(wake)}".encode()
        for create in (False, True)
        for wake in (False, True)
    }


def names_of(delivery: object) -> tuple[str, str, str] | None:
    """The topic, group and consumer of a delivery (``None`` for anything else)."""
    if isinstance(delivery, Delivery):
        return (delivery.message.topic, delivery.group, delivery.consumer)
    return None


def fields_of(flat: Sequence[Any]) -> dict[bytes, bytes]:
    """A stream entry's flat field list as a dict."""
    return {flat[i]: flat[i + 1] for i in range(0, len(flat), 2)}


def decode_message(
    topic: str, message_id: bytes, fields: dict[bytes, bytes]
) -> Result[QueueMessage, ServiceError]:
    """The message a stream entry's fields hold (``SerializationError`` for bad headers)."""
    headers: dict[str, str] = {}
    raw_headers = fields.get(b"h")
    if raw_headers is not None:
        decoded = decode(raw_headers, dict[str, str])
        if isinstance(decoded, Failure):
            return decoded
        headers = decoded.unwrap()
    dedupe = fields.get(b"d")
    return Success(
        QueueMessage(
            message_id.decode(),
            topic,
            fields.get(b"b", b""),
            headers,
            float(fields.get(b"t", b"0")),
            dedupe.decode() if dedupe is not None else None,
        )
    )


def decode_dead_letter(
    topic: str, group: str, raw: dict[bytes, bytes]
) -> Result[DeadLetter, ServiceError]:
    """The dead letter an entry of a group's dead-letter stream holds."""
    message = decode_message(topic, raw[b"id"], raw)
    if isinstance(message, Failure):
        return message
    return Success(
        DeadLetter(
            message.unwrap(),
            group,
            raw[b"reason"].decode(),
            int(raw[b"attempts"]),
            float(raw[b"dead_at"]),
        )
    )


def decode_dead_letters(
    topic: str, group: str, entries: Sequence[Any]
) -> Result[list[DeadLetter], ServiceError]:
    """The dead letters of an XRANGE reply over a group's dead-letter stream, in order."""
    letters: list[DeadLetter] = []
    for _, raw in entries:
        letter = decode_dead_letter(topic, group, raw)
        if isinstance(letter, Failure):
            return letter
        letters.append(letter.unwrap())
    return Success(letters)


def decode_deliveries(
    topic: str, group: str, consumer: str, reply: Sequence[Any], expires: float
) -> Result[list[Delivery], ServiceError]:
    """The deliveries of the receive script's flat reply.

    After two header items (how many were redelivered, the batch lease) come ``id,
    fields, attempt, receipt`` per redelivered message, then ``id, fields`` per fresh
    one: attempt 1, and the batch lease is its receipt. A reply that delivered nothing
    may end with wake-up data, which is not a delivery.
    """
    out: list[Delivery] = []
    redelivered = int(reply[0])
    end = 2 + 4 * redelivered
    for i in range(2, end, 4):
        message_id, flat, attempt, receipt = reply[i : i + 4]
        message = decode_message(topic, message_id, fields_of(flat))
        if isinstance(message, Failure):
            return message
        out.append(Delivery(message.unwrap(), group, consumer, attempt, receipt.decode(), expires))
    if reply[1]:
        lease = reply[1].decode()
        append = out.append
        for i in range(end, len(reply), 2):
            flat = reply[i + 1]
            # The common entry, exactly ``b <body> t <time>`` as publish writes it, is
            # read in place: no field dict, no Result per message (the hot path of
            # every receive). Anything else takes the general decoder.
            if len(flat) == 4 and flat[0] == b"b" and flat[2] == b"t":
                plain = QueueMessage(reply[i].decode(), topic, flat[1], {}, float(flat[3]), None)
                append(Delivery(plain, group, consumer, 1, lease, expires))
                continue
            message = decode_message(topic, reply[i], fields_of(flat))
            if isinstance(message, Failure):
                return message
            append(Delivery(message.unwrap(), group, consumer, 1, lease, expires))
    return Success(out)
