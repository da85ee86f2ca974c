"""The Continuity Textual app: screens, global keys, type-ahead at unlock, idle lock, live updates, printing."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import os
import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events, on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import ModalScreen, Screen

from continuity import printing
from continuity.errors import ContinuityError, JournalError
from continuity.journal import Action
from continuity.session import Freshness, NewerSnapshot, PatientView, Session, Unlocker
from continuity.tui.screens.agenda import AgendaScreen
from continuity.tui.screens.base import SessionScreen
from continuity.tui.screens.dialogs import AcknowledgeOldData, ConfirmScreen, HelpScreen, MessageScreen, help_text
from continuity.tui.screens.search import SearchScreen
from continuity.tui.screens.status import StatusScreen
from continuity.tui.screens.unlock import UnlockScreen
from continuity.tui.typeahead import TypeAhead

if TYPE_CHECKING:
    from continuity.desk import DeskPresence
    from continuity.tui.screens.patient import PatientScreen

log = logging.getLogger(__name__)

DEFAULT_IDLE_MINUTES = 5.0
# After a hang-up the session is locked and journaled first; if leaving then stalls on the dead
# terminal, the process is ended after this long all the same. The last resort holds even if the lock
# itself never gets to run (a stuck disk): the data then goes with the process.
HANGUP_EXIT_SECONDS = 5.0
HANGUP_LAST_RESORT_SECONDS = 60.0
FAREWELL_SECONDS = 10.0  # how long the reason the session ended stays on screen (any key closes it)
DESK_REMOVED_FR = "Ce poste a été retiré de Continuity : la session est fermée. Adressez-vous au responsable."
IDLE_WARNING_SECONDS = 60.0  # the idle lock is announced this long before it happens
# After an idle lock, the screens that were open (a patient, an ordonnance being prepared) wait
# this long for the same person to unlock again; then they are dropped like at any other lock.
PARKED_MINUTES = 30
# A newer snapshot is switched to only after this long without a key press, on a screen that allows it.
SWITCH_AFTER_QUIET_SECONDS = 2.0


@dataclass
class SnapshotStored(Message):
    """Posted from the watchdog thread when something changed in store/: only a hint to look."""


@dataclass
class SnapshotSwitched(Message):
    """Posted from the switching thread once the newer snapshot is open (or failed to open)."""

    session: Session
    newer: NewerSnapshot | None
    error: str = ""


@dataclass
class PrintDone(Message):
    """Posted from a printing thread."""

    what: str
    error: str = ""
    where: str = ""


@dataclass
class Parked:
    """The screens kept under the unlock screen after an idle lock, for the same user only."""

    user: str
    since: float  # time.monotonic()


class ContinuityApp(App[None]):
    """The receptionist's app. Give it an Unlocker (keyslots of a home, or a plain database in dev mode)."""

    CSS_PATH = "app.tcss"
    TITLE = "Continuity — mode dégradé"
    ENABLE_COMMAND_PALETTE = False

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Aide", priority=True),
        Binding("f2", "search", "Recherche", priority=True),
        Binding("f3", "agenda", "Agenda", priority=True),
        Binding("f4", "status", "État", priority=True),
        Binding("ctrl+l", "lock", "Verrouiller", priority=True),
        # Never straight to a shell: both keys ask first, in French (Textual's own ctrl+c says, in
        # English, to press ctrl+q).
        Binding("ctrl+q,ctrl+c", "confirm_quit", "Quitter", priority=True, show=False),
    ]

    def __init__(
        self,
        unlocker: Unlocker,
        *,
        session: Session | None = None,
        idle_minutes: float = DEFAULT_IDLE_MINUTES,
        watch_store: bool = True,
        print_directory: Path | None = None,
        unlock_hint: str = "",
        desk: DeskPresence | None = None,
    ) -> None:
        super().__init__()
        self.desk = desk  # an SSH desk (continuity/desk.py): its removal ends the program at the next key
        self._ended = False
        self.unlock_hint = unlock_hint  # e.g. the demo's user and passphrase, shown on the unlock screen
        self.unlocker = unlocker
        self.session: Session | None = None
        self._initial_session = session
        self.idle_seconds = max(1.0, idle_minutes * 60) if idle_minutes > 0 else 0.0
        if 0 < idle_minutes * 60 < 1:
            self.idle_seconds = idle_minutes * 60  # tests use sub-second timeouts
        self.watch_store = watch_store
        self.print_directory = print_directory or printing.default_folder(getattr(unlocker, "home", None))
        self.print_keep_days = printing.DEFAULT_KEEP_DAYS
        self.type_ahead = TypeAhead()
        self.parked: Parked | None = None
        self.parked_seconds = PARKED_MINUTES * 60.0
        self._idle_warned = False
        self._idle_warning_said = ""  # the time left as the warning on screen says it
        self.unlock_failures = 0
        self.pending_sequence: int | None = None
        self._switching = False
        self._acknowledged: set[str] = set()
        self._last_input = time.monotonic()
        self._gc_thresholds = gc.get_threshold()
        self._collected_at = time.monotonic()
        self._observer: Any = None
        self.switch_after_quiet = SWITCH_AFTER_QUIET_SECONDS
        self.prescription_ids: Callable[[], str] = lambda: uuid.uuid4().hex  # fixed in snapshot tests
        self.printed: list[str] = []  # what was printed or saved, for the status line and tests

    # Key names in the footer, in French (Textual shows "esc", "enter", "^l").
    KEY_NAMES_FR: ClassVar[dict[str, str]] = {
        "escape": "Échap", "enter": "Entrée", "space": "Espace", "left": "←", "right": "→", "up": "↑",
        "down": "↓", "pageup": "Page↑", "pagedown": "Page↓", "tab": "Tab", "delete": "Suppr",
        "backspace": "Retour arrière",
    }

    def get_key_display(self, binding: Binding) -> str:
        if binding.key_display:
            return binding.key_display
        modifiers, key = binding.parse_key()
        name = self.KEY_NAMES_FR.get(key, key.upper() if len(key) > 1 or modifiers else key)
        return "+".join([*(modifier.capitalize() for modifier in modifiers), name])

    # -- lifecycle

    def on_mount(self) -> None:
        if not self.is_headless:
            # A dropped SSH connection (or a closed window) sends SIGHUP; a shutdown sends SIGTERM.
            loop = asyncio.get_running_loop()

            def hung_up(signum: int, frame: object) -> None:
                # A plain signal handler runs at once in the main thread, whatever the loop is doing:
                # arm the last-resort deadline here, and let the loop lock and leave.
                _exit_after(HANGUP_LAST_RESORT_SECONDS)
                loop.call_soon_threadsafe(self._hung_up, signum)

            for signum in (signal.SIGHUP, signal.SIGTERM):
                with contextlib.suppress(ValueError):  # not the main thread (embedded in another program)
                    signal.signal(signum, hung_up)
        self.set_interval(min(1.0, max(0.1, self.idle_seconds / 4)) if self.idle_seconds else 1.0, self._tick)
        self._purge_saved_prints()
        if self._initial_session is not None:
            session, self._initial_session = self._initial_session, None
            self.start_session(session)
        else:
            self.push_screen(UnlockScreen())
        self.call_after_refresh(self._import_ahead)

    def on_unmount(self) -> None:
        self._stop_watching()
        if self.session is not None:
            self.session.lock(reason="quit")
            self.session = None

    async def on_event(self, event: events.Event) -> None:
        # Every key press and click from the terminal passes here first: that is our activity clock.
        if isinstance(event, events.Key | events.MouseDown | events.MouseScrollDown | events.MouseScrollUp):
            self._last_input = time.monotonic()
            if self._ended:
                self.exit(return_code=1)  # a key on the farewell screen closes it at once
                return
            if self.desk is not None and not self.desk.listed():
                self.end("desk_removed", DESK_REMOVED_FR)  # the key does nothing else
                return
            if self._idle_warned:
                self._idle_warned = False
                self.clear_notifications()
        if isinstance(event, events.Key) and not event.is_forwarded:
            # Keys arrive here in the order typed. Once the Entrée that submits the passphrase has
            # passed, the next ones are the patient's name typed ahead: kept for the search field.
            if self.type_ahead.keep(event):
                return
            if event.key == "enter" and self._passphrase_focused():
                self.type_ahead.start()
        await super().on_event(event)

    def end(self, reason: str, message_fr: str = "") -> None:
        """Lock (journaled with `reason`), drop the data, and leave the program."""
        if self._ended:
            return
        self._ended = True
        self.parked = None  # screens kept after an idle lock go with everything else
        session, self.session = self.session, None
        self._stop_watching()
        if session is not None:
            session.lock(reason=reason)
        gc.unfreeze()
        gc.collect()
        if message_fr:
            # Say why on the screen (no patient data is left to show), then leave: over SSH the desk's
            # window closes with the program, so a message printed afterwards might never be seen.
            self._reset_to(UnlockScreen(notice=message_fr))
            self.set_timer(FAREWELL_SECONDS, lambda: self.exit(return_code=1))
            return
        self.exit(return_code=0 if reason == "quit" else 1)

    def _hung_up(self, signum: int) -> None:
        # The journal entry and the dropping of the data come first; a dead terminal must not stop us leaving.
        self.end("hangup" if signum == signal.SIGHUP else "terminated")
        _exit_after(HANGUP_EXIT_SECONDS)

    def _passphrase_focused(self) -> bool:
        focused = self.focused
        return (
            isinstance(self.screen, UnlockScreen)
            and focused is not None
            and focused.id == "unlock-passphrase"
            and not focused.disabled
        )

    def replay_type_ahead(self) -> None:
        """Hand the keys typed during the unlock to whatever has the focus now, in order."""
        for key in self.type_ahead.take():
            self.post_message(key)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in {"search", "agenda", "status", "lock"} and self.session is None:
            return False
        return True

    # -- sessions

    def start_session(self, session: Session) -> None:
        if self._ended:  # unlocked in a worker while the program was ending (a hang-up during unlock)
            session.lock(reason="hangup")
            return
        self.session = session
        self._last_input = time.monotonic()
        self._idle_warned = False
        self.pending_sequence = None
        parked, self.parked = self.parked, None
        if (
            parked is not None
            and parked.user == session.user
            and time.monotonic() - parked.since < self.parked_seconds
            and isinstance(self.screen, UnlockScreen)
            and len(self.screen_stack) > 2
        ):
            self._resume_parked()
        else:
            self._reset_to(SearchScreen())
        banner = session.banner()
        key = f"{banner.sequence}:{banner.created_at.isoformat()}"
        if banner.freshness is Freshness.RED and key not in self._acknowledged:
            self._acknowledged.add(key)
            self.type_ahead.hold()  # the Entrée that acknowledges must reach the dialog
            self.push_screen(AcknowledgeOldData(banner.headline))
        if banner.fell_back_from:
            self.notify("Les données les plus récentes sont illisibles : données précédentes affichées.",
                        severity="warning", timeout=10)
        self._start_watching()
        self._warm_up(session)
        self.call_after_refresh(self._freeze_heap)

    @work(thread=True, group="warm-up")
    def _warm_up(self, session: Session) -> None:
        # The surnames for typo tolerance are read once per snapshot; better now than on the first
        # search that needs them (tens of ms at 100,000 patients).
        try:
            if not session.is_locked:
                session.db.warm_up()
        except (ContinuityError, sqlite3.Error) as error:
            log.warning("search warm-up failed: %s", error)

    @work(thread=True, group="import-ahead")
    def _import_ahead(self) -> None:
        # The unlock screen needs neither the snapshot code (store, database, search and its
        # rapidfuzz) nor the patient screen with the prescribing rules: the app starts without them
        # and they are imported here, once the first screen is up, while the passphrase is typed,
        # so that neither the unlock nor the first patient opened waits for them.
        import continuity.store  # noqa: F401
        import continuity.tui.screens.patient  # noqa: F401

    def _freeze_heap(self) -> None:
        # A full (generation 2) collection pauses the app 30-100 ms: typing would stutter now and then.
        # The long-lived objects (widgets, styles, the session) go to the permanent generation, full
        # collections stop running on their own while the user types, and the idle tick runs them.
        gc.collect()
        gc.freeze()
        gc.set_threshold(self._gc_thresholds[0], self._gc_thresholds[1], 1000)
        self._collected_at = time.monotonic()

    def _resume_parked(self) -> None:
        """The same person is back after an idle lock: the screens they left, read again from the data."""
        self.pop_screen()  # the unlock screen; the parked screens are on top again
        for screen in list(self.screen_stack):
            if isinstance(screen, SessionScreen):
                screen.session_resumed()
        if not isinstance(self.screen, SearchScreen):
            # Letters typed ahead would act as keys of the reopened screen (o, p...): dropped, and
            # said only when there were some (keeping starts with every Entrée on the passphrase).
            typed_ahead = self.type_ahead.has_keys
            self.type_ahead.drop()
            if typed_ahead:
                self.notify("Les touches tapées pendant le déverrouillage ont été ignorées : "
                            "l'écran où vous étiez a été rouvert.", severity="warning", timeout=8)
        self.notify("Vous reprenez là où vous en étiez.", timeout=5)

    def lock(self, reason: str = "user") -> None:
        session, self.session = self.session, None
        self._stop_watching()
        self._idle_warned = False
        if session is not None:
            session.lock(reason=reason)
        if reason == "idle" and session is not None:
            # Left for a few minutes: the decrypted database is closed and dropped, but the screens
            # stay (under the unlock screen) so the same person finds their patient and ordonnance
            # draft again; anyone else, or the same person after PARKED_MINUTES, starts afresh.
            self.parked = Parked(session.user, time.monotonic())
            minutes = round(self.parked_seconds / 60)
            self.push_screen(UnlockScreen(notice=(
                f"Session verrouillée après {self._idle_text()} d'inactivité. Si {session.user} se "
                f"reconnecte dans les {minutes} minutes, son écran est rouvert ; toute autre personne "
                "repart d'un écran vide."
            )))
            return
        self.parked = None
        # Whatever held patient data and sits in a reference cycle is really freed now.
        self._free_memory()
        notice = {
            "idle": "Session verrouillée après inactivité. Les données ont été effacées de la mémoire.",
            "user": "Session verrouillée. Les données ont été effacées de la mémoire.",
        }.get(reason, "Session verrouillée.")
        self._reset_to(UnlockScreen(notice=notice))

    def _free_memory(self) -> None:
        gc.unfreeze()
        gc.set_threshold(*self._gc_thresholds)
        gc.collect()

    def _idle_text(self) -> str:
        minutes = round(self.idle_seconds / 60)
        if minutes >= 1:
            return f"{minutes} minute{'s' if minutes > 1 else ''}"
        seconds = max(1, round(self.idle_seconds))
        return f"{seconds} seconde{'s' if seconds > 1 else ''}"

    def _drop_parked(self) -> None:
        """The parked screens waited long enough: drop them (and their patient data) now."""
        if self.parked is None or not isinstance(self.screen, UnlockScreen) or self.screen.busy:
            return
        self.parked = None
        self._reset_to(UnlockScreen(notice="Session verrouillée. Les données ont été effacées de la mémoire."))
        self.call_after_refresh(self._free_memory)

    def _reset_to(self, screen: Screen[Any]) -> None:
        """Drop every screen above the default one (they hold patient data) and show `screen`."""
        while len(self.screen_stack) > 2:
            self.pop_screen()
        if len(self.screen_stack) == 2:
            self.switch_screen(screen)
        else:
            self.push_screen(screen)

    def _tick(self) -> None:
        quiet = time.monotonic() - self._last_input
        if self.session is not None and self.idle_seconds and quiet >= self.idle_seconds:
            if not self.printing_in_progress():
                self.lock(reason="idle")
            return
        if self.session is not None and self.idle_seconds:
            left = self.idle_seconds - quiet
            if left <= min(IDLE_WARNING_SECONDS, self.idle_seconds / 2):
                self._warn_idle(left)
        if self.parked is not None and time.monotonic() - self.parked.since >= self.parked_seconds:
            self._drop_parked()
        if quiet >= 1.0 and time.monotonic() - self._collected_at > 10 and gc.isenabled():
            gc.collect()  # while nobody types (see _freeze_heap)
            self._collected_at = time.monotonic()
        self._maybe_switch(quiet)

    def _warn_idle(self, left: float) -> None:
        """Say the lock is coming, and count down: someone back at 'dans 1 minute' may have 10 s left."""
        when = self._seconds_text(left)
        if self._idle_warned and when == self._idle_warning_said:
            return
        if self._idle_warned:
            self.clear_notifications()  # the previous count; nothing else is on screen after minutes idle
        self._idle_warned = True
        self._idle_warning_said = when
        self.notify(
            f"Sans activité, le poste se verrouille dans {when}. Appuyez sur une touche pour continuer.",
            title="Verrouillage automatique", severity="warning", timeout=max(1.0, left),
        )

    @staticmethod
    def _seconds_text(seconds: float) -> str:
        """The time left in steps of ten seconds, never more than is left."""
        if seconds >= 50:
            return "1 minute"
        if seconds >= 10:
            return f"{int(seconds // 10) * 10} secondes"
        return "quelques secondes"

    # -- actions

    def action_confirm_quit(self) -> None:
        if isinstance(self.screen, ConfirmScreen) and self.screen.purpose == "quit":
            return
        body = (
            "Les données affichées seront effacées de la mémoire ; pour revenir, il faudra relancer "
            "Continuity et taper sa phrase de passe."
            if self.session is not None
            else "Pour revenir, il faudra relancer Continuity."
        )
        self.push_screen(
            ConfirmScreen("Quitter Continuity ?", body, yes="o : quitter", no="Échap : rester", purpose="quit"),
            self._quit_answered,
        )

    def _quit_answered(self, confirmed: bool | None) -> None:
        if confirmed:
            self.exit()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(help_text(
                idle_minutes=self.idle_seconds / 60, print_folder=str(self.print_directory),
                keep_days=self.print_keep_days,
            )))

    def _show_only(self, screen_type: type[SessionScreen]) -> None:
        if self.session is None:
            return
        while isinstance(self.screen, ModalScreen):
            self.pop_screen()
        if isinstance(self.screen, screen_type):
            return
        if screen_type is SearchScreen:
            while len(self.screen_stack) > 2 and not isinstance(self.screen, SearchScreen):
                self.pop_screen()
            return
        self.push_screen(screen_type())

    def action_search(self) -> None:
        """F2: a new search, from anywhere. A screen with work in progress (an ordonnance) asks first."""
        if self.session is None:
            return
        if any(isinstance(screen, SessionScreen) and not screen.SAFE_FOR_SWITCH for screen in self.screen_stack):
            self.push_screen(
                ConfirmScreen(
                    "Nouvelle recherche ?",
                    "L'ordonnance en cours de préparation sera abandonnée (rien n'a été imprimé).",
                    yes="o : abandonner et chercher", no="Échap : revenir à l'ordonnance", purpose="search",
                ),
                lambda confirmed: self._new_search() if confirmed else None,
            )
            return
        self._new_search()

    def _new_search(self) -> None:
        self._show_only(SearchScreen)
        if isinstance(self.screen, SearchScreen):
            self.screen.new_search()

    def action_agenda(self) -> None:
        self._show_only(AgendaScreen)

    def action_status(self) -> None:
        self._show_only(StatusScreen)

    def action_lock(self) -> None:
        if self.session is not None:
            self.lock(reason="user")

    # -- patients

    def open_patient(self, patient_id: str) -> None:
        """Journal, then show. A journal failure shows why and nothing of the patient."""
        session = self.session
        if session is None:
            return
        try:
            view = session.open_patient(patient_id)
        except JournalError as error:
            self.push_screen(MessageScreen(
                "Dossier non affiché",
                f"{error.message_fr}\n\nDétail technique : {error}\n\nPrévenez la personne responsable du poste.",
            ))
            return
        except ContinuityError as error:
            self.push_screen(MessageScreen("Dossier illisible", f"{error.message_fr}\n\nDétail : {error}"))
            return
        from continuity.tui.screens.patient import PatientScreen  # imported after unlock (_warm_up)

        self.push_screen(PatientScreen(view))

    def reload_patient(self, screen: PatientScreen) -> None:
        """After a snapshot switch: show the same patient from the new data (journaled again)."""
        session = self.session
        if session is None:
            return
        try:
            view = session.open_patient(screen.patient_id)
        except ContinuityError as error:
            if screen is self.screen:
                self.pop_screen()
            self.push_screen(MessageScreen(
                "Dossier fermé",
                f"Les nouvelles données ne permettent pas d'afficher ce dossier : {error.message_fr}",
            ))
            return
        screen.view = view
        screen.refresh_view()

    def open_prescription(self, view: PatientView, *, renew_all: bool = True) -> None:
        from continuity.tui.screens.prescription import PrescriptionScreen

        self.push_screen(PrescriptionScreen(view, renew_all=renew_all, id_factory=self.prescription_ids))

    # -- printing

    def print_summary(self, view: PatientView) -> None:
        session = self.session
        if session is None:
            return
        try:
            session.record_print(Action.PRINT_SUMMARY, view.summary.patient.id)
        except JournalError as error:
            self.push_screen(MessageScreen("Impression refusée", error.message_fr))
            return
        self.notify("Impression du résumé du dossier en cours…")
        self._print_summary(view, session.banner().created_at, session.banner().practice_name)

    @work(thread=True, group="print")
    def _print_summary(self, view: PatientView, created_at: dt.datetime, practice_name: str) -> None:
        from continuity import pdf

        try:
            data = pdf.render_summary(view.summary, snapshot_created_at=created_at, practice_name=practice_name)
            where = self.send_to_printer(data, f"resume-{view.summary.patient.id}", title="Résumé",
                                          kind=printing.SUMMARY)
        except ContinuityError as error:
            self.post_message(PrintDone("le résumé", error=error.message_fr))
        except OSError as error:
            self.post_message(PrintDone("le résumé", error=self._folder_error(error)))
        else:
            self.post_message(PrintDone("le résumé", where=where))

    def print_day_list(self, day: dt.date, text: str) -> None:
        session = self.session
        if session is None:
            return
        try:
            session.record_print(Action.EXPORT, None, details={"what": "day_list", "day": day.isoformat()})
        except JournalError as error:
            self.push_screen(MessageScreen("Impression refusée", error.message_fr))
            return
        self._print_text(text, f"agenda-{day.isoformat()}")

    @work(thread=True, group="print")
    def _print_text(self, text: str, name: str) -> None:
        try:
            where = self.send_to_printer(text.encode("utf-8"), name, suffix=".txt", title="Liste",
                                          kind=printing.DAY_LIST)
        except ContinuityError as error:
            self.post_message(PrintDone("la liste du jour", error=error.message_fr))
        except OSError as error:
            self.post_message(PrintDone("la liste du jour", error=self._folder_error(error)))
        else:
            self.post_message(PrintDone("la liste du jour", where=where))

    def send_to_printer(self, data: bytes, name: str, *, suffix: str = ".pdf", title: str = "Document",
                         kind: printing.DocumentKind = printing.ORDONNANCE) -> str:
        """Hand the document to CUPS (printing.py); PrintFailed says where it was saved instead."""
        from continuity.tui import printer

        self._purge_saved_prints()
        return printer.send(data, name, suffix=suffix, directory=self.print_directory, title=title, kind=kind,
                            keep_days=self.print_keep_days)

    def _folder_error(self, error: OSError) -> str:
        log.warning("print folder %s: %s", self.print_directory, error)
        return (
            f"Impression impossible, et le dossier des impressions ({self.print_directory}) est "
            "inaccessible : rien n'a été enregistré. Vérifiez l'imprimante, puis réessayez ; sinon, "
            "appelez la personne responsable du poste."
        )

    def _purge_saved_prints(self) -> None:
        """Documents saved for lack of a printer are patient data in clear: gone after the delay."""
        try:
            printing.purge_saved(self.print_directory, keep_days=self.print_keep_days)
        except OSError as error:
            log.warning("cannot purge the print folder %s: %s", self.print_directory, error)

    def printing_in_progress(self) -> bool:
        """A document is being rendered or sent: the idle lock waits for it to finish."""
        return any(worker.group in {"print", "prescription"} and not worker.is_finished for worker in self.workers)

    @on(PrintDone)
    def print_done(self, message: PrintDone) -> None:
        if message.error:
            self.push_screen(MessageScreen("Impression impossible", message.error))
            return
        self.printed.append(message.where)
        self.notify(f"Imprimé — {message.what} : {message.where}", timeout=6)

    # -- live update

    def _start_watching(self) -> None:
        session = self.session
        if not self.watch_store or session is None or session.dev_mode or session.home is None:
            return
        self._stop_watching()
        store_dir = session.home / "store"
        if not store_dir.is_dir():
            return
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        app = self

        class Handler(FileSystemEventHandler):
            # Runs in the watchdog thread: it posts a message and does nothing else.
            def on_any_event(self, event: FileSystemEvent) -> None:
                if str(event.src_path).endswith(".snap") or str(getattr(event, "dest_path", "")).endswith(".snap"):
                    app.post_message(SnapshotStored())

        observer = Observer()
        observer.schedule(Handler(), str(store_dir), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def _stop_watching(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()

    @on(SnapshotStored)
    def snapshot_stored(self) -> None:
        session = self.session
        if session is None:
            return
        try:
            newest = session.newest_stored_sequence()
        except ContinuityError as error:
            log.warning("cannot read the store state: %s", error)
            return
        if newest is not None and (session.sequence is None or newest > session.sequence):
            self.pending_sequence = newest
            self._refresh_banners()
            self._maybe_switch(time.monotonic() - self._last_input)

    def _maybe_switch(self, quiet: float) -> None:
        if self.pending_sequence is None or self._switching or self.session is None:
            return
        screen = self.screen
        if not isinstance(screen, SessionScreen) or not screen.SAFE_FOR_SWITCH:
            return
        if quiet < self.switch_after_quiet:
            return
        self._switching = True
        self._switch(self.session)

    @work(thread=True, exclusive=True, group="switch")
    def _switch(self, session: Session) -> None:
        # Decrypting takes a second at 100,000 patients: a thread opens the newer snapshot, and the
        # handler swaps it in on the UI thread, between two key presses, never under a running read.
        try:
            newer = session.open_newest()
        except ContinuityError as error:
            self.post_message(SnapshotSwitched(session, None, error=error.message_fr))
        else:
            self.post_message(SnapshotSwitched(session, newer))

    @on(SnapshotSwitched)
    def snapshot_switched(self, message: SnapshotSwitched) -> None:
        self._switching = False
        self.pending_sequence = None
        if self.session is not message.session or self.session.is_locked:
            # Locked (or locked and unlocked again) while the thread worked: that data is not wanted.
            if message.newer is not None:
                message.newer.discard()
            return
        switched = message.newer is not None and self.session.adopt(message.newer)
        if message.error:
            self.notify(f"Les nouvelles données n'ont pas pu être ouvertes : {message.error}", severity="error",
                        timeout=10)
        elif switched:
            banner = self.session.banner()
            self.notify(f"Données mises à jour : {banner.headline}", timeout=8)
        for screen in list(self.screen_stack):
            if isinstance(screen, SessionScreen):
                screen.snapshot_switched()
        self._refresh_banners()

    def _refresh_banners(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, SessionScreen):
                screen.refresh_banner()


def _exit_after(seconds: float) -> None:
    """End the process after `seconds` whatever the main thread is doing (a daemon timer thread)."""
    timer = threading.Timer(seconds, os._exit, args=(1,))
    timer.daemon = True
    timer.start()


def parse_today(text: str) -> dt.datetime:
    """`--today`: a date (at noon, Paris time) or an ISO date-time, for fixed clocks in tests and demos."""
    from continuity.session import PRACTICE_TZ

    try:
        if "T" in text or " " in text:
            moment = dt.datetime.fromisoformat(text)
        else:
            moment = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(12, 0))
    except ValueError as error:
        raise ValueError(f"--today: expected AAAA-MM-JJ or an ISO date-time, got {text!r}") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=PRACTICE_TZ)


