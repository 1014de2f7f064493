"""The unit-of-work contract kit: any ``UnitOfWork`` against the in-memory fake.

``check_unit_of_work(make_backend)`` runs a hypothesis state machine in which the fake
(``MemoryDatabase``) is the model: every generated operation is applied to the unit of
work under test and to the fake, and their outcomes, values, versions and object
identities must agree. Two long-lived units of work (slots ``a`` and ``b``) interleave
freely on the same few entities, and compound rules replay the classic races (two units
editing one entity, a commit whose last change conflicts). Everything DESIGN §3 lists is
checked: rollback on exit and on exception, no aliasing, identity map, read-your-writes,
isolation, optimistic concurrency, commit twice / after rollback / after exit, nesting.
The ninth behaviour (commit cost) is a matter of measurement, not of outcomes.

Each run maps a fresh entity class to a uniquely named table, so runs against shared
databases never collide. Needs the ``testing`` extra.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import attrs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)
from returns.result import Result, Success

from portside.adapters.entities import Entities, EntitySpec
from portside.adapters.memory._uow import MemoryDatabase
from portside.adapters.testing._uow_backends import (
    KitEntity,
    KitSchema,
    MemoryBackend,
    SqlBackend,
    UowBackend,
    kit_entities,
    kit_schema,
    memory_backend,
    sqlalchemy_backend,
)
from portside.adapters.testing._uow_kit_data import Pair
from portside.adapters.testing._uow_kit_query import UowQueryRules
from portside.domain._errors import ServiceError

__all__ = [
    "KitEntity",
    "KitSchema",
    "MemoryBackend",
    "SqlBackend",
    "UowBackend",
    "UowContract",
    "check_unit_of_work",
    "kit_entities",
    "kit_schema",
    "memory_backend",
    "sqlalchemy_backend",
]

KEYS = st.integers(min_value=0, max_value=3)
NEW_KEYS = st.integers(min_value=4, max_value=6)
NAMES = st.sampled_from(["ash", "elm", "oak"])
SLOTS = st.sampled_from(["a", "b"])


def _outcome(result: Result[Any, ServiceError]) -> str:
    """A comparable summary: ``ok`` or the error's kind."""
    if isinstance(result, Success):
        return "ok"
    error: ServiceError = result.failure()
    return error.kind


@attrs.define
class _Slot:
    """One long-lived unit of work, open or closed, and the entities it holds."""

    uow: Pair | None = None
    loaded: dict[int, Pair] = attrs.field(factory=dict)
    exited: Pair | None = None


