"""Where the app sends a document to print: the printing module when installed, else a saved file."""

from __future__ import annotations

import tempfile
from pathlib import Path


def send(data: bytes, name: str, *, suffix: str = ".pdf", directory: Path | None = None) -> str:
    """Print `data`; returns a short French description of where it went.

    Until the printing module is available the document is saved in `directory` (or a private
    temporary folder) so it can be printed by hand.
    """
    target_dir = directory or Path(tempfile.mkdtemp(prefix="continuity-print-"))
    target_dir.mkdir(parents=True, exist_ok=True)
    path = target_dir / f"{name}{suffix}"
    path.write_bytes(data)
    path.chmod(0o600)
    return f"enregistré dans {path}"
