"""The in-memory queue: the reference model of ``QueuePort``. For tests and the embedded default.

Everything the Redis adapter keeps in Redis is modelled here in plain Python, under one
lock: per topic the stored messages (each with a count of groups that still need it),
per group the messages not yet delivered, the pending deliveries (owner, receipt,
attempt and the time they become due again) and the dead letters. Leases run on the
injected ``Clock``; with a ``ManualClock`` nothing ever waits in real time.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.clock import SystemClock
from portside.domain._errors import ServiceError
from portside.domain._queue import DeadLetter, Delivery, QueueMessage
from portside.ports._clock import Clock
from portside.ports._queue import QueuePort
from portside.ports.queue_rules import (
    REASON_LEASE_EXPIRED,
    REASON_NACKED,
    CheckedHeaders,
    QueueOptions,
    check_body,
    check_delay,
    check_deliveries,
    check_delivery,
    check_headers,
    check_name,
    check_publish_batch,
    check_receive,
    refused,
)

__all__ = ["MemoryQueue", "QueueOptions"]

_SERVICE: Final = "memory-queue"
#: The owner of messages whose lease was lost, until a consumer takes them (the
#: name the Redis adapter's recovery gives them too).
RECOVERY_CONSUMER: Final = "portside-recovery"


@attrs.define
class _Lease:
    """A message pending in one group: who holds it, until when, which delivery."""

    seq: int
    consumer: str
    attempt: int
    due: float
    #: The receipt of the live delivery; ``None`` once the message was nacked.
    receipt: str | None


@attrs.define
class _Group:
    unread: deque[str] = attrs.field(factory=deque)
    pending: dict[str, _Lease] = attrs.field(factory=dict)
    dead: list[DeadLetter] = attrs.field(factory=list)


@attrs.define
class _Stored:
    message: QueueMessage
    seq: int
    #: Groups that have neither acked nor dead-lettered the message yet.
    needed_by: int
    #: When a delayed message may first be delivered (adapter clock).
    not_before: float = 0.0


@attrs.define
class _Topic:
    seq: int = 0
    messages: dict[str, _Stored] = attrs.field(factory=dict)
    groups: dict[str, _Group] = attrs.field(factory=dict)
    dedupe: dict[str, tuple[str, float]] = attrs.field(factory=dict)


def _own_copy(message: QueueMessage) -> QueueMessage:
    """The message with a headers dict of its own.

    ``QueueMessage`` is frozen but its headers are a plain dict: a caller mutating a
    delivery's headers must not change the stored message or another delivery.
    """
    return attrs.evolve(message, headers=dict(message.headers))


@attrs.define
class MemoryQueue(QueuePort):
    """An in-process ``QueuePort``: thread-safe, leases on ``clock``. For tests.

    It is also the model the contract kit holds every other queue adapter to. A group
    exists from its first ``receive``. Messages published while a topic has no group
    are kept, and the first group created on the topic gets them (its backlog); a group
    created later starts with the messages published after it. Dead-lettering
    happens when a message's last allowed delivery is nacked, or when its lease runs
    out and the next ``receive`` or ``dead_letters`` on that group sweeps it.
    """

    clock: Clock = attrs.field(factory=SystemClock)
    options: QueueOptions = attrs.field(factory=QueueOptions)
    _topics: dict[str, _Topic] = attrs.field(factory=dict, init=False, repr=False)
    _lock: threading.RLock = attrs.field(factory=threading.RLock, init=False, repr=False)
    _changed: threading.Condition = attrs.field(init=False, repr=False)
    _receipts: itertools.count[int] = attrs.field(factory=itertools.count, init=False, repr=False)
    #: Called (under the lock) whenever a message may have become ready: how waiting
    #: receives that are not threads (``AsyncMemoryQueue``'s) are woken.
    _watchers: list[Callable[[], None]] = attrs.field(factory=list, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._changed = threading.Condition(self._lock)

    def watch(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake()`` whenever a message may have become ready; returns the unsubscribe.

        ``wake`` runs under the queue's lock, on the thread that published or nacked: it
        must only signal (``loop.call_soon_threadsafe(event.set)``), never call back in.
        """
        with self._lock:
            self._watchers.append(wake)

        def unwatch() -> None:
            with self._lock:
                if wake in self._watchers:
                    self._watchers.remove(wake)

        return unwatch

    def _wake(self) -> None:
        self._changed.notify_all()
        for wake in self._watchers:
            wake()

    # -- publishing -------------------------------------------------------------

    def publish(
        self,
        topic: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        dedupe_key: str | None = None,
        delay: float = 0.0,
    ) -> Result[str, ServiceError]:
        """Append a message, delivered no sooner than ``delay`` seconds from now; returns its id.

        Bad input is ``InvalidRequest``.
        """
        checked_topic = check_name("topic", topic, operation="publish", service=_SERVICE)
        if type(checked_topic) is Failure:
            return checked_topic
        later = check_delay("delay", delay, operation="publish", service=_SERVICE)
        if type(later) is Failure:
            return later
        copied = self._check_headers(headers, "publish")
        if type(copied) is Failure:
            return copied
        size = copied.unwrap().size
        checked = check_body(
            body, self.options, operation="publish", service=_SERVICE, reserved=size
        )
        if type(checked) is Failure:
            return checked
        if dedupe_key is not None:
            key = check_name("dedupe key", dedupe_key, operation="publish", service=_SERVICE)
            if type(key) is Failure:
                return key
        with self._lock:
            values = copied.unwrap().values
            body = checked.unwrap()
            return Success(self._append(topic, body, values, dedupe_key, later.unwrap()))

    def publish_many(
        self,
        topic: str,
        bodies: Iterable[bytes],
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Result[list[str], ServiceError]:
        """Append several messages; all or none are published. Bad input is ``InvalidRequest``."""
        checked_topic = check_name("topic", topic, operation="publish_many", service=_SERVICE)
        if type(checked_topic) is Failure:
            return checked_topic
        copied = self._check_headers(headers, "publish_many")
        if type(copied) is Failure:
            return copied
        values, size = copied.unwrap()
        checked = check_publish_batch(topic, bodies, self.options, service=_SERVICE, reserved=size)
        if type(checked) is Failure:
            return checked
        with self._lock:
            return Success(
                [self._append(topic, body, dict(values), None) for body in checked.unwrap()]
            )

    def _check_headers(
        self, headers: object, operation: str
    ) -> Result[CheckedHeaders, ServiceError]:
        """The shared header rule (a method so the kit's negative controls can break it)."""
        return check_headers(headers, self.options, operation=operation, service=_SERVICE)

    def _append(
        self,
        topic: str,
        body: bytes,
        headers: dict[str, str],
        dedupe: str | None,
        delay: float = 0.0,
    ) -> str:
        state = self._topics.setdefault(topic, _Topic())
        now = self.clock.now()
        if dedupe is not None:
            self._forget_expired_dedupe(state, now)
            seen = state.dedupe.get(dedupe)
            if seen is not None:
                return seen[0]
        state.seq += 1
        message_id = f"{state.seq:016d}"
        if dedupe is not None:
            state.dedupe[dedupe] = (message_id, now + self.options.dedupe_window)
        message = QueueMessage(message_id, topic, body, headers, now, dedupe)
        # With no group yet the message waits for the first one, which then owes it an
        # ack like any group: counting it as one keeps acked backlog from piling up.
        needed_by = max(len(state.groups), 1)
        state.messages[message_id] = _Stored(message, state.seq, needed_by, now + delay)
        for group in state.groups.values():
            group.unread.append(message_id)
        self._wake()
        return message_id

    @staticmethod
    def _forget_expired_dedupe(state: _Topic, now: float) -> None:
        # Keys are inserted in expiry order (the window is constant), so expired ones
        # are at the front: memory stays bounded by the keys of one window.
        for key, (_, expires) in list(state.dedupe.items()):
            if expires > now:
                break
            del state.dedupe[key]

    # -- receiving --------------------------------------------------------------

    def receive(
        self,
        topic: str,
        group: str,
        consumer: str,
        *,
        max_messages: int = 1,
        wait: float = 0.0,
    ) -> Result[list[Delivery], ServiceError]:
        """Lease up to ``max_messages`` messages: own due ones, others' due ones, then new.

        Waits up to ``wait`` seconds when nothing is ready (a manual clock is advanced
        instead of waiting). Bad names or counts are ``InvalidRequest``.
        """
        checked = check_receive(topic, group, consumer, max_messages, wait, service=_SERVICE)
        if type(checked) is Failure:
            return checked
        count, waiting = checked.unwrap()
        with self._lock:
            got, pause = self.take_now(topic, group, consumer, count)
            if got or waiting <= 0:
                return Success(got)
            if not self.waits_in_real_time:
                # A test clock: advancing it is how time passes; never block a test.
                self.clock.sleep(waiting)
                return Success(self._take(topic, group, consumer, count))
            deadline = self.clock.monotonic() + waiting
            while not got:
                remaining = deadline - self.clock.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(min(remaining, pause))
                got, pause = self.take_now(topic, group, consumer, count)
            return Success(got)

    @property
    def waits_in_real_time(self) -> bool:
        """Whether a ``receive(wait=)`` waits (system clock) or advances a test clock."""
        return isinstance(self.clock, SystemClock)

    def take_now(
        self, topic: str, group: str, consumer: str, count: int
    ) -> tuple[list[Delivery], float]:
        """One non-waiting step of ``receive`` on checked arguments (atomic, under the lock).

        The deliveries leased now, and, when there are none, how many seconds until the
        group's next lease or delay falls due (``inf`` when none is pending): what a
        waiting receive may sleep before it must look again, unless woken first.
        """
        with self._lock:
            got = self._take(topic, group, consumer, count)
            return got, (0.0 if got else self._until_next_due(topic, group))

    def _until_next_due(self, topic: str, group: str) -> float:
        pending = self._topics[topic].groups[group].pending
        if not pending:
            return float("inf")
        return max(0.0, min(lease.due for lease in pending.values()) - self.clock.now())

    def _take(self, topic: str, group_name: str, consumer: str, count: int) -> list[Delivery]:
        state = self._topics.setdefault(topic, _Topic())
        group = state.groups.get(group_name)
        if group is None:
            group = state.groups[group_name] = _Group(self._backlog(state))
        now = self.clock.now()
        self._sweep(state, group_name, group, now)
        due = sorted(
            ((mid, lease) for mid, lease in group.pending.items() if self._due(lease, now)),
            key=self._order,
        )
        own = [item for item in due if item[1].consumer == consumer]
        others = [item for item in due if item[1].consumer != consumer]
        out: list[Delivery] = []
        expires = now + self.options.lease_timeout
        for message_id, lease in own + others:
            if len(out) >= count:
                return out
            lease.consumer = consumer
            lease.attempt = self._next_attempt(lease)
            lease.due = expires
            out.append(self._deliver(state, message_id, group_name, lease))
        while len(out) < count and group.unread:
            message_id = group.unread.popleft()
            stored = state.messages[message_id]
            if stored.not_before > now:
                # Delayed: pending with no owner and no delivery yet, due at its time.
                group.pending[message_id] = _Lease(stored.seq, "", 0, stored.not_before, None)
                continue
            lease = _Lease(stored.seq, consumer, 1, expires, None)
            group.pending[message_id] = lease
            out.append(self._deliver(state, message_id, group_name, lease))
        return out

    def _backlog(self, state: _Topic) -> deque[str]:
        """What a new group starts with: every kept message for the topic's first group.

        Messages published before any group existed are kept for the first group, so
        nothing is lost when producers start before consumers. A later group starts
        empty: the messages still kept then are leftovers of other groups' work.
        """
        if state.groups:
            return deque()
        return deque(state.messages)

    def _deliver(self, state: _Topic, message_id: str, group: str, lease: _Lease) -> Delivery:
        lease.receipt = f"r{next(self._receipts)}"
        return Delivery(
            _own_copy(state.messages[message_id].message),
            group,
            lease.consumer,
            lease.attempt,
            lease.receipt,
            lease.due,
        )

    @staticmethod
    def _order(item: tuple[str, _Lease]) -> tuple[float, int]:
        """Due messages go by due time, then publish order (the sequence, a number)."""
        return (item[1].due, item[1].seq)

    def _due(self, lease: _Lease, now: float) -> bool:
        """Whether a pending message may be delivered again (its lease or delay is over)."""
        return lease.due <= now

    def _next_attempt(self, lease: _Lease) -> int:
        """The attempt number of the next delivery of a pending message."""
        return lease.attempt + 1

    def _sweep(self, state: _Topic, group_name: str, group: _Group, now: float) -> None:
        limit = self.options.max_deliveries
        spent = sorted(
            (
                (mid, lease)
                for mid, lease in group.pending.items()
                if lease.attempt >= limit and self._due(lease, now)
            ),
            key=self._order,
        )
        for message_id, lease in spent:
            self._bury(state, group_name, group, message_id, lease, REASON_LEASE_EXPIRED, now)

    def _bury(
        self,
        state: _Topic,
        group_name: str,
        group: _Group,
        message_id: str,
        lease: _Lease,
        reason: str,
        now: float,
    ) -> None:
        """Move a pending message to the group's dead letters and forget it."""
        message = _own_copy(state.messages[message_id].message)
        group.dead.append(DeadLetter(message, group_name, reason, lease.attempt, now))
        self._forget(state, group, message_id)

    def _forget(self, state: _Topic, group: _Group, message_id: str) -> None:
        """The group is done with the message; drop it once every group is."""
        del group.pending[message_id]
        stored = state.messages[message_id]
        stored.needed_by -= 1
        if stored.needed_by <= 0:
            del state.messages[message_id]

    # -- settling deliveries ----------------------------------------------------

    def _live(
        self, delivery: object, operation: str
    ) -> Result[tuple[_Topic, _Group, str, _Lease], ServiceError]:
        checked = check_delivery(delivery, operation=operation, service=_SERVICE)
        if type(checked) is Failure:
            return checked
        found = checked.unwrap()
        message_id = found.message.id
        state = self._topics.get(found.message.topic)
        group = state.groups.get(found.group) if state is not None else None
        lease = group.pending.get(message_id) if group is not None else None
        if state is None or group is None or lease is None:
            return refused(found, stale=False, operation=operation, service=_SERVICE)
        if lease.receipt is None or lease.receipt != found.receipt:
            return refused(found, stale=True, operation=operation, service=_SERVICE)
        return Success((state, group, message_id, lease))

    def ack(self, delivery: Delivery) -> Result[None, ServiceError]:
        """Mark the message done for its group. A stale or acked delivery is ``InvalidRequest``."""
        with self._lock:
            live = self._live(delivery, "ack")
            if type(live) is Failure:
                return live
            state, group, message_id, lease = live.unwrap()
            self._settle(state, group, message_id, lease)
            return Success(None)

    def _settle(self, state: _Topic, group: _Group, message_id: str, lease: _Lease) -> None:
        """An ack: the group never sees the message again."""
        self._forget(state, group, message_id)

    def ack_many(self, deliveries: Sequence[Delivery]) -> Result[int, ServiceError]:
        """Ack each delivery ``ack`` would accept; returns how many were acked."""
        checked = check_deliveries(deliveries, operation="ack_many", service=_SERVICE)
        if type(checked) is Failure:
            return checked
        with self._lock:
            done = 0
            for delivery in checked.unwrap():
                live = self._live(delivery, "ack_many")
                if type(live) is Success:
                    self._settle(*live.unwrap())
                    done += 1
            return Success(done)

    def nack(self, delivery: Delivery, *, delay: float = 0.0) -> Result[None, ServiceError]:
        """Return the message, due again in ``delay`` seconds; dead-letter it after the last try.

        A negative delay or a stale or acked delivery is ``InvalidRequest``.
        """
        waited = check_delay("delay", delay, operation="nack", service=_SERVICE)
        if type(waited) is Failure:
            return waited
        with self._lock:
            live = self._live(delivery, "nack")
            if type(live) is Failure:
                return live
            state, group, message_id, lease = live.unwrap()
            now = self.clock.now()
            if lease.attempt >= self.options.max_deliveries:
                self._bury(state, delivery.group, group, message_id, lease, REASON_NACKED, now)
            else:
                lease.receipt = None
                lease.due = now + waited.unwrap()
                self._wake()
            return Success(None)

    def extend(self, delivery: Delivery, *, by: float) -> Result[Delivery, ServiceError]:
        """Lease the message for ``by`` more seconds from now; returns the updated delivery.

        ``by`` must be positive; a stale, nacked or acked delivery is ``InvalidRequest``.
        """
        checked = check_delay("by", by, operation="extend", service=_SERVICE, positive=True)
        if type(checked) is Failure:
            return checked
        with self._lock:
            live = self._live(delivery, "extend")
            if type(live) is Failure:
                return live
            lease = live.unwrap()[3]
            lease.due = self.clock.now() + checked.unwrap()
            return Success(attrs.evolve(delivery, lease_expires_at=lease.due))

    # -- inspection -------------------------------------------------------------

    def dead_letters(self, topic: str, group: str) -> Result[list[DeadLetter], ServiceError]:
        """The group's dead letters, oldest first (after sweeping spent leases)."""
        for kind, name in (("topic", topic), ("group", group)):
            checked = check_name(kind, name, operation="dead_letters", service=_SERVICE)
            if type(checked) is Failure:
                return checked
        with self._lock:
            state = self._topics.get(topic)
            found = state.groups.get(group) if state is not None else None
            if state is None or found is None:
                return Success([])
            self._sweep(state, group, found, self.clock.now())
            return Success([attrs.evolve(d, message=_own_copy(d.message)) for d in found.dead])

    def stored(self, topic: str) -> int:
        """How many messages of ``topic`` are held (not yet done by every group)."""
        with self._lock:
            state = self._topics.get(topic)
            return 0 if state is None else len(state.messages)

    # -- simulated losses (for tests) ---------------------------------------------

    def simulate_lost_topic(self, topic: str) -> None:
        """Forget everything about ``topic``, as a server restarted without persistence does.

        Messages, groups, leases, dead letters and dedupe keys go; a delivery made
        before is refused as not pending, and the topic's next group is its first.
        For tests (the contract kit holds a real adapter's recovery to this).
        """
        with self._lock:
            self._topics.pop(topic, None)

    def simulate_lost_leases(self, topic: str, group: str) -> None:
        """Lose the group's lease records, as eviction or a partial restore does.

        Every pending message keeps its attempt count but loses its consumer and
        receipt (its deliveries are refused as stale) and is due again one lease
        timeout after the loss at the latest: a running consumer recovers it. For tests.
        """
        with self._lock:
            state = self._topics.get(topic)
            found = state.groups.get(group) if state is not None else None
            if found is None:
                return
            due = self.clock.now() + self.options.lease_timeout
            for lease in found.pending.values():
                lease.consumer, lease.receipt = RECOVERY_CONSUMER, None
                lease.due = due
                # A delayed message read from the stream counts that read once its
                # record is lost (Redis's delivery counter already did).
                lease.attempt = max(lease.attempt, 1)

    def close(self) -> None:
        """Nothing to release: the queue lives in this process's memory."""
