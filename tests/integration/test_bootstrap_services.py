"""The composition root wired to real Redis, PostgreSQL and an OpenAI-compatible server."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from portside.adapters.app import build_services, check_services, load_settings
from portside.adapters.openai import OpenAILLM
from portside.adapters.redis import RedisCache, RedisQueue
from portside.adapters.testing import OpenAITestServer
from portside.domain import ChatMessage, ChatRequest


@pytest.fixture(name="server")
def _server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as server:
        yield server


@pytest.mark.services
def test_configured_services_use_the_real_adapters(
    redis_url: str, postgres_url: str, server: OpenAITestServer
) -> None:
    """With every variable set, each port runs on its real adapter and check says ok."""
    settings = load_settings(
        {
            "REDIS_URL": redis_url,
            "DATABASE_URL": postgres_url,
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": "sk-local-test",
            "PORTSIDE_NAMESPACE": f"boot-{os.getpid()}",
            "PORTSIDE_LLM_MAX_RETRIES": "0",
            "PORTSIDE_LLM_DEADLINE": "45",
        }
    )
    services = build_services(settings)
    try:
        assert isinstance(services.cache, RedisCache)
        assert isinstance(services.queue, RedisQueue)
        assert isinstance(services.raw_llm, OpenAILLM)
        assert services.raw_llm.retry.attempts == 1
        assert services.raw_llm.deadline == 45.0
        request = ChatRequest((ChatMessage.user("hello"),), temperature=0.0)
        server.reply("hi there")
        first = services.llm.complete(request).unwrap()
        second = services.llm.complete(request).unwrap()
        assert (first.text, second.text) == ("hi there", "hi there")
        assert second.cache is not None
        assert second.cache.hit
        assert server.received() == 1
        rows = {row.service: row for row in check_services(services)}
        assert list(rows) == ["database", "cache", "queue", "llm", "outbox"]
        assert all(row.ok for row in rows.values()), rows
        durable = services.queue.check_durability().unwrap().durable
        assert rows["queue"].status.startswith("ok" if durable else "warning (")
        services.cache.clear()
    finally:
        services.close()
