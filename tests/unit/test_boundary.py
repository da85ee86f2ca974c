"""The domain never imports the UI: every module outside continuity/tui and cli.py loads without textual or rich."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import continuity

UI_MODULES = {"continuity.cli", "continuity.tui"}


def domain_modules() -> list[str]:
    package_dir = Path(continuity.__file__).parent
    names = []
    for info in pkgutil.iter_modules([str(package_dir)], prefix="continuity."):
        if info.name in UI_MODULES or info.name.startswith("continuity.tui."):
            continue
        names.append(info.name)
    return sorted(names)


def test_the_domain_list_is_not_empty() -> None:
    modules = domain_modules()
    assert {"continuity.session", "continuity.snapshotdb", "continuity.display", "continuity.journal"} <= set(modules)


def test_domain_modules_import_neither_textual_nor_rich() -> None:
    script = (
        "import importlib, json, sys\n"
        f"for name in {domain_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {'textual', 'rich'})))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            cwd=Path(continuity.__file__).parent.parent)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
