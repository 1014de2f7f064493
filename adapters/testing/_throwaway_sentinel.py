"""A throwaway Sentinel set (one primary, one replica, three sentinels) on free ports.

For tests only. The sentinels judge a server down after ``down_after`` milliseconds
without an answer and may retry a failover after ``failover_timeout``, so a SIGKILLed
primary is replaced within a few seconds (a production set uses tens of seconds).
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from portside.adapters.testing._throwaway_redis import FaultToolError, free_port, redis_cli

__all__ = ["SENTINEL_SERVICE", "ThrowawaySentinel", "throwaway_sentinel"]

#: The service name the throwaway sentinels monitor.
SENTINEL_SERVICE = "portside"
#: Sentinels of the set; a quorum of two of them judges the primary down.
SENTINELS = 3


@attrs.define
class _Process:
    """One child ``redis-server`` (a data server or a sentinel) and its directory."""

    port: int
    argv: list[str]
    workdir: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.workdir,
        )

    def kill(self, timeout: float) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=timeout)


@attrs.define
class ThrowawaySentinel:
    """Two ``redis-server`` data servers and three ``redis-server CONF --sentinel``.

    ``url`` is the ``redis+sentinel://`` URL of the set (every sentinel, then the
    service name). With ``durable=True`` both data servers keep an append-only file
    synced on every write, so what the primary acknowledged survives its SIGKILL on
    its own disk too; without it nothing is persisted. ``kill_primary()`` SIGKILLs the
    current primary, ``wait_for_failover(old)`` waits until the sentinels name another
    one, ``restart(port)`` starts a killed server again as a replica of the current
    primary (as a supervisor that read the sentinels' answer would).
    """

    executable: str
    cli: str
    durable: bool = False
    down_after: int = 1000
    failover_timeout: int = 2000
    start_timeout: float = 20.0
    _servers: dict[int, _Process] = attrs.field(factory=dict, init=False, repr=False)
    _sentinels: list[_Process] = attrs.field(factory=list, init=False, repr=False)

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:<s1>,127.0.0.1:<s2>,127.0.0.1:<s3>/portside``."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self._sentinels)
        return f"redis+sentinel://{hosts}/{SENTINEL_SERVICE}"

    @property
    def server_ports(self) -> tuple[int, ...]:
        """The two data servers' ports, the first primary first."""
        return tuple(self._servers)

    @property
    def sentinel_ports(self) -> tuple[int, ...]:
        """The three sentinels' ports."""
        return tuple(s.port for s in self._sentinels)

    def start(self) -> None:
        """Start the servers and the sentinels; wait until every sentinel sees the set."""
        primary, replica = free_port(), free_port()
        self._server(primary, None).start()
        self._wait(lambda: self.ask(primary, "PING") == "PONG", f"server {primary}")
        self._server(replica, primary).start()
        self._wait(lambda: self._link_up(replica), f"replica {replica} in sync")
        for _ in range(SENTINELS):
            self._sentinel(free_port(), primary).start()
        for sentinel in self._sentinels:
            # Each sentinel must know the replica and the two other sentinels, or the
            # first failover waits for them to discover each other (hello messages).
            self._wait(
                functools.partial(self._sees_all, sentinel.port), f"sentinel {sentinel.port} ready"
            )

    def _server(self, port: int, replica_of: int | None) -> _Process:
        workdir = self._servers[port].workdir if port in self._servers else _mkdtemp()
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.durable
            else ["--appendonly", "no"]
        )
        following = [] if replica_of is None else ["--replicaof", "127.0.0.1", str(replica_of)]
        argv = [
            self.executable,
            "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir,
            *persistence, *following,
            "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
            "--daemonize", "no", "--loglevel", "warning", "--logfile", "",
        ]  # fmt: skip
        self._servers[port] = node = _Process(port, argv, workdir)
        return node

    def _sentinel(self, port: int, primary: int) -> _Process:
        workdir = _mkdtemp()
        conf = Path(workdir) / "sentinel.conf"
        service = SENTINEL_SERVICE
        conf.write_text(
            f'port {port}\nbind 127.0.0.1\ndir {workdir}\nlogfile ""\nloglevel warning\n'
            f"sentinel monitor {service} 127.0.0.1 {primary} 2\n"
            f"sentinel down-after-milliseconds {service} {self.down_after}\n"
            f"sentinel failover-timeout {service} {self.failover_timeout}\n"
            f"sentinel parallel-syncs {service} 1\n"
        )
        node = _Process(port, [self.executable, str(conf), "--sentinel"], workdir)
        self._sentinels.append(node)
        return node

    def ask(self, port: int, *command: str) -> str:
        """``redis-cli -p port command...``'s output, stripped ("" when it did not answer)."""
        return redis_cli(self.cli, port, *command)

    def primary_port(self) -> int | None:
        """The port the first answering sentinel names as the primary's (``None``: none)."""
        for sentinel in self._sentinels:
            if not sentinel.running:
                continue
            reply = self.ask(
                sentinel.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_SERVICE
            ).split()
            if len(reply) == 2 and reply[1].isdigit():
                return int(reply[1])
        return None

    def server_url(self, port: int) -> str:
        """``redis://127.0.0.1:<port>/0``: one data server directly, not through Sentinel."""
        return f"redis://127.0.0.1:{port}/0"

    def kill(self, port: int) -> None:
        """SIGKILL the data server on ``port`` and reap it."""
        self._servers[port].kill(self.start_timeout)

    def kill_sentinel(self, index: int) -> None:
        """SIGKILL the sentinel at ``index`` (in ``sentinel_ports`` order) and reap it."""
        self._sentinels[index].kill(self.start_timeout)

    def kill_primary(self) -> int:
        """SIGKILL the current primary; returns its port."""
        port = self.primary_port()
        if port is None:
            raise FaultToolError("throwaway sentinel: no sentinel names a primary")
        self.kill(port)
        return port

    def wait_for_failover(self, old: int, timeout: float = 30.0) -> int:
        """Wait until the sentinels name a primary other than ``old`` that serves writes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            port = self.primary_port()
            if (
                port is not None
                and port != old
                and "role:master" in self.ask(port, "INFO", "replication")
            ):
                return port
            time.sleep(0.05)
        raise FaultToolError(f"throwaway sentinel: no failover within {timeout}s")

    def restart(self, port: int) -> None:
        """Start the killed server on ``port`` again, as a replica of the current primary."""
        primary = self.primary_port()
        if primary is None or primary == port:
            raise FaultToolError("throwaway sentinel: restart needs another primary")
        self._server(port, primary).start()
        self._wait(lambda: self._link_up(port), f"server {port} back as a replica")

    def _link_up(self, port: int) -> bool:
        return "master_link_status:up" in self.ask(port, "INFO", "replication")

    def _sees_all(self, port: int) -> bool:
        reply = self.ask(port, "SENTINEL", "MASTER", SENTINEL_SERVICE).split()
        fields = dict(zip(reply[::2], reply[1::2], strict=False))
        return fields.get("num-slaves") == "1" and fields.get("num-other-sentinels") == str(
            SENTINELS - 1
        )

    def _wait(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            for node in (*self._servers.values(), *self._sentinels):
                if node.process is not None and node.process.poll() not in (None, -9):
                    raise FaultToolError(
                        f"a sentinel set process exited with {node.process.returncode}"
                    )
            if ready():
                return
            time.sleep(0.05)
        raise FaultToolError(f"throwaway sentinel: no {what} within {self.start_timeout}s")

    def close(self) -> None:
        """SIGKILL every process, reap it and remove its directory."""
        for node in (*self._sentinels, *self._servers.values()):
            node.kill(self.start_timeout)
            shutil.rmtree(node.workdir, ignore_errors=True)
        self._sentinels.clear()
        self._servers.clear()


def _mkdtemp() -> str:
    return tempfile.mkdtemp(prefix="redis-sentinel-")


@contextlib.contextmanager
def throwaway_sentinel(
    executable: str | None = None,
    cli: str | None = None,
    *,
    durable: bool = False,
    attempts: int = 3,
) -> Iterator[ThrowawaySentinel]:
    """A running :class:`ThrowawaySentinel` on free loopback ports, torn down on exit.

    Killed and removed even when starting fails midway. ``FaultToolError`` when
    ``redis-server`` or ``redis-cli`` is not installed or the set will not form.
    """
    server = executable or shutil.which("redis-server")
    client = cli or shutil.which("redis-cli")
    if server is None or client is None:
        raise FaultToolError("redis-server and redis-cli are needed for a throwaway sentinel set")
    found: ThrowawaySentinel | None = None
    try:
        for attempt in range(attempts):
            found = ThrowawaySentinel(server, client, durable=durable)
            try:
                found.start()
                break
            except FaultToolError:
                # Another process took a free port between probe and bind: try others.
                found.close()
                if attempt == attempts - 1:
                    raise
        assert found is not None
        yield found
    finally:
        if found is not None:
            found.close()
