"""One-line failures when an adapter's optional dependency is not installed."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "require"]


class MissingExtraError(ImportError):
    """An adapter was imported without the extra that provides its SDK."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or fail with one line naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{module!r} is not installed: pip install 'portside[{extra}]'"
        ) from exc
