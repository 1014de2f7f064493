"""LLM cache entries: compact versioned bytes that round-trip, and anything else is a miss."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.adapters.codec import default_codec
from portside.adapters.llm_cache import CachingLLM
from portside.adapters.llm_cache._entry import ChatEntry
from portside.adapters.llm_cache._store import EntryStore, Fill
from portside.adapters.memory import FakeLLM, ManualClock, MemoryCache
from portside.adapters.observability import Metrics
from portside.adapters.resilience import CircuitBreaker
from portside.domain import (
    CacheInfo,
    ChatDelta,
    ChatMessage,
    ChatRequest,
    Completion,
    ToolCallDelta,
    Usage,
)
from tests.strategies import text, tool_calls, usage

ASK = ChatRequest((ChatMessage.user("capital of France?"),), temperature=0.0)

completions = st.builds(
    Completion,
    text,
    st.sampled_from(["stop", "tool_calls"]),
    st.lists(tool_calls, max_size=2).map(tuple),
    usage,
    text,
)
fragments = st.builds(ToolCallDelta, st.integers(0, 5), st.none() | text, st.none() | text, text)
middle = st.builds(
    ChatDelta, text, st.lists(fragments, max_size=2).map(tuple), st.none(), st.none()
)
final = st.builds(
    ChatDelta,
    text,
    st.just(()),
    st.sampled_from(["stop", "tool_calls", "length", "content_filter"]),
    st.none() | usage,
    text,
)
recordings = st.tuples(st.lists(middle, max_size=4), final).map(lambda p: (*p[0], p[1]))
entries = st.builds(
    ChatEntry,
    completions,
    st.floats(0, 2e9, allow_nan=False),
    st.just(()) | recordings,
)


def _layout(entry: ChatEntry) -> list[Any]:
    data = entry.encode()
    assert data is not None
    layout: list[Any] = orjson.loads(data[4:])
    return layout


def _bytes(layout: object) -> bytes:
    return default_codec.encode(layout).unwrap()


@given(entries)
def test_entries_round_trip(entry: ChatEntry) -> None:
    """An entry decodes to exactly what was encoded, deltas included."""
    data = entry.encode()
    assert data is not None
    assert ChatEntry.decode(data) == entry
    assert ChatEntry.decode(data, with_deltas=False) == attrs.evolve(entry, deltas=())


@given(entries, st.floats(0, 1e6, allow_nan=False))
def test_a_hit_carries_its_age_and_savings(entry: ChatEntry, later: float) -> None:
    """A stored entry is answered as its completion with its age and the usage it saved."""
    clock = ManualClock(start=entry.stored_at)
    cache = MemoryCache(clock=clock)
    breaker = CircuitBreaker(clock)
    store = EntryStore(cache, clock, breaker, Metrics(), default_codec, lock_ttl=30.0)
    store.write(Fill("k", None), entry, None)
    clock.advance(later)
    hit = store.answer("k")
    assert hit is not None
    assert attrs.evolve(hit, cache=None) == entry.completion
    assert hit.cache is not None
    assert hit.cache.hit
    assert hit.cache.saved == entry.completion.usage
    assert hit.cache.age == pytest.approx(later, abs=1e-3)


@given(entries, st.data())
def test_truncated_or_damaged_bytes_never_raise(entry: ChatEntry, data: st.DataObject) -> None:
    """Cut or flipped bytes decode to None (a miss) or to a well-typed entry, never raise."""
    raw = entry.encode()
    assert raw is not None
    cut = data.draw(st.integers(0, len(raw) - 1))
    assert ChatEntry.decode(raw[:cut]) is None
    assert ChatEntry.decode(raw[:cut], with_deltas=False) is None
    at = data.draw(st.integers(0, len(raw) - 1))
    flipped = raw[:at] + bytes([raw[at] ^ data.draw(st.integers(1, 255))]) + raw[at + 1 :]
    for decoded in (ChatEntry.decode(flipped), ChatEntry.decode(flipped, with_deltas=False)):
        assert decoded is None or isinstance(decoded.completion.usage, Usage)


BASE = ChatEntry(Completion("Paris.", usage=Usage(3, 2), model="m"), 10.0)
STREAMED = ChatEntry(
    Completion("Paris.", usage=Usage(3, 2)),
    10.0,
    (ChatDelta("Paris."), ChatDelta(finish_reason="stop", usage=Usage(3, 2))),
)

# Each damages one element of a valid layout; every one must read as a miss.
HEAD_DAMAGE: dict[str, Callable[[list[Any]], Any]] = {
    "other tag": lambda x: ["embed", *x[1:]],
    "old version": lambda x: [x[0], 1, *x[2:]],
    "stored_at text": lambda x: [*x[:2], "10", *x[3:]],
    "stored_at bool": lambda x: [*x[:2], True, *x[3:]],
    "text number": lambda x: [*x[:3], 5, *x[4:]],
    "truncated finish": lambda x: [*x[:4], "length", *x[5:]],
    "filtered finish": lambda x: [*x[:4], "content_filter", *x[5:]],
    "finish list": lambda x: [*x[:4], ["stop"], *x[5:]],
    "tool call short": lambda x: [*x[:5], [["id", "name"]], *x[6:]],
    "tool call ints": lambda x: [*x[:5], [[1, 2, 3]], *x[6:]],
    "negative usage": lambda x: [*x[:6], [-1, 0, 0], *x[7:]],
    "bool usage": lambda x: [*x[:6], [True, 0, 0], *x[7:]],
    "usage dict": lambda x: [*x[:6], {"input": 1}, *x[7:]],
    "model null": lambda x: [*x[:7], None, x[8]],
    "deltas dict": lambda x: [*x[:8], {}],
    "extra element": lambda x: [*x, 0],
    "missing element": lambda x: x[:-1],
    "not a list": lambda x: {str(i): v for i, v in enumerate(x)},
}
DELTA_DAMAGE: dict[str, Callable[[list[Any]], Any]] = {
    "no final delta": lambda d: d[:-1],
    "delta short": lambda d: [d[0][:4], *d[1:]],
    "unknown finish": lambda d: [*d[:-1], [*d[-1][:2], "done", *d[-1][3:]]],
    "fragment index text": lambda d: [[d[0][0], [["0", None, None, ""]], *d[0][2:]], *d[1:]],
    "bad delta usage": lambda d: [*d[:-1], [*d[-1][:3], [1, 2], d[-1][4]]],
}


@pytest.mark.parametrize("damage", sorted(HEAD_DAMAGE))
def test_entries_with_a_wrong_element_are_misses(damage: str) -> None:
    """Any element of the wrong type, version or value makes the entry a miss."""
    data = _bytes(HEAD_DAMAGE[damage](_layout(BASE)))
    assert ChatEntry.decode(data) is None
    assert ChatEntry.decode(data, with_deltas=False) is None
    assert ChatEntry.decode(data, with_deltas=False) is None


@pytest.mark.parametrize("damage", sorted(DELTA_DAMAGE))
def test_entries_with_a_bad_delta_are_misses_for_streams_only(damage: str) -> None:
    """A bad recorded delta fails a streamed read; a complete() read never looks at deltas."""
    layout = _layout(STREAMED)
    data = _bytes([*layout[:8], DELTA_DAMAGE[damage](layout[8])])
    assert ChatEntry.decode(data) is None
    assert ChatEntry.decode(data, with_deltas=False) == attrs.evolve(STREAMED, deltas=())


@pytest.mark.parametrize(
    "data",
    [b"", b"ps1j", b"ps1jnot json", b"ps2j[]", b"ps1b" + _bytes(["chat", 2])],
    ids=["empty", "header only", "not json", "other codec version", "bytes envelope"],
)
def test_foreign_bytes_are_misses(data: bytes) -> None:
    """Bytes in another envelope, version or not JSON at all decode to None."""
    assert ChatEntry.decode(data) is None
    assert ChatEntry.decode(data, with_deltas=False) is None


def test_the_previous_cattrs_entry_format_is_a_miss() -> None:
    """An entry written by the earlier cattrs encoding is not mistaken for one."""
    old = default_codec.encode(attrs.evolve(BASE, deltas=())).unwrap()
    assert ChatEntry.decode(old) is None


def test_a_corrupt_entry_in_the_cache_is_a_miss_and_is_replaced(manual_clock: ManualClock) -> None:
    """CachingLLM answers a corrupt entry from upstream and stores a good one over it."""
    llm = FakeLLM()
    cache = MemoryCache(clock=manual_clock)
    caching = CachingLLM(llm, cache, clock=manual_clock, metrics=Metrics())
    llm.reply("Paris.")
    cache.set(caching.key_for(ASK), b'ps1j["chat", 2, "broken')
    assert caching.complete(ASK).unwrap().cache.hit is False  # type: ignore[union-attr]
    assert llm.received() == 1
    assert caching.complete(ASK).unwrap().cache.hit  # type: ignore[union-attr]
    assert list(caching.stream(ASK))[-1].unwrap().cache.hit  # type: ignore[union-attr]
    assert llm.received() == 1


def test_an_entry_changed_under_its_key_is_decoded_again(manual_clock: ManualClock) -> None:
    """After a hit, an overwritten entry answers its new text and a damaged one is a miss."""
    llm = FakeLLM()
    cache = MemoryCache(clock=manual_clock)
    caching = CachingLLM(llm, cache, clock=manual_clock, metrics=Metrics())
    llm.reply("Paris.")
    caching.complete(ASK).unwrap()
    assert caching.complete(ASK).unwrap().text == "Paris."
    key = caching.key_for(ASK)
    newer = ChatEntry(Completion("Paris, France."), manual_clock.now()).encode()
    assert newer is not None
    cache.set(key, newer)
    manual_clock.advance(5)
    again = caching.complete(ASK).unwrap()
    assert (again.text, again.cache) == ("Paris, France.", CacheInfo(True, 5.0, Usage()))
    cache.set(key, newer[:-3])
    llm.reply("Lyon?")
    assert caching.complete(ASK).unwrap().text == "Lyon?"
    assert llm.received() == 2
