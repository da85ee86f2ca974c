"""Where log lines go and how they look: one English line per event, priorities for journald.

Three destinations, told apart once at start-up:

- **journal**: stderr is the stream systemd connected to journald (``JOURNAL_STREAM`` names its
  device and inode). Lines carry a ``<N>`` syslog priority prefix, so ``journalctl -p err`` finds the
  errors, and no timestamp (journald records its own). INFO is shown: a unit's log is its history.
- **terminal**: a person is reading. Errors reach them as one French sentence printed by the CLI;
  the English log line for the same error is left out unless ``--verbose`` asks for details.
- **other** (cron mail, a pipe, a test): the English line with its timestamp, and the French one.

Every record is one line: a multi-line message or a traceback is folded with `` | `` so a journal
entry, a cron mail line or a grep result is always one whole event.
"""

from __future__ import annotations

import enum
import logging
import os
import sys
from typing import Final, TextIO

PRIORITIES: Final = {  # syslog priorities (sd-daemon.h): what journald reads from a "<N>" prefix
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class Destination(enum.Enum):
    JOURNAL = "journal"
    TERMINAL = "terminal"
    OTHER = "other"


def destination(stream: TextIO | None = None) -> Destination:
    """Where `stream` (stderr by default) leads: journald, a person's terminal, or anything else."""
    stream = sys.stderr if stream is None else stream
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError):  # a test's in-memory stream
        return Destination.OTHER
    journal = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = journal.partition(":")
    if device.isdigit() and inode.isdigit():
        try:
            info = os.fstat(descriptor)
        except OSError:
            info = None
        if info is not None and (info.st_dev, info.st_ino) == (int(device), int(inode)):
            return Destination.JOURNAL
    return Destination.TERMINAL if stream.isatty() else Destination.OTHER


class OneLineFormatter(logging.Formatter):
    """One line per record; with a journald priority prefix and no timestamp for the journal."""

    def __init__(self, journal: bool) -> None:
        super().__init__("%(name)s: %(message)s" if journal else "%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = " | ".join(line for line in super().format(record).replace("\r", "").split("\n") if line.strip())
        if self.journal:
            return f"<{PRIORITIES.get(record.levelno, 6 if record.levelno < logging.WARNING else 3)}>{text}"
        return text


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (click's test runner swaps it per invocation)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


_current = Destination.OTHER
_verbose = False


def configure(*, verbose: bool = False) -> Destination:
    """Install the one handler on the root logger (replacing an earlier one); returns the destination."""
    global _current, _verbose
    _current, _verbose = destination(), verbose
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(OneLineFormatter(journal=_current is Destination.JOURNAL))
    root.addHandler(handler)
    if _current is Destination.JOURNAL:
        root.setLevel(logging.DEBUG if verbose else logging.INFO)
    else:
        root.setLevel(logging.INFO if verbose else logging.WARNING)
    return _current


def current() -> Destination:
    return _current


def wants_english_error() -> bool:
    """Whether an error's English log line is written: always, except on a person's terminal without -v."""
    return _current is not Destination.TERMINAL or _verbose


def wants_french_error() -> bool:
    """Whether the French sentence is printed: for people (terminal, cron mail), not into the journal."""
    return _current is not Destination.JOURNAL
