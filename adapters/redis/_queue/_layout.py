"""How the Redis queue lays out keys and stream fields, and how it reads them back.

Keys are ``<namespace>:<len(topic)>:{<topic>}:<kind>`` and, per group,
``...:g:<len(group)>:<group>:<kind>``: the lengths make every key decode to one (topic,
group) pair whatever the names contain; the braces are a cluster hash tag that puts
every key of a topic (stream, groups, leases, records, dead letters, dedupe keys) in one
slot, so each script, which names all its keys in ``KEYS``, runs on one node. A topic
that begins with ``}`` is written ``{=<topic>}``: ``{}`` is an empty tag, which Redis
ignores (it would hash each whole key to its own slot).
A message is a stream entry with fields ``b`` (body), ``t`` (publish time on the
adapter's clock), and when present ``h`` (headers, through the codec) and ``d`` (the
dedupe key). A dead letter is an entry of the group's dead-letter stream with the same
fields plus ``id``, ``reason``, ``attempts`` and ``dead_at``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.codec import decode
from portside.adapters.redis._queue._scripts import ReceiveReply
from portside.domain._errors import ServiceError
from portside.domain._queue import DeadLetter, Delivery, QueueMessage
from portside.ports.queue_rules import QueueOptions

__all__ = [
    "SERVICE",
    "GroupCalls",
    "GroupKeys",
    "TopicKeys",
    "decode_dead_letter",
    "decode_dead_letters",
    "decode_deliveries",
    "decode_entries",
    "decode_message",
    "receive_flags",
]

#: The service the queue's errors name.
SERVICE: Final = "redis-queue"


class GroupKeys(NamedTuple):
    """A group's keys, in the order the scripts take them as ``KEYS``."""

    stream: bytes
    groups: bytes
    leases: bytes
    records: bytes
    #: Leases of last allowed deliveries: when one falls due the message is a dead letter.
    final: bytes
    dead: bytes

    @property
    def settle(self) -> list[bytes]:
        """The five keys of the settle and adopt scripts: S G L H F."""
        return list(self[:5])

    @property
    def every(self) -> list[bytes]:
        """All six keys, for the receive and nack scripts: S G L H F D."""
        return list(self)


@attrs.define
class TopicKeys:
    """A topic's keys, encoded once: redis-py re-encodes every str argument per call."""

    stream: bytes
    groups: bytes
    base: str
    _by_group: dict[str, GroupKeys] = attrs.field(factory=dict)

    @classmethod
    def of(cls, namespace: str, topic: str) -> TopicKeys:
        """The keys of ``topic`` under ``namespace``."""
        # The length prefix makes every key decode to one (topic, group) pair even
        # when names contain braces or colons; the braces keep a topic in one slot.
        # Redis hashes a key by what lies between its first { and the next }: that is
        # the topic up to its first }, never empty thanks to the = (the length prefix
        # still tells "}x" written "{=}x}" from the topic "=}x").
        tag = "=" + topic if topic.startswith("}") else topic
        base = f"{namespace}:{len(topic)}:{{{tag}}}"
        return cls((base + ":s").encode(), (base + ":groups").encode(), base)

    def group(self, name: str) -> GroupKeys:
        """The keys of group ``name`` (built once per group)."""
        keys = self._by_group.get(name)
        if keys is None:
            # Length-prefixed like the topic: no group name can end where another's
            # keys begin, whatever characters it holds.
            prefix = f"{self.base}:g:{len(name)}:{name}:"
            kinds = ("lease", "rec", "final", "dead")
            keys = GroupKeys(self.stream, self.groups, *((prefix + k).encode() for k in kinds))
            self._by_group[name] = keys
        return keys


