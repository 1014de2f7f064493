"""Repository queries are parameterised, and TLS URLs reach the clients as given."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from returns.result import Failure, Success
from sqlalchemy import Column, Integer, MetaData, String, Table, func, inspect, select

from portside.adapters.app import load_settings
from portside.adapters.entities import Entities
from portside.adapters.memory import MemoryDatabase
from portside.adapters.sqlalchemy import Database, make_engine

INJECTIONS = [
    "x' OR '1'='1",
    "x' OR 1=1 --",
    "'; DROP TABLE {table}; --",
    "x'); DELETE FROM {table}; --",
    "\\'; DROP TABLE {table}; --",
    'x" OR ""="',
    "%",
    "_",
    "*",
    "x' UNION SELECT name FROM {table} --",
]


@attrs.define(slots=False)  # SQLAlchemy instruments mapped instances
class User:
    id: str
    name: str
    age: int = 0


@pytest.fixture(
    name="users",
    params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.services)],
)
def _users(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[Any, Table, Any]]:
    metadata = MetaData()
    table = Table(
        f"ps_sec_users_{uuid.uuid4().hex[:10]}",
        metadata,
        Column("id", String(40), primary_key=True),
        Column("name", String(200), nullable=False),
        Column("age", Integer, nullable=False),
    )
    entities = Entities(metadata=metadata)
    entities.map(User, table)
    engine = None
    database: Any
    if request.param == "memory":
        database = MemoryDatabase(entities)
    else:
        url = (
            f"sqlite:///{tmp_path}/sec.db"
            if request.param == "sqlite"
            else request.getfixturevalue("postgres_url")
        )
        database = Database.from_url(entities, url)
        engine = database.engine
        database.create_all()
    uow = database.unit_of_work()
    with uow:
        for n, name in enumerate(["alice", "bob", "carol"]):
            uow.repository(User).add(User(f"u{n}", name, 30 + n))
        assert uow.commit() == Success(None)
    try:
        yield database, table, engine
    finally:
        if engine is not None:
            metadata.drop_all(engine)
        close = getattr(database, "close", None)
        if close is not None:
            close()
        entities.dispose()


def _count(database: Any) -> int:
    uow = database.unit_of_work()
    with uow:
        return len(uow.repository(User).list().unwrap())


@pytest.mark.parametrize("attempt", INJECTIONS)
def test_an_injection_in_a_filter_value_finds_nothing_and_drops_nothing(
    users: tuple[Any, Table, Any], attempt: str
) -> None:
    """A where= value shaped like SQL is compared as data: no row matches, every row remains."""
    database, table, engine = users
    value = attempt.format(table=table.name)
    uow = database.unit_of_work()
    with uow:
        assert uow.repository(User).list(where={"name": value}) == Success([])
        assert uow.repository(User).list(where={"id": value, "name": "alice"}) == Success([])
    assert _count(database) == 3
    if engine is not None:
        assert inspect(engine).has_table(table.name)
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(table)) == 3


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    value=st.text(max_size=60).filter(lambda v: v not in ("alice", "bob", "carol")),
    field=st.sampled_from(["name", "id"]),
)
def test_any_text_as_a_filter_value_matches_only_itself(
    users: tuple[Any, Table, Any], value: str, field: str
) -> None:
    """Arbitrary text in a filter finds no row (none has it) and changes nothing."""
    database, _, _ = users
    uow = database.unit_of_work()
    with uow:
        found = uow.repository(User).list(where={field: value.replace("\x00", "")})
        # PostgreSQL refuses NUL in text; the value is stripped so every backend can compare.
        assert found == Success([]), found
    assert _count(database) == 3


@pytest.mark.parametrize(
    "field", ["name; DROP TABLE x", "name OR 1=1", "__class__", "metadata", "", "age)--"]
)
def test_a_hostile_filter_field_is_invalid_and_runs_nothing(
    users: tuple[Any, Table, Any], field: str
) -> None:
    """A where= field that is not a column is Failure(InvalidRequest); every row remains."""
    database, _, _ = users
    uow = database.unit_of_work()
    with uow:
        result = uow.repository(User).list(where={field: 1})
    assert isinstance(result, Failure), result
    assert result.failure().kind == "InvalidRequest"
    assert _count(database) == 3


# --- TLS: the URL's options reach the client, no connection needed ----------------------


def test_rediss_url_builds_a_tls_connection_with_the_given_verification() -> None:
    """A rediss:// URL makes redis-py use SSLConnection with the URL's certificate options."""
    redis_client = pytest.importorskip("portside.adapters.redis._client")
    import redis

    url = "rediss://:pw@cache.internal:6380/0?ssl_cert_reqs=required&ssl_ca_certs=/etc/ca.pem"
    client = redis_client.connect(url)
    try:
        pool = client.connection_pool
        assert issubclass(pool.connection_class, redis.SSLConnection)
        assert pool.connection_kwargs["ssl_cert_reqs"] == "required"
        assert pool.connection_kwargs["ssl_ca_certs"] == "/etc/ca.pem"
        assert pool.connection_kwargs["host"] == "cache.internal"
    finally:
        client.close()


def test_redis_adapters_keep_tls_from_their_url() -> None:
    """RedisCache.from_url and RedisQueue.from_url build TLS clients for rediss:// URLs."""
    cache_module = pytest.importorskip("portside.adapters.redis._cache")
    queue_module = pytest.importorskip("portside.adapters.redis._queue")
    import redis

    url = "rediss://app:pw@cache.internal:6380/1?ssl_cert_reqs=none"
    cache = cache_module.RedisCache.from_url(url, namespace="tls")
    queue = queue_module.RedisQueue.from_url(url)
    try:
        for client in (cache.client, queue.client):
            assert issubclass(client.connection_pool.connection_class, redis.SSLConnection)
            assert client.connection_pool.connection_kwargs["ssl_cert_reqs"] == "none"
        assert "pw" not in repr(cache)
    finally:
        cache.close()
        queue.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+psycopg://app@db.internal/app?sslmode=require",
            {"sslmode": "require"},
        ),
        (
            "postgresql+psycopg://app@db.internal/app?sslmode=verify-full&sslrootcert=/etc/ca.pem",
            {"sslmode": "verify-full", "sslrootcert": "/etc/ca.pem"},
        ),
    ],
)
def test_sslmode_reaches_the_postgres_driver(url: str, expected: dict[str, str]) -> None:
    """make_engine passes sslmode and certificate options to psycopg untouched."""
    engine = make_engine(url)
    try:
        _, kwargs = engine.dialect.create_connect_args(engine.url)
        for name, value in expected.items():
            assert kwargs[name] == value
    finally:
        engine.dispose()


def test_settings_accept_tls_urls() -> None:
    """REDIS_URL=rediss://... and DATABASE_URL with sslmode= are valid settings, kept as given."""
    env = {
        "REDIS_URL": "rediss://app:pw@cache.internal:6380/0?ssl_cert_reqs=required",
        "DATABASE_URL": "postgresql+psycopg://app:pw@db.internal/app?sslmode=verify-full",
        "OPENAI_BASE_URL": "https://llm.internal/v1",
        "OPENAI_API_KEY": "sk-tls-test",
    }
    loaded = load_settings(env)
    assert loaded.connections.redis_url == env["REDIS_URL"]
    assert loaded.database_url == env["DATABASE_URL"]
