"""The codec: exact round trips, clear errors, corrupt bytes decode to a Failure."""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from returns.result import Failure, Success

from portside.adapters.codec import Codec, decode, decode_value, encode
from portside.domain import SerializationError
from tests.strategies import DOMAIN_VALUES, json_values

codec = Codec()


@given(json_values())
def test_every_json_value_round_trips(value: Any) -> None:
    """Every JSON value (64-bit integers, finite floats) decodes to an equal value."""
    data = encode(value).unwrap()
    assert decode_value(data) == Success(value)


@given(st.one_of(*DOMAIN_VALUES.values()))
def test_every_domain_value_round_trips(value: object) -> None:
    """Every attrs value type of ``domain`` decodes back to an equal instance."""
    data = encode(value).unwrap()
    assert decode(data, type(value)) == Success(value)


@given(st.binary())
def test_bytes_and_text_pass_through(blob: bytes) -> None:
    """Bytes and str round-trip unchanged through their own envelope kinds."""
    assert decode(encode(blob).unwrap(), bytes) == Success(blob)
    text = blob.decode("latin-1")
    assert decode(encode(text).unwrap(), str) == Success(text)


@given(st.binary(max_size=64))
def test_fuzzed_bytes_decode_to_a_failure_value_not_an_exception(blob: bytes) -> None:
    """Arbitrary bytes decode to a value or a SerializationError, never raise."""
    for into in (dict, bytes, str, *(t for t in DOMAIN_VALUES)):
        result = decode(blob, into)
        if isinstance(result, Failure):
            assert isinstance(result.failure(), SerializationError)
    assert isinstance(decode_value(blob), Success | Failure)


@given(st.sampled_from(list(DOMAIN_VALUES)), st.binary(max_size=64))
def test_corrupt_payload_after_a_valid_header_is_a_failure(into: type, tail: bytes) -> None:
    """A valid header followed by garbage is a SerializationError value."""
    result = decode(b"ps1a" + tail, into)
    if isinstance(result, Failure):
        assert isinstance(result.failure(), SerializationError)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (math.nan, "non-finite"),
        ({"a": [1.0, math.inf]}, "$.a[1]"),
        ({1, 2}, "set"),
        (object(), "object"),
        (2**70, "64-bit"),
    ],
)
def test_unrepresentable_values_fail_with_a_clear_message(value: object, expected: str) -> None:
    """NaN, infinity, sets, arbitrary objects and huge ints are SerializationErrors naming it."""
    result = encode(value)
    assert isinstance(result, Failure)
    assert expected in str(result.failure())


def test_cyclic_value_is_a_serialization_error() -> None:
    """A list that contains itself is a SerializationError, not a RecursionError."""
    cyclic: list[object] = []
    cyclic.append(cyclic)
    assert isinstance(encode(cyclic).failure(), SerializationError)


def test_non_finite_float_inside_attrs_value_is_refused() -> None:
    """An attrs value with a NaN field is refused instead of being stored as null."""

    @attrs.frozen
    class Point:
        x: float

    assert "non-finite" in str(encode(Point(math.nan)).failure())


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "not a portside envelope"),
        (b"ps9j{}", "unsupported envelope version"),
        (b"ps1z{}", "envelope kind"),
        (b"ps1b\x00", "envelope kind"),  # bytes asked back as a dict
    ],
)
def test_unknown_envelopes_are_named(data: bytes, expected: str) -> None:
    """Unknown headers and versions are SerializationErrors that say which."""
    assert expected in str(decode(data, dict).failure())


def test_the_error_keeps_the_vendor_exception_as_cause() -> None:
    """A decode failure keeps orjson's exception as ``__cause__`` for the traceback."""
    error = decode(b"ps1j{", dict).failure()
    assert error.__cause__ is not None


def test_no_pickle_in_the_envelope() -> None:
    """Encoded attrs values are JSON text after the header, not pickle opcodes."""
    from portside.domain import Usage

    data = encode(Usage(1, 2, 3)).unwrap()
    assert data.startswith(b"ps1a{")
