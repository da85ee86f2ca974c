"""Journal entries held for a moment and written in order: a search's fsync off the keystroke path.

Every search that shows patients is journaled (docs/journal.md). Written before the results are
returned, each keystroke of a name waited for a sealed, fsynced append (about 1 ms, more on a busy
disk) before the table could change. The TUI instead queues the entry here, shows the results, and
writes the queue at once from its search thread (`JournalQueue.flush`). The queue is also written,
before anything else is journaled, by every path that shows or prints a record or ends the session
(`Session.open_patient`, printing, the snapshot switch, the lock): no access can be journaled ahead
of a search that led to it, and nothing queued outlives the session unwritten.

Failing closed: if a queued entry cannot be written, `flush` raises the `JournalError`, the caller
takes the results off the screen, and the queue refuses every later entry and flush with the same
error (the session then shows no search and no record until the journal works and someone unlocks
again). Entries queued behind the failed one are dropped and counted in the log (no patient data).

Nothing here touches the disk in clear: the query text stays in memory until `Journal.append` seals
it; the journal writes the line (and fsyncs it) before its head record, as for any other entry.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from continuity.errors import JournalError
from continuity.journal import Journal

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QueuedEntry:
    """The arguments of one `Journal.append`, kept until the queue is written."""

    user: str
    action: str
    patient_id: str | None = None
    snapshot_seq: int | None = None
    details: Mapping[str, Any] | None = None
    sealed: Mapping[str, Any] | None = None


class JournalQueue:
    """Entries for one journal, appended in the order queued by whichever thread calls `flush`."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._entries: deque[QueuedEntry] = deque()
        self._failure: JournalError | None = None
        self._queue_lock = threading.Lock()  # held for a moment: queuing is on the keystroke path
        self._write_lock = threading.Lock()  # held while writing: a flush returns once the writes are done

    @property
    def failure(self) -> JournalError | None:
        """The error that stopped the queue, if an entry could not be written."""
        return self._failure

    def put(self, entry: QueuedEntry) -> None:
        """Queue `entry`; JournalError at once if an earlier entry could not be written."""
        with self._queue_lock:
            if self._failure is not None:
                raise self._failure
            self._entries.append(entry)

    def flush(self, *, wait: bool = True) -> None:
        """Write every entry queued so far (and any queued meanwhile); return when they are durable.

        `wait=False` (a search thread, right after posting its results): if another thread is
        writing, return at once: it writes this thread's entries too, as it looks at the queue again
        after each pass. A stalled disk then holds one thread, not one per keystroke (Textual's
        threads come from a small pool). Raises the JournalError of the first entry that could not
        be written, now and on every later call.
        """
        while True:
            if not self._write_lock.acquire(blocking=wait):
                return
            try:
                self._write_queued()
            finally:
                self._write_lock.release()
            with self._queue_lock:
                # An entry queued between the last look and the release found the lock taken.
                if not self._entries:
                    return

    def _write_queued(self) -> None:
        while True:
            with self._queue_lock:
                if self._failure is not None:
                    raise self._failure
                if not self._entries:
                    return
                entry = self._entries[0]
            try:
                self.journal.append(user=entry.user, action=entry.action, patient_id=entry.patient_id,
                                    snapshot_seq=entry.snapshot_seq, details=entry.details,
                                    sealed=entry.sealed)  # fmt: skip
            except JournalError as error:
                with self._queue_lock:
                    self._failure = error
                    dropped = len(self._entries)
                    self._entries.clear()
                log.error("journal: %d queued entries not written (the first: %s), the session shows "
                          "nothing more: %s", dropped, entry.action, error)  # fmt: skip
                raise
            with self._queue_lock:
                self._entries.popleft()

    def __len__(self) -> int:
        with self._queue_lock:
            return len(self._entries)
