"""Import snapshot files dropped into `inbox/` (USB stick, file share), with watchdog (inotify on Linux).

A file is imported when its writer closes it (IN_CLOSE_WRITE) or when it is renamed into the inbox,
never while it is still being written. Names starting with a dot or ending in .part/.tmp are the
writer's temporary files and are left alone. Symbolic links, non-regular and oversized files are
refused. A bad file is moved to `inbox/rejected/` (the last few are kept for inspection) and the
watcher keeps running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from watchdog.events import (
    DirCreatedEvent,
    DirModifiedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileMovedEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from continuity.errors import ContinuityError, SnapshotRejected, TooLarge, TransportError
from continuity.pull import Puller, PullOptions
from continuity.store import Store, utcnow

log = logging.getLogger(__name__)

PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".swp")
KEEP_REJECTED = 5
DEFAULT_SETTLE_SECONDS = 2.0  # at start or rescan, a file modified this recently may still be written
DEFAULT_RESCAN_SECONDS = 300.0  # safety net for missed events (inotify queue overflow)


@dataclass(frozen=True)
class InboxOutcome:
    name: str
    outcome: str  # "accepted" | "unchanged" | "rejected" | "ignored"
    reason: str | None = None


def is_partial_name(name: str) -> bool:
    return name.startswith(".") or name.endswith(PARTIAL_SUFFIXES)


class InboxWatcher:
    """Imports inbox files through the same verification as `pull`. Thread-safe: one import at a time."""

    def __init__(
        self,
        store: Store,
        *,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        keep_rejected: int = KEEP_REJECTED,
    ) -> None:
        self.store = store
        self.settle_seconds = settle_seconds
        self.keep_rejected = keep_rejected
        self.outcomes: list[InboxOutcome] = []
        self._lock = threading.Lock()
        self._observer: Observer | None = None  # type: ignore[valid-type]

    @property
    def inbox(self) -> Path:
        return self.store.inbox

    # -- one file

    def handle(self, path: Path) -> InboxOutcome:
        """Import or refuse one inbox entry. Never raises for a bad file."""
        with self._lock:
            outcome = self._handle(path)
        if outcome.outcome != "ignored":
            self.outcomes.append(outcome)
            level = logging.WARNING if outcome.outcome == "rejected" else logging.INFO
            reason = f" ({outcome.reason})" if outcome.reason else ""
            log.log(level, "inbox %s: %s%s", outcome.name, outcome.outcome, reason)
        return outcome

    def _handle(self, path: Path) -> InboxOutcome:
        name = path.name
        if path.parent != self.inbox or is_partial_name(name):
            return InboxOutcome(name, "ignored")
        try:
            info = path.lstat()
        except FileNotFoundError:
            return InboxOutcome(name, "ignored")  # already imported by another event
        if stat.S_ISDIR(info.st_mode):
            return InboxOutcome(name, "ignored")
        puller = Puller(self.store, PullOptions())
        try:
            if stat.S_ISLNK(info.st_mode):
                raise TransportError(f"inbox/{name}: is a symbolic link, refused")
            if not stat.S_ISREG(info.st_mode):
                raise TransportError(f"inbox/{name}: not a regular file, refused")
            if info.st_size > puller.cap:
                raise TooLarge(f"inbox/{name}: {info.st_size} bytes exceeds the {puller.cap}-byte cap")
        except SnapshotRejected as error:
            self._record_refusal(name, error)
            self._set_aside(path, keep=False)
            return InboxOutcome(name, "rejected", error.reason)
        try:
            result = puller.pull(str(path), follow_symlinks=False, label=f"inbox/{name}")
        except SnapshotRejected as error:
            self._set_aside(path, keep=True)
            return InboxOutcome(name, "rejected", error.reason)
        except ContinuityError as error:
            # The store itself failed (disk full, not initialised): leave the file for the next try.
            log.error("inbox %s: cannot import now: %s", name, error)
            return InboxOutcome(name, "ignored", type(error).__name__)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return InboxOutcome(name, result.outcome)

    def _record_refusal(self, name: str, error: SnapshotRejected) -> None:
        """Refusals decided before opening the file go through the same record as any pull."""
        from continuity.pull import journal_pull

        label = f"inbox/{name}"
        self.store.record_attempt(source=label, outcome="rejected", reason=error.reason, detail=str(error))
        journal_pull(self.store, "pull_rejected", label, None, error.reason)

    def _set_aside(self, path: Path, *, keep: bool) -> None:
        """Move a rejected file out of the inbox (kept for inspection) or delete it (links, devices)."""
        try:
            if not keep or not path.is_file() or path.is_symlink():
                path.unlink()
                return
            rejected = self.store.rejected_dir
            rejected.mkdir(mode=0o700, exist_ok=True)
            stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
            os.replace(path, rejected / f"{stamp}-{path.name}")
            for old in sorted(rejected.iterdir(), reverse=True)[self.keep_rejected :]:
                old.unlink()
        except FileNotFoundError:
            return
        except OSError as error:
            log.error("cannot move %s out of the inbox: %s", path.name, error)

    # -- the whole inbox

    def scan(self, *, settle: bool = False) -> list[InboxOutcome]:
        """Import every file in the inbox, oldest first. With `settle`, skip files still being written."""
        self.store.require_initialized()
        now = time.time()
        entries = []
        for path in self.inbox.iterdir():
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue
            if settle and stat.S_ISREG(info.st_mode) and now - info.st_mtime < self.settle_seconds:
                continue  # its close event will come
            entries.append((info.st_mtime, path))
        return [self.handle(path) for _, path in sorted(entries)]

    # -- watching

    def start(self) -> None:
        self.store.require_initialized()
        observer = Observer()
        observer.schedule(_Handler(self), str(self.inbox), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def stop(self) -> None:
        observer = self._observer
        if observer is not None:
            observer.stop()
            observer.join(5)
            self._observer = None


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: InboxWatcher) -> None:
        self.watcher = watcher

    def _dispatch(self, raw: str | bytes) -> None:
        path = Path(os.fsdecode(raw))
        try:
            self.watcher.handle(path)
        except Exception:  # noqa: BLE001 - a daemon must outlive a bug on one file; it is logged, not hidden
            log.exception("inbox watcher: unexpected error on %s", path.name)

    def on_closed(self, event: FileClosedEvent) -> None:
        # IN_CLOSE_WRITE: the writer is done with it.
        self._dispatch(event.src_path)

    def on_moved(self, event: FileMovedEvent) -> None:  # type: ignore[override]
        self._dispatch(event.dest_path)

    def on_created(self, event: FileCreatedEvent | DirCreatedEvent) -> None:
        # Regular files wait for their close event; links and special files never get one.
        path = Path(os.fsdecode(event.src_path))
        with contextlib.suppress(OSError):
            if not stat.S_ISREG(path.lstat().st_mode) and not path.is_dir():
                self._dispatch(event.src_path)

    def on_modified(self, event: object) -> None:
        if isinstance(event, DirModifiedEvent):
            return


def run_until_signalled(watcher: InboxWatcher, *, rescan_seconds: float = DEFAULT_RESCAN_SECONDS) -> None:
    """Import what is there, then watch until SIGTERM/SIGINT, rescanning now and then for missed events."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    watcher.start()
    try:
        watcher.scan(settle=True)
        while not stop.wait(rescan_seconds):
            watcher.scan(settle=True)
    finally:
        watcher.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
