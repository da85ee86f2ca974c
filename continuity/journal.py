"""The hash-chained, append-only journal of everything viewed and issued on the appliance.

Layout
------
``$CONTINUITY_HOME/journal/YYYY-MM.jsonl``: one file per UTC month, one JSON object per line, in the
canonical form (sorted keys, no whitespace, UTF-8). Every line is an entry::

    {"action": "view_patient", "details": {}, "hash": "<sha256 hex>", "index": 41,
     "patient": "pat-0042", "prev": "<hash of entry 40>", "sealed": null,
     "snapshot_seq": 17, "ts": "2026-11-28T08:14:03.512210+00:00", "user": "dr.martin", "v": 1}

An entry written by a desk session over SSH (continuity/desk.py) also has ``"desk": "salle-2"``; the
field is absent otherwise, so entries written before desks existed hash and verify as they did.

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
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypedDict, cast

import nacl.exceptions
import nacl.public
import nacl.signing

from continuity import display, files
from continuity.errors import JournalBroken, JournalError
from continuity.ins import is_valid_nir
from continuity.model import Prescription

log = logging.getLogger(__name__)

FORMAT_VERSION: Final = 1
GENESIS_HASH: Final = "0" * 64
DEFAULT_RETENTION_MONTHS: Final = 12
SYSTEM_USER: Final = "system"
CHECKPOINT_PURPOSE: Final = "continuity-journal-checkpoint-v2"
JOURNAL_DIR: Final = "journal"
# Outside journal/: deleting the journal's files does not delete what says where it ended.
HEAD_FILE: Final = "journal.head"
CHECKPOINT_KEY_FILE: Final = "journal-key.json"
# CNIL recommendation 2021-122: access logs are kept 6 months to 1 year. A purge may never remove
# less old entries than this, whatever its entry says (a forged purge cannot hide last week).
MIN_RETENTION_MONTHS: Final = 6
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
# Same rule as continuity.desk.DESK_NAME (not imported: the journal depends on nothing above it).
_DESK = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
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
    WITNESS_SENT = "witness_sent"
    WITNESS_FAILED = "witness_failed"
    SEARCH = "search"


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


SESSION_ACTIONS: Final = frozenset({Action.UNLOCK, Action.LOCK, Action.UNLOCK_FAILED, Action.DRILL, Action.SEARCH})


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
    # The desk (consultation room) the entry was written from, for sessions opened over SSH
    # (continuity/desk.py). Optional and hashed only when present: entries without it are unchanged.
    desk: str | None = None

    def hashed_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
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
        if self.desk is not None:
            fields["desk"] = self.desk
        return fields

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
        if "desk" in raw:
            expected.add("desk")
            if not isinstance(raw["desk"], str) or _DESK.fullmatch(raw["desk"]) is None:
                raise ValueError("field desk is not a desk name")
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
            desk=raw.get("desk"),
        )

    def open_sealed(self, box_key: nacl.public.PrivateKey | Sequence[nacl.public.PrivateKey]) -> Any:
        """The sealed details, decrypted with the appliance private key (None if there are none).

        Several keys may be given: the current one and those before the appliance key rotations
        (`ApplianceSecrets.all_box_keys`); entries written before a rotation were sealed to an older one.
        """
        if self.sealed is None:
            return None
        candidates = [box_key] if isinstance(box_key, nacl.public.PrivateKey) else list(box_key)
        error: Exception = ValueError("no key")
        for key in candidates:
            try:
                plain = nacl.public.SealedBox(key).decrypt(base64.b64decode(self.sealed, validate=True))
                return json.loads(plain.decode("utf-8"))
            except (nacl.exceptions.CryptoError, binascii.Error, ValueError) as failure:
                error = failure
        raise JournalError(
            f"entry {self.index}: sealed details do not open with this key ({error})",
            message_fr="Les détails chiffrés du journal ne s'ouvrent pas avec la clé de ce poste.",
        ) from error


def checkpoint_message(
    count: int,
    head: str,
    generation: int,
    key: nacl.signing.VerifyKey,
    following: nacl.signing.VerifyKey,
    appliance_key: nacl.signing.VerifyKey,
) -> bytes:
    """The bytes a checkpoint signs (twice: forward key and appliance key): the number of entries
    before it, the hash it follows, and the chain of forward keys."""
    return canonical_json(
        {
            "purpose": CHECKPOINT_PURPOSE,
            "count": count,
            "head": head,
            "generation": generation,
            "key": bytes(key).hex(),
            "next": bytes(following).hex(),
            "appliance_key": bytes(appliance_key).hex(),
        }
    )


def resealed_checkpoint_key(
    home: Path, old_box_key: nacl.public.PrivateKey, new_public: nacl.public.PublicKey
) -> bytes | None:
    """`journal-key.json` sealed to a new appliance box key (a rotation), None if there is none to carry."""
    state = _read_checkpoint_key_state(Path(home) / CHECKPOINT_KEY_FILE)
    if state is None:
        return None
    try:
        seed = nacl.public.SealedBox(old_box_key).decrypt(base64.b64decode(state["sealed_seed"], validate=True))
    except (nacl.exceptions.CryptoError, binascii.Error, ValueError) as error:
        log.warning("checkpoint key not resealed (%s): the chain will restart", error)
        return None
    state["sealed_seed"] = base64.b64encode(nacl.public.SealedBox(new_public).encrypt(seed)).decode("ascii")
    return canonical_json(state) + b"\n"


@dataclass(frozen=True, slots=True)
class HeadRecord:
    """Where the journal ended when it was last written (`journal.head`, outside journal/)."""

    index: int
    hash: str
    timestamp: str


HEAD_SLOT = 512


def write_head_record(home: Path, entry: JournalEntry) -> None:
    """Record `entry` as the journal's head in `journal.head`: two 512-byte slots written in turn in
    place (entry index even: the first, odd: the second), each with its own check, so a write cut by
    a power failure spoils one slot and the other still names the entry before."""
    record = {"format": "continuity-journal-head", "version": 2, "index": entry.index, "hash": entry.hash,
              "ts": entry.timestamp}  # fmt: skip
    body = canonical_json({**record, "check": hashlib.sha256(canonical_json(record)).hexdigest()[:32]})
    slot = body.ljust(HEAD_SLOT - 1, b" ") + b"\n"
    fd = os.open(Path(home) / HEAD_FILE, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        os.pwrite(fd, slot, (entry.index % 2) * HEAD_SLOT)
    finally:
        os.close(fd)


def read_head_record(home: Path) -> HeadRecord | None:
    """The head record, None if there is none; JournalBroken if it exists but no slot is a valid record."""
    path = Path(home) / HEAD_FILE
    try:
        raw = path.read_bytes()[: 2 * HEAD_SLOT]
    except FileNotFoundError:
        return None
    except OSError as error:
        raise JournalError(
            f"cannot read {path}: {error}", message_fr="L'enregistrement de fin du journal est illisible."
        ) from error
    found: list[HeadRecord] = []
    for start in range(0, len(raw), HEAD_SLOT):
        with contextlib.suppress(UnicodeDecodeError, ValueError, AttributeError, KeyError, TypeError):
            value = json.loads(raw[start : start + HEAD_SLOT].decode("utf-8"))
            check = value.pop("check")
            if hashlib.sha256(canonical_json(value)).hexdigest()[:32] != check:
                continue
            if value.get("format") != "continuity-journal-head" or value.get("version") != 2:
                continue
            index, digest, moment = value["index"], value["hash"], value["ts"]
            if isinstance(index, int) and not isinstance(index, bool) and isinstance(digest, str) and isinstance(
                moment, str
            ):
                found.append(HeadRecord(index, digest, moment))
    if not found:
        raise JournalBroken(
            f"{path}: no valid journal head record",
            message_fr="L'enregistrement de fin du journal (journal.head) a été modifié ou endommagé.",
        )
    return max(found, key=lambda record: record.index)


def _read_checkpoint_key_state(path: Path) -> dict[str, Any] | None:
    """`journal-key.json` (or its pending copy), None if absent or not of the expected shape."""
    try:
        value = json.loads(path.read_bytes()[:4096].decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        log.warning("%s unreadable: %s", path, error)
        return None
    expected = {"format", "version", "generation", "public", "sealed_seed", "announced_at"}
    if not isinstance(value, dict) or set(value) != expected or value["format"] != "continuity-journal-key":
        log.warning("%s is not a checkpoint key file", path)
        return None
    if not isinstance(value["generation"], int) or not isinstance(value["public"], str):
        return None
    return value


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


class _LineNotWritten(Exception):
    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


# --- the disk reserve ------------------------------------------------------------------------------

RESERVE_FILE: Final = "journal-reserve"
RESERVE_USED_FILE: Final = "journal-reserve.used"
RESERVE_BYTES = 4 * 1024 * 1024  # thousands of entries: a day of work while someone frees space
RESERVE_MARGIN = 16 * 1024 * 1024  # re-created only when this much is free besides it


def ensure_reserve(home: Path, size: int | None = None, margin: int | None = None) -> bool:
    """Preallocate the journal's disk reserve in the home (or re-create it once space is back).

    Returns True when the reserve is in place. Never makes a nearly full disk fuller: without
    `size + RESERVE_MARGIN` free, nothing is written and a used reserve stays marked used.
    """
    home = Path(home)
    size = RESERVE_BYTES if size is None else size
    margin = RESERVE_MARGIN if margin is None else margin
    path = home / RESERVE_FILE
    with contextlib.suppress(OSError):
        if path.stat().st_size >= size and not (home / RESERVE_USED_FILE).exists():
            return True
    try:
        if shutil.disk_usage(home).free < size + margin:
            return False
        temp = home / f".{RESERVE_FILE}.{os.getpid()}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.posix_fallocate(fd, 0, size)  # real blocks, not a sparse file
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
        with contextlib.suppress(FileNotFoundError):
            (home / RESERVE_USED_FILE).unlink()
        _fsync_dir(home)
    except OSError as error:
        log.warning("journal disk reserve not created in %s: %s", home, error)
        with contextlib.suppress(OSError):
            (home / f".{RESERVE_FILE}.{os.getpid()}.tmp").unlink()
        return False
    return True


def release_reserve(home: Path, writing: str) -> bool:
    """Give the reserve's space back to the journal (disk full). False when there was none to give."""
    home = Path(home)
    try:
        (home / RESERVE_FILE).unlink()
        _fsync_dir(home)
    except OSError:
        return False
    log.critical("disk full: the journal disk reserve was released so that the journal can go on; free space now")
    marker = {"released_at": _now().isoformat(timespec="seconds"), "while_writing": writing}
    with contextlib.suppress(OSError):
        (home / RESERVE_USED_FILE).write_bytes(canonical_json(marker) + b"\n")
    return True


