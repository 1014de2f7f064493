"""The outbox contract kit: units of work, crashing relays, a failing queue, consumers.

``check_outbox(make_backend, make_queue)`` runs a hypothesis state machine over a unit
of work backend (the fake or a SQL ``Database``) and a queue. Two long-lived units
(slots ``a`` and ``b``) interleave: they change the same few versioned entities and
publish messages, then commit, conflict, roll back, raise, leave without committing or
lose a savepoint. Relays run rounds that are killed at every step (after claiming,
after the n-th publish, after removing what they published), sometimes with a second
relay running in the middle of the first; the queue goes down or loses its replies;
time moves past the relays' leases; a consumer receives and acks or nacks.

The model is what the units committed, in order per topic. After every delivery:
the message's unit committed before it was delivered (so no rolled-back, raised,
conflicted or uncommitted message is ever delivered), the queue holds it once (one
message id: exactly once within the dedupe window, however often relays crashed), and
each topic's deliveries are a prefix of its commit order. At the end of each example
the queue comes back, leases run out, relays drain the outbox and the consumer drains
the queue: every committed message was delivered. Needs the ``testing`` extra.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any, Protocol

import attrs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    precondition,
    rule,
    run_state_machine_as_test,
)
from returns.result import Result, Success

from portside.adapters.entities import Entities
from portside.adapters.memory._uow import MemoryDatabase
from portside.adapters.outbox import OutboxRelay, RelayReport, RelayStep
from portside.adapters.sqlalchemy import Database
from portside.adapters.testing._outage_queue import OutageQueue
from portside.adapters.testing._uow_backends import UowBackend, kit_schema
from portside.domain._errors import Conflict, NotFound, ServiceError
from portside.domain._queue import Delivery
from portside.ports._queue import QueuePort
from portside.ports._uow import UnitOfWork

__all__ = [
    "OutboxBackend",
    "OutboxContract",
    "RelayFactory",
    "RelayLike",
    "SimulatedCrash",
    "check_outbox",
    "outbox_relay",
]

#: How long a relay's lease lasts in the kit (seconds of the kit's manual clock).
LEASE = 30.0
TOPICS = ("t0", "t1")
GROUP, CONSUMER = "kit", "c1"
_SLOTS = st.sampled_from(["a", "b"])
_KEYS = st.integers(min_value=0, max_value=2)
_TOPIC = st.sampled_from(TOPICS)
_ENDINGS = st.sampled_from(["commit", "commit", "commit", "leave", "raise", "rollback"])
_CRASHES = st.sampled_from([None, "claimed", "published", "published", "marked"])


class OutboxBackend(UowBackend, Protocol):
    """A unit-of-work backend whose outbox a relay can read."""

    @property
    def database(self) -> MemoryDatabase | Database:
        """The database relays claim outbox messages from."""
        ...


class RelayLike(Protocol):
    """What the kit needs of a relay: one round."""

    def relay_once(self, *, max_messages: int = 100) -> Result[RelayReport, ServiceError]:
        """Move up to ``max_messages`` committed messages to the queue."""
        ...


#: Builds a relay from the database, the queue, the kit's clock and the step hook.
RelayFactory = Callable[
    [MemoryDatabase | Database, QueuePort, Callable[[], float], Callable[[RelayStep], None]],
    RelayLike,
]


def outbox_relay(
    database: MemoryDatabase | Database,
    queue: QueuePort,
    clock: Callable[[], float],
    on_step: Callable[[RelayStep], None],
) -> RelayLike:
    """The relay under test by default: ``OutboxRelay`` with the kit's lease and clock."""
    return OutboxRelay(database, queue, lease=LEASE, clock=clock, on_step=on_step)


class SimulatedCrash(BaseException):
    """A relay process dying at a step: raised from ``on_step``, nothing after it runs."""


class _Raised(Exception):
    """Raised inside a unit of work or a savepoint by the kit."""


def _go_on(step: RelayStep) -> None:
    """A step hook that lets the round go on."""


