"""The services-module helpers and health checks, against real servers on loopback."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

from portside.adapters.app import (
    SettingsError,
    build_services,
    check_services,
    get_openai_client,
    get_redis_client,
    load_settings,
)
from portside.adapters.memory import ManualClock
from portside.adapters.testing import OpenAITestServer, throwaway_redis
from portside.ports.llm_rules import forbid_real_llm

KEY = "sk-services-module-3b9f7e21"


@pytest.fixture(name="env")
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """Nothing configured but an SQLite file in a temporary folder."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "REDIS_URL", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PORTSIDE_SQLITE_PATH", str(tmp_path / "app.db"))
    return monkeypatch


def test_openai_client_without_a_key_for_a_remote_server_names_the_variable(
    env: pytest.MonkeyPatch,
) -> None:
    """A remote OPENAI_BASE_URL with no OPENAI_API_KEY is a SettingsError, not a 'not-set' key."""
    env.setenv("OPENAI_BASE_URL", "https://llm.example/v1")
    with pytest.raises(SettingsError, match=r"^OPENAI_API_KEY: is not set"):
        get_openai_client()


def test_openai_client_honours_the_real_llm_guard(env: pytest.MonkeyPatch) -> None:
    """With real providers forbidden, the raw client refuses the public endpoint."""
    env.setenv("OPENAI_API_KEY", KEY)
    forbid_real_llm(True)
    try:
        with pytest.raises(RuntimeError, match="forbidden"):
            get_openai_client()
    finally:
        forbid_real_llm(False)


def test_openai_client_has_no_sdk_retries_and_talks_to_a_local_server(
    env: pytest.MonkeyPatch,
) -> None:
    """A loopback server needs no key; a 503 reaches the caller after one request."""
    import openai

    with OpenAITestServer() as server:
        env.setenv("OPENAI_BASE_URL", server.base_url)
        client = get_openai_client()
        assert client.max_retries == 0
        answer = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hello there"}]
        )
        assert answer.choices[0].message.content == "hello there"
        server.fail("unavailable")
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert len(server.requests) == 2  # the SDK did not retry the 503


@pytest.mark.services
def test_redis_client_serves_blocking_commands(env: pytest.MonkeyPatch, redis_url: str) -> None:
    """blpop(timeout=2) on the raw client waits its two seconds instead of timing out."""
    env.setenv("REDIS_URL", redis_url)
    redis = get_redis_client()
    key = f"ps-test-blpop-{uuid.uuid4().hex}"
    start = time.monotonic()
    assert redis.blpop([key], timeout=2) is None
    assert time.monotonic() - start >= 1.9
    pusher = threading.Timer(0.5, lambda: redis.rpush(key, b"job"))
    pusher.start()
    try:
        assert redis.blpop([key], timeout=2) == (key.encode(), b"job")
    finally:
        pusher.join()
        redis.delete(key)


@pytest.mark.services
def test_redis_client_uses_the_database_number_of_the_url(
    env: pytest.MonkeyPatch, redis_url: str
) -> None:
    """The raw client writes to the database REDIS_URL names, and set(ex=) sets a TTL."""
    env.setenv("REDIS_URL", redis_url)
    redis = get_redis_client()
    expected = int(redis_url.rsplit("/", 1)[1] or 0) if redis_url.count("/") > 2 else 0
    assert redis.connection_pool.connection_kwargs.get("db", 0) == expected
    key = f"ps-test-ex-{uuid.uuid4().hex}"
    try:
        redis.set(key, "value", ex=3600)
        assert 3590 < redis.ttl(key) <= 3600
    finally:
        redis.delete(key)


def test_check_reports_a_refused_key_as_unauthorized_and_generates_nothing(
    env: pytest.MonkeyPatch,
) -> None:
    """An LLM server answering 401 is down (Unauthorized); the probe sent no chat request."""
    with OpenAITestServer(api_key="the-right-key") as server:
        env.setenv("OPENAI_BASE_URL", server.base_url)
        env.setenv("OPENAI_API_KEY", KEY)
        services = build_services(load_settings())
        try:
            rows = {row.service: row for row in check_services(services, max_age=0)}
        finally:
            services.close()
        assert server.requests == []  # only GET /v1/models, which generates nothing
    assert not rows["llm"].ok
    assert rows["llm"].status.startswith("down (Unauthorized")
    assert KEY not in rows["llm"].status
    assert [rows[name].ok for name in ("database", "cache", "queue")] == [True, True, True]


