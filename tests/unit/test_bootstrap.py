"""The composition root: embedded defaults, overrides, lazy thread-safe singletons."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from portside.adapters import app as bootstrap
from portside.adapters.app import (
    SettingsError,
    build_services,
    get_services,
    load_settings,
    reset_services,
)
from portside.adapters.app import _services as composition
from portside.adapters.entities import Entities
from portside.adapters.memory import FakeLLM, ManualClock, MemoryCache, MemoryDatabase, MemoryQueue


@pytest.fixture(name="embedded_env")
def _embedded_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    for variable in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "REDIS_URL", "DATABASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PORTSIDE_SQLITE_PATH", str(tmp_path / "app.db"))
    yield tmp_path
    reset_services()


def test_nothing_configured_runs_on_embedded_defaults(
    embedded_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With no variables set: SQLite file, memory cache and queue, fake LLM, one log line."""
    with caplog.at_level(logging.INFO, logger="portside"):
        services = build_services()
    try:
        assert services.adapters["cache"] == "memory"
        assert services.adapters["queue"] == "memory"
        assert services.adapters["llm"] == "fake"
        assert services.adapters["database"].startswith("sqlite")
        assert isinstance(services.raw_llm, FakeLLM)
        lines = [r.getMessage() for r in caplog.records if r.name == "portside"]
        assert len(lines) == 1
        assert "embedded defaults" in lines[0]
        assert "REDIS_URL" in lines[0]
    finally:
        services.close()


def test_overrides_replace_ports_and_are_not_closed(embedded_env: Path) -> None:
    """Ports passed in are used as given and left open by Services.close()."""
    clock = ManualClock()
    cache, queue = MemoryCache(clock=clock), MemoryQueue(clock=clock)
    llm = FakeLLM()
    services = build_services(
        load_settings({}),
        llm=llm,
        cache=cache,
        queue=queue,
        clock=clock,
        database=MemoryDatabase(Entities()),
    )
    assert services.cache is cache
    assert services.queue is queue
    assert services.raw_llm is llm
    services.close()
    assert cache.set("still", b"open").unwrap() is None
    assert queue.publish("t", b"x").unwrap()


def test_an_unwritable_sqlite_folder_is_a_settings_error(tmp_path: Path) -> None:
    """A SQLite path in a folder that does not exist is refused before anything runs."""
    settings = load_settings({"PORTSIDE_SQLITE_PATH": str(tmp_path / "missing" / "app.db")})
    with pytest.raises(SettingsError, match="not writable"):
        build_services(settings)


def test_get_services_is_one_object_under_a_thread_race(
    embedded_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 threads racing on get_services() build the services exactly once."""
    built: list[object] = []
    real_build = bootstrap.build_services

    def counting_build(*args: object, **kwargs: object) -> bootstrap.Services:
        services = real_build()
        built.append(services)
        return services

    monkeypatch.setattr(composition, "build_services", counting_build)
    barrier = threading.Barrier(100)
    seen: list[bootstrap.Services] = []

    def worker() -> None:
        barrier.wait()
        seen.append(get_services())

    threads = [threading.Thread(target=worker) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1
    assert len({id(s) for s in seen}) == 1


def test_raw_clients_are_one_per_process_under_a_thread_race(
    embedded_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100 threads racing on the raw client helpers get one Redis and one OpenAI client."""
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    barrier = threading.Barrier(100)
    redis_clients: list[object] = []
    openai_clients: list[object] = []

    def worker() -> None:
        barrier.wait()
        redis_clients.append(bootstrap.get_redis_client())
        openai_clients.append(bootstrap.get_openai_client())

    threads = [threading.Thread(target=worker) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(c) for c in redis_clients}) == 1
    assert len({id(c) for c in openai_clients}) == 1


def test_get_redis_client_without_url_names_the_variable(embedded_env: Path) -> None:
    """Asking for the raw Redis client with REDIS_URL unset says which variable is missing."""
    with pytest.raises(SettingsError, match="REDIS_URL"):
        bootstrap.get_redis_client()


def test_reset_services_closes_and_forgets(embedded_env: Path) -> None:
    """After reset_services() the next get_services() builds a new object."""
    first = get_services()
    reset_services()
    second = get_services()
    assert first is not second
