"""Every ```python block of README.md and docs/**/*.md runs, so the documentation cannot rot.

Blocks of one file run in order in one namespace (a later block may use what an earlier
one defined), in a fresh temporary folder with no portside variables set. A block opts
out only with an explicit marker on its fence, ```python no-run, for a snippet that
needs a real provider; every such block is listed by ``test_opted_out_blocks_say_why``.
A block marked ``needs=redis`` runs with ``REDIS_URL`` set to the suite's Redis (the
test skips, or fails under ``PORTSIDE_REQUIRE_SERVICES=1``, when it is down); one marked
``needs=openai`` runs with ``OPENAI_BASE_URL`` pointing at a local test server. Both
variables are unset again after the block.
A failure names the file and the line of the block.
"""

from __future__ import annotations

import os
import re
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import pytest

from portside.adapters.testing import DEFAULT_REDIS_URL, OpenAITestServer, require_server

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$")


@attrs.frozen
class Block:
    """One fenced code block: where it starts (1-based line of its first code line)."""

    path: Path
    line: int
    info: str
    source: str

    @property
    def language(self) -> str:
        """The first word of the info string."""
        return self.info.split()[0] if self.info.split() else ""

    @property
    def runs(self) -> bool:
        """Whether the block is Python that must run."""
        return self.language == "python" and "no-run" not in self.info.split()[1:]

    @property
    def needs(self) -> set[str]:
        """The services named by a ``needs=a,b`` word of the info string."""
        words = [w for w in self.info.split()[1:] if w.startswith("needs=")]
        return {name for word in words for name in word.removeprefix("needs=").split(",")}

    @property
    def where(self) -> str:
        """``file:line`` relative to the repository."""
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """Every fenced block of the Markdown file ``path``, in order."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        index += 1
        if opening is None:
            continue
        fence, start, body = opening["fence"], index, []
        while index < len(lines) and not lines[index].strip().startswith(fence):
            body.append(lines[index])
            index += 1
        index += 1  # the closing fence
        indent = len(opening["indent"])
        source = "\n".join(line[indent:] if line[:indent].isspace() else line for line in body)
        found.append(Block(path, start + 1, opening["info"].strip(), source + "\n"))
    return found


def documents() -> list[Path]:
    """README.md and every Markdown file under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@contextmanager
def _services_for(block: Block, redis_url: str | None) -> Iterator[None]:
    """The variables the block's ``needs=`` asks for, set while it runs."""
    from portside.adapters.app import reset_services

    added: dict[str, str] = {}
    server = None
    if "redis" in block.needs:
        added["REDIS_URL"] = redis_url or require_server("Redis", "REDIS_URL", DEFAULT_REDIS_URL)
    if "openai" in block.needs:
        server = OpenAITestServer().start()
        added["OPENAI_BASE_URL"] = server.base_url
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            del os.environ[name]
        if added:
            reset_services()  # raw clients built from those variables
        if server is not None:
            server.stop()


@pytest.mark.parametrize("path", documents(), ids=_id)
def test_python_blocks_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every runnable python block of the file runs without error, in order."""
    found = blocks(path)
    redis_url = None
    if any("redis" in b.needs for b in found if b.runs):
        redis_url = require_server("Redis", "REDIS_URL", DEFAULT_REDIS_URL)
    for name in list(os.environ):
        if name.startswith(("PORTSIDE_", "OPENAI_", "REDIS_", "DATABASE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PORTSIDE_FORBID_REAL_LLM", "1")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    for number, block in enumerate((b for b in found if b.runs), start=1):
        # Leading newlines make the traceback's line numbers those of the Markdown file.
        code = compile("\n" * (block.line - 1) + block.source, str(block.path), "exec")
        try:
            with _services_for(block, redis_url):
                exec(code, namespace)
        except Exception:
            failure = traceback.format_exc()
        else:
            continue
        pytest.fail(f"python block {number} at {block.where} failed:\n{failure}", pytrace=False)


def test_opted_out_blocks_say_why() -> None:
    """A ``no-run`` block is preceded by a sentence saying why it cannot run here."""
    for path in documents():
        text = path.read_text(encoding="utf-8").splitlines()
        for block in blocks(path):
            if block.language == "python" and not block.runs:
                before = " ".join(text[max(0, block.line - 5) : block.line - 2]).lower()
                assert any(word in before for word in ("needs", "real", "provider", "key")), (
                    f"{block.where}: say why this block cannot run in the test suite"
                )


def test_the_extractor_finds_blocks_and_their_lines(tmp_path: Path) -> None:
    """Blocks are found with their info string and the line of their first code line."""
    page = tmp_path / "page.md"
    page.write_text(
        "# t\n\n```python\nx = 1\n```\n\ntext\n\n```python no-run\ny\n```\n~~~sh\nls\n~~~\n"
    )
    found = [(b.line, b.info, b.source, b.runs) for b in blocks(page)]
    assert found == [
        (4, "python", "x = 1\n", True),
        (10, "python no-run", "y\n", False),
        (13, "sh", "ls\n", False),
    ]
