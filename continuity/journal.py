"""The hash-chained, append-only journal of everything viewed and issued on the appliance.

Layout
------
``$CONTINUITY_HOME/journal/YYYY-MM.jsonl``: one file per UTC month, one JSON object per line, in the
canonical form (sorted keys, no whitespace, UTF-8). Every line is an entry::

    {"action": "view_patient", "details": {}, "hash": "<sha256 hex>", "index": 41,
     "patient": "pat-0042", "prev": "<hash of entry 40>", "sealed": null,
     "snapshot_seq": 17, "ts": "2026-11-28T08:14:03.512210+00:00", "user": "dr.martin", "v": 1}

``hash`` is the SHA-256 of the canonical form of the entry without ``hash``. ``index`` runs on
across months, and the first entry of a month's file has as ``prev`` the last hash of the previous
month (entry 0 has 64 zeros), so the months form one chain. Old months may be deleted after the
retention period (:meth:`Journal.apply_retention`, default 12 months): before deleting, a
``retention`` entry records the index and hash the oldest remaining entry must follow on from, so
what remains still verifies, and a month deleted by hand does not.

One writer at a time: :meth:`Journal.append` holds an ``fcntl`` lock on ``journal/.lock``, writes the
line with ``O_APPEND`` in a single ``write``, then ``fsync`` s the file (and the directory when it
creates a file). Any failure raises :class:`~continuity.errors.JournalError` after cutting the file
back to its previous length: callers must then refuse to show patient data.

What may be written where
-------------------------
- ``user``: the staff login (``"system"`` for unattended jobs). Never a patient.
- ``patient_id``: the pseudonymous patient id of the snapshot (the platform's opaque resource id,
  FHIR ``id`` syntax). Never a name, a birth date, an INS or a NIR.
- ``details``: stored **in clear**, readable by anyone with access to the disk: counts, sequence
  numbers, reasons, file names. **Never patient data** (no name, birth date, INS, address, drug,
  diagnosis). A few obviously identifying keys are refused as a safety net.
- ``sealed``: JSON sealed to the appliance public key (libsodium SealedBox), stored base64. The
  journal can write it while the appliance is locked; only the appliance private key, released by a
  staff keyslot at unlock, opens it. Everything that identifies or treats a patient goes here.

The sealed payload of a printed prescription
--------------------------------------------
The prescribe flow journals each printed ordonnance as::

    journal.append(user=login, action=Action.PRINT_PRESCRIPTION, patient_id=prescription.patient.id,
                   snapshot_seq=seq, sealed=prescription_payload(prescription, pdf_sha256=digest))

A drill print is journaled the same way with ``action=Action.DRILL_PRESCRIPTION`` instead: the
reconciliation export never lists it.
:func:`prescription_payload` builds exactly :class:`PrescriptionPayload` (version 1)::

    {"version": 1,
     "prescription_id": str,                # Prescription.id
     "issued_at": str,                      # ISO 8601 with offset, Prescription.issued_at
     "patient": {"id": str, "birth_name": str, "used_name": str,
                 "birth_given_names": [str, ...], "used_given_name": str,
                 "birth_date": "YYYY-MM-DD" | None, "sex": "female"|"male"|"other"|"unknown",
                 "identity_status": "PROV"|"RECUP"|"VALI"|"QUAL", "ins": str, "ins_oid": str},
     "prescriber": {"id": str, "family_name": str, "given_names": [str, ...], "rpps": str,
                    "qualite": str, "specialty": str},
     "lines": [{"dci": str, "strength": str, "form": str, "route": str, "posology": str,
                "duration_days": int, "renewals": int, "non_substitution": "MTE"|"EFG"|"CIF"|None,
                "ald_related": bool, "brand": str, "source_treatment_id": str}, ...],
     "bizone": bool,
     "pdf_sha256": str}                     # hex digest of the PDF bytes sent to the printer

:func:`read_prescription_payload` checks that shape when reading it back.

Checkpoints
-----------
At each unlock and lock the session calls :meth:`Journal.checkpoint` with the appliance Ed25519
signing key (from the staff keyslot). It appends a ``checkpoint`` entry whose details hold the
number of entries before it, the head hash it follows, the verify key and the signature of
``{"count", "head", "purpose"}`` (canonical JSON). Unattended jobs never sign. :func:`verify_journal`
checks every checkpoint against ``$CONTINUITY_HOME/appliance.sign.pub``, so rewriting the chain up to
a checkpoint, or a journal from another appliance, is detected; a paper copy of the last checkpoint
(:func:`checkpoint_text`) can be checked with ``continuity journal verify --paper COUNT:HASH``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import datetime as dt
import enum
import errno
import fcntl
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypedDict, cast

import nacl.exceptions
import nacl.public
import nacl.signing

from continuity import display
from continuity.errors import JournalBroken, JournalError
from continuity.ins import is_valid_nir
from continuity.model import Prescription

FORMAT_VERSION: Final = 1
GENESIS_HASH: Final = "0" * 64
DEFAULT_RETENTION_MONTHS: Final = 12
SYSTEM_USER: Final = "system"
CHECKPOINT_PURPOSE: Final = "continuity-journal-checkpoint-v1"
JOURNAL_DIR: Final = "journal"
APPLIANCE_PUBLIC_KEY_FILE: Final = "appliance.pub"
APPLIANCE_VERIFY_KEY_FILE: Final = "appliance.sign.pub"
PARIS = display.PRACTICE_TZ  # how times are shown to people; stored in UTC
# Same one-line key file format as keys.py (``prefix:base64``).
APPLIANCE_PUBLIC_PREFIX: Final = "continuity-appliance-v1"
APPLIANCE_SIGN_PREFIX: Final = "continuity-appliance-sign-v1"

_MONTH_FILE = re.compile(r"^(\d{4})-(\d{2})\.jsonl$")
_ACTION = re.compile(r"^[a-z][a-z0-9_.]{1,40}$")
# FHIR logical id syntax (a little wider: some sources use ':' or longer ids): never a name.
_PATIENT_ID = re.compile(r"^[A-Za-z0-9\-.:_]{1,128}$")
_USER = re.compile(r"^[^\s\x00-\x1f]{1,64}$")
# A safety net, not a guarantee: details keys that almost certainly carry patient data.
_FORBIDDEN_DETAIL_KEYS = frozenset(
    {
        "patient", "name", "nom", "birth_name", "used_name", "given_names", "prenom", "prenoms",
        "birth_date", "date_naissance", "ins", "nir", "address", "adresse", "phone", "telephone",
        "lines", "dci", "posology", "diagnosis",
    }
)  # fmt: skip


class Action(enum.StrEnum):
    """The actions other modules journal. Any lowercase identifier is accepted; these are the known ones."""

    UNLOCK = "unlock"
    LOCK = "lock"
    UNLOCK_FAILED = "unlock_failed"
    VIEW_PATIENT = "view_patient"
    PRINT_PRESCRIPTION = "print_prescription"
    DRILL_PRESCRIPTION = "drill_prescription"
    PRINT_SUMMARY = "print_summary"
    EXPORT = "export"
    PULL_ACCEPTED = "pull_accepted"
    PULL_REJECTED = "pull_rejected"
    STAFF_ADDED = "staff_added"
    STAFF_REMOVED = "staff_removed"
    STAFF_REFUSED = "staff_refused"  # a member without the administration key tried to change staff
    DRILL = "drill"
    CHECKPOINT = "checkpoint"
    RETENTION = "retention"
    JOURNAL_REPAIRED = "journal_repaired"


# Actions that show or hand out patient data: what an access report lists.
PATIENT_ACCESS_ACTIONS: Final = frozenset(
    {
        Action.VIEW_PATIENT,
        Action.PRINT_PRESCRIPTION,
        Action.DRILL_PRESCRIPTION,
        Action.PRINT_SUMMARY,
        Action.EXPORT,
        "prescription.issued",
        "prescription.drill",
    }
)


SESSION_ACTIONS: Final = frozenset({Action.UNLOCK, Action.LOCK, Action.UNLOCK_FAILED, Action.DRILL})


# --- the sealed payload of a printed prescription --------------------------------------------------


class PatientPayload(TypedDict):
    id: str
    birth_name: str
    used_name: str
    birth_given_names: list[str]
    used_given_name: str
    birth_date: str | None
    sex: str
    identity_status: str
    ins: str
    ins_oid: str


class PrescriberPayload(TypedDict):
    id: str
    family_name: str
    given_names: list[str]
    rpps: str
    qualite: str
    specialty: str


class LinePayload(TypedDict):
    dci: str
    strength: str
    form: str
    route: str
    posology: str
    duration_days: int
    renewals: int
    non_substitution: str | None
    ald_related: bool
    brand: str
    source_treatment_id: str


class PrescriptionPayload(TypedDict):
    version: int
    prescription_id: str
    issued_at: str
    patient: PatientPayload
    prescriber: PrescriberPayload
    lines: list[LinePayload]
    bizone: bool
    pdf_sha256: str


def prescription_payload(prescription: Prescription, *, pdf_sha256: str) -> PrescriptionPayload:
    """The sealed payload the prescribe flow journals with each printed ordonnance."""
    patient = prescription.patient
    prescriber = prescription.prescriber
    issued_at = prescription.issued_at
    if issued_at.tzinfo is None:
        raise ValueError("Prescription.issued_at must carry a time zone")
    return {
        "version": 1,
        "prescription_id": prescription.id,
        "issued_at": issued_at.isoformat(),
        "patient": {
            "id": patient.id,
            "birth_name": patient.birth_name,
            "used_name": patient.used_name,
            "birth_given_names": list(patient.birth_given_names),
            "used_given_name": patient.used_given_name,
            "birth_date": patient.birth_date.isoformat() if patient.birth_date else None,
            "sex": patient.sex.value,
            "identity_status": patient.identity_status.value,
            "ins": patient.ins,
            "ins_oid": patient.ins_oid,
        },
        "prescriber": {
            "id": prescriber.id,
            "family_name": prescriber.family_name,
            "given_names": list(prescriber.given_names),
            "rpps": prescriber.rpps,
            "qualite": prescriber.qualite,
            "specialty": prescriber.specialty,
        },
        "lines": [
            {
                "dci": line.dci,
                "strength": line.strength,
                "form": line.form,
                "route": line.route,
                "posology": line.posology,
                "duration_days": line.duration_days,
                "renewals": line.renewals,
                "non_substitution": line.non_substitution.value if line.non_substitution else None,
                "ald_related": line.ald_related,
                "brand": line.brand,
                "source_treatment_id": line.source_treatment_id,
            }
            for line in prescription.lines
        ],
        "bizone": prescription.is_bizone,
        "pdf_sha256": pdf_sha256,
    }


def _check_fields(where: str, value: Any, expected: Mapping[str, tuple[type, ...]]) -> None:
    if not isinstance(value, dict):
        raise JournalError(f"{where}: expected an object", message_fr=_UNREADABLE_SEALED_FR)
    missing = set(expected) - set(value)
    if missing:
        raise JournalError(f"{where}: missing {sorted(missing)}", message_fr=_UNREADABLE_SEALED_FR)
    for key, types in expected.items():
        item = value[key]
        # bool is an int in Python: an int field must not accept True.
        if not isinstance(item, types) or (isinstance(item, bool) and bool not in types):
            raise JournalError(f"{where}.{key}: unexpected {type(item).__name__}", message_fr=_UNREADABLE_SEALED_FR)


_UNREADABLE_SEALED_FR = "Une ordonnance du journal a un contenu illisible : elle n'a pas pu être exportée."
_STR = (str,)
_OPT_STR = (str, type(None))


def read_prescription_payload(value: Any) -> PrescriptionPayload:
    """Check that an opened sealed payload has exactly the version 1 prescription shape."""
    _check_fields(
        "payload",
        value,
        {"version": (int,), "prescription_id": _STR, "issued_at": _STR, "patient": (dict,),
         "prescriber": (dict,), "lines": (list,), "bizone": (bool,), "pdf_sha256": _STR},
    )  # fmt: skip
    if value["version"] != 1:
        raise JournalError(f"payload version {value['version']} unknown", message_fr=_UNREADABLE_SEALED_FR)
    _check_fields(
        "payload.patient",
        value["patient"],
        {"id": _STR, "birth_name": _STR, "used_name": _STR, "birth_given_names": (list,),
         "used_given_name": _STR, "birth_date": _OPT_STR, "sex": _STR, "identity_status": _STR,
         "ins": _STR, "ins_oid": _STR},
    )  # fmt: skip
    _check_fields(
        "payload.prescriber",
        value["prescriber"],
        {"id": _STR, "family_name": _STR, "given_names": (list,), "rpps": _STR, "qualite": _STR,
         "specialty": _STR},
    )  # fmt: skip
    for number, line in enumerate(value["lines"], start=1):
        _check_fields(
            f"payload.lines[{number}]",
            line,
            {"dci": _STR, "strength": _STR, "form": _STR, "route": _STR, "posology": _STR,
             "duration_days": (int,), "renewals": (int,), "non_substitution": _OPT_STR,
             "ald_related": (bool,), "brand": _STR, "source_treatment_id": _STR},
        )  # fmt: skip
    return cast(PrescriptionPayload, value)


# --- entries ---------------------------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the form that is hashed, signed and written."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _digest(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(fields)).hexdigest()


@dataclass(frozen=True, slots=True)
class JournalEntry:
    index: int
    timestamp: str  # UTC, ISO 8601 with offset
    user: str
    action: str
    patient_id: str | None
    snapshot_seq: int | None
    details: Mapping[str, Any]
    sealed: str | None  # base64 of the SealedBox ciphertext
    prev_hash: str
    hash: str

    def hashed_fields(self) -> dict[str, Any]:
        return {
            "v": FORMAT_VERSION,
            "index": self.index,
            "ts": self.timestamp,
            "user": self.user,
            "action": self.action,
            "patient": self.patient_id,
            "snapshot_seq": self.snapshot_seq,
            "details": dict(self.details),
            "sealed": self.sealed,
            "prev": self.prev_hash,
        }

    def computed_hash(self) -> str:
        return _digest(self.hashed_fields())

    def to_line(self) -> bytes:
        return canonical_json({**self.hashed_fields(), "hash": self.hash}) + b"\n"

    @property
    def time(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.timestamp)

    @classmethod
    def from_line(cls, line: bytes) -> JournalEntry:
        """Parse one line; ValueError if it is not a well-formed entry (hash not checked here)."""
        raw = json.loads(line.decode("utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not an object")
        expected = {"v", "index", "ts", "user", "action", "patient", "snapshot_seq", "details", "sealed",
                    "prev", "hash"}  # fmt: skip
        if set(raw) != expected:
            raise ValueError(f"fields {sorted(set(raw) ^ expected)} unexpected or missing")
        if raw["v"] != FORMAT_VERSION:
            raise ValueError(f"format version {raw['v']!r}")
        checks: list[tuple[str, tuple[type, ...]]] = [
            ("index", (int,)), ("ts", (str,)), ("user", (str,)), ("action", (str,)),
            ("patient", (str, type(None))), ("snapshot_seq", (int, type(None))), ("details", (dict,)),
            ("sealed", (str, type(None))), ("prev", (str,)), ("hash", (str,)),
        ]  # fmt: skip
        for key, types in checks:
            if not isinstance(raw[key], types) or isinstance(raw[key], bool):
                raise ValueError(f"field {key} has type {type(raw[key]).__name__}")
        dt.datetime.fromisoformat(raw["ts"])
        return cls(
            index=raw["index"],
            timestamp=raw["ts"],
            user=raw["user"],
            action=raw["action"],
            patient_id=raw["patient"],
            snapshot_seq=raw["snapshot_seq"],
            details=raw["details"],
            sealed=raw["sealed"],
            prev_hash=raw["prev"],
            hash=raw["hash"],
        )

    def open_sealed(self, box_key: nacl.public.PrivateKey) -> Any:
        """The sealed details, decrypted with the appliance private key (None if there are none)."""
        if self.sealed is None:
            return None
        try:
            plain = nacl.public.SealedBox(box_key).decrypt(base64.b64decode(self.sealed, validate=True))
            return json.loads(plain.decode("utf-8"))
        except (nacl.exceptions.CryptoError, binascii.Error, ValueError) as error:
            raise JournalError(
                f"entry {self.index}: sealed details do not open with this key ({error})",
                message_fr="Les détails chiffrés du journal ne s'ouvrent pas avec la clé de ce poste.",
            ) from error


def checkpoint_message(count: int, head: str) -> bytes:
    """The bytes a checkpoint signs: the number of entries before it and the hash it follows."""
    return canonical_json({"purpose": CHECKPOINT_PURPOSE, "count": count, "head": head})


def key_fingerprint(verify_key: nacl.signing.VerifyKey) -> str:
    """The appliance key fingerprint as keys.py shows it everywhere: 80 bits of SHA-256, base32, ABCD-EFGH-..."""
    text = base64.b32encode(hashlib.sha256(bytes(verify_key)).digest()[:10]).decode("ascii")
    return "-".join(text[i : i + 4] for i in range(0, 16, 4))


def month_of(path: Path) -> tuple[int, int] | None:
    match = _MONTH_FILE.match(path.name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_failure(path: Path, error: OSError) -> JournalError:
    if error.errno == errno.ENOSPC:
        reason = "le disque est plein"
    elif error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        reason = "le dossier du journal est protégé en écriture"
    else:
        reason = f"erreur système ({error.strerror or error})"
    return JournalError(
        f"cannot write the journal at {path}: {error}",
        message_fr=(
            f"Le journal d'accès ne peut pas être écrit : {reason}. "
            "Par sécurité, les dossiers patients ne sont pas affichés. Appelez le support."
        ),
    )


def _last_line(path: Path) -> tuple[bytes, int]:
    """The last complete line of a file (without its newline) and the length of a torn line after it."""
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        block = 4096
        while True:
            start = max(0, size - block)
            handle.seek(start)
            data = handle.read(size - start)
            end = data.rfind(b"\n")
            if end < 0:
                if start == 0:
                    return b"", len(data)
                block *= 2
                continue
            begin = data.rfind(b"\n", 0, end)
            if begin < 0 and start > 0:
                block *= 2
                continue
            return data[begin + 1 : end], len(data) - end - 1


# --- the journal -----------------------------------------------------------------------------------


class Journal:
    """The appliance journal: append entries under a lock, read them back, checkpoint, apply retention."""

    def __init__(self, home: Path, appliance_public_key: nacl.public.PublicKey | None = None) -> None:
        self.home = Path(home)
        self.directory = self.home / JOURNAL_DIR
        self._public_key = appliance_public_key
        self._pending_repair: dict[str, Any] | None = None
        self._thread_lock = threading.Lock()

    # -- keys

    @property
    def public_key(self) -> nacl.public.PublicKey:
        if self._public_key is None:
            path = self.home / APPLIANCE_PUBLIC_KEY_FILE
            self._public_key = nacl.public.PublicKey(_read_key_file(path, APPLIANCE_PUBLIC_PREFIX))
        return self._public_key

    def seal(self, value: Mapping[str, Any]) -> str:
        ciphertext = nacl.public.SealedBox(self.public_key).encrypt(canonical_json(dict(value)))
        return base64.b64encode(ciphertext).decode("ascii")

    # -- files

    def month_files(self) -> list[Path]:
        """The month files, oldest first."""
        try:
            names = sorted(p for p in self.directory.iterdir() if month_of(p) is not None)
        except FileNotFoundError:
            return []
        except OSError as error:
            raise JournalError(
                f"cannot list {self.directory}: {error}",
                message_fr="Le dossier du journal est illisible.",
            ) from error
        return names

    def _ensure_directory(self) -> None:
        if self.directory.is_dir():
            return
        try:
            self.directory.mkdir(mode=0o700, parents=False, exist_ok=True)
            _fsync_dir(self.home)
        except OSError as error:
            raise _write_failure(self.directory, error) from error

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer: threads of this process (the TUI's workers) and other processes (cron jobs)."""
        with self._thread_lock:
            self._ensure_directory()
            try:
                fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as error:
                raise _write_failure(self.directory / ".lock", error) from error
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    def _tail(self) -> tuple[Path | None, JournalEntry | None]:
        """The newest month file and its last entry (None, None for an empty journal)."""
        for path in reversed(self.month_files()):
            try:
                line, torn = _last_line(path)
                if torn:
                    self._set_torn_tail_aside(path, torn)
                    if not path.exists():
                        continue
                    line, _ = _last_line(path)
            except OSError as error:
                raise JournalError(
                    f"cannot read {path}: {error}",
                    message_fr="Le journal d'accès est illisible : par sécurité, les dossiers ne sont pas affichés.",
                ) from error
            if not line:
                continue
            try:
                return path, JournalEntry.from_line(line)
            except ValueError as error:
                # A write failure for the caller (JournalError), not a silent continuation of a damaged chain.
                raise JournalError(
                    f"{path.name}: last line is not a journal entry ({error})",
                    message_fr=(
                        "La dernière ligne du journal est illisible : le journal ne peut plus être complété "
                        "et les dossiers ne sont pas affichés. Lancez « continuity journal verify » et "
                        "appelez le support."
                    ),
                ) from error
        return None, None

    def _tail_for_write(self) -> tuple[Path | None, JournalEntry | None]:
        """Like _tail, but first journals the setting aside of a torn last line, if there was one."""
        self._pending_repair = None
        tail_path, tail = self._tail()
        if self._pending_repair is not None:
            repair, self._pending_repair = self._pending_repair, None
            tail = self._write_entry(tail_path, tail, SYSTEM_USER, Action.JOURNAL_REPAIRED, None, None, repair, None)
            tail_path = self.directory / f"{tail.time.strftime('%Y-%m')}.jsonl"
            if not tail_path.exists():
                tail_path = self.month_files()[-1]
        return tail_path, tail

    def _set_torn_tail_aside(self, path: Path, torn: int) -> None:
        """A line cut by a power failure: move its bytes aside so the chain can go on, and say so."""
        try:
            with path.open("r+b") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(size - torn)
                fragment = handle.read()
                aside = path.with_name(f"{path.name}.torn-{_now().strftime('%Y%m%dT%H%M%S%f')}")
                fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    os.write(fd, fragment)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                handle.truncate(size - torn)
                handle.flush()
                os.fsync(handle.fileno())
            if size == torn:
                path.unlink()
            _fsync_dir(self.directory)
        except OSError as error:
            raise _write_failure(path, error) from error
        self._pending_repair = {"torn_bytes": torn, "saved_as": aside.name, "file": path.name}

    def append(
        self,
        *,
        user: str,
        action: str,
        patient_id: str | None = None,
        snapshot_seq: int | None = None,
        details: Mapping[str, Any] | None = None,
        sealed: Mapping[str, Any] | None = None,
    ) -> JournalEntry:
        """Append one entry and make it durable.

        ``details`` are written in clear and must never contain patient data; ``sealed`` is sealed to
        the appliance public key. Raises JournalError if the entry could not be made durable: the
        caller must then not show or print patient data.
        """
        _check_entry_arguments(user, action, patient_id, snapshot_seq, details)
        sealed_text = self.seal(sealed) if sealed is not None else None
        clear_details = dict(details or {})
        canonical_json(clear_details)  # refuse what cannot be written before taking the lock
        with self._locked():
            return self._append_locked(user, action, patient_id, snapshot_seq, clear_details, sealed_text)

    def _append_locked(
        self,
        user: str,
        action: str,
        patient_id: str | None,
        snapshot_seq: int | None,
        details: dict[str, Any],
        sealed_text: str | None,
    ) -> JournalEntry:
        tail_path, tail = self._tail_for_write()
        return self._write_entry(tail_path, tail, user, action, patient_id, snapshot_seq, details, sealed_text)

    def _write_entry(
        self,
        tail_path: Path | None,
        tail: JournalEntry | None,
        user: str,
        action: str,
        patient_id: str | None,
        snapshot_seq: int | None,
        details: Mapping[str, Any],
        sealed_text: str | None,
    ) -> JournalEntry:
        now = _now()
        path = self.directory / f"{now.strftime('%Y-%m')}.jsonl"
        # A clock set back must not write into an older month: the chain only goes forward.
        if tail_path is not None and tail_path.name > path.name:
            path = tail_path
        provisional = JournalEntry(
            index=tail.index + 1 if tail else 0,
            timestamp=now.isoformat(timespec="microseconds"),
            user=user,
            action=str(action),
            patient_id=patient_id,
            snapshot_seq=snapshot_seq,
            details=dict(details),
            sealed=sealed_text,
            prev_hash=tail.hash if tail else GENESIS_HASH,
            hash="",
        )
        entry = dataclasses.replace(provisional, hash=provisional.computed_hash())
        self._write_line(path, entry.to_line())
        return entry

    def _write_line(self, path: Path, line: bytes) -> None:
        created = not path.exists()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as error:
            raise _write_failure(path, error) from error
        try:
            size = os.fstat(fd).st_size
            try:
                written = os.write(fd, line)
                if written != len(line):
                    raise OSError(errno.ENOSPC, "short write", str(path))
                os.fsync(fd)
                if created:
                    _fsync_dir(self.directory)
            except OSError as error:
                # Leave no half line behind: verification must still pass on what was written before.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                    os.fsync(fd)
                if created:
                    with contextlib.suppress(OSError):
                        os.unlink(path)
                raise _write_failure(path, error) from error
        finally:
            os.close(fd)

    # -- reading

    def entries(self) -> Iterator[JournalEntry]:
        """Every well-formed entry, oldest first (no verification: see verify_journal)."""
        for path in self.month_files():
            for line in _read_lines(path):
                if not line.endswith(b"\n"):
                    continue
                with contextlib.suppress(ValueError):
                    yield JournalEntry.from_line(line)

    def head(self) -> JournalEntry | None:
        _, tail = self._tail_readonly()
        return tail

    def _tail_readonly(self) -> tuple[Path | None, JournalEntry | None]:
        for path in reversed(self.month_files()):
            line, _ = _last_line(path)
            if line:
                with contextlib.suppress(ValueError):
                    return path, JournalEntry.from_line(line)
        return None, None

    # -- checkpoints

    def checkpoint(self, signing_key: nacl.signing.SigningKey, user: str) -> JournalEntry:
        """Append a checkpoint signed with the appliance key: entry count and head hash so far."""
        _check_entry_arguments(user, Action.CHECKPOINT, None, None, None)
        with self._locked():
            tail_path, tail = self._tail_for_write()
            count = tail.index + 1 if tail else 0
            head = tail.hash if tail else GENESIS_HASH
            signature = signing_key.sign(checkpoint_message(count, head)).signature
            details = {
                "count": count,
                "head": head,
                "key": bytes(signing_key.verify_key).hex(),
                "signature": signature.hex(),
            }
            return self._write_entry(tail_path, tail, user, Action.CHECKPOINT, None, None, details, None)

    def last_checkpoint(self) -> JournalEntry | None:
        found = None
        for entry in self.entries():
            if entry.action == Action.CHECKPOINT:
                found = entry
        return found

    # -- retention

    def expired_months(self, months: int = DEFAULT_RETENTION_MONTHS, *, today: dt.date | None = None) -> list[Path]:
        """Month files older than `months` full months before the current one (the newest is never listed)."""
        today = today or _now().date()
        limit = today.year * 12 + today.month - 1 - months  # months strictly before this go
        doomed = []
        for path in self.month_files()[:-1]:
            year, month = month_of(path) or (0, 0)
            if year * 12 + month - 1 < limit:
                doomed.append(path)
        return doomed

    def apply_retention(self, months: int = DEFAULT_RETENTION_MONTHS, *, today: dt.date | None = None) -> list[str]:
        """Delete month files older than `months` months, after journaling the anchor that keeps the
        rest verifiable. Returns the names of the deleted files. The newest file is always kept."""
        if months < 1:
            raise ValueError("retention must be at least one month")
        with self._locked():
            doomed = self.expired_months(months, today=today)
            if not doomed:
                return []
            # A broken journal is evidence: never delete any of it.
            report = verify_journal(self.home)
            if not report.ok:
                first = report.problems[0]
                raise JournalBroken(
                    f"retention refused: journal broken at {first.where()}",
                    message_fr=f"Le journal est rompu ({first.where()}) : la purge des anciens mois est refusée.",
                )
            last_line, _ = _last_line(doomed[-1])
            try:
                anchor = JournalEntry.from_line(last_line)
            except ValueError as error:
                raise JournalBroken(
                    f"{doomed[-1].name}: last line unreadable, retention not applied",
                    message_fr="Le journal est endommagé : la purge des anciens mois n'a pas été faite.",
                ) from error
            tail_path, tail = self._tail_for_write()
            details = {
                "deleted": [path.name for path in doomed],
                "retention_months": months,
                "anchor_index": anchor.index,
                "anchor_hash": anchor.hash,
            }
            self._write_entry(tail_path, tail, SYSTEM_USER, Action.RETENTION, None, None, details, None)
            try:
                for path in doomed:
                    path.unlink()
                _fsync_dir(self.directory)
            except OSError as error:
                raise _write_failure(self.directory, error) from error
            return [path.name for path in doomed]


