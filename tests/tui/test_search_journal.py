"""The search screen and the search journal: results do not wait for the journal's fsync, every search
shown is journaled before a record opens, and a search that cannot be journaled is taken off the screen.

The slow and the failing journals are Journal subclasses (a slow disk, a full one): the real disk-full
path is tests/unit/test_disk_full.py's.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from textual.widgets import Static

from continuity.errors import JournalError
from continuity.journal import Action, Journal, verify_journal
from continuity.session import DatabaseUnlocker, Session, fixed_clock
from continuity.tui.app import ContinuityApp
from continuity.tui.screens.patient import PatientScreen
from continuity.tui.screens.search import SearchScreen
from continuity.tui.widgets.results import ResultsTable
from tests.tui.conftest import NOW, SIZE, journal_actions
from tests.tui.test_flows import text_of, unlock


class SlowSearchJournal(Journal):
    """A journal on a slow disk: each search entry waits until the test says go."""

    def __init__(self, home: Path) -> None:
        super().__init__(home)
        self.go = threading.Event()

    def append(self, **kwargs: Any) -> Any:
        if kwargs["action"] == Action.SEARCH:
            assert self.go.wait(30), "the test never let the search entry through"
        return super().append(**kwargs)


class FullDiskSearchJournal(Journal):
    """A journal whose disk filled up: search entries (and only they, for this test) fail."""

    def append(self, **kwargs: Any) -> Any:
        if kwargs["action"] == Action.SEARCH:
            raise JournalError("journal/2026-11.jsonl: No space left on device")
        return super().append(**kwargs)


class JournalUnlocker(DatabaseUnlocker):
    def __init__(self, db: Path, home: Path, journal: Journal) -> None:
        super().__init__(db, home, user="accueil", clock=fixed_clock(NOW))
        self.journal = journal

    def unlock(self, user: str, passphrase: str) -> Session:
        session = super().unlock(user, passphrase)
        session.journal = self.journal
        return session


async def wait_for_table(pilot: Any, text: str) -> ResultsTable:
    """The table answering `text`, without waiting for the search threads (they may be journaling)."""
    for _ in range(300):
        await pilot.pause(0.01)
        table = pilot.app.screen.query_one(ResultsTable)
        if table.query_text == text:
            assert isinstance(table, ResultsTable)
            return table
    raise AssertionError(f"the table never showed the results for {text!r}")


async def test_results_are_shown_before_the_search_is_journaled_and_journaled_before_the_record(
    practice_db: Path, home: Path
) -> None:
    journal = SlowSearchJournal(home)
    app = ContinuityApp(JournalUnlocker(practice_db, home, journal), idle_minutes=0, watch_store=False,
                        print_directory=home.parent / "prints")  # fmt: skip
    async with app.run_test(size=SIZE) as pilot:
        try:
            await unlock(pilot)
            await pilot.press(*"rousseau")
            table = await wait_for_table(pilot, "rousseau")
            # On screen while the journal is still writing (before: the table waited for the fsync).
            assert [result.patient.id for result in table.results] == ["pat-qual"]
            assert ("search", None) not in journal_actions(home)
        finally:
            journal.go.set()
        await app.workers.wait_for_complete()
        searches = [action for action, _ in journal_actions(home)].count("search")
        assert searches >= 1  # every search that found someone, once the disk answered
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PatientScreen)
    actions = journal_actions(home)
    view = actions.index(("view_patient", "pat-qual"))
    assert [action for action, _ in actions[:view]].count("search") == searches
    assert actions[-1] == ("lock", None)
    assert verify_journal(home).ok


async def test_a_search_that_cannot_be_journaled_leaves_the_screen(practice_db: Path, home: Path) -> None:
    app = ContinuityApp(JournalUnlocker(practice_db, home, FullDiskSearchJournal(home)), idle_minutes=0,
                        watch_store=False, print_directory=home.parent / "prints")  # fmt: skip
    async with app.run_test(size=SIZE) as pilot:
        await unlock(pilot)
        await pilot.press(*"rousseau")
        await app.workers.wait_for_complete()
        for _ in range(20):
            await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        assert screen.query_one(ResultsTable).results == []
        assert "journal d'accès ne peut pas être écrit" in text_of(screen.query_one("#search-hint", Static))
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SearchScreen)  # nothing opened
        await pilot.press("backspace")  # another search: refused at once, the database is not read
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.query_one(ResultsTable).results == []
        assert "journal d'accès ne peut pas être écrit" in text_of(screen.query_one("#search-hint", Static))
    assert [action for action, _ in journal_actions(home)] == ["unlock", "lock"]
    assert verify_journal(home).ok
