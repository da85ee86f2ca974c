"""Searches journaled just after they are shown (continuity/journal_queue.py): every one still journaled,
sealed, in order, durable before any record is read or the session locks, failing closed.

The failing journal is a Journal subclass that refuses `search` entries (the real disk-full path is
tests/unit/test_disk_full.py's, on a real small file system).
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest

from continuity import snapshot_build, snapshotdb
from continuity.errors import JournalError
from continuity.journal import Action, Journal, read_head_record, verify_journal
from continuity.session import Session, fixed_clock
from tests.factories import small_practice
from tests.unit.journal_helpers import make_appliance

TODAY = dt.date(2026, 11, 28)
CREATED = dt.datetime(2026, 11, 28, 1, 13, tzinfo=dt.UTC)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return snapshot_build.build_from_records(small_practice(TODAY), tmp_path / "s.db", created_at=CREATED).path


class RefusingSearches(Journal):
    """A journal whose search entries fail (a disk that filled between two keystrokes)."""

    def append(self, **kwargs: Any) -> Any:
        if kwargs["action"] == Action.SEARCH:
            raise JournalError("journal/2026-11.jsonl: No space left on device")
        return super().append(**kwargs)


def session_on(db_path: Path, journal: Journal) -> Session:
    return Session.from_database(snapshotdb.open_file(db_path), "accueil", journal, clock=fixed_clock(CREATED))


def actions(home: Path) -> list[tuple[str, str | None]]:
    return [(entry.action, entry.patient_id) for entry in Journal(home).entries()]


def test_results_come_back_before_the_entry_is_written_and_the_record_after_it(db_path: Path, tmp_path: Path) -> None:
    home = make_appliance(tmp_path / "home").home
    session = session_on(db_path, Journal(home))
    results = session.search("rousseau", journal_later=True)
    assert results and results[0].patient.id == "pat-qual"
    assert actions(home) == [("unlock", None)]  # not yet on disk: no fsync before the caller has its results
    head = read_head_record(home)
    assert head is not None and head.index == 0  # the head names only what is on disk

    session.open_patient("pat-qual")  # the search that led here is written first, then the access
    assert actions(home) == [("unlock", None), ("search", None), ("view_patient", "pat-qual")]
    assert verify_journal(home).ok


def test_the_caller_writes_the_entry_at_once_sealed(db_path: Path, tmp_path: Path) -> None:
    appliance = make_appliance(tmp_path / "home")
    session = session_on(db_path, Journal(appliance.home))
    session.search("rousseau", journal_later=True)
    session.journal_queued()
    entry = list(Journal(appliance.home).entries())[-1]
    assert entry.action == "search" and entry.details == {"results": 1, "limit": 50}
    assert entry.open_sealed(appliance.box_key) == {"query": "rousseau"}
    on_disk = b"".join(path.read_bytes() for path in (appliance.home / "journal").glob("*.jsonl"))
    assert b"rousseau" not in on_disk.lower()  # the query text never in clear


def test_the_lock_writes_what_is_queued_before_its_own_entry(db_path: Path, tmp_path: Path) -> None:
    home = make_appliance(tmp_path / "home").home
    session = session_on(db_path, Journal(home))
    assert session.search("rousseau", journal_later=True)
    assert session.search("ndiaye", journal_later=True)
    session.search("zzzz", journal_later=True)  # finds nobody: not journaled
    session.lock()
    assert [action for action, _ in actions(home)] == ["unlock", "search", "search", "lock"]
    assert verify_journal(home).ok


def test_a_search_entry_that_fails_stops_every_search_and_record(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = make_appliance(tmp_path / "home").home
    session = session_on(db_path, RefusingSearches(home))
    assert session.search("rousseau", journal_later=True)  # shown, then...
    with pytest.raises(JournalError):
        session.journal_queued()  # ...the caller learns it could not be journaled and takes it away
    searched: list[str] = []
    monkeypatch.setattr(snapshotdb.SnapshotDB, "search", lambda *a, **k: searched.append("search") or [])
    with pytest.raises(JournalError):
        session.search("martin", journal_later=True)
    with pytest.raises(JournalError):
        session.search("martin")
    assert searched == []  # the database is not even read
    read: list[str] = []
    monkeypatch.setattr(snapshotdb.SnapshotDB, "summary", lambda *a, **k: read.append("summary"))
    with pytest.raises(JournalError):
        session.open_patient("pat-qual")
    assert read == []
    session.lock()  # the lock is still journaled, and nothing in the journal is out of place
    assert actions(home) == [("unlock", None), ("lock", None)]
    report = verify_journal(home)
    assert report.ok, report.problems
    head = read_head_record(home)
    assert head is not None and head.index == 1


def test_searches_queued_from_threads_are_all_written_in_order(db_path: Path, tmp_path: Path) -> None:
    home = make_appliance(tmp_path / "home").home
    session = session_on(db_path, Journal(home))
    names = ["rousseau", "martin", "ndiaye", "dupont"]
    found = {name: len(session.db.search(name)) for name in names}

    def type_names() -> None:
        for _ in range(10):
            for name in names:
                session.search(name, journal_later=True)
                session.journal_queued()

    threads = [threading.Thread(target=type_names) for _ in range(3)]
    for thread in threads:
        thread.start()
    for _ in range(20):
        session.open_patient("pat-qual")  # meanwhile, on the UI thread
    for thread in threads:
        thread.join()
    session.lock()
    entries = list(Journal(home).entries())
    assert [entry.index for entry in entries] == list(range(len(entries)))
    searches = [entry for entry in entries if entry.action == "search"]
    assert len(searches) == 3 * 10 * sum(1 for count in found.values() if count)
    assert entries[-1].action == "lock"
    assert verify_journal(home).ok