def _read_key_file(path: Path, prefix: str) -> bytes:
    """A 32-byte public key file as keys.py writes it: one line ``prefix:base64``."""
    try:
        raw = path.read_bytes()[:1024]
    except FileNotFoundError as error:
        raise JournalError(
            f"{path}: no such key file",
            message_fr=f"Clé du poste introuvable ({path.name}) : la commande « continuity init » a-t-elle été faite ?",
        ) from error
    except OSError as error:
        raise JournalError(f"cannot read {path}: {error}", message_fr="La clé du poste est illisible.") from error
    found, separator, value = raw.decode("ascii", errors="replace").strip().partition(":")
    try:
        key = base64.b64decode(value, validate=True) if separator and found == prefix else b""
    except binascii.Error:
        key = b""
    if len(key) != 32:
        raise JournalError(f"{path}: not a {prefix} key", message_fr=f"La clé du poste est illisible ({path.name}).")
    return key


def read_verify_key(home: Path) -> nacl.signing.VerifyKey | None:
    """The appliance checkpoint verify key, or None if this appliance has none yet."""
    path = Path(home) / APPLIANCE_VERIFY_KEY_FILE
    if not path.exists():
        return None
    return nacl.signing.VerifyKey(_read_key_file(path, APPLIANCE_SIGN_PREFIX))


