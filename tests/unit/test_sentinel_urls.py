"""Sentinel URLs: taken apart once, accepted by the settings, refused in one line."""

from __future__ import annotations

import pytest

from portside.adapters._urls import SentinelAddress, URLProblem, parse_sentinel_url
from portside.adapters.app import SettingsError, load_settings

SECRET = "Sup3r-s3cret"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "redis+sentinel://10.0.0.1:26380,10.0.0.2/orders",
            SentinelAddress(
                (("10.0.0.1", 26380), ("10.0.0.2", 26379)), "orders", 0, None, None, False
            ),
        ),
        (
            "redis+sentinel://s1:5000/orders/3",
            SentinelAddress((("s1", 5000),), "orders", 3, None, None, False),
        ),
        (
            "rediss+sentinel://app:p%40ss%2Fw@[::1]:26379,s2:26379/main/",
            SentinelAddress((("::1", 26379), ("s2", 26379)), "main", 0, "app", "p@ss/w", True),
        ),
        (
            "redis+sentinel://:pw@s1/main",
            SentinelAddress((("s1", 26379),), "main", 0, None, "pw", False),
        ),
    ],
)
def test_a_sentinel_url_names_its_sentinels_service_database_and_credentials(
    url: str, expected: SentinelAddress
) -> None:
    """Every sentinel in order (26379 by default), the service, the database, decoded creds."""
    assert parse_sentinel_url(url) == expected


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("redis+sentinel://s1:26379", "must name the service"),
        ("redis+sentinel://s1:26379/", "must name the service"),
        ("redis+sentinel://s1:port/main", "port must be a number"),
        ("redis+sentinel://s1:0/main", "port must be a number"),
        ("redis+sentinel://s1,,s2/main", "must name a host in every place"),
        ("redis+sentinel://s1/main/seven", "/SERVICE/DB"),
        ("redis+sentinel://s1/main/1/2", "/SERVICE/DB"),
        (f"redis+sentinel://:{SECRET}@x@s1/main", "not encoded"),
        (f"redis+sentinel://:{SECRET}/x@s1/main", "not encoded"),
        ("redis+sentinel://s1/main?db=2", "no query"),
        ("redis://s1/main", "is not a redis+sentinel"),
    ],
)
def test_a_malformed_sentinel_url_is_refused_without_repeating_it(url: str, words: str) -> None:
    """A bad Sentinel URL is a URLProblem saying what is wrong, never quoting the URL."""
    with pytest.raises(URLProblem) as info:
        parse_sentinel_url(url)
    assert words in str(info.value)
    assert SECRET not in str(info.value)
    assert url not in str(info.value)


def test_the_settings_accept_a_sentinel_url_with_its_scheme_lower_cased() -> None:
    """REDIS_URL may name a Sentinel service; the scheme is normalised like redis://."""
    url = "redis+sentinel://s1:26379,s2:26379/main/2"
    settings = load_settings({"REDIS_URL": "REDIS+SENTINEL" + url.removeprefix("redis+sentinel")})
    assert settings.connections.redis_url == url


def test_the_settings_refuse_a_bad_sentinel_url_in_one_line() -> None:
    """A bad Sentinel REDIS_URL is a one-line SettingsError naming the variable."""
    with pytest.raises(SettingsError) as info:
        load_settings({"REDIS_URL": f"redis+sentinel://:{SECRET}@s1:26379"})
    message = str(info.value)
    assert message.startswith("REDIS_URL: ")
    assert "must name the service" in message
    assert "\n" not in message
    assert SECRET not in message
