"""The shipped pytest plugin: the real-LLM guard and the server fixtures' policy."""

from __future__ import annotations

import subprocess
import sys

import pytest

from portside.adapters.testing import _services as services
from portside.ports.llm_rules import check_real_llm_allowed, real_llm_forbidden


def test_the_suite_runs_with_the_real_llm_guard_on() -> None:
    """The ini option turns the guard on: a non-loopback base URL is refused."""
    assert real_llm_forbidden()
    with pytest.raises(RuntimeError):
        check_real_llm_allowed("https://api.openai.com/v1")
    check_real_llm_allowed("http://127.0.0.1:8000/v1")


def test_unreachable_server_skips_unless_services_are_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A down server skips the test, or fails it under PORTSIDE_REQUIRE_SERVICES=1."""
    monkeypatch.setenv("PORTSIDE_TEST_X_URL", "redis://127.0.0.1:9/0")
    monkeypatch.delenv("PORTSIDE_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="unreachable"):
        services.require_server("X", "PORTSIDE_TEST_X_URL", "redis://127.0.0.1:9/0")
    monkeypatch.setenv("PORTSIDE_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="PORTSIDE_REQUIRE_SERVICES"):
        services.require_server("X", "PORTSIDE_TEST_X_URL", "redis://127.0.0.1:9/0")


def test_the_plugin_loads_nothing_heavy_at_start_up() -> None:
    """Importing the pytest plugin (as pytest does for every run) loads no kit, SDK or ORM."""
    code = (
        "import sys\n"
        "import portside.adapters.pytest_plugin\n"
        "heavy = {'hypothesis', 'sqlalchemy', 'redis', 'openai', 'portside.adapters.testing'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_proxied_url_keeps_everything_but_host_and_port() -> None:
    """A proxied URL keeps scheme, credentials, database number and query."""
    from portside.adapters.testing import proxied_url

    assert proxied_url("redis://127.0.0.1:6379/7", 4000) == "redis://127.0.0.1:4000/7"
    assert (
        proxied_url("postgresql+psycopg://app:p%40ss@db.internal:5432/test_x?sslmode=disable", 9)
        == "postgresql+psycopg://app:p%40ss@127.0.0.1:9/test_x?sslmode=disable"
    )
    assert proxied_url("rediss://:pw@[::1]:6380", 5, host="::1") == "rediss://:pw@[::1]:5"