def _read_lines(path: Path) -> list[bytes]:
    try:
        with path.open("rb") as handle:
            return handle.readlines()
    except OSError as error:
        raise JournalError(
            f"cannot read {path}: {error}", message_fr="Le journal est illisible (droits ou disque ?)."
        ) from error


def _check_entry_arguments(
    user: str, action: str, patient_id: str | None, snapshot_seq: int | None, details: Mapping[str, Any] | None
) -> None:
    if not _USER.match(user):
        raise ValueError(f"user {user!r}: one word of printable characters expected")
    if not _ACTION.match(str(action)):
        raise ValueError(f"action {action!r}: lowercase identifier expected (letters, digits, _ and .)")
    # A valid NIR (15 characters, right check key) is refused: it identifies the person in clear.
    if patient_id is not None and (not _PATIENT_ID.match(patient_id) or is_valid_nir(patient_id)):
        raise ValueError("patient_id must be the snapshot's pseudonymous id (FHIR id syntax), never an INS/NIR")
    if snapshot_seq is not None and (isinstance(snapshot_seq, bool) or snapshot_seq < 0):
        raise ValueError("snapshot_seq must be a non-negative integer")
    if details:
        forbidden = _FORBIDDEN_DETAIL_KEYS & {key.lower() for key in details}
        if forbidden:
            raise ValueError(f"details are stored in clear: keys {sorted(forbidden)} belong in `sealed`")


