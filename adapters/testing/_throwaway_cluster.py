"""A throwaway Redis Cluster (three primaries, three replicas) on free ports. For tests only."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import attrs

from portside.adapters.testing._throwaway_redis import FaultToolError, free_port, redis_cli

__all__ = ["ThrowawayCluster", "throwaway_cluster"]

#: Primaries and replicas of the throwaway cluster (``--cluster-replicas 1``).
NODES = 6


@attrs.define
class ThrowawayCluster:
    """Six ``redis-server --cluster-enabled yes`` children joined into one cluster.

    Nothing is persisted (``--save "" --appendonly no``); each node has its own
    temporary directory (its ``nodes.conf`` lives there). ``url`` names one node as
    ``redis+cluster://127.0.0.1:<port>``: a cluster client finds the others itself.
    """

    ports: tuple[int, ...]
    executable: str
    cli: str
    start_timeout: float = 20.0
    #: More ``redis-server`` arguments for every node (``--cluster-node-timeout 1000``).
    extra_args: tuple[str, ...] = ()
    _processes: list[subprocess.Popen[bytes]] = attrs.field(factory=list, init=False, repr=False)
    _argv: list[list[str]] = attrs.field(factory=list, init=False, repr=False)
    _dirs: list[str] = attrs.field(factory=list, init=False, repr=False)

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:<first port>``."""
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def start(self) -> None:
        """Start the nodes, join them, wait for ``cluster_state:ok`` (``FaultToolError`` if not)."""
        for port in self.ports:
            workdir = tempfile.mkdtemp(prefix="redis-cluster-")
            self._dirs.append(workdir)
            self._argv.append(
                [
                    self.executable,
                    "--port", str(port), "--bind", "127.0.0.1",
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--save", "", "--appendonly", "no", "--dir", workdir,
                    "--daemonize", "no", "--loglevel", "warning", "--logfile", "",
                    *self.extra_args,
                ]
            )  # fmt: skip
            self._processes.append(self._spawn(port))
        for port in self.ports:
            self._wait(lambda port=port: self._ask(port, "PING") == "PONG", f"node {port}")
        created = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [
                self.cli, "--cluster", "create",
                *(f"127.0.0.1:{port}" for port in self.ports),
                "--cluster-replicas", "1", "--cluster-yes",
            ],
            capture_output=True,
            timeout=self.start_timeout,
            check=False,
        )  # fmt: skip
        if created.returncode != 0:
            tail = created.stdout.decode(errors="replace").strip().splitlines()[-1:]
            raise FaultToolError(f"redis-cli --cluster create failed: {tail}")
        for port in self.ports:
            # Every node must agree, not just the first: a client may start from any.
            self._wait(
                lambda port=port: "cluster_state:ok" in self._ask(port, "CLUSTER", "INFO"),
                f"cluster_state:ok on {port}",
            )
        self._wait(
            lambda: self._ask(self.ports[0], "CLUSTER", "NODES").count("slave") == NODES // 2,
            "replica for every primary",
        )

    def ask(self, port: int, *command: str) -> str:
        """``redis-cli -p port command...``'s output, stripped ("" when it did not answer)."""
        return redis_cli(self.cli, port, *command)

    _ask = ask

    def _wait(self, ready: object, what: str) -> None:
        assert callable(ready)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            for process in self._processes:
                if process.poll() is not None:
                    raise FaultToolError(f"a cluster node exited with {process.returncode}")
            if ready():
                return
            time.sleep(0.05)
        raise FaultToolError(f"throwaway cluster: no {what} within {self.start_timeout}s")

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            self._argv[self.ports.index(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def restart(self, port: int) -> None:
        """Start the killed node on ``port`` again and wait until it serves as a replica.

        It keeps its ``nodes.conf``, so it rejoins and follows the replica that took its
        slots over.
        """
        self._processes[self.ports.index(port)] = self._spawn(port)
        self._wait(
            lambda: "master_link_status:up" in self._ask(port, "INFO", "replication"),
            f"node {port} back as a replica",
        )

    def kill(self, port: int) -> None:
        """SIGKILL the node on ``port`` and reap it."""
        process = self._processes[self.ports.index(port)]
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=self.start_timeout)

    def wait_for_failover(self, port: int, timeout: float = 30.0) -> None:
        """Wait until the killed primary on ``port`` is failed and its replica has its slots.

        ``FaultToolError`` if that does not happen within ``timeout`` seconds.
        """
        survivor = next(p for p in self.ports if p != port)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self._ask(survivor, "CLUSTER", "NODES").splitlines():
                fields = line.split()
                # <id> <ip:port@bus> <flags> <primary> <ping> <pong> <epoch> <link> [slots]
                # A failed node that lost its slots to its replica lists no slots.
                if (
                    len(fields) == 8
                    and fields[1].startswith(f"127.0.0.1:{port}@")
                    and "fail" in fields[2].split(",")
                ):
                    return
            time.sleep(0.05)
        raise FaultToolError(f"throwaway cluster: no failover of {port} within {timeout}s")

    def close(self) -> None:
        """SIGKILL every node, reap it and remove its directory."""
        for process in self._processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait(timeout=self.start_timeout)
        self._processes.clear()
        for workdir in self._dirs:
            shutil.rmtree(workdir, ignore_errors=True)
        self._dirs.clear()


@contextlib.contextmanager
def throwaway_cluster(
    executable: str | None = None,
    cli: str | None = None,
    attempts: int = 3,
    extra_args: tuple[str, ...] = (),
) -> Iterator[ThrowawayCluster]:
    """A running :class:`ThrowawayCluster` on free loopback ports, torn down on exit.

    ``extra_args`` go to every node's ``redis-server`` (a failover test passes
    ``--cluster-node-timeout 1000``: Redis's default judges a node failed after 15 s).

    Killed and removed even when starting fails midway. ``FaultToolError`` when
    ``redis-server`` or ``redis-cli`` is not installed or the cluster will not form.
    """
    server = executable or shutil.which("redis-server")
    client = cli or shutil.which("redis-cli")
    if server is None or client is None:
        raise FaultToolError("redis-server and redis-cli are needed for a throwaway cluster")
    cluster: ThrowawayCluster | None = None
    try:
        for attempt in range(attempts):
            # A cluster node also listens on port + 10000 (the cluster bus): keep it free too.
            ports: set[int] = set()
            while len(ports) < NODES:
                ports.add(_free_bus_port())
            cluster = ThrowawayCluster(
                tuple(sorted(ports)), server, client, extra_args=tuple(extra_args)
            )
            try:
                cluster.start()
                break
            except FaultToolError:
                # Another process took a free port between probe and bind: try others.
                cluster.close()
                if attempt == attempts - 1:
                    raise
        assert cluster is not None
        yield cluster
    finally:
        if cluster is not None:
            cluster.close()


def _free_bus_port() -> int:
    """A free port below 55536 whose cluster-bus port (+10000) is free as well."""
    for _ in range(100):
        port = free_port()
        if port < 55536 and _bindable(port + 10000):
            return port
    raise FaultToolError("no free port pair for a cluster node")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
