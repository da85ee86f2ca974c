"""The import-linter contract of `make lint` covers every domain module, including ones added later."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import continuity

FACES = {"continuity.cli", "continuity.tui"}


def test_every_domain_module_is_in_the_ui_contract() -> None:
    config = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    contract = config["tool"]["importlinter"]["contracts"][0]
    assert {"textual", "rich", "click"} <= set(contract["forbidden_modules"])
    modules = {f"continuity.{info.name}" for info in pkgutil.iter_modules(continuity.__path__)}
    missing = sorted(modules - FACES - set(contract["source_modules"]))
    assert not missing, f"add {missing} to the first [[tool.importlinter.contracts]] in pyproject.toml"
