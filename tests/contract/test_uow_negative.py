"""Negative controls: deliberately broken fakes that the unit-of-work kit must reject."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, Phase, settings

from portside.adapters.entities import Entities
from portside.adapters.memory._uow import Change, MemoryDatabase, MemoryUnitOfWork, Row
from portside.adapters.testing import MemoryBackend, UowBackend, check_unit_of_work
from portside.domain import ServiceError

HUNT = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    database=None,
    report_multiple_bugs=False,
    # Finding the bug is the point; shrinking it would only cost time.
    phases=[Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class NoOpRollbackUnit(MemoryUnitOfWork):
    """Rollback undoes nothing: staged work reaches the store as if written through."""

    def _discard(self) -> None:
        self._commit()


class NoOpRollbackDatabase(MemoryDatabase):
    def unit_of_work(self) -> MemoryUnitOfWork:
        return NoOpRollbackUnit(self)


class AliasingUnit(MemoryUnitOfWork):
    """Hands out the store's own live object for a key instead of a fresh copy."""

    def load(self, spec: Any, key: Any, row: Row) -> Any:
        assert isinstance(self.database, AliasingDatabase)
        live = self.database.live
        entity = live.get((spec.entity_type, key))
        if entity is None:
            entity = live[(spec.entity_type, key)] = spec.build(row)
        identity = (spec.entity_type, key)
        self._objects[identity] = entity
        self._snapshots[identity] = row
        return entity


@attrs.define
class AliasingDatabase(MemoryDatabase):
    live: dict[Any, Any] = attrs.field(factory=dict, init=False)

    def clear(self) -> None:
        super().clear()
        self.live.clear()

    def unit_of_work(self) -> MemoryUnitOfWork:
        return AliasingUnit(self)


class ForgetfulUnit(MemoryUnitOfWork):
    """Builds a new object on every read: no identity map."""

    def local(self, identity: Any) -> Any:
        return None


class ForgetfulDatabase(MemoryDatabase):
    def unit_of_work(self) -> MemoryUnitOfWork:
        return ForgetfulUnit(self)


class UnversionedDatabase(MemoryDatabase):
    """Never compares versions: the last writer silently wins."""

    def check(self, change: Change) -> ServiceError | None:
        if change.kind != "insert":
            return None
        return super().check(change)


class HalfWritingDatabase(MemoryDatabase):
    """Applies each change as soon as it is checked, so a late failure leaves the rest."""

    def write(self, changes: list[Change], messages: Sequence[Any] = ()) -> ServiceError | None:
        for change in changes:
            problem = self.check(change)
            if problem is not None:
                return problem
            self.apply(change)
        return None


class UncheckedUnit(MemoryUnitOfWork):
    """Stores whatever the fields hold: no column types, lengths or NOT NULL checks."""

    def row_problem(self, spec: Any, values: Row, *, insert: bool) -> str | None:
        return None


class UncheckedDatabase(MemoryDatabase):
    def unit_of_work(self) -> MemoryUnitOfWork:
        return UncheckedUnit(self)


class UnorderedDatabase(MemoryDatabase):
    """Applies changes in the order the unit made them, ignoring foreign keys."""

    def order(self, changes: list[Change]) -> list[Change]:
        return changes


class WholeSavepointUnit(MemoryUnitOfWork):
    """A failed savepoint rolls back the whole unit instead of its own part."""

    def _restore(self, mark: Any) -> None:
        self._discard()


class WholeSavepointDatabase(MemoryDatabase):
    def unit_of_work(self) -> MemoryUnitOfWork:
        return WholeSavepointUnit(self)


def _backend(kind: type[MemoryDatabase]) -> Any:
    def make(entities: Entities) -> UowBackend:
        return MemoryBackend(kind(entities))

    return make


#: Each broken fake, by what it gets wrong (the async kit wraps the same ones).
BROKEN: dict[str, type[MemoryDatabase]] = {
    "no-op-rollback": NoOpRollbackDatabase,
    "live-objects": AliasingDatabase,
    "no-version-check": UnversionedDatabase,
    "half-write": HalfWritingDatabase,
    "no-identity-map": ForgetfulDatabase,
    "no-column-checks": UncheckedDatabase,
    "no-foreign-key-order": UnorderedDatabase,
    "savepoint-rolls-back-all": WholeSavepointDatabase,
}


@pytest.mark.parametrize("broken", list(BROKEN.values()), ids=list(BROKEN))
def test_kit_rejects_a_broken_fake(broken: type[MemoryDatabase]) -> None:
    """Each deliberately broken fake fails the unit-of-work contract."""
    with pytest.raises(AssertionError):
        check_unit_of_work(_backend(broken), hypothesis_settings=HUNT)