# --- access reports --------------------------------------------------------------------------------


def access_report(journal: Journal, *, patient_id: str | None = None, user: str | None = None) -> list[JournalEntry]:
    """Who viewed, printed or exported a patient's data, and when (clear fields only).

    With ``patient_id``: the entries about that patient, and the exports that included them. With
    ``user``: that person's sessions and accesses. Both: their intersection.
    """
    found = []
    for entry in journal.entries():
        if user is not None and entry.user != user:
            continue
        if patient_id is not None:
            exported = entry.details.get("patients")
            if entry.patient_id != patient_id and not (isinstance(exported, list) and patient_id in exported):
                continue
        elif entry.action not in PATIENT_ACCESS_ACTIONS and entry.action not in SESSION_ACTIONS:
            continue
        found.append(entry)
    return found


# --- verification ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """One place where the journal does not verify."""

    file: str
    line: int | None  # 1-based line in `file`, None for a whole-file problem
    index: int | None  # entry index, when known
    kind: str  # edited | deleted | reordered | truncated | unreadable | replaced | checkpoint | ...
    message_fr: str

    def where(self) -> str:
        place = self.file + (f", ligne {self.line}" if self.line is not None else "")
        return place + (f" (entrée n° {self.index})" if self.index is not None else "")


@dataclass(slots=True)
class VerifyReport:
    entries: int = 0
    files: list[str] = field(default_factory=list)
    first_index: int | None = None
    head: str = GENESIS_HASH
    checkpoints: int = 0
    last_checkpoint_count: int | None = None
    unsigned_tail: int = 0  # entries after the last valid checkpoint
    problems: list[Problem] = field(default_factory=list)
    notes_fr: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_journal(
    home: Path,
    verify_key: nacl.signing.VerifyKey | None = None,
    *,
    paper: tuple[int, str] | None = None,
) -> VerifyReport:
    """Check the whole chain; every problem found is reported with its file, line and entry index.

    Args:
        verify_key: the appliance checkpoint key; read from ``appliance.sign.pub`` when None.
        paper: (count, head hash) of a checkpoint copied on paper, which must match the chain.

    Raises JournalError when the journal cannot be read at all (as opposed to read and found broken).
    """
    journal = Journal(home, appliance_public_key=None)
    if verify_key is None:
        verify_key = read_verify_key(home)
    report = VerifyReport()
    files = journal.month_files()
    report.files = [path.name for path in files]
    expected_prev: str | None = None  # None until the first entry: it may follow a purge
    expected_index: int | None = None
    hash_at: dict[int, str] = {}  # index -> hash, for checkpoints and the paper copy
    retention_anchor: tuple[int, str] | None = None
    first: tuple[str, JournalEntry] | None = None
    last_valid_checkpoint_count = 0
    previous_ts: dt.datetime | None = None
    gaps: list[tuple[int, int, int]] = []  # (problem position, first missing index, last missing index)

    def problem(file: str, line: int | None, index: int | None, kind: str, message: str) -> None:
        report.problems.append(Problem(file, line, index, kind, message))

    for path in files:
        lines = _read_lines(path)
        if not lines:
            problem(path.name, None, None, "empty", "Fichier de mois vide : son contenu a été effacé.")
            continue
        for number, line in enumerate(lines, start=1):
            if not line.endswith(b"\n"):
                problem(path.name, number, None, "truncated",
                        "Fichier tronqué : la dernière ligne est incomplète "
                        "(fichier coupé ou écriture interrompue).")  # fmt: skip
                continue
            try:
                entry = JournalEntry.from_line(line)
            except (ValueError, UnicodeDecodeError) as error:
                problem(path.name, number, None, "unreadable", f"Ligne illisible ou modifiée ({error}).")
                # Resynchronise on the next readable entry rather than reporting every line after.
                expected_prev = None
                expected_index = None
                continue
            if canonical_json({**entry.hashed_fields(), "hash": entry.hash}) + b"\n" != line:
                problem(path.name, number, entry.index, "edited", "Ligne réécrite (forme non canonique).")
            if entry.computed_hash() != entry.hash:
                problem(path.name, number, entry.index, "edited",
                        "Entrée modifiée : son empreinte ne correspond plus à son contenu.")  # fmt: skip
            if first is None:
                first = (path.name, entry)
            elif expected_index is not None and entry.index != expected_index:
                if entry.index > expected_index:
                    gaps.append((len(report.problems), expected_index, entry.index - 1))
                    problem(path.name, number, entry.index, "deleted",
                            f"Entrée(s) manquante(s) : n° {expected_index} à {entry.index - 1} "
                            "supprimée(s).")  # fmt: skip
                else:
                    problem(path.name, number, entry.index, "reordered",
                            f"Entrée hors d'ordre : n° {entry.index} trouvée là où "
                            f"n° {expected_index} était attendue.")  # fmt: skip
            elif expected_prev is not None and entry.prev_hash != expected_prev:
                kind = "replaced" if number == 1 else "edited"
                message = (
                    "Le fichier de ce mois ne fait pas suite au mois précédent (fichier remplacé ?)."
                    if number == 1
                    else "Chaîne rompue : l'entrée ne suit pas la précédente (entrée précédente modifiée ?)."
                )
                problem(path.name, number, entry.index, kind, message)
            if previous_ts is not None and entry.time < previous_ts - dt.timedelta(minutes=5):
                report.notes_fr.append(f"{path.name}, ligne {number} : l'horloge a reculé ({entry.timestamp}).")
            previous_ts = entry.time
            report.entries += 1
            hash_at[entry.index] = entry.hash
            expected_prev = entry.hash
            expected_index = entry.index + 1
            report.head = entry.hash
            if entry.action == Action.RETENTION:
                anchor = _retention_anchor(entry)
                if anchor is not None and (retention_anchor is None or anchor[0] > retention_anchor[0]):
                    retention_anchor = anchor
            if entry.action == Action.CHECKPOINT:
                report.checkpoints += 1
                if _verify_checkpoint(entry, verify_key, hash_at, path.name, number, problem):
                    last_valid_checkpoint_count = entry.index + 1
                    report.last_checkpoint_count = entry.details.get("count")

    for position, low, high in gaps:
        # Entries missing here but found further on were moved, not deleted.
        if all(index in hash_at for index in range(low, high + 1)):
            moved = report.problems[position]
            report.problems[position] = dataclasses.replace(
                moved,
                kind="reordered",
                message_fr=f"Entrées dans le désordre : n° {low} à {high} déplacée(s) plus loin dans le journal.",
            )
    if first is not None:
        file_name, entry = first
        report.first_index = entry.index
        if entry.index == 0:
            if entry.prev_hash != GENESIS_HASH:
                problem(file_name, 1, 0, "edited", "La première entrée du journal ne commence pas la chaîne.")
        elif retention_anchor is None:
            problem(file_name, 1, entry.index, "deleted",
                    f"Le début du journal manque (entrées 0 à {entry.index - 1}) sans purge enregistrée.")  # fmt: skip
        elif retention_anchor != (entry.index - 1, entry.prev_hash):
            problem(file_name, 1, entry.index, "replaced",
                    "Le plus ancien mois conservé ne correspond pas à la purge enregistrée "
                    "(mois supprimé ou remplacé).")  # fmt: skip
    if paper is not None:
        count, head = paper
        if count == 0:
            matches = head == GENESIS_HASH
        else:
            matches = hash_at.get(count - 1) == head
        if count - 1 not in hash_at and count != 0:
            problem("(copie papier)", None, count - 1, "paper",
                    "Le point de contrôle papier désigne une entrée absente du journal.")  # fmt: skip
        elif not matches:
            problem("(copie papier)", None, count - 1, "paper",
                    "Le journal ne correspond pas au point de contrôle papier : il a été réécrit.")  # fmt: skip
    report.unsigned_tail = report.entries - _count_from(report, last_valid_checkpoint_count)
    if report.checkpoints and verify_key is None:
        report.notes_fr.append(
            "Clé de vérification du poste absente (appliance.sign.pub) : points de contrôle non vérifiés."
        )
    return report