class UowContract(UowQueryRules, RuleBasedStateMachine):
    """The unit-of-work contract; ``check_unit_of_work`` binds a backend to it."""

    backend: UowBackend
    entities: Entities
    item: type[Any]
    schema: KitSchema

    def __init__(self) -> None:
        super().__init__()
        self.backend.reset()
        self.model = MemoryDatabase(self.entities)
        self.spec: EntitySpec[Any] = self.entities.spec(self.item)
        self.slots = {"a": _Slot(), "b": _Slot()}
        self.stale: list[Pair] = []

    def teardown(self) -> None:
        """Leave every block still open, so no transaction outlives the example."""
        for state in self.slots.values():
            if state.uow is not None:
                pair, state.uow = state.uow, None
                self._close(pair)

    # -- helpers ---------------------------------------------------------------------

    def _values(self, entity: Any) -> dict[str, Any]:
        return self.spec.values(entity)

    def _same(self, label: str, real: Result[Any, ServiceError], model: Result[Any, Any]) -> bool:
        """Assert both results have the same outcome; whether they succeeded."""
        assert _outcome(real) == _outcome(model), (
            f"{label}: adapter gave {real!r}, the fake gave {model!r}"
        )
        return isinstance(real, Success)

    def _open(self) -> Pair:
        pair = Pair(self.backend.unit_of_work(), self.model.unit_of_work())
        pair.real.__enter__()
        pair.model.__enter__()
        return pair

    def _close(self, pair: Pair, error: BaseException | None = None) -> None:
        kind = None if error is None else type(error)
        pair.real.__exit__(kind, error, None)
        pair.model.__exit__(kind, error, None)

    def _repos(self, pair: Pair) -> Pair:
        return Pair(pair.real.repository(self.item), pair.model.repository(self.item))

    def _get(self, pair: Pair, key: int, label: str) -> Pair | None:
        repos = self._repos(pair)
        real, model = repos.real.get(key), repos.model.get(key)
        if not self._same(label, real, model):
            return None
        found = Pair(real.unwrap(), model.unwrap())
        assert self._values(found.real) == self._values(found.model), label
        return found

    def _commit(self, pair: Pair, label: str) -> bool:
        return self._same(label, pair.real.commit(), pair.model.commit())

    def _rename(self, found: Pair, name: str) -> None:
        found.real.name = name
        found.model.name = name

    def _check_stored(self, keys: list[int]) -> None:
        """A fresh unit of work sees the same committed entities on both sides."""
        pair = self._open()
        try:
            for key in keys:
                self._get(pair, key, f"stored {key}")
        finally:
            self._close(pair)

    # -- set-up ---------------------------------------------------------------------

    @initialize(keys=st.sets(KEYS, max_size=3))
    def seed(self, keys: set[int]) -> None:
        """Commit a few entities so that loads and races have something to find."""
        pair = self._open()
        try:
            repos = self._repos(pair)
            for key in sorted(keys):
                self._same(
                    "seed add",
                    repos.real.add(self.item(key, "ash")),
                    repos.model.add(self.item(key, "ash")),
                )
            assert self._commit(pair, "seed commit")
        finally:
            self._close(pair)

    # -- the two long-lived units ------------------------------------------------------

    def _enter(self, slot: str) -> tuple[_Slot, Pair]:
        """The slot and its unit, opened first when the slot is closed."""
        state = self.slots[slot]
        if state.uow is None:
            state.uow = self._open()
        return state, state.uow

    @rule(slot=SLOTS, fail=st.booleans())
    def end(self, slot: str, fail: bool) -> None:
        """Leave the block, normally or by an exception; uncommitted work is discarded."""
        state = self.slots[slot]
        if state.uow is None:
            return
        self._close(state.uow, RuntimeError("block failed") if fail else None)
        self.stale.extend(state.loaded.values())
        state.exited, state.uow, state.loaded = state.uow, None, {}

    @rule(slot=SLOTS, key=KEYS | NEW_KEYS, name=NAMES)
    def add(self, slot: str, key: int, name: str) -> None:
        """Stage a new entity; both sides accept or refuse it alike."""
        state, unit = self._enter(slot)
        entity = Pair(self.item(key, name), self.item(key, name))
        repos = self._repos(unit)
        if self._same(f"add {key}", repos.real.add(entity.real), repos.model.add(entity.model)):
            state.loaded[key] = entity

    @rule(slot=SLOTS, key=KEYS | NEW_KEYS)
    def get(self, slot: str, key: int) -> None:
        """Load an entity: same outcome, same values, and the identity map holds."""
        state, unit = self._enter(slot)
        found = self._get(unit, key, f"get {key}")
        if found is None:
            return
        known = state.loaded.get(key)
        if known is not None:
            assert (found.real is known.real) == (found.model is known.model), (
                f"get {key} twice: identity map differs"
            )
        state.loaded[key] = found

    @rule(slot=SLOTS, index=st.integers(0, 7), name=NAMES)
    def rename(self, slot: str, index: int, name: str) -> None:
        """Mutate an entity the unit holds (nothing durable until commit)."""
        held = self.slots[slot].loaded
        if held:
            self._rename(held[sorted(held)[index % len(held)]], name)

    @rule(slot=SLOTS, index=st.integers(0, 7))
    def remove(self, slot: str, index: int) -> None:
        """Stage the removal of an entity the unit holds."""
        state = self.slots[slot]
        if state.uow is None or not state.loaded:
            return
        key = sorted(state.loaded)[index % len(state.loaded)]
        found = state.loaded[key]
        repos = self._repos(state.uow)
        if self._same(
            f"remove {key}", repos.real.remove(found.real), repos.model.remove(found.model)
        ):
            del state.loaded[key]

    @rule(
        slot=SLOTS,
        name=st.none() | NAMES,
        limit=st.none() | st.integers(0, 3),
        offset=st.integers(0, 2),
    )
    def listing(self, slot: str, name: str | None, limit: int | None, offset: int) -> None:
        """List with a filter and a page: same entities, in key order, same identities."""
        state, unit = self._enter(slot)
        where = None if name is None else {"name": name}
        repos = self._repos(unit)
        real = repos.real.list(where=where, limit=limit, offset=offset)
        model = repos.model.list(where=where, limit=limit, offset=offset)
        if not self._same("list", real, model):
            return
        reals, models = real.unwrap(), model.unwrap()
        assert [self._values(e) for e in reals] == [self._values(e) for e in models], "list"
        for r, m in zip(reals, models, strict=True):
            known = state.loaded.get(r.id)
            if known is not None:
                assert (r is known.real) == (m is known.model), "list: identity map differs"
            state.loaded[r.id] = Pair(r, m)

    @rule(slot=SLOTS)
    def commit(self, slot: str) -> None:
        """Commit (possibly again): same outcome; a failed commit rolls the unit back."""
        state, unit = self._enter(slot)
        if self._commit(unit, "commit"):
            for found in state.loaded.values():
                assert self._values(found.real) == self._values(found.model), "after commit"
        else:
            state.loaded = {}

    @rule(slot=SLOTS)
    def rollback(self, slot: str) -> None:
        """Discard everything staged since the last commit."""
        state, unit = self._enter(slot)
        unit.real.rollback()
        unit.model.rollback()
        state.loaded = {}

    @rule(slot=SLOTS, fail=st.booleans())
    def nested(self, slot: str, fail: bool) -> None:
        """A nested block joins the unit; when it fails, the outer commit is refused."""
        state, unit = self._enter(slot)
        joined = [uow.__enter__() is uow for uow in (unit.real, unit.model)]
        try:
            assert all(joined), "a nested block must join the same unit"
            self._commit(unit, "inner commit")
        finally:
            self._close(unit, RuntimeError("inner block failed") if fail else None)
        if fail:
            state.loaded = {}
            assert not self._commit(unit, "commit after a failed inner block")

    @rule(
        slot=SLOTS,
        fail=st.booleans(),
        key=KEYS | NEW_KEYS,
        name=NAMES,
        index=st.integers(0, 7),
        drop=st.booleans(),
    )
    def savepoint(self, slot: str, fail: bool, key: int, name: str, index: int, drop: bool) -> None:
        """Inside a savepoint: add, rename, maybe remove; a failure undoes only that part."""
        state, unit = self._enter(slot)
        before = dict(state.loaded)
        marks = [unit.real.savepoint(), unit.model.savepoint()]
        for mark in marks:
            mark.__enter__()
        error = RuntimeError("savepoint body failed") if fail else None
        try:
            repos = self._repos(unit)
            entity = Pair(self.item(key, name), self.item(key, name))
            if self._same(
                f"savepoint add {key}", repos.real.add(entity.real), repos.model.add(entity.model)
            ):
                state.loaded[key] = entity
            held = sorted(before)
            if held:
                self._rename(before[held[index % len(held)]], name + "~")
                if drop:
                    victim = before[held[(index + 1) % len(held)]]
                    self._same(
                        "savepoint remove",
                        repos.real.remove(victim.real),
                        repos.model.remove(victim.model),
                    )
            assert not self._commit(unit, "commit inside a savepoint")
        finally:
            for mark in reversed(marks):
                # The body's exception goes on: a savepoint never swallows it.
                assert not mark.__exit__(type(error) if error else None, error, None)
        if fail:
            state.loaded = before
        for found in state.loaded.values():
            assert self._values(found.real) == self._values(found.model), "after a savepoint"

    @rule(slot=SLOTS)
    def use_after_exit(self, slot: str) -> None:
        """A unit of work used after its block raises ``RuntimeError`` on both sides."""
        exited = self.slots[slot].exited
        if exited is None or self.slots[slot].uow is not None:
            return
        for uow in (exited.real, exited.model):
            try:
                uow.commit()
            except RuntimeError:
                continue
            raise AssertionError(f"{type(uow).__name__}.commit() after exit did not raise")

    @rule(slot=SLOTS, index=st.integers(0, 7))
    def add_stale(self, slot: str, index: int) -> None:
        """Adding an object of a finished unit to another unit is refused on both sides."""
        state, unit = self._enter(slot)
        if not self.stale:
            return
        found = self.stale[-1 - index % len(self.stale)]
        repos = self._repos(unit)
        if self._same("add stale", repos.real.add(found.real), repos.model.add(found.model)):
            state.loaded[found.real.id] = found

    @rule(name=NAMES)
    def mutate_stale(self, name: str) -> None:
        """Mutating objects of finished units changes nothing stored."""
        for found in self.stale[-8:]:
            self._rename(found, name)

    @rule()
    def stored(self) -> None:
        """A fresh unit lists the same committed entities on both sides."""
        pair = self._open()
        try:
            repos = self._repos(pair)
            real, model = repos.real.list(), repos.model.list()
            assert self._same("stored list", real, model)
            assert [self._values(e) for e in real.unwrap()] == [
                self._values(e) for e in model.unwrap()
            ], "the committed entities differ"
        finally:
            self._close(pair)

    # -- compound races ------------------------------------------------------------------

    @rule(key=KEYS, first=NAMES, second=NAMES, extra=NEW_KEYS, add_first=st.booleans())
    def race(self, key: int, first: str, second: str, extra: int, add_first: bool) -> None:
        """Two units load one entity; the later commit conflicts and writes nothing."""
        one, two = self._open(), self._open()
        try:
            repos = self._repos(one)
            if add_first:
                self._same(
                    f"race add {extra}",
                    repos.real.add(self.item(extra, first)),
                    repos.model.add(self.item(extra, first)),
                )
            mine, theirs = self._get(one, key, "race get"), self._get(two, key, "race get")
            if not add_first:
                self._same(
                    f"race add {extra}",
                    repos.real.add(self.item(extra, first)),
                    repos.model.add(self.item(extra, first)),
                )
            if theirs is not None and mine is not None:
                assert mine.real is not theirs.real, "two units share one object"
                self._rename(theirs, second)
                self._commit(two, "race: first commit")
                self._rename(mine, first + "!")
            self._commit(one, "race: second commit")
        finally:
            self._close(two)
            self._close(one)
        self._check_stored([key, extra])


def check_unit_of_work(
    make_backend: Callable[[Entities], UowBackend],
    *,
    max_examples: int = 60,
    stateful_step_count: int = 30,
    hypothesis_settings: settings | None = None,
    table_name: str | None = None,
) -> None:
    """Run the contract against the backend ``make_backend`` builds; raise if it fails.

    ``make_backend`` receives a fresh ``Entities`` (see ``kit_entities``) and returns
    the system under test; it is closed at the end, dropping what it created.
    ``table_name`` defaults to a fresh ``ps_kit_<random>``.
    """
    schema = kit_schema(table_name)
    entities = schema.entities
    backend = make_backend(entities)
    try:
        machine = type(
            f"UowContract{next(_runs)}",
            (UowContract,),
            {"backend": backend, "entities": entities, "item": schema.item, "schema": schema},
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
