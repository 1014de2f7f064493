"""The `portside` console script, run as a real subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

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
    demo = run(["demo"], tmp_path, **env)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "redis streams" in demo.stdout
    assert "postgresql" in demo.stdout
    check = run(["check"], tmp_path, **env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(" ok ") >= 3


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
