"""Import snapshot files dropped into `inbox/` (USB stick, file share), with watchdog (inotify on Linux).

A file is imported once its writer is done: it was closed after writing (IN_CLOSE_WRITE) or renamed
into the inbox, and then its size and modification time stayed the same for `settle_seconds`. Names
starting with a dot or ending in .part/.tmp are the writer's temporary files and are left alone. A
periodic rescan finds what inotify cannot see (a writer on another machine of a network share) under
the same rule. A file refused for a reason that an unfinished copy can cause (truncated, malformed,
corrupt) is tried once more `retry_seconds` later, or as soon as it changes; the second refusal is
final. Symbolic links, non-regular and oversized files are refused at once. A refused file is moved to
`inbox/rejected/` (the last few are kept for inspection) and the watcher keeps running.
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
from continuity.safe_text import printable
from continuity.store import Store, utcnow

log = logging.getLogger(__name__)

PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".swp")
KEEP_REJECTED = 5
DEFAULT_SETTLE_SECONDS = 2.0  # unchanged this long after the writer closed it: the copy is complete
DEFAULT_RETRY_SECONDS = 60.0  # a refusal an unfinished copy can cause is tried once more after this
DEFAULT_RESCAN_SECONDS = 300.0  # safety net for missed events (inotify queue overflow, network shares)
POLL_SECONDS = 0.1
# Refusals that a file still being written (or preallocated, then filled) can cause: worth one more try.
RETRY_REASONS = frozenset({"truncated", "malformed", "payload_corrupt", "untrusted_signer", "unsupported_format"})


@dataclass(frozen=True)
class InboxOutcome:
    name: str
    outcome: str  # "accepted" | "unchanged" | "quarantined" | "rejected" | "ignored"
    reason: str | None = None
    deferred: bool = False  # rejected, but left in the inbox for one more try


def is_partial_name(name: str) -> bool:
    return name.startswith(".") or name.endswith(PARTIAL_SUFFIXES)


Signature = tuple[int, int, int, int]


def _signature(path: Path) -> Signature | None:
    """What changes while a file is written: kind, size, modification time, inode (None if gone)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    return (info.st_mode, info.st_size, info.st_mtime_ns, info.st_ino)


@dataclass
class _Pending:
    """An inbox entry waiting to be imported: when it last changed, and its first refusal if any."""

    signature: Signature | None
    since: float
    retry_at: float | None = None
    refused_signature: Signature | None = None


