"""Suite-wide settings: hypothesis profiles and a clean log before each test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# Real servers answer in hundreds of microseconds with jitter; per-example deadlines
# would make the contract kit flaky on a loaded 2-core machine without finding bugs.
settings.register_profile(
    "default",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "ci",
    parent=settings.get_profile("default"),
    derandomize=True,
    print_blob=True,
)
settings.load_profile("ci" if os.environ.get("CI") else "default")


# The suite must never reach a real LLM provider: only loopback test servers.
os.environ.setdefault("PORTSIDE_FORBID_REAL_LLM", "1")


@pytest.fixture(autouse=True)
def _reset_global_state() -> Iterator[None]:
    """Each test starts with no process-wide services and no retry cap left over."""
    yield
    from portside.adapters.app import reset_services
    from portside.adapters.resilience import set_retry_cap

    reset_services()
    set_retry_cap(None)
