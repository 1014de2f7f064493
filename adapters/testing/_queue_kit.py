"""The queue contract kit: any ``QueuePort`` must behave exactly like ``MemoryQueue``.

``check_queue_contract(factory)`` runs a hypothesis state machine that applies random
publishes (also to topics no group has read yet), receives, acks, nacks, extends, lease
expiries (by advancing a shared ``ManualClock``), dead-letter reads and bad input to a
fresh adapter from ``factory``
and to the in-memory model, and fails on the first difference: a delivery the model
would not make, a missing redelivery, a wrong attempt count, a second dead letter, a
different error kind. Message ids differ between adapters, so the kit maps the adapter's
ids to the model's as messages are published.

The adapter must read time from the clock it is given (leases, publish and dead-letter
timestamps) and honour the ``QueueOptions`` it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Final, TypeVar

import attrs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from returns.result import Failure, Result, Success

from portside.adapters.memory._clock import ManualClock
from portside.adapters.memory._queue import MemoryQueue, QueueOptions
from portside.adapters.testing._queue_bad_calls import (
    BAD_CALLS,
    CONSUMERS,
    GROUPS,
    MAX_BODY,
    TOPICS,
)
from portside.adapters.testing._queue_faults import MemoryQueueFaults, QueueFaults
from portside.domain._errors import InvalidRequest, ServiceError
from portside.domain._queue import DeadLetter, Delivery
from portside.ports._clock import Clock
from portside.ports._queue import QueuePort
from portside.ports.queue_rules import MAX_BATCH

__all__ = ["KIT_OPTIONS", "QueueContract", "QueueFactory", "check_queue_contract"]

#: Builds the adapter under test on the kit's clock and options (one per example).
QueueFactory = Callable[[Clock, QueueOptions], QueuePort]

#: The options every adapter is built with. The dedupe window is longer than any run
#: can advance the clock, because a real server may keep that window on its own clock.
KIT_OPTIONS: Final = QueueOptions(
    lease_timeout=30.0, max_deliveries=3, max_body_bytes=MAX_BODY, dedupe_window=10_000_000.0
)

_MODEL_FAULTS: Final = MemoryQueueFaults()

#: Messages that fall due at once in ``many_leases_fall_due_at_once``: more than the 512
#: due leases the Redis adapter reads per call.
CROWD: Final = 600
#: At most this many brand-new topics per example (each adds dead-letter checks).
MAX_NEW_TOPICS: Final = 2
T = TypeVar("T")


class QueueContract(RuleBasedStateMachine):
    """The state machine; subclass it with ``factory`` set, or use ``check_queue_contract``.

    With ``faults`` set, the machine also makes the adapter lose state (a topic, a
    group's leases) and checks it recovers as the model does.
    """

    factory: ClassVar[QueueFactory]
    faults: ClassVar[QueueFaults | None] = None
    topics = Bundle("topics")

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.model = MemoryQueue(self.clock, KIT_OPTIONS)
        self.real = type(self).factory(self.clock, KIT_OPTIONS)
        # Ids are unique per topic only (two streams can mint the same one).
        self.ids: dict[tuple[str, str], str] = {}
        self.deliveries: list[tuple[Delivery, Delivery]] = []
        self.published = 0
        self.topic_names: list[str] = list(TOPICS)
        #: Whether the many-leases rule ran (once per example: it moves 600 messages).
        self.crowded = False

    def teardown(self) -> None:
        """Release the adapter under test."""
        self.real.close()

    # -- comparing ----------------------------------------------------------------

    def _same(
        self,
        what: str,
        real: Result[T, ServiceError],
        model: Result[T, ServiceError],
        view: Callable[[T, bool], object],
    ) -> T | None:
        """Assert both results agree (value views or error kinds); the real value."""
        if isinstance(model, Success):
            assert isinstance(real, Success), f"{what}: model succeeded, adapter gave {real}"
            value: T = real.unwrap()
            got, want = view(value, True), view(model.unwrap(), False)
            assert got == want, f"{what}: adapter gave {got!r}, model gave {want!r}"
            return value
        expected = type(model.failure())
        assert not isinstance(real, Success), f"{what}: model failed with {expected.__name__}"
        assert type(real.failure()) is expected, (
            f"{what}: adapter failed with {real.failure()!r}, model with {expected.__name__}"
        )
        return None

    def _id(self, topic: str, message_id: str, real: bool) -> str:
        if not real:
            return message_id
        return self.ids.get((topic, message_id), f"unknown:{message_id}")

    def _delivery(self, d: Delivery, real: bool) -> tuple[Any, ...]:
        m = d.message
        return (
            self._id(m.topic, m.id, real),
            m.topic,
            m.body,
            dict(m.headers),
            m.published_at,
            m.dedupe_key,
            d.group,
            d.consumer,
            d.attempt,
            d.lease_expires_at,
        )

    def _deliveries(self, ds: Sequence[Delivery], real: bool) -> list[tuple[Any, ...]]:
        return [self._delivery(d, real) for d in ds]

    def _letters(self, ls: Sequence[DeadLetter], real: bool) -> list[tuple[Any, ...]]:
        return [
            (
                self._id(x.message.topic, x.message.id, real),
                x.message.body,
                x.group,
                x.reason,
                x.attempts,
                x.dead_at,
            )
            for x in ls
        ]

    def _record_ids(self, topic: str, real: str, model: str) -> None:
        known = self.ids.get((topic, real))
        assert known in (None, model), f"adapter id {real} stands for two messages"
        self.ids[topic, real] = model

    def _pick(self, data: st.DataObject) -> int:
        """An index into the deliveries, mostly one of the latest (the live ones)."""
        last = len(self.deliveries) - 1
        recent = st.integers(max(0, last - 2), last)
        return data.draw(st.one_of(recent, recent, st.integers(0, last)))

    # -- rules --------------------------------------------------------------------

    @initialize(target=topics)
    def create_groups(self) -> object:
        """Both groups exist on ``t0`` before anything is published; ``t1`` has none yet."""
        for group in GROUPS:
            for queue in (self.real, self.model):
                assert queue.receive(TOPICS[0], group, CONSUMERS[0]) == Success([])
        return multiple(*TOPICS)

    @precondition(lambda self: len(self.topic_names) < len(TOPICS) + MAX_NEW_TOPICS)
    @rule(
        target=topics,
        count=st.integers(1, 3),
        dedupe=st.sampled_from([None, "k0"]),
        group=st.sampled_from(GROUPS),
    )
    def publish_before_any_group(self, count: int, dedupe: str | None, group: str) -> object:
        """Messages published before any receive wait for the topic's first group only."""
        topic = f"n{len(self.topic_names)}"
        self.topic_names.append(topic)
        for _ in range(count):
            self.publish(topic, dedupe, None)
        # The first group gets the backlog in publish order; the other starts after it.
        self.receive(topic, group, CONSUMERS[0], count)
        other = GROUPS[1] if group == GROUPS[0] else GROUPS[0]
        self.receive(topic, other, CONSUMERS[1], 3)
        return topic

    @rule(
        topic=topics,
        dedupe=st.sampled_from([None, None, "k0", "k1"]),
        headers=st.sampled_from([None, {"h": "v"}]),
    )
    def publish(self, topic: str, dedupe: str | None, headers: dict[str, str] | None) -> None:
        """Publishing stores the message once per dedupe key."""
        self.published += 1
        body = f"m{self.published}".encode()
        real = self.real.publish(topic, body, headers=headers, dedupe_key=dedupe)
        model = self.model.publish(topic, body, headers=headers, dedupe_key=dedupe)
        self._same("publish", real, model, lambda _, __: None)
        if isinstance(real, Success) and isinstance(model, Success):
            self._record_ids(topic, real.unwrap(), model.unwrap())

    @rule(topic=topics, delay=st.sampled_from([0.5, 10.0, 31.0, 45.0]), dedupe=st.booleans())
    def publish_delayed(self, topic: str, delay: float, dedupe: bool) -> None:
        """A delayed message reaches no group before its time, then comes as attempt 1."""
        self.published += 1
        body = f"m{self.published}".encode()
        key = "k2" if dedupe else None
        real = self.real.publish(topic, body, dedupe_key=key, delay=delay)
        model = self.model.publish(topic, body, dedupe_key=key, delay=delay)
        self._same(f"publish(delay={delay})", real, model, lambda _, __: None)
        if isinstance(real, Success) and isinstance(model, Success):
            self._record_ids(topic, real.unwrap(), model.unwrap())

    @rule(topic=topics, count=st.integers(1, 3))
    def publish_many(self, topic: str, count: int) -> None:
        """A batch publish stores every body in order."""
        bodies = []
        for _ in range(count):
            self.published += 1
            bodies.append(f"m{self.published}".encode())
        real = self.real.publish_many(topic, bodies)
        model = self.model.publish_many(topic, bodies)
        self._same("publish_many", real, model, lambda ids, _: len(ids))
        if isinstance(real, Success) and isinstance(model, Success):
            for real_id, model_id in zip(real.unwrap(), model.unwrap(), strict=True):
                self._record_ids(topic, real_id, model_id)

    @rule(
        topic=topics,
        group=st.sampled_from(GROUPS),
        consumer=st.sampled_from(CONSUMERS),
        count=st.integers(1, 3),
    )
    def receive(self, topic: str, group: str, consumer: str, count: int) -> None:
        """Receive leases the same messages, in the same order, with the same attempts."""
        real = self.real.receive(topic, group, consumer, max_messages=count)
        model = self.model.receive(topic, group, consumer, max_messages=count)
        got = self._same("receive", real, model, self._deliveries)
        if got is not None and isinstance(model, Success):
            self.deliveries.extend(zip(got, model.unwrap(), strict=True))

    @rule(
        topic=topics,
        group=st.sampled_from(GROUPS),
        consumer=st.sampled_from(CONSUMERS),
    )
    def lease_runs_out(self, topic: str, group: str, consumer: str) -> None:
        """After a whole lease passes, unacked messages are delivered again, attempt + 1."""
        self.clock.advance(KIT_OPTIONS.lease_timeout + 1.0)
        self.receive(topic, group, consumer, 3)

    @precondition(lambda self: bool(self.deliveries))
    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        """Ack succeeds for a live delivery and is InvalidRequest for a stale or acked one."""
        real, model = self.deliveries[self._pick(data)]
        self._same("ack", self.real.ack(real), self.model.ack(model), lambda _, __: None)

    @precondition(lambda self: bool(self.deliveries))
    @rule(data=st.data())
    def ack_many(self, data: st.DataObject) -> None:
        """A batch ack acks exactly the live deliveries among those given."""
        pairs = data.draw(st.lists(st.sampled_from(self.deliveries), max_size=3))
        real = self.real.ack_many([p[0] for p in pairs])
        model = self.model.ack_many([p[1] for p in pairs])
        self._same("ack_many", real, model, lambda n, _: n)

    @precondition(lambda self: bool(self.deliveries))
    @rule(data=st.data(), delay=st.sampled_from([0.0, 0.0, 5.0, 45.0, -1.0]))
    def nack(self, data: st.DataObject, delay: float) -> None:
        """Nack returns the message after the delay, or dead-letters its last delivery."""
        real, model = self.deliveries[self._pick(data)]
        self._same(
            f"nack(delay={delay})",
            self.real.nack(real, delay=delay),
            self.model.nack(model, delay=delay),
            lambda _, __: None,
        )

    @precondition(lambda self: bool(self.deliveries))
    @rule(data=st.data(), by=st.sampled_from([10.0, 50.0, 0.0]))
    def extend(self, data: st.DataObject, by: float) -> None:
        """Extend moves the lease to now + by, for live deliveries only."""
        index = self._pick(data)
        real, model = self.deliveries[index]
        real_result = self.real.extend(real, by=by)
        model_result = self.model.extend(model, by=by)
        got = self._same(f"extend(by={by})", real_result, model_result, self._delivery)
        if got is not None and isinstance(model_result, Success):
            self.deliveries[index] = (got, model_result.unwrap())

    @rule(seconds=st.sampled_from([1.0, 15.0, 31.0, 31.0, 61.0]))
    def advance(self, seconds: float) -> None:
        """Time passes on the shared clock; leases and delays fall due."""
        self.clock.advance(seconds)

    @rule(topic=topics, group=st.sampled_from(GROUPS))
    def dead_letters(self, topic: str, group: str) -> None:
        """Dead letters match: each message given up on appears exactly once."""
        real = self.real.dead_letters(topic, group)
        model = self.model.dead_letters(topic, group)
        self._same("dead_letters", real, model, self._letters)

    @invariant()
    def dead_letters_agree(self) -> None:
        """After every step each group's dead letters match the model's, each once."""
        for topic in self.topic_names:
            for group in GROUPS:
                self.dead_letters(topic, group)

    @precondition(lambda self: not self.crowded)
    @rule(topic=topics, takes=st.integers(7, 9))
    def many_leases_fall_due_at_once(self, topic: str, takes: int) -> None:
        """More than 512 leases due at once come back in publish order, one at a time."""
        self.crowded = True
        bodies = [f"crowd{n}".encode() for n in range(CROWD)]
        real = self.real.publish_many(topic, bodies)
        model = self.model.publish_many(topic, bodies)
        self._same("publish_many (crowd)", real, model, lambda ids, _: len(ids))
        if isinstance(real, Success) and isinstance(model, Success):
            for real_id, model_id in zip(real.unwrap(), model.unwrap(), strict=True):
                self._record_ids(topic, real_id, model_id)
        # One consumer takes everything in one read and crashes; another takes them
        # back one at a time once the lease ran out.
        self.receive(topic, GROUPS[0], CONSUMERS[0], MAX_BATCH)
        self.clock.advance(KIT_OPTIONS.lease_timeout + 1.0)
        for _ in range(takes):
            self.receive(topic, GROUPS[0], CONSUMERS[1], 1)

    @precondition(lambda self: len(self.deliveries) >= 2)
    @rule(data=st.data())
    def ack_with_another_messages_receipt(self, data: st.DataObject) -> None:
        """A delivery carrying another message's receipt is refused by ack and ack_many."""
        first, second = data.draw(
            st.lists(st.integers(0, len(self.deliveries) - 1), min_size=2, max_size=2)
        )
        (real_a, model_a), (real_b, model_b) = self.deliveries[first], self.deliveries[second]
        real = attrs.evolve(real_a, receipt=real_b.receipt)
        model = attrs.evolve(model_a, receipt=model_b.receipt)
        self._same(
            "ack_many (mixed receipt)",
            self.real.ack_many([real]),
            self.model.ack_many([model]),
            lambda n, _: n,
        )
        self._same(
            "ack (mixed receipt)", self.real.ack(real), self.model.ack(model), lambda _, __: None
        )

    @precondition(lambda self: bool(self.deliveries))
    @rule(data=st.data())
    def ack_with_a_respelled_id(self, data: st.DataObject) -> None:
        """An id spelled with a leading zero is not the message's id: nothing is acked."""
        real, model = self.deliveries[self._pick(data)]

        def respelled(d: Delivery) -> Delivery:
            return attrs.evolve(d, message=attrs.evolve(d.message, id="0" + d.message.id))

        self._same(
            "ack (respelled id)",
            self.real.ack(respelled(real)),
            self.model.ack(respelled(model)),
            lambda _, __: None,
        )

    @precondition(lambda self: self.faults is not None)
    @rule(topic=topics)
    def lose_topic(self, topic: str) -> None:
        """A topic the server lost: old deliveries are refused, new messages flow again."""
        assert self.faults is not None
        self.faults.lose_topic(self.real, topic)
        _MODEL_FAULTS.lose_topic(self.model, topic)
        # A new stream may mint an id the lost one had: forget the old mapping.
        self.ids = {key: value for key, value in self.ids.items() if key[0] != topic}

    @precondition(lambda self: self.faults is not None)
    @rule(topic=topics, group=st.sampled_from(GROUPS), consumer=st.sampled_from(CONSUMERS))
    def lose_leases(self, topic: str, group: str, consumer: str) -> None:
        """A group's lost leases: a running consumer gets its pending messages back."""
        assert self.faults is not None
        self.faults.lose_leases(self.real, topic, group)
        _MODEL_FAULTS.lose_leases(self.model, topic, group)
        self.clock.advance(KIT_OPTIONS.lease_timeout + 1.0)
        self.receive(topic, group, consumer, 3)

    @rule(bad=st.sampled_from(sorted(BAD_CALLS)))
    def bad_input(self, bad: str) -> None:
        """Bad input of any type is InvalidRequest, in both, and publishes or leases nothing."""
        live = self.deliveries[-1] if self.deliveries else None
        real = BAD_CALLS[bad](self.real, live[0] if live else None)
        model = BAD_CALLS[bad](self.model, live[1] if live else None)
        assert isinstance(model, Failure), f"the model accepted {bad}"
        assert isinstance(model.failure(), InvalidRequest), f"{bad}: model gave {model}"
        self._same(bad, real, model, lambda _, __: None)

    @rule(topic=topics, over=st.booleans())
    def publish_at_the_size_limit(self, topic: str, over: bool) -> None:
        """The body and the headers together fit the limit exactly, or are one byte over."""
        self.published += 1
        body = f"m{self.published}".encode()
        room = KIT_OPTIONS.max_body_bytes - len(body) - len("h")
        headers = {"h": "é" * (room // 2) + "x" * (room % 2 + int(over))}
        real = self.real.publish(topic, body, headers=headers)
        model = self.model.publish(topic, body, headers=headers)
        assert isinstance(model, Failure) == over, f"model: {model}"
        self._same(f"publish at the limit (over={over})", real, model, lambda _, __: None)
        if isinstance(real, Success) and isinstance(model, Success):
            self._record_ids(topic, real.unwrap(), model.unwrap())


def check_queue_contract(
    factory: QueueFactory,
    *,
    faults: QueueFaults | None = None,
    max_examples: int = 50,
    steps: int = 30,
    extra: settings | None = None,
) -> None:
    """Run the queue contract against adapters built by ``factory``; raise on a difference.

    ``faults`` (``MemoryQueueFaults()``, ``RedisQueueFaults()`` or your own) adds the
    rules that make the adapter lose state and check its recovery.

    Failures are ``AssertionError`` with hypothesis's shrunk sequence of steps.
    """
    machine = type(
        "QueueContractOf" + getattr(factory, "__name__", "Factory").title().replace("_", ""),
        (QueueContract,),
        {"factory": staticmethod(factory), "faults": faults},
    )
    run_state_machine_as_test(
        machine,
        settings=settings(
            extra or settings(),
            max_examples=max_examples,
            stateful_step_count=steps,
            deadline=None,
            report_multiple_bugs=False,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
