"""Settings: every service URL is normalised or refused up front, with one line naming it."""

from __future__ import annotations

import pytest

from portside.adapters.app import SettingsError, load_settings

SECRET = "Sup3r-s3cret"

GOOD = [
    # (variable, value as given, value as the adapters receive it)
    ("DATABASE_URL", "postgres://u@db:5432/app", "postgresql+psycopg://u@db:5432/app"),
    ("DATABASE_URL", "postgresql://u@db/app", "postgresql+psycopg://u@db/app"),
    ("DATABASE_URL", "POSTGRESQL+psycopg://u@db/app", "postgresql+psycopg://u@db/app"),
    ("DATABASE_URL", "mysql://root@127.0.0.1:3306/t", "mysql+pymysql://root@127.0.0.1:3306/t"),
    ("DATABASE_URL", "mariadb://root@db/t", "mariadb+pymysql://root@db/t"),
    ("DATABASE_URL", "mysql+pymysql://root@db/t?charset=utf8mb4", None),
    ("DATABASE_URL", "sqlite:///app.db", None),
    ("DATABASE_URL", "sqlite:////var/lib/app/app.db", None),
    ("DATABASE_URL", "sqlite://", None),
    ("DATABASE_URL", "sqlite+pysqlite:///app.db", "sqlite:///app.db"),
    (
        "DATABASE_URL",
        "postgresql://u:p%2Fw%40rd%3F@[::1]:5432/app",
        "postgresql+psycopg://u:p%2Fw%40rd%3F@[::1]:5432/app",
    ),
    ("DATABASE_URL", "postgresql://u:pass:word@db/app", "postgresql+psycopg://u:pass:word@db/app"),
    ("REDIS_URL", "redis://127.0.0.1:6379/7", None),
    ("REDIS_URL", "redis://127.0.0.1", None),
    ("REDIS_URL", "REDIS://cache:6380/", "redis://cache:6380/"),
    ("REDIS_URL", "rediss://user:p%2Fss@cache.internal:6380/0", None),
    ("REDIS_URL", "unix:///run/redis.sock?db=2", None),
    ("REDIS_URL", "redis+cluster://node-1:7000", None),
    ("REDIS_URL", "rediss+cluster://:p%40ss@node-1:7000/0", None),
    ("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000/v1"),
    ("OPENAI_BASE_URL", "https://llm.example/v1", None),
]

BAD = [
    # (variable, value, words the one-line error must contain)
    (
        "DATABASE_URL",
        "oracle://u@db/app",
        "scheme portside does not support; accepted: sqlite:///PATH",
    ),
    ("DATABASE_URL", "postgresql+psycopg2://u@db/app", "runs on the psycopg driver"),
    ("DATABASE_URL", "mysql+mysqldb://u@db/app", "runs on the pymysql driver"),
    ("DATABASE_URL", "sqlite+aiosqlite:///x.db", "sqlite3 driver"),
    ("DATABASE_URL", "postgresql://u@db:port/app", "port must be a number"),
    ("DATABASE_URL", "postgresql://u@db:70000/app", "port must be a number"),
    ("DATABASE_URL", "postgresql://u@db:0/app", "port must be a number"),
    ("DATABASE_URL", f"postgresql://u:{SECRET}/x@db/app", "not encoded"),
    ("DATABASE_URL", f"postgresql://u:{SECRET}@x@db/app", "not encoded"),
    ("DATABASE_URL", f"postgresql://u:{SECRET}?x@db/app", "not encoded"),
    ("DATABASE_URL", "postgresql:///app", "must name a host"),
    ("DATABASE_URL", "app.db", "must be a URL"),
    ("REDIS_URL", "http://127.0.0.1", "scheme portside does not support; accepted: redis://"),
    ("REDIS_URL", f"redis://:{SECRET}/x@127.0.0.1:6379/0", "not encoded"),
    ("REDIS_URL", "redis://127.0.0.1:six/0", "port must be a number"),
    ("REDIS_URL", "redis://127.0.0.1:6379/seven", "database number"),
    ("REDIS_URL", "redis:///0", "must name a host"),
    ("REDIS_URL", "redis+cluster://node-1:7000/3", "database 0 only"),
    ("REDIS_URL", "redis+sharded://node-1:7000", "scheme portside does not support"),
    ("REDIS_URL", "unix://?db=1", "socket's path"),
    ("OPENAI_BASE_URL", "localhost:8000", "must be a URL"),
    ("OPENAI_BASE_URL", "http://:8000/v1", "must name a host"),
    ("OPENAI_BASE_URL", "http://127.0.0.1:80a/v1", "port must be a number"),
]


