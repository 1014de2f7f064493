"""Importing an adapter without its extra fails with one line naming the extra."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("blocked", "module", "extra"),
    [
        ("openai", "portside.adapters.openai", "openai"),
        ("redis", "portside.adapters.redis", "redis"),
        ("flask", "portside.adapters.app.flask", "flask"),
        ("fastapi", "portside.adapters.app.fastapi", "fastapi"),
        ("hypothesis", "portside.adapters.testing", "testing"),
    ],
)
def test_missing_sdk_names_the_extra(blocked: str, module: str, extra: str) -> None:
    """With the SDK absent, the import error is one line: pip install 'portside[extra]'."""
    code = (
        "import sys\n"
        f"sys.modules[{blocked!r}] = None\n"
        "try:\n"
        f"    import {module}\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    lines = result.stdout.strip().splitlines()
    assert lines == [
        f"MissingExtraError '{blocked}' is not installed: pip install 'portside[{extra}]'"
    ]
