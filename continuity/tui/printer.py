"""Where the app sends a summary or a day list: CUPS through printing.py, else the print folder, named."""

from __future__ import annotations

from pathlib import Path

from continuity import printing


def save_path(directory: Path | None, file_name: str) -> Path:
    """The file a document is saved to when it cannot be printed (the print folder is made private).

    `directory` is the app's print folder; None (a caller without an app) means the default one,
    `impressions/` in the appliance home — never a folder in someone's personal home.
    """
    folder = printing.private_folder(directory or printing.default_folder(None))
    return folder / file_name


def send(data: bytes, name: str, *, suffix: str = ".pdf", directory: Path | None = None,
         title: str = "Document", kind: printing.DocumentKind = printing.ORDONNANCE,
         keep_days: int | None = printing.DEFAULT_KEEP_DAYS) -> str:
    """Print `data`; returns a short French description of where it went.

    Raises PrintFailed when it could not be printed: `saved_to` then says where it was saved.
    """
    job = printing.print_pdf(data, save_to=save_path(directory, f"{name}{suffix}"), title=title, kind=kind,
                             keep_days=keep_days)
    return job.message_fr
