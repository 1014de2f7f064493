"""The validation rules both queue adapters share."""

from __future__ import annotations

import math

import attrs
import pytest
from returns.result import Failure, Success

from portside.domain import Delivery, InvalidRequest, QueueMessage
from portside.ports.queue_rules import (
    MAX_BATCH,
    QueueOptions,
    check_body,
    check_delay,
    check_deliveries,
    check_headers,
    check_publish_batch,
    check_receive,
)


def _message(result: object) -> str:
    assert isinstance(result, Failure)
    error = result.failure()
    assert isinstance(error, InvalidRequest)
    return error.message


@pytest.mark.parametrize(
    ("options", "word"),
    [
        ({"lease_timeout": 0.0}, "lease_timeout"),
        ({"lease_timeout": math.inf}, "lease_timeout"),
        ({"max_deliveries": 0}, "max_deliveries"),
        ({"max_body_bytes": 0}, "max_body_bytes"),
        ({"dedupe_window": -1.0}, "dedupe_window"),
    ],
)
def test_options_out_of_range_raise(options: dict[str, float], word: str) -> None:
    """Options are programming input: an impossible value raises naming it."""
    with pytest.raises(ValueError, match=word):
        QueueOptions(**options)  # type: ignore[arg-type]


def test_headers_must_map_names_to_strings() -> None:
    """Headers need printable str names and str values; a copy is returned."""
    given = {"trace": "abc"}
    copied = check_headers(given, operation="publish", service="q")
    assert copied == Success(given)
    assert copied.unwrap() is not given
    assert "header name is empty" in _message(check_headers({"": "x"}, operation="p", service="q"))
    assert "value must be a str" in _message(check_headers({"n": 1}, operation="p", service="q"))
    assert "mapping" in _message(check_headers([("a", "b")], operation="p", service="q"))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -0.5, "1", True])
def test_delays_must_be_finite_non_negative_numbers(bad: object) -> None:
    """NaN, infinity, negatives, strings and booleans are not delays."""
    _message(check_delay("delay", bad, operation="nack", service="q"))


def test_zero_is_a_delay_but_not_an_extension() -> None:
    """A zero delay is allowed; extending a lease by zero is not."""
    assert check_delay("delay", 0, operation="nack", service="q") == Success(0.0)
    assert "positive" in _message(
        check_delay("by", 0.0, operation="extend", service="q", positive=True)
    )


@pytest.mark.parametrize("count", [0, MAX_BATCH + 1, True, 1.0])
def test_receive_counts_are_whole_numbers_in_range(count: object) -> None:
    """max_messages must be an int from 1 to the batch maximum."""
    assert "max_messages" in _message(check_receive("t", "g", "c", count, 0.0, service="q"))


def test_bodies_must_be_bytes_within_the_limit() -> None:
    """A str body, or one over max_body_bytes, is refused with its size."""
    options = QueueOptions(max_body_bytes=3)
    assert check_body(bytearray(b"abc"), options, operation="p", service="q") == Success(b"abc")
    assert "must be bytes" in _message(check_body("abc", options, operation="p", service="q"))
    assert "4 bytes" in _message(check_body(b"abcd", options, operation="p", service="q"))


def test_a_batch_names_its_bad_body_and_its_size_limit() -> None:
    """The failing body's index is named; batches over the maximum are refused."""
    options = QueueOptions(max_body_bytes=3)
    assert "body 1" in _message(check_publish_batch("t", [b"a", b"abcd"], options, service="q"))
    too_many = [b"a"] * (MAX_BATCH + 1)
    assert "more than" in _message(check_publish_batch("t", too_many, options, service="q"))


@pytest.mark.parametrize("bad", [None, "abc", b"ab", [None], [object()], (1,), 5])
def test_an_ack_batch_must_be_a_sequence_of_deliveries(bad: object) -> None:
    """None, text, bytes, numbers and sequences holding non-deliveries are refused."""
    _message(check_deliveries(bad, operation="ack_many", service="q"))


def test_an_ack_batch_checks_the_names_of_every_distinct_delivery() -> None:
    """A bad name in a later delivery of the batch is found, not skipped."""
    message = QueueMessage("1", "t", b"", {}, 0.0)
    good = Delivery(message, "g", "c", 1, "r")
    assert check_deliveries([good, good], operation="a", service="q") == Success([good, good])
    bad = attrs.evolve(good, consumer="")
    assert "consumer" in _message(check_deliveries([good, bad], operation="a", service="q"))
    forged = attrs.evolve(good, group=["g"])
    assert "group" in _message(check_deliveries([good, forged], operation="a", service="q"))