def _count_from(report: VerifyReport, last_valid_checkpoint_count: int) -> int:
    # Entries up to and including the last valid checkpoint, among those still on disk.
    if report.first_index is None:
        return 0
    return max(0, last_valid_checkpoint_count - report.first_index)


def _retention_anchor(entry: JournalEntry) -> tuple[int, str] | None:
    index = entry.details.get("anchor_index")
    digest = entry.details.get("anchor_hash")
    if isinstance(index, int) and isinstance(digest, str):
        return index, digest
    return None


def _verify_checkpoint(
    entry: JournalEntry,
    verify_key: nacl.signing.VerifyKey | None,
    hash_at: Mapping[int, str],
    file: str,
    line: int,
    problem: Any,
) -> bool:
    details = entry.details
    count, head, key, signature = (details.get(k) for k in ("count", "head", "key", "signature"))
    if not (isinstance(count, int) and isinstance(head, str) and isinstance(key, str) and isinstance(signature, str)):
        problem(file, line, entry.index, "checkpoint", "Point de contrôle incomplet.")
        return False
    if count != entry.index or head != entry.prev_hash or (count > 0 and hash_at.get(count - 1, head) != head):
        problem(file, line, entry.index, "checkpoint",
                f"Point de contrôle incohérent : il annonce {count} entrées, "
                f"le journal en a {entry.index} avant lui.")  # fmt: skip
        return False
    if verify_key is None:
        return False
    if key != bytes(verify_key).hex():
        try:
            other = key_fingerprint(nacl.signing.VerifyKey(bytes.fromhex(key)))
        except (ValueError, nacl.exceptions.CryptoError):
            other = "illisible"
        problem(file, line, entry.index, "checkpoint",
                f"Point de contrôle signé par un autre poste (clé {other}, "
                f"ce poste : {key_fingerprint(verify_key)}).")  # fmt: skip
        return False
    try:
        verify_key.verify(checkpoint_message(count, head), bytes.fromhex(signature))
    except (ValueError, nacl.exceptions.BadSignatureError):
        problem(file, line, entry.index, "checkpoint", "Signature du point de contrôle invalide.")
        return False
    return True