def reserve_problem(home: Path) -> str | None:
    """For `continuity status` (CRITICAL): the reserve was used, the disk is (nearly) full."""
    marker = Path(home) / RESERVE_USED_FILE
    if not marker.exists():
        return None
    try:
        since = json.loads(marker.read_bytes()[:1024]).get("released_at", "")
    except (OSError, ValueError, AttributeError):
        since = ""
    return (
        f"disque plein : la réserve du journal est utilisée{' depuis ' + since if since else ''} ; libérez "
        "de la place dans le dossier de l'application (elle se reconstitue ensuite à l'ouverture de session)"
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

    def __init__(
        self, home: Path, appliance_public_key: nacl.public.PublicKey | None = None, *, desk: str | None = None
    ) -> None:
        """`desk`: the desk this process serves (an SSH session): recorded in every entry it writes."""
        if desk is not None and _DESK.fullmatch(desk) is None:
            raise ValueError(f"invalid desk name {desk!r}")
        self.desk = desk
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

    def can_seal(self) -> bool:
        """True when the appliance public key is there to seal patient details to."""
        try:
            self.public_key  # noqa: B018 - reads and caches the key file
        except JournalError:
            return False
        return True

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
        """Like _tail, but first journals what was found wrong at the end of the journal, if anything.

        A torn last line is set aside. Then the last entry is compared with the head record: the
        record names the last entry written (or the one before, after a crash), so a journal that
        ends elsewhere lost entries. Either way a `journal_repaired` entry says what was found
        (`entries_lost`), and the chain goes on after it — numbered after the recorded head when the
        whole journal is gone — so care can continue and `journal verify` reports the loss for ever:
        the next write never makes a truncation look clean.
        """
        self._pending_repair = None
        tail_path, tail = self._tail()
        repair: dict[str, Any] = self._pending_repair or {}
        self._pending_repair = None
        try:
            recorded = read_head_record(self.home)
            unreadable = False
        except JournalBroken:
            recorded, unreadable = None, True
        found_index, found_hash = (tail.index, tail.hash) if tail else (-1, GENESIS_HASH)
        lost = unreadable
        if recorded is not None:
            lost = (
                recorded.index > found_index
                or (recorded.index == found_index and recorded.hash != found_hash)
                or (tail is not None and recorded.index == found_index - 1 and tail.prev_hash != recorded.hash)
            )
        if not repair and not lost:
            return tail_path, tail
        if recorded is not None:
            repair["head_record"] = {"index": recorded.index, "hash": recorded.hash, "ts": recorded.timestamp}
        repair["entries_lost"] = lost
        repair["found_index"] = found_index
        if unreadable:
            repair["head_record_unreadable"] = True
        if lost:
            log.error("journal ends at entry %d but its head record says %s: entries were removed",
                      found_index, recorded.index if recorded else "(unreadable)")  # fmt: skip
        if tail is None and recorded is not None:
            # Every month file is gone: go on numbering after the recorded head, so the loss stays visible.
            tail = JournalEntry(recorded.index, recorded.timestamp, SYSTEM_USER, Action.JOURNAL_REPAIRED, None, None,
                                {}, None, GENESIS_HASH, recorded.hash)  # fmt: skip
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
            desk=self.desk,
        )
        entry = dataclasses.replace(provisional, hash=provisional.computed_hash())
        self._write_line(path, entry.to_line())
        self._record_head(entry)
        return entry

    def _record_head(self, entry: JournalEntry) -> None:
        """Where the journal ends, outside journal/: a truncation or a deleted month then shows.

        Written after the line is durable, so the record never runs ahead of the journal. It is not
        fsynced itself (one fsync per entry is the journal's cost): after a power cut it may lag
        behind, which verification accepts. A failure here does not undo the entry.
        """
        try:
            write_head_record(self.home, entry)
        except OSError as error:
            log.warning("journal head record not updated (entry %d is durable): %s", entry.index, error)

    def _write_line(self, path: Path, line: bytes) -> None:
        try:
            self._write_line_once(path, line)
        except _LineNotWritten as failure:
            # Disk full: release the reserve to the journal and try once more, so care can go on
            # (every access still journaled) while someone frees space; status is CRITICAL meanwhile.
            if failure.error.errno != errno.ENOSPC or not release_reserve(self.home, path.name):
                raise _write_failure(path, failure.error) from failure.error
            try:
                self._write_line_once(path, line)
            except _LineNotWritten as again:
                raise _write_failure(path, again.error) from again.error

    def _write_line_once(self, path: Path, line: bytes) -> None:
        created = not path.exists()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as error:
            raise _LineNotWritten(error) from error
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
                raise _LineNotWritten(error) from error
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

    def prescriptions_since(self, patient_id: str, since: dt.datetime) -> list[JournalEntry]:
        """The ordonnances printed for this patient from `since` on (the data's time: during this outage).

        Read at every patient opening, so only the month files from `since`'s month are read, and a
        line is parsed only when it names both the action and the patient.
        """
        first = (since.year, since.month)
        action = f'"action":"{Action.PRINT_PRESCRIPTION.value}"'.encode()
        patient = canonical_json(patient_id)
        found: list[JournalEntry] = []
        for path in self.month_files():
            month = month_of(path)
            if month is None or month < first:
                continue
            for line in _read_lines(path):
                if action not in line or patient not in line or not line.endswith(b"\n"):
                    continue
                with contextlib.suppress(ValueError):
                    entry = JournalEntry.from_line(line)
                    if entry.patient_id == patient_id and entry.action == Action.PRINT_PRESCRIPTION and (
                        dt.datetime.fromisoformat(entry.timestamp) >= since
                    ):
                        found.append(entry)
        return found

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

    def checkpoint(
        self, signing_key: nacl.signing.SigningKey, user: str, *, box_key: nacl.public.PrivateKey
    ) -> JournalEntry:
        """Append a checkpoint: the entry count and head hash so far, signed with a forward-only key.

        Each checkpoint is signed with the key the previous checkpoint announced (generation g) and
        announces the next one (g + 1), whose seed is kept in `journal-key.json` sealed to the appliance
        key; the seed of g is then overwritten. Whoever unlocks later holds only the key of the *next*
        checkpoint: they cannot re-sign the past, so a rewrite before the last checkpoint shows. The
        appliance signing key (`signing_key`, every staff slot releases it) also signs the same bytes:
        it names the appliance to the witness and certifies the first key of the chain.
        """
        _check_entry_arguments(user, Action.CHECKPOINT, None, None, None)
        with self._locked():
            tail_path, tail = self._tail_for_write()
            count = tail.index + 1 if tail else 0
            head = tail.hash if tail else GENESIS_HASH
            resumed = self._checkpoint_key(box_key)
            generation, current = resumed if resumed is not None else (0, nacl.signing.SigningKey.generate())
            following = nacl.signing.SigningKey.generate()
            message = checkpoint_message(
                count, head, generation, current.verify_key, following.verify_key, signing_key.verify_key
            )
            details = {
                "count": count,
                "head": head,
                "generation": generation,
                "key": bytes(current.verify_key).hex(),
                "next": bytes(following.verify_key).hex(),
                "appliance_key": bytes(signing_key.verify_key).hex(),
                "signature": current.sign(message).signature.hex(),
                "appliance_signature": signing_key.sign(message).signature.hex(),
            }
            pending = self.home / (CHECKPOINT_KEY_FILE + ".pending")
            state = {
                "format": "continuity-journal-key",
                "version": 1,
                "generation": generation + 1,
                "public": bytes(following.verify_key).hex(),
                "sealed_seed": base64.b64encode(
                    nacl.public.SealedBox(self.public_key).encrypt(bytes(following))
                ).decode("ascii"),
                "announced_at": count,
            }
            try:
                files.write_atomic(pending, canonical_json(state) + b"\n", 0o600)
            except OSError as error:
                raise _write_failure(pending, error) from error
            entry = self._write_entry(tail_path, tail, user, Action.CHECKPOINT, None, None, details, None)
            try:
                os.replace(pending, self.home / CHECKPOINT_KEY_FILE)
                _fsync_dir(self.home)
            except OSError as error:
                # The entry is durable; the pending key is adopted by the next checkpoint.
                log.warning("checkpoint key not switched yet: %s", error)
            return entry

    def _checkpoint_key(self, box_key: nacl.public.PrivateKey) -> tuple[int, nacl.signing.SigningKey] | None:
        """The key the last checkpoint announced, or None when the chain must (re)start.

        A pending key (written before its checkpoint entry) is adopted when the journal's last
        checkpoint announces it, dropped otherwise. A missing, unreadable or out-of-step key file
        restarts the chain: verification reports the restart.
        """
        last = self._last_checkpoint_entry()
        announced = last.details.get("next") if last is not None else None
        pending = self.home / (CHECKPOINT_KEY_FILE + ".pending")
        key_file = self.home / CHECKPOINT_KEY_FILE
        if pending.exists():
            state = _read_checkpoint_key_state(pending)
            with contextlib.suppress(OSError):
                if state is not None and state.get("public") == announced:
                    os.replace(pending, key_file)
                else:
                    pending.unlink()
                _fsync_dir(self.home)
        state = _read_checkpoint_key_state(key_file)
        if state is None or last is None:
            return None
        if state["public"] != announced or state["generation"] != last.details.get("generation", -2) + 1:
            log.warning("checkpoint key file out of step with the journal: the checkpoint chain restarts")
            return None
        try:
            seed = nacl.public.SealedBox(box_key).decrypt(base64.b64decode(state["sealed_seed"], validate=True))
            key = nacl.signing.SigningKey(seed)
        except (nacl.exceptions.CryptoError, binascii.Error, ValueError) as error:
            log.warning("checkpoint key does not open with this appliance key (%s): the chain restarts", error)
            return None
        if bytes(key.verify_key).hex() != state["public"]:
            return None
        return int(state["generation"]), key

    def _last_checkpoint_entry(self) -> JournalEntry | None:
        """The newest checkpoint entry, read from the end (checkpoints are frequent)."""
        for path in reversed(self.month_files()):
            for line in reversed(_read_lines(path)):
                if b'"action":"checkpoint"' not in line or not line.endswith(b"\n"):
                    continue
                with contextlib.suppress(ValueError, UnicodeDecodeError):
                    entry = JournalEntry.from_line(line)
                    if entry.action == Action.CHECKPOINT:
                        return entry
        return None

    def last_checkpoint(self) -> JournalEntry | None:
        return self._last_checkpoint_entry()

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
        if months < MIN_RETENTION_MONTHS:
            raise JournalError(
                f"retention must be at least {MIN_RETENTION_MONTHS} months",
                message_fr=f"Le journal se conserve au moins {MIN_RETENTION_MONTHS} mois (recommandation CNIL).",
            )
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
                # The whole last deleted entry: its time is then proven (its hash is what the oldest
                # remaining entry follows), so verification can check the purge was due.
                "anchor_entry": anchor.to_line().decode("utf-8").rstrip("\n"),
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
    kind: str  # edited | deleted | reordered | truncated | unreadable | replaced | checkpoint | head | ...
    message_fr: str

    def where(self) -> str:
        place = self.file + (f", ligne {self.line}" if self.line is not None else "")
        return place + (f" (entrée n° {self.index})" if self.index is not None else "")