class InboxWatcher:
    """Imports inbox files through the same verification as `pull`. Thread-safe: one import at a time."""

    def __init__(
        self,
        store: Store,
        *,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
        rescan_seconds: float = DEFAULT_RESCAN_SECONDS,
        keep_rejected: int = KEEP_REJECTED,
    ) -> None:
        self.store = store
        self.settle_seconds = settle_seconds
        self.retry_seconds = retry_seconds
        self.rescan_seconds = rescan_seconds
        self.keep_rejected = keep_rejected
        self.outcomes: list[InboxOutcome] = []
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self._observer: Observer | None = None  # type: ignore[valid-type]

    @property
    def inbox(self) -> Path:
        return self.store.inbox

    # -- one file

    def handle(self, path: Path, *, final: bool = True) -> InboxOutcome:
        """Import or refuse one inbox entry now. Never raises for a bad file.

        With `final=False`, a refusal in RETRY_REASONS leaves the file where it is (outcome deferred).
        """
        with self._lock:
            outcome = self._handle(path, final)
        if outcome.outcome != "ignored":
            self.outcomes.append(outcome)
            # A refusal is a WARNING (journald priority), an accepted or deferred file INFO.
            log.log(
                logging.WARNING if outcome.outcome == "rejected" else logging.INFO,
                "inbox %s: %s%s%s",
                printable(outcome.name, 200),
                outcome.outcome,
                f" ({outcome.reason})" if outcome.reason else "",
                f", tried again in {self.retry_seconds:g} s or when it changes" if outcome.deferred else "",
            )
        return outcome

    def _handle(self, path: Path, final: bool) -> InboxOutcome:
        name = path.name
        shown = printable(name, 120)
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
                raise TransportError(f"inbox/{shown}: is a symbolic link, refused")
            if not stat.S_ISREG(info.st_mode):
                raise TransportError(f"inbox/{shown}: not a regular file, refused")
            if info.st_size > puller.cap:
                raise TooLarge(f"inbox/{shown}: {info.st_size} bytes exceeds the {puller.cap}-byte cap")
        except SnapshotRejected as error:
            self._record_refusal(name, error)
            self._set_aside(path, keep=False)
            return InboxOutcome(name, "rejected", error.reason)
        try:
            result = puller.pull(str(path), follow_symlinks=False, label=f"inbox/{shown}")
        except SnapshotRejected as error:
            if not final and error.reason in RETRY_REASONS:
                return InboxOutcome(name, "rejected", error.reason, deferred=True)
            self._set_aside(path, keep=True)
            return InboxOutcome(name, "rejected", error.reason)
        except ContinuityError as error:
            # The store itself failed (disk full, not initialised): leave the file for the next try.
            log.error("inbox %s: cannot import now: %s", shown, error)
            return InboxOutcome(name, "ignored", type(error).__name__)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return InboxOutcome(name, result.outcome, result.outcome if result.outcome == "quarantined" else None)

    def _record_refusal(self, name: str, error: SnapshotRejected) -> None:
        """Refusals decided before opening the file go through the same record as any pull."""
        from continuity.pull import journal_pull

        label = f"inbox/{printable(name, 120)}"
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
            log.error("cannot move %s out of the inbox: %s", printable(path.name, 120), error)

    # -- the whole inbox

    def _entries(self) -> list[Path]:
        """Inbox entries, oldest first."""
        entries = []
        for path in self.inbox.iterdir():
            try:
                entries.append((path.lstat().st_mtime, path))
            except FileNotFoundError:
                continue
        return [path for _, path in sorted(entries)]

    def scan(self, *, settle: bool = False) -> list[InboxOutcome]:
        """Import every file in the inbox, oldest first; every refusal is final (nothing runs later).

        With `settle`, a file that changes within `settle_seconds` is still being written: it is left
        for the next scan (`watch --once` run again, or the watcher's close event).
        """
        self.store.require_initialized()
        entries = self._entries()
        if settle:
            before = {path: _signature(path) for path in entries}
            time.sleep(self.settle_seconds)
            entries = [path for path in entries if _signature(path) == before[path]]
        return [self.handle(path) for path in entries]

    # -- watching

    def notice(self, path: Path) -> None:
        """An event says `path` may be complete: import it once it has stayed the same long enough."""
        if path.parent != self.inbox or is_partial_name(path.name):
            return
        with self._pending_lock:
            if path.name not in self._pending:
                self._pending[path.name] = _Pending(signature=_signature(path), since=time.monotonic())
            else:
                # Look again from now: a second close event means the writer may not have been done.
                self._pending[path.name].since = time.monotonic()
        self._wake.set()

    def start(self) -> None:
        self.store.require_initialized()
        self._stop.clear()
        observer = Observer()
        observer.schedule(_Handler(self), str(self.inbox), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer
        worker = threading.Thread(target=self._run, name="inbox-worker", daemon=True)
        worker.start()
        self._worker = worker

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        observer = self._observer
        if observer is not None:
            observer.stop()
            observer.join(5)
            self._observer = None
        if self._worker is not None:
            self._worker.join(10)
            self._worker = None

    def _run(self) -> None:
        """The worker: rescan now and then, import what has settled, retry once what deserves it."""
        next_rescan = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() >= next_rescan:
                next_rescan = time.monotonic() + self.rescan_seconds
                try:
                    for path in self._entries():
                        self.notice(path)
                except OSError as error:
                    log.error("cannot list the inbox: %s", error)
            try:
                self._process_pending()
            except Exception:  # noqa: BLE001 - a daemon must outlive a bug on one file; it is logged, not hidden
                log.exception("inbox watcher: unexpected error")
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()

    def _process_pending(self) -> None:
        with self._pending_lock:
            names = list(self._pending)
        for name in names:
            if self._stop.is_set():
                return
            path = self.inbox / name
            with self._pending_lock:
                entry = self._pending.get(name)
            if entry is None:
                continue
            now = time.monotonic()
            signature = _signature(path)
            if signature is None:
                with self._pending_lock:
                    self._pending.pop(name, None)
                continue
            if signature != entry.signature:
                entry.signature, entry.since = signature, now
                if entry.refused_signature is not None and signature != entry.refused_signature:
                    entry.retry_at = None  # it changed after its refusal: a new copy, judged afresh
                    entry.refused_signature = None
                continue
            if now - entry.since < self.settle_seconds:
                continue
            if entry.retry_at is not None and now < entry.retry_at:
                continue
            outcome = self.handle(path, final=entry.refused_signature is not None)
            with self._pending_lock:
                if outcome.deferred:
                    entry.refused_signature = signature
                    entry.retry_at = time.monotonic() + self.retry_seconds
                else:
                    self._pending.pop(name, None)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: InboxWatcher) -> None:
        self.watcher = watcher

    def _notice(self, raw: str | bytes) -> None:
        self.watcher.notice(Path(os.fsdecode(raw)))

    def on_closed(self, event: FileClosedEvent) -> None:
        # IN_CLOSE_WRITE: the writer closed it; it is imported once it stays unchanged.
        self._notice(event.src_path)

    def on_moved(self, event: FileMovedEvent) -> None:  # type: ignore[override]
        self._notice(event.dest_path)

    def on_created(self, event: FileCreatedEvent | DirCreatedEvent) -> None:
        # Regular files wait for their close event; links and special files never get one.
        path = Path(os.fsdecode(event.src_path))
        with contextlib.suppress(OSError):
            if not stat.S_ISREG(path.lstat().st_mode) and not path.is_dir():
                self._notice(event.src_path)

    def on_modified(self, event: object) -> None:
        if isinstance(event, DirModifiedEvent):
            return


def run_until_signalled(watcher: InboxWatcher) -> None:
    """Import what is there, then watch until SIGTERM/SIGINT (the worker rescans now and then)."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    watcher.start()
    try:
        while not stop.wait(1.0):
            pass
    finally:
        watcher.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
