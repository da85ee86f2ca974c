"""The unlocked session the TUI drives: who is logged in, which snapshot is open, the journal of access.

Every read of a patient goes through `Session.open_patient`, which journals the access *before*
returning anything: if the journal cannot be written, `JournalError` propagates and nothing is shown.
Locking drops every reference to the decrypted database and the appliance secrets, and closes the
in-memory connection, so the plaintext can be reclaimed.

No UI code here: the Textual app (continuity/tui/) and tests drive this class.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import shutil
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from continuity import display
from continuity.errors import ContinuityError, JournalError, SnapshotDatabaseError
from continuity.journal import Action, Journal, ensure_reserve
from continuity.journal_queue import JournalQueue, QueuedEntry
from continuity.keys import Role, StaffMember
from continuity.model import PatientSummary, Practitioner, PrescriptionLine

if TYPE_CHECKING:
    # Types only: the database code (and the search with it) is imported when a snapshot opens, not
    # to show the unlock screen.
    from continuity.drugs.reference import DrugReference
    from continuity.keys import ApplianceSecrets, OpenedSlot
    from continuity.prescribing.issuing import IssuedDocument, Signer, SigningChoice
    from continuity.prescribing.rules import PrescriptionPlan, Renewal
    from continuity.snapshotdb import AgendaEntry, SearchResult, SnapshotDB

log = logging.getLogger(__name__)

# The practice is in France: times on screen are Paris times whatever the machine's TZ says.
PRACTICE_TZ = display.PRACTICE_TZ
AMBER_AFTER = dt.timedelta(hours=36)
# One search shows at most this many patients: enough to pick among homonyms, not a directory dump.
MAX_SEARCH_RESULTS = 50
RED_AFTER = dt.timedelta(days=7)

Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def fixed_clock(moment: dt.datetime) -> Clock:
    """A clock that always says `moment` (tests, `--today`)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=PRACTICE_TZ)
    return lambda: aware


class SessionLocked(ContinuityError):
    """The session was locked: its data is gone, the user must unlock again."""

    exit_code = 7
    default_message_fr = "Session verrouillée : déverrouillez pour continuer."


class Freshness(enum.StrEnum):
    """How old the data on screen is: drives the banner colour."""

    FRESH = "fresh"
    AMBER = "amber"  # older than 36 h
    RED = "red"  # older than 7 days: the user must acknowledge it once


def freshness(age: dt.timedelta) -> Freshness:
    if age >= RED_AFTER:
        return Freshness.RED
    if age >= AMBER_AFTER:
        return Freshness.AMBER
    return Freshness.FRESH


@dataclass(frozen=True, slots=True)
class PatientView:
    """What the patient screen shows: the summary, and how many homonyms to warn about."""

    summary: PatientSummary
    homonyms: int
    practitioners: dict[str, Practitioner]
    # Ordonnances printed for this patient since the data's time (during this outage: they are not in
    # the snapshot's recent prescriptions), from the journal; None when the journal could not be read.
    printed_here: tuple[PrintedHere, ...] | None = ()


@dataclass(frozen=True, slots=True)
class PrintedHere:
    at: dt.datetime
    user: str
    line_count: int


@dataclass(frozen=True, slots=True)
class BannerInfo:
    created_at: dt.datetime
    age: dt.timedelta
    age_text: str
    practice_name: str
    user: str
    freshness: Freshness
    sequence: int | None = None
    fell_back_from: str | None = None  # why the newest stored snapshot could not be opened
    pull_notice: str = ""  # a failed or rejected pull since the snapshot on screen was stored
    desk: str | None = None  # the desk (room) of an SSH session, continuity/desk.py

    @property
    def headline(self) -> str:
        local = self.created_at.astimezone(PRACTICE_TZ)
        return f"MODE DÉGRADÉ — données du {display.fr_datetime(local)} ({self.age_text})"


@dataclass(frozen=True, slots=True)
class PullAttempt:
    at: dt.datetime | None
    outcome: str  # "accepted", "not_modified", or a rejection reason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class StatusInfo:
    sequence: int | None
    created_at: dt.datetime
    age_text: str
    practice_name: str
    counts: dict[str, int]
    publisher_fingerprints: tuple[str, ...] = ()
    pull_attempts: tuple[PullAttempt, ...] = ()
    kept_snapshots: tuple[str, ...] = ()
    disk_free_bytes: int | None = None
    disk_total_bytes: int | None = None
    home: Path | None = None
    fell_back_from: str | None = None
    dev_mode: bool = False
    expires_at: dt.datetime | None = None  # the signed header's end of validity (None: plain database)
    export_notes: tuple[str, ...] = ()  # what the publisher's import report said of this export (French)


