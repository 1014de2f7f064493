"""The SSE reader behind OpenAILLM.stream: events survive any split of the byte stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from hypothesis import given
from hypothesis import strategies as st

from portside.adapters.openai._sse import asse_data, sse_data

EVENTS = [b'{"a": 1}', b'{"b": "two words"}', b"[DONE]"]


def _wire(events: list[bytes], newline: bytes) -> bytes:
    return b"".join(b"data: " + e + newline + newline for e in events)


@given(
    cuts=st.lists(st.integers(0, 200), max_size=12),
    newline=st.sampled_from([b"\n", b"\r\n", b"\r"]),
)
def test_any_split_gives_the_same_events(cuts: list[int], newline: bytes) -> None:
    """However the network splits the body, and whatever line ending, the events match."""
    wire = _wire(EVENTS, newline)
    points = sorted({min(c, len(wire)) for c in cuts})
    pieces = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]
    assert list(sse_data(pieces)) == EVENTS


def test_comments_and_other_fields_are_ignored() -> None:
    """Comment lines and event/id/retry fields carry no data."""
    wire = b": keep-alive\n\nevent: message\nid: 3\nretry: 10\ndata: {}\n\n"
    assert list(sse_data([wire])) == [b"{}"]


def test_multi_line_data_is_joined() -> None:
    """Several data lines of one event join with a newline."""
    assert list(sse_data([b"data: one\ndata:two\n\n"])) == [b"one\ntwo"]


def test_a_last_event_without_blank_line_is_kept() -> None:
    """A body that ends right after a data line still yields that event."""
    assert list(sse_data([b"data: x\n\ndata: last"])) == [b"x", b"last"]


@given(cuts=st.lists(st.integers(0, 200), max_size=12))
def test_the_async_reader_gives_the_sync_readers_events(cuts: list[int]) -> None:
    """asse_data over an async byte stream yields exactly what sse_data yields."""
    wire = _wire(EVENTS, b"\r\n") + b"data: unterminated"
    points = sorted({min(c, len(wire)) for c in cuts})
    pieces = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]

    async def pieces_async() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    async def read() -> list[bytes]:
        return [event async for event in asse_data(pieces_async())]

    assert asyncio.run(read()) == list(sse_data(pieces)) == [*EVENTS, b"unterminated"]