def make_app(
    *,
    home: Path | None = None,
    db: Path | None = None,
    user: str | None = None,
    idle_minutes: float = DEFAULT_IDLE_MINUTES,
    today: str | None = None,
    unlock_hint: str = "",
    desk: str | None = None,
    print_folder: Path | None = None,
    print_keep_days: int = printing.DEFAULT_KEEP_DAYS,
) -> ContinuityApp:
    """The app on an appliance home (keyslots, store), or in dev mode on a plain database file.

    `desk`: the SSH desk this program serves (`continuity tui --desk`, the desk key's forced command).
    """
    from continuity.session import DatabaseUnlocker, HomeUnlocker, fixed_clock, system_clock

    clock = fixed_clock(parse_today(today)) if today else system_clock
    if home is None:
        from continuity import store  # the store opens snapshots: imported at unlock otherwise

        home = store.default_home()
    unlocker: Unlocker
    if db is not None:
        home.mkdir(parents=True, exist_ok=True)
        unlocker = DatabaseUnlocker(db, home, user=user or "dev", clock=clock)
    else:
        unlocker = HomeUnlocker(home, clock=clock, preselect=user, desk=desk)
    presence = None
    if desk is not None:
        from continuity.desk import DeskPresence

        presence = DeskPresence(home, desk)
        # The unlock screen has no banner yet: say there which desk this is.
        unlock_hint = "\n".join(filter(None, [f"Poste : {desk}", unlock_hint]))
    app = ContinuityApp(unlocker, idle_minutes=idle_minutes, unlock_hint=unlock_hint, desk=presence,
                        print_directory=print_folder or printing.default_folder(home))
    app.print_keep_days = print_keep_days
    return app
