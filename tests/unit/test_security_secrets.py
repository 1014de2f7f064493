"""Secrets stay secret: generated keys and passwords never show in reprs, config or errors."""

from __future__ import annotations

import string
from collections.abc import Callable
from urllib.parse import quote

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from portside.adapters import observability
from portside.adapters.app import describe, load_settings, redact_url
from portside.adapters.redis._client import redacted_url

# Long enough that finding one in unrelated text ("redis", "127.0.0.1") is not a coincidence.
_ALPHABET = string.ascii_letters + string.digits + "!$%&'()*+,;=-._~:@"
passwords = st.text(alphabet=_ALPHABET, min_size=10, max_size=30)
api_keys = st.text(alphabet=string.ascii_letters + string.digits, min_size=20, max_size=48).map(
    lambda s: "sk-" + s
)
Redactor = Callable[[str], str | None]
REDACTORS = [pytest.param(redacted_url, id="redis"), pytest.param(redact_url, id="settings")]


def _leaks(text: str, secret: str) -> bool:
    return secret in text or quote(secret, safe="") in text


@pytest.mark.parametrize("redact", REDACTORS)
@given(password=passwords, user=st.sampled_from(["", "app", "default"]))
def test_a_percent_encoded_password_is_redacted(redact: Redactor, password: str, user: str) -> None:
    """A URL's (properly encoded) password never survives redaction."""
    url = f"redis://{user}:{quote(password, safe='')}@cache.internal:6380/2"
    shown = redact(url) or ""
    assert not _leaks(shown, password)
    assert shown.endswith("@cache.internal:6380/2")


@pytest.mark.parametrize("redact", REDACTORS)
@given(head=passwords, tail=passwords)
def test_a_raw_password_with_an_at_sign_is_redacted(redact: Redactor, head: str, tail: str) -> None:
    """A password typed unencoded with an '@' in it is hidden whole (redis-py accepts it)."""
    password = f"{head}@{tail}"
    shown = redact(f"rediss://app:{password}@cache.internal:6380/0") or ""
    assert tail not in shown
    assert head not in shown


@pytest.mark.parametrize("redact", REDACTORS)
@given(password=passwords)
def test_a_password_in_the_query_string_is_redacted(redact: Redactor, password: str) -> None:
    """``redis://host/0?password=...`` (a form redis-py accepts) does not show the password."""
    shown = redact(f"redis://cache.internal:6379/0?password={quote(password, safe='')}") or ""
    assert not _leaks(shown, password)


def _settings_env(key: str, password: str, db_password: str) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": key,
        "REDIS_URL": f"rediss://app:{quote(password, safe='')}@cache.internal:6380/0",
        "DATABASE_URL": (
            f"postgresql+psycopg://app:{quote(db_password, safe='')}@db.internal/app"
            "?sslmode=require"
        ),
    }


def _settings_shown(env: dict[str, str]) -> list[str]:
    loaded = load_settings(env)
    assert loaded.connections.openai_api_key is not None
    return [repr(loaded), str(loaded)] + [" ".join(row) for row in describe(loaded, env)]


@settings(max_examples=25)  # typed-settings loading costs ~40 ms an example
@given(key=api_keys, password=passwords, db_password=passwords)
def test_settings_repr_and_config_rows_hide_every_secret(
    key: str, password: str, db_password: str
) -> None:
    """Neither repr(settings) nor the ``portside config`` rows show the key or a password."""
    secrets = (key, password, db_password)
    # A generated secret that is part of what the settings always show (``gpt-4o-min``
    # is in the default model's name) would be found without leaking: skip those.
    public = " ".join(_settings_shown(_settings_env("sk-" + "0" * 20, "0" * 10, "0" * 10)))
    assume(not any(_leaks(public, secret) for secret in secrets))
    for text in _settings_shown(_settings_env(key, password, db_password)):
        for secret in secrets:
            assert not _leaks(text, secret), text


@given(key=api_keys, password=passwords)
def test_log_redaction_hides_keys_tokens_and_url_passwords(key: str, password: str) -> None:
    """The log redactor masks API keys, bearer tokens, key=value secrets and URL passwords."""
    encoded = quote(password, safe="")
    lines = [
        f"calling with {key}",
        f"Authorization: Bearer {key}",
        f"api_key={key} and password={encoded}",
        f"connecting to redis://app:{encoded}@cache.internal:6379/0",
    ]
    for line in lines:
        shown = observability.redact(line)
        assert key not in shown
        assert encoded not in shown


@settings(max_examples=15)  # each example builds an SDK client (~70 ms)
@given(key=api_keys)
def test_the_openai_adapter_repr_and_errors_hide_the_key(key: str) -> None:
    """OpenAILLM's repr and an error made from an exception quoting the key never show it."""
    pytest.importorskip("portside.adapters.openai")
    import openai

    from portside.adapters.openai import OpenAILLM
    from portside.adapters.openai._errors import map_error

    llm = OpenAILLM(api_key=key, base_url="http://127.0.0.1:9/v1")
    try:
        assert key not in repr(llm)
    finally:
        llm.close()
    exc = openai.APIConnectionError(
        message=f"could not connect with key {key}",
        request=__import__("httpx2").Request("POST", "http://127.0.0.1:9/v1/chat/completions"),
    )
    error = map_error(exc, operation="complete", now=0.0, secret=key)
    for text in (str(error), repr(error), str(error.__cause__), repr(error.__cause__)):
        assert key not in text
