"""pytest plugin shipped with portside: fixtures for the contract kit and real servers.

Loaded automatically (entry point ``pytest11``) when portside is installed, so it
lives outside ``portside.adapters.testing`` and imports nothing heavy at start-up: each
fixture imports what it needs when a test asks for it (the server fixtures need the
``testing`` extra). Nothing connects anywhere until a test asks for a server fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from portside.adapters.memory import ManualClock
    from portside.adapters.testing import OpenAITestServer

__all__ = [
    "manual_clock",
    "mariadb_url",
    "openai_server",
    "postgres_url",
    "redis_url",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``portside_forbid_real_llm`` ini option."""
    parser.addini(
        "portside_forbid_real_llm",
        "refuse to build LLM adapters that point anywhere but loopback during the run",
        type="bool",
        default=False,
    )


def pytest_configure(config: pytest.Config) -> None:
    """Turn on the real-LLM guard when the ini option asks for it."""
    if config.getini("portside_forbid_real_llm"):
        from portside.ports.llm_rules import forbid_real_llm

        forbid_real_llm()


@pytest.fixture(name="manual_clock")
def manual_clock() -> ManualClock:
    """A fresh manual clock; tests advance it instead of sleeping."""
    from portside.adapters.memory import ManualClock

    return ManualClock()


@pytest.fixture(name="redis_url", scope="session")
def redis_url() -> str:
    """URL of a reachable Redis (``REDIS_URL``), or skip/fail as the services policy says."""
    from portside.adapters.testing import DEFAULT_REDIS_URL, require_server

    return require_server("Redis", "REDIS_URL", DEFAULT_REDIS_URL)


@pytest.fixture(name="postgres_url", scope="session")
def postgres_url() -> str:
    """URL of a reachable PostgreSQL (``PORTSIDE_TEST_POSTGRES_URL``)."""
    from portside.adapters.testing import DEFAULT_POSTGRES_URL, require_server

    return require_server("PostgreSQL", "PORTSIDE_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@pytest.fixture(name="mariadb_url", scope="session")
def mariadb_url() -> str:
    """URL of a reachable MariaDB/MySQL server (``PORTSIDE_TEST_MARIADB_URL``)."""
    from portside.adapters.testing import DEFAULT_MARIADB_URL, require_server

    return require_server("MariaDB", "PORTSIDE_TEST_MARIADB_URL", DEFAULT_MARIADB_URL)


@pytest.fixture(name="openai_server")
def openai_server() -> Iterator[OpenAITestServer]:
    """A local OpenAI-compatible HTTP server on loopback, scripted per test.

    Point an adapter at ``server.base_url``; script answers with ``server.reply(...)``
    and faults with ``server.fail(...)``. Needs the ``openai`` extra.
    """
    from portside.adapters.testing import OpenAITestServer

    with OpenAITestServer() as server:
        yield server