@dataclass(frozen=True, slots=True)
class WitnessedHead:
    """What the publisher's witness last saw from this appliance (witness.py reads it from a receipt)."""

    received_at: str
    appliance_key: str  # hex of the appliance verify key that signed the checkpoint
    signed_count: int  # the checkpoint: entries before it and the hash it follows
    signed_head: str
    reported_index: int | None  # the unsigned head the nightly job reported with it
    reported_hash: str | None
    roster_serial: int | None = None
    roster_digest: str | None = None


@dataclass(slots=True)
class VerifyReport:
    entries: int = 0
    files: list[str] = field(default_factory=list)
    first_index: int | None = None
    last_index: int | None = None
    head: str = GENESIS_HASH
    checkpoints: int = 0
    last_checkpoint_count: int | None = None
    last_checkpoint: JournalEntry | None = None  # the newest checkpoint that verified
    unsigned_tail: int = 0  # entries after the last valid checkpoint
    witnessed: WitnessedHead | None = None
    problems: list[Problem] = field(default_factory=list)
    notes_fr: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Walk:
    """What the walk through the chain remembers for the checks made at the end."""

    hash_at: dict[int, str] = field(default_factory=dict)
    checkpoint_expected_key: str | None = None  # the forward key the last checkpoint announced
    appliance_keys: set[str] = field(default_factory=set)  # appliance verify keys of this appliance (hex)
    unchecked_appliance_signatures: list[tuple[JournalEntry, str, int]] = field(default_factory=list)
    retentions: list[tuple[JournalEntry, str, int, dt.datetime | None]] = field(default_factory=list)
    admin_key: str | None = None  # the administration key of the last journaled roster (base64)
    current_key: str | None = None  # appliance.sign.pub (hex)
    rotations: list[tuple[str, str]] = field(default_factory=list)  # (old, new) appliance keys, signed
    roster: tuple[int, str, int] | None = None  # serial, digest, entry index of the last journaled roster
    repairs: list[tuple[JournalEntry, str, int]] = field(default_factory=list)
    valid_checkpoints: list[JournalEntry] = field(default_factory=list)
    checkpoint_indexes: set[int] = field(default_factory=set)  # every checkpoint entry, valid or not
    after_purge: bool = False  # the journal on disk starts after entry 0