@attrs.frozen
class GroupCalls:
    """The constant head of one (topic, group, consumer)'s hot script calls.

    ``receive`` is ``EVALSHA sha 6 S G L H F D group consumer`` and ``ack`` is
    ``EVALSHA sha 5 S G L H F group``, every argument already bytes: redis-py would
    otherwise encode each one again on every call. The caller appends the per-call
    arguments.
    """

    receive: tuple[Any, ...]
    ack: tuple[Any, ...]

    @classmethod
    def of(
        cls, keys: GroupKeys, group: bytes, consumer: bytes, receive: bytes, ack: bytes
    ) -> GroupCalls:
        """The calls of a group's ``keys``, its encoded names and the scripts' SHAs."""
        return cls(
            ("EVALSHA", receive, b"6", *keys.every, group, consumer),
            ("EVALSHA", ack, b"5", *keys.settle, group),
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


def decode_message(
    topic: str, message_id: bytes, fields: dict[bytes, bytes]
) -> Result[QueueMessage, ServiceError]:
    """The message a stream entry's fields hold (``SerializationError`` for bad headers)."""
    return _message(
        topic,
        message_id,
        fields.get(b"b", b""),
        fields.get(b"t", b"0"),
        fields.get(b"h"),
        fields.get(b"d"),
    )


def decode_entries(
    topic: str, flat: Sequence[Any], step: int
) -> Result[list[QueueMessage], ServiceError]:
    """The messages of a script's flat list of entries: ``id, fields`` open every ``step`` items.

    One result for the whole list (a ``SerializationError`` for the first bad headers).
    """
    out: list[QueueMessage] = []
    append = out.append
    for i in range(0, len(flat), step):
        message_id, fields = flat[i], flat[i + 1]
        # The entry as a plain publish writes it, ``b <body> t <time>``, is the common
        # case of every receive: read in place, no field lookups.
        if len(fields) == 4 and fields[0] == b"b" and fields[2] == b"t":
            append(QueueMessage(message_id.decode(), topic, fields[1], {}, float(fields[3])))
            continue
        named = {fields[j]: fields[j + 1] for j in range(0, len(fields), 2)}
        message = decode_message(topic, message_id, named)
        if type(message) is Failure:
            return message
        append(message.unwrap())
    return Success(out)


def _message(
    topic: str,
    message_id: bytes,
    body: bytes,
    published: bytes,
    raw_headers: bytes | None,
    dedupe: bytes | None,
) -> Result[QueueMessage, ServiceError]:
    headers: dict[str, str] = {}
    if raw_headers is not None:
        decoded = decode(raw_headers, dict[str, str])
        if type(decoded) is Failure:
            return decoded
        headers = decoded.unwrap()
    return Success(
        QueueMessage(
            message_id.decode(),
            topic,
            body,
            headers,
            float(published),
            dedupe.decode() if dedupe is not None else None,
        )
    )


def decode_dead_letter(
    topic: str, group: str, raw: dict[bytes, bytes]
) -> Result[DeadLetter, ServiceError]:
    """The dead letter an entry of a group's dead-letter stream holds."""
    message = decode_message(topic, raw[b"id"], raw)
    if type(message) is Failure:
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
        if type(letter) is Failure:
            return letter
        letters.append(letter.unwrap())
    return Success(letters)


def decode_deliveries(
    topic: str, group: str, consumer: str, reply: ReceiveReply, expires: float
) -> Result[list[Delivery], ServiceError]:
    """The deliveries of the receive script's reply: redelivered ones, then fresh ones.

    A fresh message is attempt 1 and its receipt is ``<batch lease>#<id>``.
    """
    again = reply.redelivered
    redelivered = decode_entries(topic, again, 4)
    fresh = decode_entries(topic, reply.fresh, 2)
    if type(redelivered) is Failure:
        return redelivered
    if type(fresh) is Failure:
        return fresh
    out = [
        Delivery(message, group, consumer, again[i + 2], again[i + 3].decode(), expires)
        for i, message in zip(range(0, len(again), 4), redelivered.unwrap(), strict=True)
    ]
    # One receipt per message, as the fake gives: the batch lease and the message's id.
    lease = reply.batch_lease.decode() + "#"
    out += [
        Delivery(message, group, consumer, 1, lease + message.id, expires)
        for message in fresh.unwrap()
    ]
    return Success(out)
