"""The loopback TCP fault proxy behind ``portside.adapters.testing._faults``. For tests only."""

from __future__ import annotations

import contextlib
import enum
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Final, Literal

import attrs

__all__ = ["Direction", "ProxyMode", "ProxyStats", "TcpFaultProxy"]

_POLL: Final = 0.02  # how often a pump notices a mode change; bounds every reaction time
_CHUNK: Final = 65536
_JOIN: Final = 2.0
#: Which way a fault applies: towards the server, towards the client, or both.
Direction = Literal["upstream", "downstream", "both"]


class ProxyMode(enum.Enum):
    """What the proxy does with bytes right now."""

    FORWARD = "forward"
    STALL = "stall"
    BLACKHOLE = "blackhole"


@attrs.frozen
class ProxyStats:
    """Counters since the proxy started: connections, bytes each way, cuts made."""

    accepted: int
    open: int
    upstream_bytes: int
    downstream_bytes: int
    cuts: int


def _reset_close(sock: socket.socket | None) -> None:
    """Close with RST (linger 0), so the peer sees a reset rather than a polite EOF."""
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


@attrs.define(eq=False)
class _Link:
    """One client connection and its upstream, pumped by one thread."""

    client: socket.socket
    upstream: socket.socket | None
    doomed: threading.Event = attrs.field(factory=threading.Event)
    done: threading.Event = attrs.field(factory=threading.Event)
    tainted: bool = False  # bytes were swallowed, so the protocol stream is broken
    # close_after: the server must see exactly the bytes let through, then EOF; an RST
    # could make its kernel drop them unread.
    graceful: bool = False