def _export_notes(db: SnapshotDB) -> tuple[str, ...]:
    """The publisher's import summary in French, for the status screen (never a reason to fail it)."""
    try:
        summary = db.import_summary()
    except SnapshotDatabaseError as error:
        log.warning("import summary: %s", error)
        return ("résumé de l'import illisible",)
    return tuple(summary.lines_fr()) if summary is not None else ()


@dataclass
class _Opened:
    """The live part of a session: dropped as a whole at lock."""

    db: SnapshotDB
    sequence: int | None
    fell_back_from: str | None
    secrets: ApplianceSecrets | None
    practitioners: dict[str, Practitioner] = field(default_factory=dict)
    # The signed header's created_at when the snapshot came through the store (it is the
    # publisher's word, the database meta only a copy); the meta for a plain database.
    created_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None  # the signed header's; none for a plain database

    @property
    def data_time(self) -> dt.datetime:
        return _aware(self.created_at or self.db.created_at)


class Session:
    """One staff member's unlocked session on one snapshot."""

    def __init__(
        self,
        *,
        db: SnapshotDB,
        user: str,
        journal: Journal,
        home: Path | None = None,
        secrets: ApplianceSecrets | None = None,
        sequence: int | None = None,
        fell_back_from: str | None = None,
        created_at: dt.datetime | None = None,
        clock: Clock = system_clock,
        member: StaffMember | None = None,
        expires_at: dt.datetime | None = None,
    ) -> None:
        self.user = user
        # Who is logged in and with which role: from the signed staff roster at unlock. A session
        # without keyslot (dev mode on a plain database) is reception unless told otherwise.
        self.member = member or StaffMember(user, Role.RECEPTION)
        if self.member.name != user:
            raise ValueError(f"session user {user!r} is not the member {self.member.name!r}")
        self.journal = journal  # also makes the queue of the searches to journal (journal_later)
        self.home = home
        self.clock = clock
        self._opened: _Opened | None = _Opened(db, sequence, fell_back_from, secrets, created_at=created_at,
                                               expires_at=expires_at)
        self._opened.practitioners = {p.id: p for p in db.practitioners()}

    @property
    def journal(self) -> Journal:
        return self._journal

    @journal.setter
    def journal(self, journal: Journal) -> None:
        # Set once in practice (tests replace it before any search): the queue writes to this journal.
        self._journal = journal
        self._queued = JournalQueue(journal)

    # -- opening and closing

    @classmethod
    def from_database(
        cls,
        db: SnapshotDB,
        user: str,
        journal: Journal,
        *,
        clock: Clock = system_clock,
        home: Path | None = None,
        member: StaffMember | None = None,
    ) -> Session:
        """A session on an already open database (tests, `continuity tui --db`): no keys, no store.

        The access journal is still written: dev mode is not a way around it. Without `member` the
        session has the reception role (nothing authenticates a role here).
        """
        session = cls(db=db, user=user, journal=journal, home=home, clock=clock, member=member)
        session._journal_unlock(details={"mode": "database", "role": session.member.role.value})
        return session

    @classmethod
    def unlock(
        cls,
        home: Path,
        user: str,
        passphrase: str,
        *,
        clock: Clock = system_clock,
        on_wait: Callable[[int, float], None] | None = None,
        desk: str | None = None,
    ) -> Session:
        """Open `user`'s keyslot, decrypt the newest good snapshot, journal the unlock.

        Raises AuthenticationError (wrong passphrase), KeyslotRefused, NoSnapshot, JournalError, or
        the rejection of every stored snapshot. A failed unlock is journaled (see `authenticate`).
        `desk`: the desk of an SSH session; every journal entry of the session names it.
        """
        from continuity import store  # lazily: the store is not needed by dev mode

        journal = Journal(home, desk=desk)
        slot = authenticate(home, user, passphrase, command="unlock", journal=journal, on_wait=on_wait)
        ensure_reserve(home)  # (re)made while there is room: released to the journal if the disk fills
        secrets = slot.secrets
        opened = store.Store(home).open_latest(secrets)
        header: Any = opened.header
        session = cls(
            db=opened.db,
            user=user,
            journal=journal,
            home=home,
            secrets=secrets,
            sequence=int(header.sequence),
            fell_back_from=opened.fell_back_from,
            created_at=header.created_at,
            clock=clock,
            member=slot.member,
            expires_at=header.expires_at,
        )
        try:
            details: dict[str, Any] = {"role": slot.member.role.value, "roster_serial": slot.roster_serial}
            if opened.fell_back_from is not None:
                details["fell_back_from"] = opened.fell_back_from
            session._journal_unlock(details=details)
            journal.checkpoint(secrets.signing_key, user, box_key=secrets.box_key)
        except BaseException:
            session._drop()
            raise
        return session

    def _journal_unlock(self, *, details: dict[str, Any]) -> None:
        try:
            self.journal.append(user=self.user, action=Action.UNLOCK, snapshot_seq=self.sequence, details=details)
        except BaseException:
            self._drop()
            raise

    def lock(self, *, reason: str = "user") -> None:
        """Journal the lock and drop the decrypted data. The data is dropped even if the journal fails."""
        if self._opened is None:
            return
        secrets = self._opened.secrets
        sequence = self._opened.sequence
        self._drop()
        try:
            self._queued.flush()  # the searches shown before the lock come before it in the journal
        except JournalError as error:
            log.error("searches shown before the lock could not be journaled: %s", error)
        try:
            self.journal.append(user=self.user, action=Action.LOCK, snapshot_seq=sequence, details={"reason": reason})
            if secrets is not None:
                self.journal.checkpoint(secrets.signing_key, self.user, box_key=secrets.box_key)
        except JournalError as error:
            log.error("could not journal the lock: %s", error)

    def _drop(self) -> None:
        opened, self._opened = self._opened, None
        if opened is not None:
            opened.db.close()
            opened.practitioners.clear()

    @property
    def is_locked(self) -> bool:
        return self._opened is None

    @property
    def _live(self) -> _Opened:
        if self._opened is None:
            raise SessionLocked("the session is locked")
        return self._opened

    @property
    def db(self) -> SnapshotDB:
        return self._live.db

    @property
    def sequence(self) -> int | None:
        return self._opened.sequence if self._opened else None

    @property
    def dev_mode(self) -> bool:
        return self._live.secrets is None

    @property
    def desk(self) -> str | None:
        """The desk of an SSH session (continuity/desk.py), None on the appliance's own screen."""
        return self.journal.desk

    # -- time

    def now(self) -> dt.datetime:
        return self.clock()

    def today(self) -> dt.date:
        return self.clock().astimezone(PRACTICE_TZ).date()

    # -- reading

    def search(self, text: str, limit: int = MAX_SEARCH_RESULTS, *, journal_later: bool = False) -> list[SearchResult]:
        """Find patients: at most MAX_SEARCH_RESULTS, and journaled before they are returned.

        A list of names, birth dates and INS is patient data: the query text is sealed like other
        patient details, the number of results is in clear. JournalError means: show nothing.

        `journal_later` (the TUI, typing): the entry is queued instead of written, so the results
        reach the screen without waiting for the fsync; the caller shows them, then calls
        `journal_queued()` at once and takes them off the screen if it raises. Whatever the caller
        does, the queue is written before any record is opened or printed and at the lock
        (continuity/journal_queue.py); once a queued entry failed, every search raises.
        """
        live = self._live
        limit = max(1, min(limit, MAX_SEARCH_RESULTS))
        if self._queued.failure is not None:
            raise self._queued.failure
        results = live.db.search(text, limit=limit)
        if results:
            # Without an appliance key (dev mode on a plain database) the query cannot be sealed: it
            # is left out, never written in clear; the search itself is still journaled.
            entry = QueuedEntry(user=self.user, action=Action.SEARCH, snapshot_seq=live.sequence,
                                details={"results": len(results), "limit": limit},
                                sealed={"query": text} if self.journal.can_seal() else None)  # fmt: skip
            self._queued.put(entry)
            if not journal_later:
                self._queued.flush()
        return results

    def journal_queued(self) -> None:
        """Write the searches queued by `search(journal_later=True)`, unless another thread is already
        writing them (it writes these too). JournalError: take the results off the screen."""
        self._queued.flush(wait=False)

    def open_patient(self, patient_id: str) -> PatientView:
        """Journal the access FIRST, then read the summary. JournalError means: show nothing."""
        live = self._live
        self._queued.flush()  # the search that led here is journaled (durably) before the record is read
        self.journal.append(
            user=self.user, action=Action.VIEW_PATIENT, patient_id=patient_id, snapshot_seq=live.sequence
        )
        summary = live.db.summary(patient_id, today=self.today())
        return PatientView(summary, live.db.homonyms(patient_id), dict(live.practitioners),
                           self.printed_here(patient_id))  # fmt: skip

    def printed_here(self, patient_id: str) -> tuple[PrintedHere, ...] | None:
        """The ordonnances printed for this patient since the data's time (during this outage), from
        the journal, so that nobody prints them twice; None when the journal cannot be read."""
        try:
            entries = self.journal.prescriptions_since(patient_id, self._live.data_time)
        except JournalError as error:
            log.warning("cannot list the ordonnances printed for a patient: %s", error)
            return None
        return tuple(
            PrintedHere(dt.datetime.fromisoformat(entry.timestamp), entry.user, int(entry.details.get("line_count", 0)))
            for entry in entries
        )

    def record_print(self, action: Action, patient_id: str | None, *, details: dict[str, Any] | None = None,
                     sealed: dict[str, Any] | None = None) -> None:
        """Journal a printout; call it before sending anything to the printer."""
        self._queued.flush()
        self.journal.append(user=self.user, action=action, patient_id=patient_id,
                            snapshot_seq=self._live.sequence, details=details, sealed=sealed)

    # -- ordonnances: the one path the CLI, the TUI and the drill take (continuity/prescribing/)

    def drug_reference(self) -> DrugReference | None:
        return self._live.db.drug_reference()

    def signer(self) -> Signer:
        """The logged-in member as a signer: their role and RPPS come from their authenticated keyslot."""
        from continuity.prescribing.issuing import Signer

        return Signer(self.member.name, self.member.role is Role.PRESCRIBER, self.member.rpps)

    def signing(self, signer: Signer, chosen: str | None = None) -> SigningChoice:
        """Who signs an ordonnance issued in this session (NotAllowed for reception)."""
        from continuity.prescribing import issuing

        return issuing.signing_practitioner(signer, self._live.practitioners.values(), chosen=chosen)

    def plan_prescription(
        self,
        view: PatientView,
        signing: SigningChoice,
        *,
        renew: Iterable[str | Renewal] | str = (),
        new_lines: Iterable[PrescriptionLine] = (),
        prescription_id: str | None = None,
        options: Mapping[str, Renewal] | None = None,
    ) -> PrescriptionPlan:
        """Apply the ordonnance rules (continuity/prescribing/rules.py) with this snapshot's drug reference."""
        from continuity.prescribing import rules

        return rules.build(
            view.summary, signing.practitioner, renew=renew, new_lines=new_lines, now=self.now(),
            prescription_id=prescription_id, drugs=self.drug_reference(), homonyms=view.homonyms, options=options,
        )

    def issue_prescription(
        self,
        plan: PrescriptionPlan,
        signing: SigningChoice,
        *,
        acknowledged: Collection[str],
        duplicate: bool = False,
        drill: bool = False,
        footer: bool = True,
    ) -> IssuedDocument:
        """Acknowledgements, render, journal: the PDF is returned only once the journal holds it."""
        from continuity.prescribing import issuing

        live = self._live
        if plan.prescription.prescriber != signing.practitioner:
            raise ValueError("the plan was built for another prescriber than the signing one")
        self._queued.flush()
        return issuing.issue(
            plan, acknowledged=acknowledged, journal=self.journal, user=self.user, snapshot_seq=live.sequence,
            snapshot_created_at=live.data_time, chosen_by=signing.chosen_by, duplicate=duplicate, drill=drill,
            footer=footer,
        )

    def agenda(self, day_from: dt.date, day_to: dt.date) -> list[AgendaEntry]:
        return self.db.agenda(day_from, day_to)

    def practitioners(self) -> dict[str, Practitioner]:
        return dict(self._live.practitioners)

    # -- banner and status

    def banner(self) -> BannerInfo:
        live = self._live
        created = live.data_time
        age = max(dt.timedelta(0), self.now() - created)
        return BannerInfo(
            created_at=created,
            age=age,
            age_text=display.age_of_data(created, self.now()),
            practice_name=live.db.practice_name,
            user=self.user,
            freshness=freshness(age),
            sequence=live.sequence,
            fell_back_from=live.fell_back_from,
            pull_notice=self._pull_notice(),
            desk=self.desk,
        )

    def status(self) -> StatusInfo:
        live = self._live
        created = live.data_time
        info = StatusInfo(
            sequence=live.sequence,
            created_at=created,
            age_text=display.age_of_data(created, self.now()),
            practice_name=live.db.practice_name,
            counts=live.db.counts(),
            home=self.home,
            fell_back_from=live.fell_back_from,
            dev_mode=live.secrets is None,
            expires_at=live.expires_at,
            export_notes=_export_notes(live.db),
        )
        if self.home is None:
            return info
        free = total = None
        try:
            usage = shutil.disk_usage(self.home)
            free, total = usage.free, usage.total
        except OSError as error:
            log.warning("disk usage of %s: %s", self.home, error)
        return StatusInfo(
            **{**_fields(info), "disk_free_bytes": free, "disk_total_bytes": total,
               **_store_status(self.home)},
        )

    def _pull_notice(self) -> str:
        if self.home is None or self._opened is None or self._opened.secrets is None:
            return ""
        return _store_pull_notice(self.home, self._opened.sequence)

    # -- live update

    def newest_stored_sequence(self) -> int | None:
        """The sequence of the newest accepted snapshot in the store (None in dev mode)."""
        if self.home is None or self._opened is None or self._opened.secrets is None:
            return None
        return _store_newest_sequence(self.home)

    def open_newest(self) -> NewerSnapshot | None:
        """Decrypt and validate the newest stored snapshot if it is newer than the one in use.

        Safe to call from a worker thread: it changes nothing in the session. Hand the result to
        `adopt` on the thread that reads the session (the UI thread), or `discard` it.
        """
        from continuity import store

        live = self._live
        if live.secrets is None or self.home is None:
            return None
        newest = self.newest_stored_sequence()
        if newest is None or (live.sequence is not None and newest <= live.sequence):
            return None
        opened = store.Store(self.home).open_latest(live.secrets)
        header: Any = opened.header
        sequence = int(header.sequence)
        if live.sequence is not None and sequence <= live.sequence:
            opened.db.close()  # the newest file failed its checks and an older one opened: keep ours
            return None
        practitioners = {p.id: p for p in opened.db.practitioners()}
        return NewerSnapshot(opened.db, sequence, opened.fell_back_from, header.created_at, practitioners,
                             header.expires_at)

    def adopt(self, newer: NewerSnapshot) -> bool:
        """Make `newer` the current snapshot and close the old one. False if the session was locked meanwhile."""
        live = self._opened
        if live is None or live.secrets is None:
            newer.db.close()
            return False
        self._opened = _Opened(newer.db, newer.sequence, newer.fell_back_from, live.secrets,
                               newer.practitioners, newer.created_at, newer.expires_at)
        live.db.close()
        live.practitioners.clear()
        try:
            self._queued.flush()
            self.journal.append(user=self.user, action="snapshot_switch", snapshot_seq=newer.sequence,
                                details={"from": live.sequence})
        except JournalError as error:
            log.error("could not journal the snapshot switch: %s", error)
        return True

    def switch_to_newest(self) -> bool:
        """`open_newest` then `adopt`, on one thread. Returns False when there is nothing newer.

        The old database is closed only after the new one opened: a newer file that fails its checks
        leaves the session on the snapshot it had.
        """
        newer = self.open_newest()
        return newer is not None and self.adopt(newer)


