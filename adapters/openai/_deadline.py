"""The deadline of one call: what is left of it, and a watchdog that enforces it mid-read.

The HTTP client's timeouts bound each wait (connect, one read), not a whole answer: a
server that trickles a byte every half second, or sends SSE keep-alive comments
forever, never trips a read timeout. So each attempt's timeouts are capped by what is
left of the call's deadline, and once the answer's headers are in, a watchdog shuts the
connection's socket down when the deadline passes: the blocked read returns at once
and the call ends ``TimedOut``. One daemon thread serves every adapter in the process;
arming and cancelling an alarm is a heap push and a flag.

The async adapter needs no watchdog: ``aread_within`` bounds each await of an attempt
(the request and its headers, then each chunk of the body) with ``asyncio.timeout_at``
on the event loop's clock. Each bound covers one await, never a ``yield``: a timeout
scope left open across a ``yield`` of an async generator would cancel whatever its
consumer happens to be awaiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import socket
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any, Final

from portside.adapters.openai._errors import SDK_ERRORS
from portside.ports._clock import Clock

__all__ = [
    "Alarm",
    "Expired",
    "Watchdog",
    "aread_within",
    "read_within",
    "socket_of",
    "watchdog",
]


class Alarm:
    """One armed deadline: ``fired`` once the watchdog has shut the socket down."""

    __slots__ = ("cancelled", "fired", "owner", "sock", "when")

    def __init__(self, when: float, sock: socket.socket, owner: Watchdog) -> None:
        self.when = when
        self.sock: socket.socket | None = sock
        self.owner = owner
        self.cancelled = False
        self.fired = False

    def cancel(self) -> None:
        """Disarm; a cancelled alarm never touches its socket."""
        self.cancelled = True
        self.sock = None
        self.owner.cancelled += 1

    def __lt__(self, other: Alarm) -> bool:
        return self.when < other.when


class Watchdog:
    """Shuts down the sockets of alarms whose time (``time.monotonic()``) has come."""

    def __init__(self) -> None:
        self._heap: list[Alarm] = []
        self._wake = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        # Cancelled alarms stay in the heap until they reach its top; this count (a
        # hint, updated without the lock) says when to sweep them out.
        self.cancelled = 0

    def arm(self, seconds: float, sock: socket.socket) -> Alarm:
        """An alarm that shuts ``sock`` down ``seconds`` from now unless cancelled."""
        alarm = Alarm(time.monotonic() + max(0.0, seconds), sock, self)
        with self._wake:
            if self.cancelled > 512 and 2 * self.cancelled > len(self._heap):
                self._heap = [a for a in self._heap if not a.cancelled]
                heapq.heapify(self._heap)
                self.cancelled = 0
            heapq.heappush(self._heap, alarm)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="portside-deadline", daemon=True
                )
                self._thread.start()
            if self._heap[0] is alarm:  # earlier than what the thread waits for
                self._wake.notify()
        return alarm

    def _run(self) -> None:
        with self._wake:
            while True:
                while self._heap and self._heap[0].cancelled:
                    heapq.heappop(self._heap)
                    self.cancelled = max(0, self.cancelled - 1)
                if not self._heap:
                    self._wake.wait()
                    continue
                first = self._heap[0]
                left = first.when - time.monotonic()
                if left > 0:
                    self._wake.wait(left)
                    continue
                heapq.heappop(self._heap)
                sock = first.sock
                if sock is None:
                    continue
                first.fired = True
                # shutdown, not close: it wakes a thread blocked in recv on this socket,
                # and the HTTP client still owns (and closes) the descriptor. OSError:
                # its owner closed it already.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


#: The process's one watchdog.
watchdog: Final = Watchdog()


def socket_of(response: Any) -> socket.socket | None:
    """The socket an ``httpx2.Response`` is read from (HTTP/1.1), if it can be found."""
    stream = response.extensions.get("network_stream")
    get = getattr(stream, "get_extra_info", None)
    sock = get("socket") if get is not None else None
    return sock if isinstance(sock, socket.socket) else None


class Expired(Exception):
    """The call's deadline passed while an answer was read."""


@contextlib.contextmanager
def read_within(opened: Any, clock: Clock, ends: float) -> Iterator[tuple[Any, Iterator[bytes]]]:
    """Open ``opened`` (an SDK streaming response) and read its body by ``ends``.

    Yields the response and its body's chunks. Raises ``Expired`` when the deadline
    (on ``clock``) passes while the body is read: the watchdog shut the socket down,
    or a chunk (a keep-alive comment too) arrived after it.
    """
    alarm: Alarm | None = None
    try:
        with opened as response:
            left = ends - clock.monotonic()
            if left <= 0:
                raise Expired
            sock = socket_of(response.http_response)
            if sock is not None:
                alarm = watchdog.arm(left, sock)
            yield response, _chunks(response.iter_bytes(), clock, ends, alarm)
    except SDK_ERRORS:
        if alarm is not None and alarm.fired:
            raise Expired from None
        raise
    finally:
        if alarm is not None:
            alarm.cancel()


def _chunks(
    chunks: Iterator[bytes], clock: Clock, ends: float, alarm: Alarm | None
) -> Iterator[bytes]:
    for chunk in chunks:
        if clock.monotonic() >= ends or (alarm is not None and alarm.fired):
            raise Expired
        yield chunk


@contextlib.asynccontextmanager
async def aread_within(
    opened: Any, clock: Clock, ends: float
) -> AsyncIterator[tuple[Any, AsyncIterator[bytes]]]:
    """``read_within`` for asyncio: open ``opened`` (an async SDK streaming response).

    Yields the response and its body's chunks. Raises ``Expired`` when the deadline
    (``ends`` on ``clock``, placed on the event loop's clock) passes while the request
    is sent, its headers awaited or a chunk awaited. The response is closed on exit.
    """
    loop = asyncio.get_running_loop()
    when = loop.time() + (ends - clock.monotonic())
    async with contextlib.AsyncExitStack() as stack:
        try:
            async with asyncio.timeout_at(when):
                response = await opened.__aenter__()
        except TimeoutError:
            raise Expired from None
        stack.push_async_callback(_close, response)
        body = response.iter_bytes()
        chunks = _achunks(body, when)
        # Closed here, before the response, not by the garbage collector later (an
        # async generator left open is finalised on the loop, if it still runs).
        stack.push_async_callback(body.aclose)
        stack.push_async_callback(chunks.aclose)
        yield response, chunks


async def _achunks(chunks: AsyncIterator[bytes], when: float) -> AsyncGenerator[bytes, None]:
    while True:
        try:
            async with asyncio.timeout_at(when):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise Expired from None
        yield chunk


async def _close(response: Any) -> None:
    """Close ``response`` even when the task is cancelled while it closes.

    Closing awaits (the HTTP client's bookkeeping of its pool); a cancellation landing
    there would leave the pool counting a request that no longer exists. The close runs
    as its own task, shielded: if this one is cancelled meanwhile, it still finishes.
    """
    await asyncio.shield(response.close())
