"""The public surface: one import root, one path per name, documented, and no private imports."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.docs import public_api
from tests.docs.test_docs import ROOT, blocks

API_PAGE = ROOT / "docs" / "reference" / "api.md"
REGENERATE = "python -m tests.docs.public_api > docs/reference/api.md"


def _private_imports(source: str) -> list[str]:
    """Every import in ``source`` that names a private portside module or name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
            names: list[str] = []
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
            names = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            if not module.startswith("portside"):
                continue
            parts = module.split(".") + names
            if any(part.startswith("_") and part != "__version__" for part in parts):
                found.append(f"{module} import {', '.join(names)}" if names else module)
    return found


def test_api_index_is_current() -> None:
    """docs/reference/api.md lists exactly the public modules and names of the package."""
    expected = public_api.index_markdown()
    actual = API_PAGE.read_text(encoding="utf-8") if API_PAGE.exists() else ""
    assert actual == expected, f"the API index is out of date; run: {REGENERATE}"


def test_every_public_name_is_documented() -> None:
    """Each public class and function has a docstring, and each name appears in docs/reference."""
    reference = "\n".join(
        path.read_text(encoding="utf-8") for path in (ROOT / "docs" / "reference").glob("*.md")
    )
    undocumented = [item.path for item in public_api.public_names() if not item.summary]
    missing = [item.path for item in public_api.public_names() if f"`{item.name}`" not in reference]
    assert undocumented == []
    assert missing == []


def test_each_public_object_has_one_import_path() -> None:
    """No object is exported by two public modules, so every name has one documented path."""
    paths: dict[int, list[str]] = {}
    for item in public_api.public_names():
        if isinstance(item.value, int | float | str | bytes | tuple | frozenset):
            continue  # equal constants may be distinct names with the same value
        paths.setdefault(id(item.value), []).append(item.path)
    assert [found for found in paths.values() if len(found) > 1] == []


def test_docs_and_examples_import_no_private_module() -> None:
    """No Python block of README/docs and no examples/ or benchmarks/ file imports a `_`-module."""
    offenders = []
    markdown = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for path in markdown:
        for block in blocks(path):
            if block.language == "python":
                offenders += [f"{block.where}: {imp}" for imp in _private_imports(block.source)]
    for folder in ("examples", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            offenders += [f"{path.relative_to(ROOT)}: {imp}" for imp in _private_imports(source)]
    assert offenders == []


def test_pyproject_lists_every_package_folder() -> None:
    """The explicit package list in pyproject.toml is exactly the folders that hold a package."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    folders = {"portside"} | {
        "portside." + ".".join(init.parent.relative_to(ROOT).parts)
        for layer in ("domain", "ports", "adapters")
        for init in (ROOT / layer).rglob("__init__.py")
    }
    assert listed == folders


@pytest.fixture(name="wheel", scope="module")
def _wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (found,) = out.glob("portside-*.whl")
    return found


@pytest.mark.slow
def test_the_wheel_has_one_import_root(wheel: Path) -> None:
    """The built wheel holds the package portside and its metadata, no generic top-level name."""
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
        names = set(archive.namelist())
    assert {top for top in tops if not top.endswith(".dist-info")} == {"portside"}
    assert {"portside/__init__.py", "portside/py.typed", "portside/domain/__init__.py"} <= names
    assert not any(name.startswith("portside/tests/") for name in names)


@pytest.mark.slow
def test_a_fresh_virtual_environment_imports_portside(wheel: Path, tmp_path: Path) -> None:
    """In a new virtual environment `import portside` works and no generic package is added."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=120,
    )
    version = subprocess.run(
        [str(python), "-c", "import portside; print(portside.__version__)"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    assert version == public_api.load("portside").__version__
    (site,) = venv.glob("lib/python*/site-packages")
    assert not {"domain", "ports", "adapters"} & {entry.name for entry in site.iterdir()}


def test_an_application_with_its_own_domain_and_adapters_packages(
    tmp_path: Path, redis_url: str
) -> None:
    """An app whose own `domain` and `adapters` come first on sys.path still uses portside."""
    for package, marker in (("domain", "APP_DOMAIN"), ("adapters", "APP_ADAPTERS")):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(f"{marker} = True\n")
    (tmp_path / "domain" / "errors.py").write_text("class OrderRejected(Exception):\n    pass\n")
    script = textwrap.dedent(
        f"""
        import uuid

        import adapters
        import domain
        from domain.errors import OrderRejected

        from portside.adapters.memory import FakeLLM, MemoryCache, MemoryQueue
        from portside.adapters.redis import RedisCache
        from portside.domain import ChatMessage, ChatRequest

        assert domain.APP_DOMAIN and adapters.APP_ADAPTERS and OrderRejected
        memory = MemoryCache()
        assert memory.set("k", b"v").unwrap() is None and memory.get("k").unwrap() == b"v"
        assert MemoryQueue().publish("jobs", b"x").unwrap()
        answer = FakeLLM().complete(ChatRequest((ChatMessage.user("hi"),))).unwrap()
        assert answer.text == "hi"
        cache = RedisCache.from_url({redis_url!r}, namespace="app-" + uuid.uuid4().hex)
        try:
            assert cache.set("k", b"v").unwrap() is None and cache.get("k").unwrap() == b"v"
        finally:
            cache.clear()
            cache.close()
        print("ok")
        """
    )
    (tmp_path / "main.py").write_text(script)
    result = subprocess.run(
        [sys.executable, "-E", str(tmp_path / "main.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
