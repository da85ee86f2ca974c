"""Recherche: one input, results as you type (in a worker thread, latest query wins), Enter opens.

Names as heard (search.py's second tier) come after the exact and prefix matches, under an
"orthographe proche" line, each marked ≈.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Footer, Input, Static

from continuity import display
from continuity.errors import ContinuityError, JournalError
from continuity.tui.screens.base import SessionScreen
from continuity.tui.widgets.banner import Banner
from continuity.tui.widgets.results import HOMONYM_WARNING, SAME_BIRTH_WARNING, ResultsTable

if TYPE_CHECKING:
    from continuity.snapshotdb import SearchResult  # a type only: the database code loads after the app starts

PLACEHOLDER = "Nom, prénom, date de naissance (JJ/MM/AAAA) ou INS"
START_HINT = "Tapez un nom (même mal orthographié), une date de naissance ou un INS."


@dataclass
class SearchDone(Message):
    """Posted by the search thread: the results for one query (or the error that stopped it)."""

    query_text: str
    results: list[SearchResult]
    error: str = ""
    seconds: float = 0.0


@dataclass
class SearchNotJournaled(Message):
    """Posted by a search thread: searches shown could not be journaled; take the results away."""

    error: str


class SearchScreen(SessionScreen):
    BINDINGS = [
        Binding("down", "cursor(1)", "Suivant", show=False),
        Binding("up", "cursor(-1)", "Précédent", show=False),
        Binding("pagedown", "cursor(10)", show=False),
        Binding("pageup", "cursor(-10)", show=False),
        Binding("escape", "clear", "Effacer"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._wanted = ""  # the text in the input, which the table must end up answering
        self._in_flight: str | None = None  # the query being searched by the worker, if any
        self._open_when_ready = False

    def compose(self) -> ComposeResult:
        yield Banner()
        with Vertical(id="search-body"):
            yield Input(placeholder=PLACEHOLDER, id="search-input")
            yield Static(START_HINT, id="search-hint", markup=False)
            yield ResultsTable(id="results")
            yield Static("", id="search-detail", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        search_input = self.query_one("#search-input", Input)
        if self.app.is_headless:
            search_input.cursor_blink = False
        search_input.focus()

    # -- searching

    @on(Input.Changed, "#search-input")
    def query_changed(self, event: Input.Changed) -> None:
        self._wanted = event.value
        self._open_when_ready = False
        if self._in_flight is None:
            self._start(event.value)

    def _start(self, text: str) -> None:
        self._in_flight = text
        self._search(text)

    @work(thread=True, group="search")
    def _search(self, text: str) -> None:
        # Runs in a thread: it only reads the database and posts a message; widgets change in the handler.
        started = time.perf_counter()
        session = self.capp.session
        try:
            # The search's journal entry is queued, written once the rows are painted (search_done).
            results = session.search(text, journal_later=True) if session is not None and not session.is_locked else []
            self.post_message(SearchDone(text, results, seconds=time.perf_counter() - started))
        except (ContinuityError, sqlite3.Error) as error:
            message = error.message_fr if isinstance(error, ContinuityError) else "Recherche impossible."
            self.post_message(SearchDone(text, [], error=message))

    @work(thread=True, group="search-journal")
    def _journal_searches(self) -> None:
        # Runs once the rows are painted: the sealing, the write and the fsync of the search's journal
        # entry (about 1 ms, more on a busy disk) never delay them nor hold the interpreter while the
        # table is rebuilt. Opening a record or locking writes the queue first in any case.
        session = self.capp.session
        if session is None:
            return  # locked meanwhile: the lock wrote the queue
        try:
            session.journal_queued()
        except JournalError as error:
            self.post_message(SearchNotJournaled(error.message_fr))

    @on(SearchDone)
    def search_done(self, message: SearchDone) -> None:
        self._in_flight = None
        if self.capp.session is None:
            return  # locked meanwhile (this screen waits under the unlock screen): searched again on resume
        if message.results:
            self.call_after_refresh(self._journal_searches)  # shown or not: the search was made
        if message.query_text != self._wanted:
            # The user typed on while we searched: only the latest text counts.
            self._start(self._wanted)
            return
        self._show(message)
        if self._open_when_ready:
            self._open_when_ready = False
            self._open_highlighted()

    @on(SearchNotJournaled)
    def search_not_journaled(self, message: SearchNotJournaled) -> None:
        # Fail closed: whatever the table shows may be among the searches that could not be journaled
        # (the thread that fails writes the others' entries too): it goes. Later searches and records
        # fail at once: the session's journal queue is stopped.
        self._open_when_ready = False
        self.query_one(ResultsTable).take_away()
        self.query_one("#search-hint", Static).update(f"⚠ {message.error}")
        self._update_detail()

    def _show(self, message: SearchDone) -> None:
        table = self.query_one(ResultsTable)
        table.show(message.query_text, message.results, self.session.today())
        hint = self.query_one("#search-hint", Static)
        if message.error:
            hint.update(f"⚠ {message.error}")
        elif not message.query_text.strip():
            hint.update(START_HINT)
        elif not message.results:
            hint.update("Aucun patient trouvé, même à l'orthographe proche. Essayez la date de naissance.")
        else:
            hint.update(results_hint(message.results))
        self._update_detail()

    def _update_detail(self) -> None:
        result = self.query_one(ResultsTable).highlighted()
        detail = self.query_one("#search-detail", Static)
        if result is None:
            detail.update("")
            detail.set_class(False, "-homonym")
            return
        status = display.IDENTITY_STATUS_FR[result.patient.identity_status]
        text = f"{display.identity_line(result.patient)} — identité {status.lower()}"
        table = self.query_one(ResultsTable)
        twin = table.same_birth[table.cursor_row] if table.cursor_row < len(table.same_birth) else False
        if result.homonyms:
            text = f"⚠ {HOMONYM_WARNING} — {text}"
        elif twin:
            text = f"⚠ {SAME_BIRTH_WARNING} — {text}"
        detail.update(text)
        detail.set_class(bool(result.homonyms) or twin, "-homonym")

    @on(ResultsTable.Highlighted)
    def row_highlighted(self) -> None:
        self._update_detail()

    # -- keys

    def action_cursor(self, step: int) -> None:
        table = self.query_one(ResultsTable)
        if table.row_count:
            table.move_cursor(row=max(0, min(table.row_count - 1, table.cursor_row + step)))

    def action_clear(self) -> None:
        self.query_one("#search-input", Input).value = ""

    def new_search(self) -> None:
        """F2: an empty field with the cursor in it."""
        search_input = self.query_one("#search-input", Input)
        search_input.value = ""
        search_input.focus()

    @on(Input.Submitted, "#search-input")
    def submitted(self) -> None:
        table = self.query_one(ResultsTable)
        if self._in_flight is not None or table.query_text != self._wanted:
            self._open_when_ready = True  # Enter typed before the results came: open when they do
            return
        self._open_highlighted()

    @on(ResultsTable.Selected)
    def row_selected(self) -> None:
        self._open_highlighted()

    def _open_highlighted(self) -> None:
        result = self.query_one(ResultsTable).highlighted()
        if result is not None:
            self.capp.open_patient(result.patient.id)

    def snapshot_switched(self) -> None:
        super().snapshot_switched()
        self._start(self._wanted)

    def on_screen_resume(self) -> None:
        if self.capp.session is None:
            return
        self.refresh_banner()
        self.query_one("#search-input", Input).focus()
        # The name typed ahead while the passphrase was being checked goes in now, in order.
        self.capp.replay_type_ahead()


HINT_WIDTH = 78  # 80 columns less the padding: a hint that wraps pushes the results down


def results_hint(results: list[SearchResult]) -> str:
    """'3 patients — Entrée : ouvrir le dossier...', saying how many are names as heard; one line at 80 columns."""
    close = sum(result.close for result in results)
    exact = len(results) - close
    if not exact:
        counts = f"{close} patient{'s' if close > 1 else ''} d'orthographe proche (≈)"
    else:
        counts = f"{exact} patient{'s' if exact > 1 else ''}"
        if close:
            counts += f", {close} d'orthographe proche (≈)"
    choose = "" if len(results) == 1 else " ; ↑ ↓ : choisir"
    text = f"{counts} — Entrée : ouvrir le dossier{choose}"
    return text if len(text) <= HINT_WIDTH else f"{counts} — Entrée : ouvrir{choose}"
