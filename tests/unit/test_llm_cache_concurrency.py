"""Concurrent identical requests share one upstream call; a failure frees everyone."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping

import attrs
from returns.result import Failure, Result, Success

from portside.adapters.llm_cache import CachingLLM
from portside.adapters.memory import FakeLLM, MemoryCache
from portside.adapters.observability import Metrics
from portside.adapters.resilience import SingleFlight
from portside.domain import (
    ChatDelta,
    ChatMessage,
    ChatRequest,
    Completion,
    ServiceError,
    Unavailable,
)
from portside.ports import LockedFill

ASK = ChatRequest((ChatMessage.user("summarise the report"),), temperature=0.0)
THREADS = 50


@attrs.define
class _GatedLLM(FakeLLM):
    """A fake LLM whose calls block until the test opens the gate."""

    gate: threading.Event = attrs.field(factory=threading.Event)
    fail_with: ServiceError | None = None
    upstream: int = 0

    def complete(self, request: ChatRequest) -> Result[Completion, ServiceError]:
        """Counts the call, waits for the gate, then answers or fails."""
        self.upstream += 1
        self.gate.wait(30)
        if self.fail_with is not None:
            return Failure(self.fail_with)
        return super().complete(request)

    def stream(self, request: ChatRequest) -> Iterator[Result[ChatDelta, ServiceError]]:
        """Counts the call, waits for the gate, then streams."""
        self.upstream += 1
        self.gate.wait(30)
        return super().stream(request)


class _CountingFlight(SingleFlight[Result[Completion, ServiceError]]):
    """Counts callers entering the flight, so the test knows when all have arrived."""

    def __init__(self, arrived: threading.Semaphore) -> None:
        super().__init__()
        self._arrived = arrived

    def do(
        self, key: str, fn: Callable[[], Result[Completion, ServiceError]]
    ) -> tuple[Result[Completion, ServiceError], bool]:
        self._arrived.release()
        return super().do(key, fn)


def _run(n: int, call: Callable[[], object]) -> tuple[list[threading.Thread], list[object]]:
    results: list[object] = []
    lock = threading.Lock()

    def work() -> None:
        value = call()
        with lock:
            results.append(value)

    threads = [threading.Thread(target=work) for _ in range(n)]
    for thread in threads:
        thread.start()
    return threads, results


def _complete_concurrently(llm: _GatedLLM) -> tuple[CachingLLM, list[object]]:
    caching = CachingLLM(llm, MemoryCache(), metrics=Metrics())
    arrived = threading.Semaphore(0)
    caching._single = _CountingFlight(arrived)
    threads, results = _run(THREADS, lambda: caching.complete(ASK))
    for _ in range(THREADS):
        assert arrived.acquire(timeout=30)
    llm.gate.set()
    for thread in threads:
        thread.join(30)
    return caching, results


def test_fifty_identical_requests_make_one_upstream_call() -> None:
    """50 threads asking the same thing at once cause exactly one call to the LLM."""
    llm = _GatedLLM()
    _, results = _complete_concurrently(llm)
    assert llm.upstream == 1
    assert len(results) == THREADS
    texts = {r.unwrap().text for r in results}  # type: ignore[attr-defined]
    assert len(texts) == 1
    hits = [r.unwrap().cache.hit for r in results]  # type: ignore[attr-defined]
    assert hits.count(False) == 1


def test_a_failing_call_releases_every_waiter_and_poisons_nothing() -> None:
    """All 50 callers get the failure, nothing is stored, and the next call goes upstream."""
    llm = _GatedLLM(fail_with=Unavailable(service="fake", operation="complete"))
    caching, results = _complete_concurrently(llm)
    assert len(results) == THREADS
    assert all(isinstance(r, Failure) for r in results)
    assert all(isinstance(r.failure(), Unavailable) for r in results)  # type: ignore[attr-defined]
    assert len(caching.cache) == 0  # type: ignore[arg-type]
    llm.fail_with = None
    before = llm.upstream
    assert isinstance(caching.complete(ASK), Success)
    assert llm.upstream == before + 1
    assert caching.complete(ASK).unwrap().cache.hit  # type: ignore[union-attr]


def test_concurrent_identical_streams_share_one_upstream_stream() -> None:
    """Streams started together make one upstream call and yield the same deltas."""
    llm = _GatedLLM()
    llm.reply("alpha beta gamma")
    caching = CachingLLM(llm, MemoryCache(), metrics=Metrics())
    threads, results = _run(8, lambda: list(caching.stream(ASK)))
    llm.gate.set()
    for thread in threads:
        thread.join(30)
    assert llm.upstream == 1
    texts = {"".join(d.unwrap().text for d in r) for r in results}  # type: ignore[attr-defined]
    assert texts == {"alpha beta gamma"}


@attrs.define
class _FilledMeanwhile:
    """A cache without ``LockedFill``; another process stores the answer before our lock.

    That is the window between this process's miss and its lock, which another filler
    can store in and leave (releasing its own lock) unseen; the steps composed from the
    plain methods must read again under the lock.
    """

    inner: MemoryCache = attrs.field(factory=MemoryCache)
    entry: bytes = b""

    @property
    def namespace(self) -> str:
        """The inner cache's namespace."""
        return self.inner.namespace

    def get(self, key: str) -> Result[bytes | None, ServiceError]:
        """The inner cache's value."""
        return self.inner.get(key)

    def get_many(self, keys: Iterable[str]) -> Result[dict[str, bytes], ServiceError]:
        """The inner cache's values."""
        return self.inner.get_many(keys)

    def set(self, key: str, value: bytes, ttl: float | None = None) -> Result[None, ServiceError]:
        """Stored in the inner cache."""
        return self.inner.set(key, value, ttl)

    def set_many(
        self, items: Mapping[str, bytes], ttl: float | None = None
    ) -> Result[None, ServiceError]:
        """Stored in the inner cache."""
        return self.inner.set_many(items, ttl)

    def add(self, key: str, value: bytes, ttl: float | None = None) -> Result[bool, ServiceError]:
        """Stores ``entry`` under the answer's key first, then takes the lock as usual."""
        if key.endswith(":fill") and self.entry:
            self.inner.set(key.removesuffix(":fill"), self.entry)
        return self.inner.add(key, value, ttl)

    def delete(self, key: str) -> Result[bool, ServiceError]:
        """Deleted from the inner cache."""
        return self.inner.delete(key)

    def delete_if_equal(self, key: str, expected: bytes) -> Result[bool, ServiceError]:
        """Compare-and-delete in the inner cache."""
        return self.inner.delete_if_equal(key, expected)

    def incr(self, key: str, by: int = 1) -> Result[int, ServiceError]:
        """Incremented in the inner cache."""
        return self.inner.incr(key, by)

    def ttl(self, key: str) -> Result[float | None, ServiceError]:
        """The inner cache's TTL."""
        return self.inner.ttl(key)

    def clear(self) -> Result[None, ServiceError]:
        """Clears the inner cache."""
        return self.inner.clear()

    def close(self) -> None:
        """Closes the inner cache."""
        self.inner.close()


