"""The import contracts CI runs: they hold on portside and they do catch a cycle."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _cycle_contract() -> dict[str, object]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    (contract,) = [c for c in contracts if c["type"] == "acyclic_siblings"]
    return dict(contract)


def test_ci_forbids_cycles_across_the_whole_package() -> None:
    """Pyproject's import-linter settings forbid cycles between siblings under portside."""
    contract = _cycle_contract()
    assert contract["ancestors"] == ["portside"]
    assert "ignore_imports" not in contract


@pytest.mark.skipif(shutil.which(str(LINT_IMPORTS)) is None, reason="import-linter not installed")
def test_the_cycle_contract_fails_on_a_package_with_a_cycle(tmp_path: Path) -> None:
    """The same contract, run on a package whose two modules import each other, fails."""
    package = tmp_path / "cyclic"
    (package / "inner").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "inner" / "__init__.py").write_text("")
    (package / "inner" / "a.py").write_text("from cyclic.inner import b\n")
    (package / "inner" / "b.py").write_text("def f() -> None:\n    from cyclic.inner import a\n")
    contract = {**_cycle_contract(), "ancestors": ["cyclic"]}
    lines = [f"{key} = {value!r}".replace("'", '"') for key, value in contract.items()]
    (tmp_path / "pyproject.toml").write_text(
        '[tool.importlinter]\nroot_packages = ["cyclic"]\n\n'
        "[[tool.importlinter.contracts]]\n" + "\n".join(lines) + "\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout
    assert "cyclic.inner" in result.stdout
