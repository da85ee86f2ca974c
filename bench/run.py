"""Run every benchmark in turn (`make bench`): foundation, transport, TUI, ordonnance PDF, desks.

Each prints its own table; the transport and TUI ones can also rewrite their section of
docs/performance.md (see their --write-doc option). Run on an otherwise idle machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# The drug reference benchmark reads a full BDPM folder (CONTINUITY_BDPM; by default the development
# copy in shared/ beside the checkout).
BDPM = os.environ.get("CONTINUITY_BDPM", str(Path(__file__).resolve().parents[2] / "shared" / "data" / "bdpm"))

BENCHES = [
    ["bench.foundation", "--sizes", "2000,20000,100000"],
    ["bench.transport", "--sizes", "10000,100000"],
    ["bench.tui", "--patients", "100000"],
    ["bench.pdf"],
    ["bench.desks", "--patients", "100000"],
    ["bench.drugs", "--bdpm", BDPM, "--patients", "100000"],
]


def main() -> None:
    failed = []
    for module, *arguments in BENCHES:
        print(f"\n=== {module} {' '.join(arguments)}", flush=True)
        if subprocess.run([sys.executable, "-m", module, *arguments], check=False).returncode != 0:
            failed.append(module)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
