"""The map from redis-py exceptions to the taxonomy."""

from __future__ import annotations

import pytest
import redis.exceptions as rex

import portside.domain as errors
from portside.adapters.redis._client import map_error, redacted_url


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (rex.TimeoutError("t"), errors.TimedOut),
        (TimeoutError("t"), errors.TimedOut),
        (rex.AuthenticationError("a"), errors.Unauthorized),
        (rex.NoPermissionError("NOPERM"), errors.Unauthorized),
        (rex.BusyLoadingError("loading"), errors.Unavailable),
        (rex.ReadOnlyError("READONLY"), errors.Unavailable),
        (rex.MovedError("3999 127.0.0.1:7001"), errors.Unavailable),
        (rex.AskError("3999 127.0.0.1:7001"), errors.Unavailable),
        (rex.TryAgainError("TRYAGAIN"), errors.Unavailable),
        (rex.ClusterDownError("CLUSTERDOWN"), errors.Unavailable),
        (rex.ConnectionError("refused"), errors.Unavailable),
        (ConnectionRefusedError(), errors.Unavailable),
        (rex.OutOfMemoryError("OOM"), errors.QuotaExceeded),
        (rex.DataError("bad"), errors.InvalidRequest),
        (rex.ResponseError("value is not an integer or out of range"), errors.InvalidRequest),
        (rex.ResponseError("ERR value is not an integer or out of range"), errors.InvalidRequest),
        (rex.ResponseError("increment or decrement would overflow"), errors.InvalidRequest),
        (rex.ResponseError("WRONGTYPE Operation against a key"), errors.InvalidRequest),
        (rex.ResponseError("NOSCRIPT"), errors.ProtocolError),
        (rex.InvalidResponse("garbage"), errors.ProtocolError),
    ],
)
def test_each_redis_error_maps_to_one_taxonomy_class(
    exc: BaseException, expected: type[errors.ServiceError]
) -> None:
    """Every redis-py and socket exception becomes one error class, keeping the cause."""
    error = map_error(exc, service="cache", operation="get")
    assert type(error) is expected
    assert error.__cause__ is exc
    assert (error.service, error.operation) == ("cache", "get")


def test_redacted_url_hides_the_password() -> None:
    """The password of a Redis URL is replaced by *** and the rest kept."""
    assert redacted_url("redis://user:pw@h:6379/0") == "redis://user:***@h:6379/0"
    assert redacted_url("redis://h:6379/0") == "redis://h:6379/0"
