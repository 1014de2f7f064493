"""The fault tools: the proxy obeys each control; the throwaway Redis dies and returns."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from portside.adapters.testing import ProxyMode, TcpFaultProxy, ThrowawayRedis, free_port

pytestmark = pytest.mark.faults


class _Sink:
    """A loopback server that records what it receives and echoes it back."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.received = bytearray()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conns: list[socket.socket] = []
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                conn, _ = self.listener.accept()
                conn.settimeout(0.05)
                conns.append(conn)
            for conn in list(conns):
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    conns.remove(conn)
                    continue
                if not data:
                    conns.remove(conn)
                    continue
                with self.lock:
                    self.received += data
                with contextlib.suppress(OSError):
                    conn.sendall(data)
        for conn in conns:
            conn.close()
        self.listener.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)


@pytest.fixture(name="sink")
def _sink() -> Iterator[_Sink]:
    sink = _Sink()
    yield sink
    sink.close()


@pytest.fixture(name="proxy")
def _proxy(sink: _Sink) -> Iterator[TcpFaultProxy]:
    with TcpFaultProxy("127.0.0.1", sink.port) as proxy:
        yield proxy


def _client(proxy: TcpFaultProxy, timeout: float = 2.0) -> socket.socket:
    return socket.create_connection(proxy.address, timeout=timeout)


def _is_dead(sock: socket.socket, probe: bytes = b"x") -> bool:
    """Whether the connection was reset or closed by the proxy."""
    try:
        if probe:
            sock.sendall(probe)
        return not sock.recv(1)
    except OSError:
        return True


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_proxy_forwards_both_ways(proxy: TcpFaultProxy, sink: _Sink) -> None:
    """Bytes sent through the proxy reach the server and its answer comes back."""
    with _client(proxy) as sock:
        sock.sendall(b"hello" * 1000)
        assert _read_exactly(sock, 5000) == b"hello" * 1000
    stats = proxy.stats()
    assert stats.upstream_bytes == stats.downstream_bytes == 5000


def test_cut_resets_open_connections_and_accepts_new_ones(proxy: TcpFaultProxy) -> None:
    """After cut() an open connection is reset; a new connection works."""
    with _client(proxy) as sock:
        sock.sendall(b"ping")
        assert _read_exactly(sock, 4) == b"ping"
        assert proxy.cut() == 1
        assert _is_dead(sock)
    with _client(proxy) as sock:
        sock.sendall(b"again")
        assert _read_exactly(sock, 5) == b"again"


def test_stall_holds_bytes_until_heal(proxy: TcpFaultProxy, sink: _Sink) -> None:
    """While stalled nothing is forwarded; heal() delivers what was held."""
    with _client(proxy, timeout=0.2) as sock:
        proxy.stall()
        assert proxy.mode is ProxyMode.STALL
        sock.sendall(b"held")
        with pytest.raises(TimeoutError):
            sock.recv(4)
        assert bytes(sink.received) == b""
        proxy.heal()
        sock.settimeout(2)
        assert _read_exactly(sock, 4) == b"held"


def test_blackhole_accepts_but_never_answers(proxy: TcpFaultProxy, sink: _Sink) -> None:
    """A blackholed connection opens, swallows bytes and never answers; after heal it is reset."""
    proxy.blackhole()
    with _client(proxy, timeout=0.2) as sock:
        sock.sendall(b"lost")
        with pytest.raises(TimeoutError):
            sock.recv(4)
        proxy.heal()
        sock.settimeout(2)
        assert _is_dead(sock, probe=b"")
    assert bytes(sink.received) == b""
    with _client(proxy) as sock:
        sock.sendall(b"ok")
        assert _read_exactly(sock, 2) == b"ok"


def test_close_after_forwards_exactly_n_bytes_then_resets(
    proxy: TcpFaultProxy, sink: _Sink
) -> None:
    """close_after(n) lets exactly n client bytes through, then resets the connection."""
    proxy.close_after(7)
    with _client(proxy) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(b"0123456789")
            _read_exactly(sock, 10)
        assert _is_dead(sock, probe=b"more")
    assert bytes(sink.received) == b"0123456"
    with _client(proxy) as sock:
        sock.sendall(b"fresh")
        assert _read_exactly(sock, 5) == b"fresh"


def test_closing_the_proxy_stops_every_thread(sink: _Sink) -> None:
    """Leaving the block joins every proxy thread and frees the port."""
    with TcpFaultProxy("127.0.0.1", sink.port) as proxy:
        socks = [_client(proxy) for _ in range(5)]
        for sock in socks:
            sock.sendall(b"a")
            assert _read_exactly(sock, 1) == b"a"
        port = proxy.port
    for sock in socks:
        sock.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("fault-proxy")]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()


def test_proxy_to_a_dead_target_refuses_cleanly() -> None:
    """A connection through a proxy whose target is down is reset, not hung."""
    with TcpFaultProxy("127.0.0.1", free_port()) as proxy:
        try:
            sock = _client(proxy)
        except ConnectionResetError:
            return  # reset while connecting: as good as a reset afterwards
        with sock:
            assert _is_dead(sock)


def _ping(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        return sock.recv(16)


def test_throwaway_redis_dies_on_kill_and_returns_empty_on_restart(
    redis_server: ThrowawayRedis,
) -> None:
    """kill() makes the port refuse; restart() serves again on the same port, empty."""
    assert _ping(redis_server.port) == b"+PONG\r\n"
    with socket.create_connection(("127.0.0.1", redis_server.port), timeout=2) as sock:
        sock.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")
        assert sock.recv(16) == b"+OK\r\n"
    redis_server.kill()
    assert not redis_server.running
    with pytest.raises(OSError):
        _ping(redis_server.port)
    redis_server.restart()
    assert redis_server.kills == 1
    with socket.create_connection(("127.0.0.1", redis_server.port), timeout=2) as sock:
        sock.sendall(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
        assert sock.recv(16) == b"$-1\r\n"
