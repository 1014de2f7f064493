"""The Redis queue's publishing: every argument checked, then what is sent (as steps).

Every ``publish`` is checked and laid out as a stream entry here (see ``_layout``),
and a publish with a dedupe key is sent (and safely repeated) here. ``publish_many`` gets
its batch checked and its script arguments built here: once per batch, not per body.
``publish`` and ``publish_many`` are the operations both adapters drive (``_steps``).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from typing import Any, NamedTuple

from returns.result import Failure, Result, Success

from portside.adapters.codec import encode
from portside.adapters.redis._client import REDIS_ERRORS, map_error
from portside.adapters.redis._queue._confirm import write_confirmed
from portside.adapters.redis._queue._core import QueueCore
from portside.adapters.redis._queue._layout import SERVICE, TopicKeys
from portside.adapters.redis._queue._steps import Call, Op, Step
from portside.domain._errors import ServiceError, TimedOut, Unavailable
from portside.ports._clock import Clock
from portside.ports.queue_rules import (
    QueueOptions,
    check_body,
    check_delay,
    check_headers,
    check_name,
    check_publish_batch,
)

__all__ = [
    "PublishBatch",
    "batch_args",
    "checked_fields",
    "dedupe_call",
    "publish",
    "publish_deduped",
    "publish_many",
]


def checked_fields(
    topic: str,
    body: bytes,
    headers: Mapping[str, str] | None,
    dedupe_key: str | None,
    delay: float,
    options: QueueOptions,
    clock: Clock,
) -> Result[list[Any], ServiceError]:
    """The stream entry's flat field list for a publish, once every argument passed.

    A bad topic, body, header, dedupe key or delay is ``Failure(InvalidRequest)``
    naming it; headers the codec cannot encode are its ``SerializationError``.
    """
    checked = check_name("topic", topic, operation="publish", service=SERVICE)
    if type(checked) is Failure:
        return checked
    later = check_delay("delay", delay, operation="publish", service=SERVICE)
    if type(later) is Failure:
        return later
    copied = check_headers(headers, options, operation="publish", service=SERVICE)
    if type(copied) is Failure:
        return copied
    values, size = copied.unwrap()
    data = check_body(body, options, operation="publish", service=SERVICE, reserved=size)
    if type(data) is Failure:
        return data
    if dedupe_key is not None:
        key = check_name("dedupe key", dedupe_key, operation="publish", service=SERVICE)
        if type(key) is Failure:
            return key
    now = clock.now()
    fields: list[Any] = [b"b", data.unwrap(), b"t", repr(now)]
    if later.unwrap() > 0:
        fields += [b"a", repr(now + later.unwrap())]
    if values:
        encoded = encode(values)
        if type(encoded) is Failure:
            return encoded
        fields += [b"h", encoded.unwrap()]
    if dedupe_key is not None:
        fields += [b"d", dedupe_key]
    return Success(fields)


class PublishBatch(NamedTuple):
    """A checked ``publish_many`` batch."""

    #: The PUBLISH_MANY script's arguments: the time, the encoded headers, the bodies.
    args: list[Any]
    #: How many bodies the batch holds.
    size: int


def batch_args(
    topic: str,
    bodies: Iterable[bytes],
    headers: Mapping[str, str] | None,
    options: QueueOptions,
    clock: Clock,
) -> Result[PublishBatch, ServiceError]:
    """The PUBLISH_MANY script's arguments for a batch once every argument passed.

    A bad topic, body or header is
    ``Failure(InvalidRequest)`` for the whole batch; headers the codec cannot encode
    are its ``SerializationError``.
    """
    checked_topic = check_name("topic", topic, operation="publish_many", service=SERVICE)
    if type(checked_topic) is Failure:
        return checked_topic
    copied = check_headers(headers, options, operation="publish_many", service=SERVICE)
    if type(copied) is Failure:
        return copied
    values, size = copied.unwrap()
    checked = check_publish_batch(topic, bodies, options, service=SERVICE, reserved=size)
    if type(checked) is Failure:
        return checked
    args: list[Any] = [repr(clock.now()), b""]
    if values:
        encoded = encode(values)
        if type(encoded) is Failure:
            return encoded
        args[1] = encoded.unwrap()
    args += checked.unwrap()
    return Success(PublishBatch(args, len(checked.unwrap())))


def dedupe_call(
    keys: TopicKeys, dedupe_key: str, fields: list[Any], options: QueueOptions
) -> tuple[list[bytes], list[Any]]:
    """The PUBLISH script's keys (the stream, the dedupe key) and arguments."""
    script_keys = [keys.stream, f"{keys.base}:dd:{dedupe_key}".encode()]
    return script_keys, [int(options.dedupe_window * 1000), *fields]