def test_check_accepts_a_server_that_takes_the_key(env: pytest.MonkeyPatch) -> None:
    """A server that accepts the key and lists its models is ok."""
    with OpenAITestServer(api_key=KEY) as server:
        env.setenv("OPENAI_BASE_URL", server.base_url)
        env.setenv("OPENAI_API_KEY", KEY)
        services = build_services(load_settings())
        try:
            rows = {row.service: row.status for row in check_services(services, max_age=0)}
        finally:
            services.close()
    assert rows["llm"] == "ok"
    assert [rows[name] for name in ("database", "cache")] == ["ok", "ok"]
    assert rows["queue"].startswith("warning (in-memory queue")


def test_check_reports_an_unreachable_llm_as_unavailable(env: pytest.MonkeyPatch) -> None:
    """Nothing listening at OPENAI_BASE_URL is down (Unavailable), quickly."""
    env.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    services = build_services(load_settings())
    try:
        rows = {row.service: row for row in check_services(services, max_age=0)}
    finally:
        services.close()
    assert rows["llm"].status.startswith("down (Unavailable")
    assert rows["llm"].latency_ms < 6000


def test_health_reports_are_kept_for_the_interval(env: pytest.MonkeyPatch) -> None:
    """Within PORTSIDE_HEALTH_INTERVAL the same report is served; after it, a new probe."""
    clock = ManualClock()
    with OpenAITestServer() as server:
        env.setenv("OPENAI_BASE_URL", server.base_url)
        env.setenv("PORTSIDE_HEALTH_INTERVAL", "10")
        probes: list[str] = []
        services = build_services(load_settings(), clock=clock)
        try:
            from portside.adapters.app import _health

            original = _health._probe

            def counting(services_: object) -> list[_health.CheckRow]:
                probes.append("probe")
                return original(services_)  # type: ignore[arg-type]

            env.setattr(_health, "_probe", counting)
            first = check_services(services)
            clock.advance(9.0)
            assert check_services(services) == first
            assert len(probes) == 1
            clock.advance(1.5)
            check_services(services)
            assert len(probes) == 2
            check_services(services, max_age=0)
            assert len(probes) == 3
        finally:
            services.close()


def test_concurrent_health_checks_share_one_probe(env: pytest.MonkeyPatch) -> None:
    """Twenty threads asking at once for a stale report cause one probe."""
    from portside.adapters.app import _health

    services = build_services(load_settings())
    probes: list[int] = []
    original = _health._probe

    def slow(services_: object) -> list[_health.CheckRow]:
        probes.append(1)
        time.sleep(0.2)
        return original(services_)  # type: ignore[arg-type]

    env.setattr(_health, "_probe", slow)
    barrier = threading.Barrier(20)

    def ask() -> None:
        barrier.wait()
        check_services(services)

    threads = [threading.Thread(target=ask) for _ in range(20)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        services.close()
    assert len(probes) == 1


def test_check_warns_that_an_in_memory_queue_keeps_nothing(env: pytest.MonkeyPatch) -> None:
    """On embedded defaults the queue row is a warning (nothing survives a restart), yet ok."""
    services = build_services()
    try:
        rows = {row.service: row for row in check_services(services, max_age=0)}
    finally:
        services.close()
    row = rows["queue"]
    assert row.status == "warning (in-memory queue: messages do not survive a restart)"
    assert row.ok


def test_check_reports_what_a_redis_queue_server_can_lose(env: pytest.MonkeyPatch) -> None:
    """A Redis server with no append-only file is a warning row that says what a restart loses."""
    with throwaway_redis() as server:
        env.setenv("REDIS_URL", server.url)
        services = build_services()
        try:
            rows = {row.service: row for row in check_services(services, max_age=0)}
        finally:
            services.close()
    row = rows["queue"]
    assert row.status.startswith("warning (")
    assert row.ok
    assert "restart" in row.status