@dataclass
class NewerSnapshot:
    """A newer snapshot opened by `Session.open_newest`, not yet in use."""

    db: SnapshotDB
    sequence: int
    fell_back_from: str | None
    created_at: dt.datetime
    practitioners: dict[str, Practitioner]
    expires_at: dt.datetime | None = None

    def discard(self) -> None:
        self.db.close()


def authenticate(
    home: Path,
    user: str,
    passphrase: str,
    *,
    command: str,
    journal: Journal | None = None,
    on_wait: Callable[[int, float], None] | None = None,
) -> OpenedSlot:
    """Open a staff keyslot, for any command that needs one (unlock, journal export, staff changes...).

    First waits out the growing delay after wrong passphrases (kept in the home, shared by the
    interface and the command line; `on_wait(failures, seconds)` is told before waiting). Every
    failure, whatever the command, is counted and journaled as `unlock_failed` with the command and
    the reason before it is raised (best effort: a journal that cannot be written must not hide the
    authentication error itself). On success the process is made non-dumpable: it now holds keys.
    """
    from continuity import hardening, keys, throttle  # lazily: argon2 is not needed by dev mode

    throttle.wait_turn(home, announce=on_wait)
    try:
        slot = keys.open_member(home, user, passphrase)
    except ContinuityError as error:
        delay = throttle.record_failure(home)
        details: dict[str, Any] = {"reason": type(error).__name__, "command": command}
        if delay:
            details["next_try_in_s"] = delay
        try:
            (journal or Journal(home)).append(
                user=_journal_user(user), action=Action.UNLOCK_FAILED, details=details
            )
        except (JournalError, ValueError) as journal_error:
            log.warning("could not journal a failed unlock: %s", journal_error)
        raise
    throttle.record_success(home)
    hardening.make_non_dumpable()
    return slot


