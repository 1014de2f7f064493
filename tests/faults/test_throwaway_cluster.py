"""The throwaway cluster: it forms, and it leaves no process or directory behind, even on error."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from redis.cluster import RedisCluster

from portside.adapters.testing import FaultToolError, ThrowawayCluster, throwaway_cluster

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def _alive_under(folder: Path) -> list[str]:
    """Command lines of live processes that mention ``folder`` (their --dir is there)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # the process ended while we looked
        if str(folder) in text:
            found.append(text)
    return found


def test_the_cluster_has_three_primaries_each_with_a_replica(
    redis_cluster: ThrowawayCluster,
) -> None:
    """The fixture's cluster serves every slot from three primaries, each with one replica."""
    client = RedisCluster.from_url(redis_cluster.url.replace("+cluster", ""))
    try:
        assert len(client.get_primaries()) == 3
        nodes = client.cluster_nodes()
        replicas = [n for n in nodes.values() if "slave" in n["flags"]]
        assert len(replicas) == 3
        assert len({n["master_id"] for n in replicas}) == 3
        assert int(client.cluster_info()["cluster_slots_assigned"]) == 16384
    finally:
        client.close()


def test_a_failed_create_kills_every_node_and_removes_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When redis-cli cannot join the nodes, FaultToolError, and no node or directory is left."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    # A redis-cli that answers PING like the real one but fails to create the cluster.
    cli = tmp_path / "fake-redis-cli"
    cli.write_text('#!/bin/sh\ncase "$*" in *PING*) echo PONG ;; *) exit 1 ;; esac\n')
    cli.chmod(0o755)
    nodes_home = tmp_path / "nodes"
    nodes_home.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(nodes_home))
    with (
        pytest.raises(FaultToolError, match="cluster create failed"),
        throwaway_cluster(server, str(cli)),
    ):
        pass
    assert list(nodes_home.iterdir()) == []
    assert _alive_under(nodes_home) == []
