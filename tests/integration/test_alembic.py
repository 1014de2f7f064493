"""The Alembic how-to's env.py, run for real: autogenerate, upgrade and downgrade.

The env.py block of docs/howto/alembic.md is written out as the migration environment,
over a small application module whose ``Entities`` map one table. Autogenerate must see
exactly that table and the outbox table ``portside_outbox`` of the same metadata (never
another table of the shared database), ``upgrade head`` must create both so a unit of
work can use them and a relay can move its messages (ids never reused after the table
emptied), and ``downgrade base`` must remove them.
"""

from __future__ import annotations

import re
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from returns.result import Success
from sqlalchemy import inspect

from portside.adapters.memory import MemoryQueue
from portside.adapters.outbox import OutboxRelay, RelayReport
from portside.adapters.sqlalchemy import Database, make_engine

alembic = pytest.importorskip("alembic")
from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TABLE = f"ps_alembic_{uuid.uuid4().hex[:10]}"
#: The outbox table every `Entities` metadata holds (see docs/reference/outbox.md).
OUTBOX_TABLE = "portside_outbox"

APP = f'''
"""A tiny application: one entity mapped imperatively."""

import attrs
from sqlalchemy import Column, Integer, String, Table

from portside.adapters.entities import Entities


@attrs.define(slots=False, eq=False)
class Order:
    id: int
    item: str


entities = Entities()
orders = Table(
    "{TABLE}",
    entities.metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("item", String(40), nullable=False),
)
entities.map(Order, orders)
'''


def _env_py() -> str:
    """The env.py of the how-to, exactly as documented."""
    page = (ROOT / "docs" / "howto" / "alembic.md").read_text(encoding="utf-8")
    found = re.search(r"```python no-run\n(.*?)```", page, re.DOTALL)
    assert found is not None, "the how-to lost its env.py block"
    return found.group(1)


@pytest.fixture(name="app_module", scope="module")
def _app_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("app")
    (root / "myapp").mkdir()
    (root / "myapp" / "__init__.py").write_text("")
    (root / "myapp" / "storage.py").write_text(textwrap.dedent(APP))
    sys.path.insert(0, str(root))
    try:
        import myapp.storage  # type: ignore[import-not-found]

        yield myapp.storage
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("myapp.storage", None)
        sys.modules.pop("myapp", None)


@pytest.fixture(
    name="url",
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.services),
        pytest.param("mariadb", marks=pytest.mark.services),
    ],
)
def _url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.sqlite3'}"
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


def _relay_through_the_migrated_outbox(database: Database) -> None:
    """The migrated outbox works as create_all's: relayed once, ids never reused."""
    queue = MemoryQueue()
    relay = OutboxRelay(database, queue)
    assert relay.relay_once() == Success(RelayReport(published=1, held_back=0))
    with database.unit_of_work() as uow:  # the table is empty now: a new id all the same
        assert uow.publish("orders", b"order 2") == Success(None)
        assert uow.commit() == Success(None)
    assert relay.relay_once() == Success(RelayReport(published=1, held_back=0))
    deliveries = queue.receive("orders", "shipping", "s1", max_messages=10).unwrap()
    assert [d.message.body for d in deliveries] == [b"order 1", b"order 2"]
    keys = [d.message.dedupe_key for d in deliveries]
    assert len(set(keys)) == 2, keys
    assert relay.lag() == Success(0.0)


def test_the_how_tos_env_py_migrates_up_and_down(
    app_module: Any, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Autogenerate sees the entities' and the outbox table only; up creates, down drops."""
    monkeypatch.setenv("DATABASE_URL", url)
    folder = tmp_path / "migrations"
    config = Config(str(tmp_path / "alembic.ini"))
    command.init(config, str(folder))
    config = Config(str(tmp_path / "alembic.ini"))
    (folder / "env.py").write_text(_env_py())
    engine = make_engine(url)
    try:
        command.revision(config, message="orders", autogenerate=True)
        (script,) = (folder / "versions").glob("*.py")
        generated = script.read_text()
        assert f"op.create_table('{TABLE}'" in generated
        assert f"op.create_table('{OUTBOX_TABLE}'" in generated
        assert "op.drop_table(" in generated  # in downgrade() only
        assert generated.count("op.drop_table(") == 2, "autogenerate touched another table"

        command.upgrade(config, "head")
        assert {TABLE, OUTBOX_TABLE} <= set(inspect(engine).get_table_names())
        database = Database.from_url(app_module.entities, url)
        try:
            with database.unit_of_work() as uow:
                uow.repository(app_module.Order).add(app_module.Order(1, "tea"))
                assert uow.publish("orders", b"order 1") == Success(None)
                assert uow.commit() == Success(None)
            with database.unit_of_work() as uow:
                assert uow.repository(app_module.Order).get(1).unwrap().item == "tea"
            _relay_through_the_migrated_outbox(database)
        finally:
            database.close()

        command.downgrade(config, "base")
        assert not {TABLE, OUTBOX_TABLE} & set(inspect(engine).get_table_names())
    finally:
        with engine.begin() as connection:
            app_module.entities.metadata.drop_all(connection)
            connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        engine.dispose()
