"""A killable throwaway redis-server on a free port. For tests only."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator

import attrs

__all__ = ["FaultToolError", "ThrowawayRedis", "free_port", "redis_cli", "throwaway_redis"]


class FaultToolError(RuntimeError):
    """A fault tool could not do what it was asked (no redis-server, port never opened)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def redis_cli(cli: str, port: int, *command: str) -> str:
    """``redis-cli -h 127.0.0.1 -p port command...``'s output, stripped ("" on no answer)."""
    try:
        reply = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [cli, "-h", "127.0.0.1", "-p", str(port), *command],
            capture_output=True,
            timeout=2.0,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return ""
    return reply.stdout.decode(errors="replace").strip()


@attrs.define
class ThrowawayRedis:
    """A ``redis-server`` child process on a loopback port, for killing. For tests.

    By default nothing is persisted (``--save "" --appendonly no``), so after
    ``restart()`` the server is empty. With ``durable=True`` it keeps an append-only
    file synced on every write (``--appendfsync always``), as a server holding a queue
    should: then what it acknowledged survives a SIGKILL. ``url`` points at database 0.
    """

    port: int
    executable: str
    start_timeout: float = 10.0
    durable: bool = False
    _process: subprocess.Popen[bytes] | None = attrs.field(default=None, init=False, repr=False)
    _dir: str = attrs.field(factory=lambda: tempfile.mkdtemp(prefix="redis-"), init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)
    kills: int = attrs.field(default=0, init=False)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server and wait until it answers PING (``FaultToolError`` if not)."""
        with self._lock:
            if self.running:
                return
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [
                    self.executable,
                    "--port", str(self.port), "--bind", "127.0.0.1",
                    "--save", "", "--dir", self._dir,
                    *(("--appendonly", "yes", "--appendfsync", "always") if self.durable
                      else ("--appendonly", "no")),
                    "--daemonize", "no", "--loglevel", "warning", "--logfile", "",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            process = self._process
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise FaultToolError(f"redis-server exited with {process.returncode}")
            if _pings(self.port):
                return
            time.sleep(0.02)
        self.kill()
        raise FaultToolError(f"redis-server did not answer on port {self.port}")

    def kill(self) -> None:
        """SIGKILL the server and reap it (no-op when it is not running)."""
        with self._lock:
            process = self._process
            if process is None or process.poll() is not None:
                return
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=self.start_timeout)
            self.kills += 1

    def restart(self) -> None:
        """Start a fresh, empty server on the same port."""
        self.kill()
        self.start()

    def close(self) -> None:
        """Kill the server and remove its working directory."""
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)


def _pings(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def throwaway_redis(
    executable: str | None = None, attempts: int = 3, *, durable: bool = False
) -> Iterator[ThrowawayRedis]:
    """A running :class:`ThrowawayRedis` on a free port, killed and removed on exit.

    ``FaultToolError`` when ``redis-server`` is not installed or will not start.
    """
    path = executable or shutil.which("redis-server")
    if path is None:
        raise FaultToolError("redis-server is not installed")
    server: ThrowawayRedis | None = None
    try:
        for attempt in range(attempts):
            server = ThrowawayRedis(free_port(), path, durable=durable)
            try:
                server.start()
                break
            except FaultToolError:
                # Another process took the free port between probe and bind: try another.
                server.close()
                if attempt == attempts - 1:
                    raise
        assert server is not None
        yield server
    finally:
        if server is not None:
            server.close()
