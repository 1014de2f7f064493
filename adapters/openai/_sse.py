"""Server-sent events: the ``data`` payload of each event in a byte stream.

The OpenAI stream format uses only ``data:`` lines (``event:``, ``id:``, ``retry:`` and
comments are ignored), one JSON object per event and ``[DONE]`` at the end. Lines end
with LF, CRLF or CR, and a line may arrive split across network reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["sse_data"]


def sse_data(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The ``data`` of each event (its data lines joined by LF), in order."""
    pending = b""
    data: list[bytes] = []
    for chunk in chunks:
        pending += chunk
        lines = pending.splitlines(keepends=True)
        # An unterminated last line (or a lone CR that may be half of CRLF) waits.
        pending = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
        for line in lines:
            event = _feed(line.rstrip(b"\r\n"), data)
            if event is not None:
                yield event
    if pending:
        event = _feed(pending.rstrip(b"\r\n"), data)
        if event is not None:
            yield event
    if data:
        yield b"\n".join(data)


def _feed(line: bytes, data: list[bytes]) -> bytes | None:
    """Take one line; return an event's data when ``line`` ends it."""
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
