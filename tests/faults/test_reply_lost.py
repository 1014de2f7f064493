"""Applied but reply lost: Redis executes the command, the connection dies before the answer.

The ports document what a caller may assume: ``incr`` and a ``publish`` without a
dedupe key are never retried automatically (the call fails, the effect happened once);
a ``publish`` with a dedupe key may be repeated safely and is stored once.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from returns.result import Failure, Success

from portside.adapters.testing import TcpFaultProxy, ThrowawayRedis
from tests.faults.conftest import Campaign

pytestmark = pytest.mark.faults

RedisOptions = pytest.importorskip("portside.adapters.redis._client").RedisOptions
OPTIONS = RedisOptions(socket_timeout=0.5, connect_timeout=0.5)


@pytest.fixture(name="proxy")
def _proxy(redis_server: ThrowawayRedis) -> Iterator[TcpFaultProxy]:
    with TcpFaultProxy("127.0.0.1", redis_server.port) as proxy:
        yield proxy


def _lose_next_reply(proxy: TcpFaultProxy) -> None:
    # The command goes through whole; one byte of the answer does, then the reset.
    proxy.close_after(1, direction="downstream")


def test_incr_whose_reply_is_lost_fails_and_is_applied_exactly_once(
    redis_server: ThrowawayRedis, proxy: TcpFaultProxy, campaign: Campaign
) -> None:
    """A lost INCR reply is a Failure; the server counted it once; the next incr counts on."""
    cache_module = pytest.importorskip("portside.adapters.redis._cache")
    through = cache_module.RedisCache.from_url(
        f"redis://127.0.0.1:{proxy.port}/0", namespace="lost", options=OPTIONS
    )
    direct = cache_module.RedisCache.from_url(redis_server.url, namespace="lost", options=OPTIONS)
    try:
        assert through.incr("n") == Success(1)
        _lose_next_reply(proxy)
        lost = through.incr("n")
        assert isinstance(lost, Failure), lost
        assert lost.failure().kind in ("Unavailable", "TimedOut")
        assert direct.get("n") == Success(b"2")  # applied once, not retried
        assert through.incr("n") == Success(3)  # the next call works on a new connection
    finally:
        through.close()
        direct.close()
    campaign.name = "reply lost: incr"
    campaign.fault("reset after the command, before the reply")
    campaign.count(3, failure=lost.failure().kind)


@pytest.mark.parametrize("dedupe", [False, True], ids=["no dedupe key", "dedupe key"])
def test_publish_whose_reply_is_lost_is_stored_once(
    dedupe: bool, redis_server: ThrowawayRedis, proxy: TcpFaultProxy, campaign: Campaign
) -> None:
    """A lost publish reply never stores the message twice; with a dedupe key a retry is safe."""
    queue_module = pytest.importorskip("portside.adapters.redis._queue")
    through = queue_module.RedisQueue.from_url(
        f"redis://127.0.0.1:{proxy.port}/0", connection=OPTIONS
    )
    direct = queue_module.RedisQueue.from_url(redis_server.url, connection=OPTIONS)
    key = "order-17" if dedupe else None
    try:
        assert direct.receive("jobs", "g", "c") == Success([])  # join the group first
        assert isinstance(through.publish("jobs", b"warm"), Success)
        _lose_next_reply(proxy)
        first = through.publish("jobs", b"payload", dedupe_key=key)
        outcomes = [first]
        if dedupe:
            # The caller's retry after an ambiguous failure (the adapter may already
            # have retried by itself): the dedupe key makes it harmless.
            outcomes.append(through.publish("jobs", b"payload", dedupe_key=key))
            assert isinstance(outcomes[-1], Success), outcomes
        else:
            assert isinstance(first, Failure), first  # not retried blindly
            assert first.failure().kind in ("Unavailable", "TimedOut")
        got = direct.receive("jobs", "g", "c", max_messages=10)
        bodies = [d.message.body for d in got.unwrap()]
        assert bodies.count(b"payload") == 1, bodies
        if dedupe:
            ids = {o.unwrap() for o in outcomes if isinstance(o, Success)}
            stored = [d.message.id for d in got.unwrap() if d.message.body == b"payload"]
            assert ids == set(stored)
    finally:
        through.close()
        direct.close()
    campaign.name = "reply lost: publish"
    campaign.fault(
        "reset after the command, before the reply" + (" (dedupe key)" if dedupe else "")
    )
    for outcome in outcomes:
        campaign.count(failure=outcome.failure().kind if isinstance(outcome, Failure) else None)
