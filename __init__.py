"""portside: typed ports, honest fakes and real adapters for LLM, cache/queue and SQL.

The repository root is this package: its three layer folders are its subpackages,
``portside.domain`` (values and errors), ``portside.ports`` (the contracts and the rules
every adapter applies) and ``portside.adapters`` (everything that touches the world).
The build maps the folders with setuptools' ``package-dir`` (see docs/design.md).
"""

#: The installed version of portside.
__version__ = "0.2.0"

__all__ = ["__version__"]
