"""No module of domain, ports or adapters imports pickle, marshal or shelve."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "ports", "adapters")
FORBIDDEN = frozenset(("pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle"))
DYNAMIC_IMPORTERS = frozenset(("import_module", "__import__", "require"))


def _modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def _forbidden_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) for every import of a forbidden module, static or by name."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if (
                called in DYNAMIC_IMPORTERS
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                names = [first.value]
        found += [(getattr(node, "lineno", 0), n) for n in names if n.split(".")[0] in FORBIDDEN]
    return found


def test_the_walk_sees_every_package() -> None:
    """The AST walk covers each package's modules, so an empty result means something."""
    modules = _modules()
    for package in PACKAGES:
        assert any(path.relative_to(ROOT).parts[0] == package for path in modules)
    assert len(modules) >= 15


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_imports_no_unpickler(path: Path) -> None:
    """The module neither imports nor dynamically loads pickle, marshal or shelve."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    assert _forbidden_imports(tree) == []


@pytest.mark.parametrize(
    "source",
    [
        "import pickle",
        "import marshal as m",
        "from shelve import open",
        "from pickle import loads",
        "importlib.import_module('pickle')",
        "__import__('marshal')",
        "def f():\n    import cloudpickle",
    ],
)
def test_the_detector_catches_each_way_of_importing(source: str) -> None:
    """The checker itself finds static, aliased, nested and dynamic imports."""
    assert _forbidden_imports(ast.parse(source))
