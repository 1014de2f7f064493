"""Importing one adapter loads only what that adapter needs (checked in fresh interpreters)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: SDKs and heavy libraries an import must not pull in when it does not use them.
HEAVY = (
    "sqlalchemy",
    "sqlalchemy.dialects.mysql",
    "sqlalchemy.dialects.postgresql",
    "openai",
    "redis",
    "httpx",
    "cattrs",
    "hypothesis",
)

CASES = [
    # (what the application writes, what it may load among HEAVY)
    ("from portside.adapters.redis import RedisCache", {"redis"}),
    ("from portside.adapters.redis import RedisQueue", {"redis"}),
    ("from portside.adapters.llm_cache import CachingLLM", {"cattrs"}),
    ("from portside.adapters.memory import FakeLLM, MemoryCache", set()),
    ("from portside.adapters.openai import OpenAILLM", {"openai", "httpx"}),
    ("from portside.adapters.sqlalchemy import Database", {"sqlalchemy"}),
    ("from portside.domain import ServiceError; from portside.ports import CachePort", set()),
]


def _loaded(statement: str) -> set[str]:
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120
    )
    return set(json.loads(done.stdout))


@pytest.mark.parametrize(("statement", "allowed"), CASES, ids=[c[0] for c in CASES])
def test_an_adapter_import_loads_only_what_it_needs(statement: str, allowed: set[str]) -> None:
    """No SQLAlchemy for the Redis or LLM adapters, no openai SDK, cattrs or dialect unused."""
    loaded = _loaded(statement)
    assert {name for name in HEAVY if name in loaded} <= allowed


@pytest.mark.parametrize(
    ("statement", "twin"),
    [
        ("from portside.adapters.openai import OpenAILLM", "portside.adapters.openai._async_llm"),
        (
            "from portside.adapters.resilience import CircuitBreaker",
            "portside.adapters.resilience._async_fail_open",
        ),
        ("from portside.adapters.redis import RedisCache", "portside.adapters.redis._async_cache"),
    ],
)
def test_a_sync_name_does_not_load_its_asyncio_twin(statement: str, twin: str) -> None:
    """Importing a sync adapter or tool leaves its asyncio twin unloaded."""
    assert twin not in _loaded(statement)


def test_the_check_sees_what_an_import_loads() -> None:
    """The fresh interpreter reports the SDK an import brings, so the check can fail."""
    assert "sqlalchemy" in _loaded("from portside.adapters.memory import MemoryDatabase")