@attrs.define
class _Unit:
    """One open unit of work and what it staged."""

    uow: UnitOfWork
    staged: list[tuple[str, bytes]] = attrs.field(factory=list)
    #: key -> (entity, the committed generation it was loaded at)
    loaded: dict[int, tuple[Any, int]] = attrs.field(factory=dict)
    added: dict[int, Any] = attrs.field(factory=dict)


class OutboxContract(RuleBasedStateMachine):
    """The outbox contract; ``check_outbox`` binds a backend, a queue and a relay to it."""

    backend: OutboxBackend
    make_queue: Callable[[], QueuePort]
    make_relay: RelayFactory
    item: type[Any]

    def __init__(self) -> None:
        super().__init__()
        self.backend.reset()
        self.queue = self.make_queue()
        self.outage = OutageQueue(self.queue)
        self.now = time.time()
        self.units: dict[str, _Unit | None] = {"a": None, "b": None}
        #: key -> how many commits changed it (absent: never stored)
        self.generation: dict[int, int] = {}
        self.committed: dict[str, list[bytes]] = {topic: [] for topic in TOPICS}
        self.topic_of: dict[bytes, str] = {}
        self.doomed: set[bytes] = set()
        self.delivered: dict[str, list[bytes]] = {topic: [] for topic in TOPICS}
        self.message_id: dict[bytes, str] = {}
        self.counter = itertools.count()

    def clock(self) -> float:
        """The relays' clock (seconds); ``advance`` moves it past their leases."""
        return self.now

    # -- units of work -----------------------------------------------------------------

    def _unit(self, slot: str) -> _Unit:
        """The slot's open unit of work, opened now when there is none."""
        unit = self.units[slot]
        if unit is None:
            uow = self.backend.unit_of_work()
            uow.__enter__()
            unit = self.units[slot] = _Unit(uow)
        return unit

    def _publish(self, unit: _Unit, topic: str) -> bytes:
        body = f"m{next(self.counter)}".encode()
        published = unit.uow.publish(topic, body, headers={"body": body.decode()})
        assert published == Success(None), f"publish gave {published!r}"
        unit.staged.append((topic, body))
        self.topic_of[body] = topic
        return body

    @rule(slot=_SLOTS, key=_KEYS, topic=_TOPIC)
    def change_and_publish(self, slot: str, key: int, topic: str) -> None:
        """Add or rename entity ``key`` in the slot's unit and publish a message."""
        unit = self._unit(slot)
        name = f"n{next(self.counter)}"
        if key in unit.added:
            unit.added[key].name = name
        elif key in unit.loaded:
            unit.loaded[key][0].name = name
        else:
            repository = unit.uow.repository(self.item)
            found = repository.get(key)
            if isinstance(found, Success):
                assert key in self.generation, f"{key} was never committed, yet get found it"
                found.unwrap().name = name
                unit.loaded[key] = (found.unwrap(), self.generation[key])
            else:
                assert isinstance(found.failure(), NotFound), f"get gave {found!r}"
                assert key not in self.generation, f"{key} was committed, yet get missed it"
                entity = self.item(key, name)
                assert repository.add(entity) == Success(None)
                unit.added[key] = entity
        self._publish(unit, topic)

    @rule(slot=_SLOTS, topic=_TOPIC)
    def publish_only(self, slot: str, topic: str) -> None:
        """Publish a message in the slot's unit without changing an entity."""
        self._publish(self._unit(slot), topic)

    @rule(slot=_SLOTS, topic=_TOPIC)
    def publish_in_failed_savepoint(self, slot: str, topic: str) -> None:
        """Publish inside a savepoint that an exception leaves: that message is undone."""
        unit = self._unit(slot)
        with suppress(_Raised), unit.uow.savepoint():
            body = self._publish(unit, topic)
            unit.staged.remove((topic, body))
            self.doomed.add(body)
            raise _Raised

    @rule(
        slot=_SLOTS,
        changes=st.lists(st.tuples(_KEYS, _TOPIC), min_size=1, max_size=3),
        how=_ENDINGS,
    )
    def whole_unit(self, slot: str, changes: list[tuple[int, str]], how: str) -> None:
        """Changes and messages in the slot's unit, then its end, in one step."""
        for key, topic in changes:
            self.change_and_publish(slot, key, topic)
        self.end(slot, how)

    @rule(slot=_SLOTS, how=_ENDINGS)
    def end(self, slot: str, how: str) -> None:
        """End the slot's unit: commit it (most often), leave it, raise out of it, roll back."""
        if how == "commit":
            self._commit(slot)
        else:
            self._abandon(slot, how)

    def _commit(self, slot: str) -> None:
        """Commit the slot's unit: ``Conflict`` exactly when another unit got there first."""
        unit, self.units[slot] = self.units[slot], None
        if unit is None:
            return
        stale = [k for k, (_, seen) in unit.loaded.items() if self.generation.get(k) != seen]
        taken = [k for k in unit.added if k in self.generation]
        result = unit.uow.commit()
        unit.uow.__exit__(None, None, None)
        if stale or taken:
            assert isinstance(result.failure(), Conflict), (
                f"commit over changed keys {stale} / taken keys {taken} gave {result!r}"
            )
            self.doomed.update(body for _, body in unit.staged)
            return
        assert result == Success(None), f"commit gave {result!r}"
        for key in [*unit.loaded, *unit.added]:
            self.generation[key] = self.generation.get(key, 0) + 1
        for topic, body in unit.staged:
            self.committed[topic].append(body)

    def _abandon(self, slot: str, how: str) -> None:
        """End the slot's unit without its work: left, raised out of, or rolled back."""
        unit, self.units[slot] = self.units[slot], None
        if unit is None:
            return
        self.doomed.update(body for _, body in unit.staged)
        if how == "raise":
            unit.uow.__exit__(_Raised, _Raised(), None)
            return
        if how == "rollback":
            unit.uow.rollback()
            assert unit.uow.commit() == Success(None)  # commits nothing
        unit.uow.__exit__(None, None, None)

    # -- relays, the queue and time ----------------------------------------------------

    def _undelivered(self) -> bool:
        """Whether a committed message has not reached the consumer yet."""
        return any(len(self.committed[t]) > len(self.delivered[t]) for t in TOPICS)

    @precondition(_undelivered)
    @rule(
        crash=_CRASHES,
        at=st.integers(min_value=1, max_value=2),
        nested=st.booleans(),
        batch=st.integers(min_value=1, max_value=4),
    )
    def relay(self, crash: RelayStep | None, at: int, nested: bool, batch: int) -> None:
        """A relay round, killed at ``crash`` (the ``at``-th publish for ``published``).

        With ``nested`` a second relay runs a whole round right after the first one's
        first publish, while the first still holds its claim.
        """
        published = 0
        others_ran = not nested

        def on_step(step: RelayStep) -> None:
            nonlocal published, others_ran
            if step == "published":
                published += 1
                if not others_ran:
                    others_ran = True
                    other = self.make_relay(self.backend.database, self.outage, self.clock, _go_on)
                    self._check_round(other.relay_once(max_messages=batch))
            if step == crash and (step != "published" or published == at):
                raise SimulatedCrash

        relay = self.make_relay(self.backend.database, self.outage, self.clock, on_step)
        try:
            result = relay.relay_once(max_messages=batch)
        except SimulatedCrash:
            return
        self._check_round(result)

    def _check_round(self, result: Result[RelayReport, ServiceError]) -> None:
        if isinstance(result, Success):
            return
        error = result.failure()
        assert self.outage.failing, f"a relay round failed with the queue up: {result!r}"
        assert error.retryable, f"a relay round gave {result!r}"

    @rule(mode=st.sampled_from(["down", "reply_lost"]), after=st.integers(0, 2))
    def queue_outage(self, mode: Any, after: int) -> None:
        """The queue fails publishes (after ``after`` more go through)."""
        self.outage.fail(mode, after=after)

    @rule()
    def queue_back(self) -> None:
        """The queue takes publishes again."""
        self.outage.restore()

    @rule(seconds=st.sampled_from([1.0, LEASE + 1.0]))
    def advance(self, seconds: float) -> None:
        """Time passes for the relays (past their leases, sometimes)."""
        self.now += seconds

    # -- the consumer ------------------------------------------------------------------

    @rule(topic=_TOPIC, nack=st.booleans())
    def consume(self, topic: str, nack: bool) -> None:
        """Receive from ``topic``, check each delivery, then ack (or nack) it."""
        self._consume(topic, nack=nack)

    def _consume(self, topic: str, *, nack: bool) -> int:
        received = self.queue.receive(topic, GROUP, CONSUMER, max_messages=10)
        assert isinstance(received, Success), f"receive gave {received!r}"
        for delivery in received.unwrap():
            self._check_delivery(topic, delivery)
            settled = self.queue.nack(delivery) if nack else self.queue.ack(delivery)
            assert settled == Success(None), f"settling a delivery gave {settled!r}"
        return len(received.unwrap())

    def _check_delivery(self, topic: str, delivery: Delivery) -> None:
        message = delivery.message
        body = message.body
        assert body not in self.doomed, f"{body!r} of a unit that did not commit was delivered"
        assert body in self.committed[topic], f"{body!r} delivered before its unit committed"
        assert dict(message.headers) == {"body": body.decode()}, f"headers {message.headers}"
        first = self.message_id.setdefault(body, message.id)
        assert first == message.id, f"{body!r} is in the queue twice ({first}, {message.id})"
        if body not in self.delivered[topic]:
            self.delivered[topic].append(body)
            expected = self.committed[topic][: len(self.delivered[topic])]
            assert self.delivered[topic] == expected, (
                f"{topic} delivered {self.delivered[topic]}, committed in order {expected}"
            )

    # -- the end of an example ---------------------------------------------------------

    def teardown(self) -> None:
        """End open units, bring the queue back, drain: every committed message arrived."""
        try:
            for slot in self.units:
                self._abandon(slot, "leave")
            if sys.exc_info()[1] is not None:
                return  # a step already failed: its report must not be replaced by ours
            self.outage.restore()
            self.now += LEASE + 1.0
            for _ in range(50):
                drained = self.make_relay(
                    self.backend.database, self.outage, self.clock, _go_on
                ).relay_once(max_messages=100)
                assert isinstance(drained, Success), f"a draining round gave {drained!r}"
                if drained.unwrap() == RelayReport(published=0, held_back=0):
                    break
            for topic in TOPICS:
                while self._consume(topic, nack=False):
                    pass
                missing = [b for b in self.committed[topic] if b not in self.delivered[topic]]
                assert not missing, f"committed on {topic} and never delivered: {missing}"
            lag = OutboxRelay(self.backend.database, self.queue, clock=self.clock).lag()
            assert lag == Success(0.0), f"the outbox is not empty after draining: {lag!r}"
        finally:
            self.queue.close()