def _journal_user(user: str) -> str:
    """The name typed at a failed unlock may be anything: keep it journal-safe."""
    cleaned = "".join(ch for ch in user if ch.isprintable() and not ch.isspace())[:64]
    return cleaned or "inconnu"


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _fields(info: StatusInfo) -> dict[str, Any]:
    return {name: getattr(info, name) for name in info.__dataclass_fields__}


# --- the store, read for the banner and the status screen ----------------------------------------
# Kept apart so the session works in dev mode without a store at all.


def _read_state(home: Path) -> dict[str, Any]:
    from continuity import store

    state = store.Store(home).read_state()
    return state if isinstance(state, dict) else {}


def _parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return _aware(moment)


def _attempts(state: dict[str, Any]) -> list[PullAttempt]:
    found = []
    for raw in state.get("attempts", []):
        if not isinstance(raw, dict):
            continue
        outcome = str(raw.get("outcome") or "")
        if outcome == "rejected":
            outcome = str(raw.get("reason") or "rejected")
        found.append(PullAttempt(_parse_time(raw.get("at")), outcome, _reason_fr(outcome)))
    return found


def _reason_fr(outcome: str) -> str:
    from continuity.errors import REJECTION_CLASSES

    for rejection in REJECTION_CLASSES:
        if rejection.reason == outcome:
            return rejection.default_message_fr
    return ""


