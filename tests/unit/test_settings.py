"""Settings: conventional variables first, PORTSIDE_* tuning, clear errors, secrets hidden."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.adapters.app import (
    Settings,
    SettingsError,
    describe,
    load_settings,
    redact_url,
)


def test_nothing_configured_means_embedded_defaults() -> None:
    """With an empty environment every port runs embedded and SQLite is the database."""
    settings = load_settings({})
    assert settings.database_url == "sqlite:///portside.db"
    assert not settings.real_llm
    assert not settings.uses_redis(settings.tuning.cache_backend)


def test_conventional_variables_are_read_without_prefix() -> None:
    """OPENAI_*, REDIS_URL and DATABASE_URL are read as they are conventionally named."""
    settings = load_settings(
        {
            "OPENAI_BASE_URL": "http://127.0.0.1:8000/v1",
            "REDIS_URL": "redis://127.0.0.1:6379/2",
            "DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1/test",
            "PORTSIDE_QUEUE_LEASE": "12.5",
            "PORTSIDE_LLM_BACKEND": "real",
        }
    )
    assert settings.real_llm
    assert settings.uses_redis("auto")
    assert not settings.uses_redis("memory")
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.tuning.queue_lease == 12.5


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"PORTSIDE_QUEUE_LEASE": "soon"}, "PORTSIDE_QUEUE_LEASE: "),
        ({"PORTSIDE_QUEUE_LEASE": "-1"}, "PORTSIDE_QUEUE_LEASE: is not valid"),
        ({"PORTSIDE_QUEUE_MAX_DELIVERIES": "0"}, "PORTSIDE_QUEUE_MAX_DELIVERIES: is not valid"),
        ({"PORTSIDE_CACHE_BACKEND": "disk"}, "PORTSIDE_CACHE_BACKEND: "),
        ({"REDIS_URL": "http://127.0.0.1"}, "REDIS_URL: has a scheme"),
        ({"OPENAI_BASE_URL": "localhost:8000"}, "OPENAI_BASE_URL: must be a URL"),
        ({"DATABASE_URL": "oracle://x"}, "DATABASE_URL: has a scheme"),
    ],
)
def test_invalid_values_name_the_variable(environ: dict[str, str], expected: str) -> None:
    """An invalid value raises SettingsError whose message starts with the variable."""
    with pytest.raises(SettingsError) as info:
        load_settings(environ)
    assert str(info.value).startswith(expected)


def test_an_invalid_url_is_not_echoed() -> None:
    """The error for a bad URL does not repeat the URL, which may hold a password."""
    with pytest.raises(SettingsError) as info:
        load_settings({"REDIS_URL": "http://user:hunter2@host"})
    assert "hunter2" not in str(info.value)


# Framed by a marker, so a secret can never be a word the output holds anyway
# ("embeddin" is a prefix of a setting's name).
secrets = st.text(
    alphabet=st.characters(min_codepoint=48, max_codepoint=122, categories=["L", "N"]),
    min_size=8,
    max_size=40,
).map(lambda text: f"Zq{text}9Zq")


@given(secrets)
def test_api_key_and_passwords_never_show(secret: str) -> None:
    """The API key and URL passwords appear in no repr, str or config row."""
    environ = {
        "OPENAI_API_KEY": secret,
        "REDIS_URL": f"redis://user:{secret}@127.0.0.1:6379/0",
        "DATABASE_URL": f"postgresql+psycopg://app:{secret}@db/app?sslmode=require",
    }
    settings = load_settings(environ)
    shown = [repr(settings), str(settings), repr(settings.connections)]
    shown += [" ".join(row) for row in describe(settings, environ)]
    assert all(secret not in text for text in shown)


def test_config_rows_say_where_each_value_came_from() -> None:
    """describe() marks values read from the environment and values left at default."""
    environ = {"PORTSIDE_NAMESPACE": "shop", "REDIS_URL": "rediss://cache.internal:6380/0"}
    rows = {
        variable: (value, source)
        for variable, value, source, _ in describe(load_settings(environ), environ)
    }
    assert rows["PORTSIDE_NAMESPACE"] == ("shop", "env PORTSIDE_NAMESPACE")
    assert rows["REDIS_URL"] == ("rediss://cache.internal:6380/0", "env REDIS_URL")
    assert rows["PORTSIDE_QUEUE_LEASE"] == ("30.0", "default")
    assert rows["OPENAI_API_KEY"] == ("(unset)", "default")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://:pw@h:1/0", "redis://:***@h:1/0"),
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        (
            "postgresql://u@h/db?password=pw&sslmode=require",
            "postgresql://u@h/db?password=***&sslmode=require",
        ),
        ("sqlite:///portside.db", "sqlite:///portside.db"),
        (None, None),
    ],
)
def test_redact_url_hides_passwords(url: str | None, expected: str | None) -> None:
    """Passwords in the authority and in query parameters are replaced by ***."""
    assert redact_url(url) == expected


def test_settings_default_is_embedded() -> None:
    """Settings() without arguments is the embedded configuration."""
    assert Settings().database_url.startswith("sqlite:///")
