"""The unit-of-work contract kit against the async in-memory fake, and its negative controls."""

from __future__ import annotations

import pytest

from portside.adapters.entities import Entities
from portside.adapters.memory import MemoryDatabase
from portside.adapters.testing import (
    AsyncMemoryBackend,
    UowBackend,
    async_memory_backend,
    check_unit_of_work,
)
from tests.contract.test_uow_negative import BROKEN, HUNT


def test_async_fake_passes_the_kit() -> None:
    """The async fake agrees with the sync fake on every generated history."""
    check_unit_of_work(async_memory_backend, max_examples=100, stateful_step_count=30)


@pytest.mark.parametrize("broken", list(BROKEN.values()), ids=list(BROKEN))
def test_kit_rejects_a_broken_async_fake(broken: type[MemoryDatabase]) -> None:
    """An async unit over a deliberately broken fake fails the unit-of-work contract."""

    def make(entities: Entities) -> UowBackend:
        return AsyncMemoryBackend(broken(entities))

    with pytest.raises(AssertionError):
        check_unit_of_work(make, hypothesis_settings=HUNT)