def verify_journal(
    home: Path,
    verify_key: nacl.signing.VerifyKey | None = None,
    *,
    paper: tuple[int, str] | None = None,
    witness: WitnessedHead | None = None,
    now: dt.datetime | None = None,
    local_witness: bool = True,
) -> VerifyReport:
    """Check the whole chain and everything outside it that says where it ended.

    Every problem found is reported with its file, line and entry index. Beyond the hash chain:
    the forward-signed checkpoints, the head record (`journal.head`), the checkpoint key file, the
    roster changes (signed by the administration key), each purge (only what was due), repaired
    torn lines, and optionally a paper copy (`paper`) and the publisher's witness (`witness`).

    Args:
        verify_key: the appliance verify key; read from ``appliance.sign.pub`` when None.
        paper: (count, head hash) of a checkpoint copied on paper, which must match the chain.
        witness: the last head the publisher witnessed; the journal must extend it.
        now: the time purges and entries are compared with (tests).
        local_witness: also check the last receipt the nightly pull kept (``witness/receipt.json``).

    Raises JournalError when the journal cannot be read at all (as opposed to read and found broken).
    """
    journal = Journal(home, appliance_public_key=None)
    if verify_key is None:
        verify_key = read_verify_key(home)
    now = now or _now()
    report = VerifyReport()
    files_found = journal.month_files()
    report.files = [path.name for path in files_found]
    walk = _Walk()
    if verify_key is not None:
        walk.current_key = bytes(verify_key).hex()
        walk.appliance_keys.add(walk.current_key)
    expected_prev: str | None = None  # None until the first entry: it may follow a purge
    expected_index: int | None = None
    first: tuple[str, JournalEntry] | None = None
    last_valid_checkpoint_count = 0
    previous_ts: dt.datetime | None = None
    gaps: list[tuple[int, int, int]] = []  # (problem position, first missing index, last missing index)

    def problem(file: str, line: int | None, index: int | None, kind: str, message: str) -> None:
        report.problems.append(Problem(file, line, index, kind, message))

    for path in files_found:
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
                walk.after_purge = entry.index > 0
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
            if entry.action == Action.RETENTION:
                walk.retentions.append((entry, path.name, number, previous_ts))
            previous_ts = entry.time
            report.entries += 1
            walk.hash_at[entry.index] = entry.hash
            expected_prev = entry.hash
            expected_index = entry.index + 1
            report.head = entry.hash
            report.last_index = entry.index
            if entry.action == Action.CHECKPOINT:
                report.checkpoints += 1
                walk.checkpoint_indexes.add(entry.index)
                if _verify_checkpoint(entry, walk, path.name, number, problem):
                    walk.valid_checkpoints.append(entry)
            elif entry.action in (Action.STAFF_ADDED, Action.STAFF_REMOVED, APPLIANCE_KEY_ROTATED):
                _verify_roster_change(entry, walk, path.name, number, problem)
            elif entry.action == Action.UNLOCK:
                serial = entry.details.get("roster_serial")
                if isinstance(serial, int) and walk.roster is not None and serial < walk.roster[0]:
                    problem(path.name, number, entry.index, "roster",
                            f"Session ouverte avec une liste du personnel périmée (version {serial}, "
                            f"la dernière journalisée est la {walk.roster[0]}) : liste restaurée d'une "
                            "sauvegarde pour faire revenir un membre retiré ?")  # fmt: skip
            elif entry.action == Action.JOURNAL_REPAIRED:
                walk.repairs.append((entry, path.name, number))

    for position, low, high in gaps:
        # Entries missing here but found further on were moved, not deleted.
        if all(index in walk.hash_at for index in range(low, high + 1)):
            moved = report.problems[position]
            report.problems[position] = dataclasses.replace(
                moved,
                kind="reordered",
                message_fr=f"Entrées dans le désordre : n° {low} à {high} déplacée(s) plus loin dans le journal.",
            )
    for old, new in reversed(walk.rotations):  # the keys this appliance had, back from the current one
        if new in walk.appliance_keys:
            walk.appliance_keys.add(old)
    for entry, file_name, number in walk.unchecked_appliance_signatures if verify_key is not None else []:
        if not _check_appliance_signature(entry, walk, file_name, number, problem):
            walk.valid_checkpoints.remove(entry)
    if walk.valid_checkpoints:
        report.last_checkpoint = walk.valid_checkpoints[-1]
        report.last_checkpoint_count = report.last_checkpoint.index
        last_valid_checkpoint_count = report.last_checkpoint.index + 1
    if first is not None:
        file_name, entry = first
        report.first_index = entry.index
        if entry.index == 0:
            if entry.prev_hash != GENESIS_HASH:
                problem(file_name, 1, 0, "edited", "La première entrée du journal ne commence pas la chaîne.")
        else:
            _check_purge(entry, file_name, walk, now, problem)
    _check_repairs(walk, report)
    _check_head_record(home, report, walk, problem)
    _check_checkpoint_key_file(home, report, walk, problem)
    _check_roster_file(home, report, walk, problem)
    if paper is not None:
        count, head = paper
        if count == 0:
            matches = head == GENESIS_HASH
        else:
            matches = walk.hash_at.get(count - 1) == head
        if count - 1 not in walk.hash_at and count != 0:
            problem("(copie papier)", None, count - 1, "paper",
                    "Le point de contrôle papier désigne une entrée absente du journal.")  # fmt: skip
        elif not matches:
            problem("(copie papier)", None, count - 1, "paper",
                    "Le journal ne correspond pas au point de contrôle papier : il a été réécrit.")  # fmt: skip
    local = _local_witness(home, problem) if local_witness else None
    for seen in (local, witness):
        if seen is not None:
            report.witnessed = seen
            _check_witnessed(seen, report, walk, problem)
    report.unsigned_tail = report.entries - _count_from(report, last_valid_checkpoint_count)
    if report.checkpoints and verify_key is None:
        report.notes_fr.append(
            "Clé de vérification du poste absente (appliance.sign.pub) : points de contrôle non vérifiés."
        )
    return report