def _store_status(home: Path) -> dict[str, Any]:
    from continuity import store

    try:
        state = _read_state(home)
        kept = tuple(
            f"{path.name} ({human_bytes(path.stat().st_size)})" for path in store.Store(home).snapshot_files()
        )
    except (ContinuityError, OSError) as error:
        log.warning("cannot read the store of %s: %s", home, error)
        return {}
    current = state.get("current")
    fingerprints: tuple[str, ...] = ()
    if isinstance(current, dict) and current.get("publisher_fingerprint"):
        fingerprints = (str(current["publisher_fingerprint"]),)
    return {"publisher_fingerprints": fingerprints, "pull_attempts": tuple(_attempts(state)), "kept_snapshots": kept}


def _store_pull_notice(home: Path, sequence: int | None) -> str:
    """A failed or rejected pull since the snapshot on screen was accepted, in French; else ''."""
    try:
        state = _read_state(home)
    except (ContinuityError, OSError) as error:
        return f"État des récupérations illisible : {error}"
    current = state.get("current")
    accepted_at = _parse_time(current.get("accepted_at")) if isinstance(current, dict) else None
    failures = [
        attempt for attempt in _attempts(state)
        if attempt.outcome not in {"accepted", "unchanged", "not_modified"}
        and (accepted_at is None or attempt.at is None or attempt.at >= accepted_at)
    ]
    if not failures:
        return ""
    last = failures[0]
    when = display.fr_datetime(last.at.astimezone(PRACTICE_TZ)) if last.at else "date inconnue"
    more = f" ({len(failures)} échecs depuis ces données)" if len(failures) > 1 else ""
    return f"Récupération en échec le {when} : {last.detail or last.outcome}{more}"


