"""Suite-wide settings: hypothesis profiles and a clean log before each test."""

from __future__ import annotations

import os

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
