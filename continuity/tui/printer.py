"""Where the app sends a summary or a day list: CUPS through printing.py, else a saved file it names."""

from __future__ import annotations

from pathlib import Path

from continuity import printing


def default_directory() -> Path:
    """Where a document goes when no printer answers: a folder the user can find."""
    return Path.home() / "Continuity-impressions"


def save_path(directory: Path | None, file_name: str) -> Path:
    """The file a document is saved to when it cannot be printed (the folder is created, private)."""
    folder = directory or default_directory()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder / file_name


def send(data: bytes, name: str, *, suffix: str = ".pdf", directory: Path | None = None,
         title: str = "Document") -> str:
    """Print `data`; returns a short French description of where it went.

    Raises PrintFailed when it could not be printed: `saved_to` then says where it was saved.
    """
    job = printing.print_pdf(data, save_to=save_path(directory, f"{name}{suffix}"), title=title)
    return job.message_fr