APPLIANCE_KEY_ROTATED: Final = "appliance_key_rotated"


def _count_from(report: VerifyReport, last_valid_checkpoint_count: int) -> int:
    # Entries up to and including the last valid checkpoint, among those still on disk.
    if report.first_index is None:
        return 0
    return max(0, last_valid_checkpoint_count - report.first_index)


def _verify_checkpoint(entry: JournalEntry, walk: _Walk, file: str, line: int, problem: Any) -> bool:
    """A checkpoint signed by the forward key the previous one announced (or the first of the chain)."""
    details = entry.details
    fields = ("count", "head", "generation", "key", "next", "appliance_key", "signature", "appliance_signature")
    values = [details.get(name) for name in fields]
    count, head, generation = values[0], values[1], values[2]
    if not (isinstance(count, int) and isinstance(generation, int) and all(isinstance(v, str) for v in
                                                                            [head, *values[3:]])):
        problem(file, line, entry.index, "checkpoint", "Point de contrôle incomplet ou d'un ancien format.")
        return False
    key, following, appliance_key, signature = (str(v) for v in values[3:7])
    if count != entry.index or head != entry.prev_hash or (count > 0 and walk.hash_at.get(count - 1, head) != head):
        problem(file, line, entry.index, "checkpoint",
                f"Point de contrôle incohérent : il annonce {count} entrées, "
                f"le journal en a {entry.index} avant lui.")  # fmt: skip
        return False
    announced, walk.checkpoint_expected_key = walk.checkpoint_expected_key, following
    if generation == 0:
        if announced is not None:
            problem(file, line, entry.index, "checkpoint",
                    "La chaîne des points de contrôle recommence ici : la clé de point de contrôle "
                    "(journal-key.json) a été perdue, restaurée d'une sauvegarde, ou le journal a été "
                    "réécrit avec une nouvelle chaîne.")  # fmt: skip
            return False
    elif announced is None and walk.after_purge and not walk.valid_checkpoints:
        pass  # the checkpoint that announced it was purged with its month: the chain is taken up here
    elif announced is None:
        problem(file, line, entry.index, "checkpoint",
                "Point de contrôle sans le point de contrôle qui l'annonce : des entrées antérieures "
                "ont été supprimées ou réécrites.")  # fmt: skip
        return False
    elif key != announced:
        problem(file, line, entry.index, "checkpoint",
                "Point de contrôle signé avec une clé que le précédent n'a pas annoncée : le journal a été "
                "réécrit depuis ce point.")  # fmt: skip
        return False
    try:
        message = checkpoint_message(
            count, head, generation, nacl.signing.VerifyKey(bytes.fromhex(key)),
            nacl.signing.VerifyKey(bytes.fromhex(following)), nacl.signing.VerifyKey(bytes.fromhex(appliance_key)),
        )  # fmt: skip
        nacl.signing.VerifyKey(bytes.fromhex(key)).verify(message, bytes.fromhex(signature))
    except (ValueError, TypeError, nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError):
        problem(file, line, entry.index, "checkpoint", "Signature du point de contrôle invalide.")
        return False
    if appliance_key == walk.current_key:
        return _check_appliance_signature(entry, walk, file, line, problem)
    # Perhaps a key of this appliance before a rotation journaled further on: checked at the end.
    walk.unchecked_appliance_signatures.append((entry, file, line))
    return True


