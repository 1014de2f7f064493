"""Reading a cluster's topology from its CLUSTER NODES reply."""

from __future__ import annotations

from typing import Any

from portside.adapters.redis import RedisTopology
from portside.adapters.redis._topology import _cluster


class _Nodes:
    """A stand-in answering ``cluster_nodes()`` as redis-py parses it."""

    def __init__(self, nodes: dict[str, dict[str, Any]]) -> None:
        self.nodes = nodes

    def cluster_nodes(self) -> dict[str, dict[str, Any]]:
        return self.nodes


def _node(flags: str, slots: list[list[str]], connected: bool = True) -> dict[str, Any]:
    return {"flags": flags, "slots": slots, "connected": connected}


def test_a_failed_primary_leaves_its_slots_uncovered() -> None:
    """A primary flagged fail serves nothing: its slots are missing from the count."""
    topology = _cluster(
        _Nodes(
            {
                "a:1": _node("myself,master", [["0", "5460"]]),
                "b:1": _node("master,fail", [["5461", "10922"]]),
                "c:1": _node("master", [["10923", "16383"]]),
                "d:1": _node("slave", []),
                "e:1": _node("slave", [], connected=False),
            }
        )
    )
    assert topology == RedisTopology("cluster", ("a:1", "c:1"), ("d:1",), 16384 - 5462)
    assert not topology.complete
    assert topology.summary == "cluster: 2 primaries, 1 replica, 10922/16384 slots"


def test_single_slot_ranges_count_one_each() -> None:
    """A slot listed alone (not as a range) counts once."""
    topology = _cluster(_Nodes({"a:1": _node("master", [["0", "16382"], ["16383"]])}))
    assert topology.complete