def publish_deduped(
    queue: QueueCore[Any], keys: TopicKeys, dedupe_key: str, fields: list[Any]
) -> Generator[Step, Any, Result[str, ServiceError]]:
    """Publish ``fields`` through the PUBLISH script, stored once per ``dedupe_key``.

    A connection failure or timeout is repeated up to ``queue.dedupe_retries`` times
    (the key makes that safe); then, like any other Redis error, it is the
    ``Unavailable`` or ``TimedOut`` it maps to.
    """
    script_keys, args = dedupe_call(keys, dedupe_key, fields, queue.options)
    step = queue._script("publish", script_keys, args)
    tries = 1 + queue.dedupe_retries
    for attempt in range(tries):
        try:
            reply = yield step
        except REDIS_ERRORS as exc:
            error = map_error(exc, service=SERVICE, operation="publish")
            if attempt + 1 < tries and isinstance(error, Unavailable | TimedOut):
                continue
            return Failure(error)
        return Success(reply.decode())
    raise AssertionError("unreachable: the loop returns")  # pragma: no cover


def publish(
    queue: QueueCore[Any],
    topic: str,
    body: bytes,
    headers: Mapping[str, str] | None,
    dedupe_key: str | None,
    delay: float,
) -> Op[str]:
    """``QueuePort.publish``: a bare XADD, the PUBLISH script with a dedupe key, or durably."""
    fields = checked_fields(topic, body, headers, dedupe_key, delay, queue.options, queue.clock)
    if type(fields) is Failure:
        return fields
    keys = queue._topic_keys(topic)
    if queue.durable_publish:
        how = yield from queue._confirmation()
        if dedupe_key is None:
            write = Call(("XADD", keys.stream, b"*", *fields.unwrap()))
            confirmed = yield from write_confirmed(
                keys.stream, how, queue.confirm_timeout, write, "publish"
            )
        else:
            script_keys, args = dedupe_call(keys, dedupe_key, fields.unwrap(), queue.options)
            write = queue._script("publish", script_keys, args)
            confirmed = yield from write_confirmed(
                keys.stream, how, queue.confirm_timeout, write, "publish", ("publish",)
            )
        return confirmed.map(lambda added: added.decode())
    if dedupe_key is None:
        # Nothing to check first: a bare XADD, the same command a raw client sends
        # (a raw command skips xadd()'s dict-to-list work).
        try:
            added = yield Call(("XADD", keys.stream, b"*", *fields.unwrap()))
        except REDIS_ERRORS as exc:
            return queue._fail(exc, "publish")
        return Success(added.decode())
    return (yield from publish_deduped(queue, keys, dedupe_key, fields.unwrap()))


def publish_many(
    queue: QueueCore[Any], topic: str, bodies: Iterable[bytes], headers: Mapping[str, str] | None
) -> Op[list[str]]:
    """``QueuePort.publish_many``: one atomic script call (confirmed when durable).

    Bad input fails the whole batch before anything is sent. A batch that timed out
    may have been stored (whole); it is not repeated.
    """
    batch = batch_args(topic, bodies, headers, queue.options, queue.clock)
    if type(batch) is Failure:
        return batch
    if not batch.unwrap().size:
        return Success([])
    stream = queue._topic_keys(topic).stream
    step = queue._script("publish_many", [stream], batch.unwrap().args)
    if queue.durable_publish:
        how = yield from queue._confirmation()
        confirmed = yield from write_confirmed(
            stream, how, queue.confirm_timeout, step, "publish_many", ("publish_many",)
        )
        return confirmed.map(lambda replies: [reply.decode() for reply in replies])
    try:
        replies = yield step
    except REDIS_ERRORS as exc:
        return queue._fail(exc, "publish_many")
    return Success([reply.decode() for reply in replies])