def _check_appliance_signature(entry: JournalEntry, walk: _Walk, file: str, line: int, problem: Any) -> bool:
    details = entry.details
    appliance_key = str(details.get("appliance_key"))
    if appliance_key not in walk.appliance_keys:
        try:
            other = key_fingerprint(nacl.signing.VerifyKey(bytes.fromhex(appliance_key)))
        except (ValueError, nacl.exceptions.CryptoError):
            other = "illisible"
        problem(file, line, entry.index, "checkpoint",
                f"Point de contrôle signé par un autre poste (clé {other}).")  # fmt: skip
        return False
    try:
        message = checkpoint_message(
            int(details["count"]), str(details["head"]), int(details["generation"]),
            nacl.signing.VerifyKey(bytes.fromhex(str(details["key"]))),
            nacl.signing.VerifyKey(bytes.fromhex(str(details["next"]))),
            nacl.signing.VerifyKey(bytes.fromhex(appliance_key)),
        )  # fmt: skip
        nacl.signing.VerifyKey(bytes.fromhex(appliance_key)).verify(
            message, bytes.fromhex(str(details["appliance_signature"]))
        )
    except (ValueError, TypeError, KeyError, nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError):
        problem(file, line, entry.index, "checkpoint", "Signature du poste sur le point de contrôle invalide.")
        return False
    return True


def _verify_roster_change(entry: JournalEntry, walk: _Walk, file: str, line: int, problem: Any) -> None:
    """A staff change carries the roster it made, signed by the administration key; a new
    administration key must be endorsed by the previous one. A roster change appended by hand
    (no administration key) or an administration key swapped on the disk then shows."""
    details = entry.details
    if entry.action == APPLIANCE_KEY_ROTATED:
        # The old appliance key's signed word that the new one continues this journal (witness.py).
        statement = details.get("statement")
        old, new = details.get("old_appliance_key"), details.get("new_appliance_key")
        try:
            assert isinstance(statement, dict) and statement.get("old_key") == old and statement.get("new_key") == new
            content = {name: statement[name] for name in ("purpose", "old_key", "new_key")}
            nacl.signing.VerifyKey(bytes.fromhex(str(old))).verify(
                canonical_json(content), bytes.fromhex(str(statement["signature"]))
            )
            walk.rotations.append((str(old), str(new)))
        except (AssertionError, KeyError, ValueError, TypeError, nacl.exceptions.BadSignatureError):
            problem(file, line, entry.index, "roster",
                    "Changement de clé du poste sans la signature de l'ancienne clé.")  # fmt: skip
    roster, signature = details.get("roster"), details.get("roster_signature")
    if not isinstance(roster, dict) or not isinstance(signature, str):
        if entry.action != APPLIANCE_KEY_ROTATED:
            problem(file, line, entry.index, "roster", "Modification du personnel sans la liste signée.")
        return
    signed = canonical_json(roster)
    admin_key = roster.get("admin_key")
    try:
        admin = nacl.signing.VerifyKey(base64.b64decode(str(admin_key), validate=True))
        admin.verify(signed, bytes.fromhex(signature))
    except (ValueError, TypeError, binascii.Error, nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError):
        problem(file, line, entry.index, "roster",
                "Modification du personnel dont la liste n'est pas signée par la clé d'administration.")  # fmt: skip
        return
    if walk.admin_key is not None and admin_key != walk.admin_key:
        endorsement = details.get("endorsement")
        try:
            previous = nacl.signing.VerifyKey(base64.b64decode(walk.admin_key, validate=True))
            previous.verify(signed, bytes.fromhex(str(endorsement)))
        except (ValueError, TypeError, binascii.Error, nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError):
            problem(file, line, entry.index, "roster",
                    "La clé d'administration a changé sans l'accord de la précédente : quelqu'un s'est "
                    "donné le droit de gérer le personnel.")  # fmt: skip
    walk.admin_key = str(admin_key)
    serial = roster.get("serial")
    walk.roster = (serial if isinstance(serial, int) else -1, hashlib.sha256(signed).hexdigest(), entry.index)