@pytest.mark.parametrize(("variable", "given", "expected"), GOOD)
def test_good_urls_are_accepted_and_normalised(
    variable: str, given: str, expected: str | None
) -> None:
    """A valid URL loads, spelled for the driver portside installs."""
    settings = load_settings({variable: given, "OPENAI_API_KEY": "k"})
    assert getattr(settings.connections, variable.lower()) == (expected or given)


@pytest.mark.parametrize(("variable", "given", "words"), BAD)
def test_bad_urls_are_one_line_naming_the_variable_and_what_it_accepts(
    variable: str, given: str, words: str
) -> None:
    """A bad URL is a SettingsError: one line, the variable, the problem, what is accepted."""
    with pytest.raises(SettingsError) as info:
        load_settings({variable: given, "OPENAI_API_KEY": "k"})
    message = str(info.value)
    assert message.startswith(f"{variable}: ")
    assert words in message
    assert "accepted: " in message
    assert "\n" not in message
    assert SECRET not in message
    assert given not in message


def test_the_database_default_is_one_sqlite_file() -> None:
    """With DATABASE_URL unset the database is portside.db in the current folder."""
    from portside.adapters.sqlalchemy import DEFAULT_URL

    assert load_settings({}).database_url == DEFAULT_URL == "sqlite:///portside.db"
    custom = load_settings({"PORTSIDE_SQLITE_PATH": "/tmp/x.db"})
    assert custom.database_url == "sqlite:////tmp/x.db"


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        ({"PORTSIDE_LLM_BACKEND": "openai"}, "PORTSIDE_LLM_BACKEND: is not valid; accepted: auto"),
        ({"PORTSIDE_QUEUE_LEASE": "inf"}, "PORTSIDE_QUEUE_LEASE: is not valid; accepted: seconds"),
        ({"PORTSIDE_QUEUE_LEASE": "soon"}, "PORTSIDE_QUEUE_LEASE: is not valid; accepted: seconds"),
        ({"PORTSIDE_QUEUE_LEASE": "-1"}, "PORTSIDE_QUEUE_LEASE: is not valid"),
        ({"PORTSIDE_QUEUE_MAX_DELIVERIES": "0"}, "accepted: an integer from 1 to 1000"),
        ({"PORTSIDE_NAMESPACE": "a|b"}, "PORTSIDE_NAMESPACE: is not valid; accepted: 1-128"),
        ({"PORTSIDE_HEALTH_INTERVAL": "nan"}, "PORTSIDE_HEALTH_INTERVAL: is not valid"),
        ({"PORTSIDE_CACHE_BACKEND": "real"}, "PORTSIDE_CACHE_BACKEND: is real but REDIS_URL"),
        ({"PORTSIDE_LLM_BACKEND": "real"}, "OPENAI_API_KEY: is not set"),
        ({"OPENAI_BASE_URL": "https://llm.example/v1"}, "OPENAI_API_KEY: is not set"),
    ],
)
def test_bad_tuning_names_the_variable_and_the_accepted_values(
    environ: dict[str, str], words: str
) -> None:
    """Each invalid PORTSIDE_* value or combination is one line naming what is accepted."""
    with pytest.raises(SettingsError) as info:
        load_settings(environ)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_a_local_llm_needs_no_key() -> None:
    """A loopback OPENAI_BASE_URL loads without OPENAI_API_KEY; a placeholder key is used."""
    settings = load_settings({"OPENAI_BASE_URL": "http://localhost:11434/v1"})
    assert settings.real_llm
    assert settings.local_llm
    assert settings.openai_api_key()
