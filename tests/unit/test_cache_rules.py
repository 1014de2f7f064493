"""The key, value, TTL and counter rules every cache adapter shares."""

from __future__ import annotations

import math

import pytest

from portside.ports.cache_rules import (
    check_by,
    check_key,
    check_keys,
    check_namespace,
    check_ttl,
    check_value,
    parse_counter,
)


@pytest.mark.parametrize("key", ["a", "user:42", "k" * 1024, "ключ", "é" * 512, "a b", "😀"])
def test_valid_keys_pass(key: str) -> None:
    """Printable keys up to 1024 UTF-8 bytes are accepted, ASCII or not."""
    assert check_key(key, "get") is None


@pytest.mark.parametrize(
    ("key", "named"),
    [
        ("", "empty"),
        ("a\nb", "control character"),
        ("a\x00", "control character"),
        ("\x7f", "control character"),
        ("é\u0085", "control character"),
        ("k" * 1025, "1024 UTF-8 bytes"),
        ("é" * 513, "1024 UTF-8 bytes"),
        ("a\ud800", "surrogate"),
        (b"bytes", "must be str"),
        (7, "must be str"),
    ],
)
def test_bad_keys_are_named(key: object, named: str) -> None:
    """Each bad key is an InvalidRequest whose message names the problem."""
    error = check_key(key, "set")
    assert error is not None
    assert named in error.message
    assert (error.service, error.operation) == ("cache", "set")


def test_values_must_be_bytes() -> None:
    """A value at the port is bytes; text, bytearray and None are refused by name."""
    assert check_value(b"", "set") is None
    for bad in ("text", bytearray(b"x"), None, 3):
        error = check_value(bad, "set")
        assert error is not None
        assert type(bad).__name__ in error.message


@pytest.mark.parametrize("ttl", [None, 0.001, 1, 2.5, 2**31 - 1])
def test_good_ttls(ttl: float | None) -> None:
    """None and positive finite seconds up to about 68 years are accepted."""
    assert check_ttl(ttl, "set") is None


@pytest.mark.parametrize("ttl", [0, -1, -0.5, math.nan, math.inf, True, "10", 2**31])
def test_bad_ttls(ttl: object) -> None:
    """Zero, negative, non-finite, boolean, textual and absurd TTLs are refused."""
    error = check_ttl(ttl, "set")
    assert error is not None
    assert "ttl" in error.message


def test_incr_amount_is_a_64_bit_int() -> None:
    """The incr amount takes ints in the signed 64-bit range, not bools or floats."""
    assert check_by(2**63 - 1) is None
    assert check_by(-(2**63)) is None
    for bad in (2**63, -(2**63) - 1, True, 1.0):
        assert check_by(bad) is not None


def test_keys_list_keeps_duplicates_and_refuses_a_lone_string() -> None:
    """check_keys lists the keys, and a bare str (an iterable of letters) is refused."""
    listed, error = check_keys(iter(["a", "b", "a"]), "get_many")
    assert (listed, error) == (["a", "b", "a"], None)
    _, error = check_keys("abc", "get_many")
    assert error is not None
    assert "not a single value" in error.message
    _, error = check_keys(["ok", ""], "get_many")
    assert error is not None


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        (b"0", 0),
        (b"41", 41),
        (b"-7", -7),
        (b"9223372036854775807", 2**63 - 1),
        (b"-9223372036854775808", -(2**63)),
        (b"", None),
        (b"-0", None),
        (b"007", None),
        (b"+1", None),
        (b" 1", None),
        (b"1.0", None),
        (b"9223372036854775808", None),
        (b"\xff", None),
    ],
)
def test_counters_parse_as_redis_reads_them(raw: bytes, number: int | None) -> None:
    """Only Redis's canonical 64-bit integers count as counters."""
    assert parse_counter(raw) == number


def test_namespace_alphabet() -> None:
    """Namespaces are letters, digits and _.:- ; glob characters and '|' are refused."""
    assert check_namespace("app:cache-v1.2_x") == "app:cache-v1.2_x"
    for bad in ("", "a|b", "a*", "a?", "a[b]", "a b", "x" * 129, 3):
        with pytest.raises(ValueError, match="namespace"):
            check_namespace(bad)
