"""The `portside` console script, run as a real subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SECRET = "sk-test-9f8e7d6c5b4a39281706"


def _portside() -> list[str]:
    script = Path(sys.executable).with_name("portside")
    if script.exists():
        return [str(script)]
    found = shutil.which("portside")  # pragma: no cover - depends on the install layout
    assert found, "the portside console script is not installed"
    return [found]


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the console script in ``cwd`` with a clean environment plus ``env``."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PORTSIDE_", "OPENAI_")) and k not in ("REDIS_URL", "DATABASE_URL")
    }
    clean.update(env)
    clean["PORTSIDE_FORBID_REAL_LLM"] = "1"
    return subprocess.run(
        [*_portside(), *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _demo_table(engine: Any) -> int | None:
    """The number of rows in the demo's table, or None when it does not exist."""
    import sqlalchemy

    if not sqlalchemy.inspect(engine).has_table("portside_demo_notes"):
        return None
    with engine.connect() as connection:
        count: int = connection.execute(
            sqlalchemy.text("select count(*) from portside_demo_notes")
        ).scalar_one()
    return count


def test_demo_runs_on_embedded_defaults(tmp_path: Path) -> None:
    """`portside demo` with nothing configured runs every port and exits 0."""
    result = run(["demo"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "all steps succeeded" in result.stdout
    for step in (
        "chat completion",
        "cache hit",
        "embeddings",
        "cache round trip",
        "queue publish/receive/ack",
        "unit of work commit/rollback",
    ):
        assert step in result.stdout
    assert "embedded defaults" in result.stderr
    assert (tmp_path / "portside.db").exists()


@pytest.mark.services
def test_demo_and_check_with_redis_and_postgres(
    tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    """With REDIS_URL and DATABASE_URL set, demo and check use the real servers."""
    env = {
        "REDIS_URL": redis_url,
        "DATABASE_URL": postgres_url,
        "PORTSIDE_NAMESPACE": f"cli-{os.getpid()}",
    }
    import redis
    import sqlalchemy

    engine = sqlalchemy.create_engine(postgres_url)
    table_before = _demo_table(engine)
    demo = run(["demo"], tmp_path, **env)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "redis streams" in demo.stdout
    assert "postgresql" in demo.stdout
    # the demo cleaned up: no key of its namespace, its table as it was (or gone)
    client = redis.Redis.from_url(redis_url)
    try:
        assert list(client.scan_iter(match=env["PORTSIDE_NAMESPACE"] + "*")) == []
    finally:
        client.close()
    try:
        assert _demo_table(engine) == table_before
    finally:
        engine.dispose()
    check = run(["check"], tmp_path, **env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(" ok ") >= 3


@pytest.mark.services
@pytest.mark.slow
def test_check_reports_the_cluster_topology(tmp_path: Path, redis_cluster: Any) -> None:
    """`portside check` on a redis+cluster:// URL names 3 primaries, 3 replicas, every slot."""
    result = run(["check"], tmp_path, REDIS_URL=redis_cluster.url, PORTSIDE_NAMESPACE="cli-cq")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    topology = "cluster: 3 primaries, 3 replicas, 16384/16384 slots"
    assert " ok " in rows["cache"], result.stdout
    assert topology in rows["cache"], result.stdout
    # The throwaway cluster keeps nothing on disk: the queue works but warns so.
    assert "warning (Redis queue on 3 primaries" in rows["queue"], result.stdout
    assert topology in rows["queue"], result.stdout


@pytest.mark.services
@pytest.mark.slow
def test_check_reports_the_sentinel_topology(tmp_path: Path, redis_sentinel: Any) -> None:
    """`portside check` on a redis+sentinel:// URL names the service, its servers, sentinels."""
    result = run(["check"], tmp_path, REDIS_URL=redis_sentinel.url, PORTSIDE_NAMESPACE="cli-sn")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    topology = "sentinel portside: 1 primary, 1 replica, 3/3 sentinels answering"
    assert " ok " in rows["cache"], result.stdout
    assert topology in rows["cache"], result.stdout
    assert topology in rows["queue"], result.stdout


def test_check_exits_1_when_a_service_is_down(tmp_path: Path) -> None:
    """`portside check` against an unreachable Redis reports it down and exits 1."""
    result = run(["check"], tmp_path, REDIS_URL="redis://127.0.0.1:9/0")
    assert result.returncode == 1
    assert "Unavailable" in result.stdout


def test_config_hides_the_api_key_and_says_where_values_came_from(tmp_path: Path) -> None:
    """`portside config` shows *** for secrets and the source of each value."""
    result = run(
        ["config"],
        tmp_path,
        OPENAI_API_KEY=SECRET,
        REDIS_URL=f"redis://app:{SECRET}@127.0.0.1:6379/0",
        PORTSIDE_QUEUE_LEASE="12",
    )
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "env OPENAI_API_KEY" in result.stdout
    assert "PORTSIDE_QUEUE_LEASE" in result.stdout
    assert "12.0" in result.stdout


def test_invalid_configuration_exits_2_with_one_line(tmp_path: Path) -> None:
    """An invalid variable gives exit code 2 and one line naming it, no traceback."""
    result = run(["demo"], tmp_path, PORTSIDE_QUEUE_MAX_DELIVERIES="many")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "PORTSIDE_QUEUE_MAX_DELIVERIES" in lines[0]
    assert "Traceback" not in result.stderr


def test_demo_log_lines_never_show_the_api_key(tmp_path: Path) -> None:
    """With an API key set and a local (unreachable) server, no output shows the key."""
    result = run(
        ["-v", "check"], tmp_path, OPENAI_API_KEY=SECRET, OPENAI_BASE_URL="http://127.0.0.1:9/v1"
    )
    assert SECRET not in result.stdout + result.stderr


def test_version_and_help_everywhere(tmp_path: Path) -> None:
    """--version prints the version; --help works on the command and every subcommand."""
    from portside import __version__

    version = run(["--version"], tmp_path)
    assert version.returncode == 0
    assert version.stdout.strip() == f"portside {__version__}"
    for args in (["--help"], ["demo", "--help"], ["check", "--help"], ["config", "--help"]):
        shown = run(args, tmp_path)
        assert shown.returncode == 0, args
        assert "usage: portside" in shown.stdout
    server = subprocess.run(
        [sys.executable, "-m", "portside.adapters.testing", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert server.returncode == 0
    assert "--api-key" in server.stdout


def test_global_options_go_before_or_after_the_subcommand(tmp_path: Path) -> None:
    """`portside -v config` and `portside config -v` are both accepted."""
    for args in (["-v", "config"], ["config", "-v"], ["config", "--verbose"]):
        result = run(args, tmp_path)
        assert result.returncode == 0, (args, result.stderr)
    refused = run(["config", "--no-such-option"], tmp_path)
    assert refused.returncode == 2


def test_config_lists_each_setting_with_source_and_accepted_values(tmp_path: Path) -> None:
    """Every setting is a row: variable, value, source and the values it accepts."""
    result = run(["config"], tmp_path, PORTSIDE_LLM_BACKEND="memory")
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header == ["variable", "value", "source", "accepted"]
    backend = next(line for line in result.stdout.splitlines() if "PORTSIDE_LLM_BACKEND" in line)
    assert "env PORTSIDE_LLM_BACKEND" in backend
    assert "auto, real or memory" in backend
    for variable in ("DATABASE_URL", "REDIS_URL", "PORTSIDE_HEALTH_INTERVAL"):
        assert variable in result.stdout


def test_an_invalid_choice_lists_the_accepted_values(tmp_path: Path) -> None:
    """PORTSIDE_LLM_BACKEND=openai exits 2 with one line listing auto, real and memory."""
    result = run(["check"], tmp_path, PORTSIDE_LLM_BACKEND="openai")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "portside: invalid configuration: PORTSIDE_LLM_BACKEND: is not valid;"
        " accepted: auto, real or memory"
    ]


def test_check_against_a_server_refusing_the_key_exits_1_naming_unauthorized(
    tmp_path: Path,
) -> None:
    """`portside check` with an LLM server that answers 401 exits 1 and says Unauthorized."""
    from portside.adapters.testing import OpenAITestServer

    with OpenAITestServer(api_key="the-right-key") as server:
        result = run(["check"], tmp_path, OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=SECRET)
    assert result.returncode == 1, result.stdout + result.stderr
    llm = next(line for line in result.stdout.splitlines() if line.startswith("llm"))
    assert "down (Unauthorized" in llm
    assert SECRET not in result.stdout + result.stderr


def test_demo_with_the_database_down_is_one_line(tmp_path: Path) -> None:
    """A database that cannot be reached makes the demo exit 1 with one line, no traceback."""
    result = run(["demo"], tmp_path, DATABASE_URL="postgresql://app:pw@127.0.0.1:9/app")
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("portside demo: the database is down (Unavailable")
    assert "pw" not in lines[0]


def test_demo_drops_its_table_and_logs_no_http_requests(tmp_path: Path) -> None:
    """After the demo its table is gone; HTTP-client request logs show only with -v."""
    import sqlite3

    from portside.adapters.testing import OpenAITestServer

    with OpenAITestServer() as server:
        quiet = run(["demo"], tmp_path, OPENAI_BASE_URL=server.base_url)
        loud = run(["demo", "-v"], tmp_path, OPENAI_BASE_URL=server.base_url)
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert "HTTP Request" not in quiet.stderr
    assert "HTTP Request" in loud.stderr
    with sqlite3.connect(tmp_path / "portside.db") as connection:
        tables = connection.execute("select name from sqlite_master where type='table'").fetchall()
    assert tables == []


def test_a_forbidden_real_llm_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """With real providers forbidden, a remote LLM makes check exit 2 with one line."""
    result = run(["check"], tmp_path, OPENAI_API_KEY=SECRET)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "PORTSIDE_FORBID_REAL_LLM" in result.stderr