@attrs.define
class TcpFaultProxy:
    """A loopback TCP proxy in front of ``target_host:target_port`` that fails on command.

    Use as a context manager; clients connect to ``("127.0.0.1", proxy.port)``. Every
    control returns once it has taken effect on every open connection (bounded by a
    short deadline), so a test can inject a fault and then act.
    """

    target_host: str
    target_port: int
    connect_timeout: float = 2.0
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)
    _listener: socket.socket | None = attrs.field(default=None, init=False, repr=False)
    _links: set[_Link] = attrs.field(factory=set, init=False, repr=False)
    _threads: list[threading.Thread] = attrs.field(factory=list, init=False, repr=False)
    _stop: threading.Event = attrs.field(factory=threading.Event, init=False, repr=False)
    _mode: ProxyMode = attrs.field(default=ProxyMode.FORWARD, init=False)
    _budget: int | None = attrs.field(default=None, init=False, repr=False)
    _budget_direction: Direction = attrs.field(default="both", init=False, repr=False)
    _accepted: int = attrs.field(default=0, init=False, repr=False)
    _up: int = attrs.field(default=0, init=False, repr=False)
    _down: int = attrs.field(default=0, init=False, repr=False)
    _cuts: int = attrs.field(default=0, init=False, repr=False)
    port: int = attrs.field(default=0, init=False)

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> TcpFaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        listener.settimeout(_POLL)
        self._listener = listener
        self.port = int(listener.getsockname()[1])
        self._spawn(self._accept_loop, "fault-proxy-accept")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting, reset every connection and join every thread."""
        self._stop.set()
        with self._lock:
            links = list(self._links)
        for link in links:
            link.doomed.set()
        deadline = time.monotonic() + _JOIN
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        for link in links:  # a pump that missed the deadline still must not leak sockets
            _reset_close(link.client)
            _reset_close(link.upstream)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    @property
    def address(self) -> tuple[str, int]:
        """Where clients connect."""
        return ("127.0.0.1", self.port)

    @property
    def mode(self) -> ProxyMode:
        """The current forwarding mode."""
        return self._mode

    def stats(self) -> ProxyStats:
        """A snapshot of the counters."""
        with self._lock:
            return ProxyStats(self._accepted, len(self._links), self._up, self._down, self._cuts)

    # -- controls --------------------------------------------------------------------

    def cut(self) -> int:
        """Reset every open connection now; new connections are forwarded. Returns how many."""
        with self._lock:
            links = list(self._links)
            self._cuts += 1
        self._doom(links)
        return len(links)

    def stall(self) -> None:
        """Stop forwarding: bytes wait in the kernel buffers until ``heal()``."""
        self._set_mode(ProxyMode.STALL)

    def blackhole(self) -> None:
        """Accept connections and read what clients send, but never answer or forward."""
        self._set_mode(ProxyMode.BLACKHOLE)

    def close_after(self, n: int, direction: Direction = "upstream") -> None:
        """Forward ``n`` more bytes (counted in ``direction``), then reset every connection.

        ``upstream`` counts client-to-server bytes, which makes "cut in the middle of
        what the client sends" reproducible. Connections opened after the cut work.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            self._budget = n
            self._budget_direction = direction
        if n == 0:
            self._trip()

    def heal(self) -> None:
        """Forward normally again; connections whose bytes were swallowed are reset."""
        with self._lock:
            self._mode = ProxyMode.FORWARD
            self._budget = None
            tainted = [link for link in self._links if link.tainted]
        self._doom(tainted)

    # -- internals -------------------------------------------------------------------

    def _set_mode(self, mode: ProxyMode) -> None:
        with self._lock:
            self._mode = mode

    def _doom(self, links: list[_Link]) -> None:
        for link in links:
            link.doomed.set()
        deadline = time.monotonic() + _JOIN
        for link in links:
            link.done.wait(max(0.0, deadline - time.monotonic()))

    def _trip(self) -> None:
        with self._lock:
            self._budget = None
            self._cuts += 1
            links = list(self._links)
        for link in links:
            link.doomed.set()  # the pump that tripped cannot wait for itself

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream: socket.socket | None = None
            if self._mode is not ProxyMode.BLACKHOLE:
                try:
                    upstream = socket.create_connection(
                        (self.target_host, self.target_port), timeout=self.connect_timeout
                    )
                except OSError:
                    _reset_close(client)
                    continue
            link = _Link(client, upstream, tainted=upstream is None)
            with self._lock:
                self._accepted += 1
                self._links.add(link)
            self._spawn(self._pump, "fault-proxy-pump", link)

    def _take(self, upstream: bool, size: int) -> tuple[int, bool]:
        """How many of ``size`` bytes may pass, and whether the budget ran out."""
        with self._lock:
            counted = self._budget is not None and self._budget_direction in (
                "both",
                "upstream" if upstream else "downstream",
            )
            allowed = size
            if counted and self._budget is not None:
                allowed = min(size, self._budget)
                self._budget -= allowed
            if upstream:
                self._up += allowed
            else:
                self._down += allowed
            return allowed, counted and self._budget == 0

    def _pump(self, link: _Link) -> None:
        selector = selectors.DefaultSelector()
        try:
            link.client.setblocking(False)
            selector.register(link.client, selectors.EVENT_READ, True)
            if link.upstream is not None:
                link.upstream.setblocking(False)
                selector.register(link.upstream, selectors.EVENT_READ, False)
            while not (link.doomed.is_set() or self._stop.is_set()):
                mode = self._mode
                if mode is ProxyMode.STALL and not link.tainted:
                    time.sleep(_POLL)
                    continue
                for key, _ in selector.select(_POLL):
                    if not self._move(link, key.data, mode):
                        return
        finally:
            selector.close()
            _reset_close(link.client)
            if link.graceful and link.upstream is not None:
                with contextlib.suppress(OSError):
                    link.upstream.shutdown(socket.SHUT_WR)
                link.upstream.close()
            else:
                _reset_close(link.upstream)
            with self._lock:
                self._links.discard(link)
            link.done.set()

    def _move(self, link: _Link, from_client: bool, mode: ProxyMode) -> bool:
        """Move one chunk; ``False`` when the link is finished."""
        source = link.client if from_client else link.upstream
        sink = link.upstream if from_client else link.client
        assert source is not None
        try:
            data = source.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        if not data:
            return False
        if mode is ProxyMode.BLACKHOLE or link.tainted or sink is None:
            link.tainted = True  # swallowed: the stream can never be resumed coherently
            return True
        allowed, tripped = self._take(from_client, len(data))
        try:
            sink.setblocking(True)
            sink.settimeout(_JOIN)
            sink.sendall(data[:allowed])
            sink.setblocking(False)
        except OSError:
            return False
        if tripped:
            link.graceful = True
            self._trip()
            return False
        return True
