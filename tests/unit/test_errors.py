"""The error taxonomy: retryable flags, safe messages, causes kept."""

from __future__ import annotations

import pytest
from returns.result import Failure

import portside.domain as errors


@pytest.mark.parametrize(
    ("cls", "retryable"),
    [
        (errors.Unavailable, True),
        (errors.TimedOut, True),
        (errors.RateLimited, True),
        (errors.Conflict, True),
        (errors.ProtocolError, True),
        (errors.Unauthorized, False),
        (errors.InvalidRequest, False),
        (errors.NotFound, False),
        (errors.QuotaExceeded, False),
        (errors.ContentFiltered, False),
        (errors.SerializationError, False),
    ],
)
def test_each_error_says_whether_a_retry_can_help(
    cls: type[errors.ServiceError], retryable: bool
) -> None:
    """Transient errors are retryable; request and permission errors are not."""
    assert cls.retryable is retryable
    assert issubclass(cls, errors.ServiceError)


def test_error_carries_service_operation_and_message() -> None:
    """str() names the service, the operation and the safe message."""
    error = errors.NotFound(service="cache", operation="ttl", message="key 'a' is absent")
    assert str(error) == "cache.ttl: key 'a' is absent"
    assert error.kind == "NotFound"


def test_cause_is_kept_for_tracebacks() -> None:
    """caused_by() records the vendor exception as __cause__."""
    cause = ConnectionError("refused")
    error = errors.Unavailable(service="redis", operation="get").caused_by(cause)
    assert error.__cause__ is cause
    with pytest.raises(errors.Unavailable) as info:
        raise error
    assert info.value.__cause__ is cause


def test_rate_limited_matches_with_retry_after() -> None:
    """Users match RateLimited(retry_after=s) to read the wait the provider asked for."""
    match Failure(errors.RateLimited(retry_after=2.5)):
        case Failure(errors.RateLimited(retry_after=seconds)):
            assert seconds == 2.5
        case _:  # pragma: no cover - the match above must succeed
            pytest.fail("RateLimited did not match")
