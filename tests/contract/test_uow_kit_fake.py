"""The unit-of-work contract kit against the in-memory fake itself."""

from __future__ import annotations

from portside.adapters.testing import check_unit_of_work, memory_backend


def test_fake_passes_the_kit() -> None:
    """The in-memory fake agrees with a fresh fake on every generated history."""
    check_unit_of_work(memory_backend, max_examples=150, stateful_step_count=40)
