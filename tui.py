"""Launch the Continuity app: `python tui.py [--home DIR] [--db FILE]` or `textual run --dev tui.py`.

Environment (for `textual run`, which passes no options): CONTINUITY_HOME, CONTINUITY_DB,
CONTINUITY_TODAY, CONTINUITY_IDLE_MINUTES.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from continuity.tui.app import DEFAULT_IDLE_MINUTES, make_app


def _path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


app = make_app(
    home=_path("CONTINUITY_HOME"),
    db=_path("CONTINUITY_DB"),
    today=os.environ.get("CONTINUITY_TODAY") or None,
    idle_minutes=float(os.environ.get("CONTINUITY_IDLE_MINUTES", DEFAULT_IDLE_MINUTES)),
)

if __name__ == "__main__":
    if len(sys.argv) > 1:
        from continuity.cli import cli

        sys.exit(cli(["tui", *sys.argv[1:]], prog_name="tui.py"))
    app.run()
