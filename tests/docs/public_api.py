"""The public surface of portside, read from the installed package: modules and their names.

A module is public when no part of its dotted path starts with ``_``; its public names
are its ``__all__``. ``python -m tests.docs.public_api`` prints the API index that
``docs/reference/api.md`` holds, and ``tests/docs/test_public_api.py`` keeps that page,
the facades and the docs honest.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType

import attrs

import portside


@attrs.frozen
class PublicName:
    """One name of a public module's ``__all__`` and the object it stands for."""

    module: str
    name: str
    value: object = attrs.field(eq=False, repr=False)

    @property
    def path(self) -> str:
        """``module.name``."""
        return f"{self.module}.{self.name}"

    @property
    def summary(self) -> str:
        """The first line of the docstring, or of the ``#:`` comment above the assignment.

        Empty when the name has neither (the docs test refuses that).
        """
        value = self.value
        if inspect.ismodule(value) or inspect.isclass(value) or inspect.isroutine(value):
            doc = (inspect.getdoc(value) or "").strip()
            if doc:
                return doc.splitlines()[0]
        return _assignment_comments().get(self.name, "")


@functools.cache
def _assignment_comments() -> dict[str, str]:
    """``NAME -> first line of its #: comment`` for top-level assignments in the package."""
    found: dict[str, str] = {}
    root = Path(portside.__file__).parent
    for path in sorted(root.rglob("*.py")):
        if "tests" in path.relative_to(root).parts[:1]:
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.parse("\n".join(lines)).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
            elif isinstance(node, ast.AnnAssign):
                target = node.target
            else:
                continue
            if not isinstance(target, ast.Name):
                continue
            above = node.lineno - 2
            comment: list[str] = []
            while above >= 0 and lines[above].lstrip().startswith("#:"):
                comment.insert(0, lines[above].lstrip()[2:].strip())
                above -= 1
            if comment:
                found.setdefault(target.id, comment[0])
    return found


def public_modules() -> list[str]:
    """Every public module of the installed package, sorted."""
    names = ["portside"]
    for info in pkgutil.walk_packages(portside.__path__, "portside."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def load(name: str) -> ModuleType:
    """Import the public module ``name``."""
    return importlib.import_module(name)


def public_names() -> list[PublicName]:
    """Every name of every public module's ``__all__``, module by module."""
    found: list[PublicName] = []
    for module_name in public_modules():
        module = load(module_name)
        for name in getattr(module, "__all__", ()):
            found.append(PublicName(module_name, name, getattr(module, name)))
    return found


def index_markdown() -> str:
    """The text of ``docs/reference/api.md``."""
    lines = [
        "# API index",
        "",
        "Every public module of portside and every name it exports (its `__all__`), with",
        "the first line of the name's docstring. Each name has this one import path; the",
        "other reference pages explain how the pieces work together. This page is generated",
        "(`python -m tests.docs.public_api > docs/reference/api.md`) and a test keeps it",
        "current.",
        "",
    ]
    by_module: dict[str, list[PublicName]] = {}
    for item in public_names():
        by_module.setdefault(item.module, []).append(item)
    for module_name in public_modules():
        module = load(module_name)
        doc = (inspect.getdoc(module) or "").strip().splitlines()
        lines += [f"## `{module_name}`", ""]
        if doc:
            lines += [doc[0], ""]
        items = by_module.get(module_name, [])
        if not items:
            continue
        lines += ["| name | what it is |", "|---|---|"]
        for item in items:
            summary = item.summary.replace("|", "\\|")
            lines.append(f"| `{item.name}` | {summary} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(index_markdown(), end="")