def _store_newest_sequence(home: Path) -> int | None:
    current = _read_state(home).get("current")
    if isinstance(current, dict) and isinstance(current.get("sequence"), int):
        return int(current["sequence"])
    return None


def human_bytes(count: int | None) -> str:
    if count is None:
        return "inconnu"
    value = float(count)
    for unit in ("o", "Ko", "Mo", "Go"):
        if value < 1024 or unit == "Go":
            return f"{value:.1f} {unit}".replace(".", ",") if unit != "o" else f"{int(value)} o"
        value /= 1024
    return f"{value:.1f} To"


def pull_attempt_line(attempt: PullAttempt) -> str:
    when = display.fr_datetime(attempt.at.astimezone(PRACTICE_TZ)) if attempt.at else "date inconnue"
    labels = {"accepted": "accepté", "unchanged": "rien de nouveau", "not_modified": "rien de nouveau"}
    text = f"{when} : {labels.get(attempt.outcome, 'refusé (' + attempt.outcome + ')')}"
    return text + (f" — {attempt.detail}" if attempt.detail else "")


__all__: Sequence[str] = (
    "BannerInfo",
    "Freshness",
    "NewerSnapshot",
    "PatientView",
    "PullAttempt",
    "Session",
    "SessionLocked",
    "StatusInfo",
    "authenticate",
    "fixed_clock",
    "freshness",
    "human_bytes",
    "pull_attempt_line",
    "system_clock",
)


