"""The validation rules both queue adapters share."""

from __future__ import annotations

import math

import attrs
import pytest
from returns.result import Failure, Success

from portside.domain import Delivery, InvalidRequest, QueueMessage
from portside.ports.queue_rules import (
    MAX_BATCH,
    CheckedHeaders,
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
    options = QueueOptions()
    copied = check_headers(given, options, operation="publish", service="q")
    assert copied == Success(CheckedHeaders(given, len("trace") + len("abc")))
    assert copied.unwrap().values is not given
    for bad, words in [
        ({"": "x"}, "header name is empty"),
        ({"n": 1}, "value must be a str"),
        ([("a", "b")], "mapping"),
        ({"n": "\ud800"}, "not valid text"),
    ]:
        assert words in _message(check_headers(bad, options, operation="p", service="q"))


def test_headers_count_against_the_message_limit() -> None:
    """Header names and values take UTF-8 bytes of the limit; the body gets what is left."""
    options = QueueOptions(max_body_bytes=10)
    headers = check_headers({"h": "é" * 4}, options, operation="p", service="q").unwrap()
    assert headers.size == 9
    assert check_body(b"x", options, operation="p", service="q", reserved=9) == Success(b"x")
    assert "over the maximum of 10" in _message(
        check_body(b"xy", options, operation="p", service="q", reserved=9)
    )
    huge = {"h": "x" * 50_000_000}
    assert "over the maximum" in _message(check_headers(huge, options, operation="p", service="q"))


@pytest.mark.parametrize("bad", [10**400, -(10**400)])
def test_numbers_beyond_the_float_range_are_refused_not_raised(bad: int) -> None:
    """An int too large for a float is a refused delay and a refused wait."""
    assert "finite" in _message(check_delay("delay", bad, operation="nack", service="q"))
    assert "finite" in _message(check_receive("t", "g", "c", 1, bad, service="q"))


@pytest.mark.parametrize("bad", [None, b"abc", "abc", 5, {b"a": b"b"}])
def test_a_batch_of_bodies_must_be_an_iterable_of_bytes(bad: object) -> None:
    """None, a number, a str, a bytes object or a mapping is not a batch of bodies."""
    assert "iterable" in _message(check_publish_batch("t", bad, QueueOptions(), service="q"))


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
