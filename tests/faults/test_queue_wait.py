"""A receive that waits longer than the socket timeout on an idle but healthy server."""

from __future__ import annotations

import pytest
from returns.result import Success

from portside.adapters.testing import ThrowawayRedis

pytestmark = pytest.mark.faults

RedisOptions = pytest.importorskip("portside.adapters.redis._client").RedisOptions


def test_a_long_wait_on_an_idle_queue_is_an_empty_answer_not_a_timeout(
    redis_server: ThrowawayRedis,
) -> None:
    """receive(wait=) longer than the socket timeout returns Success([]) when nothing comes."""
    queue_module = pytest.importorskip("portside.adapters.redis._queue")
    queue = queue_module.RedisQueue.from_url(
        redis_server.url, connection=RedisOptions(socket_timeout=0.2, connect_timeout=0.2)
    )
    try:
        assert queue.receive("idle", "g", "c") == Success([])
        assert queue.receive("idle", "g", "c", wait=0.5) == Success([])
    finally:
        queue.close()
