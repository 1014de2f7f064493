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


@pytest.fixture(name="redis_cluster", scope="session")
def _redis_cluster() -> Iterator[object]:
    """A throwaway Redis Cluster (3 primaries, 3 replicas) shared by the session, torn down."""
    from portside.adapters.testing import FaultToolError, services_required, throwaway_cluster

    cluster = throwaway_cluster()
    try:
        started = cluster.__enter__()
    except FaultToolError as exc:
        message = f"cannot start a throwaway Redis Cluster: {exc}"
        if services_required():
            pytest.fail(message + " (PORTSIDE_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(message)
    try:
        yield started
    finally:
        cluster.__exit__(None, None, None)