# --- how the app obtains a session: from the keyslots of a home, or from a plain database (dev) ----


class Unlocker:
    """What the unlock screen needs: the staff names, who to preselect, and unlocking itself."""

    dev_mode = False

    def staff(self) -> list[str]:
        raise NotImplementedError

    def last_user(self) -> str | None:
        return None

    def unlock(self, user: str, passphrase: str) -> Session:
        raise NotImplementedError


LAST_USER_FILE = "tui-last-user"


class HomeUnlocker(Unlocker):
    """The real path: a staff keyslot opens the appliance key, which decrypts the newest snapshot."""

    def __init__(
        self, home: Path, *, clock: Clock = system_clock, preselect: str | None = None, desk: str | None = None
    ) -> None:
        self.home = home
        self.clock = clock
        self.preselect = preselect  # who to preselect when nobody has unlocked here yet (the demo)
        self.desk = desk  # an SSH desk (continuity/desk.py): journaled, and remembers its own last user
        # Each desk preselects who last unlocked *there*: the doctor of room 2, not the receptionist.
        self.last_user_file = f"{LAST_USER_FILE}-{desk}" if desk else LAST_USER_FILE

    def staff(self) -> list[str]:
        from continuity import keys

        return keys.list_staff(self.home)

    def last_user(self) -> str | None:
        # Only a staff login, never patient data: it may sit in clear next to the keyslots.
        try:
            name = (self.home / self.last_user_file).read_text(encoding="utf-8").strip()
        except OSError:
            name = self.preselect or ""
        return name if name in self.staff() else None

    def unlock(self, user: str, passphrase: str) -> Session:
        if self.desk is not None:
            from continuity import desk

            desk.require_listed(self.home, self.desk)  # a desk removed meanwhile unlocks nothing
        session = Session.unlock(self.home, user, passphrase, clock=self.clock, desk=self.desk)
        try:
            (self.home / self.last_user_file).write_text(user + "\n", encoding="utf-8")
        except OSError as error:
            log.warning("cannot remember the last user: %s", error)
        return session


class DatabaseUnlocker(Unlocker):
    """Dev mode on a plain database file: no passphrase, but the journal is written all the same."""

    dev_mode = True

    def __init__(
        self,
        db_path: Path,
        home: Path,
        *,
        user: str = "dev",
        clock: Clock = system_clock,
        role: Role = Role.RECEPTION,
        rpps: str = "",
    ) -> None:
        self.db_path = db_path
        self.home = home
        self.user = user
        self.clock = clock
        self.role = role  # nothing authenticates a role in dev mode: reception unless the caller says
        self.rpps = rpps

    def staff(self) -> list[str]:
        return [self.user]

    def last_user(self) -> str | None:
        return self.user

    def unlock(self, user: str, passphrase: str) -> Session:
        from continuity import snapshotdb

        db = snapshotdb.open_file(self.db_path)
        try:
            member = StaffMember(user, self.role, self.rpps)
            return Session.from_database(db, user, Journal(self.home), clock=self.clock, home=None, member=member)
        except BaseException:
            db.close()
            raise