def _check_purge(first: JournalEntry, file_name: str, walk: _Walk, now: dt.datetime, problem: Any) -> None:
    """The journal starts after entry 0: a purge must say so, and may only have removed what was due."""
    anchored = [
        (entry, file, line, before)
        for entry, file, line, before in walk.retentions
        if _retention_anchor(entry) == (first.index - 1, first.prev_hash)
    ]
    if not walk.retentions:
        problem(file_name, 1, first.index, "deleted",
                f"Le début du journal manque (entrées 0 à {first.index - 1}) sans purge enregistrée.")  # fmt: skip
        return
    if not anchored:
        problem(file_name, 1, first.index, "replaced",
                "Le plus ancien mois conservé ne correspond pas à la purge enregistrée "
                "(mois supprimé ou remplacé).")  # fmt: skip
        return
    entry, file, line, before = anchored[-1]
    months = entry.details.get("retention_months")
    text = entry.details.get("anchor_entry")
    try:
        anchor = JournalEntry.from_line(str(text).encode("utf-8") + b"\n")
    except (ValueError, UnicodeDecodeError):
        anchor = None
    if anchor is None or anchor.computed_hash() != first.prev_hash or anchor.index != first.index - 1:
        problem(file, line, entry.index, "retention",
                "Purge sans la preuve de ce qu'elle a supprimé (purge forgée ?).")  # fmt: skip
        return
    if not isinstance(months, int) or months < MIN_RETENTION_MONTHS:
        problem(file, line, entry.index, "retention",
                f"Purge annonçant une conservation de {months} mois, moins que le minimum de "
                f"{MIN_RETENTION_MONTHS} mois (purge forgée ?).")  # fmt: skip
        return
    purge_time = entry.time.astimezone(dt.UTC)
    too_early = before is not None and purge_time < before - dt.timedelta(minutes=5)
    if purge_time > now + dt.timedelta(days=1) or too_early:
        problem(file, line, entry.index, "retention",
                "Purge datée hors de la suite du journal (date dans le futur ou avant l'entrée précédente) : "
                "purge forgée ?")  # fmt: skip
        return
    limit_month = purge_time.year * 12 + purge_time.month - 1 - months
    limit = dt.datetime(limit_month // 12, limit_month % 12 + 1, 1, tzinfo=dt.UTC)
    if anchor.time >= limit:
        problem(file, line, entry.index, "retention",
                f"Purge de mois trop récents : l'entrée n° {anchor.index} du "
                f"{anchor.time.astimezone(PARIS):%d/%m/%Y} a été supprimée alors qu'elle devait être "
                f"gardée {months} mois (purge forgée ?).")  # fmt: skip


def _check_repairs(walk: _Walk, report: VerifyReport) -> None:
    for entry, file, line in walk.repairs:
        if entry.details.get("head_record_unreadable"):
            report.problems.append(Problem(
                file, line, entry.index, "head",
                "L'enregistrement de fin du journal avait été modifié ou endommagé : impossible de savoir "
                "si des entrées avaient été supprimées avant celle-ci.",
            ))  # fmt: skip
        elif entry.details.get("entries_lost"):
            recorded = entry.details.get("head_record") or {}
            found = entry.details.get("found_index")
            ended = f"s'arrêtait à l'entrée n° {found}" if isinstance(found, int) and found >= 0 else "était vide"
            report.problems.append(Problem(
                file, line, entry.index, "truncated",
                f"Fin du journal coupée puis « réparée » : l'enregistrement de fin désignait l'entrée "
                f"n° {recorded.get('index')}, le journal {ended}. Des entrées ont été supprimées ; "
                "l'écriture a repris à la suite.",
            ))  # fmt: skip
        else:
            report.notes_fr.append(
                f"{file}, ligne {line} : une ligne incomplète a été mise de côté "
                f"({entry.details.get('saved_as')}) — écriture interrompue (coupure de courant ?) ; "
                "aucune entrée enregistrée n'a été perdue."
            )


def _check_head_record(home: Path, report: VerifyReport, walk: _Walk, problem: Any) -> None:
    try:
        record = read_head_record(home)
    except JournalBroken as error:
        problem(HEAD_FILE, None, None, "head", error.message_fr)
        return
    if record is None:
        if report.entries:
            problem(HEAD_FILE, None, None, "head",
                    "L'enregistrement de fin du journal (journal.head) a été supprimé : impossible de "
                    "savoir si les dernières entrées sont toutes là.")  # fmt: skip
        return
    found = walk.hash_at.get(record.index)
    if found == record.hash:
        return
    last = report.last_index
    if found is None and (last is None or record.index > last):
        ended = f"s'arrête à l'entrée n° {last}" if last is not None else "est vide"
        problem(HEAD_FILE, None, record.index, "head",
                f"Le journal {ended} alors qu'il allait au moins jusqu'à l'entrée n° {record.index} "
                f"(écrite le {fr_time(record.timestamp)}) : des entrées récentes ou des mois entiers "
                "ont été supprimés.")  # fmt: skip
    else:
        problem(HEAD_FILE, None, record.index, "head",
                f"L'entrée n° {record.index} n'est plus celle qui avait été écrite : le journal a été réécrit.")


def _check_checkpoint_key_file(home: Path, report: VerifyReport, walk: _Walk, problem: Any) -> None:
    last = report.last_checkpoint
    states = [s for s in (_read_checkpoint_key_state(home / CHECKPOINT_KEY_FILE),
                          _read_checkpoint_key_state(home / (CHECKPOINT_KEY_FILE + ".pending"))) if s]  # fmt: skip
    if last is not None and any(state["public"] == last.details.get("next") for state in states):
        return
    newest = max((int(state.get("announced_at", -1)) for state in states), default=None)
    if newest is not None and newest in walk.checkpoint_indexes:
        return  # that checkpoint is there; whether it verifies is reported with it
    if newest is not None and report.first_index is not None and newest < report.first_index:
        return  # purged with its month (whether the purge was due is checked with it)
    if newest is not None and (last is None or newest > last.index):
        problem(CHECKPOINT_KEY_FILE, None, newest, "checkpoint",
                f"Le point de contrôle signé n° {newest} a disparu du journal (la clé de point de contrôle "
                "du poste le suit) : la fin du journal a été supprimée ou réécrite.")  # fmt: skip
    elif last is not None and newest is not None:
        report.notes_fr.append(
            "La clé de point de contrôle (journal-key.json) est plus ancienne que le journal (restaurée "
            "d'une sauvegarde ?) : la prochaine session recommencera la chaîne, ce qui sera signalé."
        )
    elif last is not None:
        report.notes_fr.append(
            "La clé de point de contrôle (journal-key.json) est absente : la prochaine session "
            "recommencera la chaîne, ce qui sera signalé."
        )


def _check_roster_file(home: Path, report: VerifyReport, walk: _Walk, problem: Any) -> None:
    from continuity import keys  # the roster's format and signature are keys.py's
    from continuity.errors import ContinuityError

    if not (Path(home) / keys.ROSTER).exists():
        return
    if report.entries == 0 and report.last_index is None:
        problem(keys.ROSTER, None, None, "head",
                "Le journal est vide alors que ce poste est configuré : il a été supprimé.")  # fmt: skip
        return
    if walk.roster is None:
        return  # a home enrolled without journal (library use): nothing to compare with
    try:
        roster = keys.read_roster(home)
    except ContinuityError as error:
        problem(keys.ROSTER, None, None, "roster", f"Liste du personnel invalide : {error.message_fr}")
        return
    serial, digest, index = walk.roster
    if roster.digest != digest:
        problem(keys.ROSTER, None, index, "roster",
                f"La liste du personnel (version {roster.serial}) n'est pas celle de la dernière "
                f"modification journalisée (version {serial}, entrée n° {index}) : liste restaurée ou "
                "remplacée, clé d'administration changée ?")  # fmt: skip


def _check_witnessed(witness: WitnessedHead, report: VerifyReport, walk: _Walk, problem: Any) -> None:
    when = fr_time(witness.received_at)
    if witness.appliance_key not in walk.appliance_keys:
        problem("(témoin)", None, None, "witness",
                "Le témoin de l'éditeur a reçu ces têtes d'un autre poste (clé différente).")  # fmt: skip
        return
    count, head = witness.signed_count, witness.signed_head
    found = GENESIS_HASH if count == 0 else walk.hash_at.get(count - 1)
    if found != head:
        lost = found is None and (report.last_index is None or count - 1 > report.last_index)
        problem("(témoin)", None, count - 1, "witness",
                (f"Le témoin de l'éditeur a vu le {when} un journal signé de {count} entrées ; celui-ci "
                 f"s'arrête avant : des entrées ont été supprimées." if lost else
                 f"Le témoin de l'éditeur a vu le {when} un journal signé de {count} entrées dont la "
                 "tête ne correspond pas : le journal a été réécrit."))  # fmt: skip
    if witness.roster_serial is not None and walk.roster is not None and walk.roster[0] < witness.roster_serial:
        problem("(témoin)", None, None, "roster",
                f"Le témoin a vu le {when} la liste du personnel en version {witness.roster_serial} ; le journal "
                f"s'arrête à la version {walk.roster[0]} : modifications du personnel supprimées.")  # fmt: skip
    if witness.reported_index is not None and witness.reported_hash is not None:
        reported = walk.hash_at.get(witness.reported_index)
        if reported != witness.reported_hash:
            gone = reported is None and (report.last_index is None or witness.reported_index > report.last_index)
            problem("(témoin)", None, witness.reported_index, "witness",
                    f"Le témoin de l'éditeur a reçu le {when} la fin du journal à l'entrée "
                    f"n° {witness.reported_index} (non signée, envoyée par la récupération de nuit) : "
                    + ("ce journal s'arrête avant, des entrées ont été supprimées." if gone else
                       "ce journal contient une autre entrée à cette place : il a été réécrit."))  # fmt: skip


def _local_witness(home: Path, problem: Any) -> WitnessedHead | None:
    """The last receipt kept in the home: countersigned by the publisher, so it cannot be edited."""
    from continuity import witness  # witness.py builds on this module
    from continuity.errors import ContinuityError

    path = Path(home) / witness.WITNESS_DIR / witness.RECEIPT_FILE
    try:
        receipt = witness.read_receipt(path, witness.trusted_keys(home), missing_ok=True)
    except ContinuityError as error:
        problem(f"{witness.WITNESS_DIR}/{witness.RECEIPT_FILE}", None, None, "witness",
                f"Le reçu du témoin gardé sur ce poste est invalide : {error.message_fr}")  # fmt: skip
        return None
    return witness.witnessed_head(receipt) if receipt is not None else None


def fr_time(value: str) -> str:
    try:
        return dt.datetime.fromisoformat(value).astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")
    except ValueError:
        return value


def _retention_anchor(entry: JournalEntry) -> tuple[int, str] | None:
    index = entry.details.get("anchor_index")
    digest = entry.details.get("anchor_hash")
    if isinstance(index, int) and isinstance(digest, str):
        return index, digest
    return None


def last_signed_checkpoint(home: Path) -> JournalEntry:
    """The newest checkpoint that verifies (the one worth copying on paper)."""
    if read_verify_key(home) is None:
        raise JournalError(
            "no appliance verify key",
            message_fr="La clé de vérification du poste (appliance.sign.pub) est absente : rien à recopier.",
        )
    found = verify_journal(home).last_checkpoint
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