def last_signed_checkpoint(home: Path) -> JournalEntry:
    """The newest checkpoint whose signature verifies with this appliance's key (the one worth copying)."""
    verify_key = read_verify_key(home)
    if verify_key is None:
        raise JournalError(
            "no appliance verify key",
            message_fr="La clé de vérification du poste (appliance.sign.pub) est absente : rien à recopier.",
        )
    found = None
    for entry in Journal(home).entries():
        if entry.action != Action.CHECKPOINT:
            continue
        count, head, signature = (entry.details.get(k) for k in ("count", "head", "signature"))
        if count != entry.index or head != entry.prev_hash or not isinstance(signature, str):
            continue
        try:
            verify_key.verify(checkpoint_message(entry.index, entry.prev_hash), bytes.fromhex(signature))
        except (ValueError, nacl.exceptions.BadSignatureError):
            continue
        found = entry
    if found is None:
        raise JournalError(
            "no signed checkpoint in the journal",
            message_fr="Aucun point de contrôle signé dans le journal (il en est créé à chaque ouverture de session).",
        )
    return found


def checkpoint_fields(home: Path) -> dict[str, str]:
    """What a paper copy of the last signed checkpoint shows (French labels, in order)."""
    entry = last_signed_checkpoint(home)
    verify_key = read_verify_key(home)
    head = entry.prev_hash
    return {
        "Date": entry.time.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M:%S (heure de Paris)"),
        "Signé lors de la session de": entry.user,
        "Nombre d'entrées": str(entry.index),
        "Empreinte de tête": " ".join(head[i : i + 8] for i in range(0, len(head), 8)),
        "Clé du poste": key_fingerprint(verify_key) if verify_key else "(absente)",
        "Signature": str(entry.details["signature"]),
        "Pour vérifier": f"continuity journal verify --paper {entry.index}:{head}",
    }


def checkpoint_text(home: Path) -> str:
    """A paper copy of the last signed checkpoint, to keep off the machine."""
    fields = checkpoint_fields(home)
    width = max(len(label) for label in fields)
    lines = ["CONTINUITY — point de contrôle du journal d'accès", "À conserver hors du poste (classeur, coffre).", ""]
    lines += [f"{label:<{width}} : {value}" for label, value in fields.items()]
    return "\n".join(lines) + "\n"


def checkpoint_pdf(home: Path) -> bytes:
    """The same paper copy as a printable page (forms/checkpoint.html)."""
    from continuity import pdf

    fields = checkpoint_fields(home)
    return pdf.render_form(
        "checkpoint.html",
        {
            "title": "Point de contrôle du journal d'accès",
            "fields": fields,
            "snapshot_line": "Copie papier d'un point de contrôle signé : à conserver hors du poste.",
        },
    )
