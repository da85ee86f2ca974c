"""Déverrouillage: pick your name, type your passphrase, Enter; decryption runs in a worker thread.

Keys typed after that Entrée are kept by the app (tui/typeahead.py) and replayed into the search
field; this screen hands them back when it does not start an unlock, and drops them on a wrong
passphrase.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Center, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, LoadingIndicator, Select, Static

from continuity.errors import AuthenticationError, ContinuityError
from continuity.session import Session

# One schedule for every way in; the command line also keeps the count in the home (continuity/throttle.py).
from continuity.throttle import FREE_TRIES, MAX_DELAY_SECONDS, delay_after  # noqa: F401
from continuity.tui.widgets.choice import Choice

if TYPE_CHECKING:
    from continuity.tui.app import ContinuityApp



@dataclass
class UnlockSucceeded(Message):
    session: Session


@dataclass
class UnlockFailed(Message):
    message_fr: str
    wrong_passphrase: bool


class UnlockScreen(Screen[None]):
    """The first screen, and the one every lock returns to."""

    def __init__(self, *, notice: str = "") -> None:
        super().__init__()
        self.notice = notice
        self._retry_at = 0.0
        self.busy = False  # decrypting

    @property
    def capp(self) -> ContinuityApp:
        return cast("ContinuityApp", self.app)

    def compose(self) -> ComposeResult:
        unlocker = self.capp.unlocker
        staff = unlocker.staff()
        preselected = unlocker.last_user() or (staff[0] if len(staff) == 1 else None)
        with Center(), Vertical(id="unlock-box"):
            yield Static("CONTINUITY — MODE DÉGRADÉ", id="unlock-title")
            yield Static(
                "Le logiciel du cabinet est indisponible. Ces données de secours permettent de retrouver "
                "un patient, lire son dossier et imprimer une ordonnance.",
                id="unlock-intro",
            )
            yield Label("Votre nom")
            yield Choice(
                [(name, name) for name in staff],
                prompt="Choisissez votre nom",
                value=preselected if preselected is not None else Select.NULL,
                id="unlock-user",
            )
            yield Label("Votre phrase de passe")
            passphrase = Input(password=True, id="unlock-passphrase", placeholder="Phrase de passe puis Entrée")
            yield passphrase
            if self.capp.unlock_hint:
                yield Static(self.capp.unlock_hint, id="unlock-hint", markup=False)
            if unlocker.dev_mode:
                yield Static("Mode développement : base non chiffrée, laissez vide et appuyez sur Entrée.",
                             id="unlock-dev")
            yield Static(self.notice, id="unlock-error", markup=False)
            yield LoadingIndicator(id="unlock-progress")
            yield Static("", id="unlock-progress-text")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#unlock-progress").display = False
        passphrase = self.query_one("#unlock-passphrase", Input)
        if self.app.is_headless:
            passphrase.cursor_blink = False
        if not self.capp.unlocker.staff():
            self._error("Aucun membre du personnel n'est enregistré sur ce poste (commande « continuity init »).")
        if self.query_one("#unlock-user", Select).value is Select.NULL:
            self.query_one("#unlock-user", Select).focus()
        else:
            passphrase.focus()
        self._apply_delay()

    def _error(self, text: str) -> None:
        self.query_one("#unlock-error", Static).update(text)

    @on(Select.Changed, "#unlock-user")
    def user_chosen(self) -> None:
        self.query_one("#unlock-passphrase", Input).focus()

    @on(Input.Submitted, "#unlock-passphrase")
    def submitted(self, event: Input.Submitted) -> None:
        # event.value is the field as it was when Entrée reached it: the keys typed after it are
        # kept by the app, never appended to the passphrase.
        user = self.query_one("#unlock-user", Select).value
        if not isinstance(user, str):
            self._error("Choisissez d'abord votre nom dans la liste.")
            self.query_one("#unlock-user", Select).focus()
            self.capp.replay_type_ahead()
            return
        if time.monotonic() < self._retry_at:
            self.capp.type_ahead.drop()
            return
        if not event.value and not self.capp.unlocker.dev_mode:
            self._error("Tapez votre phrase de passe puis Entrée.")
            self.capp.replay_type_ahead()
            return
        self._busy(True)
        self._error("")
        self._unlock(user, event.value)

    def _busy(self, busy: bool) -> None:
        self.busy = busy
        self.query_one("#unlock-progress").display = busy
        self.query_one("#unlock-progress-text", Static).update(
            "Déchiffrement des données en cours…" if busy else ""
        )
        self.query_one("#unlock-passphrase", Input).disabled = busy
        self.query_one("#unlock-user", Select).disabled = busy

    @work(thread=True, exclusive=True, group="unlock")
    def _unlock(self, user: str, passphrase: str) -> None:
        # A thread: argon2id and decryption take a second. It posts a message and touches no widget.
        try:
            session = self.capp.unlocker.unlock(user, passphrase)
        except AuthenticationError as error:
            self.post_message(UnlockFailed(error.message_fr, wrong_passphrase=True))
        except ContinuityError as error:
            self.post_message(UnlockFailed(f"{error.message_fr} ({error})", wrong_passphrase=False))
        else:
            self.post_message(UnlockSucceeded(session))

    @on(UnlockSucceeded)
    def unlocked(self, message: UnlockSucceeded) -> None:
        self.capp.unlock_failures = 0
        self.capp.start_session(message.session)

    @on(UnlockFailed)
    def failed(self, message: UnlockFailed) -> None:
        self.capp.type_ahead.drop()  # typed after a wrong passphrase: maybe a second try at it
        self._busy(False)
        passphrase = self.query_one("#unlock-passphrase", Input)
        passphrase.value = ""
        if message.wrong_passphrase:
            self.capp.unlock_failures += 1
            self._error("Phrase de passe incorrecte. Vérifiez votre nom et la touche Verr. Maj, puis réessayez.")
        else:
            self._error(message.message_fr)
        passphrase.focus()
        self._apply_delay()

    def _apply_delay(self) -> None:
        delay = delay_after(self.capp.unlock_failures)
        if not delay:
            return
        self._retry_at = time.monotonic() + delay
        self.query_one("#unlock-passphrase", Input).disabled = True
        self._countdown()
        self.set_timer(delay, self._delay_over)

    def _countdown(self) -> None:
        left = max(0, round(self._retry_at - time.monotonic()))
        if left:
            failures = self.capp.unlock_failures
            self._error(f"Trop d'essais incorrects ({failures}). Patientez {left} s avant de réessayer.")
            self.set_timer(1, self._countdown)

    def _delay_over(self) -> None:
        passphrase = self.query_one("#unlock-passphrase", Input)
        passphrase.disabled = False
        passphrase.focus()
        self._error("Vous pouvez réessayer.")
