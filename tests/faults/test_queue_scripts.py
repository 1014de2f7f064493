"""RedisQueue after the server forgot its scripts (a restart without them, SCRIPT FLUSH)."""

from __future__ import annotations

import pytest
from returns.result import Success

from portside.adapters.testing import ThrowawayRedis

pytestmark = pytest.mark.faults


def test_every_operation_reloads_its_scripts_after_a_script_flush(
    redis_server: ThrowawayRedis,
) -> None:
    """After SCRIPT FLUSH each script call loads the scripts and succeeds, nothing lost."""
    queue_module = pytest.importorskip("portside.adapters.redis._queue")
    queue = queue_module.RedisQueue.from_url(redis_server.url)
    try:
        for group in ("a", "b"):
            assert queue.receive("t", group, "c") == Success([])
        queue.client.script_flush()
        first = queue.publish("t", b"once", dedupe_key="k").unwrap()
        queue.client.script_flush()
        assert queue.publish("t", b"again", dedupe_key="k") == Success(first)
        queue.client.script_flush()
        ids = queue.publish_many("t", [b"1", b"2"]).unwrap()
        queue.client.script_flush()
        got = queue.receive("t", "a", "c", max_messages=3).unwrap()
        assert [d.message.body for d in got] == [b"once", b"1", b"2"]
        queue.client.script_flush()
        assert queue.ack(got[0]) == Success(None)
        queue.client.script_flush()
        assert queue.nack(got[1]) == Success(None)
        queue.client.script_flush()
        assert queue.extend(got[2], by=5.0).map(lambda d: d.message.id) == Success(ids[1])
        queue.client.script_flush()
        on_b = queue.receive("t", "b", "c", max_messages=3).unwrap()
        queue.client.script_flush()
        # Two groups in one batch: the pipelined path reloads its scripts too.
        assert queue.ack_many([got[2], *on_b]) == Success(4)
        queue.client.script_flush()
        assert queue.dead_letters("t", "a") == Success([])
    finally:
        queue.close()
