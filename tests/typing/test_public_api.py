"""Type-level checks of the public API (run by mypy --strict, and imported by pytest)."""

from __future__ import annotations

from typing import assert_type

from returns.result import Result

from portside.adapters.codec import decode, encode
from portside.domain import Completion, SerializationError, Usage


def test_codec_types() -> None:
    """encode/decode carry precise types without casts."""
    data = encode(Usage(1, 2))
    assert_type(data, Result[bytes, SerializationError])
    value = decode(data.unwrap(), Completion)
    assert_type(value, Result[Completion, SerializationError])
