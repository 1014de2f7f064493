"""Facades that import an implementation module when one of its names is first used.

It lives in the domain, the innermost layer, so that every layer's facades can use it.

Importing a facade then costs only what the names actually used need: ``from
portside.domain import ServiceError`` does not build the LLM values, ``from
portside.adapters.redis import RedisCache`` loads the cache, not the queue, and
``from portside.adapters.memory import FakeLLM`` does not load the in-memory unit of
work (and with it SQLAlchemy). A facade lists each public name once, with the module it
lives in, and imports them statically under ``TYPE_CHECKING`` for type checkers.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

__all__ = ["lazy_names"]


def lazy_names(
    package: str, names: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose ``names`` live in modules.

    ``names`` maps each public name to the module defining it. A name is imported on
    first access and kept in the package's namespace, so later lookups are plain
    attribute reads. Any other name raises ``AttributeError`` as usual.
    """

    def __getattr__(name: str) -> object:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
