"""Server-sent events: the ``data`` payload of each event in a byte stream.

The OpenAI stream format uses only ``data:`` lines (``event:``, ``id:``, ``retry:`` and
comments are ignored), one JSON object per event and ``[DONE]`` at the end. Lines end
with LF, CRLF or CR, and a line may arrive split across network reads. ``SSEDecoder``
is the parser, fed bytes and giving events; ``sse_data`` and ``asse_data`` drive it
over a sync or an async byte stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

__all__ = ["SSEDecoder", "asse_data", "sse_data"]


class SSEDecoder:
    """Bytes in, the ``data`` of each completed event out (its data lines joined by LF)."""

    __slots__ = ("_data", "_pending")

    def __init__(self) -> None:
        self._pending = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        """The events ``chunk`` completes, in order."""
        pending = self._pending + chunk
        lines = pending.splitlines(keepends=True)
        # An unterminated last line (or a lone CR that may be half of CRLF) waits.
        self._pending = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
        events: list[bytes] = []
        for line in lines:
            event = self._line(line.rstrip(b"\r\n"))
            if event is not None:
                events.append(event)
        return events

    def end(self) -> list[bytes]:
        """The events left when the stream ends (an unterminated last line or event)."""
        events: list[bytes] = []
        if self._pending:
            event = self._line(self._pending.rstrip(b"\r\n"))
            self._pending = b""
            if event is not None:
                events.append(event)
        if self._data:
            events.append(b"\n".join(self._data))
            self._data.clear()
        return events

    def _line(self, line: bytes) -> bytes | None:
        """Take one line; return an event's data when ``line`` ends it."""
        data = self._data
        if not line:
            if not data:
                return None
            event = b"\n".join(data)
            data.clear()
            return event
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
        return None


def sse_data(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The ``data`` of each event in ``chunks``, in order."""
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.end()


async def asse_data(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """``sse_data`` over an async byte stream."""
    decoder = SSEDecoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.end():
        yield event