def check_outbox(
    make_backend: Callable[[Entities], OutboxBackend],
    make_queue: Callable[[], QueuePort],
    *,
    make_relay: RelayFactory = outbox_relay,
    max_examples: int = 40,
    stateful_step_count: int = 30,
    hypothesis_settings: settings | None = None,
    table_name: str | None = None,
) -> None:
    """Run the outbox contract; raise (``AssertionError``) if it fails.

    ``make_backend`` receives a fresh ``Entities`` (see ``kit_schema``) and returns the
    unit-of-work backend, closed at the end. ``make_queue`` makes a fresh, empty queue
    for each generated example (closed after it). ``make_relay`` builds the relay under
    test (``outbox_relay`` by default); it must call ``on_step`` at each step.
    """
    schema = kit_schema(table_name)
    entities = schema.entities
    backend = make_backend(entities)
    try:
        machine = type(
            f"OutboxContract{next(_runs)}",
            (OutboxContract,),
            {
                "backend": backend,
                "make_queue": staticmethod(make_queue),
                "make_relay": staticmethod(make_relay),
                "item": schema.item,
            },
        )
        run_state_machine_as_test(
            machine,
            settings=hypothesis_settings
            or settings(
                max_examples=max_examples,
                stateful_step_count=stateful_step_count,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        try:
            backend.close()
        finally:
            entities.dispose()


_runs = itertools.count(1)
