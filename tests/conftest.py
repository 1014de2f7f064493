"""Suite-wide settings: hypothesis profiles and a clean log before each test."""

from __future__ import annotations

import contextlib
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


def _throwaway(start: object, what: str) -> Iterator[object]:
    """Enter the throwaway context ``start``, skip (or fail when required) if it cannot."""
    from portside.adapters.testing import FaultToolError, services_required

    assert isinstance(start, contextlib.AbstractContextManager)
    try:
        started = start.__enter__()
    except FaultToolError as exc:
        message = f"cannot start a throwaway {what}: {exc}"
        if services_required():
            pytest.fail(message + " (PORTSIDE_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(message)
    try:
        yield started
    finally:
        start.__exit__(None, None, None)


@pytest.fixture(name="redis_cluster", scope="session")
def _redis_cluster() -> Iterator[object]:
    """A throwaway Redis Cluster (3 primaries, 3 replicas) shared by the session, torn down."""
    from portside.adapters.testing import throwaway_cluster

    yield from _throwaway(throwaway_cluster(), "Redis Cluster")


@pytest.fixture(name="redis_sentinel", scope="session")
def _redis_sentinel() -> Iterator[object]:
    """A throwaway Sentinel set (a primary, a replica, 3 sentinels) shared by the session."""
    from portside.adapters.testing import throwaway_sentinel

    yield from _throwaway(throwaway_sentinel(), "Sentinel set")