def _filled_meanwhile(stream: bool) -> tuple[CachingLLM, FakeLLM, _FilledMeanwhile]:
    source = CachingLLM(FakeLLM(), MemoryCache(), metrics=Metrics())
    assert isinstance(source.llm, FakeLLM)
    source.llm.reply("stored by another process")
    if stream:
        list(source.stream(ASK))
    else:
        source.complete(ASK).unwrap()
    stored = source.cache.get(source.key_for(ASK)).unwrap()
    assert stored is not None
    cache = _FilledMeanwhile(entry=stored)
    llm = FakeLLM()
    assert not isinstance(cache, LockedFill)
    return CachingLLM(llm, cache, metrics=Metrics()), llm, cache


def test_an_answer_stored_just_before_the_fill_lock_is_a_hit() -> None:
    """complete() reads again under the fill lock: a stored answer is never asked again."""
    caching, llm, _ = _filled_meanwhile(stream=False)
    done = caching.complete(ASK).unwrap()
    assert done.text == "stored by another process"
    assert done.cache is not None
    assert done.cache.hit
    assert llm.received() == 0


def test_a_recording_stored_just_before_the_fill_lock_is_replayed() -> None:
    """stream() reads again under the fill lock and replays the recording, no upstream call."""
    caching, llm, cache = _filled_meanwhile(stream=True)
    deltas = [d.unwrap() for d in caching.stream(ASK)]
    assert "".join(d.text for d in deltas) == "stored by another process"
    assert deltas[-1].cache is not None
    assert deltas[-1].cache.hit
    assert llm.received() == 0
    assert cache.get(caching.key_for(ASK) + ":fill").unwrap() is None
